package netstack

import (
	"encoding/binary"
	"net/netip"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// IPv6 (RFC 8200) for a host: input validation, the extension header chain,
// reassembly (ipfrag.go, shared with IPv4), local delivery, output and
// fragmentation. sockfs never forwards, so a packet that is not for one of
// its addresses is dropped and counted, as Linux does with forwarding off.

// ip6MaxOpts is how many options (padding excluded) one hop-by-hop or
// destination options header may carry: the default of Linux's sysctls
// max_hbh_opts_number and max_dst_opts_number (IP6_DEFAULT_MAX_HBH_OPTS_CNT).
const ip6MaxOpts = 8

// ip6Rcv validates a received IPv6 packet (data at the IPv6 header), trims
// link padding, walks its extension headers, reassembles fragments and
// hands the packet to its upper-layer protocol. It owns b. Malformed packets
// are dropped and counted in the Ip6 group. Mirrors ipv6_rcv / ip6_rcv_core
// / ip6_rcv_finish / ip6_input_finish.
func (s *Stack) ip6Rcv(dev *NetDevice, b *skb.SKB, rx *rxBatch) {
	s.mib.Inc(memctl.Ip6InReceives)
	s.mib.Add(memctl.Ip6InOctets, uint64(b.Len()))
	h := header.IPv6(b.Data())
	switch h.Check(b.Len()) {
	case nil:
	case header.ErrIPv6Truncated:
		s.mib.Inc(memctl.Ip6InTruncatedPkts)
		b.Free()
		return
	default:
		s.mib.Inc(memctl.Ip6InHdrErrors)
		b.Free()
		return
	}
	s.mib.Add(memctl.Ip6InNoECTPkts+memctl.Counter(h.TrafficClass()&3), uint64(max(b.Shared().GSOSegs, 1)))
	src, dst := h.SrcAddr(), h.DstAddr()
	onLo := s.isLoopbackDev(dev)
	// ip6_rcv_core's address rules: loopback addresses never on the wire
	// (RFC 4291 2.5.3), no interface-local (scope 1) or reserved-scope (0)
	// multicast destination from a link (RFC 4291 2.7, errata 3480), never
	// a multicast source.
	if (src.IsLoopback() || dst.IsLoopback()) && !onLo ||
		dst.IsMulticast() && (header.IPv6MulticastScope(dst) == 0 || header.IPv6MulticastScope(dst) == 1 && !onLo) ||
		src.IsMulticast() {
		s.mib.Inc(memctl.Ip6InHdrErrors)
		b.Free()
		return
	}
	if n := header.IPv6MinSize + int(h.PayloadLength()); n < b.Len() {
		b.Trim(n) // pskb_trim_rcsum: link-layer padding
	}
	b.SetNetworkHeader()
	mcast := dst.IsMulticast()
	switch {
	case mcast && header.IPv6IsLinkLocalMulticast(dst):
		// ip6_mc_input. Deviation: every link-scope group is accepted
		// (for ICMPv6 only, below), not just those joined, so that the
		// kernel's router solicitations (ff02::2) and MLDv2 reports
		// (ff02::16) are counted by type before they are dropped.
		s.mib.Inc(memctl.Ip6InMcastPkts)
		s.mib.Add(memctl.Ip6InMcastOctets, uint64(b.Len()))
	case !mcast && s.isLocalAddr(dst):
	default:
		// A host does not forward (forwarding = 0): ip6_forward's
		// IPSTATS_MIB_INADDRERRORS.
		s.mib.Inc(memctl.Ip6InAddrErrors)
		b.Free()
		return
	}
	s.ip6ParseExthdrs(b, rx)
}

// isLoopbackDev reports whether dev is the stack's loopback device.
func (s *Stack) isLoopbackDev(dev *NetDevice) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return dev != nil && dev == s.lo
}

