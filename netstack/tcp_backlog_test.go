package netstack

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

// newEstablishedTS is newEstablished with timestamps negotiated: the peer's
// SYN carries MSS 1460 and TSval 100. It returns the stack's TSval (to echo).
func newEstablishedTS(t *testing.T) (*script, uint32) {
	t.Helper()
	return newEstablishedTSAfter(t, nil)
}

// newEstablishedTSAfter is newEstablishedTS with setup (if not nil) run on
// the script before the stack listens (to set sysctls, say).
func newEstablishedTSAfter(t *testing.T, setup func(*script)) (*script, uint32) {
	t.Helper()
	c := newScript(t)
	if setup != nil {
		setup(c)
	}
	c.listen(8)
	opts := make([]byte, 20)
	k := header.EncodeSynOptions(opts, 1460, -1, false, true, 100, 0)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: opts[:k]})
	sa, o, _ := c.take()
	if sa.flags != fSyn|fAck || !o.HasTimestamp {
		t.Fatalf("SYN-ACK %v options %+v", sa, o)
	}
	c.iss = sa.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck, opts: tsOpt(101, o.TSVal)})
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tp.SetNonblock(true)
	c.tp = tp
	return c, o.TSVal
}

// own makes the test goroutine the socket's owner (a user call in progress)
// and returns the release; a failing test releases it on the way out, so
// that the stack's cleanup does not wait for it.
func own(t *testing.T, tp *TCPSock) (release func()) {
	tp.lockSock()
	held := true
	t.Cleanup(func() {
		if held {
			tp.releaseSock()
		}
	})
	return func() {
		held = false
		tp.releaseSock()
	}
}

// drainAcks takes every transmitted segment and returns the highest ACK
// number seen (0 if nothing was sent).
func (c *script) drainAcks() (n int, lastAck uint32) {
	for {
		g, _, ok := c.take()
		if !ok {
			return n, lastAck
		}
		n++
		if g.flags&fAck != 0 {
			lastAck = g.ack
		}
	}
}

// readAll reads with a non-blocking socket until EAGAIN.
func readAll(t *testing.T, tp *TCPSock) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 65536)
	for {
		n, err := tp.Recv(context.Background(), buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, syscall.EAGAIN) || (err == nil && n == 0) {
			return out
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
	}
}

