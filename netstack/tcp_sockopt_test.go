package netstack

import (
	"context"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// The per-socket options of the ctl verbs, each with its effect.

// TCP_WINDOW_CLAMP bounds the windows the connection advertises, from the
// SYN on; on a connection, 0 is EINVAL (the window never shrinks at once:
// a smaller clamp shows as the window is used).
func TestSockoptWindowClamp(t *testing.T) {
	c := newScript(t)
	tp := c.s.NewTCP()
	if err := tp.SetWindowClamp(5000); err != nil {
		t.Fatal(err)
	}
	tp.SetNonblock(true)
	c.lport, c.rport = 5000, 80
	if err := tp.Bind(netip.AddrPortFrom(scriptLocal, 5000)); err != nil {
		t.Fatal(err)
	}
	tp.Connect(context.Background(), netip.AddrPortFrom(scriptRemote, 80))
	syn, _, _ := c.take()
	if syn.win > 5000 {
		t.Fatalf("SYN window %d above the clamp 5000", syn.win)
	}
	c.iss, c.tp = syn.seq, tp
	c.send(seg{seq: 3000, ack: c.iss + 1, flags: fSyn | fAck, win: 65535, opts: mssOpt(1460)})
	c.take()
	c.send(seg{seq: 3001, ack: c.iss + 1, flags: fAck | fPsh, win: 65535, payload: "hello"})
	c.clk.Advance(time.Second)
	if got, _, ok := c.take(); !ok || got.win > 5000 {
		t.Fatalf("ACK %v: window above the clamp 5000", got)
	}
	if err := tp.SetWindowClamp(0); err != syscall.EINVAL {
		t.Fatalf("clamp 0 on a connection: %v, want EINVAL", err)
	}
	tp.Abort()
}

// TCP_USER_TIMEOUT: unacknowledged data fails the connection after 1 s
// instead of tcp_retries2's 924.6 s.
func TestSockoptUserTimeout(t *testing.T) {
	c := newEstablished(t)
	if err := c.tp.SetUserTimeout(time.Second); err != nil {
		t.Fatal(err)
	}
	c.tp.Send(context.Background(), []byte("lost"))
	c.take()
	c.untilRetransmit()
	c.clk.Advance(3 * time.Second)
	if c.tp.State() != TCPClose || c.tp.sk.SockError() != syscall.ETIMEDOUT {
		t.Fatalf("state %v err %v, want CLOSE with ETIMEDOUT", c.tp.State(), c.tp.sk.SockError())
	}
	if err := c.tp.SetUserTimeout(-1); err != syscall.EINVAL {
		t.Fatalf("negative: %v", err)
	}
}

// TCP_MAXSEG is the MSS the SYN advertises; below 88 it is EINVAL.
func TestSockoptMaxseg(t *testing.T) {
	c := newScript(t)
	tp := c.s.NewTCP()
	if err := tp.SetMaxSeg(50); err != syscall.EINVAL {
		t.Fatalf("maxseg 50: %v", err)
	}
	if err := tp.SetMaxSeg(1000); err != nil {
		t.Fatal(err)
	}
	tp.SetNonblock(true)
	tp.Connect(context.Background(), netip.AddrPortFrom(scriptRemote, 80))
	if _, o, _ := c.take(); o.MSS != 1000 {
		t.Fatalf("SYN MSS %d, want 1000", o.MSS)
	}
	tp.Abort()
}

// TCP_QUICKACK off: data is acknowledged by the delayed-ACK timer, not at
// once.
func TestSockoptQuickack(t *testing.T) {
	for _, on := range []bool{true, false} {
		c := newEstablished(t)
		c.tp.SetQuickAck(on)
		c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fPsh, payload: "hello"})
		_, _, acked := c.take()
		if acked != on {
			t.Fatalf("quickack %v: immediate ACK %v", on, acked)
		}
	}
}

// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, one by one.
func TestSockoptKeepalive(t *testing.T) {
	c := newEstablished(t)
	c.tp.SetKeepAlive(true, 0, 0, 0)
	for _, err := range []error{c.tp.SetKeepIdle(0), c.tp.SetKeepIntvl(32768 * time.Second), c.tp.SetKeepCnt(128)} {
		if err != syscall.EINVAL {
			t.Fatalf("out of range: %v", err)
		}
	}
	if c.tp.SetKeepIdle(10*time.Second) != nil || c.tp.SetKeepIntvl(2*time.Second) != nil || c.tp.SetKeepCnt(1) != nil {
		t.Fatal("refused")
	}
	c.expectKeepaliveDeath()
}

// TCP_CONGESTION: unknown ENOENT; outside tcp_allowed_congestion_control
// EPERM unless privileged; the algorithm in force changes.
func TestSockoptCongestion(t *testing.T) {
	c := newEstablished(t)
	if err := c.tp.SetCongestion("vegas", true); err != syscall.ENOENT {
		t.Fatalf("vegas: %v", err)
	}
	setSysctl(t, c.s, "ipv4/tcp_allowed_congestion_control", "reno")
	if err := c.tp.SetCongestion("cubic", false); err != syscall.EPERM {
		t.Fatalf("cubic unprivileged: %v", err)
	}
	if err := c.tp.SetCongestion("reno", false); err != nil || c.tp.Info().Congestion != "reno" {
		t.Fatalf("reno: %v %s", err, c.tp.Info().Congestion)
	}
	if err := c.tp.SetCongestion("cubic", true); err != nil || c.tp.Info().Congestion != "cubic" {
		t.Fatalf("cubic privileged: %v %s", err, c.tp.Info().Congestion)
	}
}