// ip6ParseExthdrs walks the extension header chain of b (data at the IPv6
// header) and delivers the upper-layer payload. Hop-by-hop options must
// come first; the others are each handled as Linux's inet6_protos handlers
// do (ipv6_destopt_rcv, ipv6_rthdr_rcv, ipv6_frag_rcv). The walk ends:
// every header moves the offset forward by at least 8 bytes, and a header
// past the packet is an error, so any number of destination options
// headers is taken, as in Linux. Deviation: Linux takes any number of
// routing headers too; sockfs takes at most one routing and one fragment
// header and counts a longer chain in Ip6InHdrErrors. Mirrors
// ip6_protocol_deliver_rcu's loop.
func (s *Stack) ip6ParseExthdrs(b *skb.SKB, rx *rxBatch) {
	off := header.IPv6MinSize
	nhoff := header.IPv6NextHeaderOffset
	nh := header.IPv6(b.Data()).NextHeader()
	rts, frags := 0, 0
	for {
		data := b.Data()
		switch nh {
		case header.IPv6NextTCP, header.IPv6NextUDP, header.IPv6NextICMP:
			s.ip6Deliver(b, nh, off, rx)
			return
		case header.IPv6NextNone:
			// Nothing follows: nodata_protocol's handler, dst_discard,
			// returns 0, which ip6_protocol_deliver_rcu counts as a
			// delivery.
			s.mib.Inc(memctl.Ip6InDelivers)
			b.Free()
			return
		case header.IPv6NextHopByHop, header.IPv6NextDestOpts, header.IPv6NextRouting, header.IPv6NextFragment:
		default:
			s.ip6UnknownProto(b, nhoff)
			return
		}
		if nh == header.IPv6NextHopByHop && off != header.IPv6MinSize {
			// Only right after the fixed header (RFC 8200 4.3): elsewhere
			// it has no handler, as in Linux.
			s.ip6UnknownProto(b, nhoff)
			return
		}
		n, ok := header.IPv6ExtHeaderLen(nh, data[min(off, len(data)):])
		if !ok || off+n > b.HeadLen() {
			// pskb_may_pull failed: the header runs past the packet (or,
			// a deviation, past the linear part, where sockfs does not
			// look for headers).
			s.mib.Inc(memctl.Ip6InHdrErrors)
			if nh == header.IPv6NextFragment { // ipv6_frag_rcv's fail_hdr
				s.icmpv6ParamProb(b, header.ICMPv6ErroneousField, off)
			}
			b.Free()
			return
		}
		ext := data[off : off+n]
		switch nh {
		case header.IPv6NextHopByHop, header.IPv6NextDestOpts:
			if !s.ip6ParseTLV(b, off, ext, nh == header.IPv6NextHopByHop) {
				s.mib.Inc(memctl.Ip6InHdrErrors)
				b.Free()
				return
			}
		case header.IPv6NextRouting:
			if rts++; rts > 1 {
				s.ip6ChainTooLong(b)
				return
			}
			// ipv6_rthdr_rcv: never to a multicast destination
			// (InAddrErrors). A segment routing header (type 4,
			// ipv6_srh_rcv) or RPL one (type 3, ipv6_rpl_srh_rcv) is
			// dropped silently and uncounted, whatever its segments
			// left, as with seg6_enabled and rpl_seg_enabled at their
			// default 0. A host is never a waypoint: with segments
			// left, any other type is refused with a parameter problem
			// (type 0 as RFC 5095 requires, type 2 because sockfs is no
			// mobile node).
			rh := header.IPv6Routing(ext)
			if header.IPv6(data).DstAddr().IsMulticast() {
				s.mib.Inc(memctl.Ip6InAddrErrors)
				b.Free()
				return
			}
			if t := rh.RoutingType(); t == ipv6SrcrtType4 || t == ipv6SrcrtType3 {
				b.Free()
				return
			}
			if rh.SegmentsLeft() != 0 {
				s.mib.Inc(memctl.Ip6InHdrErrors)
				s.icmpv6ParamProb(b, header.ICMPv6ErroneousField, off+header.IPv6RoutingTypeOffset)
				b.Free()
				return
			}
		case header.IPv6NextFragment:
			if frags++; frags > 1 {
				s.ip6ChainTooLong(b)
				return
			}
			fh := header.IPv6Fragment(ext)
			s.mib.Inc(memctl.Ip6ReasmReqds)
			if fh.FragmentOffset() != 0 || fh.MoreFragments() {
				r := s.ip6FragRcv(b, off, nhoff)
				if r == nil {
					return // kept for reassembly, or dropped and counted
				}
				b = r
				cb := fragcb(b)
				b.SetNetworkHeader()
				off, nhoff = cb.fhoff, cb.nhoff
				nh = b.Data()[nhoff]
				continue
			}
			// An atomic fragment (offset 0, no M flag) is processed on
			// its own and never joins a reassembly queue (RFC 6946,
			// RFC 8021): ipv6_frag_rcv counts it reassembled.
			s.mib.Inc(memctl.Ip6ReasmOKs)
		}
		nh = ext[0]
		nhoff = off
		off += n
	}
}

