package netstack

import (
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
)

// bbrPath is the acceptance path: 20 Mbit/s and 50 ms of RTT. The delay
// is on the ACK path, so that the forward queue the impairment counts is
// only the bottleneck's backlog (netem's limit, and Queued, count delayed
// packets too); a 100-packet buffer is a little more than the BDP.
const (
	bbrPathRate  = 20_000_000
	bbrPathDelay = 50 * time.Millisecond
	bbrPathLimit = 100
	// bbrPathBDP is the BDP in 1500-byte packets: 20e6/8 * 0.05 / 1500.
	bbrPathBDP = bbrPathRate / 8 * int(bbrPathDelay/time.Millisecond) / 1000 / 1500
)

// queueRun is what one bulk transfer over bbrPath showed between from
// and to (simulated time since the start).
type queueRun struct {
	goodput        float64 // bits per second of payload received
	avgQ, maxQ     float64 // bottleneck queue in packets, sampled every 10 ms
	drops          uint64  // queue drops between from and to
	probeRttTimes  []time.Duration
	modes          map[string]bool
	finalMode      string
	minRttUs       uint32
	bwBytesPerSec  uint64
	pacingRate     uint64
	statusAtFinish TCPInfo
}

// bbrTransfer sends as fast as cc allows over bbrPath for to of
// simulated time and measures from `from` on.
func bbrTransfer(t *testing.T, cc string, from, to time.Duration) queueRun {
	t.Helper()
	fwd := impair.Config{Rate: bbrPathRate, Limit: bbrPathLimit}
	rev := impair.Config{Delay: bbrPathDelay}
	n := newTestNet(t, fwd, rev, 7)
	cli, srv := tcpPair(t, n, 80)
	if err := cli.SetCongestion(cc, true); err != nil {
		t.Fatal(err)
	}
	p := newBulkPump(cli, srv, 1<<40)
	r := queueRun{modes: map[string]bool{}}
	start := n.clk.Nanotime()
	var gotFrom int
	var dropsFrom uint64
	var samples int
	var lastProbe uint64
	next := start
	measuring := false
	for step := time.Second; ; step += time.Second {
		end := start + int64(min(step, to))
		n.drive(func() bool {
			p.step()
			now := n.clk.Nanotime()
			for ; next <= now; next += int64(10 * time.Millisecond) {
				el := time.Duration(next - start)
				if el >= from && !measuring {
					measuring = true
					gotFrom = p.got
					dropsFrom = n.pa.LinkCounters().QueueDrops
				}
				if b, ok := cli.cc.(*bbrCC); ok {
					cli.lockSock()
					if b.probeRttCount != lastProbe {
						lastProbe = b.probeRttCount
						r.probeRttTimes = append(r.probeRttTimes, time.Duration(b.probeRttLast-start))
					}
					cli.releaseSock()
				}
				if measuring {
					q := float64(n.pa.LinkCounters().Queued)
					r.avgQ += q
					r.maxQ = max(r.maxQ, q)
					samples++
				}
			}
			return now >= end
		}, 2*time.Second)
		if step >= to {
			break
		}
	}
	el := time.Duration(n.clk.Nanotime()-start) - from
	r.goodput = float64(p.got-gotFrom) * 8 / el.Seconds()
	r.avgQ /= float64(max(samples, 1))
	r.drops = n.pa.LinkCounters().QueueDrops - dropsFrom
	r.statusAtFinish = cli.Info()
	if b, ok := cli.cc.(*bbrCC); ok {
		cli.lockSock()
		r.finalMode = bbrModeNames[b.mode]
		for m, name := range bbrModeNames {
			if b.modesSeen&(1<<m) != 0 {
				r.modes[name] = true
			}
		}
		r.minRttUs = b.minRttUs
		r.bwBytesPerSec = b.info(cli).Bw
		r.pacingRate = cli.skPacingRate
		cli.releaseSock()
	}
	t.Logf("%s: goodput %.2f Mbit/s (%.1f%% of the rate) from %v to %v; bottleneck queue avg %.1f max %.0f packets (BDP %d, buffer %d), %d drops; PROBE_RTT at %v",
		cc, r.goodput/1e6, 100*r.goodput/bbrPathRate, from, to, r.avgQ, r.maxQ, bbrPathBDP, bbrPathLimit, r.drops, r.probeRttTimes)
	return r
}

