package netstack

import (
	"context"
	"testing"

	"sockfs/memctl"
)

// A FIN without data is queued and charged like any in-order segment
// until the reader reaches it, and the read that reaches it passes it:
// copied_seq moves past the FIN, the skb and its charge go, and the next
// read is the end of the stream. Mirrors tcp_queue_rcv taking the FIN and
// tcp_recvmsg_locked's found_fin_ok. Before, the FIN was noted and freed
// (rmem_alloc 0 while Linux shows r832 for it) and copied_seq never passed
// it. The same FIN arriving while the last data is still unread and the
// data skb has room is merged into it (TCPRcvCoalesce).
func TestFinQueuedUntilRead(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "0123456789"})
	coalesced := c.s.mib.Get(memctl.TcpExtTCPRcvCoalesce)
	c.send(seg{seq: 1011, ack: c.iss + 1, flags: fAck | fFin})
	merged := c.s.mib.Get(memctl.TcpExtTCPRcvCoalesce) - coalesced
	if merged != 1 || c.tp.rcvq.Len() != 1 {
		t.Fatalf("FIN behind unread data: TCPRcvCoalesce +%d, %d skbs queued; want +1 and 1", merged, c.tp.rcvq.Len())
	}
	buf := make([]byte, 64)
	if n, err := c.tp.Recv(context.Background(), buf); n != 10 || err != nil {
		t.Fatalf("read: %d, %v", n, err)
	}
	if r, q := c.tp.sk.RmemAlloc(), c.tp.rcvNxt-c.tp.copiedSeq; r != 0 || q != 0 {
		t.Fatalf("after reading up to the FIN: rmem_alloc %d, rcv_nxt-copied_seq %d; want 0 and 0", r, q)
	}
	if n, err := c.tp.Recv(context.Background(), buf); n != 0 || err != nil {
		t.Fatalf("read at the end: %d, %v; want 0, nil", n, err)
	}

	// A FIN alone, after everything was read: its own skb, charged.
	c2 := newEstablished(t)
	c2.send(seg{seq: 1001, ack: c2.iss + 1, flags: fAck | fFin})
	if c2.tp.rcvq.Len() != 1 || c2.tp.sk.RmemAlloc() == 0 {
		t.Fatalf("FIN alone: %d skbs queued, rmem_alloc %d; want 1 and its truesize", c2.tp.rcvq.Len(), c2.tp.sk.RmemAlloc())
	}
	if n, err := c2.tp.Recv(context.Background(), buf); n != 0 || err != nil {
		t.Fatalf("read of the FIN: %d, %v; want 0, nil", n, err)
	}
	if r, q := c2.tp.sk.RmemAlloc(), c2.tp.rcvNxt-c2.tp.copiedSeq; r != 0 || q != 0 || c2.tp.rcvq.Len() != 0 {
		t.Fatalf("after the end of stream: rmem_alloc %d, rcv_nxt-copied_seq %d, %d queued", r, q, c2.tp.rcvq.Len())
	}
}
