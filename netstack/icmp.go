package netstack

import (
	"context"
	"net/netip"
	"sync"
	"syscall"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// icmpState is the stack's ICMP: error rate limiting and the pending echo
// requests of Ping.
type icmpState struct {
	stack   *Stack
	limiter icmpRateLimiter
	mu      sync.Mutex
	pings   map[pingKey]chan struct{}
	pingID  uint16
}

type pingKey struct {
	peer    netip.Addr
	id, seq uint16
}

func (st *icmpState) init(s *Stack) {
	st.stack = s
	st.limiter.init(s.clock.Nanotime(), s.net.Sysctls, s.mib)
	st.pings = make(map[pingKey]chan struct{})
	st.pingID = uint16(s.rand())
}

// icmpRcv handles an ICMP message (data at the ICMP header); bcast says it
// was sent to a broadcast address. It owns b. Mirrors icmp_rcv.
func (s *Stack) icmpRcv(b *skb.SKB, iph header.IPv4, bcast bool) {
	s.mib.Inc(memctl.IcmpInMsgs)
	m := header.ICMPv4(b.Data())
	if len(m) < header.ICMPv4MinSize {
		s.mib.Inc(memctl.IcmpInErrors)
		b.Free()
		return
	}
	if !m.IsChecksumValid() {
		s.mib.Inc(memctl.IcmpInCsumErrors)
		s.mib.Inc(memctl.IcmpInErrors)
		b.Free()
		return
	}
	switch m.Type() {
	case header.ICMPv4EchoRequest:
		s.mib.Inc(memctl.IcmpInEchos)
		if bcast {
			// icmp_echo_ignore_broadcasts, fixed at its default 1.
			s.mib.Inc(memctl.IcmpInErrors)
			break
		}
		if s.net.Sysctls.ICMPEchoIgnoreAll() {
			break // icmp_echo: icmp_echo_ignore_all
		}
		s.icmpEchoReply(b, iph)
	case header.ICMPv4EchoReply:
		s.mib.Inc(memctl.IcmpInEchoReps)
		s.icmp.pingReply(iph.SrcAddr(), m.Ident(), m.Sequence())
	case header.ICMPv4DestUnreachable, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		switch m.Type() {
		case header.ICMPv4DestUnreachable:
			s.mib.Inc(memctl.IcmpInDestUnreachs)
		case header.ICMPv4TimeExceeded:
			s.mib.Inc(memctl.IcmpInTimeExcds)
		default:
			s.mib.Inc(memctl.IcmpInParmProbs)
		}
		if bcast {
			// icmp_rcv: to a broadcast, only the informational types
			// (echo, timestamp, address mask) are taken.
			s.mib.Inc(memctl.IcmpInErrors)
			break
		}
		s.icmpUnreach(m)
	}
	b.Free()
}

// icmpEchoReply answers an echo request with the same identifier, sequence
// and data. Mirrors icmp_echo / icmp_reply.
func (s *Stack) icmpEchoReply(req *skb.SKB, iph header.IPv4) {
	rt, ok := s.routeOutput(iph.SrcAddr())
	if !ok {
		s.mib.Inc(memctl.IcmpOutErrors)
		return
	}
	n := req.Len()
	b := skb.Alloc(llReserved + header.IPv4MinSize + n)
	b.Reserve(llReserved + header.IPv4MinSize)
	m := header.ICMPv4(b.Put(n))
	req.CopyBits(0, m)
	m.SetType(header.ICMPv4EchoReply)
	m.SetCode(0)
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum())
	s.mib.Inc(memctl.IcmpOutMsgs)
	s.mib.Inc(memctl.IcmpOutEchoReps)
	s.ipOutput(b, rt, iph.DstAddr(), iph.SrcAddr(), header.IPv4ProtocolICMP, s.defaultTTL(), iph.TOS(), nil)
}

// icmpSendDestUnreach reports to the sender of b (data after the IP header
// iph) that it could not be delivered.
func (s *Stack) icmpSendDestUnreach(b *skb.SKB, iph header.IPv4, code uint8) {
	s.icmpSend(b, iph, header.ICMPv4DestUnreachable, code, 0)
}

// icmpErrorRoom is how much of the offending datagram an ICMP error quotes:
// the reply is at most 576 bytes (RFC 1812 4.3.2.3), as Linux's icmp_send.
const icmpErrorRoom = 576 - header.IPv4MinSize - header.ICMPv4MinSize

