package netstack

// RACK-TLP loss detection (RFC 8985, Linux's tcp_recovery.c) as packet
// scripts. Every script runs over a 10 ms round trip learnt during the
// handshake and a warm-up exchange, so min_rtt is 10 ms, the reordering
// window min_rtt/4 = 2.5 ms and the RTO about 210 ms.

import (
	"context"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

const rackRTT = 10 * time.Millisecond

// setRecovery writes net.ipv4.tcp_recovery.
func (c *script) setRecovery(v string) {
	c.t.Helper()
	s, ok := c.s.net.Sysctls.Lookup("ipv4/tcp_recovery")
	if !ok {
		c.t.Fatal("no ipv4/tcp_recovery sysctl")
	}
	if err := s.Write(v); err != nil {
		c.t.Fatal(err)
	}
}

// rackEstablished is an established passive connection with SACK (no
// timestamps) whose handshake and first data exchange each took rackRTT.
// base is the next sequence number the stack sends.
func rackEstablished(t *testing.T, recovery string) (c *script, base uint32) {
	t.Helper()
	return rackEstablishedRTT(t, recovery, rackRTT)
}

// rackEstablishedRTT is rackEstablished with round trips of rtt.
func rackEstablishedRTT(t *testing.T, recovery string, rtt time.Duration) (c *script, base uint32) {
	t.Helper()
	c = newScript(t)
	c.setRecovery(recovery)
	c.listen(8)
	opts := make([]byte, 20)
	k := header.EncodeSynOptions(opts, 1460, -1, true, false, 0, 0)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: opts[:k]})
	sa, _, _ := c.take()
	c.iss = sa.seq
	c.clk.Advance(rtt)
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck})
	c.acceptNoDelay()
	// Warm-up: one byte acked after one RTT.
	c.sendData("w")
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "w"})
	c.clk.Advance(rtt)
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	if m := c.tp.minRttLocked(); m != uint32(rtt/time.Microsecond) {
		t.Fatalf("min_rtt %d us, want %d", m, rtt/time.Microsecond)
	}
	return c, c.iss + 2
}

func (c *script) sendData(p string) {
	c.t.Helper()
	if _, err := c.tp.Send(context.Background(), []byte(p)); err != nil {
		c.t.Fatal(err)
	}
}

// sendFive sends a..e, one byte per segment, all at the same instant.
func (c *script) sendFive(base uint32) {
	c.t.Helper()
	for i := 0; i < 5; i++ {
		c.sendData(string(rune('a' + i)))
		c.expect(seg{seq: base + uint32(i), ack: 1001, flags: fAck | fPsh, payload: string(rune('a' + i))})
	}
}

func (tp *TCPSock) minRttLocked() uint32 {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.minRttUs()
}

// retransTimer returns what the retransmit timer is armed for and when.
func (tp *TCPSock) retransTimerState() (uint8, int64) {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.rtoKind, tp.rtoDeadline
}

func sack1(start, end uint32) []byte { return sackOpt(header.SACKBlock{Start: start, End: end}) }

// ESTABLISHED, RACK: a retransmission that is lost again is detected when
// data sent after it is SACKed, and sent a third time at once, far below
// the RTO (RFC 6675 cannot tell: it needs the RTO). TCPLostRetransmit
// counts it; the resends count as TCPFastRetrans.
func TestEstablishedRackLostRetransmit(t *testing.T) {
	c, base := rackEstablished(t, "1")
	start := c.clk.Nanotime()
	c.sendFive(base) // a is lost
	c.clk.Advance(rackRTT)
	for i := 2; i <= 4; i++ { // b, c, d SACKed: dupthresh SACKs, reo_wnd 0
		c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+uint32(i))})
	}
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"}) // first retransmission (lost too)
	c.expectNone()
	c.sendData("f") // queued: PRR allows nothing more yet
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+5)}) // e SACKed
	c.expect(seg{seq: base + 5, ack: 1001, flags: fAck | fPsh, payload: "f"})   // sent after a's retransmission
	c.expectNone()
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+6)}) // f SACKed, a is not
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})       // second retransmission
	elapsed := time.Duration(c.clk.Nanotime() - start)
	rto := c.tp.Info().RTO
	if elapsed >= rto/4 {
		t.Fatalf("second retransmission after %v, RTO %v", elapsed, rto)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPTimeouts); n != 0 {
		t.Fatalf("TCPTimeouts %d", n)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPLostRetransmit); n != 1 {
		t.Fatalf("TCPLostRetransmit %d, want 1", n)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPFastRetrans); n != 2 {
		t.Fatalf("TCPFastRetrans %d, want 2", n)
	}
	c.send(seg{seq: 1001, ack: base + 6, flags: fAck})
	if i := c.tp.Info(); i.CAState != tcpCAOpen || i.Unacked != 0 {
		t.Fatalf("after the cumulative ACK: ca_state %d unacked %d", i.CAState, i.Unacked)
	}
}

