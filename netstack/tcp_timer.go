package netstack

import (
	"math/bits"
	"syscall"
	"time"

	"sockfs/memctl"
)

// What the retransmit timer is armed for (icsk_pending).
const (
	timerRetrans    = 1 // ICSK_TIME_RETRANS
	timerProbe0     = 3 // ICSK_TIME_PROBE0
	timerReoTimeout = 4 // ICSK_TIME_REO_TIMEOUT: RACK's reorder timer (tcp_rack.go)
	timerLossProbe  = 5 // ICSK_TIME_LOSS_PROBE
)

// resetRetransTimer arms the retransmit/probe timer. Mirrors
// inet_csk_reset_xmit_timer with tcp_rto_max(sk) as max_when.
func (tp *TCPSock) resetRetransTimer(kind uint8, d time.Duration) {
	if d > tp.rtoMax {
		d = tp.rtoMax
	}
	tp.rtoKind = kind
	tp.rtoDeadline = tp.now() + int64(d)
	tp.retransTimer.ResetAt(tp.rtoDeadline)
}

// clearRetransTimer stops it. Mirrors inet_csk_clear_xmit_timer.
func (tp *TCPSock) clearRetransTimer() {
	tp.rtoKind = 0
	tp.rtoDeadline = 0
	tp.retransTimer.Stop()
}

// rearmRTO re-arms the RTO after an ACK: stopped when nothing is in flight,
// whatever it was armed for (inet_csk_clear_xmit_timer clears icsk_pending
// of any kind). A loss probe left pending with nothing in flight would
// fire to find nothing to probe, and until then keep checkProbeTimer from
// arming the persist timer: a window smaller than the MSS then stalled the
// sender for good. Mirrors tcp_rearm_rto.
//
// Replacing a pending reorder timer, the RTO counts from the head's
// transmission rather than from now (tcp_rto_delta_us), as Linux does for
// ICSK_TIME_REO_TIMEOUT. Linux does the same for a pending loss probe;
// sockfs re-arms a full RTO there, as it did before RACK, so that
// tcp_recovery=0 keeps the old behaviour exactly.
func (tp *TCPSock) rearmRTO() {
	if tp.packetsOut == 0 {
		tp.clearRetransTimer()
		return
	}
	rto := tp.rto
	if tp.rtoKind == timerReoTimeout {
		if head := tp.rtxQueue.Peek(); head != nil {
			rto = max(tp.rto-time.Duration(tp.now()-head.Tstamp), time.Microsecond)
		}
	}
	tp.resetRetransTimer(timerRetrans, rto)
}

// checkProbeTimer arms the zero-window probe timer when data waits and
// nothing is in flight, nor any timer pending, at tcp_probe0_base (not
// backed off). Mirrors tcp_check_probe_timer.
func (tp *TCPSock) checkProbeTimer() {
	if tp.packetsOut == 0 && tp.rtoKind == 0 {
		tp.resetRetransTimer(timerProbe0, tp.probe0Base())
	}
}

// probe0Base mirrors tcp_probe0_base: the RTO, at least TCP_RTO_MIN.
func (tp *TCPSock) probe0Base() time.Duration { return max(tp.rto, tcpRtoMin) }

// probe0When mirrors tcp_probe0_when: max(rto, TCP_RTO_MIN) backed off,
// at most tcp_rto_max(sk).
func (tp *TCPSock) probe0When() time.Duration {
	d := tp.probe0Base() << tp.backoff
	if d > tp.rtoMax || d <= 0 {
		d = tp.rtoMax
	}
	return d
}

// retransmitTimerFired is the retransmit/probe timer callback; if a user
// owns the socket the work is deferred to release_sock. Mirrors
// tcp_write_timer.
func (tp *TCPSock) retransmitTimerFired() { tp.runTimerWork(tcpWriteTimerDeferred) }

// writeTimerHandler runs the retransmit or zero-window probe timer. Caller
// holds the spinlock (not owned) or owns the socket. Mirrors
// tcp_write_timer_handler.
func (tp *TCPSock) writeTimerHandler() {
	if tp.state == TCPClose || tp.rtoKind == 0 || tp.destroyed {
		return
	}
	if now := tp.now(); now < tp.rtoDeadline {
		tp.retransTimer.ResetAt(tp.rtoDeadline)
		return
	}
	kind := tp.rtoKind
	tp.rtoKind = 0
	switch kind {
	case timerRetrans:
		tp.retransmitTimer()
	case timerProbe0:
		tp.probeTimer()
	case timerReoTimeout:
		tp.rackReoTimeout()
	case timerLossProbe:
		tp.sendLossProbe()
	}
}

