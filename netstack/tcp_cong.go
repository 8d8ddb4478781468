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
	// sndbufExpand is the factor tcp_sndbuf_expand uses (2 unless set).
	sndbufExpand() int
}

// newCongestionControl returns the named algorithm, or nil.
func newCongestionControl(name string) congestionControl {
	switch name {
	case "reno", "newreno":
		return &renoCC{}
	case "cubic":
		return newCubic()
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

// cwndValidate records whether the last transmission was cwnd-limited.
// Mirrors tcp_cwnd_validate (without the RFC 7661 idle decay).
func (tp *TCPSock) cwndValidate(limited bool) {
	if !seqLT(tp.sndUna, tp.cwndUsageSeq) || limited || tp.packetsOut > tp.maxPacketsOut {
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
// same, the code is shorter). HyStart is not implemented.
type cubicCC struct {
	lastMaxCwnd float64
	epochStart  int64 // ns; 0 = no epoch
	originPoint float64
	k           float64 // seconds
	ackCnt      float64
	tcpCwnd     float64
}

const (
	cubicBeta = 717.0 / 1024.0
	cubicC    = 0.4
)

func newCubic() *cubicCC { return &cubicCC{} }

func (*cubicCC) name() string      { return "cubic" }
func (*cubicCC) sndbufExpand() int { return 2 }

func (c *cubicCC) onLoss(tp *TCPSock) { c.epochStart = 0 }

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