// ESTABLISHED, RACK: with fewer than dupthresh SACKs the holes get the
// reordering window (min_rtt/4) before they count as lost; the reorder
// timer is armed for it, and late originals arriving inside it cause no
// retransmission at all.
func TestEstablishedRackReorderNoSpuriousRetransmit(t *testing.T) {
	c, base := rackEstablished(t, "1")
	c.sendFive(base)
	c.clk.Advance(rackRTT)
	sent := c.clk.Nanotime() - int64(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+2, base+4)}) // c, d first
	c.expectNone()
	kind, deadline := c.tp.retransTimerState()
	// a and b wait rtt + reo_wnd after being sent, plus TCP_TIMEOUT_MIN.
	want := sent + int64(rackRTT+rackRTT/4+tcpTimeoutMin)
	if kind != timerReoTimeout || deadline != want {
		t.Fatalf("timer kind %d deadline %+d ns from expected (reorder timer at %d)", kind, deadline-want, want)
	}
	c.clk.Advance(time.Millisecond) // inside the window: a and b arrive
	c.send(seg{seq: 1001, ack: base + 5, flags: fAck})
	c.clk.Advance(time.Second)
	c.expectNone()
	if n := c.s.mib.Get(memctl.TcpRetransSegs); n != 0 {
		t.Fatalf("%d retransmissions", n)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPSACKReorder); n != 1 {
		t.Fatalf("TCPSACKReorder %d", n)
	}
}

// ESTABLISHED, RACK: when no further ACK comes, the reorder timer fires
// at rtt + reo_wnd + 2 ms after the holes were sent, marks them lost,
// enters recovery and retransmits, long before the RTO.
func TestEstablishedRackReoTimeout(t *testing.T) {
	c, base := rackEstablished(t, "1")
	c.sendFive(base)
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+2, base+4)})
	c.expectNone()
	c.clk.Advance(rackRTT/4 + tcpTimeoutMin - time.Microsecond)
	c.expectNone() // not before the window is over
	c.clk.Advance(time.Microsecond)
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})
	if i := c.tp.Info(); i.CAState != tcpCARecovery || i.Lost != 2 {
		t.Fatalf("ca_state %d lost %d, want recovery with a and b lost", i.CAState, i.Lost)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPTimeouts); n != 0 {
		t.Fatalf("TCPTimeouts %d", n)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPSackRecovery); n != 1 {
		t.Fatalf("TCPSackRecovery %d", n)
	}
	// The reorder timer handed over to the RTO, counted from a's resend.
	if kind, _ := c.tp.retransTimerState(); kind != timerRetrans {
		t.Fatalf("timer kind %d after the reorder timeout", kind)
	}
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base + 1, flags: fAck, opts: sack1(base+2, base+4)}) // a arrived
	c.expect(seg{seq: base + 1, ack: 1001, flags: fAck | fPsh, payload: "b"})
}

// ESTABLISHED, RACK: a D-SACK showing that a retransmission was spurious
// (the original was only reordered beyond the window) widens reo_wnd by
// one min_rtt/4 step at the next ACK, for 16 recoveries.
func TestEstablishedRackDsackWidensReoWnd(t *testing.T) {
	c, base := rackEstablished(t, "1")
	// Reordering seen once: c and d before a and b.
	c.sendFive(base)
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+2, base+4)})
	c.clk.Advance(time.Millisecond)
	c.send(seg{seq: 1001, ack: base + 5, flags: fAck})
	base += 5
	// Now f..j with f late beyond the window: spuriously retransmitted.
	for i := 0; i < 5; i++ {
		c.sendData(string(rune('f' + i)))
		c.expect(seg{seq: base + uint32(i), ack: 1001, flags: fAck | fPsh, payload: string(rune('f' + i))})
	}
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+5)})
	c.clk.Advance(rackRTT / 2)
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "f"})
	c.send(seg{seq: 1001, ack: base + 5, flags: fAck})                            // the original f
	c.send(seg{seq: 1001, ack: base + 5, flags: fAck, opts: sack1(base, base+1)}) // D-SACK for the resend
	if n := c.s.mib.Get(memctl.TcpExtTCPDSACKRecv); n != 1 {
		t.Fatalf("TCPDSACKRecv %d", n)
	}
	base += 5
	// The next ACK that delivers data applies it.
	c.sendData("k")
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "k"})
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base + 1, flags: fAck})
	c.tp.lockSock()
	steps, persist, wnd := c.tp.rack.reoWndSteps, c.tp.rack.reoWndPersist, c.tp.rackReoWnd()
	c.tp.releaseSock()
	if steps != 2 || persist != tcpRackRecoveryThresh {
		t.Fatalf("reo_wnd_steps %d persist %d, want 2 and %d", steps, persist, tcpRackRecoveryThresh)
	}
	if want := uint32(2 * rackRTT / 4 / time.Microsecond); wnd != want {
		t.Fatalf("reo_wnd %d us, want %d", wnd, want)
	}
	// The same reordering as before, 6 ms late: beyond the old window
	// (2.5 ms + 2 ms), inside the new one (5 ms + 2 ms): no retransmission.
	base++
	retrans := c.s.mib.Get(memctl.TcpRetransSegs)
	for i := 0; i < 5; i++ {
		c.sendData(string(rune('l' + i)))
		c.expect(seg{seq: base + uint32(i), ack: 1001, flags: fAck | fPsh, payload: string(rune('l' + i))})
	}
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+5)})
	c.clk.Advance(6 * time.Millisecond)
	c.expectNone()
	c.send(seg{seq: 1001, ack: base + 5, flags: fAck})
	c.clk.Advance(time.Second)
	c.expectNone()
	if n := c.s.mib.Get(memctl.TcpRetransSegs); n != retrans {
		t.Fatalf("%d retransmissions with the widened window", n-retrans)
	}
}

