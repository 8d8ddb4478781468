package netstack

// Explicit Congestion Notification for TCP (RFC 3168) as Linux 6.18 does
// it in its classic mode (include/net/tcp_ecn.h, tcp_input.c,
// tcp_output.c): negotiation on the handshake by the sysctl tcp_ecn,
// ECT(0) on new data, CE echoed with ECE until the sender's CWR, and an
// ECE answered by one reduction per window (tcp_enter_cwr). Accurate ECN
// (tcp_ecn 3 to 5 on kernels that have it) is not done: the reference
// kernel refuses those values too.

import (
	"sockfs/netstack/header"
	"sockfs/skb"
)

// tp->ecn_flags bits (include/net/tcp.h).
const (
	tcpECNOK        = 1 // TCP_ECN_OK: negotiated
	tcpECNQueueCWR  = 2 // TCP_ECN_QUEUE_CWR: send CWR on the next new data
	tcpECNDemandCWR = 4 // TCP_ECN_DEMAND_CWR: echo ECE until CWR arrives
	tcpECNSeen      = 8 // TCP_ECN_SEEN: an ECT or CE packet was received
)

// ECE and CWR, as the control block's tcp_flags hold them.
const (
	tcpEce = uint8(header.TCPFlagEce)
	tcpCwr = uint8(header.TCPFlagCwr)
)

// Congestion-control events about received ECN codepoints (enum
// tcp_ca_event), for algorithms that need ECN.
const (
	caEventECNNoCE = 4 // CA_EVENT_ECN_NO_CE: an ECT packet without CE
	caEventECNIsCE = 5 // CA_EVENT_ECN_IS_CE: a CE packet
)

// The ECN field in the control block of a received segment: the IP
// header's TOS byte (tcp_skb_cb's ip_dsfield).
const cbIPDsfield = 14

func cbGetDsfield(b *skb.SKB) uint8    { return b.CB[cbIPDsfield] }
func cbSetDsfield(b *skb.SKB, v uint8) { b.CB[cbIPDsfield] = v }

// ecnNeeder is a congestion control that needs ECN on every packet
// (TCP_CONG_NEEDS_ECN: DCTCP).
type ecnNeeder interface{ needsECN() bool }

// caNeedsECN mirrors tcp_ca_needs_ecn.
func (tp *TCPSock) caNeedsECN() bool {
	n, ok := tp.cc.(ecnNeeder)
	return ok && n.needsECN()
}

// ecnOK reports whether the connection negotiated ECN (TCP_ECN_OK).
func (tp *TCPSock) ecnOK() bool { return tp.ecnFlags&tcpECNOK != 0 }

// ecnXmit and ecnDontXmit set or clear ECT(0) in the socket's own ECN bits
// (inet->tos & INET_ECN_MASK), which every packet it sends carries until
// changed. Mirror INET_ECN_xmit and INET_ECN_dontxmit.
func (tp *TCPSock) ecnXmit()     { tp.ecnTos = header.ECNECT0 }
func (tp *TCPSock) ecnDontXmit() { tp.ecnTos = header.ECNNotECT }

// ipTOS is the TOS byte of the next packet: IP_TOS's upper six bits and
// the socket's ECN bits (do_ip_setsockopt keeps a stream socket's ECN
// bits out of the user's reach).
func (tp *TCPSock) ipTOS() uint8 { return tp.tos&^header.ECNMask | tp.ecnTos }

// ecnSendSyn asks for ECN on an active open's SYN (ECE|CWR) when tcp_ecn
// is 1 or the congestion control needs it. Mirrors tcp_ecn_send_syn.
func (tp *TCPSock) ecnSendSyn(b *skb.SKB) {
	needs := tp.caNeedsECN()
	tp.ecnFlags = 0
	if tp.stack.net.Sysctls.TCPECN() == 1 || needs {
		if needs {
			tp.ecnXmit()
		}
		cbSetFlags(b, cbGetFlags(b)|tcpEce|tcpCwr)
		tp.ecnFlags = tcpECNOK
	}
}

// ecnClearSyn takes ECE|CWR off a SYN being retransmitted when
// tcp_ecn_fallback is on, in case a middlebox drops ECN SYNs; the SYN-ACK
// then turns ECN off. Mirrors tcp_ecn_clear_syn.
func (tp *TCPSock) ecnClearSyn(b *skb.SKB) {
	if f := cbGetFlags(b); f&(tcpSyn|tcpEce|tcpCwr) == tcpSyn|tcpEce|tcpCwr && tp.stack.net.Sysctls.TCPECNFallback() {
		cbSetFlags(b, f&^(tcpEce|tcpCwr))
	}
}

// ecnRcvSynack turns ECN off unless the SYN-ACK has ECE without CWR.
// Mirrors tcp_ecn_rcv_synack.
func (tp *TCPSock) ecnRcvSynack(flags uint8) {
	if tp.ecnOK() && (flags&tcpEce == 0 || flags&tcpCwr != 0) {
		tp.ecnFlags &^= tcpECNOK
	}
}

// ecnRcvSyn turns ECN off on a simultaneous open whose SYN did not ask
// for it. Mirrors tcp_ecn_rcv_syn.
func (tp *TCPSock) ecnRcvSyn(flags uint8) {
	if tp.ecnOK() && flags&(tcpEce|tcpCwr) != tcpEce|tcpCwr {
		tp.ecnFlags &^= tcpECNOK
	}
}

// ecnSynackFlags are the flags of a simultaneous open's SYN-ACK: ECE if
// ECN is still on, never CWR; a congestion control that needs ECN sends it
// ECT. Mirrors tcp_ecn_send_synack.
func (tp *TCPSock) ecnSynackFlags() uint8 {
	if !tp.ecnOK() {
		return 0
	}
	if tp.caNeedsECN() {
		tp.ecnXmit()
	}
	return tcpEce
}