// TestTCPSimBBRQueueVsCubic is the acceptance test of BBR: on a 20 Mbit/s,
// 50 ms path with a buffer a little over one BDP, BBR keeps at least 90%
// of the rate with a standing queue below one BDP and no drops once out
// of STARTUP, where CUBIC fills the buffer until it overflows; and BBR's
// PROBE_RTT comes every 10 s (min_rtt's window) of simulated time.
func TestTCPSimBBRQueueVsCubic(t *testing.T) {
	const from, to = 3 * time.Second, 25 * time.Second
	bbr := bbrTransfer(t, "bbr", from, to)
	cubic := bbrTransfer(t, "cubic", from, 15*time.Second)

	if bbr.goodput < 0.9*bbrPathRate {
		t.Errorf("bbr goodput %.2f Mbit/s, want >= 90%% of %d Mbit/s", bbr.goodput/1e6, bbrPathRate/1_000_000)
	}
	if bbr.avgQ >= float64(bbrPathBDP) {
		t.Errorf("bbr standing queue %.1f packets, want below one BDP (%d)", bbr.avgQ, bbrPathBDP)
	}
	if bbr.drops != 0 {
		t.Errorf("bbr: %d drops in steady state", bbr.drops)
	}
	if cubic.maxQ < bbrPathLimit-1 || cubic.drops == 0 {
		t.Errorf("cubic: queue max %.0f, %d drops; want the %d-packet buffer filled", cubic.maxQ, cubic.drops, bbrPathLimit)
	}
	if cubic.avgQ <= 2*bbr.avgQ {
		t.Errorf("cubic queue avg %.1f, bbr %.1f: want cubic's well above", cubic.avgQ, bbr.avgQ)
	}
	// PROBE_RTT: min_rtt expires 10 s after it was last refreshed; a
	// PROBE_RTT refreshes it (bbr_check_probe_rtt_done stamps it), so
	// entries are 10 s plus the 200 ms (and a round) apart.
	if len(bbr.probeRttTimes) < 2 {
		t.Fatalf("PROBE_RTT entered %d times in %v, want 2", len(bbr.probeRttTimes), to)
	}
	for i := 1; i < len(bbr.probeRttTimes); i++ {
		d := bbr.probeRttTimes[i] - bbr.probeRttTimes[i-1]
		if d < 10*time.Second || d > 10*time.Second+400*time.Millisecond {
			t.Errorf("PROBE_RTT %d came %v after the one before, want 10.2 s", i, d)
		}
	}
	if first := bbr.probeRttTimes[0]; first < 10*time.Second || first > 11*time.Second {
		t.Errorf("first PROBE_RTT at %v, want about 10 s after the start", first)
	}
	for _, m := range []string{"STARTUP", "DRAIN", "PROBE_BW", "PROBE_RTT"} {
		if !bbr.modes[m] {
			t.Errorf("bbr never in %s", m)
		}
	}
	if bbr.minRttUs < 50000 || bbr.minRttUs > 52000 {
		t.Errorf("bbr min_rtt %d us, want the path's 50 ms plus serialisation", bbr.minRttUs)
	}
	if i := bbr.statusAtFinish; i.Congestion != "bbr" || i.BBR == nil || i.BBR.Bw != bbr.bwBytesPerSec ||
		i.PacingRate != bbr.pacingRate || i.DeliveryRate == 0 {
		t.Errorf("bbr's tcp_info: %s %+v pacing %d delivery %d", i.Congestion, i.BBR, i.PacingRate, i.DeliveryRate)
	}
	if i := cubic.statusAtFinish; i.Congestion != "cubic" || i.BBR != nil || i.DeliveryRate == 0 {
		t.Errorf("cubic's tcp_info: %s %+v delivery %d", i.Congestion, i.BBR, i.DeliveryRate)
	}
	if bw := float64(bbr.bwBytesPerSec * 8); bw < 0.9*bbrPathRate || bw > bbrPathRate {
		t.Errorf("bbr bw %.0f bit/s, want about the rate's payload share", bw)
	}
}

// TestTCPSimBBRAll: BBR on both sides moves the data intact under every
// impairment at once (loss, reordering, duplication, corruption, jitter),
// recovering with packet conservation and undo, and, as BBR v1 does not
// take 5% loss for congestion, much faster than CUBIC (TestTCPSimAll: 4m43
// for the soak's 64 MiB, BBR 15.9 s); the bounds sit about 25% above
// today's runs, as simImpaired's. The soak's figure was 7.8 s until the
// receiver kept its SACK blocks as Linux does (d48133a: the most recent
// first, the oldest forgotten past four, where the blocks had been
// rebuilt from the whole out-of-order queue; found by bisection): the
// sender enters recovery about twice as often (570 recoveries against
// 277). Not traced further: a Linux receiver keeps its blocks the same way.
func TestTCPSimBBRAll(t *testing.T) {
	cfg := impair.Config{Loss: 0.05, Reorder: 0.02, Duplicate: 0.01, Corrupt: 0.005,
		Delay: 5 * time.Millisecond, Jitter: time.Millisecond}
	n := newTestNet(t, cfg, cfg, 25)
	setSysctl(t, n.a, "ipv4/tcp_congestion_control", "bbr")
	setSysctl(t, n.b, "ipv4/tcp_congestion_control", "bbr")
	cli, srv := tcpPair(t, n, 80)
	if cli.Info().Congestion != "bbr" || srv.Info().Congestion != "bbr" {
		t.Fatalf("algorithms %s %s", cli.Info().Congestion, srv.Info().Congestion)
	}
	size := simSize(4)
	transfer(t, n, cli, srv, size, 25, 600*time.Second)
	transfer(t, n, srv, cli, size, 26, 600*time.Second)
	sum := func(c memctl.Counter) uint64 { return n.a.mib.Get(c) + n.b.mib.Get(c) }
	el := time.Duration(n.clk.Nanotime())
	t.Logf("bbr, %d bytes each way: retrans %d timeouts %d recoveries %d; sim time %v; client %+v",
		size, sum(memctl.TcpRetransSegs), sum(memctl.TcpExtTCPTimeouts), sum(memctl.TcpExtTCPSackRecovery), el, *cli.Info().BBR)
	lim := simLimit{490 * time.Millisecond, 2}
	if *soak {
		lim = simLimit{20 * time.Second, 10}
	}
	if el > lim.time || sum(memctl.TcpExtTCPTimeouts) > lim.timeouts {
		t.Errorf("took %v with %d RTOs, want at most %v and %d", el, sum(memctl.TcpExtTCPTimeouts), lim.time, lim.timeouts)
	}
}
