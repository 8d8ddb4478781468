package netstack

import (
	"testing"

	"sockfs/memctl"
)

// A segment of an established connection whose established-table lookup
// missed, because it ran just before another goroutine hashed the child
// (the listener's owner completing the handshake from its backlog), and
// which then reached the listener after the owner had released it, is
// delivered to the child: the listener looks the table up again. It used
// to fail the SYN-cookie check and draw a RST that reset the live
// connection (TestKernel200ConcurrentEcho, 1 run in 6-10 under -race).
// testEstabMiss stands in for the lost race, which no test can time.
func TestListenerFindsChildHashedAfterLookup(t *testing.T) {
	c := sackEstablished(t)
	missed := 0
	testEstabMiss = func(tcpTuple) bool { missed++; return missed == 1 }
	t.Cleanup(func() { testEstabMiss = nil })
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck | fPsh, win: 65535, payload: "hello"})
	if missed == 0 {
		t.Fatal("the segment's lookup was not forced to miss")
	}
	c.expectNoRst("the stack answered the connection's data with a RST")
	if n := c.s.mib.Get(memctl.TcpExtSyncookiesFailed); n != 0 {
		t.Fatalf("SyncookiesFailed %d, want 0", n)
	}
	buf := make([]byte, 16)
	n, err := c.tp.Recv(t.Context(), buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("child read %q, %v; want the segment's data", buf[:n], err)
	}
}
