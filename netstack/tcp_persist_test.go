package netstack

import (
	"context"
	"strings"
	"testing"
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