// Routing header types that have their own handlers in ipv6_rthdr_rcv
// (IPV6_SRCRT_TYPE_3, IPV6_SRCRT_TYPE_4).
const (
	ipv6SrcrtType3 = 3 // RPL source route (RFC 6554)
	ipv6SrcrtType4 = 4 // segment routing header (RFC 8754)
)

// ip6ChainTooLong drops a packet with a second routing or fragment header
// (see ip6ParseExthdrs).
func (s *Stack) ip6ChainTooLong(b *skb.SKB) {
	s.mib.Inc(memctl.Ip6InHdrErrors)
	b.Free()
}

// ip6UnknownProto answers a packet whose next header (named by the byte at
// nhoff) nothing handles: a parameter problem pointing at that byte, and
// Ip6InUnknownProtos. Mirrors ip6_protocol_deliver_rcu's unknown case.
func (s *Stack) ip6UnknownProto(b *skb.SKB, nhoff int) {
	s.mib.Inc(memctl.Ip6InUnknownProtos)
	s.icmpv6ParamProb(b, header.ICMPv6UnknownNextHdr, nhoff)
	b.Free()
}

// ip6ParseTLV processes the options of the hop-by-hop (hbh) or destination
// options header ext, at offset off in b. It reports whether the packet may
// go on; when it may not, it has sent the parameter problem an option's
// action bits ask for (RFC 8200 4.2), and the caller counts the drop.
// Known options: router alert (RFC 2711, in hop-by-hop). A jumbo payload
// option is refused as ipv6_hop_jumbo refuses it with a non-zero payload
// length (sockfs's links carry at most 64 KiB, so it can only be wrong).
// Mirrors ip6_parse_tlv.
func (s *Stack) ip6ParseTLV(b *skb.SKB, off int, ext []byte, hbh bool) bool {
	it := header.IPv6Options{H: ext}
	count := 0
	for {
		opt, ok, err := it.Next()
		if err != nil {
			return false
		}
		if !ok {
			return true
		}
		if count++; count > ip6MaxOpts {
			return false
		}
		switch {
		case hbh && opt.Type == header.IPv6OptRouterAlert:
			if len(opt.Data) != 2 { // ipv6_hop_ra
				return false
			}
		case hbh && opt.Type == header.IPv6OptJumbo:
			// ipv6_hop_jumbo: a wrong length or alignment is dropped;
			// a jumbo length that fits the payload length field is an
			// error at the length, a non-zero payload length one at
			// the option (optoff). The payload length is never zero
			// here: ip6Rcv trims the packet to it, which leaves no
			// room for the hop-by-hop header.
			optoff := off + opt.Offset
			if len(opt.Data) != 4 || optoff&3 != 2 {
				return false
			}
			if binary.BigEndian.Uint32(opt.Data) <= header.IPv6MaxPayload {
				s.icmpv6ParamProb(b, header.ICMPv6ErroneousField, optoff+2)
			} else {
				s.icmpv6ParamProb(b, header.ICMPv6ErroneousField, optoff)
			}
			return false
		default:
			// ip6_tlvopt_unknown: the two high bits say what to do.
			switch opt.Type >> 6 {
			case 0: // skip it
			case 1: // discard silently
				return false
			case 2: // discard, tell the source even for multicast
				s.icmpv6ParamProbMcast(b, header.ICMPv6UnknownOption, off+opt.Offset)
				return false
			case 3: // discard, tell the source unless multicast
				if !header.IPv6(b.Data()).DstAddr().IsMulticast() {
					s.icmpv6ParamProb(b, header.ICMPv6UnknownOption, off+opt.Offset)
				}
				return false
			}
		}
	}
}