// scheduleLossProbe arms the tail loss probe (RFC 8985 section 7) instead
// of the RTO when it would fire first: 2*srtt, plus the RTO floor when one
// segment is out (the peer may be delaying its ACK) or TCP_TIMEOUT_MIN
// otherwise, never after the RTO. Mirrors tcp_schedule_loss_probe (Linux
// 6.x; the 10 ms floor of older kernels is gone there). Linux rounds the
// timeout up to jiffies (4 ms at this kernel's HZ of 250); sockfs's
// timers are not in ticks.
func (tp *TCPSock) scheduleLossProbe() bool {
	if er := tp.stack.net.Sysctls.TCPEarlyRetrans(); er != 3 && er != 4 { // tcp_early_retrans: TLP on at 3 and 4
		return false
	}
	if tp.packetsOut == 0 || !tp.sackOK || (tp.caState != tcpCAOpen && tp.caState != tcpCACWR) || tp.tlpHighSeq != 0 ||
		tp.state == TCPSynSent || tp.state == TCPSynRecv {
		return false
	}
	pto := tcpTimeoutInit
	if tp.srttUs != 0 {
		pto = time.Duration(tp.srttUs>>2) * time.Microsecond
		if tp.packetsOut == 1 {
			pto += tp.rtoMin // tcp_rto_min_us
		} else {
			pto += tcpTimeoutMin
		}
	}
	if tp.rtoKind == timerRetrans && tp.rtoDeadline != 0 {
		if left := time.Duration(tp.rtoDeadline - tp.now()); left > 0 && left < pto {
			pto = left
		}
	}
	tp.resetRetransTimer(timerLossProbe, pto)
	return true
}

// sendLossProbe sends new data if the windows allow, else retransmits the
// last sent segment, to draw a SACK that triggers fast recovery instead of
// an RTO. Mirrors tcp_send_loss_probe.
func (tp *TCPSock) sendLossProbe() {
	if tp.packetsOut == 0 {
		return
	}
	tp.stack.mib.Inc(memctl.TcpExtTCPLossProbes)
	sent := false
	if b := tp.writeQueue.Peek(); b != nil && tp.sndWndTest(b, tp.sendMss()) {
		prior := tp.packetsOut
		tp.writeXmitOne(nagleOff, 2)
		sent = tp.packetsOut > prior
	}
	if !sent {
		// Probe with the last segment only: cut it off a multi-segment
		// skb first.
		if last := tp.rtxQueue.PeekTail(); last != nil {
			if pc, mss := tcpSkbPcount(last), tcpSkbMss(last); pc > 1 && last.Len() > (pc-1)*mss &&
				tp.fragment(&tp.rtxQueue, last, (pc-1)*mss, mss) {
				last = last.Next()
			}
			tp.retransmitSkb(last, 1)
		}
	}
	tp.tlpHighSeq = tp.sndNxt
	tp.tlpRetrans = !sent
	tp.resetRetransTimer(timerRetrans, tp.rtoBackoff())
}

// processTlpAck decides, on an ACK at or beyond tlp_high_seq, how the
// last tail loss probe's episode ended. A probe of new data ends with its
// ACK. A resent probe ends with the D-SACK that reports it arrived twice
// (no loss), or with a pure duplicate ACK (the same). An ACK beyond
// tlp_high_seq without either means the probe repaired a loss: cwnd is
// reduced at once (CWR, TCPLossProbeRecovery). An ACK of exactly
// tlp_high_seq that advances snd_una, or carries data, a window update or
// new SACKs, says neither yet, and the episode stays open: no second
// probe is sent while it is. Mirrors tcp_process_tlp_ack; unaAdvanced,
// notDup and dataSacked are tcp_ack's FLAG_SND_UNA_ADVANCED, FLAG_NOT_DUP
// and FLAG_DATA_SACKED, ackDsackTLP its FLAG_DSACK_TLP.
func (tp *TCPSock) processTlpAck(ack uint32, unaAdvanced, notDup, dataSacked bool) {
	if seqLT(ack, tp.tlpHighSeq) {
		return
	}
	switch {
	case !tp.tlpRetrans: // the probe was new data, now acknowledged
		tp.tlpHighSeq = 0
	case tp.ackDsackTLP: // the original and the probe both arrived
		tp.tlpHighSeq = 0
	case seqGT(ack, tp.tlpHighSeq):
		tp.initCwndReduction() // clears tlp_high_seq
		tp.setCAState(tcpCACWR)
		tp.endCwndReduction()
		tp.tryKeepOpen()
		tp.stack.mib.Inc(memctl.TcpExtTCPLossProbeRecovery)
	case !unaAdvanced && !notDup && !dataSacked: // a pure duplicate ACK: no loss
		tp.tlpHighSeq = 0
	}
}

