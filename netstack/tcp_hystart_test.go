package netstack

import (
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
)

// hystartRun is what one bulk transfer over a bottleneck showed.
type hystartRun struct {
	trainDetect, delayDetect uint64 // TCPHystart{Train,Delay}Detect
	trainCwnd, delayCwnd     uint64 // TCPHystart{Train,Delay}Cwnd
	// At the first HyStart detection: the sender's ssthresh and cwnd,
	// its retransmissions and the bottleneck's drops so far.
	detected                   bool
	ssthreshAtExit, cwndAtExit uint32
	retransAtExit, dropsAtExit uint64
	// At the bottleneck's first drop: the sender's ssthresh.
	dropped        bool
	ssthreshAtDrop uint32
	// Over the whole transfer, and the sender's ssthresh at its end.
	retrans, drops uint64
	simTime        time.Duration
	finalSsthresh  uint32
}

// hystartTransfer sends size bytes from a to b over a 20 Mbit/s
// bottleneck with 10 ms of delay each way and a 100-packet queue, so that
// the RTT grows by 0.6 ms per queued packet and slow start, left alone,
// overflows the queue once cwnd passes the path's 36 packets plus 100.
// The sender's HyStart knobs are set first (hystart, hystart_detect).
func hystartTransfer(t *testing.T, on, detect int64, size int) hystartRun {
	t.Helper()
	fwd := impair.Config{Delay: 10 * time.Millisecond, Rate: 20_000_000, Limit: 100}
	rev := impair.Config{Delay: 10 * time.Millisecond}
	n := newTestNet(t, fwd, rev, 41)
	for name, v := range map[string]int64{"hystart": on, "hystart_detect": detect} {
		c, ok := n.a.net.Sysctls.Lookup("module/tcp_cubic/parameters/" + name)
		if !ok {
			t.Fatalf("no tcp_cubic module parameter %s", name)
		}
		if err := c.Store(v); err != nil {
			t.Fatal(err)
		}
	}
	cli, srv := tcpPair(t, n, 80)
	mib := n.a.mib
	var r hystartRun
	p := newBulkPump(cli, srv, size)
	n.drive(func() bool {
		done := p.step()
		drops := n.pa.LinkCounters().QueueDrops
		if !r.detected && mib.Get(memctl.TcpExtTCPHystartTrainDetect)+mib.Get(memctl.TcpExtTCPHystartDelayDetect) > 0 {
			r.detected = true
			info := cli.Info()
			r.ssthreshAtExit, r.cwndAtExit = info.SndSsthresh, info.SndCwnd
			r.retransAtExit, r.dropsAtExit = mib.Get(memctl.TcpRetransSegs), drops
		}
		if !r.dropped && drops > 0 {
			r.dropped = true
			r.ssthreshAtDrop = cli.Info().SndSsthresh
		}
		return done
	}, 60*time.Second)
	r.trainDetect = mib.Get(memctl.TcpExtTCPHystartTrainDetect)
	r.trainCwnd = mib.Get(memctl.TcpExtTCPHystartTrainCwnd)
	r.delayDetect = mib.Get(memctl.TcpExtTCPHystartDelayDetect)
	r.delayCwnd = mib.Get(memctl.TcpExtTCPHystartDelayCwnd)
	r.retrans = mib.Get(memctl.TcpRetransSegs)
	r.drops = n.pa.LinkCounters().QueueDrops
	r.simTime = time.Duration(n.clk.Nanotime())
	r.finalSsthresh = cli.Info().SndSsthresh
	t.Logf("hystart %d detect %d: train %d (cwnd %d) delay %d (cwnd %d); at exit ssthresh %d cwnd %d retrans %d drops %d; "+
		"retrans %d drops %d in %v", on, detect, r.trainDetect, r.trainCwnd, r.delayDetect, r.delayCwnd,
		r.ssthreshAtExit, r.cwndAtExit, r.retransAtExit, r.dropsAtExit, r.retrans, r.drops, r.simTime)
	return r
}

// checkHystartExit asserts that slow start ended once, by HyStart, before
// anything was lost, with ssthresh set to the cwnd counted at detection.
func checkHystartExit(t *testing.T, r hystartRun, detects, cwnd uint64) {
	t.Helper()
	if !r.detected || detects != 1 {
		t.Fatalf("HyStart detected %d times, want 1", detects)
	}
	if r.retransAtExit != 0 || r.dropsAtExit != 0 {
		t.Errorf("HyStart left slow start after %d drops and %d retransmissions, want before the first loss",
			r.dropsAtExit, r.retransAtExit)
	}
	if uint64(r.ssthreshAtExit) != cwnd {
		t.Errorf("ssthresh %d at exit, want the cwnd at detection %d", r.ssthreshAtExit, cwnd)
	}
	if cwnd < 16 || cwnd >= 36+100 {
		t.Errorf("exit at cwnd %d, want between hystart_low_window and what overflows the queue", cwnd)
	}
}

// With HyStart's delay detection alone, CUBIC leaves slow start when the
// queue adds more than 4 ms to the RTT, long before the queue overflows:
// the transfer then loses a small fraction of what slow start overshooting
// the queue loses with HyStart off.
func TestSlowStartHystartDelayExit(t *testing.T) {
	const size = 4 << 20
	r := hystartTransfer(t, 1, memctl.HystartDelay, size)
	checkHystartExit(t, r, r.delayDetect, r.delayCwnd)
	if r.trainDetect != 0 {
		t.Errorf("ACK-train detection counted with hystart_detect=%d", memctl.HystartDelay)
	}
	off := hystartTransfer(t, 0, memctl.HystartAckTrain|memctl.HystartDelay, size)
	if r.retrans*4 > off.retrans {
		t.Errorf("%d retransmissions with HyStart, %d without: want at most a quarter", r.retrans, off.retrans)
	}
}

// With HyStart off, CUBIC stays in slow start (ssthresh infinite) until the
// bottleneck drops, as before HyStart.
func TestSlowStartHystartOffUntilLoss(t *testing.T) {
	r := hystartTransfer(t, 0, memctl.HystartAckTrain|memctl.HystartDelay, 2<<20)
	if r.trainDetect+r.delayDetect != 0 {
		t.Errorf("HyStart counted %d+%d detections while off", r.trainDetect, r.delayDetect)
	}
	if !r.dropped {
		t.Fatal("slow start never overflowed the queue")
	}
	if r.ssthreshAtDrop != tcpInfiniteSsthresh {
		t.Errorf("ssthresh %d at the first drop, want still TCP_INFINITE_SSTHRESH", r.ssthreshAtDrop)
	}
	if r.finalSsthresh == tcpInfiniteSsthresh {
		t.Error("no loss reaction: ssthresh still infinite at the end")
	}
}

// With ACK-train detection alone: on a bottleneck the ACKs come back
// spaced by its serialisation time (one delayed ACK per two 0.6 ms packets
// at 20 Mbit/s, within hystart_ack_delta_us). While cwnd is below the
// path's BDP each round's ACKs have idle gaps that break the train; once
// the bottleneck stays busy through a round, the train spans more than
// half the minimum RTT and slow start ends, before the queue overflows.
func TestSlowStartHystartAckTrainExit(t *testing.T) {
	r := hystartTransfer(t, 1, memctl.HystartAckTrain, 2<<20)
	checkHystartExit(t, r, r.trainDetect, r.trainCwnd)
	if r.delayDetect != 0 {
		t.Errorf("delay detection counted with hystart_detect=%d", memctl.HystartAckTrain)
	}
}
