package netstack

// TCP's internal pacing, as Linux does it without the fq qdisc: each skb
// sent advances tcp_wstamp_ns, the earliest departure time (EDT) of the
// next, by its length at sk_pacing_rate; tcp_write_xmit and
// tcp_xmit_retransmit_queue stop while that time is in the future and arm
// the pacing timer (a high-resolution timer in Linux, a timer on the
// stack's clock here), whose expiry sends again. Only a congestion control
// that asks for it (BBR: sk_pacing_status SK_PACING_NEEDED) is paced;
// reno and cubic, without fq, are not, as in Linux. Mirrors the pacing
// parts of net/ipv4/tcp_output.c.

import "sockfs/skb"

// sk_pacing_status values.
const (
	skPacingNone   = 0 // SK_PACING_NONE
	skPacingNeeded = 1 // SK_PACING_NEEDED: TCP paces itself
)

// needsInternalPacing mirrors tcp_needs_internal_pacing.
func (tp *TCPSock) needsInternalPacing() bool { return tp.pacingStatus == skPacingNeeded }

// pacingCheck reports whether the next skb must wait for its departure
// time, arming the pacing timer for it if it is not armed. Mirrors
// tcp_pacing_check.
func (tp *TCPSock) pacingCheck() bool {
	if !tp.needsInternalPacing() || tp.wstampNs <= tp.now() {
		return false
	}
	if !tp.pacingTimer.Armed() {
		tp.pacingTimer.ResetAt(tp.wstampNs)
	}
	return true
}

// wstampRefresh moves tcp_wstamp_ns up to now before a transmission and
// returns its value before, for updateSkbAfterSend. Mirrors the start of
// __tcp_transmit_skb.
func (tp *TCPSock) wstampRefresh() int64 {
	prior := tp.wstampNs
	tp.wstampNs = max(prior, tp.now())
	return prior
}

// updateSkbAfterSend advances the earliest departure time of the next skb
// by the time b takes at the pacing rate, less up to half of it as credit
// for the time the socket was idle; the first 10 data segments are not
// paced (as fq does not pace them). Mirrors tcp_update_skb_after_send.
func (tp *TCPSock) updateSkbAfterSend(b *skb.SKB, priorWstamp int64) {
	if tp.pacingStatus == skPacingNone {
		return
	}
	rate := tp.pacingRate() // sk_pacing_rate, also after a switch away from BBR
	if rate == ^uint64(0) || rate == 0 || tp.dataSegsOut < 10 {
		return
	}
	lenNs := uint64(b.Len()) * 1_000_000_000 / rate
	credit := uint64(tp.wstampNs - priorWstamp)
	lenNs -= min(lenNs/2, credit)
	tp.wstampNs += int64(lenNs)
}

// pacingTimerFired is the pacing timer's callback: send what waited for
// its departure time, or leave it to release_sock if a user owns the
// socket. Mirrors tcp_pace_kick with tcp_tsq_handler.
func (tp *TCPSock) pacingTimerFired() { tp.runTimerWork(tcpTsqDeferred) }

// tsqWrite retransmits what is lost while cwnd allows, then sends new
// data. Mirrors tcp_tsq_write.
func (tp *TCPSock) tsqWrite() {
	switch tp.state {
	case TCPEstablished, TCPFinWait1, TCPClosing, TCPCloseWait, TCPLastAck:
	default:
		return
	}
	if tp.destroyed {
		return
	}
	if tp.lostOut > tp.retransOut && tp.cwnd > tp.packetsInFlight() {
		tp.xmitRetransmitQueue()
	}
	tp.writeXmit(tp.nonagle())
}