// modelTimeout is how long boundary back-offs from rtoBase take, in the
// exponential then (at the RTO ceiling) linear schedule. Mirrors
// tcp_model_timeout.
func (tp *TCPSock) modelTimeout(boundary int, rtoBase time.Duration) time.Duration {
	thresh := bits.Len64(uint64(tp.rtoMax/rtoBase)) - 1 // ilog2
	if boundary <= thresh {
		return time.Duration((2<<boundary)-1) * rtoBase
	}
	return time.Duration((2<<thresh)-1)*rtoBase + time.Duration(boundary-thresh)*tp.rtoMax
}

// retransmitsTimedOut reports whether the retransmissions started at
// retrans_stamp have lasted timeout, or (timeout 0) as long as boundary
// back-offs would. Mirrors retransmits_timed_out.
func (tp *TCPSock) retransmitsTimedOut(boundary int, timeout time.Duration) bool {
	if tp.retransmits == 0 {
		return false
	}
	if timeout == 0 {
		base := tcpRtoMin
		if tp.state == TCPSynSent || tp.state == TCPSynRecv {
			base = tcpTimeoutInit
		}
		timeout = tp.modelTimeout(boundary, base)
	}
	return time.Duration(tp.now()-tp.retransStamp) >= timeout
}

// orphanRetries is the retry budget of an orphan: tcp_orphan_retries, or 8
// when it is 0 and the RTO is still below its ceiling. Mirrors
// tcp_orphan_retries.
func (tp *TCPSock) orphanRetries(alive bool) int {
	r := tp.stack.net.Sysctls.TCPOrphanRetries()
	if r == 0 && alive {
		r = 8
	}
	return r
}

// tooManyOrphans mirrors tcp_too_many_orphans: the orphans, doubled per
// shift, above tcp_max_orphans.
func (s *Stack) tooManyOrphans(shift int) bool {
	return s.net.TCP.OrphanCount()<<shift > int64(s.net.Sysctls.TCPMaxOrphans())
}

// checkOOM reports whether an orphan must go for lack of resources: too
// many orphans or TCP memory over its limit, each logged. Mirrors
// tcp_check_oom.
func (tp *TCPSock) checkOOM(shift int) bool {
	orphans, mem := tp.stack.tooManyOrphans(shift), tp.sk.TCPOutOfMemory()
	if orphans {
		tp.stack.log.Info("too many orphaned sockets", "tcp_max_orphans", tp.stack.net.Sysctls.TCPMaxOrphans())
	}
	if mem {
		tp.stack.log.Info("out of memory -- consider tuning tcp_mem")
	}
	return orphans || mem
}

// outOfResources kills an orphan when checkOOM says so, with a RST when it
// sent recently, its window is closed or doReset: TCPAbortOnMemory.
// Mirrors tcp_out_of_resources.
func (tp *TCPSock) outOfResources(doReset bool) bool {
	shift := 0
	if time.Duration(tp.now()-tp.lsndtime) > 2*tcpRtoMax || !doReset {
		shift++
	}
	if !tp.checkOOM(shift) {
		return false
	}
	if time.Duration(tp.now()-tp.lsndtime) <= tcpTimewaitLen || (tp.sndWnd == 0 && tp.packetsOut == 0) {
		doReset = true
	}
	if doReset {
		tp.sendActiveReset()
	}
	tp.setErr(syscall.ENOMEM) // nobody reads it: the socket is an orphan
	tp.tcpDone()
	tp.stack.mib.Inc(memctl.TcpExtTCPAbortOnMemory)
	return true
}

