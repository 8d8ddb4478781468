package netstack

import (
	"strings"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/skb"
)

// The sk_drops counts of these scripts are the live 6.18 kernel's: the same
// segments, written into a TUN towards a kernel socket (SO_RCVBUF 8192 on
// the listener, no timestamps or SACK), moved its SO_MEMINFO drops by the
// same amounts, step by step. Linux counts every segment that TCP drops
// through tcp_drop_reason (sk_drops_skbadd), tcp_v4_rcv's
// discard_and_relse and tcp_listendrop; a RST that resets, a bare ACK that
// is consumed and a segment answered with a RST from a listener are not
// drops.

// dropStep is one segment of a drop script and how much it adds to
// sk_drops.
type dropStep struct {
	name   string
	sg     seg
	badsum bool
	drops  uint64
}

// run sends the steps in order (each alone in its batch, its answers
// drained) and checks sk's drops after each.
func (c *script) runDrops(drops func() uint64, steps []dropStep) {
	c.t.Helper()
	for _, st := range steps {
		before := drops()
		b := c.build(st.sg)
		if st.badsum {
			d := b.Data()
			d[len(d)-1] ^= 0x55
		}
		c.nd.NetifRx([]*skb.SKB{b})
		c.drainAcks()
		if got := drops() - before; got != st.drops {
			c.t.Errorf("%s: sk_drops +%d, the kernel's +%d", st.name, got, st.drops)
		}
	}
}

// TestListenDropsCounted: a listener counts the segments it drops, and a
// pending request's listener those tcp_check_req does not take.
func TestListenDropsCounted(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	ld := func() uint64 { return c.l.Mem().Drops() }
	from := func(port uint16, sg seg) seg { c.rport = port; return sg }
	c.runDrops(ld, []dropStep{
		{"RST", from(39000, seg{seq: 5, flags: fRst}), false, 1},
		{"SYN+FIN", from(39001, seg{seq: 5, flags: fSyn | fFin}), false, 1},
		{"no flags", from(39002, seg{seq: 5}), false, 1},
		{"bare ACK (answered with a RST)", from(39003, seg{seq: 5, ack: 77, flags: fAck}), false, 0},
	})
	c.rport = 39004
	c.send(seg{seq: 100, flags: fSyn, opts: mssOpt(1460)})
	sa, _, ok := c.take()
	if !ok || sa.flags != fSyn|fAck {
		t.Fatalf("no SYN-ACK: %v", sa)
	}
	c.runDrops(ld, []dropStep{
		{"retransmitted SYN", seg{seq: 100, flags: fSyn, opts: mssOpt(1460)}, false, 1},
		{"request: no ACK", seg{seq: 101}, false, 1},
		{"request: bad checksum", seg{seq: 101, ack: sa.seq + 1, flags: fAck}, true, 0},
		{"request: ACK out of window", seg{seq: 101 + 100000, ack: sa.seq + 1, flags: fAck}, false, 1},
		{"request: RST", seg{seq: 101, ack: sa.seq + 1, flags: fRst}, false, 1},
	})
}

