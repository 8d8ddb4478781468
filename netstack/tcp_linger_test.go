package netstack

import (
	"context"
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// lingerNet is a pair over a path of 20 ms each way, the client with 200
// KB written and in flight; the server reads all it gets when read is true.
func lingerNet(t *testing.T, read bool) (n *testNet, cli, srv *TCPSock, got chan int) {
	d := impair.Config{Delay: 20 * time.Millisecond}
	n = newTestNet(t, d, d, 7)
	cli, srv = tcpPair(t, n, 80)
	if read {
		if err := srv.SetRcvbuf(4 << 20); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := srv.SetRcvbuf(8 << 10); err != nil { // a window far below what is written
			t.Fatal(err)
		}
	}
	srv.SetNonblock(false)
	got = make(chan int, 1)
	if read {
		go func() {
			total, buf := 0, make([]byte, 64<<10)
			for {
				k, err := srv.Recv(context.Background(), buf)
				total += k
				if k == 0 || err != nil {
					got <- total
					return
				}
			}
		}()
	}
	cli.SetNonblock(false)
	if err := cli.SetSndbuf(1 << 20); err != nil {
		t.Fatal(err)
	}
	if k, err := cli.Send(context.Background(), make([]byte, 200_000)); k != 200_000 || err != nil {
		t.Fatalf("send: %d, %v", k, err)
	}
	return n, cli, srv, got
}

// closeIn runs close on cli in a goroutine and returns, once it has
// returned (the simulated clock driven meanwhile, for at most by), the
// simulated time it took and the state it left cli in.
func closeIn(n *testNet, cli *TCPSock, by time.Duration, close func() error) (time.Duration, TCPState) {
	start := n.clk.Nanotime()
	type res struct {
		at    int64
		state TCPState
	}
	done := make(chan res, 1)
	go func() {
		close()
		done <- res{n.clk.Nanotime(), cli.State()}
	}()
	untilWaiting(cli, func() bool { return len(done) > 0 })
	r := returnBy(n, start, by, done)
	return time.Duration(r.at - start), r.state
}

// returnBy drives the simulated clock until a call in another goroutine
// sends its result on ch, or until by after start, where the clock stops
// and the call is waited for in wall time: a call whose deadline is at by
// must return before later timers run, which a loaded machine's slow
// wake-up of it would otherwise let them.
func returnBy[T any](n *testNet, start int64, by time.Duration, ch <-chan T) T {
	n.t.Helper()
	n.drive(func() bool { return len(ch) > 0 || n.clk.Nanotime()-start >= int64(by) }, by+time.Second)
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		n.t.Fatalf("the call did not return by %v", by)
		panic("unreachable")
	}
}

// untilWaiting holds the simulated clock back, for at most a second of
// wall time, until a call just started in another goroutine sleeps on
// cli's wait queue or returned (finished): the call reads the clock for
// its deadline before it sleeps, and a clock driven ahead of it would
// push that deadline out.
func untilWaiting(cli *TCPSock, finished func() bool) {
	for deadline := time.Now().Add(time.Second); !cli.sk.Wq.HasSleepers() && !finished() && time.Now().Before(deadline); {
		runtime.Gosched()
	}
}

// CloseLinger (SO_LINGER, a positive timeout) with data in flight returns
// once the peer has acknowledged the data and the FIN (FIN_WAIT2), as
// __tcp_close's sk_stream_wait_close does; Close returns at once, the FIN
// still unacknowledged.
func TestTCPCloseLingerWaitsForFinAck(t *testing.T) {
	// Each case on a network of its own, closed (and its skbs counted) at
	// the end of its subtest, before the next is made: the leak check
	// compares the process's live skb heads.
	t.Run("Close", func(t *testing.T) {
		n, cli, _, got := lingerNet(t, true)
		if err := cli.Close(); err != nil || cli.State() != TCPFinWait1 {
			t.Fatalf("Close: %v, state %v; want FIN_WAIT1 at its return", err, cli.State())
		}
		if total := await(n, got); total != 200_000 {
			t.Fatalf("peer read %d bytes, want 200000", total)
		}
	})
	t.Run("CloseLinger", func(t *testing.T) {
		n, cli, _, got := lingerNet(t, true)
		took, state := closeIn(n, cli, 10*time.Second, func() error { return cli.CloseLinger(context.Background(), 10*time.Second) })
		if state == TCPFinWait1 || state == TCPClosing || state == TCPLastAck || took < 40*time.Millisecond || took >= 10*time.Second {
			t.Fatalf("CloseLinger: took %v, state %v; want a round trip or more, before the timeout, FIN acknowledged", took, state)
		}
		if total := await(n, got); total != 200_000 {
			t.Fatalf("peer read %d bytes, want 200000", total)
		}
	})
}

