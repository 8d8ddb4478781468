package netstack

import (
	"strings"
	"testing"
	"time"
)

// TestEstablishedDelackBoundedByRtt: an ato the delayed-ACK timer has
// inflated (80 ms) is bounded by the smoothed RTT, at least 40 ms
// (TCP_DELACK_MIN), when the delayed ACK is scheduled, as
// tcp_send_delayed_ack does: the ACK goes after 40 ms on a fast path, not
// 80. The live kernel answered a receiver's segments after 42 ms each
// time in the sk_drops probe of tcp_drops_test.go.
func TestEstablishedDelackBoundedByRtt(t *testing.T) {
	c := newEstablishedRTT(t, nil)
	tp := c.tp
	if tp.srttUs == 0 {
		t.Fatal("no RTT sample from the handshake")
	}
	tp.ato, tp.ackQuick = 80*time.Millisecond, 0 // as after a missed delayed ACK
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fPsh, payload: "x"})
	c.clk.Advance(39 * time.Millisecond)
	c.expectNone()
	c.clk.Advance(time.Millisecond)
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
}

// newEstablishedRTT is newEstablished (the peer's SYN offers MSS 1460 only)
// with the handshake at a non-zero time, so that the accepted socket has an
// RTT sample as any real handshake gives it (a SYN-ACK sent at time 0 gives
// none), and with listener, if not nil, applied to the listener first.
func newEstablishedRTT(t *testing.T, listener func(l *TCPSock)) *script {
	t.Helper()
	c := newScript(t)
	c.clk.Advance(time.Millisecond)
	c.listen(8)
	if listener != nil {
		listener(c.l)
	}
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(1460)})
	sa, _, _ := c.take()
	c.iss = sa.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck})
	tp, err := c.l.Accept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tp.SetNonblock(true)
	c.tp = tp
	return c
}

// TestEstablishedShortWindowEndsQuickack: __tcp_ack_snd_check evaluates
// the window test before quickack mode, and __tcp_select_window leaves
// quickack mode when less than half the buffer is free; so a second
// 2896-byte segment into a 16 KiB buffer waits for the delayed ACK even
// though the first left a quickack, as the live kernel did for the same
// segments through a TUN (tcp_rmem 4096 16384 65536: an ACK for the first
// at once, none for the second until the timer). sockfs used to ACK it at
// once, which opened the window by a few hundred bytes more than Linux
// and drew data the kernel never had to take.
func TestEstablishedShortWindowEndsQuickack(t *testing.T) {
	c, tsv := newEstablishedTSAfter(t, func(c *script) {
		if sc, _ := c.s.net.Sysctls.Lookup("ipv4/tcp_rmem"); sc.Write("4096 16384 65536") != nil {
			t.Fatal("tcp_rmem refused")
		}
	})
	ack := c.iss + 1
	c.send(seg{seq: 1001, ack: ack, flags: fAck | fPsh, payload: strings.Repeat("x", 2896), opts: tsOpt(102, tsv)})
	c.expect(seg{seq: ack, ack: 1001 + 2896, flags: fAck})
	if c.tp.ackQuick == 0 {
		t.Fatal("no quickack left after the first segment: the test proves nothing")
	}
	c.send(seg{seq: 1001 + 2896, ack: ack, flags: fAck | fPsh, payload: strings.Repeat("x", 2896), opts: tsOpt(103, tsv)})
	c.expectNone()
	c.clk.Advance(tcpAtoMin)
	c.expect(seg{seq: ack, ack: 1001 + 2*2896, flags: fAck})
}
