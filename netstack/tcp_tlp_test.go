package netstack

import (
	"context"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

// tlpResent is an established SACK connection whose tail loss probe, with
// nothing new to send, resent the last of four segments (3*mss+100
// bytes); it returns the first sequence number and tlp_high_seq.
func tlpResent(t *testing.T) (c *script, base, high uint32) {
	c = sackEstablished(t)
	const mss = 1460
	if _, err := c.tp.Send(context.Background(), make([]byte, 3*mss+100)); err != nil {
		t.Fatal(err)
	}
	base = c.iss + 1
	c.expectData(base, 4, mss, 100)
	c.clk.Advance(time.Second) // the probe timeout before any RTT sample
	c.expectData(base+3*mss, 1, mss, 100)
	c.expectNone()
	high = base + 3*mss + 100
	if got := c.tlpHighSeq(); got != high {
		t.Fatalf("tlp_high_seq %d after the probe, want snd_nxt %d", got, high)
	}
	return c, base, high
}

func (c *script) tlpHighSeq() uint32 {
	c.tp.lockSock()
	defer c.tp.releaseSock()
	return c.tp.tlpHighSeq
}

// After a resent probe, the cumulative ACK of everything up to
// tlp_high_seq does not say whether the original was lost: the probe's
// episode stays open (no second probe may go out) until the D-SACK of the
// probe's segment reports that both copies arrived (FLAG_DSACK_TLP), and
// then ends without a cwnd reduction. Mirrors tcp_process_tlp_ack; sockfs
// used to end the episode on the first ACK at tlp_high_seq.
func TestLossProbeEpisodeEndsWithItsDSACK(t *testing.T) {
	c, base, high := tlpResent(t)
	c.send(seg{seq: 1001, ack: high, flags: fAck, win: 65535})
	if got := c.tlpHighSeq(); got != high {
		t.Fatalf("tlp_high_seq %d after the ACK of snd_una up to it, want it kept (%d)", got, high)
	}
	c.send(seg{seq: 1001, ack: high, flags: fAck, win: 65535,
		opts: sackOpt(header.SACKBlock{Start: base + 3*1460, End: high})})
	if got := c.tlpHighSeq(); got != 0 {
		t.Fatalf("tlp_high_seq %d after the probe's D-SACK, want 0", got)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPLossProbeRecovery); n != 0 {
		t.Fatalf("TCPLossProbeRecovery %d, want 0: nothing was lost", n)
	}
}

// A pure duplicate ACK at tlp_high_seq after the cumulative one (the
// probe's copy arrived, and the peer sent no D-SACK) ends the episode too.
func TestLossProbeEpisodeEndsWithADupack(t *testing.T) {
	c, _, high := tlpResent(t)
	c.send(seg{seq: 1001, ack: high, flags: fAck, win: 65535})
	c.send(seg{seq: 1001, ack: high, flags: fAck, win: 65535})
	if got := c.tlpHighSeq(); got != 0 {
		t.Fatalf("tlp_high_seq %d after a pure duplicate ACK, want 0", got)
	}
}

// An ACK beyond tlp_high_seq with no D-SACK of the probe says the probe
// repaired a loss: cwnd is brought down to the new ssthresh at once (CWR
// entered and ended), counted as TCPLossProbeRecovery, and the episode is
// over.
func TestLossProbeRepairedLossReducesCwnd(t *testing.T) {
	c, _, high := tlpResent(t)
	if _, err := c.tp.Send(context.Background(), make([]byte, 1460)); err != nil {
		t.Fatal(err)
	}
	c.expectData(high, 1, 1460, 0)
	c.tp.lockSock()
	cwnd := c.tp.cwnd
	c.tp.releaseSock()
	c.send(seg{seq: 1001, ack: high + 1460, flags: fAck, win: 65535})
	if n := c.s.mib.Get(memctl.TcpExtTCPLossProbeRecovery); n != 1 {
		t.Fatalf("TCPLossProbeRecovery %d, want 1", n)
	}
	c.tp.lockSock()
	defer c.tp.releaseSock()
	if c.tp.tlpHighSeq != 0 || c.tp.cwnd >= cwnd || c.tp.cwnd != c.tp.ssthresh || c.tp.caState != tcpCAOpen {
		t.Fatalf("after the ACK beyond the probe: tlp_high_seq %d, cwnd %d (was %d), ssthresh %d, ca_state %d; want 0, cwnd = ssthresh below the old cwnd, Open",
			c.tp.tlpHighSeq, c.tp.cwnd, cwnd, c.tp.ssthresh, c.tp.caState)
	}
}

// The probe timeout is 2*srtt plus TCP_TIMEOUT_MIN (2 ms) with several
// segments out, plus the RTO floor with one (the peer may be delaying its
// ACK), and never later than the RTO, as tcp_schedule_loss_probe computes
// it in Linux 6.x. On a 1 ms path that is 4 ms with two segments out
// (sockfs used to keep the 10 ms floor of older kernels), and with one the
// RTO itself: srtt + rttvar, whose floor is tcp_rto_min, 201 ms before
// 2*srtt + tcp_rto_min's 202.
func TestLossProbeTimeout(t *testing.T) {
	const rtt = time.Millisecond
	for _, tc := range []struct {
		segs int
		pto  time.Duration
	}{{2, 2*rtt + tcpTimeoutMin}, {1, rtt + tcpRtoMin}} {
		c, base := rackEstablishedRTT(t, "1", rtt)
		for i := range tc.segs {
			c.sendData("x")
			c.expect(seg{seq: base + uint32(i), ack: 1001, flags: fAck | fPsh, payload: "x"})
		}
		kind, deadline := c.tp.retransTimerState()
		if got := time.Duration(deadline - c.clk.Nanotime()); kind != timerLossProbe || got != tc.pto {
			t.Fatalf("%d segments out on a %v path: timer %d in %v, want the loss probe (%d) in %v",
				tc.segs, rtt, kind, got, timerLossProbe, tc.pto)
		}
	}
}
