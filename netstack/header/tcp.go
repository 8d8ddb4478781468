package header

import (
	"encoding/binary"
	"net/netip"
)

// TCP header sizes (RFC 9293 section 3.1).
const (
	// TCPMinSize is the size of a header without options (data offset 5).
	TCPMinSize = 20
	// TCPMaxHeaderSize is the size of a header with 40 bytes of options
	// (data offset 15).
	TCPMaxHeaderSize = 60
	// TCPMaxOptionsSize is the most option bytes a header holds.
	TCPMaxOptionsSize = TCPMaxHeaderSize - TCPMinSize
)

// Field offsets (RFC 9293 section 3.1).
const (
	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeq        = 4
	tcpAck        = 8
	tcpDataOffset = 12 // high nibble; the low nibble is reserved (or AE, Accurate ECN)
	tcpFlags      = 13
	tcpWindow     = 14
	tcpChecksum   = 16
	tcpUrgent     = 18
)

// TCPFlags is the set of control bits in byte 13 of the header (RFC 9293
// section 3.1; ECE and CWR from RFC 3168).
type TCPFlags uint8

// Control bits.
const (
	TCPFlagFin TCPFlags = 1 << iota // no more data from sender
	TCPFlagSyn                      // synchronize sequence numbers
	TCPFlagRst                      // reset the connection
	TCPFlagPsh                      // push
	TCPFlagAck                      // the acknowledgment field is significant
	TCPFlagUrg                      // the urgent pointer is significant
	TCPFlagEce                      // ECN-Echo (RFC 3168)
	TCPFlagCwr                      // congestion window reduced (RFC 3168)
)

// tcpFlagLetters are tcpdump's letters for each flag, in its order
// (print-tcp.c's tcp_flag_values), ACK being ".".
var tcpFlagLetters = [...]struct {
	f TCPFlags
	c byte
}{
	{TCPFlagFin, 'F'}, {TCPFlagSyn, 'S'}, {TCPFlagRst, 'R'}, {TCPFlagPsh, 'P'},
	{TCPFlagAck, '.'}, {TCPFlagUrg, 'U'}, {TCPFlagEce, 'E'}, {TCPFlagCwr, 'W'},
}

// String renders the flags as tcpdump does: "[S]", "[S.]", "[P.]",
// "[F.]", "[R]", "[none]".
func (f TCPFlags) String() string {
	var b [2 + len(tcpFlagLetters)]byte
	b[0] = '['
	n := 1
	for _, l := range tcpFlagLetters {
		if f&l.f != 0 {
			b[n] = l.c
			n++
		}
	}
	if n == 1 {
		return "[none]"
	}
	b[n] = ']'
	return string(b[:n+1])
}

// TCP is a TCP segment (header, options and data) stored in a byte slice
// (RFC 9293 section 3.1). The checksum covers the whole slice, so it must
// end where the segment does (the IPv4 payload). Fixed-offset accessors
// need TCPMinSize bytes.
type TCP []byte

// Check validates a received segment's header: at least TCPMinSize bytes,
// a data offset of at least 5 words that lies within t. The checksum is
// checked separately (IsChecksumValid), as it needs the addresses, and the
// options separately (ParseOptions). Mirrors the header tests of Linux's
// tcp_v4_rcv. It never panics.
func (t TCP) Check() error {
	if len(t) < TCPMinSize {
		return ErrTCPShort
	}
	off := t.DataOffset()
	if off < TCPMinSize {
		return ErrTCPDataOffset
	}
	if off > len(t) {
		return ErrTCPShort
	}
	return nil
}

// SrcPort is the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[tcpSrcPort:]) }

// DstPort is the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[tcpDstPort:]) }

// Seq is the sequence number of the first data byte (or the ISN on a SYN).
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[tcpSeq:]) }

// Ack is the acknowledgment number, significant when ACK is set.
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[tcpAck:]) }

// DataOffset is the header length in bytes (the 4-bit field counts 32-bit
// words), options included.
func (t TCP) DataOffset() int { return int(t[tcpDataOffset]>>4) * 4 }

// Flags are the control bits.
func (t TCP) Flags() TCPFlags { return TCPFlags(t[tcpFlags]) }

// FlagWord is the header's fourth 32-bit word: data offset, the reserved
// bits (AE among them), the control bits and the window, as Linux's
// tcp_flag_word reads it (GRO compares these words whole).
func (t TCP) FlagWord() uint32 { return binary.BigEndian.Uint32(t[tcpDataOffset:]) }

// Window is the window field, not yet scaled by the window scale option.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[tcpWindow:]) }

// Checksum is the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[tcpChecksum:]) }

// UrgentPointer is the urgent pointer, an offset from Seq significant when
// URG is set.
func (t TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(t[tcpUrgent:]) }

// Options returns the option bytes between the fixed header and
// DataOffset, clamped to t.
func (t TCP) Options() []byte {
	return t[TCPMinSize:min(max(t.DataOffset(), TCPMinSize), len(t))]
}

// Payload returns the data after the header, clamped to t.
func (t TCP) Payload() []byte { return t[min(max(t.DataOffset(), TCPMinSize), len(t)):] }

