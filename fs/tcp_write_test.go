package fs

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"sockfs/netstack/stacktest"
)

// TestWriteBlockedUntilUserTimeoutKeepsTheError: a write blocked on a
// peer that never reads ends when TCP_USER_TIMEOUT gives up, with the
// count it queued; the next write fails with the connection's error,
// ETIMEDOUT, as on Linux. Write used to call Send again after the short
// count, which took the error and dropped it, so the next write said EPIPE
// ("i/o on hungup channel"; found by an outside probe against the live
// kernel).
func TestWriteBlockedUntilUserTimeoutKeepsTheError(t *testing.T) {
	sa, sb := stacktest.Pair(t)
	raddr := netip.MustParseAddrPort("198.18.0.2:9301")
	ln, err := sb.ListenTCP(raddr, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ln.Socket().SetRcvbuf(1); err != nil { // a window of about 1 KB
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept() // and never read
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		accepted <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &tcpConv{s: sa.NewTCP(), backlog: 4096}
	defer c.Close()
	if err := c.Connect(ctx, raddr, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if err := c.s.SetSndbuf(16 << 10); err != nil {
		t.Fatal(err)
	}
	if err := c.s.SetUserTimeout(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	if n, err := c.Write(ctx, make([]byte, size)); n == 0 || n == size || err != nil {
		t.Fatalf("blocked write = %d, %v; want a short count, no error", n, err)
	}
	if n, err := c.Write(ctx, []byte("x")); n != 0 || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("next write = %d, %v; want ETIMEDOUT", n, err)
	}
}