// ip6Deliver hands the upper-layer payload at off (protocol nh) to TCP,
// UDP or ICMPv6. Multicast is delivered to ICMPv6 only (sockfs has no
// multicast sockets). Mirrors ip6_protocol_deliver_rcu's final handlers.
func (s *Stack) ip6Deliver(b *skb.SKB, nh uint8, off int, rx *rxBatch) {
	h := header.IPv6(b.Data())
	src, dst := h.SrcAddr(), h.DstAddr()
	if dst.IsMulticast() && nh != header.IPv6NextICMP {
		s.mib.Inc(memctl.Ip6InDiscards)
		b.Free()
		return
	}
	s.mib.Inc(memctl.Ip6InDelivers)
	b.Pull(off)
	switch nh {
	case header.IPv6NextTCP:
		s.tcpRcv(b, src, dst, h.TrafficClass(), rx)
	case header.IPv6NextUDP:
		s.udpRcv(b, src, dst, dst.IsMulticast())
	case header.IPv6NextICMP:
		s.icmpv6Rcv(b, src, dst)
	}
}

// ip6FragRcv queues the fragment b (data at the IPv6 header) whose
// fragment header is at off, named by the byte at nhoff. It returns the
// reassembled packet (its fragCB says where the parse goes on) when this
// fragment completes one, else nil. Mirrors ipv6_frag_rcv / ip6_frag_queue.
func (s *Stack) ip6FragRcv(b *skb.SKB, off, nhoff int) *skb.SKB {
	data := b.Data()
	h := header.IPv6(data)
	fh := header.IPv6Fragment(data[off:])
	// RFC 8200 4.5: a first fragment must hold every header up to and
	// including the upper-layer header (ipv6frag_thdr_truncated).
	if fh.FragmentOffset() == 0 && ip6FragHeadersTruncated(data, off, b.Len()) {
		s.mib.Inc(memctl.Ip6InHdrErrors)
		s.icmpv6ParamProb(b, header.ICMPv6HeaderIncomplete, 0)
		b.Free()
		return nil
	}
	start := off + header.IPv6FragmentSize
	frag := fh.FragmentOffset()
	end := frag + b.Len() - start
	more := fh.MoreFragments()
	// ip6_frag_queue's own checks, answered with a parameter problem: a
	// datagram longer than IPV6_MAXPLEN, and a fragment other than the
	// last whose length is not a multiple of 8.
	if end > header.IPv6MaxPayload {
		s.mib.Inc(memctl.Ip6InHdrErrors)
		s.icmpv6ParamProb(b, header.ICMPv6ErroneousField, off+2)
		b.Free()
		return nil
	}
	if more && end&7 != 0 {
		s.mib.Inc(memctl.Ip6InHdrErrors)
		s.icmpv6ParamProb(b, header.ICMPv6ErroneousField, 4) // offsetof(struct ipv6hdr, payload_len)
		b.Free()
		return nil
	}
	t := &s.frags6
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.findLocked(fragKey{src: h.SrcAddr(), dst: h.DstAddr(), id: fh.ID()})
	if q == nil {
		b.Free()
		return nil
	}
	cb := fragcb(b)
	cb.fhoff, cb.nhoff = off, nhoff
	if !t.insertLocked(q, b, frag, end, header.IPv6MaxPayload, more) {
		return nil
	}
	return t.fam.reasm(t, q)
}

// ip6FragHeadersTruncated reports whether the first fragment data (its
// fragment header at off, the packet pktLen bytes) lacks part of the
// headers up to the upper-layer header's first bytes (a TCP, UDP or ICMPv6
// header's fixed part, one byte of anything else). Mirrors
// ipv6frag_thdr_truncated over ipv6_skip_exthdr.
func ip6FragHeadersTruncated(data []byte, off, pktLen int) bool {
	nh := header.IPv6Fragment(data[off:]).NextHeader()
	off += header.IPv6FragmentSize
	for header.IPv6IsExtHeader(nh) {
		if nh == header.IPv6NextNone {
			return false
		}
		if nh == header.IPv6NextFragment {
			return true // a fragment header inside a fragment
		}
		if off >= len(data) {
			return true
		}
		n, ok := header.IPv6ExtHeaderLen(nh, data[off:])
		if !ok {
			return true
		}
		nh = data[off]
		off += n
	}
	switch nh {
	case header.IPv6NextTCP:
		off += header.TCPMinSize
	case header.IPv6NextUDP:
		off += header.UDPMinSize
	case header.IPv6NextICMP:
		off += header.ICMPv6MinSize
	default:
		off++
	}
	return off > min(pktLen, len(data))
}