// ParseOptions parses the options into o; see ParseTCPOptions.
func (t TCP) ParseOptions(o *TCPOptions) error { return ParseTCPOptions(t.Options(), o) }

// SetSrcPort sets the source port.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t[tcpSrcPort:], p) }

// SetDstPort sets the destination port.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t[tcpDstPort:], p) }

// SetSeq sets the sequence number.
func (t TCP) SetSeq(v uint32) { binary.BigEndian.PutUint32(t[tcpSeq:], v) }

// SetAck sets the acknowledgment number.
func (t TCP) SetAck(v uint32) { binary.BigEndian.PutUint32(t[tcpAck:], v) }

// SetDataOffset sets the header length from a length in bytes (a multiple
// of 4 from 20 to 60) and clears the reserved bits after it.
func (t TCP) SetDataOffset(n int) { t[tcpDataOffset] = uint8(n/4) << 4 }

// SetFlags sets the control bits.
func (t TCP) SetFlags(f TCPFlags) { t[tcpFlags] = uint8(f) }

// SetWindow sets the window field.
func (t TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(t[tcpWindow:], w) }

// SetChecksum sets the checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[tcpChecksum:], c) }

// SetUrgentPointer sets the urgent pointer.
func (t TCP) SetUrgentPointer(p uint16) { binary.BigEndian.PutUint16(t[tcpUrgent:], p) }

// CalculateChecksum returns the checksum to store for a segment from src
// to dst: the complement of the sum over the IPv4 pseudo-header and all of
// t, computed as if the checksum field were zero (RFC 9293 section 3.1,
// "Checksum").
func (t TCP) CalculateChecksum(src, dst netip.Addr) uint16 {
	sum := Checksum(t[:tcpChecksum], PseudoHeaderChecksum(IPv4ProtocolTCP, src, dst, uint16(len(t))))
	return ^Checksum(t[tcpChecksum+2:], sum)
}

// IsChecksumValid reports whether the checksum of a segment from src to
// dst is right.
func (t TCP) IsChecksumValid(src, dst netip.Addr) bool {
	return Checksum(t, PseudoHeaderChecksum(IPv4ProtocolTCP, src, dst, uint16(len(t)))) == 0xffff
}

// TCPFields are the values a TCP header is built from (Encode) or read into
// (Fields).
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	// DataOffset is the header length in bytes, options included. Zero
	// means TCPMinSize plus Options padded to a multiple of 4; set it to
	// leave room for options the caller writes after Encode.
	DataOffset    int
	Flags         TCPFlags
	Window        uint16
	Checksum      uint16 // written as is; see CalculateChecksum
	UrgentPointer uint16
	// Options are raw option bytes (TCPOptions.Encode lays them out),
	// written after the fixed header and padded with zeros to a multiple
	// of 4; at most TCPMaxOptionsSize bytes. They may alias the
	// destination's own option area.
	Options []byte
}

// Fields returns t's header fields. Options aliases t. The reserved bits
// and AE are not represented.
func (t TCP) Fields() TCPFields {
	return TCPFields{
		SrcPort:       t.SrcPort(),
		DstPort:       t.DstPort(),
		Seq:           t.Seq(),
		Ack:           t.Ack(),
		DataOffset:    t.DataOffset(),
		Flags:         t.Flags(),
		Window:        t.Window(),
		Checksum:      t.Checksum(),
		UrgentPointer: t.UrgentPointer(),
		Options:       t.Options(),
	}
}

// EncodedLen returns the data offset Encode writes for f: f.DataOffset if
// set, else TCPMinSize plus the options rounded up to a multiple of 4.
func (f *TCPFields) EncodedLen() int {
	if f.DataOffset != 0 {
		return f.DataOffset
	}
	return TCPMinSize + (len(f.Options)+3)&^3
}

// Encode writes the header from f at the start of t: the fixed 20 bytes,
// then f.Options padded with zeros to a multiple of 4, and the data offset
// f.EncodedLen(). Option bytes past those, up to a larger f.DataOffset, are
// left as they are. t must hold the header and the padded options, and the
// options must fit the data offset and TCPMaxOptionsSize; Encode panics
// otherwise, as these are programming errors. The checksum is written as
// f.Checksum; once the data is in place, set it with
// t.SetChecksum(t.CalculateChecksum(src, dst)).
func (t TCP) Encode(f *TCPFields) {
	hl := f.EncodedLen()
	ol := (len(f.Options) + 3) &^ 3
	if ol > TCPMaxOptionsSize || hl < TCPMinSize+ol || hl > TCPMaxHeaderSize {
		panic("header: TCP options do not fit the data offset")
	}
	_ = t[TCPMinSize+ol-1]
	n := copy(t[TCPMinSize:TCPMinSize+ol], f.Options)
	clear(t[TCPMinSize+n : TCPMinSize+ol])
	t.SetSrcPort(f.SrcPort)
	t.SetDstPort(f.DstPort)
	t.SetSeq(f.Seq)
	t.SetAck(f.Ack)
	t.SetDataOffset(hl)
	t.SetFlags(f.Flags)
	t.SetWindow(f.Window)
	t.SetChecksum(f.Checksum)
	t.SetUrgentPointer(f.UrgentPointer)
}