// icmpSend sends an ICMP error about the datagram whose IP header is iph and
// whose payload b holds (b is not consumed). It never answers an ICMP
// error, a broadcast, or a fragment other than the first, and it is rate
// limited. Mirrors __icmp_send.
func (s *Stack) icmpSend(b *skb.SKB, iph header.IPv4, typ, code uint8, info uint32) {
	dst, src := iph.SrcAddr(), iph.DstAddr()
	if iph.FragmentOffset() != 0 || !dst.IsValid() || dst.IsUnspecified() ||
		s.inetAddrType(src) == rtnBroadcast || src.IsMulticast() || dst.IsMulticast() {
		return
	}
	if iph.Protocol() == header.IPv4ProtocolICMP && b.Len() >= 1 {
		var t [1]byte
		b.CopyBits(0, t[:])
		if !header.ICMPv4IsInfo(t[0]) {
			return // never an error about an error
		}
	}
	if !s.icmp.limiter.allow(typ, dst, s.clock.Nanotime()) {
		return
	}
	rt, ok := s.routeOutput(dst)
	if !ok {
		return
	}
	if !s.isLocalAddr(src) {
		src = rt.Src
	}
	hl := iph.HeaderLength()
	quote := min(hl+b.Len(), icmpErrorRoom)
	out := skb.Alloc(llReserved + header.IPv4MinSize + header.ICMPv4MinSize + quote)
	out.Reserve(llReserved + header.IPv4MinSize)
	m := header.ICMPv4(out.Put(header.ICMPv4MinSize + quote))
	copy(m[header.ICMPv4MinSize:], iph[:hl])
	b.CopyBits(0, m[header.ICMPv4MinSize+hl:])
	m.SetType(typ)
	m.SetCode(code)
	m.SetRestOfHeader(info)
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum())
	s.mib.Inc(memctl.IcmpOutMsgs)
	switch typ {
	case header.ICMPv4DestUnreachable:
		s.mib.Inc(memctl.IcmpOutDestUnreachs)
	case header.ICMPv4TimeExceeded:
		s.mib.Inc(memctl.IcmpOutTimeExcds)
	}
	s.ipOutput(out, rt, src, dst, header.IPv4ProtocolICMP, s.defaultTTL(), 0, nil)
}

// icmpUnreach hands an ICMP error (destination unreachable, time
// exceeded, parameter problem) to the protocol of the datagram it quotes,
// once the quote is long enough to name a socket: an IP header and the
// first 8 bytes of its payload. A fragmentation-needed carries the next
// hop's MTU, which net.ipv4.ip_no_pmtu_disc may tell us to ignore (2, and
// 3 for protocols without tag validation, which TCP and UDP are) or to
// take as 0 (1). Mirrors icmp_unreach + icmp_socket_deliver.
func (s *Stack) icmpUnreach(m header.ICMPv4) {
	q := header.IPv4(m.Payload())
	if len(q) < header.IPv4MinSize || q.HeaderLength() < header.IPv4MinSize {
		s.mib.Inc(memctl.IcmpInErrors) // out_err
		return
	}
	if len(q) < q.HeaderLength()+8 {
		return
	}
	var info uint32
	if m.Type() == header.ICMPv4DestUnreachable && m.Code() == header.ICMPv4FragmentationNeeded {
		switch s.net.Sysctls.IPNoPmtuDisc() {
		case 0:
			info = uint32(m.MTU())
		case 2, 3:
			return
		}
	}
	switch q.Protocol() {
	case header.IPv4ProtocolTCP:
		s.tcpV4Err(m, q, info)
	case header.IPv4ProtocolUDP:
		s.udpErr(m, q, info)
	}
}

// icmpErrConvert maps a destination-unreachable code to the error a
// socket sees and whether it is fatal (a hard error). Net and host
// unreachable, source route failed and the TOS variants are transient
// (RFC 1122 3.2.2.1). Mirrors icmp_err_convert.
var icmpErrConvert = [...]struct {
	errno syscall.Errno
	fatal bool
}{
	header.ICMPv4NetUnreachable:      {syscall.ENETUNREACH, false},
	header.ICMPv4HostUnreachable:     {syscall.EHOSTUNREACH, false},
	header.ICMPv4ProtoUnreachable:    {syscall.ENOPROTOOPT, true},
	header.ICMPv4PortUnreachable:     {syscall.ECONNREFUSED, true},
	header.ICMPv4FragmentationNeeded: {syscall.EMSGSIZE, false},
	header.ICMPv4SourceRouteFailed:   {syscall.EOPNOTSUPP, false},
	header.ICMPv4NetUnknown:          {syscall.ENETUNREACH, true},
	header.ICMPv4HostUnknown:         {syscall.EHOSTDOWN, true},
	header.ICMPv4HostIsolated:        {syscall.ENONET, true},
	header.ICMPv4NetProhibited:       {syscall.ENETUNREACH, true},
	header.ICMPv4HostProhibited:      {syscall.EHOSTUNREACH, true},
	header.ICMPv4NetTOSUnreachable:   {syscall.ENETUNREACH, false},
	header.ICMPv4HostTOSUnreachable:  {syscall.EHOSTUNREACH, false},
	header.ICMPv4AdminProhibited:     {syscall.EHOSTUNREACH, true},
	14:                               {syscall.EHOSTUNREACH, true}, // host precedence violation
	15:                               {syscall.EHOSTUNREACH, true}, // precedence cut-off
}