// ipv6Frag is IPv6's reassembly: net.ipv6.ip6frag_*, the Ip6 counters,
// and an ICMPv6 time exceeded when a datagram whose first fragment came
// expires (ip6frag_expire_frag_queue).
var ipv6Frag = fragFamily{
	highThresh: (*memctl.Sysctls).IP6FragHighThresh,
	timeout:    (*memctl.Sysctls).IP6FragTime,
	fails:      memctl.Ip6ReasmFails,
	oks:        memctl.Ip6ReasmOKs,
	timeouts:   memctl.Ip6ReasmTimeout,
	overlaps:   -1,
	reasm:      (*ipfragTable).reasm6Locked,
	expireFirst: func(s *Stack, first *skb.SKB) {
		s.icmpv6Send(first, header.ICMPv6TimeExceeded, header.ICMPv6ReassemblyTimeout, 0, false)
		first.Free()
	},
}

// Frag6Stats returns the IPv6 datagrams being reassembled and the memory
// they hold (sockstat6's FRAG6 inuse and memory).
func (s *Stack) Frag6Stats() (queues, mem int) { return s.frags6.Queues(), s.frags6.Mem() }

// ip6Output prepends an IPv6 header to b (data at the transport header,
// headroom reserved), fragments it if it exceeds the route's MTU, and
// transmits it (or, with q, queues a packet that needs no fragmenting).
// owner, if not nil, is the socket fragments are charged to. It owns b.
// Mirrors ip6_xmit / ip6_finish_output / ip6_fragment.
func (s *Stack) ip6Output(b *skb.SKB, rt Route, src, dst netip.Addr, proto uint8, hoplimit, tclass uint8, owner *memctl.Sock, q *xmitQueue) error {
	s.mib.Inc(memctl.Ip6OutRequests)
	mtu, _ := s.pathMTU(rt, dst) // ip6_mtu: the route's, or a packet too big's
	plen := b.Len()
	if plen > header.IPv6MaxPayload {
		b.Free()
		return errMsgSize
	}
	gso := b.Shared().GSOSize != 0
	h := header.IPv6(b.Push(header.IPv6MinSize))
	h.Encode(&header.IPv6Fields{
		TrafficClass:  tclass,
		PayloadLength: uint16(plen),
		NextHeader:    proto,
		HopLimit:      hoplimit,
		Src:           src,
		Dst:           dst,
	})
	b.SetNetworkHeader()
	total := b.Len()
	if gso || total <= mtu {
		s.countOut6(total, dst)
	}
	if s.ipFinishOutput(b, rt.Dev, total <= mtu, gso, q) {
		return nil
	}
	return s.ip6Fragment(b, rt.Dev, mtu, owner)
}

// countOut6 counts a packet of n bytes leaving IPv6. Mirrors
// ip6_finish_output2's IP6_UPD_PO_STATS(IPSTATS_MIB_OUT) and its multicast
// counts.
func (s *Stack) countOut6(n int, dst netip.Addr) {
	s.mib.Inc(memctl.Ip6OutTransmits)
	s.mib.Add(memctl.Ip6OutOctets, uint64(n))
	if dst.IsMulticast() {
		s.mib.Inc(memctl.Ip6OutMcastPkts)
		s.mib.Add(memctl.Ip6OutMcastOctets, uint64(n))
	}
}