// Scenario 37 (linux-skmem.md): a user owns the socket while a flood
// arrives. Each segment goes to the backlog (timestamps differ, so none
// coalesces) while backlog.len + rmem_alloc <= 2*rcvbuf + sndbuf/2 + 64 KiB,
// checked before adding; the rest count TCPBacklogDrop and sk_drops. Nothing
// is processed (no ACK) until release_sock, which processes every queued
// segment, leaves bl at 0 and makes exactly the queued bytes readable.
func TestTCPBacklogLimitScenario37(t *testing.T) {
	c, ecr := newEstablishedTS(t)
	tp, sk := c.tp, c.tp.Mem()
	if err := tp.SetRcvbuf(65536); err != nil {
		t.Fatal(err)
	}
	if err := tp.SetSndbuf(8192); err != nil {
		t.Fatal(err)
	}
	if sk.Rcvbuf() != 131072 || sk.Sndbuf() != 16384 {
		t.Fatalf("rcvbuf %d sndbuf %d, want 131072 16384", sk.Rcvbuf(), sk.Sndbuf())
	}
	const limit = 2*131072 + 16384/2 + 65536 // 335872
	if got := sk.TCPBacklogLimit(); got != limit {
		t.Fatalf("backlog limit %d, want %d", got, limit)
	}
	if sk.RmemAlloc() != 0 || sk.BacklogLen() != 0 {
		t.Fatalf("start: rmem %d bl %d", sk.RmemAlloc(), sk.BacklogLen())
	}
	c.drainAcks()
	mib := c.s.mib
	drop0 := mib.Get(memctl.TcpExtTCPBacklogDrop)

	const plen = 100
	payload := func(i int) string { return string(bytes.Repeat([]byte{byte('a' + i%26)}, plen)) }
	seq := c.peerIS + 1

	release := own(t, tp) // the user holds the socket (a Send or Recv in progress)
	accepted, dropped, truesize := 0, 0, 0
	for i := 0; dropped < 5 && i < 10000; i++ {
		before := sk.BacklogLen()
		full := before+sk.RmemAlloc() > limit
		c.send(seg{seq: seq + uint32(i*plen), ack: c.iss + 1, flags: fAck, payload: payload(i), opts: tsOpt(200+uint32(i), ecr)})
		after := sk.BacklogLen()
		switch {
		case after > before:
			if dropped > 0 {
				t.Fatalf("segment %d queued after a drop", i)
			}
			if full {
				t.Fatalf("segment %d queued with bl %d over the limit", i, before)
			}
			if truesize == 0 {
				truesize = after - before
			} else if after-before != truesize {
				t.Fatalf("segment %d charged %d to bl, the first %d", i, after-before, truesize)
			}
			accepted++
		case after == before:
			if !full {
				t.Fatalf("segment %d refused with bl %d within the limit", i, before)
			}
			dropped++
		default:
			t.Fatalf("bl went down while owned: %d -> %d", before, after)
		}
	}
	if tp.skBacklog.Len() != accepted {
		t.Fatalf("backlog holds %d skbs, %d accepted (none may coalesce)", tp.skBacklog.Len(), accepted)
	}
	if want := limit/truesize + 1; accepted != want {
		t.Fatalf("accepted %d segments of truesize %d, want limit/T+1 = %d", accepted, truesize, want)
	}
	if sk.BacklogLen() != accepted*truesize || sk.BacklogLen() <= limit {
		t.Fatalf("bl %d, want %d (the last accepted takes it past %d)", sk.BacklogLen(), accepted*truesize, limit)
	}
	if got := mib.Get(memctl.TcpExtTCPBacklogDrop) - drop0; got != uint64(dropped) {
		t.Fatalf("TCPBacklogDrop +%d, want +%d", got, dropped)
	}
	if sk.Drops() != uint64(dropped) {
		t.Fatalf("sk_drops %d, want %d", sk.Drops(), dropped)
	}
	if tp.rcvNxt != seq || sk.RmemAlloc() != 0 {
		t.Fatalf("processed while owned: rcv_nxt %d (want %d), rmem %d", tp.rcvNxt, seq, sk.RmemAlloc())
	}
	if n, _ := c.drainAcks(); n != 0 {
		t.Fatalf("%d segments sent while the socket was owned", n)
	}
	release()

	end := seq + uint32(accepted*plen)
	if sk.BacklogLen() != 0 || tp.skBacklog.Len() != 0 {
		t.Fatalf("after release: bl %d, %d skbs", sk.BacklogLen(), tp.skBacklog.Len())
	}
	if q := tp.Info().Qin; tp.State() != TCPEstablished || q != accepted*plen {
		t.Fatalf("after release: %v Recv-Q %d, want %d", tp.State(), q, accepted*plen)
	}
	c.clk.Advance(time.Second) // the delayed ACK, if not sent yet
	if _, ack := c.drainAcks(); ack != end {
		t.Fatalf("after release the stack acked %d, want %d", ack, end)
	}
	got := readAll(t, tp)
	if len(got) != accepted*plen {
		t.Fatalf("read %d bytes, want %d", len(got), accepted*plen)
	}
	for i := 0; i < accepted; i++ {
		if string(got[i*plen:(i+1)*plen]) != payload(i) {
			t.Fatalf("segment %d corrupted", i)
		}
	}
	// The dropped segments are retransmitted and delivered.
	for i := accepted; i < accepted+dropped; i++ {
		c.send(seg{seq: seq + uint32(i*plen), ack: c.iss + 1, flags: fAck, payload: payload(i), opts: tsOpt(20000+uint32(i), ecr)})
	}
	if got := readAll(t, tp); len(got) != dropped*plen || string(got[:plen]) != payload(accepted) {
		t.Fatalf("retransmissions: read %d bytes, want %d", len(got), dropped*plen)
	}
}