// writeTimeout decides, at an RTO, whether the connection has tried long
// enough: tcp_syn_retries retransmissions of a SYN; for an orphan,
// tcp_orphan_retries worth of back-offs (and out-of-resources); otherwise
// tcp_retries2 worth, or TCP_USER_TIMEOUT. It ends the connection
// (ETIMEDOUT) and reports true when so. Mirrors tcp_write_timeout.
func (tp *TCPSock) writeTimeout() bool {
	sys := tp.stack.net.Sysctls
	var expired bool
	retryUntil := sys.TCPRetries2()
	if tp.state == TCPSynSent || tp.state == TCPSynRecv {
		retryUntil = sys.TCPSynRetries()
		maxRetransmits := retryUntil
		if tp.state == TCPSynSent {
			// The linear retransmissions come on top (6.5+).
			maxRetransmits += sys.TCPSynLinearTimeouts()
		}
		expired = int(tp.retransmits) >= maxRetransmits
	} else if tp.dead {
		alive := tp.rtoBackoff() < tp.rtoMax
		retryUntil = tp.orphanRetries(alive)
		doReset := alive || !tp.retransmitsTimedOut(retryUntil, 0)
		if tp.outOfResources(doReset) {
			return true
		}
	}
	if tp.state != TCPSynSent && tp.state != TCPSynRecv {
		tp.blackHoleCheck()
	}
	if !expired {
		expired = tp.retransmitsTimedOut(retryUntil, tp.userTimeout)
	}
	if expired {
		tp.writeTimedOut()
	}
	return expired
}

// blackHoleCheck runs black-hole detection once tcp_retries1 worth of RTOs
// have passed (tcp_write_timeout). Linux also gives the route negative
// advice there (__dst_negative_advice); sockfs's routes are static.
func (tp *TCPSock) blackHoleCheck() {
	if tp.retransmitsTimedOut(tp.stack.net.Sysctls.TCPRetries1(), 0) {
		tp.mtuProbing()
	}
}

// streamIsThin mirrors tcp_stream_is_thin: fewer than four packets out and
// past the initial slow start.
func (tp *TCPSock) streamIsThin() bool {
	return tp.packetsOut < 4 && tp.ssthresh < 0x7fffffff
}

// retransmitTimer handles an RTO: gives up when writeTimeout says so, else
// enters loss, retransmits the head and backs off (not for the first six
// RTOs of a thin stream with tcp_thin_linear_timeouts, nor for the first
// tcp_syn_linear_timeouts of a SYN). Mirrors tcp_retransmit_timer.
func (tp *TCPSock) retransmitTimer() {
	head := tp.rtxQueue.Peek()
	if tp.packetsOut == 0 || head == nil {
		return
	}
	if tp.writeTimeout() {
		return
	}

	tp.stack.mib.Inc(memctl.TcpExtTCPTimeouts)
	if tp.state != TCPSynSent {
		tp.enterLoss()
	}
	if tp.state == TCPSynRecv {
		cbSetFlags(head, tcpSyn|tcpAck)
	}
	tp.retransmitSkb(head, 1)
	tp.retransmits++
	if tp.state == TCPEstablished && tp.stack.net.Sysctls.TCPThinLinearTimeouts() && tp.streamIsThin() &&
		tp.retransmits <= tcpThinLinearRet {
		tp.backoff = 0 // linear: the RTO of the current srtt (__tcp_set_rto)
	} else if tp.state != TCPSynSent || int(tp.retransmits) > tp.stack.net.Sysctls.TCPSynLinearTimeouts() {
		// A SYN is resent at the initial RTO for its first
		// tcp_syn_linear_timeouts timeouts (total_rto: the RTOs so far,
		// which for a SYN are its retransmissions).
		tp.backoff++
	}
	tp.resetRetransTimer(timerRetrans, tp.clampRtoToUserTimeout(tp.rtoBackoff()))
}

// clampRtoToUserTimeout cuts the next RTO to what TCP_USER_TIMEOUT leaves
// since the first retransmission, so that the connection gives up when
// the user timeout says, not up to a whole back-off later. Mirrors
// tcp_clamp_rto_to_user_timeout.
func (tp *TCPSock) clampRtoToUserTimeout(rto time.Duration) time.Duration {
	if tp.userTimeout == 0 {
		return rto
	}
	remaining := tp.userTimeout - time.Duration(tp.now()-tp.retransStamp)
	if remaining <= 0 {
		return 4 * time.Millisecond // passed: at once (one jiffy at HZ 250)
	}
	return min(rto, remaining)
}

