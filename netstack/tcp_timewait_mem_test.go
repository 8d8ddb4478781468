package netstack

import (
	"context"
	"testing"

	"sockfs/memctl"
)

// tcpMemTotal is what the TCP pool holds, in pages: the global counter
// and the per-CPU reserve not yet drained into it.
func tcpMemTotal(c *script) int64 {
	p := c.s.net.TCP
	return p.MemoryAllocatedRaw() + p.PerCPUFwAlloc()
}

// expectNoMem fails unless the socket holds no receive memory and no
// forward_alloc and the pool is back to base pages.
func expectNoMem(c *script, what string, base int64) {
	c.t.Helper()
	sk := c.tp.sk
	if r, f, m := sk.RmemAlloc(), sk.ForwardAlloc(), tcpMemTotal(c); r != 0 || f != 0 || m != base {
		c.t.Fatalf("%s: rmem_alloc %d forward_alloc %d, tcp_mem %d pages; want 0, 0, %d", what, r, f, m, base)
	}
}

// An orphan whose full socket enters TIME_WAIT is destroyed (tcp_time_wait
// -> tcp_done -> inet_csk_destroy_sock): the peer's FIN, queued as an skb
// before tcp_fin brought it there, is purged and forward_alloc goes back
// to tcp_mem, so sockstat's TCP mem drops at once. It kept r832 f3264
// and a page of tcp_mem for the 60 s (an outside probe saw `tw 4096 mem
// 4096` after 4,000 short connections). Both ways in: the FIN with the
// ACK of ours (FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT in one segment), and
// simultaneous close (CLOSING, then the ACK).
func TestTimeWaitOrphanFreesMemory(t *testing.T) {
	c := newEstablished(t)
	base := tcpMemTotal(c)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if c.tp.State() != TCPTimeWait {
		t.Fatalf("state %v, want TIME_WAIT", c.tp.State())
	}
	expectNoMem(c, "orphan in TIME_WAIT after FIN+ACK", base)

	c = newEstablished(t)
	base = tcpMemTotal(c)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if c.tp.State() != TCPClosing || c.tp.sk.RmemAlloc() == 0 {
		t.Fatalf("state %v rmem_alloc %d, want CLOSING with the FIN queued", c.tp.State(), c.tp.sk.RmemAlloc())
	}
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck})
	if c.tp.State() != TCPTimeWait {
		t.Fatalf("state %v, want TIME_WAIT", c.tp.State())
	}
	expectNoMem(c, "orphan in TIME_WAIT from CLOSING", base)
	if tw := c.s.net.TCP.TwCount(); tw != 1 {
		t.Fatalf("tw %d, want 1", tw)
	}
}

// The peer's FIN at a FIN_WAIT2 timewait sock (an orphan whose FIN was
// acknowledged) moves it to TIME_WAIT with an ACK and queues nothing, as
// tcp_timewait_state_process does: a timewait sock has no receive queue.
// It went through dataQueue, queued and charged (r832). A FIN beyond
// rcv_nxt draws TCP_TW_RST, queued nowhere (it went to the out-of-order
// queue, charged).
func TestFinWait2TimewaitFinNotCharged(t *testing.T) {
	c := newEstablished(t)
	base := tcpMemTotal(c)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	if !c.tp.fw2tw {
		t.Fatal("not a FIN_WAIT2 timewait sock")
	}
	expectNoMem(c, "FIN_WAIT2 timewait sock", base)
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	c.expectNone()
	if c.tp.State() != TCPTimeWait || c.s.net.TCP.TwCount() != 1 {
		t.Fatalf("state %v tw %d, want TIME_WAIT and 1", c.tp.State(), c.s.net.TCP.TwCount())
	}
	expectNoMem(c, "after the FIN", base)

	c = newEstablished(t)
	base = tcpMemTotal(c)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.send(seg{seq: 1005, ack: c.iss + 2, flags: fAck | fFin})
	got, _, ok := c.take()
	if !ok || got.flags&fRst == 0 {
		t.Fatalf("FIN beyond rcv_nxt: got %v (sent %v), want a RST", got, ok)
	}
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v, want CLOSE", c.tp.State())
	}
	expectNoMem(c, "after a FIN beyond rcv_nxt", base)
}