// Contiguous segments with identical options that arrive while the socket
// is owned merge into the backlog's tail: TCPBacklogCoalesce counts each,
// bl grows only by the truesize delta (0 for a copy into the tailroom), and
// a FIN merged into the tail is still seen at release.
func TestEstablishedBacklogCoalesce(t *testing.T) {
	c := newEstablished(t)
	tp, sk := c.tp, c.tp.Mem()
	seq := c.peerIS + 1
	release := own(t, tp)
	c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: "abc"})
	bl := sk.BacklogLen()
	if bl == 0 {
		t.Fatal("segment not queued on the backlog")
	}
	c.send(seg{seq: seq + 3, ack: c.iss + 1, flags: fAck | fPsh, payload: "def"})
	c.send(seg{seq: seq + 6, ack: c.iss + 1, flags: fAck | fFin, payload: "gh"})
	if n := c.s.mib.Get(memctl.TcpExtTCPBacklogCoalesce); n != 2 {
		t.Fatalf("TCPBacklogCoalesce %d, want 2", n)
	}
	if tp.skBacklog.Len() != 1 || sk.BacklogLen() != bl {
		t.Fatalf("backlog %d skbs, bl %d (want 1, %d)", tp.skBacklog.Len(), sk.BacklogLen(), bl)
	}
	// Not contiguous: appended, not merged.
	c.send(seg{seq: seq + 100, ack: c.iss + 1, flags: fAck, payload: "zz"})
	if tp.skBacklog.Len() != 2 || c.s.mib.Get(memctl.TcpExtTCPBacklogCoalesce) != 2 {
		t.Fatalf("non-contiguous segment merged")
	}
	c.expectNone()
	release()
	if tp.State() != TCPCloseWait {
		t.Fatalf("state %v, want CLOSE_WAIT (the merged FIN)", tp.State())
	}
	c.clk.Advance(time.Second)
	if _, ack := c.drainAcks(); ack != seq+9 {
		t.Fatalf("acked %d, want %d", ack, seq+9)
	}
	if got := readAll(t, tp); string(got) != "abcdefgh" {
		t.Fatalf("read %q", got)
	}
}

// A delayed-ACK timer that fires while a user owns the socket is deferred
// to release_sock (TCP_DELACK_TIMER_DEFERRED): no ACK while owned, the ACK
// at release.
func TestEstablishedDelackDeferred(t *testing.T) {
	c := newEstablished(t)
	tp := c.tp
	seq := c.peerIS + 1
	// Leave quick-ack mode so that data is acked by the timer.
	tp.lockSock()
	tp.ackQuick = 0
	tp.enterPingpong()
	tp.releaseSock()
	c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: "x"})
	c.expectNone()
	release := own(t, tp)
	c.clk.Advance(time.Second)
	c.expectNone()
	if tp.deferred&tcpDelackTimerDeferred == 0 {
		t.Fatal("delack timer work not deferred")
	}
	release()
	c.expect(seg{seq: c.iss + 1, ack: seq + 1, flags: fAck})
}