// writeErr aborts the connection with err. Mirrors tcp_done_with_error.
func (tp *TCPSock) writeErr(err syscall.Errno) {
	tp.setErr(err)
	tp.tcpDone()
}

// writeTimedOut aborts a connection that a timer gave up on (RTOs, zero
// window probes, keepalives): the last ICMP error it heard or ETIMEDOUT,
// counted in TCPAbortOnTimeout. Mirrors tcp_write_err.
func (tp *TCPSock) writeTimedOut() {
	tp.writeErr(tp.timeoutErr())
	tp.stack.mib.Inc(memctl.TcpExtTCPAbortOnTimeout)
}

// timeoutErr is the error a connection that timed out reports: the last
// ICMP error it heard, else ETIMEDOUT. Mirrors tcp_write_err's
// sk_err_soft ? : ETIMEDOUT.
func (tp *TCPSock) timeoutErr() syscall.Errno {
	if tp.errSoft != 0 {
		return tp.errSoft
	}
	return syscall.ETIMEDOUT
}

// setErr records a socket error and wakes everybody.
func (tp *TCPSock) setErr(err syscall.Errno) {
	tp.err.Store(int32(err))
	tp.sk.SetErr(err)
}

// probeTimer sends a zero-window probe and backs off; an orphan whose
// probes go unanswered too long is dropped, and so is a connection whose
// window stayed closed for TCP_USER_TIMEOUT since the timer first fired
// (icsk_probes_tstamp; the peer's answers to the probes do not restart
// that clock, as they do rcv_tstamp). Mirrors tcp_probe_timer.
func (tp *TCPSock) probeTimer() {
	if tp.packetsOut > 0 || tp.writeQueue.Empty() {
		tp.probesOut = 0
		tp.probesTstamp = 0
		return
	}
	if tp.probesTstamp == 0 {
		tp.probesTstamp = max(tp.now(), 1)
	} else if tp.userTimeout != 0 && time.Duration(tp.now()-tp.probesTstamp) >= tp.userTimeout {
		tp.writeTimedOut()
		return
	}
	// The same budget as RTOs, counted in probes.
	maxProbes := tp.stack.net.Sysctls.TCPRetries2()
	if tp.dead {
		alive := tp.probe0When() < tp.rtoMax
		maxProbes = tp.orphanRetries(alive)
		if !alive && int(tp.backoff) >= maxProbes {
			tp.writeTimedOut()
			return
		}
		if tp.outOfResources(true) {
			return
		}
	}
	if int(tp.probesOut) >= maxProbes {
		tp.writeTimedOut()
		return
	}
	tp.sendProbe0()
}

// sendProbe0 sends a window probe (writeWakeup) and re-arms the persist
// timer backed off once more, while the back-off is below tcp_retries2
// (so with tcp_retries2 3 the interval stops growing at 8 RTOs), cut to
// what TCP_USER_TIMEOUT leaves. A probe that carried data hands over to
// the RTO. Mirrors tcp_send_probe0.
func (tp *TCPSock) sendProbe0() {
	tp.writeWakeup()
	if tp.packetsOut > 0 || tp.writeQueue.Empty() {
		tp.probesOut = 0
		tp.backoff = 0
		tp.probesTstamp = 0
		return
	}
	tp.probesOut++
	if int(tp.backoff) < tp.stack.net.Sysctls.TCPRetries2() {
		tp.backoff++
	}
	tp.resetRetransTimer(timerProbe0, tp.clampProbe0ToUserTimeout(tp.probe0When()))
}

// clampProbe0ToUserTimeout cuts the persist timer's next interval to what
// TCP_USER_TIMEOUT leaves since icsk_probes_tstamp, at least
// TCP_TIMEOUT_MIN, so that the connection gives up when the user timeout
// says, not up to a whole back-off later. Once the user timeout has
// passed, the interval is left alone (Linux's unsigned remaining wraps
// there; tcp_probe_timer gives up when the timer fires). Mirrors
// tcp_clamp_probe0_to_user_timeout.
func (tp *TCPSock) clampProbe0ToUserTimeout(when time.Duration) time.Duration {
	if tp.userTimeout == 0 || tp.probesTstamp == 0 {
		return when
	}
	remaining := tp.userTimeout - max(time.Duration(tp.now()-tp.probesTstamp), 0)
	if remaining < 0 {
		return when
	}
	return min(max(remaining, tcpTimeoutMin), when)
}

