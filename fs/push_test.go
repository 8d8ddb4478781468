package fs

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/stacktest"
)

// slotCtx is a request context that offers a PushAfterReply slot, as the
// FUSE and 9P servers' request contexts do.
type slotCtx struct {
	context.Context
	slot PushAfterReply
}

func (c *slotCtx) Value(key any) any {
	if key == PushAfterReplyKey {
		return &c.slot
	}
	return c.Context.Value(key)
}

// TestPushAfterReplyLargeWritesOnly: given the slot, a data write below
// pushAfterReplyMin is sent before Write returns and leaves the slot empty;
// one of pushAfterReplyMin bytes is queued, nothing of it sent, and its
// socket left in the slot, whose Push sends it.
func TestPushAfterReplyLargeWritesOnly(t *testing.T) {
	sa, sb := stacktest.Pair(t)
	raddr := netip.MustParseAddrPort("198.18.0.2:9300")
	ln, err := sb.ListenTCP(raddr, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &tcpConv{s: sa.NewTCP(), backlog: 4096}
	if err := c.Connect(ctx, raddr, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if err := c.s.SetSndbuf(256 << 10); err != nil { // holds the large write whole
		t.Fatal(err)
	}
	outSegs := func() uint64 { return sa.Net().MIB.Get(memctl.TcpOutSegs) }

	small := &slotCtx{Context: ctx}
	before := outSegs()
	if n, err := c.Write(small, make([]byte, 1000)); n != 1000 || err != nil {
		t.Fatalf("small write = %d, %v", n, err)
	}
	if outSegs() == before || small.slot.s != nil {
		t.Fatalf("small write: %d segments sent, slot %p; want it sent, slot empty", outSegs()-before, small.slot.s)
	}
	// Nothing in flight before the large write, so no ACK can send it.
	for c.s.Info().Qout != 0 {
		if ctx.Err() != nil {
			t.Fatal("small write not acknowledged")
		}
		time.Sleep(time.Millisecond)
	}

	large := &slotCtx{Context: ctx}
	before = outSegs()
	if n, err := c.Write(large, make([]byte, pushAfterReplyMin)); n != pushAfterReplyMin || err != nil {
		t.Fatalf("large write = %d, %v", n, err)
	}
	if outSegs() != before || large.slot.s == nil {
		t.Fatalf("large write: %d segments sent before Push, slot %p; want none, the socket", outSegs()-before, large.slot.s)
	}
	large.slot.Push()
	if outSegs() == before {
		t.Fatal("Push sent nothing")
	}
	c.Close()
	if n := <-got; n != 1000+pushAfterReplyMin {
		t.Fatalf("peer got %d bytes, want %d", n, 1000+pushAfterReplyMin)
	}
}
