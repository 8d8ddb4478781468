package netstack

// RACK-TLP loss detection (RFC 8985) as Linux does it (net/ipv4/tcp_recovery.c),
// switched by net.ipv4.tcp_recovery (bit 0, on by default as in Linux).
//
// RACK marks an skb lost when an skb sent after it has been delivered
// (SACKed or cumulatively acked) and more than the latest RTT plus a
// reordering window has passed since it was sent. Because it compares
// transmit times rather than sequence numbers, it detects a lost
// retransmission as soon as something sent after that retransmission is
// delivered, where RFC 6675 has to wait for an RTO. The reordering window
// is min_rtt/4 (times reo_wnd_steps, widened by DSACKs that show RACK was
// too eager), or zero while no reordering has been seen and dupthresh skbs
// are SACKed; when an skb is not yet late enough but would be soon, the
// reorder timer (timerReoTimeout, ICSK_TIME_REO_TIMEOUT) re-runs the check.
//
// Deviation: Linux walks tsorted_sent_queue, a list of the unSACKed sent
// skbs in transmit-time order (a retransmitted skb moves to its tail), and
// stops at the first skb not sent before the RACK reference. sockfs has no
// such list (it would need a second link in every skb); rackDetectLoss walks
// the retransmit queue in sequence order instead, skipping SACKed skbs, and
// looks at every skb's own transmit time, so retransmitted skbs are judged by
// the time of their latest retransmission exactly as in Linux. It may stop
// early only at a never-retransmitted skb sent at or after the reference:
// original transmissions go out in sequence order, so every skb after it
// was sent at or after it too (by original transmission or a later
// retransmission). Both walks mark the same skbs and arm the same timer.

import (
	"time"

	"sockfs/memctl"
	"sockfs/skb"
)

// RACK constants (include/net/tcp.h).
const (
	tcpRackRecoveryThresh = 16                      // TCP_RACK_RECOVERY_THRESH
	tcpTimeoutMin         = 2 * time.Millisecond    // TCP_TIMEOUT_MIN: 2 jiffies at HZ=1000
	tcpRackNoMinRtt       = ^uint32(0)              // tcp_min_rtt before the first sample
	tcpRackMaxReoSteps    = 0xff                    // reo_wnd_steps is a u8
	nsPerUs               = int64(time.Microsecond) // tcp_mstamp and RACK times are in microseconds
)

// tcpRack is struct tcp_sock's rack: the most recently sent skb that was
// delivered, and the reordering-window state.
type tcpRack struct {
	mstamp        int64  // mstamp: transmit time (stack clock, ns) of that skb
	rttUs         uint32 // rtt_us: its RTT (now minus mstamp at delivery)
	endSeq        uint32 // end_seq: its end, ordering skbs sent at the same instant
	lastDelivered uint32 // last_delivered: tp.delivered at the last reo_wnd change
	reoWndSteps   uint8  // reo_wnd_steps: reo_wnd in units of min_rtt/4
	reoWndPersist uint8  // reo_wnd_persist: recoveries before reo_wnd resets
	dsackSeen     bool   // dsack_seen: a DSACK since the last reo_wnd change
	advanced      bool   // advanced: mstamp moved since the last detection
}

// rackEnabled is tcp_is_rack: net.ipv4.tcp_recovery has TCP_RACK_LOSS_DETECTION.
// RACK needs SACK to see deliveries beyond snd_una; without it Linux's
// NewReno marking (markHeadLost here) applies whatever the sysctl says.
func (tp *TCPSock) rackEnabled() bool {
	return tp.stack.net.Sysctls.TCPRecovery()&memctl.TCPRackLossDetection != 0
}

// minRttUs is tcp_min_rtt: the windowed minimum RTT in microseconds, or
// ^0 before the first sample.
func (tp *TCPSock) minRttUs() uint32 { return tp.rttMin.get() }

// updateRttMin folds an RTT sample into the windowed minimum. Mirrors
// tcp_update_rtt_min.
func (tp *TCPSock) updateRttMin(rtt time.Duration) {
	us := uint32(max(int64(rtt/time.Microsecond), 1))
	wlen := tp.stack.net.Sysctls.TCPMinRttWlen() // tcp_min_rtt_wlen, read live
	tp.rttMin.runningMin(int64(wlen/time.Microsecond), tp.now()/nsPerUs, us)
}

