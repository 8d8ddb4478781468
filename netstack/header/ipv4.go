package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 sizes and field values (RFC 791 section 3.1).
const (
	// IPv4MinSize is the size of a header without options (IHL 5).
	IPv4MinSize = 20
	// IPv4MaxHeaderSize is the size of a header with 40 bytes of options
	// (IHL 15).
	IPv4MaxHeaderSize = 60
	// IPv4MaxOptionsSize is the most option bytes a header holds.
	IPv4MaxOptionsSize = IPv4MaxHeaderSize - IPv4MinSize
	// IPv4Version is the value of the version field.
	IPv4Version = 4
)

// Flag bits of the 3-bit flags field, as returned by IPv4.Flags (RFC 791
// section 3.1: bit 0 reserved, bit 1 DF, bit 2 MF).
const (
	IPv4FlagMoreFragments uint8 = 1 << 0 // MF: more fragments follow
	IPv4FlagDontFragment  uint8 = 1 << 1 // DF: do not fragment
	IPv4FlagReserved      uint8 = 1 << 2 // must be zero
)

// Protocol numbers of the IPv4 protocol field (IANA "Assigned Internet
// Protocol Numbers").
const (
	IPv4ProtocolICMP uint8 = 1  // RFC 792
	IPv4ProtocolTCP  uint8 = 6  // RFC 9293
	IPv4ProtocolUDP  uint8 = 17 // RFC 768
)

// Field offsets (RFC 791 section 3.1).
const (
	ipv4VersionIHL   = 0
	ipv4TOS          = 1
	ipv4TotalLength  = 2
	ipv4ID           = 4
	ipv4FlagsFragOff = 6
	ipv4TTL          = 8
	ipv4Protocol     = 9
	ipv4Checksum     = 10
	ipv4Src          = 12
	ipv4Dst          = 16

	ipv4FragOffMask = 0x1fff // low 13 bits of the flags/offset word
)

// IPv4 is an IPv4 header, and usually the rest of the datagram after it,
// stored in a byte slice (RFC 791 section 3.1). See the package comment for
// what Check guarantees; fixed-offset accessors need IPv4MinSize bytes.
type IPv4 []byte

// Check validates h as the start of a received packet of pktLen bytes
// (normally len(h); more when the rest of the packet is in page fragments,
// but the header itself must lie in h): at least IPv4MinSize
// bytes, version 4, IHL of at least 5 within the packet, a correct header
// checksum, and a total length neither beyond the packet nor below the
// header. It returns nil or one of the ErrIPv4 errors, in the order of
// Linux's ip_rcv_core: a short or truncated packet gives ErrIPv4Truncated
// only when the header itself was sound. It never panics.
func (h IPv4) Check(pktLen int) error {
	n := min(pktLen, len(h))
	if n < IPv4MinSize {
		return ErrIPv4Short
	}
	if h.Version() != IPv4Version {
		return ErrIPv4Version
	}
	hl := h.HeaderLength()
	if hl < IPv4MinSize || hl > n {
		return ErrIPv4IHL
	}
	if Checksum(h[:hl], 0) != 0xffff {
		return ErrIPv4Checksum
	}
	// The total length is checked against the whole packet, which may be
	// longer than h when the rest of it is in page fragments (a nonlinear
	// skb); the header itself must lie in h.
	tl := int(h.TotalLength())
	if tl > pktLen {
		return ErrIPv4Truncated
	}
	if tl < hl {
		return ErrIPv4Length
	}
	return nil
}

// IsValid reports whether Check(pktLen) passes.
func (h IPv4) IsValid(pktLen int) bool { return h.Check(pktLen) == nil }

// Version is the 4-bit version field (4 for IPv4).
func (h IPv4) Version() uint8 { return h[ipv4VersionIHL] >> 4 }

// IHL is the 4-bit Internet Header Length field, in 32-bit words.
func (h IPv4) IHL() uint8 { return h[ipv4VersionIHL] & 0xf }

// HeaderLength is the header length in bytes (IHL * 4), options included.
func (h IPv4) HeaderLength() int { return int(h.IHL()) * 4 }

// TOS is the type-of-service byte: DSCP in the high 6 bits and ECN in the
// low 2 (RFC 2474, RFC 3168).
func (h IPv4) TOS() uint8 { return h[ipv4TOS] }

// TotalLength is the datagram's length in bytes, header included.
func (h IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(h[ipv4TotalLength:]) }

// ID is the identification field, which groups fragments (RFC 6864).
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[ipv4ID:]) }

// Flags is the 3-bit flags field: a combination of IPv4FlagDontFragment,
// IPv4FlagMoreFragments and IPv4FlagReserved.
func (h IPv4) Flags() uint8 { return h[ipv4FlagsFragOff] >> 5 }

