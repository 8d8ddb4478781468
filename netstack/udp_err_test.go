package netstack

import (
	"context"
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
	"sockfs/skb"
)

// injectA hands raw bytes to a's device as if they came off the wire.
func (n *testNet) injectA(pkt []byte) {
	s := skb.Alloc(len(pkt))
	s.PutData(pkt)
	n.da.NetifRx([]*skb.SKB{s})
}

// connectedUDP returns a non-blocking socket on a connected to dst.
func connectedUDP(t *testing.T, n *testNet, dst netip.AddrPort) *UDPSock {
	t.Helper()
	u := n.a.NewUDP()
	t.Cleanup(func() { u.Close() })
	u.SetNonblock(true)
	if err := u.Connect(dst); err != nil {
		t.Fatal(err)
	}
	return u
}

// quoteUDP is the start of the datagram from local to remote that an
// ICMP error quotes: its IP header (IPv4 or IPv6) and UDP header.
func quoteUDP(local, remote netip.AddrPort, size int) []byte {
	u := make([]byte, 8)
	binary.BigEndian.PutUint16(u[0:], local.Port())
	binary.BigEndian.PutUint16(u[2:], remote.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+size))
	if local.Addr().Is6() {
		h := make([]byte, 40)
		h[0] = 0x60
		binary.BigEndian.PutUint16(h[4:], uint16(8+size))
		h[6], h[7] = 17, 64
		copy(h[8:], local.Addr().AsSlice())
		copy(h[24:], remote.Addr().AsSlice())
		return append(h, u...)
	}
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(28+size))
	h[8], h[9] = 64, 17
	copy(h[12:], local.Addr().AsSlice())
	copy(h[16:], remote.Addr().AsSlice())
	binary.BigEndian.PutUint16(h[10:], csum(h))
	return append(h, u...)
}

// icmpFromB is an ICMP message from b to a quoting q.
func icmpFromB(typ, code byte, rest uint32, q []byte) []byte {
	m := make([]byte, 8+len(q))
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	copy(m[8:], q)
	binary.BigEndian.PutUint16(m[2:], csum(m))
	p := ipPacket(1, 3, 0, m)
	copy(p[12:16], addrB.AsSlice())
	copy(p[16:20], addrA.AsSlice())
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], csum(p[:20]))
	return p
}

// icmp6FromB is an ICMPv6 message from b to a quoting q.
func icmp6FromB(typ, code byte, rest uint32, q []byte) []byte {
	m := make([]byte, 8+len(q))
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	copy(m[8:], q)
	binary.BigEndian.PutUint16(m[2:], csum6(addr6B, addr6A, 58, m))
	p := ip6Packet(58, 64, m)
	copy(p[8:], addr6B.AsSlice())
	copy(p[24:], addr6A.AsSlice())
	return p
}

// A connected UDP socket learns only the hard errors of icmp_err_convert:
// net and host unreachable are transient (RFC 1122 3.2.2.1), an
// administratively prohibited is EHOSTUNREACH, as the live kernel reports.
func TestUDPIcmpErrConvert(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 94)
	remote := netip.AddrPortFrom(addrB, 9)
	for code, want := range []syscall.Errno{
		syscall.EAGAIN, syscall.EAGAIN, syscall.ENOPROTOOPT, syscall.ECONNREFUSED,
		syscall.EMSGSIZE, syscall.EAGAIN, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.ENONET, syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.EAGAIN,
		syscall.EAGAIN, syscall.EHOSTUNREACH, syscall.EHOSTUNREACH, syscall.EHOSTUNREACH,
	} {
		u := connectedUDP(t, n, remote)
		n.injectA(icmpFromB(3, byte(code), 1400, quoteUDP(u.LocalAddr(), remote, 1)))
		if _, _, err := u.RecvFrom(context.Background(), make([]byte, 4)); err != want {
			t.Errorf("destination unreachable code %d: %v, want %v", code, err, want)
		}
	}
}

// The same for ICMPv6 (icmpv6_err_convert, __udp6_lib_err): no route,
// beyond scope and address unreachable are transient; administratively
// prohibited, policy failure and reject route are EACCES; a packet too
// big is EMSGSIZE on the next send, as the live kernel reports.
func TestUDP6IcmpErrConvert(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 95)
	remote := netip.AddrPortFrom(addr6B, 9)
	for code, want := range []syscall.Errno{
		syscall.EAGAIN, syscall.EACCES, syscall.EAGAIN, syscall.EAGAIN,
		syscall.ECONNREFUSED, syscall.EACCES, syscall.EACCES, syscall.EPROTO,
	} {
		u := connectedUDP(t, n, remote)
		n.injectA(icmp6FromB(1, byte(code), 0, quoteUDP(u.LocalAddr(), remote, 1)))
		if _, _, err := u.RecvFrom(context.Background(), make([]byte, 4)); err != want {
			t.Errorf("destination unreachable code %d: %v, want %v", code, err, want)
		}
	}
	u := connectedUDP(t, n, remote)
	n.injectA(icmp6FromB(2, 0, 1280, quoteUDP(u.LocalAddr(), remote, 1400)))
	if _, err := u.SendTo(context.Background(), make([]byte, 1400), netip.AddrPort{}); err != syscall.EMSGSIZE {
		t.Fatalf("send after a packet too big: %v, want EMSGSIZE", err)
	}
	if _, err := u.SendTo(context.Background(), make([]byte, 1400), netip.AddrPort{}); err != nil {
		t.Fatalf("second send: %v (the error is reported once)", err)
	}
	if mtu, _ := n.a.pathMTU(Route{Dev: n.da}, addr6B); mtu != 1280 {
		t.Fatalf("path MTU %d, want 1280", mtu)
	}
	// An error for no socket is counted.
	before := n.a.mib.Get(memctl.Icmp6InErrors)
	n.injectA(icmp6FromB(1, 4, 0, quoteUDP(netip.AddrPortFrom(addr6A, 1), remote, 1)))
	n.run(time.Millisecond)
	if got := n.a.mib.Get(memctl.Icmp6InErrors); got != before+1 {
		t.Fatalf("Icmp6InErrors %+d for an error no socket claims, want 1", got-before)
	}
}
