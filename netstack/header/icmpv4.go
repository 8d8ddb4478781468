package header

import "encoding/binary"

// ICMPv4MinSize is the size of the ICMP header: type, code, checksum and
// the 4-byte rest of header (RFC 792).
const ICMPv4MinSize = 8

// ICMPv4 message types (RFC 792; IANA "ICMP Type Numbers").
const (
	ICMPv4EchoReply       uint8 = 0
	ICMPv4DestUnreachable uint8 = 3
	ICMPv4SourceQuench    uint8 = 4 // deprecated by RFC 6633
	ICMPv4Redirect        uint8 = 5
	ICMPv4EchoRequest     uint8 = 8
	ICMPv4TimeExceeded    uint8 = 11
	ICMPv4ParamProblem    uint8 = 12
	ICMPv4Timestamp       uint8 = 13
	ICMPv4TimestampReply  uint8 = 14

	// icmpv4MaxType is Linux's NR_ICMP_TYPES: the highest type it knows.
	icmpv4MaxType = 18
)

// Codes of ICMPv4DestUnreachable (RFC 792; 4 with the MTU of RFC 1191;
// 9 to 13 from RFC 1122 and RFC 1812).
const (
	ICMPv4NetUnreachable      uint8 = 0
	ICMPv4HostUnreachable     uint8 = 1
	ICMPv4ProtoUnreachable    uint8 = 2
	ICMPv4PortUnreachable     uint8 = 3
	ICMPv4FragmentationNeeded uint8 = 4 // the MTU field holds the next-hop MTU
	ICMPv4SourceRouteFailed   uint8 = 5
	ICMPv4NetUnknown          uint8 = 6
	ICMPv4HostUnknown         uint8 = 7
	ICMPv4HostIsolated        uint8 = 8
	ICMPv4NetProhibited       uint8 = 9
	ICMPv4HostProhibited      uint8 = 10
	ICMPv4NetTOSUnreachable   uint8 = 11
	ICMPv4HostTOSUnreachable  uint8 = 12
	ICMPv4AdminProhibited     uint8 = 13
)

// Codes of ICMPv4TimeExceeded (RFC 792).
const (
	ICMPv4TTLExceeded       uint8 = 0 // time to live exceeded in transit
	ICMPv4ReassemblyTimeout uint8 = 1 // fragment reassembly time exceeded
)

// ICMPv4IsInfo reports whether typ is an informational (query) message
// rather than an error. An ICMP error is never sent about an error (RFC
// 1122 section 3.2.2). As Linux's icmp_pointers[].error does, it treats
// destination unreachable, source quench, redirect, time exceeded and
// parameter problem, and any type above 18 it does not know, as errors.
func ICMPv4IsInfo(typ uint8) bool {
	switch typ {
	case ICMPv4DestUnreachable, ICMPv4SourceQuench, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return false
	}
	return typ <= icmpv4MaxType
}

// Field offsets (RFC 792).
const (
	icmpv4Type     = 0
	icmpv4Code     = 1
	icmpv4Checksum = 2
	icmpv4Rest     = 4 // ident | pointer | gateway | unused
	icmpv4Ident    = 4
	icmpv4Sequence = 6
	icmpv4MTU      = 6 // RFC 1191 section 4: low half of the unused word
)

// ICMPv4 is an ICMP message (header and data) stored in a byte slice (RFC
// 792). The checksum covers the whole message, so the slice must end where
// the message does (the IPv4 payload). Accessors need ICMPv4MinSize bytes.
type ICMPv4 []byte

// Check validates a received message: at least ICMPv4MinSize bytes and a
// correct checksum over all of m. It never panics.
func (m ICMPv4) Check() error {
	if len(m) < ICMPv4MinSize {
		return ErrICMPv4Short
	}
	if !m.IsChecksumValid() {
		return ErrICMPv4Checksum
	}
	return nil
}

// Type is the message type (ICMPv4EchoRequest, ...).
func (m ICMPv4) Type() uint8 { return m[icmpv4Type] }

