package netstack

import (
	"context"
	"testing"

	"sockfs/netstack/header"
)

// takeIP returns the IP header's TTL and TOS of the next transmitted
// segment and its TCP flags.
func (c *script) takeIP() (ttl, tos uint8, flags header.TCPFlags) {
	c.t.Helper()
	c.dev.mu.Lock()
	if len(c.dev.out) == 0 {
		c.dev.mu.Unlock()
		c.t.Fatal("nothing transmitted")
	}
	b := c.dev.out[0]
	c.dev.out = c.dev.out[1:]
	c.dev.mu.Unlock()
	buf := make([]byte, b.Len())
	b.CopyBits(0, buf)
	b.Free()
	iph := header.IPv4(buf)
	return iph.TTL(), iph.TOS(), header.TCP(buf[iph.HeaderLength():]).Flags()
}

// IP_TTL and IP_TOS on a listener apply to its SYN-ACKs and are inherited
// by the accepted connection; changing them on the connection applies to
// what it sends next; TTL 0 restores the default 64.
func TestTCPTTLAndTOS(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.l.SetTTL(17)
	c.l.SetTOS(32)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(1460)})
	c.dev.mu.Lock()
	synack := c.dev.out[0]
	c.dev.mu.Unlock()
	iss := header.TCP(synack.Data()[header.IPv4MinSize:]).Seq()
	if ttl, tos, fl := c.takeIP(); fl != fSyn|fAck || ttl != 17 || tos != 32 {
		t.Fatalf("SYN-ACK: %v ttl %d tos %d, want ttl 17 tos 32", fl, ttl, tos)
	}
	c.iss = iss
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck})
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tp.SetNonblock(true)
	if _, err := tp.Send(context.Background(), []byte("inherited")); err != nil {
		t.Fatal(err)
	}
	if ttl, tos, _ := c.takeIP(); ttl != 17 || tos != 32 {
		t.Fatalf("accepted connection sends ttl %d tos %d, want 17 and 32", ttl, tos)
	}
	tp.SetTTL(0)
	tp.SetTOS(0x10)
	if _, err := tp.Send(context.Background(), []byte("changed")); err != nil {
		t.Fatal(err)
	}
	// The first segment is still unacknowledged; Nagle may hold the second
	// until it is acked.
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1 + 9, flags: fAck})
	if ttl, tos, _ := c.takeIP(); ttl != 64 || tos != 0x10 {
		t.Fatalf("after SetTTL(0), SetTOS(0x10): ttl %d tos %#x", ttl, tos)
	}
}
