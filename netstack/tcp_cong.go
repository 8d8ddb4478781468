package netstack

import (
	"math"
	"time"
)

// congestionControl is a pluggable congestion-control algorithm. Mirrors
// struct tcp_congestion_ops (the hooks sockfs uses).
type congestionControl interface {
	// name is the algorithm's name (TCP_CONGESTION).
	name() string
	// ssthresh returns the slow-start threshold after a loss.
	ssthresh(tp *TCPSock) uint32
	// congAvoid grows cwnd for acked newly acknowledged packets.
	congAvoid(tp *TCPSock, acked uint32)
	// onLoss is called when the connection enters loss or recovery (CA_EVENT_LOSS).
	onLoss(tp *TCPSock)
	// pktsAcked is told of every ACK that acknowledged new data, with the
	// ACK's RTT sample (pkts_acked). Linux calls it for every ACK, with an
	// RTT from newly SACKed skbs too; sockfs takes no SACK RTT, so an ACK
	// that only SACKs would bring CUBIC no sample and is not passed on.
	pktsAcked(tp *TCPSock, s ackSample)
	// sndbufExpand is the factor tcp_sndbuf_expand uses (2 unless set).
	sndbufExpand() int
	// init starts the algorithm on a connection that is established
	// (or is switched to it after). Mirrors init.
	init(tp *TCPSock)
	// setState is told of a congestion-state change before it is made.
	// Mirrors set_state.
	setState(tp *TCPSock, newState uint8)
	// cwndEvent is told of events outside the ACK path. Mirrors cwnd_event.
	cwndEvent(tp *TCPSock, ev uint8)
	// undoCwnd is cwnd after a reduction found spurious. Mirrors undo_cwnd.
	undoCwnd(tp *TCPSock) uint32
}

// congControlOps is the part of an algorithm that sets cwnd and the
// pacing rate itself from every ACK's rate sample, in place of
// congAvoid and PRR (BBR). Mirrors tcp_congestion_ops.cong_control with
// min_tso_segs.
type congControlOps interface {
	// congControl is called at the end of every ACK that is processed.
	congControl(tp *TCPSock, rs *tcpRateSample)
	// minTsoSegs replaces tcp_min_tso_segs.
	minTsoSegs(tp *TCPSock) int
}

// ackEventer is an algorithm told of every ACK after the retransmit queue
// is cleaned (DCTCP's alpha). Mirrors tcp_congestion_ops.in_ack_event.
type ackEventer interface {
	inAckEvent(tp *TCPSock)
}

// Congestion-control events (enum tcp_ca_event).
const (
	caEventTxStart = 0 // CA_EVENT_TX_START: first transmission when nothing is in flight
)

// setCC installs cc as the socket's algorithm. Mirrors the assignment of
// icsk_ca_ops (tcp_assign_congestion_control / tcp_reinit_congestion_control).
func (tp *TCPSock) setCC(cc congestionControl, name string) {
	tp.cc, tp.ccName = cc, name
	tp.ccMain, _ = cc.(congControlOps)
	if tp.caNeedsECN() { // TCP_CONG_NEEDS_ECN: every packet ECT
		tp.ecnXmit()
	} else {
		tp.ecnDontXmit()
	}
}

// initCongestionControl starts the algorithm. Mirrors
// tcp_init_congestion_control.
func (tp *TCPSock) initCongestionControl() { tp.cc.init(tp) }

// setCAState changes icsk_ca_state, telling the algorithm first. Mirrors
// tcp_set_ca_state.
func (tp *TCPSock) setCAState(s uint8) {
	tp.cc.setState(tp, s)
	tp.caState = s
}

// renoUndoCwnd mirrors tcp_reno_undo_cwnd: the larger of cwnd and the
// cwnd before the reduction.
func renoUndoCwnd(tp *TCPSock) uint32 { return max(tp.cwnd, tp.priorCwnd) }

// ackSample is what pkts_acked learns of one ACK. Mirrors struct
// ack_sample (without in_flight, which no algorithm here uses), plus the
// ACK's arrival time, Linux's tp->tcp_mstamp.
type ackSample struct {
	pktsAcked uint32 // pkts_acked: packets cumulatively acked
	rttUs     int64  // rtt_us: the ACK's RTT sample in microseconds, -1 if none
	nowUs     int64  // tcp_mstamp: when the ACK is processed, in microseconds
}

