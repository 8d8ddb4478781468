package netstack

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ESTABLISHED, persist timer, window open but smaller than the MSS: the
// ACK that leaves nothing in flight finds a tail loss probe pending; it
// clears it (tcp_rearm_rto clears whatever timer is pending), so the write
// that cannot send a full segment arms the persist timer
// (tcp_check_probe_timer), and tcp_write_wakeup then sends a piece the
// size of the window. sockfs used to leave the loss probe pending, which
// kept the persist timer off and, once it fired with nothing in flight,
// left nothing armed: the sender stalled for good (found by an outside
// probe against the live kernel: snd_wnd 856, mss 1448, 18552 bytes
// queued, nothing sent for 23 s).
func TestEstablishedSmallWindowAfterLossProbeArmed(t *testing.T) {
	c := sackEstablished(t)
	// One byte from the peer moves snd_wl1 on, so that the next ACK may
	// shrink the window to 100.
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fPsh, payload: "p"})
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
	c.send(seg{seq: 1002, ack: c.iss + 1, flags: fAck, win: 100})
	c.tp.Send(context.Background(), []byte("data"))
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fPsh, payload: "data"})
	c.tp.lockSock()
	kind := c.tp.rtoKind
	c.tp.releaseSock()
	if kind != timerLossProbe {
		t.Fatalf("timer kind %d after the first segment, want the loss probe", kind)
	}
	// 3000 bytes that do not fit the 96 bytes left of the window.
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 3000)))
	c.expectNone()
	// All acknowledged; the window is 1000, below the MSS of 1460.
	c.send(seg{seq: 1002, ack: c.iss + 5, flags: fAck, win: 1000})
	c.expectNone()
	c.clk.Advance(c.tp.Info().RTO) // the persist timer, not backed off (tcp_probe0_base)
	c.expect(seg{seq: c.iss + 5, ack: 1002, flags: fAck | fPsh, payload: strings.Repeat("x", 1000)})
	c.send(seg{seq: 1002, ack: c.iss + 1005, flags: fAck, win: 3000})
	c.expect(seg{seq: c.iss + 1005, ack: 1002, flags: fAck, payload: strings.Repeat("x", 1460)})
	c.expect(seg{seq: c.iss + 2465, ack: 1002, flags: fAck | fPsh, payload: strings.Repeat("x", 540)})
}

// ESTABLISHED, a peer that offers a window of 1152 (a kernel receiver with
// SO_RCVBUF=1): the send MSS is half of it, 576, so that segments go into
// a window that never holds a full MSS (tcp_sync_mss with
// tcp_bound_to_half_wnd; the live kernel sent 576-byte segments to this
// receiver where sockfs kept 1460 and waited for the persist timer). A
// larger window offered later raises the MSS again (tcp_ack_update_window
// syncs it when max_window grows).
func TestEstablishedMssBoundToHalfWindow(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: c.peerIS, flags: fSyn, win: 1152, opts: mssOpt(1460)})
	sa, _, _ := c.take()
	c.iss = sa.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck, win: 1152})
	c.acceptNoDelay()
	if mss := c.tp.Info().SndMSS; mss != 576 {
		t.Fatalf("send MSS %d against a window of 1152, want 576", mss)
	}
	// 3000 bytes in skbs of 576 (tcp_xmit_size_goal), PSH on every
	// second for half a window unpushed (forced_push) and on the last.
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 3000)))
	x576 := strings.Repeat("x", 576)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck, payload: x576})
	c.expect(seg{seq: c.iss + 577, ack: 1001, flags: fAck | fPsh, payload: x576})
	c.expectNone()
	// The reader took 576: the window slides and one more goes.
	c.send(seg{seq: 1001, ack: c.iss + 577, flags: fAck, win: 1152})
	c.expect(seg{seq: c.iss + 1153, ack: 1001, flags: fAck, payload: x576})
	c.expectNone()
	// A window of 8000 makes max_window 8000: the MSS is the peer's 1460;
	// the skbs already queued go as they are.
	c.send(seg{seq: 1001, ack: c.iss + 1729, flags: fAck, win: 8000})
	if mss := c.tp.Info().SndMSS; mss != 1460 {
		t.Fatalf("send MSS %d after a window of 8000, want 1460", mss)
	}
	c.expect(seg{seq: c.iss + 1729, ack: 1001, flags: fAck | fPsh, payload: x576})
	c.expect(seg{seq: c.iss + 2305, ack: 1001, flags: fAck, payload: x576})
	c.expect(seg{seq: c.iss + 2881, ack: 1001, flags: fAck | fPsh, payload: strings.Repeat("x", 120)})
}