// scheduleDelack arms the delayed-ACK timer for ato, bounded as
// tcp_send_delayed_ack bounds an inflated ato: by half a second
// (TCP_DELACK_MAX in ping-pong mode or after a pushed segment) and, once
// there is an RTT estimate, by the smoothed RTT (at least TCP_DELACK_MIN).
// So after the timer doubled ato a fast path still gets its ACKs after
// 40 ms, as the live kernel does. Mirrors tcp_send_delayed_ack.
func (tp *TCPSock) scheduleDelack() {
	ato := max(tp.ato, tcpAtoMin)
	if ato > tcpDelackMin {
		maxAto := 500 * time.Millisecond // HZ/2
		if tp.inPingpong() || tp.ackPending&icskAckPushed != 0 {
			maxAto = tcpDelackMax
		}
		if tp.srttUs != 0 {
			maxAto = min(maxAto, max(time.Duration(tp.srttUs>>3)*time.Microsecond, tcpDelackMin))
		}
		ato = min(ato, maxAto)
	}
	deadline := tp.now() + int64(ato)
	if tp.ackPending&icskAckTimer != 0 && tp.ackDeadline != 0 && tp.ackDeadline <= deadline {
		return // an earlier deadline is already set
	}
	tp.ackPending |= icskAckSched | icskAckTimer
	tp.ackDeadline = deadline
	tp.delackTimer.ResetAt(deadline)
}

// delackTimerFired is the delayed-ACK timer callback; if a user owns the
// socket the work is deferred to release_sock. Mirrors tcp_delack_timer.
func (tp *TCPSock) delackTimerFired() { tp.runTimerWork(tcpDelackTimerDeferred) }

// delackTimerHandler sends the delayed ACK, inflating ato, and reclaims
// memory under pressure. Caller holds the spinlock (not owned) or owns the
// socket. Mirrors tcp_delack_timer_handler.
func (tp *TCPSock) delackTimerHandler() {
	if tp.state == TCPClose || tp.state == TCPListen || tp.destroyed {
		return
	}
	if tp.ackPending&icskAckTimer == 0 {
		return
	}
	if now := tp.now(); now < tp.ackDeadline {
		tp.delackTimer.ResetAt(tp.ackDeadline)
		return
	}
	tp.ackPending &^= icskAckTimer
	if tp.stack.net.TCP.UnderMemoryPressure() {
		tp.sk.MemReclaim() // sk_mem_reclaim under pressure
	}
	if tp.ackPending&icskAckSched != 0 {
		if !tp.inPingpong() {
			tp.ato = min(tp.ato<<1, tp.rto) // inflate ato
		} else {
			tp.ackPingpong = 0 // inet_csk_exit_pingpong_mode
			tp.ato = tcpAtoMin
		}
		tp.sendAck()
		tp.stack.mib.Inc(memctl.TcpExtDelayedACKs)
	}
}

// eventAckSent clears the pending ACK state. Mirrors tcp_event_ack_sent /
// tcp_dec_quickack_mode / inet_csk_clear_xmit_timer(ICSK_TIME_DACK).
func (tp *TCPSock) eventAckSent() {
	// A quick ACK is used up only by an ACK that was due (of new data);
	// leaving quickack mode deflates ato.
	if tp.ackQuick > 0 && tp.ackPending&icskAckSched != 0 {
		tp.ackQuick--
		if tp.ackQuick == 0 {
			tp.ato = tcpAtoMin
		}
	}
	tp.ackPending = 0
	tp.ackDeadline = 0
	tp.delackTimer.Stop()
	tp.rcvWup = tp.rcvNxt
	if tp.compressedAck > 0 {
		// The ACKs merged into this one (tcp_event_ack_sent).
		tp.stack.mib.Add(memctl.TcpExtTCPAckCompressed, uint64(tp.compressedAck))
		tp.compressedAck = 0
	}
}

// resetKeepTimer arms sk_timer (keepalive, FIN_WAIT2 and TIME_WAIT share
// it). Mirrors inet_csk_reset_keepalive_timer.
//
// A delay under one jiffy is one jiffy: Linux's sk_reset_timer(jiffies +
// 0) runs at the next tick, not at once, so a tcp_keepalive_intvl of 0
// leaves a probe's ACK the time to come back (without it nine probes went
// out within microseconds and the connection was reset).
func (tp *TCPSock) resetKeepTimer(d time.Duration) {
	d = max(d, memctl.Jiffy)
	tp.kaDeadline = tp.now() + int64(d)
	tp.keepTimer.ResetAt(tp.kaDeadline)
}

