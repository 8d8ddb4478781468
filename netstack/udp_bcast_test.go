package netstack

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
)

// udp4To builds an IPv4 UDP datagram by hand from addrA:sport to
// dst:dport, with both checksums.
func udp4To(dst netip.Addr, sport, dport uint16, data string) []byte {
	u := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], data)
	ph := make([]byte, 12, 12+len(u))
	copy(ph[0:], addrA.AsSlice())
	copy(ph[4:], dst.AsSlice())
	ph[9] = 17
	binary.BigEndian.PutUint16(ph[10:], uint16(len(u)))
	binary.BigEndian.PutUint16(u[6:], csum(append(ph, u...)))
	p := ipPacket(17, 1, 0, u)
	copy(p[16:20], dst.AsSlice())
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], csum(p[:20]))
	return p
}

// A datagram to the directed broadcast of any of the stack's networks
// reaches a socket bound to 0.0.0.0, as through the local table's
// broadcast routes (fib_add_ifaddr); a /31 or /32 has no broadcast.
func TestUDPSubnetBroadcastDelivered(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 91)
	for _, p := range []string{"198.18.46.1/24", "10.9.9.0/31", "10.7.7.7/32"} {
		if err := n.b.AddAddress(n.db, netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	srv := mustUDP(t, n.b, netip.AddrPortFrom(netip.IPv4Unspecified(), 7300))
	buf := make([]byte, 16)
	for _, c := range []struct {
		dst  string
		want bool
	}{
		{"198.18.0.255", true},
		{"198.18.46.255", true},
		{"255.255.255.255", true},
		{"10.9.9.1", false},      // the /31's other address, not a broadcast
		{"10.7.7.255", false},    // no network behind a /32
		{"198.18.47.255", false}, // nobody's network
	} {
		dst := netip.MustParseAddr(c.dst)
		addrErrs, bcast := n.b.mib.Get(memctl.IpInAddrErrors), n.b.mib.Get(memctl.IpExtInBcastPkts)
		n.inject(udp4To(dst, 1, 7300, c.dst))
		k, _, to, err := srv.RecvFromTo(context.Background(), buf)
		if got := err == nil; got != c.want {
			t.Errorf("%s: delivered %v (%q, %v), want %v", c.dst, got, buf[:k], err, c.want)
			continue
		}
		if !c.want {
			if n.b.mib.Get(memctl.IpInAddrErrors) != addrErrs+1 {
				t.Errorf("%s: InAddrErrors not counted", c.dst)
			}
			continue
		}
		if string(buf[:k]) != c.dst || to != dst {
			t.Errorf("%s: got %q to %v", c.dst, buf[:k], to)
		}
		if n.b.mib.Get(memctl.IpInAddrErrors) != addrErrs || n.b.mib.Get(memctl.IpExtInBcastPkts) != bcast+1 {
			t.Errorf("%s: InAddrErrors %+d, InBcastPkts %+d, want 0, 1", c.dst,
				n.b.mib.Get(memctl.IpInAddrErrors)-addrErrs, n.b.mib.Get(memctl.IpExtInBcastPkts)-bcast)
		}
	}
}

// A broadcast no socket takes is counted in IgnoredMulti and answered
// with nothing (__udp4_lib_mcast_deliver, __icmp_send's RTCF_BROADCAST
// test); neither is an echo request to a broadcast (icmp_rcv with
// icmp_echo_ignore_broadcasts, counted in InErrors).
func TestUDPBroadcastNoListenerIgnoredMulti(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 92)
	sent := n.captureB()
	bcast := netip.MustParseAddr("198.18.0.255")
	n.inject(udp4To(bcast, 1, 7301, "x"))
	n.inject(udp4To(netip.MustParseAddr("255.255.255.255"), 1, 7301, "x"))
	echo := ipPacket(1, 2, 0, echoRequest(1, 1, "x"))
	copy(echo[16:20], bcast.AsSlice())
	echo[10], echo[11] = 0, 0
	binary.BigEndian.PutUint16(echo[10:], csum(echo[:20]))
	n.inject(echo)
	n.run(time.Millisecond)
	if got := n.b.mib.Get(memctl.UdpIgnoredMulti); got != 2 {
		t.Errorf("IgnoredMulti %d, want 2", got)
	}
	if got := n.b.mib.Get(memctl.UdpNoPorts); got != 0 {
		t.Errorf("NoPorts %d, want 0", got)
	}
	if got := n.b.mib.Get(memctl.IcmpInErrors); got != 1 {
		t.Errorf("Icmp InErrors %d, want 1 (the echo to a broadcast)", got)
	}
	if len(*sent) != 0 {
		t.Errorf("answered a broadcast: %x", (*sent)[0])
	}
	// A unicast datagram to a closed port still draws a port unreachable.
	n.inject(udp4To(addrB, 1, 7301, "x"))
	n.run(time.Millisecond)
	if n.b.mib.Get(memctl.UdpNoPorts) != 1 || len(*sent) != 1 {
		t.Errorf("unicast to a closed port: NoPorts %d, %d packets sent", n.b.mib.Get(memctl.UdpNoPorts), len(*sent))
	}
}

// A datagram the stack broadcasts goes out on the link and is looped back
// to its own sockets on that port, as ip_mc_output does for an
// RTCF_BROADCAST route.
func TestUDPBroadcastLoopedBack(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 93)
	if _, err := n.b.AddDevice(link.NewLoopback(n.clk, 0)); err != nil {
		t.Fatal(err)
	}
	any := netip.AddrPortFrom(netip.IPv4Unspecified(), 7302)
	self := mustUDP(t, n.b, any)
	peer := mustUDP(t, n.a, any)
	cli := mustUDP(t, n.b, netip.AddrPort{})
	if _, err := cli.SendTo(context.Background(), []byte("hello"), netip.AddrPortFrom(netip.MustParseAddr("198.18.0.255"), 7302)); err != nil {
		t.Fatal(err)
	}
	n.run(time.Millisecond)
	buf := make([]byte, 16)
	for name, u := range map[string]*UDPSock{"own socket": self, "peer on the link": peer} {
		k, from, err := u.RecvFrom(context.Background(), buf)
		if err != nil || string(buf[:k]) != "hello" || from.Addr() != addrB || from.Port() != cli.LocalAddr().Port() {
			t.Errorf("%s: %q from %v, %v", name, buf[:k], from, err)
		}
	}
	if got := n.b.mib.Get(memctl.UdpOutDatagrams); got != 1 {
		t.Errorf("OutDatagrams %d, want 1", got)
	}
}