// caPktsAcked hands the congestion control the ACK's sample. The RTT is
// Linux's ca_rtt_us: that of the newest skb acked, never retransmitted,
// else the timestamp echo's (at least one 1 ms tick), else none. The ACK
// completing a passive open is not passed on: Linux measures it with
// tcp_synack_rtt_meas and initialises the congestion control only after
// it (tcp_init_transfer). Mirrors the pkts_acked call of
// tcp_clean_rtx_queue.
func (tp *TCPSock) caPktsAcked(acked uint32, skbRtt, tsRtt time.Duration) {
	if tp.state == TCPSynRecv {
		return
	}
	s := ackSample{pktsAcked: acked, rttUs: -1, nowUs: tp.now() / nsPerUs}
	if skbRtt > 0 {
		s.rttUs = int64(skbRtt / time.Microsecond)
	} else if tsRtt > 0 {
		s.rttUs = int64(max(tsRtt, time.Millisecond) / time.Microsecond)
	}
	tp.rs.rttUs = s.rttUs // tcp_ack_update_rtt: rs->rtt_us = ca_rtt_us
	tp.cc.pktsAcked(tp, s)
}

// newCongestionControl returns the named algorithm, or nil.
func newCongestionControl(name string) congestionControl {
	switch name {
	case "reno", "newreno":
		return &renoCC{}
	case "cubic":
		return newCubic()
	case "bbr":
		return &bbrCC{}
	case "dctcp":
		return &dctcpCC{}
	}
	return nil
}

// slowStart grows cwnd by acked up to ssthresh and returns the rest.
// Mirrors tcp_slow_start.
func (tp *TCPSock) slowStart(acked uint32) uint32 {
	c := min(tp.cwnd+acked, tp.ssthresh)
	acked -= c - tp.cwnd
	tp.cwnd = c
	return acked
}

// congAvoidAI grows cwnd by one every w acked packets. Mirrors tcp_cong_avoid_ai.
func (tp *TCPSock) congAvoidAI(w, acked uint32) {
	if w == 0 {
		w = 1
	}
	if tp.cwndCnt >= w {
		tp.cwndCnt = 0
		tp.cwnd++
	}
	tp.cwndCnt += acked
	if tp.cwndCnt >= w {
		delta := tp.cwndCnt / w
		tp.cwndCnt -= delta * w
		tp.cwnd += delta
	}
}

// isCwndLimited reports whether the sender used its window in the last
// flight, so that growing cwnd is warranted. Mirrors tcp_is_cwnd_limited.
func (tp *TCPSock) isCwndLimited() bool {
	if tp.cwndLimited {
		return true
	}
	if tp.cwnd < tp.ssthresh {
		return tp.cwnd < 2*tp.maxPacketsOut
	}
	return false
}

// cwndValidate records whether the last transmission was cwnd-limited:
// once per window (until snd_una passes cwnd_usage_seq) the strongest
// signal is kept. Being cwnd-limited sticks for the rest of the window;
// otherwise the most packets out in it are tracked. Mirrors
// tcp_cwnd_validate (without the RFC 7661 idle decay).
func (tp *TCPSock) cwndValidate(limited bool) {
	if !seqLT(tp.sndUna, tp.cwndUsageSeq) || limited || (!tp.cwndLimited && tp.packetsOut > tp.maxPacketsOut) {
		tp.maxPacketsOut = tp.packetsOut
		tp.cwndUsageSeq = tp.sndNxt
		tp.cwndLimited = limited
	}
}

// renoCC is NewReno (RFC 5681 / 6582). Mirrors tcp_reno_*.
type renoCC struct{}

func (*renoCC) name() string      { return "reno" }
func (*renoCC) sndbufExpand() int { return 2 }
func (*renoCC) onLoss(*TCPSock)   {}

func (*renoCC) init(*TCPSock)               {}
func (*renoCC) setState(*TCPSock, uint8)    {}
func (*renoCC) cwndEvent(*TCPSock, uint8)   {}
func (*renoCC) undoCwnd(tp *TCPSock) uint32 { return renoUndoCwnd(tp) }

func (*renoCC) pktsAcked(*TCPSock, ackSample) {}

func (*renoCC) ssthresh(tp *TCPSock) uint32 { return max(tp.cwnd>>1, 2) }

func (*renoCC) congAvoid(tp *TCPSock, acked uint32) {
	if !tp.isCwndLimited() {
		return
	}
	if tp.cwnd < tp.ssthresh {
		acked = tp.slowStart(acked)
		if acked == 0 {
			return
		}
	}
	tp.congAvoidAI(tp.cwnd, acked)
}

// cubicCC is CUBIC (RFC 9438) with Linux's constants: beta 717/1024, C 0.4,
// fast convergence, the TCP-friendly region. Mirrors tcp_cubic.c, in float
// arithmetic instead of Linux's fixed-point cube root (the curve is the
// same, the code is shorter). HyStart is in tcp_hystart.go.
type cubicCC struct {
	hystart
	lastMaxCwnd float64
	epochStart  int64 // ns; 0 = no epoch
	originPoint float64
	k           float64 // seconds
	ackCnt      float64
	tcpCwnd     float64
	inLoss      bool // pktsAcked has seen the socket in Loss (see enterLoss)
}

const (
	cubicBeta = 717.0 / 1024.0
	cubicC    = 0.4
)

func newCubic() *cubicCC { return &cubicCC{} }

