package netstack

import (
	"syscall"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

// tcpV4Err handles an ICMP error that quotes one of our TCP segments (q is
// the quoted IP header and at least 8 bytes of TCP header; info is the
// next-hop MTU of a fragmentation-needed). The quoted sequence number must
// lie in snd_una..snd_nxt, or the message is blind (RFC 5927) and only
// counted. A fragmentation-needed lowers the path MTU and the MSS; during
// a handshake any other error ends the connection attempt; afterwards it
// is a soft error, reported only if the connection then times out.
// Mirrors tcp_v4_err.
//
// Deviations: ICMP for a request socket (tcp_req_err) and redirects are
// ignored, and a host or network unreachable does not revert the RTO
// back-off (tcp_ld_RTO_revert, RFC 6069).
func (s *Stack) tcpV4Err(m header.ICMPv4, q header.IPv4, info uint32) {
	th := header.TCP(q[q.HeaderLength():])
	tu := tcpTuple{laddr: q.SrcAddr(), raddr: q.DstAddr(), lport: th.SrcPort(), rport: th.DstPort()}
	typ, code := m.Type(), m.Code()
	var err syscall.Errno
	switch typ {
	case header.ICMPv4ParamProblem:
		err = syscall.EPROTO
	case header.ICMPv4TimeExceeded:
		err = syscall.EHOSTUNREACH
	case header.ICMPv4DestUnreachable:
		if code == header.ICMPv4FragmentationNeeded {
			break
		}
		if int(code) >= len(icmpErrConvert) {
			err = 0 // nothing to report, but the socket is still looked up
			break
		}
		err = icmpErrConvert[code].errno
	}
	fragNeeded := typ == header.ICMPv4DestUnreachable && code == header.ICMPv4FragmentationNeeded
	s.tcpErr(tu, th.Seq(), fragNeeded, err, info)
}

// tcpV6Err is tcpV4Err for ICMPv6: a packet too big is the
// fragmentation-needed, with the MTU it carries; destination unreachable
// maps to errors as icmpv6_err_convert does. Mirrors tcp_v6_err.
func (s *Stack) tcpV6Err(m header.ICMPv6, q header.IPv6, th header.TCP) {
	tu := tcpTuple{laddr: q.SrcAddr(), raddr: q.DstAddr(), lport: th.SrcPort(), rport: th.DstPort()}
	var err syscall.Errno
	if m.Type() != header.ICMPv6PacketTooBig {
		err, _ = icmpv6ErrConvert(m.Type(), m.Code())
	}
	s.tcpErr(tu, th.Seq(), m.Type() == header.ICMPv6PacketTooBig, err, m.RestOfHeader())
}

// icmpv6ErrConvert maps an ICMPv6 error to the errno a socket sees and
// whether it is fatal (a hard error): of destination unreachable, no
// route, beyond scope and address unreachable are transient, the others
// fatal; a packet too big (EMSGSIZE) and a time exceeded (EHOSTUNREACH)
// are not fatal, a parameter problem (EPROTO) is. Mirrors
// icmpv6_err_convert and its tab_unreach.
func icmpv6ErrConvert(typ, code uint8) (syscall.Errno, bool) {
	switch typ {
	case header.ICMPv6DestUnreachable:
		switch code {
		case header.ICMPv6NoRoute:
			return syscall.ENETUNREACH, false
		case 2, header.ICMPv6AddrUnreachable: // 2: beyond the scope of the source
			return syscall.EHOSTUNREACH, false
		case header.ICMPv6AdminProhibited, 5, 6: // 5, 6: source address failed policy, reject route
			return syscall.EACCES, true
		case header.ICMPv6PortUnreachable:
			return syscall.ECONNREFUSED, true
		}
		return syscall.EPROTO, true
	case header.ICMPv6PacketTooBig:
		return syscall.EMSGSIZE, false
	case header.ICMPv6ParamProblem:
		return syscall.EPROTO, true
	case header.ICMPv6TimeExceeded:
		return syscall.EHOSTUNREACH, false
	}
	return syscall.EPROTO, false
}

// tcpErr is the family-independent part of tcp_v4_err and tcp_v6_err: the
// segment quoted (tuple tu, sequence seq) must be in flight; a
// fragmentation-needed or packet too big (ptb) brings the path MTU info, err
// is what any other error means (0: nothing).
func (s *Stack) tcpErr(tu tcpTuple, seq uint32, ptb bool, err syscall.Errno, info uint32) {
	tp := s.tcp.lookupEstab(tu)
	if tp == nil {
		if s.tcp.lookupListener(tu.laddr, tu.lport) == nil {
			s.mib.Inc(memctl.IcmpInErrors)
		}
		return // a listener has nothing to learn (tcp_req_err not mirrored)
	}
	fragNeeded := ptb
	if tp.bhLockSock() {
		// A user owns the socket and changes its state and sequence
		// numbers with the spinlock dropped, so none of them is read
		// here. Deviation: Linux reads them anyway; sockfs leaves a
		// fragmentation-needed, with the sequence it quotes, to
		// release_sock (TCP_MTU_REDUCED_DEFERRED, checked there), and
		// drops any other error (LockDroppedIcmps) where Linux may
		// keep it as a soft error.
		if fragNeeded {
			tp.mtuInfo, tp.mtuInfoSeq = int(info), seq
			tp.deferred |= tcpMtuReducedDeferred
		} else {
			s.mib.Inc(memctl.TcpExtLockDroppedIcmps)
		}
		tp.bhUnlockSock()
		return
	}
	defer tp.bhUnlockSock()
	if tp.state == TCPTimeWait || tp.state == TCPClose || tp.destroyed {
		return
	}
	if !seqBetween(seq, tp.sndUna, tp.sndNxt) {
		s.mib.Inc(memctl.TcpExtOutOfWindowIcmps)
		return
	}
	if fragNeeded {
		tp.mtuInfo = int(info)
		tp.mtuReduced()
		return
	}
	if err == 0 || tp.ignoreAdvice.Load() {
		return
	}
	if tp.state == TCPSynSent || tp.state == TCPSynRecv {
		tp.writeErr(err) // tcp_done_with_error
		return
	}
	tp.errSoft = err // no IP_RECVERR: an error only on timeout
}

// mtuReduced is the family's mtu_reduced (icsk_af_ops->mtu_reduced):
// tcp_v4_mtu_reduced or tcp_v6_mtu_reduced.
func (tp *TCPSock) mtuReduced() {
	if tp.remote.Addr().Is6() {
		tp.v6MtuReduced()
	} else {
		tp.v4MtuReduced()
	}
}

// v6MtuReduced is v4MtuReduced for IPv6: an MTU below the IPv6 minimum
// (1280) is taken as 1280 (__ip6_rt_update_pmtu; IPv6 has no smaller
// path), and a value that would not lower the MSS is ignored before the
// route learns it. Mirrors tcp_v6_mtu_reduced.
func (tp *TCPSock) v6MtuReduced() {
	tp.mtuInfo = max(tp.mtuInfo, header.IPv6MinMTU)
	if tp.mtuToMss(tp.mtuInfo) >= tp.mssCache {
		return
	}
	tp.v4MtuReduced()
}

// v4MtuReduced applies the path MTU an ICMP reported (mtu_info): the
// route's exception learns it, and if the connection's segments no longer
// fit, the MSS shrinks and what was sent too large is sent again at once.
// Caller holds the socket (spinlock with the socket not owned, or owns
// it). Mirrors tcp_v4_mtu_reduced.
func (tp *TCPSock) v4MtuReduced() {
	if tp.state == TCPListen || tp.state == TCPClose {
		return
	}
	dst := tp.remote.Addr()
	tp.stack.updatePmtu(tp.route, dst, tp.mtuInfo)
	mtu, locked := tp.stack.pathMTU(tp.route, dst)
	if tp.mtuInfo < mtu && !locked {
		// Below min_pmtu, yet DF: this connection may not recover.
		tp.errSoft = syscall.EMSGSIZE
	}
	if tp.pmtuCookie > mtu {
		tp.syncMss(mtu)
		tp.simpleRetransmit()
	}
}

// simpleRetransmit marks lost every skb whose segments are larger than the
// new MSS and retransmits them (cut to the MSS), entering Loss without
// touching cwnd: the data in flight did not grow, only its units shrank.
// Mirrors tcp_simple_retransmit (sockfs's Reno counts duplicate ACKs apart
// from sacked_out, so tcp_limit_reno_sacked has nothing to limit).
func (tp *TCPSock) simpleRetransmit() {
	mss := tp.sendMss()
	for b := tp.rtxQueue.Peek(); b != nil; b = b.Next() {
		seglen := b.Len() // tcp_skb_seglen
		if tcpSkbPcount(b) > 1 {
			seglen = tcpSkbMss(b)
		}
		if seglen > mss {
			tp.markSkbLost(b)
		}
	}
	if tp.lostOut == 0 {
		return
	}
	if tp.caState != tcpCALoss {
		tp.highSeq = tp.sndNxt
		tp.ssthresh = tp.currentSsthresh()
		tp.priorSsthr = 0
		tp.undoMarker = 0
		tp.setCAState(tcpCALoss)
	}
	tp.xmitRetransmitQueue()
}

// pathMTU is the MTU of the path to the peer (dst_mtu of the socket's
// route).
func (tp *TCPSock) pathMTU() int {
	mtu, _ := tp.stack.pathMTU(tp.route, tp.remote.Addr())
	return mtu
}