// heldTimeWait brings a socket the user holds to TIME_WAIT: shut down
// for writing, then the peer's payload and FIN in one segment, acked. It
// returns the script and the pool's pages before.
func heldTimeWait(t *testing.T, payload string) (*script, int64) {
	t.Helper()
	c := newEstablished(t)
	base := tcpMemTotal(c)
	if err := c.tp.Shutdown(ShutWr); err != nil {
		t.Fatal(err)
	}
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fFin})
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin, payload: payload})
	c.expect(seg{seq: c.iss + 2, ack: 1001 + uint32(len(payload)) + 1, flags: fAck})
	if c.tp.State() != TCPTimeWait {
		t.Fatalf("state %v, want TIME_WAIT", c.tp.State())
	}
	return c, base
}

// A socket the user still holds keeps what arrived before the peer's FIN
// when it enters TIME_WAIT, as Linux's full socket does beside its
// timewait sock until the user closes it: readable to the end of the
// stream, charged until read; the user's close then frees the rest.
func TestTimeWaitHeldSocketKeepsUnreadData(t *testing.T) {
	c, base := heldTimeWait(t, "last words")
	if c.tp.sk.RmemAlloc() == 0 {
		t.Fatal("the unread data is not charged any more")
	}
	buf := make([]byte, 32)
	if n, err := c.tp.Recv(context.Background(), buf); err != nil || string(buf[:n]) != "last words" {
		t.Fatalf("recv %q, %v", buf[:n], err)
	}
	if n, err := c.tp.Recv(context.Background(), buf); n != 0 || err != nil {
		t.Fatalf("end of stream: %d, %v", n, err)
	}
	if r := c.tp.sk.RmemAlloc(); r != 0 {
		t.Fatalf("rmem_alloc %d after reading to the end", r)
	}
	c.tp.Close()
	c.expectNone()
	expectNoMem(c, "after the user's close in TIME_WAIT", base)
	if c.tp.State() != TCPTimeWait || c.s.net.TCP.TwCount() != 1 {
		t.Fatalf("state %v tw %d, want TIME_WAIT and 1", c.tp.State(), c.s.net.TCP.TwCount())
	}
}

// The user's close of a socket in TIME_WAIT with data still unread frees
// that data and nothing more: Linux's full socket is already in TCP_CLOSE
// beside its timewait sock, so __tcp_close sends no RST and counts no
// TCPAbortOnClose, and TIME_WAIT runs its course. It reset the peer and
// ended TIME_WAIT at once.
func TestTimeWaitCloseUnreadNoReset(t *testing.T) {
	c, base := heldTimeWait(t, "unread")
	c.tp.Close()
	c.expectNone()
	if n := c.s.mib.Get(memctl.TcpExtTCPAbortOnClose); n != 0 {
		t.Fatalf("TCPAbortOnClose %d, want 0", n)
	}
	if c.tp.State() != TCPTimeWait || c.s.net.TCP.TwCount() != 1 {
		t.Fatalf("state %v tw %d, want TIME_WAIT and 1", c.tp.State(), c.s.net.TCP.TwCount())
	}
	expectNoMem(c, "after the close", base)
	if al := c.s.net.TCP.SocketsAllocated(); al != 1 {
		t.Fatalf("sockets_allocated %d, want 1 (the listener)", al)
	}
}

// TestTimeWaitAbortKeepsTimewait: a zero-linger close (Abort, the files'
// `linger 0` and hangup) of a held socket in TIME_WAIT sends no RST,
// counts no TCPAbortOnData and leaves the timewait sock to run its
// course, as __tcp_close does with Linux's full socket already in
// TCP_CLOSE; it ended TIME_WAIT with a RST's counting.
func TestTimeWaitAbortKeepsTimewait(t *testing.T) {
	c, base := heldTimeWait(t, "unread")
	c.tp.Abort()
	c.expectNone()
	for _, k := range []memctl.Counter{memctl.TcpExtTCPAbortOnData, memctl.TcpExtTCPAbortOnClose} {
		if n := c.s.mib.Get(k); n != 0 {
			_, name := k.Name()
			t.Fatalf("%s %d, want 0", name, n)
		}
	}
	if c.tp.State() != TCPTimeWait || c.s.net.TCP.TwCount() != 1 {
		t.Fatalf("state %v tw %d, want TIME_WAIT and 1", c.tp.State(), c.s.net.TCP.TwCount())
	}
	expectNoMem(c, "after the abort", base)
}