// ecnCreateRequest decides whether a listener accepts the ECN a SYN asks
// for (ECE|CWR): when tcp_ecn is not 0 and the SYN itself is not ECT (RFC
// 3168 6.1.1: a SYN must not be), or always when the listener's congestion
// control needs ECN. Mirrors tcp_ecn_create_request (without the reserved
// bits and the route's ECN feature, which sockfs has not).
func (l *TCPSock) ecnCreateRequest(flags, dsfield uint8) bool {
	if flags&(tcpEce|tcpCwr) != tcpEce|tcpCwr {
		return false
	}
	ect := dsfield&header.ECNMask != header.ECNNotECT
	return !ect && l.stack.net.Sysctls.TCPECN() != 0 || l.caNeedsECN()
}

// ecnSend sets the ECN codepoint of a non-SYN segment about to go and
// returns the ECN flags it carries: new data goes ECT(0) and carries a
// queued CWR; a pure ACK or a retransmission goes Not-ECT, unless the
// congestion control needs ECN; ECE while the peer's CE awaits its CWR.
// dataLen is the segment's payload. Mirrors tcp_ecn_send.
func (tp *TCPSock) ecnSend(b *skb.SKB, dataLen int) uint8 {
	if !tp.ecnOK() {
		return 0
	}
	var f uint8
	if dataLen > 0 && !seqLT(cbGetSeq(b), tp.sndNxt) {
		tp.ecnXmit()
		if tp.ecnFlags&tcpECNQueueCWR != 0 {
			tp.ecnFlags &^= tcpECNQueueCWR
			f |= tcpCwr
		}
	} else if !tp.caNeedsECN() {
		tp.ecnDontXmit()
	}
	if tp.ecnFlags&tcpECNDemandCWR != 0 {
		f |= tcpEce
	}
	return f
}

// ecnQueueCWR arranges for CWR on the next new data after a reduction.
// Mirrors tcp_ecn_queue_cwr.
func (tp *TCPSock) ecnQueueCWR() {
	if tp.ecnOK() {
		tp.ecnFlags |= tcpECNQueueCWR
	}
}

// ecnAcceptCWR stops echoing ECE once the peer says it reduced (CWR, on
// data or, since Linux 5.x, on a pure ACK), and acknowledges such data at
// once: the peer's cwnd may be tiny. Mirrors tcp_ecn_accept_cwr.
func (tp *TCPSock) ecnAcceptCWR(b *skb.SKB) {
	if cbGetFlags(b)&tcpCwr == 0 {
		return
	}
	tp.ecnFlags &^= tcpECNDemandCWR
	if cbGetSeq(b) != cbGetEndSeq(b) {
		tp.ackPending |= icskAckNow
	}
}

// ecnRcvEcnEcho reports whether an ACK carries an ECN echo to react to.
// Mirrors tcp_ecn_rcv_ecn_echo.
func (tp *TCPSock) ecnRcvEcnEcho(flags uint8) bool {
	return flags&tcpEce != 0 && flags&tcpSyn == 0 && tp.ecnOK()
}

// ecnCheckCE looks at the ECN codepoint of received data: CE starts the
// ECE echo (and quick ACKs, the sender may have a small cwnd); a Not-ECT
// packet after ECT ones is probably a retransmission and is acknowledged
// quickly too. An algorithm that needs ECN is told of every codepoint.
// Mirrors tcp_ecn_check_ce.
func (tp *TCPSock) ecnCheckCE(b *skb.SKB) {
	if !tp.ecnOK() {
		return
	}
	switch cbGetDsfield(b) & header.ECNMask {
	case header.ECNNotECT:
		if tp.ecnFlags&tcpECNSeen != 0 {
			tp.enterQuickackMode(2)
		}
	case header.ECNCE:
		if tp.caNeedsECN() {
			tp.cc.cwndEvent(tp, caEventECNIsCE)
		}
		if tp.ecnFlags&tcpECNDemandCWR == 0 {
			tp.enterQuickackMode(2)
			tp.ecnFlags |= tcpECNDemandCWR
		}
		tp.ecnFlags |= tcpECNSeen
	default:
		if tp.caNeedsECN() {
			tp.cc.cwndEvent(tp, caEventECNNoCE)
		}
		tp.ecnFlags |= tcpECNSeen
	}
}

// inCwndReduction reports whether cwnd is being brought down (CWR or
// Recovery). Mirrors tcp_in_cwnd_reduction.
func (tp *TCPSock) inCwndReduction() bool {
	return tp.caState == tcpCACWR || tp.caState == tcpCARecovery
}

// enterCWR starts the reduction an ECN echo calls for, once per window:
// ssthresh from the congestion control, cwnd brought down to it by PRR
// over the next window (cwndReduction), and CWR queued for the peer; no
// undo. Mirrors tcp_enter_cwr + tcp_init_cwnd_reduction.
func (tp *TCPSock) enterCWR() {
	tp.priorSsthr = 0
	if tp.caState >= tcpCACWR {
		return
	}
	tp.undoMarker = 0
	tp.initCwndReduction()
	tp.setCAState(tcpCACWR)
}

// initCwndReduction starts bringing cwnd down to a new ssthresh over the
// next window (PRR), ending any tail loss probe's episode. Mirrors
// tcp_init_cwnd_reduction.
func (tp *TCPSock) initCwndReduction() {
	tp.highSeq = tp.sndNxt
	tp.tlpHighSeq = 0
	tp.cwndCnt = 0
	tp.priorCwnd = tp.cwnd
	tp.prrDelivered, tp.prrOut = 0, 0
	tp.ssthresh = tp.cc.ssthresh(tp)
	tp.ecnQueueCWR()
}
