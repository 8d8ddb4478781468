package netstack

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"sockfs/memctl"
)

// Linear segments of 250 bytes, each in its own buffer too small to take
// the next one (no coalescing), arrive in order at a reader that does not
// read, with rcvbuf locked at 80000. Each is charged 832 bytes of truesize for 250 of data, so the queue
// outgrows rcvbuf long before the advertised window is used up; then
// tcp_prune_queue collapses the bloated skbs into compact ones
// (PruneCalled, TCPRcvCollapsed) and the arriving segments still fit. No
// segment is dropped, rmem_alloc stays within rcvbuf plus one skb, and
// the reader gets every byte in order. Without the collapse the queue would
// stop at rcvbuf and drop (TCPRcvQDrop) from there on.
func TestTCPCollapseBloatedInOrder(t *testing.T) {
	c := newEstablished(t)
	// SO_RCVBUF locks rcvbuf (80000 after doubling): otherwise
	// tcp_clamp_window would grow it towards tcp_rmem[2] instead.
	c.tp.SetRcvbuf(40000)
	const segs, size = 240, 250
	var want strings.Builder
	seq := c.peerIS + 1
	for i := 0; i < segs; i++ {
		p := fmt.Sprintf("%05d", i) + strings.Repeat(string(rune('a'+i%26)), size-5)
		want.WriteString(p)
		c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: p})
		seq += size
		// The check comes before the charge (rmem_alloc <= rcvbuf admits
		// one more skb), so one segment's truesize may stick out.
		if r, rb := c.tp.Mem().RmemAlloc(), c.tp.Mem().Rcvbuf(); r > rb+2048 {
			t.Fatalf("segment %d: rmem_alloc %d over rcvbuf %d", i, r, rb)
		}
	}
	mib := c.s.mib
	if mib.Get(memctl.TcpExtPruneCalled) == 0 || mib.Get(memctl.TcpExtTCPRcvCollapsed) == 0 {
		t.Fatalf("PruneCalled %d TCPRcvCollapsed %d", mib.Get(memctl.TcpExtPruneCalled), mib.Get(memctl.TcpExtTCPRcvCollapsed))
	}
	if d := mib.Get(memctl.TcpExtTCPRcvQDrop) + mib.Get(memctl.TcpExtRcvPruned); d != 0 {
		t.Fatalf("%d segments dropped although collapsing made room", d)
	}
	t.Logf("PruneCalled %d TCPRcvCollapsed %d, rmem_alloc %d of rcvbuf %d for %d bytes queued",
		mib.Get(memctl.TcpExtPruneCalled), mib.Get(memctl.TcpExtTCPRcvCollapsed),
		c.tp.Mem().RmemAlloc(), c.tp.Mem().Rcvbuf(), segs*size)
	var got strings.Builder
	buf := make([]byte, 4096)
	for got.Len() < segs*size {
		n, err := c.tp.Recv(context.Background(), buf)
		if err != nil {
			t.Fatalf("recv after %d bytes: %v", got.Len(), err)
		}
		got.Write(buf[:n])
	}
	if got.String() != want.String() {
		t.Fatal("data differs after collapsing")
	}
}
