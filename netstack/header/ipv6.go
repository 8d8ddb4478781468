package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 sizes and field values (RFC 8200 section 3).
const (
	// IPv6MinSize is the size of the fixed header.
	IPv6MinSize = 40
	// IPv6Version is the value of the version field.
	IPv6Version = 6
	// IPv6MinMTU is the smallest MTU a link carrying IPv6 may have (RFC
	// 8200 section 5), and what an ICMPv6 error fits in (RFC 4443 2.4(c)).
	IPv6MinMTU = 1280
	// IPv6MaxPayload is the largest payload without a jumbo option.
	IPv6MaxPayload = 0xffff
)

// Next-header values of IPv6 extension headers and of the upper-layer
// protocols sockfs carries (IANA "Assigned Internet Protocol Numbers";
// Linux's NEXTHDR_*).
const (
	IPv6NextHopByHop uint8 = 0  // NEXTHDR_HOP, RFC 8200 4.3
	IPv6NextTCP      uint8 = 6  // NEXTHDR_TCP
	IPv6NextUDP      uint8 = 17 // NEXTHDR_UDP
	IPv6NextRouting  uint8 = 43 // NEXTHDR_ROUTING, RFC 8200 4.4
	IPv6NextFragment uint8 = 44 // NEXTHDR_FRAGMENT, RFC 8200 4.5
	IPv6NextESP      uint8 = 50 // NEXTHDR_ESP
	IPv6NextAuth     uint8 = 51 // NEXTHDR_AUTH
	IPv6NextICMP     uint8 = 58 // NEXTHDR_ICMP (ICMPv6)
	IPv6NextNone     uint8 = 59 // NEXTHDR_NONE
	IPv6NextDestOpts uint8 = 60 // NEXTHDR_DEST, RFC 8200 4.6
)

// Field offsets (RFC 8200 section 3).
const (
	ipv6VersionTC  = 0
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24
	// IPv6NextHeaderOffset is the offset of the next-header byte in the
	// fixed header (Linux's IP6CB(skb)->nhoff of a packet without
	// extension headers).
	IPv6NextHeaderOffset = ipv6NextHeader
)

// IPv6 is an IPv6 header, and usually the rest of the packet after it,
// stored in a byte slice (RFC 8200 section 3). Accessors need IPv6MinSize
// bytes; Check guarantees them.
type IPv6 []byte

// Check validates h as the start of a received packet of pktLen bytes
// (more than len(h) when the rest is in page fragments): at least
// IPv6MinSize bytes, version 6, and a payload length that does not run
// past the packet. A payload length of 0 is the empty payload: sockfs
// never accepts jumbograms (its links carry at most 64 KiB), so it does
// not read 0 as "see the jumbo option" as RFC 2675 would. The order and
// the errors follow Linux's ip6_rcv_core. It never panics.
func (h IPv6) Check(pktLen int) error {
	if min(pktLen, len(h)) < IPv6MinSize {
		return ErrIPv6Short
	}
	if h.Version() != IPv6Version {
		return ErrIPv6Version
	}
	if IPv6MinSize+int(h.PayloadLength()) > pktLen {
		return ErrIPv6Truncated
	}
	return nil
}

// Version is the 4-bit version field.
func (h IPv6) Version() uint8 { return h[ipv6VersionTC] >> 4 }

// TrafficClass is the traffic class byte: DSCP and ECN, as IPv4's TOS.
func (h IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(h[ipv6VersionTC:]) >> 4)
}

// FlowLabel is the 20-bit flow label.
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[ipv6VersionTC:]) & 0xfffff }

// PayloadLength is the length of what follows the fixed header,
// extension headers included.
func (h IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(h[ipv6PayloadLen:]) }

// NextHeader is the type of the header after the fixed one.
func (h IPv6) NextHeader() uint8 { return h[ipv6NextHeader] }

// HopLimit is the hop limit.
func (h IPv6) HopLimit() uint8 { return h[ipv6HopLimit] }

// SrcAddr is the source address.
func (h IPv6) SrcAddr() netip.Addr { return netip.AddrFrom16([16]byte(h[ipv6Src : ipv6Src+16])) }

// DstAddr is the destination address.
func (h IPv6) DstAddr() netip.Addr { return netip.AddrFrom16([16]byte(h[ipv6Dst : ipv6Dst+16])) }

// SetPayloadLength sets the payload length.
func (h IPv6) SetPayloadLength(n uint16) { binary.BigEndian.PutUint16(h[ipv6PayloadLen:], n) }

// SetNextHeader sets the next-header byte.
func (h IPv6) SetNextHeader(nh uint8) { h[ipv6NextHeader] = nh }

// SetHopLimit sets the hop limit.
func (h IPv6) SetHopLimit(hl uint8) { h[ipv6HopLimit] = hl }

// IPv6Fields are the values of a header to build.
type IPv6Fields struct {
	TrafficClass  uint8
	FlowLabel     uint32
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      netip.Addr
}