// ESTABLISHED, tcp_recovery=0: today's RFC 6675 rules. Two SACKed
// segments are not enough however long they wait (no reorder timer; only
// the tail loss probe fires); the third SACK marks the holes lost by
// dupthresh.
func TestEstablishedRackOffDupthresh(t *testing.T) {
	c, base := rackEstablished(t, "0")
	c.sendFive(base)
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+2, base+4)})
	if kind, _ := c.tp.retransTimerState(); kind == timerReoTimeout {
		t.Fatal("reorder timer armed with RACK off")
	}
	c.clk.Advance(5 * rackRTT)
	// Only the tail loss probe (2*srtt after the send) goes out: e again.
	c.expect(seg{seq: base + 4, ack: 1001, flags: fAck | fPsh, payload: "e"})
	c.expectNone()
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+2, base+5)})
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})
	if i := c.tp.Info(); i.CAState != tcpCARecovery || i.Lost != 2 {
		t.Fatalf("ca_state %d lost %d", i.CAState, i.Lost)
	}
}

// ESTABLISHED, tcp_recovery=0: a lost retransmission waits for the RTO,
// as before RACK.
func TestEstablishedRackOffLostRetransmitNeedsRTO(t *testing.T) {
	c, base := rackEstablished(t, "0")
	c.sendFive(base)
	c.clk.Advance(rackRTT)
	for i := 2; i <= 4; i++ {
		c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+uint32(i))})
	}
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})
	c.sendData("f")
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+5)})
	c.expect(seg{seq: base + 5, ack: 1001, flags: fAck | fPsh, payload: "f"})
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+6)})
	c.expectNone() // RFC 6675 does not see that a's resend is lost
	c.clk.Advance(c.tp.Info().RTO)
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})
	if n := c.s.mib.Get(memctl.TcpExtTCPTimeouts); n != 1 {
		t.Fatalf("TCPTimeouts %d", n)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPLostRetransmit); n != 0 {
		t.Fatalf("TCPLostRetransmit %d with RACK off", n)
	}
}

// ESTABLISHED, RACK: a reorder timer that fires while a user owns the
// socket is deferred to release_sock like the other write-timer events
// (TCP_WRITE_TIMER_DEFERRED): nothing is sent while owned, the
// retransmission goes out at release.
func TestEstablishedRackReoTimeoutDeferred(t *testing.T) {
	c, base := rackEstablished(t, "1")
	c.sendFive(base)
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+2, base+4)})
	c.expectNone()
	release := own(t, c.tp)
	c.clk.Advance(rackRTT)
	c.expectNone()
	if c.tp.deferred&tcpWriteTimerDeferred == 0 {
		t.Fatal("reorder timer work not deferred")
	}
	release()
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})
	if n := c.s.mib.Get(memctl.TcpExtTCPTimeouts); n != 0 {
		t.Fatalf("TCPTimeouts %d", n)
	}
}

// ESTABLISHED, RACK: a widened reo_wnd lasts for TCP_RACK_RECOVERY_THRESH
// recoveries that D-SACKs do not undo; when the last one ends, the next
// ACK that delivers data sets it back to one step.
func TestEstablishedRackReoWndResetAfterRecoveries(t *testing.T) {
	c, base := rackEstablished(t, "1")
	c.tp.lockSock()
	c.tp.rack.reoWndSteps, c.tp.rack.reoWndPersist = 3, 1 // the last persistent round
	c.tp.releaseSock()
	c.sendFive(base) // a is really lost
	c.clk.Advance(rackRTT)
	for i := 2; i <= 4; i++ {
		c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sack1(base+1, base+uint32(i))})
	}
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base + 5, flags: fAck}) // recovery over, not undone
	c.tp.lockSock()
	steps, persist := c.tp.rack.reoWndSteps, c.tp.rack.reoWndPersist
	c.tp.releaseSock()
	if persist != 0 || steps != 3 {
		t.Fatalf("reo_wnd_persist %d steps %d after the recovery, want 0 and still 3", persist, steps)
	}
	c.sendData("f")
	c.expect(seg{seq: base + 5, ack: 1001, flags: fAck | fPsh, payload: "f"})
	c.clk.Advance(rackRTT)
	c.send(seg{seq: 1001, ack: base + 6, flags: fAck})
	c.tp.lockSock()
	steps = c.tp.rack.reoWndSteps
	c.tp.releaseSock()
	if steps != 1 {
		t.Fatalf("reo_wnd_steps %d, want 1", steps)
	}
}
