package netstack

import (
	"context"
	"strings"
	"testing"
	"time"
)

// SO_RCVLOWAT's effect on rcvbuf, as linux-skmem.md §2 scenario 8
// measured on 6.18: unlocked, the value is capped at tcp_rmem[2]/2 and
// rcvbuf grows to tcp_space_from_win of it (twice it at the default
// scaling ratio) and never shrinks back; with rcvbuf locked by SO_RCVBUF
// the cap is rcvbuf/2 and rcvbuf stays. A window_clamp below the value is
// raised to it.
func TestSetRcvlowatRcvbuf(t *testing.T) {
	c := newScript(t)
	tp := c.s.NewTCP()
	defer tp.Close()
	if tp.Rcvlowat() != 1 {
		t.Fatalf("default rcvlowat %d", tp.Rcvlowat())
	}
	step := func(val, lowat, rcvbuf int) {
		t.Helper()
		tp.SetRcvlowat(val)
		if got, rb := tp.Rcvlowat(), tp.Mem().Rcvbuf(); got != lowat || rb != rcvbuf {
			t.Fatalf("SO_RCVLOWAT %d: lowat %d rcvbuf %d, want %d %d", val, got, rb, lowat, rcvbuf)
		}
	}
	step(100000, 100000, 200000)
	step(30000, 30000, 200000)
	step(1, 1, 200000)
	step(0, 1, 200000)
	max2 := c.s.net.Sysctls.TCPRmem()[2]
	step(1<<30, max2/2, max2)
	step(-1, max2/2, max2) // negative: INT_MAX

	l := c.s.NewTCP()
	defer l.Close()
	if err := l.SetRcvbuf(50000); err != nil {
		t.Fatal(err)
	}
	l.SetRcvlowat(80000)
	if got, rb := l.Rcvlowat(), l.Mem().Rcvbuf(); got != 50000 || rb != 100000 {
		t.Fatalf("locked rcvbuf: lowat %d rcvbuf %d, want 50000 100000", got, rb)
	}

	w := c.s.NewTCP()
	defer w.Close()
	if err := w.SetWindowClamp(5000); err != nil {
		t.Fatal(err)
	}
	w.SetRcvlowat(100000)
	w.lockSock()
	clamp := w.windowClamp
	w.releaseSock()
	if clamp != 100000 {
		t.Fatalf("window_clamp %d after SO_RCVLOWAT 100000, want raised to 100000", clamp)
	}
}

// ESTABLISHED, SO_RCVLOWAT 3000: a read that finds 1000 bytes takes them
// and sleeps; it is woken only when 3000 more are unread (tcp_data_ready
// looks at what is queued, not at what the reader already holds) and
// returns 4000, as the 6.18 kernel does (a Python reader on loopback:
// 1000 sent, recv(10000) started, then 1000 at a time: it returns 4000
// after the fourth). Poll shows nothing to read meanwhile. A FIN wakes a
// reader short of its mark with what there is.
func TestEstablishedRcvlowatWakeup(t *testing.T) {
	c := newEstablished(t)
	c.tp.SetNonblock(false)
	c.tp.SetRcvlowat(3000)
	type res struct {
		n   int
		err error
	}
	seq := c.peerIS + 1
	data := func(n int) {
		c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: strings.Repeat("d", n)})
		seq += uint32(n)
	}
	// read starts a blocking read and waits until it has taken what is
	// queued (copied_seq at rcv_nxt).
	read := func() chan res {
		ch := make(chan res, 1)
		go func() {
			n, err := c.tp.Recv(context.Background(), make([]byte, 10000))
			ch <- res{n, err}
		}()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			c.tp.lockSock()
			taken := c.tp.copiedSeq == c.tp.rcvNxt
			c.tp.releaseSock()
			if taken {
				break
			}
		}
		return ch
	}
	notYet := func(ch chan res, what string) {
		t.Helper()
		select {
		case r := <-ch:
			t.Fatalf("reader woken %s: %d %v", what, r.n, r.err)
		case <-time.After(100 * time.Millisecond):
		}
		if c.tp.Readiness()&EventIn != 0 {
			t.Fatalf("poll readable %s", what)
		}
	}
	data(1000)
	ch := read()
	for _, what := range []string{"with 1000 unread", "with 2000 unread"} {
		data(1000)
		notYet(ch, what)
	}
	data(1000)
	select {
	case r := <-ch:
		if r.n != 4000 || r.err != nil {
			t.Fatalf("read %d %v, want 4000", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader not woken with 3000 unread")
	}

	ch = read()
	data(100)
	notYet(ch, "with 100 unread")
	c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck | fFin})
	select {
	case r := <-ch:
		if r.n != 100 || r.err != nil {
			t.Fatalf("read at FIN %d %v, want 100", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader not woken by the FIN")
	}
}
