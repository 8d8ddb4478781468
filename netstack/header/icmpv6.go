package header

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6MinSize is the size of the ICMPv6 header: type, code, checksum
// and the 4-byte rest of header (RFC 4443 2.1).
const ICMPv6MinSize = 8

// ICMPv6 message types (RFC 4443, RFC 4861, RFC 2710, RFC 3810).
const (
	ICMPv6DestUnreachable uint8 = 1
	ICMPv6PacketTooBig    uint8 = 2
	ICMPv6TimeExceeded    uint8 = 3
	ICMPv6ParamProblem    uint8 = 4
	ICMPv6EchoRequest     uint8 = 128
	ICMPv6EchoReply       uint8 = 129
	ICMPv6MLDQuery        uint8 = 130
	ICMPv6MLDReport       uint8 = 131
	ICMPv6MLDDone         uint8 = 132
	ICMPv6RouterSolicit   uint8 = 133
	ICMPv6RouterAdvert    uint8 = 134
	ICMPv6NeighborSolicit uint8 = 135
	ICMPv6NeighborAdvert  uint8 = 136
	ICMPv6Redirect        uint8 = 137
	ICMPv6MLDv2Report     uint8 = 143
	icmpv6ErrorTypesBelow uint8 = 128 // RFC 4443 2.1: types 0-127 are errors
	ICMPv6NeighborMinSize       = 24  // NS and NA: header, reserved/flags, target
)

// Codes (RFC 4443 3.1, 3.3, 3.4).
const (
	ICMPv6NoRoute           uint8 = 0 // destination unreachable: no route
	ICMPv6AdminProhibited   uint8 = 1
	ICMPv6AddrUnreachable   uint8 = 3
	ICMPv6PortUnreachable   uint8 = 4
	ICMPv6HopLimitExceeded  uint8 = 0 // time exceeded in transit
	ICMPv6ReassemblyTimeout uint8 = 1
	ICMPv6ErroneousField    uint8 = 0 // parameter problem: ICMPV6_HDR_FIELD
	ICMPv6UnknownNextHdr    uint8 = 1 // ICMPV6_UNK_NEXTHDR
	ICMPv6UnknownOption     uint8 = 2 // ICMPV6_UNK_OPTION
	ICMPv6HeaderIncomplete  uint8 = 3 // ICMPV6_HDR_INCOMP, RFC 8200 4.5
)

// Neighbor advertisement flags (RFC 4861 4.4), in the first byte after
// the checksum.
const (
	ICMPv6NARouter    uint8 = 0x80
	ICMPv6NASolicited uint8 = 0x40
	ICMPv6NAOverride  uint8 = 0x20
)

// ICMPv6IsError reports whether typ is an error message (RFC 4443 2.1).
func ICMPv6IsError(typ uint8) bool { return typ < icmpv6ErrorTypesBelow }

// ICMPv6 is an ICMPv6 message stored in a byte slice.
type ICMPv6 []byte

// Check validates m as a message sent from src to dst: at least
// ICMPv6MinSize bytes and a correct checksum over the pseudo-header and
// the message (mandatory in IPv6, RFC 4443 2.3).
func (m ICMPv6) Check(src, dst netip.Addr) error {
	if len(m) < ICMPv6MinSize {
		return ErrICMPv6Short
	}
	if Checksum(m, PseudoHeaderChecksum(IPv6NextICMP, src, dst, uint16(len(m)))) != 0xffff {
		return ErrICMPv6Checksum
	}
	return nil
}

// Type is the message type.
func (m ICMPv6) Type() uint8 { return m[0] }

// Code is the message code.
func (m ICMPv6) Code() uint8 { return m[1] }

// RestOfHeader is the 4 bytes after the checksum: identifier and
// sequence of an echo, the MTU of a packet too big, the pointer of a
// parameter problem.
func (m ICMPv6) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// Ident is an echo's identifier.
func (m ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(m[4:]) }

// Sequence is an echo's sequence number.
func (m ICMPv6) Sequence() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// Payload is what follows the 8-byte header: an echo's data, an error's
// quoted packet.
func (m ICMPv6) Payload() []byte { return m[min(ICMPv6MinSize, len(m)):] }

// Target is a neighbor solicitation's or advertisement's target address
// (ICMPv6NeighborMinSize bytes needed).
func (m ICMPv6) Target() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// SetType sets the type.
func (m ICMPv6) SetType(t uint8) { m[0] = t }

// SetCode sets the code.
func (m ICMPv6) SetCode(c uint8) { m[1] = c }

// SetRestOfHeader sets the 4 bytes after the checksum.
func (m ICMPv6) SetRestOfHeader(v uint32) { binary.BigEndian.PutUint32(m[4:], v) }

// SetChecksum sets the checksum field.
func (m ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[2:], c) }

// SetTarget sets a neighbor message's target.
func (m ICMPv6) SetTarget(a netip.Addr) {
	b := a.As16()
	copy(m[8:24], b[:])
}

// Finish computes and stores the checksum of m sent from src to dst.
func (m ICMPv6) Finish(src, dst netip.Addr) {
	m.SetChecksum(0)
	m.SetChecksum(^Checksum(m, PseudoHeaderChecksum(IPv6NextICMP, src, dst, uint16(len(m)))))
}
