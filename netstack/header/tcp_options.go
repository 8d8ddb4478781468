package header

import "encoding/binary"

// TCP option kinds (RFC 9293 section 3.2; IANA "TCP Option Kind Numbers").
const (
	TCPOptionEOL           = 0 // end of option list (RFC 9293)
	TCPOptionNOP           = 1 // no-operation, used for alignment (RFC 9293)
	TCPOptionMSS           = 2 // maximum segment size (RFC 9293 section 3.7.1)
	TCPOptionWindowScale   = 3 // window scale shift (RFC 7323 section 2)
	TCPOptionSACKPermitted = 4 // SACK may be used (RFC 2018 section 2)
	TCPOptionSACK          = 5 // selective acknowledgment blocks (RFC 2018 section 3)
	TCPOptionTimestamps    = 8 // TSval and TSecr (RFC 7323 section 3)
)

// TCP option lengths, the length byte included.
const (
	TCPOptionMSSLen           = 4
	TCPOptionWindowScaleLen   = 3
	TCPOptionSACKPermittedLen = 2
	TCPOptionTimestampsLen    = 10
	// TCPOptionSACKBaseLen is the SACK option's kind and length bytes;
	// each block adds TCPOptionSACKBlockLen.
	TCPOptionSACKBaseLen  = 2
	TCPOptionSACKBlockLen = 8
	// TCPMaxSACKBlocks is the most SACK blocks 40 option bytes hold.
	TCPMaxSACKBlocks = (TCPMaxOptionsSize - TCPOptionSACKBaseLen) / TCPOptionSACKBlockLen
)

// SACKBlock is one block of a SACK option: the receiver holds the sequence
// space [Start, End) (RFC 2018 section 3).
type SACKBlock struct{ Start, End uint32 }

// TCPOptions are the options of a segment, in fixed-size fields so that
// parsing does not allocate. ParseTCPOptions fills it; Encode lays it out.
type TCPOptions struct {
	HasMSS bool
	MSS    uint16 // maximum segment size (SYN only)

	HasWS bool
	WS    uint8 // window scale shift count as received; RFC 7323 caps its use at 14

	SACKPermitted bool // SACK-permitted (SYN only)

	HasTimestamp bool
	TSVal, TSEcr uint32 // timestamp value and echo reply

	NumSACK int // blocks in SACK, 0 to TCPMaxSACKBlocks
	SACK    [TCPMaxSACKBlocks]SACKBlock
}

// Blocks returns the SACK blocks present, aliasing o.SACK (NumSACK is
// clamped to the array).
func (o *TCPOptions) Blocks() []SACKBlock { return o.SACK[:min(max(o.NumSACK, 0), TCPMaxSACKBlocks)] }

// ParseTCPOptions parses the option bytes b (a segment's TCP.Options) into
// o, which it first clears. It never panics and never allocates.
//
// Parsing stops at EOL. An option whose length byte is missing, below 2 or
// past the end of b stops parsing with ErrTCPOptionLength; what came before
// is kept. A known option whose length its kind does not allow (an MSS not
// 4 bytes long, a SACK not 2+8n with n from 1 to 4, ...) is skipped as its
// length byte says, and parsing goes on; ErrTCPOptionSize is returned at
// the end. Both mirror Linux's tcp_parse_options, which ignores such an
// option and stops at a broken length. Unknown kinds are skipped. A
// repeated option overwrites the earlier one.
func ParseTCPOptions(b []byte, o *TCPOptions) error {
	*o = TCPOptions{}
	var err error
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case TCPOptionEOL:
			return err
		case TCPOptionNOP:
			i++
			continue
		}
		if len(b)-i < 2 {
			return ErrTCPOptionLength
		}
		l := int(b[i+1])
		if l < 2 || l > len(b)-i {
			return ErrTCPOptionLength
		}
		v := b[i+2 : i+l]
		sizeOK := true
		switch kind {
		case TCPOptionMSS:
			if sizeOK = l == TCPOptionMSSLen; sizeOK {
				o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(v)
			}
		case TCPOptionWindowScale:
			if sizeOK = l == TCPOptionWindowScaleLen; sizeOK {
				o.HasWS, o.WS = true, v[0]
			}
		case TCPOptionSACKPermitted:
			if sizeOK = l == TCPOptionSACKPermittedLen; sizeOK {
				o.SACKPermitted = true
			}
		case TCPOptionTimestamps:
			if sizeOK = l == TCPOptionTimestampsLen; sizeOK {
				o.HasTimestamp = true
				o.TSVal = binary.BigEndian.Uint32(v[0:4])
				o.TSEcr = binary.BigEndian.Uint32(v[4:8])
			}
		case TCPOptionSACK:
			n := len(v) / TCPOptionSACKBlockLen
			if sizeOK = len(v)%TCPOptionSACKBlockLen == 0 && n >= 1 && n <= TCPMaxSACKBlocks; sizeOK {
				for j := range n {
					blk := v[j*TCPOptionSACKBlockLen:]
					o.SACK[j] = SACKBlock{binary.BigEndian.Uint32(blk[0:4]), binary.BigEndian.Uint32(blk[4:8])}
				}
				o.NumSACK = n
			}
		}
		if !sizeOK && err == nil {
			err = ErrTCPOptionSize
		}
		i += l
	}
	return err
}