// Encode writes f into h (IPv6MinSize bytes).
func (h IPv6) Encode(f *IPv6Fields) {
	binary.BigEndian.PutUint32(h[ipv6VersionTC:], IPv6Version<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	h.SetPayloadLength(f.PayloadLength)
	h[ipv6NextHeader] = f.NextHeader
	h[ipv6HopLimit] = f.HopLimit
	s, d := f.Src.As16(), f.Dst.As16()
	copy(h[ipv6Src:], s[:])
	copy(h[ipv6Dst:], d[:])
}

// IPv6ExtHeaderLen returns the length in bytes of the extension header of
// type nh at the start of b, and false if b is too short to hold it (its
// two first bytes, or the whole header). Hop-by-hop, routing and
// destination options count 8-byte units after the first 8 (RFC 8200
// 4.3, 4.4, 4.6); the fragment header is 8 bytes; AH counts 4-byte units
// after the first 8 (RFC 4302 2.2). Mirrors ipv6_optlen / ipv6_authlen.
func IPv6ExtHeaderLen(nh uint8, b []byte) (int, bool) {
	if nh == IPv6NextFragment {
		return IPv6FragmentSize, len(b) >= IPv6FragmentSize
	}
	if len(b) < 2 {
		return 0, false
	}
	n := (int(b[1]) + 1) * 8
	if nh == IPv6NextAuth {
		n = (int(b[1]) + 2) * 4
	}
	return n, len(b) >= n
}

// IPv6IsExtHeader reports whether nh is an extension header Linux's
// ipv6_ext_hdr knows (one ipv6_skip_exthdr walks over).
func IPv6IsExtHeader(nh uint8) bool {
	switch nh {
	case IPv6NextHopByHop, IPv6NextRouting, IPv6NextFragment, IPv6NextAuth, IPv6NextNone, IPv6NextDestOpts:
		return true
	}
	return false
}

// IPv6FragmentSize is the size of the fragment header.
const IPv6FragmentSize = 8

// IPv6Fragment is a fragment extension header (RFC 8200 4.5).
type IPv6Fragment []byte

// NextHeader is the type of the fragmentable part's first header.
func (f IPv6Fragment) NextHeader() uint8 { return f[0] }

// FragmentOffset is the offset of the fragment's data in bytes.
func (f IPv6Fragment) FragmentOffset() int { return int(binary.BigEndian.Uint16(f[2:]) &^ 7) }

// MoreFragments is the M flag.
func (f IPv6Fragment) MoreFragments() bool { return f[3]&1 != 0 }

// ID is the identification.
func (f IPv6Fragment) ID() uint32 { return binary.BigEndian.Uint32(f[4:]) }

// Encode writes a fragment header.
func (f IPv6Fragment) Encode(next uint8, off int, more bool, id uint32) {
	f[0], f[1] = next, 0
	v := uint16(off) &^ 7
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(f[2:], v)
	binary.BigEndian.PutUint32(f[4:], id)
}

// IPv6 options (RFC 8200 4.2), in hop-by-hop and destination options
// headers.
const (
	IPv6OptPad1        uint8 = 0
	IPv6OptPadN        uint8 = 1
	IPv6OptRouterAlert uint8 = 5    // RFC 2711
	IPv6OptJumbo       uint8 = 0xc2 // RFC 2675
)

// IPv6Option is one option of a hop-by-hop or destination options header:
// its type, its data and its offset in the header.
type IPv6Option struct {
	Type   uint8
	Data   []byte
	Offset int
}

// IPv6Options iterates over the options of a hop-by-hop or destination
// options header h (its whole length), padding excluded. Start it with
// IPv6Options{H: h}; it allocates nothing.
type IPv6Options struct {
	H   []byte
	off int
	pad int
}

// Next returns the next option, or ok false at the end of the header. It
// returns ErrIPv6Option when an option runs past the header, or a padding
// is longer than 7 bytes or not zeros (RFC 8200 4.2), which Linux's
// ip6_parse_tlv refuses; the iteration is over then.
func (it *IPv6Options) Next() (opt IPv6Option, ok bool, err error) {
	h := it.H
	if it.off == 0 {
		it.off = 2
	}
	for it.off < len(h) {
		off := it.off
		t := h[off]
		if t == IPv6OptPad1 {
			it.pad++
			it.off++
			if it.pad > 7 {
				return opt, false, ErrIPv6Option
			}
			continue
		}
		if off+2 > len(h) || off+2+int(h[off+1]) > len(h) {
			return opt, false, ErrIPv6Option
		}
		n := int(h[off+1])
		it.off += n + 2
		if t == IPv6OptPadN {
			it.pad += n + 2
			if it.pad > 7 {
				return opt, false, ErrIPv6Option
			}
			for _, c := range h[off+2 : off+2+n] {
				if c != 0 {
					return opt, false, ErrIPv6Option
				}
			}
			continue
		}
		it.pad = 0
		return IPv6Option{Type: t, Data: h[off+2 : off+2+n], Offset: off}, true, nil
	}
	return opt, false, nil
}

// IPv6Routing is a routing header (RFC 8200 4.4).
type IPv6Routing []byte

// RoutingType is the routing type (0 is deprecated by RFC 5095).
func (r IPv6Routing) RoutingType() uint8 { return r[2] }

// SegmentsLeft is the number of segments still to visit.
func (r IPv6Routing) SegmentsLeft() uint8 { return r[3] }

// IPv6RoutingTypeOffset is the offset of the routing type byte in a
// routing header, where a parameter problem about it points.
const IPv6RoutingTypeOffset = 2

// IPv6IsLinkLocalMulticast reports whether a is a multicast address of
// link-local scope (ff02::/16), such as all-nodes ff02::1.
func IPv6IsLinkLocalMulticast(a netip.Addr) bool {
	return a.Is6() && a.IsLinkLocalMulticast()
}

// IPv6MulticastScope is the 4-bit scope of a multicast address (RFC 4291
// 2.7; Linux's IPV6_ADDR_MC_SCOPE).
func IPv6MulticastScope(a netip.Addr) uint8 {
	b := a.As16()
	return b[1] & 0xf
}

// IPv6SolicitedNode returns the solicited-node multicast address of a
// (ff02::1:ffXX:XXXX, RFC 4291 2.7.1).
func IPv6SolicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}