// rackSentAfter says whether the skb sent at t1 with end_seq seq1 went out
// after the one sent at t2 ending at seq2; the later end breaks a tie.
// Mirrors tcp_skb_sent_after (tcp_rack_sent_after before 6.1).
func rackSentAfter(t1, t2 int64, seq1, seq2 uint32) bool {
	return t1 > t2 || (t1 == t2 && seqGT(seq1, seq2))
}

// rackAdvance records a newly delivered skb as the RACK reference if it was
// sent after the current one. A retransmitted skb acked sooner than min_rtt
// after its retransmission was delivered by its original transmission (or
// an earlier retransmission), so its transmit time says nothing and it is
// ignored. Mirrors tcp_rack_advance.
func (tp *TCPSock) rackAdvance(sacked uint8, endSeq uint32, xmitTime int64) {
	rttUs := uint32(max(tp.now()-xmitTime, 0) / nsPerUs)
	if rttUs < tp.minRttUs() && sacked&(tcpcbSackedRetrans|tcpcbEverRetrans) != 0 {
		return
	}
	tp.rack.advanced = true
	tp.rack.rttUs = rttUs
	if rackSentAfter(xmitTime, tp.rack.mstamp, endSeq, tp.rack.endSeq) {
		tp.rack.mstamp = xmitTime
		tp.rack.endSeq = endSeq
	}
}

// rackReoWnd is the reordering window in microseconds: zero while no
// reordering has been seen and either recovery is under way or dupthresh
// skbs are SACKed (as fast as the classic rule), else min_rtt/4 per step,
// at most srtt. Mirrors tcp_rack_reo_wnd.
func (tp *TCPSock) rackReoWnd() uint32 {
	if tp.reordSeen == 0 {
		if tp.caState >= tcpCARecovery {
			return 0
		}
		if tp.sackedOut >= tp.reordering &&
			tp.stack.net.Sysctls.TCPRecovery()&memctl.TCPRackNoDupthresh == 0 {
			return 0
		}
	}
	w := uint64(tp.minRttUs()>>2) * uint64(tp.rack.reoWndSteps)
	return uint32(min(w, uint64(tp.srttUs>>3)))
}

// rackSkbTimeout is how many microseconds are left before b counts as lost:
// the RACK RTT plus reoWnd minus the time since b was sent. Mirrors
// tcp_rack_skb_timeout.
func (tp *TCPSock) rackSkbTimeout(b *skb.SKB, reoWnd uint32) int64 {
	return int64(tp.rack.rttUs) + int64(reoWnd) - (tp.now()-b.Tstamp)/nsPerUs
}

// rackDetectLoss marks lost every unSACKed skb sent before the RACK
// reference whose time is up; for those not yet due it returns the longest
// wait left (microseconds, 0: none) and how many skbs it marked. See the
// file comment for the walk. Mirrors tcp_rack_detect_loss.
func (tp *TCPSock) rackDetectLoss() (reoTimeout uint32, marked int) {
	reoWnd := tp.rackReoWnd()
	for b := tp.rtxQueue.Peek(); b != nil; b = b.Next() {
		s := cbGetSacked(b)
		if s&tcpcbSackedAcked != 0 {
			continue // not on Linux's tsorted list
		}
		if s&tcpcbLost != 0 && s&tcpcbSackedRetrans == 0 {
			continue // marked lost, not yet retransmitted
		}
		if !rackSentAfter(tp.rack.mstamp, b.Tstamp, tp.rack.endSeq, cbGetEndSeq(b)) {
			if s&tcpcbEverRetrans == 0 {
				break // every later skb was sent after this one
			}
			continue
		}
		if left := tp.rackSkbTimeout(b, reoWnd); left <= 0 {
			tp.markSkbLost(b)
			marked++
		} else {
			reoTimeout = max(reoTimeout, uint32(left))
		}
	}
	return reoTimeout, marked
}

