package netstack

import (
	"context"
	"net/netip"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// ICMPv6 (RFC 4443) and as much Neighbor Discovery (RFC 4861) as a
// point-to-point TUN needs: sockfs answers a neighbor solicitation for one
// of its addresses, and never sends one (on a link without link-layer
// addresses there is nothing to resolve, and the kernel marks a TUN
// IFF_NOARP, so it never asks either). Router solicitations, router
// advertisements, redirects and MLD messages are counted by type and
// dropped: sockfs is neither a router nor a multicast listener.

// icmpv6ErrorRoom is how much of the offending packet an ICMPv6 error
// quotes: the error fits in the IPv6 minimum MTU (RFC 4443 2.4(c)).
const icmpv6ErrorRoom = header.IPv6MinMTU - header.IPv6MinSize - header.ICMPv6MinSize

// ndiscHopLimit is the hop limit every Neighbor Discovery message is sent
// with and must arrive with (RFC 4861 6.1.1, 7.1.1).
const ndiscHopLimit = 255

// icmpv6Count counts an ICMPv6 message of type typ, received or sent, in
// its per-type Icmp6 column if it has one. Mirrors ICMP6MSGIN_INC_STATS /
// ICMP6MSGOUT_INC_STATS.
func (s *Stack) icmpv6Count(typ uint8, out bool) {
	if c, ok := memctl.Icmp6TypeCounter(typ, out); ok {
		s.mib.Inc(c)
	}
}

// icmpv6Rcv handles an ICMPv6 message (data at the ICMPv6 header) from src
// to dst. It owns b. Mirrors icmpv6_rcv.
func (s *Stack) icmpv6Rcv(b *skb.SKB, src, dst netip.Addr) {
	s.mib.Inc(memctl.Icmp6InMsgs)
	m := header.ICMPv6(b.Data())
	if b.Len() != len(m) {
		// Deviation: an ICMPv6 message is checked whole in the linear
		// part; one that is not (over ~3.7 KiB from a TUN) is an error.
		s.mib.Inc(memctl.Icmp6InErrors)
		b.Free()
		return
	}
	switch m.Check(src, dst) {
	case nil:
	case header.ErrICMPv6Checksum:
		s.mib.Inc(memctl.Icmp6InCsumErrors)
		s.mib.Inc(memctl.Icmp6InErrors)
		b.Free()
		return
	default:
		s.mib.Inc(memctl.Icmp6InErrors)
		b.Free()
		return
	}
	typ := m.Type()
	s.icmpv6Count(typ, false)
	switch typ {
	case header.ICMPv6EchoRequest:
		if !s.net.Sysctls.ICMPv6EchoIgnoreAll() {
			s.icmpv6EchoReply(m, src, dst)
		}
	case header.ICMPv6EchoReply:
		s.icmp.pingReply(src, m.Ident(), m.Sequence())
	case header.ICMPv6NeighborSolicit:
		s.ndiscRecvNS(b, m, src, dst)
	case header.ICMPv6DestUnreachable, header.ICMPv6PacketTooBig, header.ICMPv6TimeExceeded, header.ICMPv6ParamProblem:
		s.icmpv6Notify(m)
	default:
		// Router solicitations and advertisements, neighbor
		// advertisements, redirects, MLD queries and reports: counted
		// above, dropped here. An unknown informational type is
		// discarded (RFC 4443 2.4(b)); an unknown error type has no
		// upper layer here to tell.
	}
	b.Free()
}

// icmpv6EchoReply answers an echo request m from src to dst with the same
// identifier, sequence and data, from dst if it is one of ours (from the
// route's source for a multicast request). Mirrors icmpv6_echo_reply.
func (s *Stack) icmpv6EchoReply(m header.ICMPv6, src, dst netip.Addr) {
	rt, ok := s.routeOutput(src)
	if !ok {
		s.mib.Inc(memctl.Icmp6OutErrors)
		return
	}
	from := dst
	if dst.IsMulticast() {
		from = rt.Src
	}
	b := skb.Alloc(llReserved + header.IPv6MinSize + len(m))
	b.Reserve(llReserved + header.IPv6MinSize)
	r := header.ICMPv6(b.Put(len(m)))
	copy(r, m)
	r.SetType(header.ICMPv6EchoReply)
	r.SetCode(0)
	r.Finish(from, src)
	s.icmpv6Out(b, rt, from, src, s.net.Sysctls.IP6HopLimit())
}

// icmpv6Out sends the ICMPv6 message b (data at the ICMPv6 header, its
// checksum done) and counts it. Mirrors icmpv6_push_pending_frames' counts.
func (s *Stack) icmpv6Out(b *skb.SKB, rt Route, src, dst netip.Addr, hoplimit uint8) {
	typ := b.Data()[0]
	s.mib.Inc(memctl.Icmp6OutMsgs)
	s.icmpv6Count(typ, true)
	if err := s.ip6Output(b, rt, src, dst, header.IPv6NextICMP, hoplimit, 0, nil, nil); err != nil {
		s.mib.Inc(memctl.Icmp6OutErrors)
	}
}

// ndiscRecvNS answers a neighbor solicitation m (b holds it) for one of
// our addresses with a solicited neighbor advertisement. A solicitation
// that breaks RFC 4861 7.1.1 (hop limit not 255, a code, too short, a
// multicast target, duplicate address detection to other than the target's
// solicited-node group) is dropped; one from the unspecified address is
// duplicate address detection by a neighbor, which a point-to-point link
// does not need answered. The advertisement carries no target link-layer
// address option: a TUN has no link-layer address (dev->addr_len is 0).
// Mirrors ndisc_recv_ns / ndisc_send_na.
func (s *Stack) ndiscRecvNS(b *skb.SKB, m header.ICMPv6, src, dst netip.Addr) {
	ip := header.IPv6(b.Head()[b.NetworkHeader:])
	if ip.HopLimit() != ndiscHopLimit || m.Code() != 0 || len(m) < header.ICMPv6NeighborMinSize {
		return
	}
	target := m.Target()
	if target.IsMulticast() || !s.isLocalAddr(target) {
		return
	}
	if !src.IsValid() || src.IsUnspecified() {
		return
	}
	if dst.IsMulticast() && dst != header.IPv6SolicitedNode(target) {
		return
	}
	rt, ok := s.routeOutput(src)
	if !ok {
		return
	}
	b2 := skb.Alloc(llReserved + header.IPv6MinSize + header.ICMPv6NeighborMinSize)
	b2.Reserve(llReserved + header.IPv6MinSize)
	na := header.ICMPv6(b2.Put(header.ICMPv6NeighborMinSize))
	clear(na)
	na.SetType(header.ICMPv6NeighborAdvert)
	na.SetRestOfHeader(uint32(header.ICMPv6NASolicited|header.ICMPv6NAOverride) << 24)
	na.SetTarget(target)
	na.Finish(target, src)
	s.icmpv6Out(b2, rt, target, src, ndiscHopLimit)
}

// icmpv6ParamProb sends a parameter problem about b (data at the IPv6
// header) pointing at byte ptr. Mirrors icmpv6_param_prob.
func (s *Stack) icmpv6ParamProb(b *skb.SKB, code uint8, ptr int) {
	s.icmpv6Send(b, header.ICMPv6ParamProblem, code, uint32(ptr), false)
}

// icmpv6ParamProbMcast is icmpv6ParamProb that also answers a packet sent
// to a multicast address (RFC 4443 2.4(e.3): an unrecognized option whose
// high bits are 10).
func (s *Stack) icmpv6ParamProbMcast(b *skb.SKB, code uint8, ptr int) {
	s.icmpv6Send(b, header.ICMPv6ParamProblem, code, uint32(ptr), true)
}

// icmpv6Send sends an ICMPv6 error of type typ about the packet b (data at
// its IPv6 header; b is not consumed). It never answers a packet from the
// unspecified or a multicast address, a packet to a multicast address
// (unless typ is packet too big or mcastOK), or an ICMPv6 error or
// redirect, and it is rate limited. Mirrors icmp6_send.
func (s *Stack) icmpv6Send(b *skb.SKB, typ, code uint8, info uint32, mcastOK bool) {
	data := b.Data()
	if len(data) < header.IPv6MinSize {
		return
	}
	h := header.IPv6(data)
	dst, src := h.SrcAddr(), h.DstAddr()
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() {
		return
	}
	if src.IsMulticast() && typ != header.ICMPv6PacketTooBig && !mcastOK {
		return
	}
	if icmpv6IsErrorQuote(data) {
		return // is_ineligible: never an error about an error
	}
	rt, ok := s.routeOutput(dst)
	if !ok {
		return
	}
	if !s.icmp.limiter.allow6(typ, dst, rt.Dst.Bits(), s.clock.Nanotime()) {
		return
	}
	if src.IsMulticast() || !s.isLocalAddr(src) {
		src = rt.Src
	}
	quote := min(b.Len(), icmpv6ErrorRoom)
	out := skb.Alloc(llReserved + header.IPv6MinSize + header.ICMPv6MinSize + quote)
	out.Reserve(llReserved + header.IPv6MinSize)
	m := header.ICMPv6(out.Put(header.ICMPv6MinSize + quote))
	b.CopyBits(0, m[header.ICMPv6MinSize:])
	m.SetType(typ)
	m.SetCode(code)
	m.SetRestOfHeader(info)
	m.Finish(src, dst)
	s.icmpv6Out(out, rt, src, dst, s.net.Sysctls.IP6HopLimit())
}

// icmpv6IsErrorQuote reports whether the packet data (at its IPv6 header)
// carries an ICMPv6 error or redirect, or has a header chain that cannot be
// walked to its upper layer: no error is sent about it. Mirrors
// is_ineligible over ipv6_skip_exthdr.
func icmpv6IsErrorQuote(data []byte) bool {
	nh := header.IPv6(data).NextHeader()
	off := header.IPv6MinSize
	for header.IPv6IsExtHeader(nh) && nh != header.IPv6NextNone {
		if off >= len(data) {
			return false
		}
		if nh == header.IPv6NextFragment {
			if len(data) < off+header.IPv6FragmentSize {
				return false
			}
			if header.IPv6Fragment(data[off:]).FragmentOffset() != 0 {
				return false // not the first fragment: the type is not here
			}
		}
		n, ok := header.IPv6ExtHeaderLen(nh, data[off:])
		if !ok {
			return false
		}
		nh = data[off]
		off += n
	}
	if nh != header.IPv6NextICMP || off >= len(data) {
		return false
	}
	t := data[off]
	return header.ICMPv6IsError(t) || t == header.ICMPv6Redirect
}

// icmpv6Notify passes an ICMPv6 error to the protocol of the packet it
// quotes, once the quote names a socket (the IPv6 header, any extension
// headers, and 8 bytes of TCP or UDP header): TCP validates and applies it
// (tcpV6Err); UDP tells a connected socket its hard errors (udpV6Err).
// Mirrors icmpv6_notify -> tcp_v6_err / __udp6_lib_err.
func (s *Stack) icmpv6Notify(m header.ICMPv6) {
	q := m.Payload()
	if len(q) < header.IPv6MinSize {
		return
	}
	qh := header.IPv6(q)
	nh, off := qh.NextHeader(), header.IPv6MinSize
	for header.IPv6IsExtHeader(nh) && nh != header.IPv6NextNone && nh != header.IPv6NextFragment {
		n, ok := header.IPv6ExtHeaderLen(nh, q[min(off, len(q)):])
		if !ok {
			return
		}
		nh = q[off]
		off += n
	}
	if len(q) < off+8 {
		return
	}
	switch nh {
	case header.IPv6NextTCP:
		s.tcpV6Err(m, qh, header.TCP(q[off:]))
	case header.IPv6NextUDP:
		s.udpV6Err(m, qh, header.UDP(q[off:]))
	}
}

// udpV6Err passes an ICMPv6 error to the UDP socket the quoted datagram
// came from. A packet too big teaches the route the path MTU
// (ip6_sk_update_pmtu) and is a hard error (EMSGSIZE on the next call),
// as for a socket whose pmtudisc is not IPV6_PMTUDISC_DONT (sockfs's
// sockets all have the default, IPV6_PMTUDISC_WANT); otherwise
// icmpv6ErrConvert says what is hard. A connected socket learns hard
// errors; soft ones, and anything for an unconnected socket, are reported
// only with IPV6_RECVERR, which sockfs does not have. An error no socket
// claims counts Icmp6InErrors. Mirrors __udp6_lib_err.
func (s *Stack) udpV6Err(m header.ICMPv6, qh header.IPv6, uh header.UDP) {
	u := s.udp.lookup(qh.SrcAddr(), uh.SrcPort(), qh.DstAddr(), uh.DstPort())
	if u == nil {
		s.mib.Inc(memctl.Icmp6InErrors)
		return
	}
	err, hard := icmpv6ErrConvert(m.Type(), m.Code())
	if m.Type() == header.ICMPv6PacketTooBig {
		if rt, ok := s.routeOutput(qh.DstAddr()); ok {
			s.updatePmtu(rt, qh.DstAddr(), max(int(m.RestOfHeader()), header.IPv6MinMTU))
		}
		hard = true
	}
	if !hard || !u.RemoteAddr().IsValid() || u.ignoreAdvice.Load() {
		return
	}
	u.sk.SetErr(err)
	u.sk.Wq.Wake()
}

// ping6 is Ping for an IPv6 destination: an ICMPv6 echo request.
func (s *Stack) ping6(ctx context.Context, rt Route, dst netip.Addr, seq uint16, payload []byte) error {
	st := &s.icmp
	key, ch := st.newPing(dst, seq)
	defer st.endPing(key)
	n := header.ICMPv6MinSize + len(payload)
	b := skb.Alloc(llReserved + header.IPv6MinSize + n)
	b.Reserve(llReserved + header.IPv6MinSize)
	m := header.ICMPv6(b.Put(n))
	copy(m[header.ICMPv6MinSize:], payload)
	m.SetType(header.ICMPv6EchoRequest)
	m.SetCode(0)
	m.SetRestOfHeader(uint32(key.id)<<16 | uint32(seq))
	m.Finish(rt.Src, dst)
	s.mib.Inc(memctl.Icmp6OutMsgs)
	s.icmpv6Count(header.ICMPv6EchoRequest, true)
	if err := s.ip6Output(b, rt, rt.Src, dst, header.IPv6NextICMP, s.net.Sysctls.IP6HopLimit(), 0, nil, nil); err != nil {
		return err
	}
	return waitPing(ctx, ch)
}
