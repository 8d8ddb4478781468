package netstack

import (
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
// inet_csk_reset_xmit_timer.
func (tp *TCPSock) resetRetransTimer(kind uint8, d time.Duration) {
	if d > tcpRtoMax {
		d = tcpRtoMax
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

// rearmRTO re-arms the RTO after an ACK: stopped when nothing is in flight.
// Mirrors tcp_rearm_rto.
//
// Replacing a pending reorder timer, the RTO counts from the head's
// transmission rather than from now (tcp_rto_delta_us), as Linux does for
// ICSK_TIME_REO_TIMEOUT. Linux does the same for a pending loss probe;
// sockfs re-arms a full RTO there, as it did before RACK, so that
// tcp_recovery=0 keeps the old behaviour exactly.
func (tp *TCPSock) rearmRTO() {
	if tp.packetsOut == 0 {
		if tp.rtoKind == timerRetrans || tp.rtoKind == timerReoTimeout {
			tp.clearRetransTimer()
		}
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
// nothing is in flight. Mirrors tcp_check_probe_timer.
func (tp *TCPSock) checkProbeTimer() {
	if tp.packetsOut == 0 && tp.rtoKind == 0 {
		tp.resetRetransTimer(timerProbe0, tp.probe0When())
	}
}

func (tp *TCPSock) probe0When() time.Duration {
	d := tp.rto << tp.backoff
	if d < tcpRtoMin {
		d = tcpRtoMin
	}
	if d > tcpRtoMax || d <= 0 {
		d = tcpRtoMax
	}
	return d
}

// retransmitTimerFired is the retransmit/probe timer callback; if a user
// owns the socket the work is deferred to release_sock. Mirrors
// tcp_write_timer.
func (tp *TCPSock) retransmitTimerFired() {
	if tp.bhLockSock() {
		tp.deferred |= tcpWriteTimerDeferred
		tp.bhUnlockSock()
		return
	}
	defer tp.bhUnlockSock()
	tp.writeTimerHandler()
}

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
// of the RTO when it would fire first: 2*srtt (plus the delayed-ACK time
// when one segment is out), at least 10 ms, never after the RTO. Mirrors
// tcp_schedule_loss_probe.
func (tp *TCPSock) scheduleLossProbe() bool {
	if tp.packetsOut == 0 || !tp.sackOK || tp.caState != tcpCAOpen || tp.tlpHighSeq != 0 ||
		tp.state == TCPSynSent || tp.state == TCPSynRecv {
		return false
	}
	pto := tcpTimeoutInit
	if tp.srttUs != 0 {
		pto = time.Duration(tp.srttUs>>2) * time.Microsecond
		if tp.packetsOut == 1 {
			pto += tcpDelackMax
		}
		pto = max(pto, 10*time.Millisecond)
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

// retransmitTimer handles an RTO: gives up after tcp_retries2 (or
// tcp_syn_retries for a SYN), else enters loss, retransmits the head and
// backs off. Mirrors tcp_retransmit_timer.
func (tp *TCPSock) retransmitTimer() {
	head := tp.rtxQueue.Peek()
	if tp.packetsOut == 0 || head == nil {
		return
	}
	limit := tcpRetries2
	if tp.state == TCPSynSent || tp.state == TCPSynRecv {
		limit = tcpSynRetries
	}
	if tp.dead && tp.sk.TCPOutOfMemory() {
		tp.stack.mib.Inc(memctl.TcpExtTCPAbortOnMemory)
		tp.sendActiveReset()
		tp.writeErr(syscall.ENOMEM)
		return
	}
	if int(tp.retransmits) >= limit {
		tp.stack.mib.Inc(memctl.TcpExtTCPAbortOnTimeout)
		tp.writeErr(syscall.ETIMEDOUT)
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
	tp.backoff++
	tp.resetRetransTimer(timerRetrans, tp.rtoBackoff())
}

// writeErr aborts the connection with err. Mirrors tcp_write_err + tcp_done.
func (tp *TCPSock) writeErr(err syscall.Errno) {
	tp.setErr(err)
	tp.tcpDone()
}

// setErr records a socket error and wakes everybody.
func (tp *TCPSock) setErr(err syscall.Errno) {
	tp.err.Store(int32(err))
	tp.sk.SetErr(err)
}

// probeTimer sends a zero-window probe and backs off; an orphan whose
// probes go unanswered too long is dropped. Mirrors tcp_probe_timer +
// tcp_send_probe0.
func (tp *TCPSock) probeTimer() {
	if tp.packetsOut > 0 || tp.writeQueue.Empty() {
		tp.probesOut = 0
		return
	}
	if tp.dead && tp.sk.TCPOutOfMemory() {
		tp.stack.mib.Inc(memctl.TcpExtTCPAbortOnMemory)
		tp.sendActiveReset()
		tp.writeErr(syscall.ENOMEM)
		return
	}
	if int(tp.probesOut) >= tcpRetries2 {
		tp.writeErr(syscall.ETIMEDOUT)
		return
	}
	tp.writeWakeup()
	if tp.packetsOut > 0 { // the probe carried data: the RTO takes over
		tp.probesOut = 0
		tp.backoff = 0
		return
	}
	tp.probesOut++
	if tp.backoff < 15 {
		tp.backoff++
	}
	tp.resetRetransTimer(timerProbe0, tp.probe0When())
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
		if tp.ackPingpong || tp.ackPending&icskAckPushed != 0 {
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
func (tp *TCPSock) delackTimerFired() {
	if tp.bhLockSock() {
		tp.deferred |= tcpDelackTimerDeferred
		tp.bhUnlockSock()
		return
	}
	defer tp.bhUnlockSock()
	tp.delackTimerHandler()
}

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
		if !tp.ackPingpong {
			tp.ato = min(tp.ato<<1, tp.rto) // inflate ato
		} else {
			tp.ackPingpong = false
			tp.ato = tcpAtoMin
		}
		tp.sendAck()
		tp.stack.mib.Inc(memctl.TcpExtDelayedACKs)
	}
}

// eventAckSent clears the pending ACK state. Mirrors tcp_event_ack_sent /
// inet_csk_clear_xmit_timer(ICSK_TIME_DACK).
func (tp *TCPSock) eventAckSent() {
	if tp.ackQuick > 0 {
		tp.ackQuick--
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
func (tp *TCPSock) resetKeepTimer(d time.Duration) {
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
		tp.stack.mib.Inc(memctl.TcpExtTW)
		tp.tcpDone()
		tp.destroyIfOrphan()
		return
	case TCPFinWait2:
		if tp.dead {
			tp.sendActiveReset()
			tp.tcpDone()
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
	if tp.packetsOut > 0 || !tp.writeQueue.Empty() {
		tp.resetKeepTimer(tp.kaTime)
		return
	}
	if idle >= tp.kaTime {
		if int(tp.probesOut) >= tp.kaProbes {
			tp.writeErr(syscall.ETIMEDOUT)
			return
		}
		p := allocControlSkb()
		cbSetSeq(p, tp.sndUna-1)
		cbSetFlags(p, tcpAck)
		tp.transmitSkb(p, false)
		tp.stack.mib.Inc(memctl.TcpExtTCPKeepAlive)
		tp.probesOut++
		tp.resetKeepTimer(tp.kaIntvl)
		return
	}
	tp.resetKeepTimer(tp.kaTime - idle)
}

// destroyIfOrphan frees a closed socket nobody holds any more.
func (tp *TCPSock) destroyIfOrphan() {
	if tp.state == TCPClose && (tp.dead || tp.released) {
		tp.destroyLocked()
	}
}

// enterTimeWait moves to TIME_WAIT for 2*MSL. Mirrors tcp_time_wait (the
// full socket stays instead of a timewait mini-socket: sockfs keeps the
// socket's memory anyway, and its queues are already empty).
func (tp *TCPSock) enterTimeWait() {
	tp.setState(TCPTimeWait)
	tp.clearRetransTimer()
	tp.delackTimer.Stop()
	tp.purgeWriteQueues()
	tp.resetKeepTimer(tcpTimewaitLen)
}