// Segments arriving from the device goroutine while users hammer the socket
// from others: nothing blocks input, and every byte arrives exactly once.
func TestTCPBacklogConcurrentOwners(t *testing.T) {
	c, ecr := newEstablishedTS(t)
	tp := c.tp
	seq := c.peerIS + 1
	const n, plen = 400, 50
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var got []byte
	wg.Add(2)
	go func() { // a reader
		defer wg.Done()
		buf := make([]byte, 4096)
		for len(got) < n*plen {
			k, _ := tp.Recv(context.Background(), buf)
			got = append(got, buf[:k]...)
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	go func() { // another user, taking the lock in a loop
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = tp.Info()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < n; i++ {
		// Stay inside the advertised window, as a peer does: a slow
		// reader (a loaded machine) closes it, and a segment past its
		// right edge is dropped (tcp_sequence; 6.17's beyond-window rule).
		end := seq + uint32((i+1)*plen)
		for time.Now().Before(deadline) {
			tp.lockSock()
			room := seqLEQ(end, tp.rcvWup+tp.rcvWnd)
			tp.releaseSock()
			if room {
				break
			}
			c.drainAcks()
			time.Sleep(time.Millisecond)
		}
		p := bytes.Repeat([]byte{byte(i)}, plen)
		c.send(seg{seq: seq + uint32(i*plen), ack: c.iss + 1, flags: fAck, payload: string(p), opts: tsOpt(200+uint32(i), ecr)})
		if i%50 == 0 {
			c.drainAcks()
		}
	}
	for {
		tp.lockSock()
		done := tp.rcvNxt == seq+n*plen
		tp.releaseSock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	got = append(got, readAll(t, tp)...)
	if len(got) != n*plen {
		t.Fatalf("read %d bytes, want %d (drops %d)", len(got), n*plen, tp.Mem().Drops())
	}
	for i := 0; i < n; i++ {
		if got[i*plen] != byte(i) {
			t.Fatalf("segment %d out of place", i)
		}
	}
}

// tcpOwnedForTest reports whether a user call owns any of the stack's TCP
// sockets (for the simulation harness, which must not move the clock while
// one is at work). The table lock is dropped before the sockets' spinlocks
// are taken (softirq code takes them in the other order).
func (s *Stack) tcpOwnedForTest() bool {
	t := &s.tcp
	var all []*TCPSock
	t.mu.RLock()
	for _, tp := range t.estab {
		all = append(all, tp)
	}
	for _, l := range t.bound {
		all = append(all, l...)
	}
	t.mu.RUnlock()
	for _, tp := range all {
		tp.mu.slock.Lock()
		owned := tp.mu.owned
		tp.mu.slock.Unlock()
		if owned {
			return true
		}
	}
	return false
}

// A listener a user owns (Accept, Close) queues a SYN on its backlog; the
// SYN-ACK goes out when the owner releases it.
func TestListenSynWhileOwned(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	release := own(t, c.l)
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	c.expectNone()
	if c.l.skBacklog.Len() != 1 || c.l.Mem().BacklogLen() == 0 {
		t.Fatalf("listener backlog %d skbs, bl %d", c.l.skBacklog.Len(), c.l.Mem().BacklogLen())
	}
	release()
	got, _, ok := c.take()
	if !ok || got.flags != fSyn|fAck || got.ack != 1001 {
		t.Fatalf("after release: %v %v, want the SYN-ACK", got, ok)
	}
	if c.l.Mem().BacklogLen() != 0 {
		t.Fatal("bl not reset")
	}
}

// The handshake's ACK and the first data segment both wait on the backlog
// of a listener a user owns. On release the ACK creates the connection; the
// data must then reach it, not draw a RST from the listener (the kernel's
// 200-connection echo test saw exactly that reset).
func TestListenAckAndDataWhileOwned(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	sa, _, ok := c.take()
	if !ok || sa.flags != fSyn|fAck {
		t.Fatalf("no SYN-ACK: %v", sa)
	}
	release := own(t, c.l)
	c.send(seg{seq: 1001, ack: sa.seq + 1, flags: fAck})
	c.send(seg{seq: 1001, ack: sa.seq + 1, flags: fAck | fPsh, payload: "first words"})
	c.expectNone()
	release()
	c.expectNoRst("the listener reset the new connection")
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := tp.Recv(context.Background(), buf)
	if err != nil || string(buf[:n]) != "first words" {
		t.Fatalf("recv %q, %v", buf[:n], err)
	}
}
