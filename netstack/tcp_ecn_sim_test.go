package netstack

import (
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
)

// ecnRun is what one bulk transfer over an ECN-marking bottleneck showed
// after its first seconds.
type ecnRun struct {
	goodput    float64 // bits per second of payload received
	avgQ, maxQ float64 // bottleneck queue in packets, sampled every 10 ms
	minQ       float64
	drops      uint64 // queue drops
	marked     uint64 // packets the bottleneck marked CE
	retrans    uint64 // the sender's TcpRetransSegs
	cwrs       int    // the sender's entries into CWR
	ecn        bool   // the sender's connection negotiated ECN
	cc         string // the sender's algorithm at the end
}

// ecnTransfer runs cc from a to b over fwd (the bottleneck) with the ACKs
// delayed by rev, tcp_ecn set to ecn on both stacks, for `to` of
// simulated time, measuring from `from`.
func ecnTransfer(t *testing.T, cc, ecn string, fwd, rev impair.Config, from, to time.Duration) ecnRun {
	t.Helper()
	n := newTestNet(t, fwd, rev, 9)
	for _, s := range []*Stack{n.a, n.b} {
		setSysctl(t, s, "ipv4/tcp_ecn", ecn)
		setSysctl(t, s, "ipv4/tcp_congestion_control", cc)
	}
	cli, srv := tcpPair(t, n, 80)
	p := newBulkPump(cli, srv, 1<<40)
	var r ecnRun
	start := n.clk.Nanotime()
	var gotFrom, samples int
	var c0 impair.Counters
	prevState := uint8(tcpCAOpen)
	r.minQ = 1e9
	// Sample the queue every 10 ms of simulated time (a tick), counting
	// the sender's entries into CWR, from `from` on.
	tick := func(el time.Duration) {
		switch {
		case el < from:
			return
		case samples == 0:
			gotFrom, c0 = p.got, n.pa.LinkCounters()
		}
		q := float64(n.pa.LinkCounters().Queued)
		r.avgQ, r.maxQ, r.minQ = r.avgQ+q, max(r.maxQ, q), min(r.minQ, q)
		samples++
		cli.lockSock()
		if st := cli.caState; st != prevState {
			if st == tcpCACWR {
				r.cwrs++
			}
			prevState = st
		}
		cli.releaseSock()
	}
	lastTick := time.Duration(-1)
	for done := time.Duration(0); done < to; done += time.Second {
		n.drive(func() bool {
			p.step()
			el := time.Duration(n.clk.Nanotime() - start)
			for t := lastTick + 10*time.Millisecond; t <= el && t <= to; t += 10 * time.Millisecond {
				tick(t)
				lastTick = t
			}
			return el >= min(done+time.Second, to)
		}, 2*time.Second)
	}
	el := time.Duration(n.clk.Nanotime()-start) - from
	r.goodput = float64(p.got-gotFrom) * 8 / el.Seconds()
	r.avgQ /= float64(max(samples, 1))
	c := n.pa.LinkCounters()
	r.drops, r.marked = c.QueueDrops-c0.QueueDrops, c.Marked-c0.Marked
	r.retrans = n.a.mib.Get(memctl.TcpRetransSegs)
	i := cli.Info()
	r.ecn, r.cc = i.ECN, i.Congestion
	t.Logf("%s tcp_ecn %s (negotiated %v): goodput %.2f Mbit/s (%.1f%%) from %v to %v; queue avg %.1f min %.0f max %.0f; %d marked, %d drops, %d retransmitted, %d CWR entries",
		r.cc, ecn, r.ecn, r.goodput/1e6, 100*r.goodput/float64(fwd.Rate), from, to, r.avgQ, r.minQ, r.maxQ, r.marked, r.drops, r.retrans, r.cwrs)
	return r
}

// ecnPath is a 20 Mbit/s bottleneck with 50 ms of RTT (BDP 83 packets)
// and a 60-packet buffer that marks CE from 20 packets waiting.
var (
	ecnPathFwd = impair.Config{Rate: 20_000_000, Limit: 60, CELimit: 20}
	ecnPathRev = impair.Config{Delay: 50 * time.Millisecond}
)

// With ECN negotiated, the bottleneck's CE marks make Reno and CUBIC
// reduce (CWR) before the buffer overflows: no drop, no retransmission,
// the queue held below the buffer. Without ECN the same buffer overflows
// and the sender retransmits.
func TestTCPSimECNMarksInsteadOfLoss(t *testing.T) {
	for _, cc := range []string{"reno", "cubic"} {
		on := ecnTransfer(t, cc, "1", ecnPathFwd, ecnPathRev, 2*time.Second, 12*time.Second)
		if !on.ecn || on.marked == 0 || on.cwrs == 0 || on.drops != 0 || on.retrans != 0 || on.maxQ >= 60 {
			t.Errorf("%s with ECN: negotiated %v, %d marked, %d CWR, %d drops, %d retransmitted, max queue %.0f: want marks and CWRs with no loss",
				cc, on.ecn, on.marked, on.cwrs, on.drops, on.retrans, on.maxQ)
		}
		off := ecnTransfer(t, cc, "0", ecnPathFwd, ecnPathRev, 2*time.Second, 12*time.Second)
		if off.ecn || off.marked != 0 || off.drops == 0 || off.retrans == 0 {
			t.Errorf("%s without ECN: negotiated %v, %d marked, %d drops, %d retransmitted: want drops", cc, off.ecn, off.marked, off.drops, off.retrans)
		}
	}
}

// DCTCP against a step-marking bottleneck (CE from K = 20 packets
// waiting, BDP 83): it reduces by alpha/2 in proportion to the marks, so
// the queue stays near K and the link full, where Reno and CUBIC with ECN
// cut by half (0.7 for CUBIC) at every mark and let the queue, and the
// link, run empty.
func TestTCPSimDCTCPHoldsQueueAtK(t *testing.T) {
	const k = 20
	fwd := ecnPathFwd
	fwd.CELimit = k
	from, to := 3*time.Second, 15*time.Second
	d := ecnTransfer(t, "dctcp", "0", fwd, ecnPathRev, from, to) // DCTCP asks for ECN whatever tcp_ecn says
	if d.cc != "dctcp" || !d.ecn || d.drops != 0 || d.retrans != 0 {
		t.Errorf("dctcp: algorithm %s, ecn %v, %d drops, %d retransmitted", d.cc, d.ecn, d.drops, d.retrans)
	}
	if d.goodput < 0.95*float64(fwd.Rate) || d.avgQ < k/2 || d.avgQ > 2*k || d.minQ == 0 {
		t.Errorf("dctcp: goodput %.1f%% of the rate, queue avg %.1f min %.0f: want at least 95%% with the queue near %d and never empty",
			100*d.goodput/float64(fwd.Rate), d.avgQ, d.minQ, k)
	}
	for _, cc := range []string{"reno", "cubic"} {
		r := ecnTransfer(t, cc, "1", fwd, ecnPathRev, from, to)
		if r.goodput > d.goodput-0.05*float64(fwd.Rate) || r.avgQ > d.avgQ/2 || r.minQ != 0 {
			t.Errorf("%s with ECN: goodput %.1f%%, queue avg %.1f min %.0f: want at least 5 points below DCTCP's %.1f%%, half its queue and an empty one",
				cc, 100*r.goodput/float64(fwd.Rate), r.avgQ, r.minQ, 100*d.goodput/float64(fwd.Rate))
		}
	}
}