// zeroWindowProbes runs a connection whose peer answers every window probe
// at once with a zero window, in steps of 1 ms for up to limit, and
// returns the times (since the start) of the probes and of the end of the
// connection (0 if it lasted).
func (c *script) zeroWindowProbes(limit time.Duration) (probes []time.Duration, closed time.Duration) {
	c.t.Helper()
	start := c.clk.Nanotime()
	for time.Duration(c.clk.Nanotime()-start) < limit {
		c.clk.Advance(time.Millisecond)
		at := time.Duration(c.clk.Nanotime() - start)
		for g, _, ok := c.take(); ok; g, _, ok = c.take() {
			if g.seq != c.iss || g.payload != "" || g.flags != fAck {
				c.t.Fatalf("unexpected %v", g)
			}
			probes = append(probes, at)
			c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true})
		}
		if c.tp.State() == TCPClose {
			return probes, at
		}
	}
	return probes, 0
}

// ESTABLISHED, TCP_USER_TIMEOUT 3 s against a zero window whose probes the
// peer answers: the connection gives up (ETIMEDOUT, no RST) 3 s after the
// persist timer first fired (icsk_probes_tstamp, which the answers do not
// restart), the last interval cut to what the user timeout leaves
// (tcp_clamp_probe0_to_user_timeout). Mirrors tcp_probe_timer. Found by an
// outside probe against the live kernel: Linux gave up at 3.26 s, sockfs
// at 6.41 s (10.44 against 26.19 s for 10 s).
func TestEstablishedZeroWindowUserTimeout(t *testing.T) {
	c := newEstablished(t)
	if err := c.tp.SetUserTimeout(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true})
	c.tp.Send(context.Background(), []byte("blocked"))
	c.expectNone()
	probes, closed := c.zeroWindowProbes(30 * time.Second)
	if len(probes) == 0 || closed == 0 {
		t.Fatalf("probes at %v, still open after 30 s", probes)
	}
	if want := probes[0] + 3*time.Second; closed != want {
		t.Fatalf("gave up at %v (probes at %v), want %v: 3 s after the first probe", closed, probes, want)
	}
	if err := c.tp.sk.SockError(); err != syscall.ETIMEDOUT {
		t.Fatalf("error %v, want ETIMEDOUT", err)
	}
}

// ESTABLISHED, persist timer with tcp_retries2 3: the back-off stops
// growing at 3 doublings (tcp_send_probe0 increments icsk_backoff only
// below tcp_retries2), so answered probes go every 8 RTOs from the third
// on: about 1.7 s on the live kernel. sockfs capped the back-off at 15.
func TestEstablishedPersistBackoffCappedAtRetries2(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_retries2", "3")
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true})
	c.tp.Send(context.Background(), []byte("blocked"))
	c.expectNone()
	base := max(c.tp.Info().RTO, tcpRtoMin)
	probes, closed := c.zeroWindowProbes(40 * base)
	if closed != 0 {
		t.Fatalf("gave up at %v although the peer answered", closed)
	}
	want := []time.Duration{2 * base, 4 * base, 8 * base, 8 * base}
	if len(probes) < len(want)+1 {
		t.Fatalf("probes at %v, want intervals %v", probes, want)
	}
	for i, w := range want {
		if got := probes[i+1] - probes[i]; got != w {
			t.Fatalf("interval %d %v (probes at %v), want %v", i+1, got, probes, w)
		}
	}
}

// ESTABLISHED, a write blocked on a zero window when TCP_USER_TIMEOUT
// ends the connection: the write returns the count it queued, and the
// next one the connection's error, ETIMEDOUT, not EPIPE
// (tcp_sendmsg_locked consumes sk_err only through sk_stream_error, when
// it copied nothing). Found by an outside probe against the live kernel.
func TestEstablishedBlockedWriteUserTimeoutKeepsTheError(t *testing.T) {
	c := newEstablished(t)
	if err := c.tp.SetUserTimeout(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.tp.SetSndbuf(8192); err != nil {
		t.Fatal(err)
	}
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true})
	c.tp.SetNonblock(false)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.tp.Send(context.Background(), make([]byte, 1<<20))
		done <- result{n, err}
	}()
	for c.tp.sk.WritePending() == 0 {
		time.Sleep(time.Millisecond)
	}
	var r result
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("the blocked write did not return within 10 s")
		}
		c.clk.Advance(100 * time.Millisecond)
		for _, _, ok := c.take(); ok; _, _, ok = c.take() {
		}
		select {
		case r = <-done:
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	if r.n == 0 || r.n == 1<<20 || r.err != nil {
		t.Fatalf("blocked write: %d, %v; want a partial count and no error", r.n, r.err)
	}
	if n, err := c.tp.Send(context.Background(), []byte("x")); n != 0 || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("next write: %d, %v; want ETIMEDOUT", n, err)
	}
}
