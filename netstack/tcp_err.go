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
	tp := s.tcp.lookupEstab(tu)
	if tp == nil {
		if s.tcp.lookupListener(tu.laddr, tu.lport) == nil {
			s.mib.Inc(memctl.IcmpInErrors)
		}
		return // a listener has nothing to learn (tcp_req_err not mirrored)
	}
	typ, code := m.Type(), m.Code()
	fragNeeded := typ == header.ICMPv4DestUnreachable && code == header.ICMPv4FragmentationNeeded
	owned := tp.bhLockSock()
	defer tp.bhUnlockSock()
	if tp.state == TCPTimeWait || tp.state == TCPClose || tp.destroyed {
		return
	}
	if owned && !fragNeeded {
		s.mib.Inc(memctl.TcpExtLockDroppedIcmps)
	}
	if seq := th.Seq(); !seqBetween(seq, tp.sndUna, tp.sndNxt) {
		s.mib.Inc(memctl.TcpExtOutOfWindowIcmps)
		return
	}
	var err syscall.Errno
	switch typ {
	case header.ICMPv4ParamProblem:
		err = syscall.EPROTO
	case header.ICMPv4TimeExceeded:
		err = syscall.EHOSTUNREACH
	case header.ICMPv4DestUnreachable:
		if fragNeeded {
			tp.mtuInfo = int(info)
			if owned {
				tp.deferred |= tcpMtuReducedDeferred
			} else {
				tp.v4MtuReduced()
			}
			return
		}
		if int(code) >= len(icmpErrConvert) {
			return
		}
		err = icmpErrConvert[code].errno
	default:
		return
	}
	if tp.state == TCPSynSent || tp.state == TCPSynRecv {
		if owned {
			tp.errSoft = err
		} else {
			tp.writeErr(err) // tcp_done_with_error
		}
		return
	}
	tp.errSoft = err // no IP_RECVERR: an error only on timeout
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