// keepaliveTimerFired handles keepalive probes, the FIN_WAIT2 timeout of an
// orphan and the end of TIME_WAIT. Mirrors tcp_keepalive_timer and
// tcp_time_wait's timer (inet_twsk_kill).
// A socket owned by a user makes it try again in HZ/20, as Linux does.
func (tp *TCPSock) keepaliveTimerFired() {
	if tp.bhLockSock() {
		tp.bhUnlockSock()
		tp.keepTimer.Reset(tcpTimerRetry)
		return
	}
	defer tp.bhUnlockSock()
	if tp.destroyed || tp.kaDeadline == 0 {
		return
	}
	if now := tp.now(); now < tp.kaDeadline {
		tp.keepTimer.ResetAt(tp.kaDeadline)
		return
	}
	tp.kaDeadline = 0
	switch tp.state {
	case TCPTimeWait:
		tp.tcpDone()
		tp.destroyIfOrphan()
		return
	case TCPFinWait2:
		switch {
		case tp.fw2tw: // a FIN_WAIT2 timewait sock's end: silent
			tp.tcpDone()
			tp.destroyIfOrphan()
		case tp.dead: // tcp_keepalive_timer's FIN_WAIT2 branch
			if tmo := tp.finTime() - tcpTimewaitLen; tmo > 0 {
				tp.timeWait(TCPFinWait2, tmo)
				return
			}
			tp.sendActiveReset()
			tp.tcpDone()
			tp.destroyIfOrphan()
		}
		return
	case TCPEstablished, TCPCloseWait, TCPFinWait1, TCPClosing, TCPLastAck:
	default:
		return
	}
	if !tp.keepalive {
		return
	}
	idle := time.Duration(tp.now() - tp.rcvTstamp)
	kaTime := tp.keepaliveTime()
	if tp.packetsOut > 0 || !tp.writeQueue.Empty() {
		tp.resetKeepTimer(kaTime)
		return
	}
	if idle >= kaTime {
		// With TCP_USER_TIMEOUT set, it decides when to give up (once
		// a probe went unanswered), not the probe count.
		ut := tp.userTimeout
		if ut != 0 && idle >= ut && tp.probesOut > 0 || ut == 0 && int(tp.probesOut) >= tp.keepaliveProbes() {
			tp.sendActiveReset()
			tp.writeTimedOut()
			return
		}
		tp.transmitSkb(controlSkb(tp.sndUna-1, tcpAck), false) // tcp_xmit_probe_skb
		tp.stack.mib.Inc(memctl.TcpExtTCPKeepAlive)
		tp.probesOut++
		tp.resetKeepTimer(tp.keepaliveIntvl())
		return
	}
	tp.resetKeepTimer(kaTime - idle)
}

// keepaliveTime is TCP_KEEPIDLE or the live tcp_keepalive_time. Mirrors
// keepalive_time_when.
func (tp *TCPSock) keepaliveTime() time.Duration {
	if tp.kaTime != 0 {
		return tp.kaTime
	}
	return tp.stack.net.Sysctls.TCPKeepaliveTime()
}

// keepaliveIntvl is TCP_KEEPINTVL or the live tcp_keepalive_intvl.
// Mirrors keepalive_intvl_when.
func (tp *TCPSock) keepaliveIntvl() time.Duration {
	if tp.kaIntvl != 0 {
		return tp.kaIntvl
	}
	return tp.stack.net.Sysctls.TCPKeepaliveIntvl()
}

// keepaliveProbes is TCP_KEEPCNT or the live tcp_keepalive_probes.
// Mirrors keepalive_probes.
func (tp *TCPSock) keepaliveProbes() int {
	if tp.kaProbes != 0 {
		return tp.kaProbes
	}
	return tp.stack.net.Sysctls.TCPKeepaliveProbes()
}

// finTime is how long an orphan stays in FIN_WAIT2: the live sysctl
// tcp_fin_timeout, at least 3.5 RTOs. Mirrors tcp_fin_time (no
// TCP_LINGER2 here).
func (tp *TCPSock) finTime() time.Duration {
	t := tp.stack.net.Sysctls.TCPFinTimeout()
	if floor := tp.rto<<2 - tp.rto>>1; t < floor {
		t = floor
	}
	return t
}

