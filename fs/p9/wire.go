package p9

import (
	"encoding/binary"
	"runtime"
)

// 9P2000.L message types the connection shims look at. The library keeps
// its own table unexported; these are the protocol's numbers
// (diod's protocol.md, Linux include/net/9p/9p.h).
const (
	msgRlerror     = 7
	msgTlopen      = 12
	msgTrename     = 20
	msgTsetattr    = 26
	msgRsetattr    = 27
	msgTxattrwalk  = 30
	msgRxattrwalk  = 31
	msgTxattrcreat = 32
	msgTrenameat   = 74
	msgTversion    = 100
	msgRversion    = 101
	msgTauth       = 102
	msgTattach     = 104
	msgRattach     = 105
	msgTflush      = 108
	msgRflush      = 109
	msgTwalk       = 110
	msgRwalk       = 111
	msgTread       = 116
	msgTwrite      = 118
	msgTclunk      = 120
	msgRclunk      = 121
	msgTremove     = 122
)

const (
	hdrLen = 7      // size[4] type[1] tag[2]
	noTag  = 0xFFFF // the tag of Tversion
	noUID  = ^uint32(0)
	// nobody is the identity given to an attach that names no uid
	// (n_uname = ~0, as p9's own client sends): anonymous clients get
	// no more than other users' rights.
	nobody = 65534
	// readHdr is the fixed part of Rread (header + count[4]): a Tread's
	// count is capped at msize minus this so the reply fits in msize.
	readHdr = hdrLen + 4
)

var le = binary.LittleEndian

// frame is one 9P message, header included.
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

func (f frame) u16(off int) (uint16, bool) {
	if hdrLen+off+2 > len(f) {
		return 0, false
	}
	return le.Uint16(f[hdrLen+off:]), true
}

// str skips the 9P string (len[2] bytes) at body offset off and returns it
// and the offset after it.
func (f frame) str(off int) (string, int, bool) {
	n, ok := f.u16(off)
	if !ok || hdrLen+off+2+int(n) > len(f) {
		return "", 0, false
	}
	return string(f[hdrLen+off+2 : hdrLen+off+2+int(n)]), off + 2 + int(n), true
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

// goid returns the current goroutine's id, parsed from the first line of
// its stack trace ("goroutine 42 [running]:").
//
// It exists because p9's File methods get no context and no tag: the only
// link between a File.ReadAt and the Tread it serves is that p9 receives a
// request and handles it in one goroutine (connState.handleRequest: recv,
// then handle, then send). The connection shim notes which goroutine
// pulled each frame off the wire, and a File method finds its request, and
// so its cancellable context, by its own goroutine id.
func goid() uint64 {
	var buf [32]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// usesFid reports whether a T-message of type typ names an existing fid in
// its first four body bytes (Tclunk and Tremove do too, but they are let
// through: a clunk must always be possible).
func usesFid(typ uint8) bool {
	switch typ {
	case 8, // Tstatfs
		msgTlopen, 14, // Tlcreate
		16, 18, // Tsymlink, Tmknod (dfid)
		msgTrename, 22, // Treadlink
		24, msgTsetattr, // Tgetattr
		msgTxattrwalk, msgTxattrcreat,
		40, 50, 52, 54, // Treaddir, Tfsync, Tlock, Tgetlock
		70, 72, msgTrenameat, 76, // Tlink, Tmkdir, Tunlinkat (dfid)
		msgTwalk, msgTread, msgTwrite:
		return true
	}
	return false
}
