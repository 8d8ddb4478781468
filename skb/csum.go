package skb

// GSO types for Shared.GSOType. Mirrors SKB_GSO_TCPV4, SKB_GSO_DODGY
// (a super-packet from an untrusted source, such as a TUN writer, whose
// gso_segs must be recomputed) and SKB_GSO_TCP_ECN (the first segment
// carries CWR, the others must not).
const (
	GSOTCPv4  = 1 << 0
	GSODodgy  = 1 << 1
	GSOTCPECN = 1 << 2
	// GSOTCPv6 is SKB_GSO_TCPV6: a TCP/IPv6 super-packet.
	GSOTCPv6 = 1 << 4
)

// ChecksumHelp completes the checksum of a ChecksumPartial packet in
// software and marks it ChecksumNone; other packets are left alone. It is
// for the places that must see the real checksum before a device would
// compute it: corrupting the packet (netem does this first), or a device
// without checksum offload. The data must be private (not cloned). It
// reports false if the checksum range does not lie within the packet.
// Mirrors skb_checksum_help.
func (b *SKB) ChecksumHelp() bool {
	if b.IPSummed != ChecksumPartial {
		return true
	}
	start := b.ChecksumStartOffset()
	field := start + int(b.CsumOffset)
	if start < 0 || field+2 > b.HeadLen() {
		return false
	}
	// The field holds the pseudo-header sum, so summing over it adds it in.
	var sum uint32
	odd := false
	add := func(p []byte) {
		for _, c := range p {
			if odd {
				sum += uint32(c)
			} else {
				sum += uint32(c) << 8
			}
			odd = !odd
		}
	}
	add(b.Data()[start:])
	for i := 0; i < b.shared.nrFrags; i++ {
		add(b.shared.frags[i].Bytes())
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff // CSUM_MANGLED_0: 0 means "no checksum" to UDP
	}
	d := b.Data()
	d[field], d[field+1] = byte(c>>8), byte(c)
	b.IPSummed = ChecksumNone
	return true
}