// MoreFragments reports the MF flag: fragments of this datagram follow.
func (h IPv4) MoreFragments() bool { return h.Flags()&IPv4FlagMoreFragments != 0 }

// DontFragment reports the DF flag.
func (h IPv4) DontFragment() bool { return h.Flags()&IPv4FlagDontFragment != 0 }

// FragmentOffset is the position of this fragment's data in the original
// datagram, in bytes (the field counts 8-byte units).
func (h IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(h[ipv4FlagsFragOff:])&ipv4FragOffMask) * 8
}

// TTL is the time to live.
func (h IPv4) TTL() uint8 { return h[ipv4TTL] }

// Protocol is the protocol of the payload (IPv4ProtocolTCP, ...).
func (h IPv4) Protocol() uint8 { return h[ipv4Protocol] }

// Checksum is the header checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[ipv4Checksum:]) }

// SrcAddr is the source address. It does not allocate.
func (h IPv4) SrcAddr() netip.Addr { return netip.AddrFrom4([4]byte(h[ipv4Src : ipv4Src+4])) }

// DstAddr is the destination address. It does not allocate.
func (h IPv4) DstAddr() netip.Addr { return netip.AddrFrom4([4]byte(h[ipv4Dst : ipv4Dst+4])) }

// Options returns the option bytes between the fixed header and
// HeaderLength (RFC 791 section 3.1, "Options"), clamped to h.
func (h IPv4) Options() []byte {
	end := min(max(h.HeaderLength(), IPv4MinSize), len(h))
	return h[IPv4MinSize:end]
}

// Payload returns the data after the header up to TotalLength, clamped to
// h, so link-layer padding is excluded.
func (h IPv4) Payload() []byte {
	start := min(h.HeaderLength(), len(h))
	end := min(max(int(h.TotalLength()), start), len(h))
	return h[start:end]
}

// SetHeaderLength sets IHL from a length in bytes (a multiple of 4 from 20
// to 60), keeping the version.
func (h IPv4) SetHeaderLength(n int) {
	h[ipv4VersionIHL] = h[ipv4VersionIHL]&0xf0 | uint8(n/4)&0xf
}

// SetTOS sets the type-of-service byte.
func (h IPv4) SetTOS(tos uint8) { h[ipv4TOS] = tos }

// SetTotalLength sets the total length.
func (h IPv4) SetTotalLength(n uint16) { binary.BigEndian.PutUint16(h[ipv4TotalLength:], n) }

// SetID sets the identification field.
func (h IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(h[ipv4ID:], id) }

// SetFragment sets the fragment offset (in bytes, a multiple of 8; the
// remainder is dropped) and the MF and DF flags. The reserved flag is
// cleared.
func (h IPv4) SetFragment(offset int, more, dontFragment bool) {
	v := uint16(offset/8) & ipv4FragOffMask
	if more {
		v |= uint16(IPv4FlagMoreFragments) << 13
	}
	if dontFragment {
		v |= uint16(IPv4FlagDontFragment) << 13
	}
	binary.BigEndian.PutUint16(h[ipv4FlagsFragOff:], v)
}

// SetTTL sets the time to live. The checksum is not updated; see
// DecrementTTL.
func (h IPv4) SetTTL(ttl uint8) { h[ipv4TTL] = ttl }

// SetProtocol sets the protocol field.
func (h IPv4) SetProtocol(p uint8) { h[ipv4Protocol] = p }

// SetChecksum sets the header checksum field.
func (h IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[ipv4Checksum:], c) }

// SetSrcAddr sets the source address (an address that is not IPv4 is
// written as 0.0.0.0).
func (h IPv4) SetSrcAddr(a netip.Addr) {
	b := addr4(a)
	copy(h[ipv4Src:ipv4Src+4], b[:])
}

// SetDstAddr sets the destination address (an address that is not IPv4 is
// written as 0.0.0.0).
func (h IPv4) SetDstAddr(a netip.Addr) {
	b := addr4(a)
	copy(h[ipv4Dst:ipv4Dst+4], b[:])
}

// CalculateChecksum returns the header checksum to store: the complement of
// the sum over the HeaderLength bytes of the header, computed as if the
// checksum field were zero (RFC 791 section 3.1, "Header Checksum").
func (h IPv4) CalculateChecksum() uint16 {
	hl := min(max(h.HeaderLength(), IPv4MinSize), len(h))
	return ^Checksum(h[ipv4Checksum+2:hl], Checksum(h[:ipv4Checksum], 0))
}

// IsChecksumValid reports whether the header checksum is right.
func (h IPv4) IsChecksumValid() bool {
	hl := min(max(h.HeaderLength(), IPv4MinSize), len(h))
	return Checksum(h[:hl], 0) == 0xffff
}