// markSkbLost marks b lost; a retransmission already marked lost is lost
// again: it stops counting as in flight (so it is retransmitted again) and
// TCPLostRetransmit counts it. Mirrors tcp_mark_skb_lost.
func (tp *TCPSock) markSkbLost(b *skb.SKB) {
	s := cbGetSacked(b)
	if s&tcpcbSackedAcked != 0 {
		return
	}
	pc := uint32(max(tcpSkbPcount(b), 1))
	tp.sumLost(s, pc)
	if s&tcpcbLost != 0 {
		if s&tcpcbSackedRetrans != 0 {
			s &^= tcpcbSackedRetrans
			tp.retransOut -= pc
			tp.stack.mib.Add(memctl.TcpExtTCPLostRetransmit, uint64(pc))
		}
	} else {
		s |= tcpcbLost
		tp.lostOut += pc
	}
	cbSetSacked(b, s)
}

// rackMarkLost runs the detection if an ACK moved the RACK reference and
// arms the reorder timer for the skbs not yet due: their wait plus
// TCP_TIMEOUT_MIN, at most the RTO. Returns whether the timer was armed
// (the ACK must then leave the retransmit timer alone) and how many skbs
// were marked. Mirrors tcp_rack_mark_lost.
func (tp *TCPSock) rackMarkLost() (armed bool, marked int) {
	if !tp.rack.advanced {
		return false, 0
	}
	tp.rack.advanced = false
	timeout, marked := tp.rackDetectLoss()
	if timeout != 0 {
		d := min(time.Duration(timeout)*time.Microsecond+tcpTimeoutMin, tp.rto)
		tp.resetRetransTimer(timerReoTimeout, d)
	}
	return timeout != 0, marked
}

// rackReoTimeout is the reorder timer: skbs that were waiting out the
// reordering window are marked lost now, recovery starts if it has not,
// and they are retransmitted. Then the RTO is re-armed unless a
// retransmission already did. Caller holds the socket (writeTimerHandler).
// Mirrors tcp_rack_reo_timeout.
func (tp *TCPSock) rackReoTimeout() {
	// icsk_pending stays ICSK_TIME_REO_TIMEOUT while Linux runs this, so a
	// retransmission of the head leaves the timer alone and rearmRTO
	// counts the RTO from the head's transmission.
	tp.rtoKind = timerReoTimeout
	priorInflight := tp.packetsInFlight()
	_, marked := tp.rackDetectLoss()
	if priorInflight != tp.packetsInFlight() {
		if tp.caState != tcpCARecovery {
			tp.enterRecovery()
			tp.cwndReduction(1, marked > 0, false)
		}
		tp.xmitRetransmitQueue()
	}
	if tp.rtoKind != timerRetrans {
		tp.rearmRTO()
	}
}

// rackUpdateReoWnd widens the reordering window by one step per round trip
// in which a DSACK showed a retransmission to be spurious (as reordering
// beyond the window makes it), keeping it for 16 recoveries
// (TCP_RACK_RECOVERY_THRESH), after which it falls back to one step.
// Called once per ACK after the rtx queue is cleaned. Mirrors
// tcp_rack_update_reo_wnd.
func (tp *TCPSock) rackUpdateReoWnd() {
	rs := &tp.rs
	if tp.stack.net.Sysctls.TCPRecovery()&memctl.TCPRackStaticReoWnd != 0 || !rs.have || rs.priorDelivered == 0 {
		return
	}
	// A DSACK for data sent before the last change is the same episode.
	if seqLT(rs.priorDelivered, tp.rack.lastDelivered) {
		tp.rack.dsackSeen = false
	}
	if tp.rack.dsackSeen {
		tp.rack.reoWndSteps = uint8(min(int(tp.rack.reoWndSteps)+1, tcpRackMaxReoSteps))
		tp.rack.dsackSeen = false
		tp.rack.lastDelivered = tp.delivered
		tp.rack.reoWndPersist = tcpRackRecoveryThresh
	} else if tp.rack.reoWndPersist == 0 {
		tp.rack.reoWndSteps = 1
	}
}