// CloseLinger toward a peer that does not read waits out its timeout on
// the stack's clock and returns without an error, as close(2) does; the
// connection goes on closing as an orphan.
func TestTCPCloseLingerTimesOut(t *testing.T) {
	n, cli, _, _ := lingerNet(t, false)
	took, state := closeIn(n, cli, 2*time.Second, func() error { return cli.CloseLinger(context.Background(), 2*time.Second) })
	if took < 2*time.Second || took > 2*time.Second+100*time.Millisecond || state != TCPFinWait1 {
		t.Fatalf("CloseLinger: took %v, state %v; want 2 s, FIN_WAIT1", took, state)
	}
	cli.lockSock()
	orphan, dead := cli.orphaned, cli.dead
	cli.releaseSock()
	if !orphan || !dead {
		t.Fatalf("after the linger: orphaned %v, dead %v; want both", orphan, dead)
	}
}

// A signal (the context) ends the linger early; close still succeeds.
func TestTCPCloseLingerInterrupted(t *testing.T) {
	n, cli, _, _ := lingerNet(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	n.clk.AfterFunc(300*time.Millisecond, cancel)
	took, state := closeIn(n, cli, 300*time.Millisecond, func() error { return cli.CloseLinger(ctx, 5*time.Second) })
	if took < 300*time.Millisecond || took > 400*time.Millisecond || state != TCPFinWait1 {
		t.Fatalf("CloseLinger cancelled at 300 ms: took %v, state %v", took, state)
	}
}

// WaitOutqEmpty returns once everything written is acknowledged, sending
// no FIN; toward a peer that does not read it gives up at its timeout with
// EAGAIN, the connection unchanged.
func TestTCPWaitOutqEmpty(t *testing.T) {
	// Each case on a network of its own (see TestTCPCloseLingerWaitsForFinAck).
	t.Run("reading peer", func(t *testing.T) {
		n, cli, _, _ := lingerNet(t, true)
		errc := make(chan error, 1)
		start := n.clk.Nanotime()
		go func() { errc <- cli.WaitOutqEmpty(context.Background(), 10*time.Second) }()
		untilWaiting(cli, func() bool { return len(errc) > 0 })
		if err := await(n, errc); err != nil {
			t.Fatalf("WaitOutqEmpty toward a reading peer: %v", err)
		}
		took := time.Duration(n.clk.Nanotime() - start)
		cli.lockSock()
		outq, state := cli.writeSeq-cli.sndUna, cli.state
		cli.releaseSock()
		if outq != 0 || state != TCPEstablished || took < 40*time.Millisecond || took >= 10*time.Second {
			t.Fatalf("after WaitOutqEmpty: outq %d, state %v, took %v", outq, state, took)
		}
	})
	t.Run("peer not reading", func(t *testing.T) {
		n, cli, _, _ := lingerNet(t, false)
		errc := make(chan error, 1)
		start := n.clk.Nanotime()
		go func() { errc <- cli.WaitOutqEmpty(context.Background(), time.Second) }()
		untilWaiting(cli, func() bool { return len(errc) > 0 })
		err := returnBy(n, start, time.Second, errc)
		took := time.Duration(n.clk.Nanotime() - start)
		if !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("WaitOutqEmpty toward a peer that does not read: %v, want EAGAIN", err)
		}
		if took < time.Second || took > time.Second+100*time.Millisecond || cli.State() != TCPEstablished {
			t.Fatalf("gave up after %v in %v; want 1 s, ESTABLISHED", took, cli.State())
		}
	})
}