// destroyIfOrphan frees a closed socket nobody holds any more.
func (tp *TCPSock) destroyIfOrphan() {
	if tp.state == TCPClose && (tp.dead || tp.released) {
		tp.destroyLocked()
	}
}

// enterTimeWait moves to TIME_WAIT for 2*MSL: the connection becomes a
// timewait sock (timeWait). Mirrors tcp_time_wait(sk, TCP_TIME_WAIT, 0).
func (tp *TCPSock) enterTimeWait() { tp.timeWait(TCPTimeWait, tcpTimewaitLen) }

// timeWait turns the connection into a timewait sock in state (TIME_WAIT,
// or FIN_WAIT2 for an orphan waiting for the peer's FIN) for tmo: with
// tcp_max_tw_buckets reached it is closed at once instead
// (TCPTimeWaitOverflow); otherwise it counts in tw (TW, or TWKilled for
// tmo of at most 4 s) and stops counting as an orphan, in inuse and, once
// its user has let it go, in sockets_allocated, as Linux frees the full
// socket; its timers and unsent data go. A FIN_WAIT2 timewait sock
// (marked fw2tw) expires without a RST, a FIN moves it to TIME_WAIT (the
// same timewait sock, rescheduled: counted once), new data draws a RST.
// An orphan's memory goes with its full socket; a held socket keeps its
// unread data. sockfs keeps one TCPSock for both socks. Mirrors
// tcp_time_wait with inet_twsk_alloc and __inet_twsk_schedule, and its
// tcp_done.
func (tp *TCPSock) timeWait(state TCPState, tmo time.Duration) {
	s := tp.stack
	if tp.fw2tw { // tcp_timewait_state_process: FIN_WAIT2 -> TIME_WAIT
		tp.twEntry = tp.now()
		tp.setState(state)
		tp.resetKeepTimer(tmo)
		return
	}
	if s.net.TCP.TwCount() >= int64(s.net.Sysctls.TCPMaxTwBuckets()) { // inet_twsk_alloc
		s.mib.Inc(memctl.TcpExtTCPTimeWaitOverflow)
		tp.tcpDone()
		return
	}
	if tmo <= 4*time.Second {
		s.mib.Inc(memctl.TcpExtTWKilled)
	} else {
		s.mib.Inc(memctl.TcpExtTW)
	}
	tp.setOrphan(false)
	tp.twEntry = tp.now()
	if state == TCPFinWait2 {
		tp.fw2tw = true
		s.net.TCP.TwCountAdd(1) // setState counts TIME_WAIT's
	} else {
		tp.setState(state)
	}
	tp.setInuse(false) // a timewait sock takes the hash slot, uncounted
	if tp.dead {
		// The orphan's full socket is destroyed (tcp_done ->
		// inet_csk_destroy_sock): out of sockets_allocated, its receive
		// queues purged (sk_stream_kill_queues, the out-of-order queue
		// in tcp_v4_destroy_sock) and forward_alloc returned to tcp_mem
		// (sk_mem_reclaim_final), below with the write queues. What
		// arrived since the user's close (the peer's FIN, queued by
		// dataQueue before tcp_fin brought the socket here) no longer
		// holds rmem_alloc and a page of tcp_mem for 2*MSL.
		tp.twUncount()
		tp.purgeRecvQueues()
	}
	// A socket the user still holds keeps its receive queue, readable to
	// the end of the stream and charged until read or closed, as Linux's
	// full socket (in TCP_CLOSE beside its timewait sock) does.
	tp.clearRetransTimer()
	tp.delackTimer.Stop()
	tp.purgeWriteQueues()
	tp.resetKeepTimer(tmo)
}

// finWait2Timer arms the FIN_WAIT2 timer of an orphan: past
// TCP_TIMEWAIT_LEN the keepalive timer waits the rest as a full socket;
// otherwise it becomes a timewait sock at once, unless bad says the full
// socket must stay (the segment that acknowledged our FIN carries the
// peer's, or the socket is owned). Mirrors tcp_close's and
// tcp_rcv_state_process's FIN_WAIT2 handling.
func (tp *TCPSock) finWait2Timer(bad bool) {
	tmo := tp.finTime()
	switch {
	case tmo > tcpTimewaitLen:
		tp.resetKeepTimer(tmo - tcpTimewaitLen)
	case bad:
		tp.resetKeepTimer(tmo)
	default:
		tp.timeWait(TCPFinWait2, tmo)
	}
}