// udpErr passes an ICMP error to the UDP socket the quoted datagram came
// from. A connected socket learns hard errors (a port unreachable is
// ECONNREFUSED); soft ones, and anything for an unconnected socket, are
// reported only with IP_RECVERR, which sockfs does not have. A
// fragmentation-needed's MTU is learned for the path, and the socket gets
// EMSGSIZE. Mirrors __udp4_lib_err.
func (s *Stack) udpErr(m header.ICMPv4, q header.IPv4, info uint32) {
	uh := header.UDP(q[q.HeaderLength():])
	u := s.udp.lookup(q.SrcAddr(), uh.SrcPort(), q.DstAddr(), uh.DstPort())
	if u == nil {
		s.mib.Inc(memctl.IcmpInErrors)
		return
	}
	var err syscall.Errno
	hard := false
	switch m.Type() {
	case header.ICMPv4ParamProblem:
		err, hard = syscall.EPROTO, true
	case header.ICMPv4TimeExceeded:
		err = syscall.EHOSTUNREACH
	case header.ICMPv4DestUnreachable:
		if m.Code() == header.ICMPv4FragmentationNeeded {
			// ipv4_sk_update_pmtu; IP_PMTUDISC_WANT makes it a hard error.
			if rt, ok := s.routeOutput(q.DstAddr()); ok {
				s.updatePmtu(rt, q.DstAddr(), int(info))
			}
			err, hard = syscall.EMSGSIZE, true
		} else if int(m.Code()) < len(icmpErrConvert) {
			c := icmpErrConvert[m.Code()]
			err, hard = c.errno, c.fatal
		} else {
			return
		}
	default:
		return
	}
	if !hard || !u.RemoteAddr().IsValid() || u.ignoreAdvice.Load() {
		return
	}
	u.sk.SetErr(err)
	u.sk.Wq.Wake()
}

// Ping sends one ICMP echo request with payload to dst and waits for the
// matching reply. It returns nil when the reply arrives, or ctx's end as
// EINTR / EAGAIN. Each call uses a fresh (identifier, sequence) pair.
func (s *Stack) Ping(ctx context.Context, dst netip.Addr, seq uint16, payload []byte) error {
	rt, ok := s.routeOutput(dst)
	if !ok {
		return errNetUnreach
	}
	if dst.Is6() {
		return s.ping6(ctx, rt, dst, seq, payload)
	}
	st := &s.icmp
	key, ch := st.newPing(dst, seq)
	defer st.endPing(key)
	n := header.ICMPv4MinSize + len(payload)
	b := skb.Alloc(llReserved + header.IPv4MinSize + n)
	b.Reserve(llReserved + header.IPv4MinSize)
	m := header.ICMPv4(b.Put(n))
	copy(m[header.ICMPv4MinSize:], payload)
	m.SetType(header.ICMPv4EchoRequest)
	m.SetCode(0)
	m.SetIdent(key.id)
	m.SetSequence(seq)
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum())
	s.mib.Inc(memctl.IcmpOutMsgs)
	s.mib.Inc(memctl.IcmpOutEchos)
	if err := s.ipOutput(b, rt, rt.Src, dst, header.IPv4ProtocolICMP, s.defaultTTL(), 0, nil); err != nil {
		return err
	}
	return waitPing(ctx, ch)
}

// newPing registers an echo request to dst with a fresh identifier.
func (st *icmpState) newPing(dst netip.Addr, seq uint16) (pingKey, chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pingID++
	key := pingKey{dst, st.pingID, seq}
	ch := make(chan struct{})
	st.pings[key] = ch
	return key, ch
}

// endPing forgets a request.
func (st *icmpState) endPing(key pingKey) {
	st.mu.Lock()
	delete(st.pings, key)
	st.mu.Unlock()
}

// waitPing waits for the reply that closes ch, or ctx's end.
func waitPing(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		select {
		case <-ch: // the reply came first; the context ended after it
			return nil
		default:
		}
		return ctxErr(ctx)
	}
}

func (st *icmpState) pingReply(from netip.Addr, id, seq uint16) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ch, ok := st.pings[pingKey{from, id, seq}]; ok {
		close(ch)
		delete(st.pings, pingKey{from, id, seq})
	}
}
