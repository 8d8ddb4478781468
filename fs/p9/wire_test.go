package p9

// frame is one 9P message, header included (for tests that speak raw 9P).
type frame []byte

func (f frame) size() uint32 { return le.Uint32(f[0:4]) }
func (f frame) typ() uint8   { return f[4] }
func (f frame) tag() uint16  { return le.Uint16(f[5:7]) }

// u32 reads the 4-byte field at body offset off, or ok=false if the frame
// is too short for it.
func (f frame) u32(off int) (uint32, bool) {
	if hdrLen+off+4 > len(f) {
		return 0, false
	}
	return le.Uint32(f[hdrLen+off:]), true
}

// newFrame builds a message with the given body.
func newFrame(typ uint8, tag uint16, body ...byte) frame {
	f := make(frame, hdrLen+len(body))
	le.PutUint32(f[0:4], uint32(len(f)))
	f[4] = typ
	le.PutUint16(f[5:7], tag)
	copy(f[hdrLen:], body)
	return f
}

// rlerror builds Rlerror(ecode) for tag.
func rlerror(tag uint16, ecode uint32) frame {
	var b [4]byte
	le.PutUint32(b[:], ecode)
	return newFrame(msgRlerror, tag, b[:]...)
}
