package linuxdiff

import (
	"testing"
	"time"
)

// Datagrams to a UDP port nobody has open: each counts as Udp:NoPorts, and
// the answering ICMP port unreachables are rate-limited per destination
// (icmpv4_xrlim_allow, inet_peer_xrlim_allow: a burst, then one per
// icmp_ratelimit ms), on the kernel and on sockfs.
func TestLinuxDiffUDPNoPort(t *testing.T) {
	k, s := startBoth(t, nil)
	compareRoles(t, k, s, []counterRole{
		{"closed-port", udpToClosedPort, "the peer sends 20 datagrams of 100 bytes, 5 ms apart, to a UDP port the system has not open"},
	}, []counterRatio{
		{"Icmp:OutMsgs", "Udp:NoPorts", 0.01, "port unreachables sent per datagram, after the rate limit"},
	}, nil)
}

func udpToClosedPort(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	before, err := side.mib()
	if err != nil {
		t.Fatal(err)
	}
	c, err := peerUDP(side.peer(), nextPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 20; i++ {
		c.Write(make([]byte, 100)) // ECONNREFUSED from an earlier unreachable is expected
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return mibDeltas(t, side, before, append([]string{"Udp:NoPorts"}, diffCounters...))
}