// Encode lays o out in b the way Linux's tcp_options_write does, and
// returns the number of bytes written, a multiple of 4. Every option is
// 32-bit aligned by NOPs, in this order (each line is one 32-bit word or
// more; "ts" is TSval then TSecr):
//
//	MSS                      02 04 mss mss
//	SACK-permitted and TS    04 02 08 0a ts ts ts ts ts ts ts ts
//	TS without SACK-perm     01 01 08 0a ts ts ts ts ts ts ts ts
//	SACK-perm without TS     01 01 04 02
//	window scale             01 03 03 ws
//	SACK blocks              01 01 05 len start end ...
//
// A Linux SYN is thus 20 bytes, "mss,sackOK,TS,nop,wscale" in tcpdump:
// 02 04 05 b4  04 02 08 0a  TSval  TSecr  01 03 03 07; and a data segment
// with timestamps is NOP,NOP,TS (12 bytes), plus NOP,NOP,SACK when there
// are blocks. Which options a segment carries is the caller's choice (MSS,
// SACK-permitted and window scale belong on SYNs only).
//
// Encode writes at most min(len(b), TCPMaxOptionsSize) bytes. An option
// that does not fit in what is left is left out, and SACK blocks are cut
// to as many as fit (with timestamps, 3), as Linux does; EncodedLen says
// how much a full layout takes. It never panics.
func (o *TCPOptions) Encode(b []byte) int {
	return o.layout(b[:min(len(b), TCPMaxOptionsSize)], true)
}

// EncodedLen returns the number of bytes Encode writes into a buffer of
// TCPMaxOptionsSize bytes.
func (o *TCPOptions) EncodedLen() int {
	var b [TCPMaxOptionsSize]byte
	return o.layout(b[:], false)
}

// layout writes (or, with write false, only measures) the options into b,
// all of which may be used.
func (o *TCPOptions) layout(b []byte, write bool) int {
	n := 0
	room := func(k int) bool { return len(b)-n >= k }
	if o.HasMSS && room(4) {
		if write {
			b[n], b[n+1] = TCPOptionMSS, TCPOptionMSSLen
			binary.BigEndian.PutUint16(b[n+2:], o.MSS)
		}
		n += 4
	}
	switch {
	case o.HasTimestamp && room(12):
		if write {
			if o.SACKPermitted {
				b[n], b[n+1] = TCPOptionSACKPermitted, TCPOptionSACKPermittedLen
			} else {
				b[n], b[n+1] = TCPOptionNOP, TCPOptionNOP
			}
			b[n+2], b[n+3] = TCPOptionTimestamps, TCPOptionTimestampsLen
			binary.BigEndian.PutUint32(b[n+4:], o.TSVal)
			binary.BigEndian.PutUint32(b[n+8:], o.TSEcr)
		}
		n += 12
	case o.SACKPermitted && room(4):
		// Also when timestamps did not fit, so SACK-permitted is not lost.
		if write {
			b[n], b[n+1], b[n+2], b[n+3] = TCPOptionNOP, TCPOptionNOP, TCPOptionSACKPermitted, TCPOptionSACKPermittedLen
		}
		n += 4
	}
	if o.HasWS && room(4) {
		if write {
			b[n], b[n+1], b[n+2], b[n+3] = TCPOptionNOP, TCPOptionWindowScale, TCPOptionWindowScaleLen, o.WS
		}
		n += 4
	}
	if blocks := min(max(o.NumSACK, 0), TCPMaxSACKBlocks, (len(b)-n-4)/TCPOptionSACKBlockLen); blocks > 0 {
		if write {
			b[n], b[n+1] = TCPOptionNOP, TCPOptionNOP
			b[n+2], b[n+3] = TCPOptionSACK, uint8(TCPOptionSACKBaseLen+blocks*TCPOptionSACKBlockLen)
			for j, s := range o.SACK[:blocks] {
				binary.BigEndian.PutUint32(b[n+4+8*j:], s.Start)
				binary.BigEndian.PutUint32(b[n+8+8*j:], s.End)
			}
		}
		n += 4 + blocks*TCPOptionSACKBlockLen
	}
	return n
}

// EncodeSynOptions writes the options of a SYN or SYN-ACK into b in
// Linux's layout (see TCPOptions.Encode) and returns their length, at most
// 20 bytes: MSS mss; window scale ws unless ws is negative; SACK-permitted
// if sackOK; timestamps tsVal and tsEcr if ts.
func EncodeSynOptions(b []byte, mss uint16, ws int, sackOK, ts bool, tsVal, tsEcr uint32) int {
	o := TCPOptions{
		HasMSS: true, MSS: mss,
		HasWS: ws >= 0, WS: uint8(max(ws, 0)),
		SACKPermitted: sackOK,
		HasTimestamp:  ts, TSVal: tsVal, TSEcr: tsEcr,
	}
	return o.Encode(b)
}

// EncodeOptions writes the options of a segment other than a SYN into b in
// Linux's layout (see TCPOptions.Encode) and returns their length:
// NOP,NOP,TS if ts, then NOP,NOP,SACK with as many of the sack blocks as
// fit (4 without timestamps, 3 with; the first ones are kept, so put a
// D-SACK block first, RFC 2883).
func EncodeOptions(b []byte, ts bool, tsVal, tsEcr uint32, sack []SACKBlock) int {
	o := TCPOptions{HasTimestamp: ts, TSVal: tsVal, TSEcr: tsEcr}
	o.NumSACK = copy(o.SACK[:], sack)
	return o.Encode(b)
}