// DecrementTTL lowers the TTL by one and updates the checksum
// incrementally (RFC 1624; RFC 1812 section 5.3.1 for the decrement). The
// caller checks that the TTL was above 1 first.
func (h IPv4) DecrementTTL() {
	old := binary.BigEndian.Uint16(h[ipv4TTL:]) // TTL and protocol share a word
	h[ipv4TTL]--
	h.SetChecksum(ChecksumUpdate(h.Checksum(), old, binary.BigEndian.Uint16(h[ipv4TTL:])))
}

// IPv4Fields are the values an IPv4 header is built from (Encode) or read
// into (Fields).
type IPv4Fields struct {
	TOS            uint8      // type of service (DSCP and ECN)
	TotalLength    uint16     // header plus data, in bytes
	ID             uint16     // identification
	DontFragment   bool       // DF flag
	MoreFragments  bool       // MF flag
	FragmentOffset int        // in bytes, a multiple of 8
	TTL            uint8      // time to live
	Protocol       uint8      // IPv4ProtocolTCP, ...
	Src, Dst       netip.Addr // IPv4 addresses
	// Options are written after the fixed header, padded with zeros
	// (end-of-options) to a multiple of 4 bytes; at most
	// IPv4MaxOptionsSize bytes.
	Options []byte
}

// Fields returns h's fields. Options aliases h. The reserved flag is not
// represented.
func (h IPv4) Fields() IPv4Fields {
	return IPv4Fields{
		TOS:            h.TOS(),
		TotalLength:    h.TotalLength(),
		ID:             h.ID(),
		DontFragment:   h.DontFragment(),
		MoreFragments:  h.MoreFragments(),
		FragmentOffset: h.FragmentOffset(),
		TTL:            h.TTL(),
		Protocol:       h.Protocol(),
		Src:            h.SrcAddr(),
		Dst:            h.DstAddr(),
		Options:        h.Options(),
	}
}

// EncodedLen returns the header length Encode writes for f: IPv4MinSize
// plus the options rounded up to a multiple of 4.
func (f *IPv4Fields) EncodedLen() int { return IPv4MinSize + (len(f.Options)+3)&^3 }

// Encode writes a complete header from f at the start of h, version 4 and
// IHL from the options, with its checksum. h must hold f.EncodedLen() bytes
// and f.Options must not exceed IPv4MaxOptionsSize; Encode panics
// otherwise, as both are programming errors. The payload is not touched.
func (h IPv4) Encode(f *IPv4Fields) {
	if len(f.Options) > IPv4MaxOptionsSize {
		panic("header: IPv4 options longer than 40 bytes")
	}
	hl := f.EncodedLen()
	_ = h[hl-1] // one bounds check for all the writes below
	h[ipv4VersionIHL] = IPv4Version<<4 | uint8(hl/4)
	h[ipv4TOS] = f.TOS
	h.SetTotalLength(f.TotalLength)
	h.SetID(f.ID)
	h.SetFragment(f.FragmentOffset, f.MoreFragments, f.DontFragment)
	h[ipv4TTL] = f.TTL
	h[ipv4Protocol] = f.Protocol
	h.SetSrcAddr(f.Src)
	h.SetDstAddr(f.Dst)
	n := copy(h[IPv4MinSize:hl], f.Options)
	clear(h[IPv4MinSize+n : hl])
	h.SetChecksum(h.CalculateChecksum())
}

// The ECN field, the low two bits of TOS (RFC 3168 section 5). Mirrors
// enum INET_ECN_* (include/net/inet_ecn.h).
const (
	ECNMask   = 3 // INET_ECN_MASK
	ECNNotECT = 0 // INET_ECN_NOT_ECT: not ECN-capable
	ECNECT1   = 1 // INET_ECN_ECT_1
	ECNECT0   = 2 // INET_ECN_ECT_0
	ECNCE     = 3 // INET_ECN_CE: congestion experienced
)

// SetCE marks an ECN-capable packet Congestion Experienced, adjusting the
// header checksum incrementally (RFC 1624), and reports whether it did: a
// Not-ECT packet is left alone. Mirrors IP_ECN_set_ce.
func (h IPv4) SetCE() bool {
	tos := h[ipv4TOS]
	if tos&ECNMask == ECNNotECT {
		return false
	}
	if tos&ECNMask == ECNCE {
		return true
	}
	// The TOS byte is the low half of the first 16-bit word.
	oldWord := uint16(h[0])<<8 | uint16(tos)
	h[ipv4TOS] = tos | ECNCE
	newWord := oldWord | ECNCE
	sum := ^h.Checksum()
	sum = CombineChecksums(sum, ^oldWord)
	sum = CombineChecksums(sum, newWord)
	h.SetChecksum(^sum)
	return true
}
