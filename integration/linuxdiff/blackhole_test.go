package linuxdiff

import (
	"net"
	"testing"
	"time"
)

// A black hole: the system sends 10 segments' worth into a path that
// loses everything it sends for 2.5 s, then works again. What the
// counters show is the tail loss probe, then retransmission timeouts
// backing off from tcp_rto_min (200 ms, 400, 800: at about 0.2, 0.6 and
// 1.4 s) until the path is back and the next one (at about 3.0 s) gets
// through, on the kernel and on sockfs. It found sockfs counting
// retransmissions in Tcp:OutSegs (27 against the kernel's 13), which
// RFC 1213 and __tcp_transmit_skb leave out.
func TestLinuxDiffBlackHole(t *testing.T) {
	k, s := startBoth(t, nil)
	compareRoles(t, k, s, []counterRole{
		{"2.5s", blackHole, "10 segments sent into a path that loses all the system sends for 2.5 s"},
	}, nil, map[string]string{
		"TcpExt:TCPHPAcks": "which of the few ACKs after the path returns take the fast path moves from run " +
			"to run on the kernel (0-2 in four runs, sockfs 1)",
	})
}

func blackHole(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	const n = 10 * 1448
	port, peerDone := peerServe(t, side, 20*time.Second, func(c net.Conn) error {
		buf := make([]byte, n)
		_, err := c.Read(buf[:1]) // wait for the data, then read it all
		for got := 1; err == nil && got < n; {
			var k int
			k, err = c.Read(buf[got:])
			got += k
		}
		return err
	})
	c, before := dialCounted(t, side, port)
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // an RTT estimate from the handshake only
	if err := side.impairOut(1, 0); err != nil {
		t.Fatal(err)
	}
	writeAll(t, side, c, make([]byte, n))
	time.Sleep(2500 * time.Millisecond)
	if err := side.impairOut(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-peerDone; err != nil {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	d := rrSettled(t, side, before)
	t.Logf("%s: TCPTimeouts %d TCPLossProbes %d RetransSegs %d", side.name(),
		d["TcpExt:TCPTimeouts"], d["TcpExt:TCPLossProbes"], d["Tcp:RetransSegs"])
	return d
}