// ip6Fragment splits b (data at the IPv6 header, no extension headers)
// into fragments that fit mtu, each with a fragment header, charges each to
// owner and transmits them; b is freed. The identification comes from a
// per-stack counter (ipv6_select_ident hashes the addresses with a secret
// into a per-destination counter; one counter is as unpredictable to an
// off-path host and keeps IDs unique per pair, which is what RFC 7739
// asks). Mirrors ip6_fragment's slow path.
func (s *Stack) ip6Fragment(b *skb.SKB, dev *NetDevice, mtu int, owner *memctl.Sock) error {
	if b.IPSummed == skb.ChecksumPartial && (b.Cloned() || !b.ChecksumHelp()) {
		s.mib.Inc(memctl.Ip6FragFails)
		b.Free()
		return errMsgSize
	}
	hdr := header.IPv6(b.Data())
	next := hdr.NextHeader()
	const hlen = header.IPv6MinSize + header.IPv6FragmentSize
	chunk := (mtu - hlen) &^ 7
	if chunk <= 0 {
		s.mib.Inc(memctl.Ip6FragFails)
		b.Free()
		return errMsgSize
	}
	left := b.Len() - header.IPv6MinSize
	id := s.ipv6SelectIdent()
	off := 0
	for left > 0 {
		n := min(chunk, left)
		f := skb.Alloc(llReserved + hlen + n)
		f.Reserve(llReserved)
		fd := f.Put(hlen + n)
		copy(fd, b.Data()[:header.IPv6MinSize])
		fh := header.IPv6(fd)
		fh.SetNextHeader(header.IPv6NextFragment)
		fh.SetPayloadLength(uint16(header.IPv6FragmentSize + n))
		header.IPv6Fragment(fd[header.IPv6MinSize:]).Encode(next, off, left > n, id)
		b.CopyBits(header.IPv6MinSize+off, fd[hlen:])
		f.SetNetworkHeader()
		if owner != nil {
			memctl.SetOwnerW(f, owner)
		}
		s.mib.Inc(memctl.Ip6FragCreates)
		s.countOut6(hlen+n, hdr.DstAddr())
		s.xmit(dev, f)
		off += n
		left -= n
	}
	s.mib.Inc(memctl.Ip6FragOKs)
	b.Free()
	return nil
}

// skbIsV6 reports whether b's network header is IPv6.
func skbIsV6(b *skb.SKB) bool { return b.Head()[b.NetworkHeader]>>4 == header.IPv6Version }

// skbNetAddrs returns the source and destination of a received packet
// from its network header, of either family.
func skbNetAddrs(b *skb.SKB) (src, dst netip.Addr) {
	nh := b.Head()[b.NetworkHeader:]
	if skbIsV6(b) {
		h := header.IPv6(nh)
		return h.SrcAddr(), h.DstAddr()
	}
	h := header.IPv4(nh)
	return h.SrcAddr(), h.DstAddr()
}

// gsoTypeTCP is the GSO type of a TCP super-packet to dst: SKB_GSO_TCPV4
// or SKB_GSO_TCPV6.
func gsoTypeTCP(dst netip.Addr) uint8 {
	if dst.Is6() {
		return skb.GSOTCPv6
	}
	return skb.GSOTCPv4
}

// ipMIBOutNoRoutes is IpOutNoRoutes or Ip6OutNoRoutes.
func ipMIBOutNoRoutes(v6 bool) memctl.Counter {
	if v6 {
		return memctl.Ip6OutNoRoutes
	}
	return memctl.IpOutNoRoutes
}

// icmpPortUnreach answers a datagram b (data after the network header)
// that no socket takes with a port unreachable of its family.
func (s *Stack) icmpPortUnreach(b *skb.SKB) {
	nh := b.Head()[b.NetworkHeader:]
	if nh[0]>>4 == header.IPv6Version {
		n := b.DataOffset() - b.NetworkHeader
		b.Push(n)
		s.icmpv6Send(b, header.ICMPv6DestUnreachable, header.ICMPv6PortUnreachable, 0, false)
		b.Pull(n)
		return
	}
	s.icmpSendDestUnreach(b, header.IPv4(nh), header.ICMPv4PortUnreachable)
}

// ipv6SelectIdent picks the identification of a datagram's fragments: a
// random non-zero 32-bit number for each datagram, whatever its addresses,
// so that neither a destination nor an observer of several can predict
// it. It comes from the stack's seeded generator, so a simulation
// repeats. Mirrors __ipv6_select_ident (get_random_u32_above(0)).
func (s *Stack) ipv6SelectIdent() uint32 {
	for {
		if id := uint32(s.rand()); id != 0 {
			return id
		}
	}
}