// rackDsackSeen notes a DSACK for RACK: it counts toward widening reo_wnd
// only once reordering has been seen, only if we have retransmitted at
// least as many segments as were reported duplicated (network duplicates
// are not RACK's fault), and not when it answers a tail loss probe (TLP is
// driven by a timer, not by RACK). Mirrors the RACK part of tcp_dsack_seen.
//
// A D-SACK of at most one segment that ends at tlp_high_seq reports the
// tail loss probe's segment (FLAG_DSACK_TLP): ackDsackTLP, for
// processTlpAck.
func (tp *TCPSock) rackDsackSeen(start, end uint32) {
	mss := uint32(max(tp.mssCache, 1))
	n := end - start
	tlp := n <= mss && tp.tlpHighSeq != 0 && end == tp.tlpHighSeq
	if tlp {
		tp.ackDsackTLP = true
	}
	tp.dsackDups += max((n+mss-1)/mss, 1)
	if tp.dsackDups > tp.totalRetrans {
		return
	}
	if tp.reordSeen != 0 && !tlp {
		tp.rack.dsackSeen = true
	}
}

// minmax is a windowed running minimum over (time, value) samples, kept as
// the best, second best and third best of the last window: Kathleen
// Nichols' algorithm, as lib/minmax.c (struct minmax) implements it for
// tcp_min_rtt. Times are in microseconds.
type minmax struct {
	s [3]minmaxSample
}

type minmaxSample struct {
	t int64
	v uint32
}

// get returns the windowed minimum. Mirrors minmax_get.
func (m *minmax) get() uint32 { return m.s[0].v }

// reset starts over with one sample. Mirrors minmax_reset.
func (m *minmax) reset(t int64, v uint32) {
	m.s[0] = minmaxSample{t, v}
	m.s[1], m.s[2] = m.s[0], m.s[0]
}

// runningMin adds a sample taken at t; win is the window length. Mirrors
// minmax_running_min.
func (m *minmax) runningMin(win, t int64, v uint32) uint32 {
	return m.running(win, t, v, func(a, b uint32) bool { return a <= b })
}

// runningMax is runningMin for a windowed maximum (BBR's bw filter).
// Mirrors minmax_running_max.
func (m *minmax) runningMax(win, t int64, v uint32) uint32 {
	return m.running(win, t, v, func(a, b uint32) bool { return a >= b })
}

// running adds a sample to the filter that keeps the best by better.
func (m *minmax) running(win, t int64, v uint32, better func(a, b uint32) bool) uint32 {
	n := minmaxSample{t, v}
	if better(v, m.s[0].v) || t-m.s[2].t > win {
		m.reset(t, v) // a new best, or nothing left in the window
		return v
	}
	if better(v, m.s[1].v) {
		m.s[1], m.s[2] = n, n
	} else if better(v, m.s[2].v) {
		m.s[2] = n
	}
	return m.subwinUpdate(win, n)
}

// subwinUpdate ages the kept samples: when the best is older than the
// window the next ones move up, and the second and third are refreshed
// once a quarter and a half of the window have gone by without a new one.
// Mirrors minmax_subwin_update.
func (m *minmax) subwinUpdate(win int64, n minmaxSample) uint32 {
	dt := n.t - m.s[0].t
	if dt > win {
		m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], n
		if n.t-m.s[0].t > win {
			m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], n
		}
	} else if m.s[1].t == m.s[0].t && dt > win/4 {
		m.s[1], m.s[2] = n, n
	} else if m.s[2].t == m.s[1].t && dt > win/2 {
		m.s[2] = n
	}
	return m.s[0].v
}

// skbSpuriousRetrans says whether the ACK being processed echoes a
// timestamp older than b's latest retransmission: it was the original
// that arrived, so b's transmit time must not advance RACK. Mirrors
// tcp_skb_spurious_retrans.
func (tp *TCPSock) skbSpuriousRetrans(b *skb.SKB) bool {
	if cbGetSacked(b)&(tcpcbSackedRetrans|tcpcbEverRetrans) == 0 || !tp.tstampOK || !tp.sawTstamp || tp.rcvTsecr == 0 {
		return false
	}
	when := uint32(b.Tstamp/int64(time.Millisecond)) + tp.tsOffset
	return seqLT(tp.rcvTsecr, when)
}