// TestEstablishedDropsCounted: the drops of tcp_validate_incoming (old and
// beyond-window sequence numbers, zero-window probes, RST and SYN
// challenges), of the established fast/slow path (no flags, an ACK of
// unsent data, a bad checksum), of tcp_data_queue (a duplicate, data into
// a zero window), of the out-of-order queue (covered and covering
// segments) and of CLOSE_WAIT (where even a bare ACK is one) are counted.
func TestEstablishedDropsCounted(t *testing.T) {
	c := newEstablishedRTT(t, func(l *TCPSock) {
		if err := l.SetRcvbuf(8192); err != nil {
			t.Fatal(err)
		}
	})
	tp := c.tp
	d := func() uint64 { return tp.Mem().Drops() }
	ack := c.iss + 1
	data := func(n int) string { return strings.Repeat("d", n) }
	nxt := uint32(2001)
	c.runDrops(d, []dropStep{
		{"in-order data", seg{seq: 1001, ack: ack, flags: fAck | fPsh, payload: data(1000)}, false, 0},
		{"duplicate (wholly old) data", seg{seq: 1001, ack: ack, flags: fAck | fPsh, payload: data(1000)}, false, 1},
		{"probe at rcv_nxt-1, no data", seg{seq: nxt - 1, ack: ack, flags: fAck}, false, 1},
		{"probe at rcv_nxt-1, one old byte", seg{seq: nxt - 1, ack: ack, flags: fAck, payload: "x"}, false, 1},
		{"far beyond the window", seg{seq: nxt + 1000000, ack: ack, flags: fAck, payload: "x"}, false, 1},
		{"RST in the window, not at rcv_nxt", seg{seq: nxt + 10, ack: ack, flags: fRst}, false, 1},
		{"SYN in the window", seg{seq: nxt, ack: ack, flags: fSyn}, false, 1},
		{"no flags", seg{seq: nxt, ack: ack, payload: "x"}, false, 1},
		{"ACK of unsent data", seg{seq: nxt, ack: ack + 999, flags: fAck}, false, 1},
		{"bad checksum", seg{seq: nxt, ack: ack, flags: fAck | fPsh, payload: data(100)}, true, 1},
		{"out of order", seg{seq: nxt + 2000, ack: ack, flags: fAck, payload: data(500)}, false, 0},
		{"out of order, covered by the queued one", seg{seq: nxt + 2100, ack: ack, flags: fAck, payload: data(100)}, false, 1},
		{"out of order, covering the queued one", seg{seq: nxt + 2000, ack: ack, flags: fAck, payload: data(800)}, false, 1},
		{"bare ACK", seg{seq: nxt, ack: ack, flags: fAck}, false, 0},
	})
	// Fill the window with in-order data until the stack offers none, as
	// the probe did: once the offered window is shorter than a segment and
	// data is queued, each one is dropped (tcp_sequence's
	// TCP_INVALID_END_SEQUENCE) and counted in BeyondWindow. The kernel
	// answered every segment within 50 ms (its delayed ACK bounded by the
	// RTT) and dropped 35 of the 40.
	before, beyond := d(), c.s.mib.Get(memctl.TcpExtBeyondWindow)
	for range 40 {
		c.send(seg{seq: nxt, ack: ack, flags: fAck, payload: data(1000)})
		c.clk.Advance(50 * time.Millisecond) // the probe waited 50 ms for answers
		last, got := seg{}, false
		for s, _, ok := c.take(); ok; s, _, ok = c.take() {
			last, got = s, true
		}
		if got {
			nxt = last.ack
			if last.win == 0 {
				break
			}
		}
	}
	if got, b := d()-before, c.s.mib.Get(memctl.TcpExtBeyondWindow)-beyond; got != 35 || b != 35 {
		t.Errorf("filling the window: sk_drops +%d, BeyondWindow +%d; the kernel's +35, +35", got, b)
	}
	c.runDrops(d, []dropStep{
		{"data into a zero window", seg{seq: nxt, ack: ack, flags: fAck, payload: data(1000)}, false, 1},
		{"zero-window probe (rcv_nxt-1)", seg{seq: nxt - 1, ack: ack, flags: fAck}, false, 1},
		{"zero window, bare ACK at rcv_nxt", seg{seq: nxt, ack: ack, flags: fAck}, false, 0},
		{"FIN (to CLOSE_WAIT)", seg{seq: nxt, ack: ack, flags: fAck | fFin}, false, 0},
		{"CLOSE_WAIT: bare ACK at rcv_nxt", seg{seq: nxt + 1, ack: ack, flags: fAck}, false, 1},
		{"CLOSE_WAIT: retransmitted FIN", seg{seq: nxt, ack: ack, flags: fAck | fFin}, false, 1},
	})
}

// TestEstablishedDataEndsBeyondWindow: since Linux 6.17 a segment that
// starts in the receive window but ends beyond it is accepted only while
// the receive queue is empty (or when only its FIN is beyond); otherwise
// it is dropped like an out-of-window segment: a duplicate ACK,
// BeyondWindow and sk_drops counted (tcp_sequence's
// TCP_INVALID_END_SEQUENCE).
func TestEstablishedDataEndsBeyondWindow(t *testing.T) {
	c := newEstablished(t)
	ack := c.iss + 1
	nxt := uint32(1001)
	w := int(c.tp.receiveWindow())
	c.send(seg{seq: nxt, ack: ack, flags: fAck, payload: strings.Repeat("a", w+100)})
	c.clk.Advance(time.Second) // the delayed ACK, with the new window
	c.drainAcks()
	if q := c.tp.Info().Qin; q != w+100 {
		t.Fatalf("into an empty queue: %d bytes queued, want all %d", q, w+100)
	}
	nxt += uint32(w + 100)
	w = int(c.tp.receiveWindow())
	if w == 0 {
		t.Fatal("no window left to test with")
	}
	d0, b0 := c.tp.Mem().Drops(), c.s.mib.Get(memctl.TcpExtBeyondWindow)
	c.send(seg{seq: nxt, ack: ack, flags: fAck, payload: strings.Repeat("b", w+1)})
	c.expect(seg{seq: ack, ack: nxt, flags: fAck})
	if d, b := c.tp.Mem().Drops()-d0, c.s.mib.Get(memctl.TcpExtBeyondWindow)-b0; d != 1 || b != 1 {
		t.Errorf("one byte beyond the window: sk_drops +%d, BeyondWindow +%d, want +1, +1", d, b)
	}
	// The window's worth with a FIN one beyond it is taken, as some
	// stacks send it so.
	c.send(seg{seq: nxt, ack: ack, flags: fAck | fFin, payload: strings.Repeat("c", w)})
	c.drainAcks()
	if c.tp.Mem().Drops() != d0+1 || c.tp.State() != TCPCloseWait {
		t.Errorf("a window's worth and a FIN: sk_drops %d, state %v; want taken (CLOSE_WAIT)", c.tp.Mem().Drops()-d0, c.tp.State())
	}
}
