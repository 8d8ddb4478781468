package header

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Checksum returns the 16-bit one's complement sum (RFC 1071) of b, added
// to initial, folded to 16 bits and not complemented. Partial sums chain:
// Checksum(b, Checksum(a, 0)) equals the sum over a followed by b when
// len(a) is even (an odd-length piece is padded with a zero byte, so it
// must come last). The value to store in a checksum field is ^sum; a
// received packet whose sum, checksum field included, is 0xffff is intact.
//
// It reads 32 bytes per iteration as four 64-bit words chained through
// bits.Add64's carry, and folds once at the end. The words are read in
// little-endian (native) order and the result is byte-swapped once: the
// one's complement sum is independent of byte order (RFC 1071 section
// 2(B)), so this avoids a byte swap per word. It does not allocate.
func Checksum(b []byte, initial uint16) uint16 {
	sum := uint64(bits.ReverseBytes16(initial))
	var carry uint64
	for len(b) >= 32 {
		sum, carry = bits.Add64(sum, binary.LittleEndian.Uint64(b[0:8]), carry)
		sum, carry = bits.Add64(sum, binary.LittleEndian.Uint64(b[8:16]), carry)
		sum, carry = bits.Add64(sum, binary.LittleEndian.Uint64(b[16:24]), carry)
		sum, carry = bits.Add64(sum, binary.LittleEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		sum, carry = bits.Add64(sum, binary.LittleEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	// The last 0 to 7 bytes, as one little-endian word padded with zeros:
	// a lone last byte lands in the low half of a 16-bit lane, which is the
	// high (first) byte of a big-endian word padded with zero, as RFC 1071
	// pads an odd length.
	var tail uint64
	shift := uint(0)
	if len(b) >= 4 {
		tail = uint64(binary.LittleEndian.Uint32(b[0:4]))
		b = b[4:]
		shift = 32
	}
	if len(b) >= 2 {
		tail |= uint64(binary.LittleEndian.Uint16(b[0:2])) << shift
		b = b[2:]
		shift += 16
	}
	if len(b) == 1 {
		tail |= uint64(b[0]) << shift
	}
	sum, carry = bits.Add64(sum, tail, carry)
	// End-around carry: 2^64 is 1 modulo 2^64-1. When the add below
	// carries out, sum is 0, so adding that carry cannot overflow.
	sum, carry = bits.Add64(sum, 0, carry)
	sum += carry
	return bits.ReverseBytes16(fold64(sum))
}

// fold64 folds a 64-bit one's complement sum to 16 bits. Each step adds
// the high half to the low half; two steps per halving suffice because the
// first leaves at most a carry of one.
func fold64(s uint64) uint16 {
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}

// CombineChecksums returns the one's complement sum of two partial sums, as
// returned by Checksum (RFC 1071 section 2(C): sums of even-length pieces
// may be added in any order).
func CombineChecksums(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderChecksum returns the uncomplemented sum of the IPv4
// pseudo-header that UDP (RFC 768) and TCP (RFC 9293 section 3.1) prepend
// to their checksum: source and destination addresses, a zero byte, the
// protocol and the transport length (header plus data). Pass it as the
// initial value of Checksum over the transport header and data. With an
// IPv6 source (not IPv4-mapped) it is the IPv6 pseudo-header of RFC 8200
// 8.1 instead, as tcp_v6_check differs from tcp_v4_check only there; an
// IPv4 source with a destination of the other family counts it as 0.0.0.0.
func PseudoHeaderChecksum(protocol uint8, src, dst netip.Addr, length uint16) uint16 {
	if src.Is6() && !src.Is4In6() {
		return pseudoHeaderChecksum6(protocol, src, dst, uint32(length))
	}
	s, d := addr4(src), addr4(dst)
	sum := uint32(binary.BigEndian.Uint16(s[0:2])) + uint32(binary.BigEndian.Uint16(s[2:4])) +
		uint32(binary.BigEndian.Uint16(d[0:2])) + uint32(binary.BigEndian.Uint16(d[2:4])) +
		uint32(protocol) + uint32(length)
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// pseudoHeaderChecksum6 is the IPv6 pseudo-header sum (RFC 8200 8.1):
// both addresses, the 32-bit upper-layer length and the next header.
// Mirrors csum_ipv6_magic without the final fold and complement.
func pseudoHeaderChecksum6(protocol uint8, src, dst netip.Addr, length uint32) uint16 {
	s, d := src.As16(), dst.As16()
	sum := uint32(protocol) + length>>16 + length&0xffff
	for i := 0; i < 16; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(s[i:])) + uint32(binary.BigEndian.Uint16(d[i:]))
	}
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// addr4 returns a's four bytes, or zeros if a is not an IPv4 address, so
// that no input makes netip.Addr.As4 panic.
func addr4(a netip.Addr) [4]byte {
	if a.Is4() || a.Is4In6() {
		return a.As4()
	}
	return [4]byte{}
}

// ChecksumUpdate returns the checksum field value after one 16-bit aligned
// word covered by it changed from old to new, without summing the packet
// again: RFC 1624 section 3, equation 3, HC' = ~(~HC + ~m + m'). RFC 1624
// shows this form right in every case, where the older RFC 1141 form can
// give 0x0000 instead of 0xffff at the boundary. Use it for a TTL decrement
// or an address or port rewrite (once per changed word).
func ChecksumUpdate(xsum, old, new uint16) uint16 {
	return ^CombineChecksums(CombineChecksums(^xsum, ^old), new)
}