func (*cubicCC) name() string      { return "cubic" }
func (*cubicCC) sndbufExpand() int { return 2 }

func (c *cubicCC) onLoss(tp *TCPSock) { c.epochStart = 0 }

// init, setState and cwndEvent do nothing: CUBIC's state is reset lazily
// (enterLoss, hystartUpdate), and sockfs does not restart the epoch after
// idle (cubictcp_cwnd_event).
func (*cubicCC) init(*TCPSock)               {}
func (*cubicCC) setState(*TCPSock, uint8)    {}
func (*cubicCC) cwndEvent(*TCPSock, uint8)   {}
func (*cubicCC) undoCwnd(tp *TCPSock) uint32 { return renoUndoCwnd(tp) }

// ssthresh mirrors cubictcp_recalc_ssthresh.
func (c *cubicCC) ssthresh(tp *TCPSock) uint32 {
	c.epochStart = 0
	w := float64(tp.cwnd)
	if w < c.lastMaxCwnd { // fast convergence
		c.lastMaxCwnd = w * (1 + cubicBeta) / 2
	} else {
		c.lastMaxCwnd = w
	}
	return max(uint32(w*cubicBeta), 2)
}

// pktsAcked tracks the minimum delay and, in slow start above
// hystart_low_window, feeds HyStart. Mirrors cubictcp_acked.
func (c *cubicCC) pktsAcked(tp *TCPSock, s ackSample) {
	sc := tp.stack.net.Sysctls
	if tp.caState == tcpCALoss {
		if !c.inLoss {
			c.inLoss = true
			c.enterLoss(tp, s.nowUs, sc.CubicHystart() != 0)
		}
	} else {
		c.inLoss = false
	}
	if s.rttUs < 0 {
		return
	}
	// Samples right after a reduction (a new epoch) are not trusted.
	if c.epochStart != 0 && tp.now()-c.epochStart < int64(time.Second) {
		return
	}
	delay := uint32(max(min(s.rttUs, int64(^uint32(0))), 1))
	if c.delayMin == 0 || c.delayMin > delay {
		c.delayMin = delay
	}
	if !c.found && tp.cwnd < tp.ssthresh && sc.CubicHystart() != 0 &&
		int64(tp.cwnd) >= int64(sc.CubicHystartLowWindow()) {
		c.hystartUpdate(tp, delay, s.nowUs)
	}
}

// enterLoss forgets what CUBIC and HyStart learnt, so that the slow start
// after a timeout is searched afresh. Linux does it in set_state when the
// socket enters TCP_CA_Loss; sockfs's onLoss fires on recovery too, so
// pktsAcked does it at the first ACK processed in Loss, before that ACK's
// sample or cwnd growth, the first place its effect shows. Mirrors
// cubictcp_state (bictcp_reset, bictcp_hystart_reset).
func (c *cubicCC) enterLoss(tp *TCPSock, nowUs int64, hystartOn bool) {
	*c = cubicCC{inLoss: true}
	if hystartOn {
		c.hystartReset(tp, nowUs)
	}
}

// congAvoid mirrors cubictcp_cong_avoid / bictcp_update.
func (c *cubicCC) congAvoid(tp *TCPSock, acked uint32) {
	if !tp.isCwndLimited() {
		return
	}
	if tp.cwnd < tp.ssthresh {
		acked = tp.slowStart(acked)
		if acked == 0 {
			return
		}
	}
	now := tp.now()
	cwnd := float64(tp.cwnd)
	if c.epochStart == 0 {
		c.epochStart = now
		c.ackCnt = float64(acked)
		c.tcpCwnd = cwnd
		if c.lastMaxCwnd <= cwnd {
			c.k = 0
			c.originPoint = cwnd
		} else {
			c.k = math.Cbrt((c.lastMaxCwnd - cwnd) / cubicC)
			c.originPoint = c.lastMaxCwnd
		}
	} else {
		c.ackCnt += float64(acked)
	}
	srtt := time.Duration(tp.srttUs>>3) * time.Microsecond
	t := float64(now-c.epochStart+int64(srtt)) / 1e9
	d := t - c.k
	target := c.originPoint + cubicC*d*d*d
	var cnt float64
	if target > cwnd {
		cnt = cwnd / (target - cwnd)
	} else {
		cnt = 100 * cwnd
	}
	if c.lastMaxCwnd == 0 && cnt > 20 {
		cnt = 20
	}
	// TCP friendliness (RFC 9438 4.3).
	alpha := 3 * (1 - cubicBeta) / (1 + cubicBeta)
	c.tcpCwnd += alpha * float64(acked) / cwnd
	if c.tcpCwnd > cwnd {
		maxCnt := cwnd / (c.tcpCwnd - cwnd)
		if cnt > maxCnt {
			cnt = maxCnt
		}
	}
	if cnt < 2 {
		cnt = 2
	}
	tp.congAvoidAI(uint32(cnt), acked)
}