// Code is the message code, whose meaning depends on the type.
func (m ICMPv4) Code() uint8 { return m[icmpv4Code] }

// Checksum is the checksum field.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[icmpv4Checksum:]) }

// RestOfHeader is the 4 bytes after the checksum, whose meaning depends on
// the type: identifier and sequence (echo), pointer (parameter problem),
// gateway (redirect), next-hop MTU (fragmentation needed) or unused.
func (m ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[icmpv4Rest:]) }

// Ident is the identifier of an echo or timestamp message (RFC 792).
func (m ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(m[icmpv4Ident:]) }

// Sequence is the sequence number of an echo or timestamp message.
func (m ICMPv4) Sequence() uint16 { return binary.BigEndian.Uint16(m[icmpv4Sequence:]) }

// MTU is the next-hop MTU of a fragmentation-needed message (RFC 1191
// section 4); 0 from a router that predates RFC 1191.
func (m ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(m[icmpv4MTU:]) }

// Pointer is the octet offset of the problem in a parameter-problem
// message (RFC 792).
func (m ICMPv4) Pointer() uint8 { return m[icmpv4Rest] }

// Payload is what follows the 8-byte header: echo data, or the quoted
// IPv4 header and first bytes of the offending datagram in an error.
func (m ICMPv4) Payload() []byte { return m[min(ICMPv4MinSize, len(m)):] }

// SetType sets the message type.
func (m ICMPv4) SetType(t uint8) { m[icmpv4Type] = t }

// SetCode sets the message code.
func (m ICMPv4) SetCode(c uint8) { m[icmpv4Code] = c }

// SetChecksum sets the checksum field.
func (m ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[icmpv4Checksum:], c) }

// SetRestOfHeader sets the 4 bytes after the checksum.
func (m ICMPv4) SetRestOfHeader(v uint32) { binary.BigEndian.PutUint32(m[icmpv4Rest:], v) }

// SetIdent sets the echo identifier.
func (m ICMPv4) SetIdent(id uint16) { binary.BigEndian.PutUint16(m[icmpv4Ident:], id) }

// SetSequence sets the echo sequence number.
func (m ICMPv4) SetSequence(seq uint16) { binary.BigEndian.PutUint16(m[icmpv4Sequence:], seq) }

// SetMTU sets the next-hop MTU of a fragmentation-needed message and
// clears the unused half-word before it (RFC 1191 section 4).
func (m ICMPv4) SetMTU(mtu uint16) { m.SetRestOfHeader(uint32(mtu)) }

// CalculateChecksum returns the checksum to store: the complement of the
// sum over the whole message computed as if the checksum field were zero
// (RFC 792, "Checksum").
func (m ICMPv4) CalculateChecksum() uint16 {
	return ^Checksum(m[icmpv4Checksum+2:], Checksum(m[:icmpv4Checksum], 0))
}

// IsChecksumValid reports whether the checksum over the whole message is
// right.
func (m ICMPv4) IsChecksumValid() bool { return Checksum(m, 0) == 0xffff }

// ICMPv4Fields are the values an ICMP header is built from (Encode) or
// read into (Fields).
type ICMPv4Fields struct {
	Type uint8
	Code uint8
	// Rest is the 4 bytes after the checksum: Ident<<16 | Sequence for
	// echo, the MTU for fragmentation needed, 0 for most errors.
	Rest uint32
}

// Fields returns m's header fields.
func (m ICMPv4) Fields() ICMPv4Fields {
	return ICMPv4Fields{Type: m.Type(), Code: m.Code(), Rest: m.RestOfHeader()}
}

// Encode writes the header from f at the start of m and then the checksum
// over all of m: put the payload into m.Payload() first. m must hold at
// least ICMPv4MinSize bytes (it panics otherwise).
func (m ICMPv4) Encode(f *ICMPv4Fields) {
	_ = m[ICMPv4MinSize-1]
	m[icmpv4Type] = f.Type
	m[icmpv4Code] = f.Code
	m.SetRestOfHeader(f.Rest)
	m.SetChecksum(m.CalculateChecksum())
}
