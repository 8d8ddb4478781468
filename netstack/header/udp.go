package header

import (
	"encoding/binary"
	"net/netip"
)

// UDPMinSize is the size of the UDP header (RFC 768).
const UDPMinSize = 8

// Field offsets (RFC 768, "Format").
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// UDP is a UDP header and its data stored in a byte slice (RFC 768).
// Accessors need UDPMinSize bytes.
type UDP []byte

// Check validates a received datagram's lengths: at least UDPMinSize bytes,
// and a length field from UDPMinSize to len(u). Bytes after Length (link or
// IP padding) are allowed; the caller trims them. The checksum is checked
// separately (IsChecksumValid), as it needs the addresses. Mirrors the
// length tests of Linux's __udp4_lib_rcv. It never panics.
func (u UDP) Check() error {
	if len(u) < UDPMinSize {
		return ErrUDPShort
	}
	n := int(u.Length())
	if n < UDPMinSize {
		return ErrUDPLength
	}
	if n > len(u) {
		return ErrUDPTruncated
	}
	return nil
}

// SrcPort is the source port (0 if unused).
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[udpSrcPort:]) }

// DstPort is the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[udpDstPort:]) }

// Length is the length field: header plus data, in bytes.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[udpLength:]) }

// Checksum is the checksum field; 0 means the sender computed none (RFC
// 768).
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[udpChecksum:]) }

// Payload is the data after the header up to Length, clamped to u.
func (u UDP) Payload() []byte {
	return u[UDPMinSize:min(max(int(u.Length()), UDPMinSize), len(u))]
}

// SetSrcPort sets the source port.
func (u UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(u[udpSrcPort:], p) }

// SetDstPort sets the destination port.
func (u UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(u[udpDstPort:], p) }

// SetLength sets the length field.
func (u UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(u[udpLength:], n) }

// SetChecksum sets the checksum field.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[udpChecksum:], c) }

// udpSum is the uncomplemented sum over the pseudo-header and the Length
// bytes of the datagram (clamped to u), the checksum field counted only if
// withField.
func (u UDP) udpSum(src, dst netip.Addr, withField bool) uint16 {
	n := u.Length()
	end := min(max(int(n), UDPMinSize), len(u))
	sum := Checksum(u[:udpChecksum], PseudoHeaderChecksum(IPv4ProtocolUDP, src, dst, n))
	if withField {
		sum = Checksum(u[udpChecksum:udpChecksum+2], sum)
	}
	return Checksum(u[UDPMinSize:end], sum)
}

// CalculateChecksum returns the checksum to store for a datagram from src
// to dst: the complement of the sum over the IPv4 pseudo-header and the
// Length bytes of the datagram, computed as if the checksum field were
// zero. A result of 0 is returned as 0xffff, since 0 on the wire means no
// checksum (RFC 768).
func (u UDP) CalculateChecksum(src, dst netip.Addr) uint16 {
	c := ^u.udpSum(src, dst, false)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// IsChecksumValid reports whether the datagram's checksum is right for a
// datagram from src to dst. A checksum field of 0 means the sender
// computed none and is reported valid (RFC 768; RFC 1122 section 4.1.3.4
// lets a receiver accept it).
func (u UDP) IsChecksumValid(src, dst netip.Addr) bool {
	if u.Checksum() == 0 {
		return true
	}
	return u.udpSum(src, dst, true) == 0xffff
}

// UDPFields are the values a UDP header is built from (Encode) or read into
// (Fields).
type UDPFields struct {
	SrcPort, DstPort uint16
	Length           uint16 // header plus data, in bytes
	Checksum         uint16 // written as is; see CalculateChecksum
}

// Fields returns u's header fields.
func (u UDP) Fields() UDPFields {
	return UDPFields{SrcPort: u.SrcPort(), DstPort: u.DstPort(), Length: u.Length(), Checksum: u.Checksum()}
}

// Encode writes the header from f at the start of u (which must hold
// UDPMinSize bytes; it panics otherwise). The checksum is written as
// f.Checksum; once the data is in place, set it with
// u.SetChecksum(u.CalculateChecksum(src, dst)).
func (u UDP) Encode(f *UDPFields) {
	_ = u[UDPMinSize-1]
	u.SetSrcPort(f.SrcPort)
	u.SetDstPort(f.DstPort)
	u.SetLength(f.Length)
	u.SetChecksum(f.Checksum)
}
