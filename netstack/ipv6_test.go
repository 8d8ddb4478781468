package netstack

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"sockfs/skb"
)

var (
	addr6A = netip.MustParseAddr("fd00:5f::1")
	addr6B = netip.MustParseAddr("fd00:5f::2")
)

// newTestNet6 is newTestNet with IPv6 addresses too: a = fd00:5f::1/64,
// b = fd00:5f::2/64.
func newTestNet6(t testing.TB, ab, ba impair.Config, seed int64) *testNet {
	t.Helper()
	n := newTestNet(t, ab, ba, seed)
	if err := n.a.AddAddress(n.da, netip.PrefixFrom(addr6A, 64)); err != nil {
		t.Fatal(err)
	}
	if err := n.b.AddAddress(n.db, netip.PrefixFrom(addr6B, 64)); err != nil {
		t.Fatal(err)
	}
	return n
}

// csum6 is an independent checksum over the IPv6 pseudo-header of a
// message of protocol nh from src to dst, for building test packets.
func csum6(src, dst netip.Addr, nh byte, msg []byte) uint16 {
	ph := make([]byte, 40, 40+len(msg))
	s, d := src.As16(), dst.As16()
	copy(ph[0:], s[:])
	copy(ph[16:], d[:])
	binary.BigEndian.PutUint32(ph[32:], uint32(len(msg)))
	ph[39] = nh
	return csum(append(ph, msg...))
}

// ip6Packet builds an IPv6 packet by hand from a to b: the fixed header
// with next header nh, then rest (extension headers and payload) as is.
func ip6Packet(nh byte, hop byte, rest []byte) []byte {
	p := make([]byte, 40+len(rest))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(rest)))
	p[6] = nh
	p[7] = hop
	s, d := addr6A.As16(), addr6B.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	copy(p[40:], rest)
	return p
}

// icmp6Msg builds an ICMPv6 message from a to b with its checksum.
func icmp6Msg(typ, code byte, rest uint32, data []byte) []byte {
	m := make([]byte, 8+len(data))
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], csum6(addr6A, addr6B, 58, m))
	return m
}

// udp6Dgram builds a UDP datagram from a:sport to b:dport with its
// checksum.
func udp6Dgram(sport, dport uint16, data string) []byte {
	u := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], data)
	binary.BigEndian.PutUint16(u[6:], csum6(addr6A, addr6B, 17, u))
	return u
}

// ext builds an 8-byte-unit extension header with next header nh and
// body (padded with PadN to a multiple of 8).
func ext(nh byte, body ...byte) []byte {
	h := append([]byte{nh, 0}, body...)
	if pad := (8 - len(h)%8) % 8; pad == 1 {
		h = append(h, 0)
	} else if pad > 1 {
		h = append(h, 1, byte(pad-2))
		h = append(h, make([]byte, pad-2)...)
	}
	h[1] = byte(len(h)/8 - 1)
	return h
}

// fragHdr builds a fragment header.
func fragHdr(nh byte, off int, more bool, id uint32) []byte {
	f := make([]byte, 8)
	f[0] = nh
	v := uint16(off)
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(f[2:], v)
	binary.BigEndian.PutUint32(f[4:], id)
	return f
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// captureB replaces what b sends with a capture of the packets.
func (n *testNet) captureB() *[][]byte {
	var out [][]byte
	n.pa.Stop()
	n.pa.Open(receiverFunc(func(b *skb.SKB) {
		p := make([]byte, b.Len())
		b.CopyBits(0, p)
		out = append(out, p)
		b.Free()
	}))
	return &out
}

// Ping over IPv6 between two stacks, small and 4000 bytes (fragmented
// both ways: the request by a, the reply by b, each reassembled).
func TestPing6OverPipe(t *testing.T) {
	n := newTestNet6(t, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond}, 60)
	for seq, size := range []int{5, 4000} {
		done := make(chan error, 1)
		go func() { done <- n.a.Ping(context.Background(), addr6B, uint16(seq), make([]byte, size)) }()
		if err := await(n, done); err != nil {
			t.Fatal(err)
		}
	}
	a, b := n.a.mib, n.b.mib
	if b.Get(memctl.Icmp6InEchos) != 2 || b.Get(memctl.Icmp6OutEchoReplies) != 2 || a.Get(memctl.Icmp6InEchoReplies) != 2 {
		t.Fatalf("echo counters: %d %d %d", b.Get(memctl.Icmp6InEchos), b.Get(memctl.Icmp6OutEchoReplies), a.Get(memctl.Icmp6InEchoReplies))
	}
	for _, m := range []*memctl.MIB{a, b} {
		if m.Get(memctl.Ip6FragOKs) != 1 || m.Get(memctl.Ip6FragCreates) != 3 || m.Get(memctl.Ip6ReasmOKs) != 1 || m.Get(memctl.Ip6ReasmReqds) != 3 {
			t.Fatalf("fragment counters: FragOKs %d FragCreates %d ReasmOKs %d ReasmReqds %d", m.Get(memctl.Ip6FragOKs),
				m.Get(memctl.Ip6FragCreates), m.Get(memctl.Ip6ReasmOKs), m.Get(memctl.Ip6ReasmReqds))
		}
	}
	if n.b.mib.Get(memctl.IpInReceives) != 0 {
		t.Fatal("IPv6 counted as IPv4")
	}
}

// Every class of malformed IPv6 packet is dropped and counted where Linux
// counts it, and answered (or not) as Linux answers it.
func TestMalformedIPv6Dropped(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 61)
	sent := n.captureB()
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addr6B, 7200))
	good := ip6Packet(17, 64, udp6Dgram(1, 7200, "ok"))
	truncated := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(truncated[4:], 500)
	loSrc := append([]byte(nil), good...)
	copy(loSrc[8:24], netip.IPv6Loopback().AsSlice())
	mcSrc := append([]byte(nil), good...)
	copy(mcSrc[8:24], netip.MustParseAddr("ff02::1").AsSlice())
	notOurs := append([]byte(nil), good...)
	notOurs[39] = 9
	badOpt := ext(17, 1, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1) // PadN of 9: padding over 7 bytes
	unknownOpt10 := ext(17, 0x80, 0)                   // unknown option, action 10: discard + ICMP
	unknownOpt01 := ext(17, 0x40, 0)                   // action 01: discard silently
	rt0 := []byte{17, 0, 0, 1, 0, 0, 0, 0}             // routing type 0, one segment left
	zeroUDP := udp6Dgram(1, 7200, "x")
	zeroUDP[6], zeroUDP[7] = 0, 0
	badICMP := icmp6Msg(128, 0, 1, []byte("x"))
	badICMP[2] ^= 0xff
	chainPast := ext(60, make([]byte, 6)...)
	chainPast[1] = 9 // says 80 bytes, has 8
	for _, c := range []struct {
		name     string
		pkt      []byte
		counters []memctl.Counter
		answer   byte // the ICMPv6 type sent back, 0 for none
	}{
		{"truncated header", good[:30], []memctl.Counter{memctl.Ip6InHdrErrors}, 0},
		{"payload length past the packet", truncated, []memctl.Counter{memctl.Ip6InTruncatedPkts}, 0},
		{"loopback source on the wire", loSrc, []memctl.Counter{memctl.Ip6InHdrErrors}, 0},
		{"multicast source", mcSrc, []memctl.Counter{memctl.Ip6InHdrErrors}, 0},
		{"not for us", notOurs, []memctl.Counter{memctl.Ip6InAddrErrors}, 0},
		{"header chain past the packet", ip6Packet(60, 64, chainPast), []memctl.Counter{memctl.Ip6InHdrErrors}, 0},
		{"padding over 7 bytes", ip6Packet(0, 64, cat(badOpt, udp6Dgram(1, 7200, "x"))), []memctl.Counter{memctl.Ip6InHdrErrors}, 0},
		{"unknown option, action 10", ip6Packet(60, 64, cat(unknownOpt10, udp6Dgram(1, 7200, "x"))),
			[]memctl.Counter{memctl.Ip6InHdrErrors, memctl.Icmp6OutParmProblems}, 4},
		{"unknown option, action 01", ip6Packet(60, 64, cat(unknownOpt01, udp6Dgram(1, 7200, "x"))), []memctl.Counter{memctl.Ip6InHdrErrors}, 0},
		{"hop-by-hop not first", ip6Packet(60, 64, cat(ext(0), ext(17), udp6Dgram(1, 7200, "x"))),
			[]memctl.Counter{memctl.Ip6InUnknownProtos, memctl.Icmp6OutParmProblems}, 4},
		{"two routing headers", ip6Packet(43, 64, cat([]byte{43, 0, 1, 0, 0, 0, 0, 0}, []byte{17, 0, 1, 0, 0, 0, 0, 0}, udp6Dgram(1, 7200, "x"))),
			[]memctl.Counter{memctl.Ip6InHdrErrors}, 0},
		{"routing type 0 (RFC 5095)", ip6Packet(43, 64, cat(rt0, udp6Dgram(1, 7200, "x"))),
			[]memctl.Counter{memctl.Ip6InHdrErrors, memctl.Icmp6OutParmProblems}, 4},
		{"unknown next header", ip6Packet(99, 64, []byte("????????")), []memctl.Counter{memctl.Ip6InUnknownProtos, memctl.Icmp6OutParmProblems}, 4},
		{"tiny first fragment", ip6Packet(44, 64, cat(fragHdr(17, 0, true, 9), []byte{0, 1, 0, 2})),
			[]memctl.Counter{memctl.Ip6InHdrErrors, memctl.Icmp6OutParmProblems}, 4},
		{"fragment not a multiple of 8", ip6Packet(44, 64, cat(fragHdr(17, 0, true, 10), udp6Dgram(1, 7200, "abc"))),
			[]memctl.Counter{memctl.Ip6InHdrErrors, memctl.Icmp6OutParmProblems}, 4},
		{"fragment past 65535", ip6Packet(44, 64, cat(fragHdr(17, 65528, false, 11), make([]byte, 16))),
			[]memctl.Counter{memctl.Ip6InHdrErrors, memctl.Icmp6OutParmProblems}, 4},
		{"UDP without checksum", ip6Packet(17, 64, zeroUDP), []memctl.Counter{memctl.Udp6InCsumErrors, memctl.Udp6InErrors}, 0},
		{"bad ICMPv6 checksum", ip6Packet(58, 64, badICMP), []memctl.Counter{memctl.Icmp6InCsumErrors, memctl.Icmp6InErrors}, 0},
		{"short ICMPv6", ip6Packet(58, 64, []byte{128, 0}), []memctl.Counter{memctl.Icmp6InErrors}, 0},
	} {
		before := make([]uint64, len(c.counters))
		for i, ctr := range c.counters {
			before[i] = n.b.mib.Get(ctr)
		}
		*sent = (*sent)[:0]
		n.inject(c.pkt)
		n.run(time.Millisecond)
		n.run(time.Second) // past the ICMPv6 rate limit before the next case
		for i, ctr := range c.counters {
			if got := n.b.mib.Get(ctr); got != before[i]+1 {
				t.Errorf("%s: %v moved by %d", c.name, ctr, got-before[i])
			}
		}
		switch {
		case c.answer == 0 && len(*sent) != 0:
			t.Errorf("%s: answered with %x", c.name, (*sent)[0])
		case c.answer != 0 && (len(*sent) != 1 || (*sent)[0][6] != 58 || (*sent)[0][40] != c.answer):
			t.Errorf("%s: want one ICMPv6 type %d, sent %d packets", c.name, c.answer, len(*sent))
		}
	}
	// The good one still gets through, so nothing above broke the socket.
	n.inject(good)
	buf := make([]byte, 16)
	srv.SetNonblock(true)
	if k, from, err := srv.RecvFrom(context.Background(), buf); err != nil || string(buf[:k]) != "ok" || from.Addr() != addr6A {
		t.Fatalf("good datagram: %q from %v, %v", buf[:k], from, err)
	}
	if n.b.frags6.Queues() != 0 {
		t.Fatalf("%d reassembly queues left", n.b.frags6.Queues())
	}
}

// Reassembly: in order and out of order, an exact duplicate ignored, an
// overlap killing the datagram (RFC 5722), an atomic fragment delivered
// alone (RFC 8021).
func TestFragment6Reassembly(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 62)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addr6B, 7300))
	srv.SetNonblock(true)
	d := udp6Dgram(1, 7300, "0123456789abcdef") // 24 bytes
	recv := func() string {
		buf := make([]byte, 64)
		k, _, err := srv.RecvFrom(context.Background(), buf)
		if err != nil {
			return err.Error()
		}
		return string(buf[:k])
	}
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 16, false, 1), d[16:])))
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, true, 1), d[:16])))
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, true, 1), d[:16]))) // a new datagram of the same ID: held
	if got := recv(); got != "0123456789abcdef" {
		t.Fatalf("out of order: %q", got)
	}
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 16, false, 1), d[16:])))
	if got := recv(); got != "0123456789abcdef" {
		t.Fatalf("second: %q", got)
	}
	fails := n.b.mib.Get(memctl.Ip6ReasmFails)
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, true, 2), d[:16])))
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, true, 2), d[:16]))) // exact duplicate
	if n.b.frags6.Queues() != 1 || n.b.mib.Get(memctl.Ip6ReasmFails) != fails {
		t.Fatal("duplicate fragment not ignored")
	}
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 8, false, 2), d[8:]))) // overlaps 8..16
	if n.b.frags6.Queues() != 0 || n.b.mib.Get(memctl.Ip6ReasmFails) != fails+1 {
		t.Fatalf("overlap: queues %d fails %d", n.b.frags6.Queues(), n.b.mib.Get(memctl.Ip6ReasmFails)-fails)
	}
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 16, false, 2), d[16:]))) // the rest comes: no datagram
	if got := recv(); got != syscall.EAGAIN.Error() {
		t.Fatalf("overlapped datagram delivered: %q", got)
	}
	n.b.frags6.mu.Lock()
	for _, q := range n.b.frags6.qs {
		n.b.frags6.killLocked(q)
	}
	n.b.frags6.mu.Unlock()
	oks := n.b.mib.Get(memctl.Ip6ReasmOKs)
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, false, 3), d))) // atomic
	if got := recv(); got != "0123456789abcdef" || n.b.frags6.Queues() != 0 || n.b.mib.Get(memctl.Ip6ReasmOKs) != oks+1 {
		t.Fatalf("atomic fragment: %q, queues %d", got, n.b.frags6.Queues())
	}
}

// An incomplete datagram goes after ip6frag_time (60 s), with a time
// exceeded to the sender of its first fragment; above ip6frag_high_thresh
// new fragments are refused.
func TestFragment6TimeoutAndThresh(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 63)
	sent := n.captureB()
	d := udp6Dgram(1, 9, "0123456789abcdef")
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, true, 5), d[:16])))
	n.run(59 * time.Second)
	if n.b.frags6.Queues() != 1 {
		t.Fatal("dropped before ip6frag_time")
	}
	n.run(2 * time.Second)
	if n.b.frags6.Queues() != 0 || n.b.frags6.Mem() != 0 || n.b.mib.Get(memctl.Ip6ReasmTimeout) != 1 {
		t.Fatal("not dropped after ip6frag_time")
	}
	if n.b.mib.Get(memctl.Icmp6OutTimeExcds) != 1 || len(*sent) != 1 || (*sent)[0][40] != 3 || (*sent)[0][41] != 1 {
		t.Fatal("no time exceeded (fragment reassembly) sent")
	}
	for _, kv := range [][2]string{{"ipv6/ip6frag_low_thresh", "0"}, {"ipv6/ip6frag_high_thresh", "1"}} {
		sc, _ := n.b.net.Sysctls.Lookup(kv[0])
		if err := sc.Write(kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, true, 6), d[:16])))
	n.inject(ip6Packet(44, 64, cat(fragHdr(17, 0, true, 7), d[:16])))
	if n.b.frags6.Queues() != 1 || n.b.mib.Get(memctl.Ip6ReasmFails) != 2 {
		t.Fatalf("high_thresh: queues %d fails %d", n.b.frags6.Queues(), n.b.mib.Get(memctl.Ip6ReasmFails))
	}
}

// What the kernel sends into a TUN by itself: router solicitations, MLDv2
// reports (with a router alert option) and neighbor solicitations for our
// address. The first two are counted and dropped; a solicitation for our
// address gets a solicited advertisement with hop limit 255, one with
// another hop limit nothing.
func TestNDiscAndMLDFromKernel(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 64)
	sent := n.captureB()
	mk := func(dst netip.Addr, nh, hop byte, rest []byte) []byte {
		p := ip6Packet(nh, hop, rest)
		copy(p[24:40], dst.AsSlice())
		return p
	}
	sum := func(p []byte, at int) {
		m := p[at:]
		binary.BigEndian.PutUint16(m[2:], 0)
		binary.BigEndian.PutUint16(m[2:], csum6(netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), 58, m))
	}
	rs := mk(netip.MustParseAddr("ff02::2"), 58, 255, make([]byte, 8))
	rs[40] = 133
	sum(rs, 40)
	mld := mk(netip.MustParseAddr("ff02::16"), 0, 1, cat([]byte{58, 0, 5, 2, 0, 0, 1, 0}, make([]byte, 28)))
	mld[48] = 143
	mld[48+7] = 1 // one record
	sum(mld, 48)
	ns := mk(netip.MustParseAddr("ff02::1:ff00:2"), 58, 255, make([]byte, 24))
	ns[40] = 135
	copy(ns[48:64], addr6B.AsSlice())
	sum(ns, 40)
	for _, p := range [][]byte{rs, mld} {
		n.inject(p)
	}
	n.run(time.Millisecond)
	if n.b.mib.Get(memctl.Icmp6InRouterSolicits) != 1 || n.b.mib.Get(memctl.Icmp6InMLDv2Reports) != 1 || len(*sent) != 0 {
		t.Fatalf("RS %d MLDv2 %d, %d answers", n.b.mib.Get(memctl.Icmp6InRouterSolicits), n.b.mib.Get(memctl.Icmp6InMLDv2Reports), len(*sent))
	}
	if n.b.mib.Get(memctl.Ip6InMcastPkts) != 2 || n.b.mib.Get(memctl.Icmp6InErrors) != 0 {
		t.Fatal("multicast not counted, or counted as an error")
	}
	bad := append([]byte(nil), ns...)
	bad[7] = 64
	n.inject(bad)
	n.run(time.Millisecond)
	if len(*sent) != 0 {
		t.Fatal("answered a solicitation with hop limit 64")
	}
	n.inject(ns)
	n.run(time.Millisecond)
	if len(*sent) != 1 {
		t.Fatalf("%d answers to a solicitation", len(*sent))
	}
	na := (*sent)[0]
	if na[7] != 255 || na[40] != 136 || na[44] != 0x60 || netip.AddrFrom16([16]byte(na[48:64])) != addr6B ||
		netip.AddrFrom16([16]byte(na[24:40])) != addr6A || csum6(addr6B, addr6A, 58, na[40:]) != 0 {
		t.Fatalf("advertisement %x", na)
	}
	if n.b.mib.Get(memctl.Icmp6OutNeighborAdvertisements) != 1 {
		t.Fatal("advertisement not counted")
	}
}

// TCP over IPv6 runs the same core: an MSS of MTU - 60 (1440 at 1500),
// a transfer both ways with loss, and the IPv6 counters moving, not the
// IPv4 ones.
func TestTCP6Transfer(t *testing.T) {
	n := newTestNet6(t, impair.Config{Loss: 0.01}, impair.Config{Loss: 0.01}, 65)
	cli, srv := tcpPairAt(t, n, addr6B, 8080)
	// Each SYN said MSS 1440; with timestamps on, 12 bytes of each
	// segment go to the option.
	if cli.mssClamp != 1440 || srv.mssClamp != 1440 || cli.mssCache != 1428 || srv.mssCache != 1428 {
		t.Fatalf("MSS from the SYNs %d/%d, mss_cache %d/%d", cli.mssClamp, srv.mssClamp, cli.mssCache, srv.mssCache)
	}
	if cli.LocalAddr().Addr() != addr6A || srv.RemoteAddr().Addr() != addr6A {
		t.Fatalf("addresses %v %v", cli.LocalAddr(), srv.RemoteAddr())
	}
	transfer(t, n, cli, srv, 1<<20, 7, 60*time.Second)
	if n.a.mib.Get(memctl.IpOutRequests) != 0 || n.b.mib.Get(memctl.Ip6InDelivers) == 0 {
		t.Fatal("counted in the wrong family")
	}
}

// A dual-stack listener (::, v6only off) accepts IPv4 and IPv6 clients;
// the IPv4 one is reported IPv4-mapped. With v6only on, IPv4 gets a RST
// and both a :: v6only and a 0.0.0.0 listener may share the port.
func TestTCPDualStackListener(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 66)
	l := n.b.NewTCP()
	if err := l.Bind(netip.AddrPortFrom(netip.IPv6Unspecified(), 80)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(8); err != nil {
		t.Fatal(err)
	}
	l.SetNonblock(true)
	dial := func(dst netip.Addr) *TCPSock {
		c := n.a.NewTCP()
		c.SetNonblock(true)
		c.Connect(context.Background(), netip.AddrPortFrom(dst, 80))
		t.Cleanup(func() { c.Abort() })
		return c
	}
	accept := func() *TCPSock {
		var a *TCPSock
		n.drive(func() bool {
			c, err := l.Accept(context.Background())
			a = c
			return err == nil
		}, 5*time.Second)
		t.Cleanup(func() { a.Abort() })
		return a
	}
	dial(addr6B)
	if got := accept().RemoteAddr().Addr(); got != addr6A {
		t.Fatalf("v6 client seen as %v", got)
	}
	dial(addrB)
	if got := accept().RemoteAddr().Addr(); got != netip.MustParseAddr("::ffff:198.18.0.1") {
		t.Fatalf("v4 client seen as %v", got)
	}
	v4 := n.b.NewTCP()
	if err := v4.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 80)); err != syscall.EADDRINUSE {
		t.Fatalf("0.0.0.0 beside a dual-stack ::: %v", err)
	}
	l.Close()
	only := n.b.NewTCP()
	if err := only.SetV6Only(true); err != nil {
		t.Fatal(err)
	}
	if err := only.Bind(netip.AddrPortFrom(netip.IPv6Unspecified(), 81)); err != nil {
		t.Fatal(err)
	}
	if err := only.SetV6Only(false); err != syscall.EINVAL {
		t.Fatalf("v6only changed after bind: %v", err)
	}
	only.Listen(8)
	t.Cleanup(func() { only.Close() })
	v4b := n.b.NewTCP()
	if err := v4b.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 81)); err != nil {
		t.Fatalf("0.0.0.0 beside a v6only ::: %v", err)
	}
	v4b.Close()
	c := n.a.NewTCP()
	c.SetNonblock(true)
	c.Connect(context.Background(), netip.AddrPortFrom(addrB, 81))
	t.Cleanup(func() { c.Abort() })
	n.drive(func() bool { return c.State() == TCPClose }, 5*time.Second)
}

// UDP over IPv6: both ways, the Udp6 counters, the source as sent; a
// datagram to a closed port gets a port unreachable that a connected
// socket sees as ECONNREFUSED.
func TestUDP6SendReceive(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 67)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(netip.IPv6Unspecified(), 5353))
	cli := n.a.NewUDP()
	t.Cleanup(func() { cli.Close() })
	if err := cli.Connect(netip.AddrPortFrom(addr6B, 5353)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.SendTo(context.Background(), []byte("question"), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	n.run(time.Millisecond) // across the pipe (srv is non-blocking)
	buf := make([]byte, 64)
	_, from, err := srv.RecvFrom(context.Background(), buf)
	if err != nil {
		t.Fatal(err)
	}
	if from.Addr() != addr6A || from != cli.LocalAddr() {
		t.Fatalf("from %v, client %v", from, cli.LocalAddr())
	}
	if n.b.mib.Get(memctl.Udp6InDatagrams) != 1 || n.a.mib.Get(memctl.Udp6OutDatagrams) != 1 || n.b.mib.Get(memctl.UdpInDatagrams) != 0 {
		t.Fatal("Udp6 counters")
	}
	dead := n.a.NewUDP()
	t.Cleanup(func() { dead.Close() })
	dead.Connect(netip.AddrPortFrom(addr6B, 9))
	dead.SendTo(context.Background(), []byte("x"), netip.AddrPort{})
	n.run(time.Millisecond)
	if n.b.mib.Get(memctl.Udp6NoPorts) != 1 || n.b.mib.Get(memctl.Icmp6OutDestUnreachs) != 1 {
		t.Fatal("no port unreachable")
	}
	dead.SetNonblock(true)
	if _, _, err := dead.RecvFrom(context.Background(), buf); err != syscall.ECONNREFUSED {
		t.Fatalf("after port unreachable: %v", err)
	}
}

// FuzzIP6Rcv feeds arbitrary bytes, made an IPv6 packet from a to b, to
// b's input path with a UDP socket and a TCP listener open: nothing
// panics, every packet is counted received, and no skb outlives the stack
// (the harness checks at cleanup). The seeds are the malformed classes of
// TestMalformedIPv6Dropped and well-formed packets of each protocol; they
// run in make test.
func FuzzIP6Rcv(f *testing.F) {
	d := udp6Dgram(1, 7200, "0123456789abcdef")
	for _, p := range [][]byte{
		ip6Packet(17, 64, d),
		ip6Packet(58, 64, icmp6Msg(128, 0, 1, []byte("ping"))),
		ip6Packet(58, 255, icmp6Msg(135, 0, 0, addr6B.AsSlice())),
		ip6Packet(6, 64, make([]byte, 20)),
		ip6Packet(0, 64, cat(ext(60, 0x80, 0), ext(43, 1, 0), []byte{17, 0, 0, 1, 0, 0, 0, 0}, d)),
		ip6Packet(60, 64, cat(ext(60), ext(60), ext(60), d)),
		ip6Packet(44, 64, cat(fragHdr(17, 0, true, 1), d[:16])),
		ip6Packet(44, 64, cat(fragHdr(17, 8, false, 1), d[8:])),
		ip6Packet(44, 64, cat(fragHdr(17, 0, false, 2), d)),
		ip6Packet(44, 64, cat(fragHdr(44, 0, true, 3), fragHdr(17, 0, false, 4), d[:8])),
		ip6Packet(0, 64, cat(ext(17, 0xc2, 4, 0, 1, 0, 0), d)),
	} {
		f.Add(p[1:]) // the first byte is always 0x60
	}
	n := newTestNet6(f, impair.Config{}, impair.Config{}, 69)
	n.pa.Stop()
	n.pa.Open(receiverFunc(func(b *skb.SKB) { b.Free() }))
	u := mustUDP(f, n.b, netip.AddrPortFrom(netip.IPv6Unspecified(), 7200))
	u.SetNonblock(true)
	l := n.b.NewTCP()
	l.Bind(netip.AddrPortFrom(addr6B, 6))
	l.Listen(4)
	f.Cleanup(func() { l.Close() })
	buf := make([]byte, 1<<16)
	f.Fuzz(func(t *testing.T, rest []byte) {
		before := n.b.mib.Get(memctl.Ip6InReceives)
		n.inject(append([]byte{0x60}, rest...))
		if n.b.mib.Get(memctl.Ip6InReceives) != before+1 {
			t.Fatal("not counted received")
		}
		for {
			if _, _, err := u.RecvFrom(context.Background(), buf); err != nil {
				break
			}
		}
	})
}

// memLine is a socket's accounting as the mem file shows it.
func memLine(tp *TCPSock) string {
	m := tp.Mem()
	return fmt.Sprintf("rmem %d wmem %d queued %d fwd %d rcvbuf %d sndbuf %d",
		m.RmemAlloc(), m.WmemAllocGet(), m.WmemQueued(), m.ForwardAlloc(), m.Rcvbuf(), m.Sndbuf())
}

// memTrace runs one transfer over IPv4 or IPv6 and records both sockets'
// accounting at fixed points: established; the sender's buffer full with
// nothing read; 64 KiB read; everything read. The IPv4 link's MTU is 20
// bytes less, so both carry 1440-byte segments: what is left to differ is
// the header size, which the accounting never sees.
func memTrace(t *testing.T, v6 bool) []string {
	n := newTestNet6(t, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond}, 70)
	dst := addrB
	if v6 {
		dst = addr6B
	} else {
		n.da.SetMTU(1480)
		n.db.SetMTU(1480)
	}
	cli, srv := tcpPairAt(t, n, dst, 9000)
	var trace []string
	snap := func(point string) {
		n.run(time.Second)
		trace = append(trace, fmt.Sprintf("%s: cli %s | srv %s | tcp mem %d", point, memLine(cli), memLine(srv),
			n.a.net.TCP.MemoryAllocated()+n.b.net.TCP.MemoryAllocated()))
	}
	snap("established")
	ctx := context.Background()
	data := make([]byte, 4<<20)
	sent := 0
	for i := 0; i < 1000; i++ {
		k, err := cli.Send(ctx, data[sent:])
		sent += k
		if err != nil {
			break
		}
		n.run(10 * time.Millisecond)
	}
	snap(fmt.Sprintf("sender full after %d bytes", sent))
	buf := make([]byte, 64<<10)
	got := 0
	for got < 64<<10 {
		k, err := srv.Recv(ctx, buf[:64<<10-got])
		if err != nil {
			t.Fatal(err)
		}
		got += k
	}
	snap("64 KiB read")
	n.drive(func() bool {
		for {
			k, err := srv.Recv(ctx, buf)
			got += k
			if err != nil || k == 0 {
				break
			}
		}
		return got == sent
	}, 60*time.Second)
	snap("all read")
	return trace
}

// A transfer's accounting is the same over IPv4 and IPv6 at every point:
// the TCP and memory code is one for both families.
func TestMemSameV4V6(t *testing.T) {
	v4, v6 := memTrace(t, false), memTrace(t, true)
	for i := range v4 {
		if v4[i] != v6[i] {
			t.Errorf("v4 %s\nv6 %s", v4[i], v6[i])
		}
	}
	if !strings.Contains(v4[1], "srv rmem 1") || strings.Contains(v4[1], "cli rmem 0 wmem 0 queued 0 ") {
		t.Fatalf("nothing queued at the full point: %s", v4[1])
	}
	t.Log(strings.Join(v6, "\n"))
}

// packetTooBig builds an ICMPv6 packet too big from b to a quoting a TCP
// segment a sent on conn (ports from cli) with sequence seq.
func packetTooBig(cli *TCPSock, mtu uint32, seq uint32) []byte {
	q := make([]byte, 40+20)
	q[0], q[6], q[7] = 0x60, 6, 64
	binary.BigEndian.PutUint16(q[4:], 20)
	copy(q[8:24], addr6A.AsSlice())
	copy(q[24:40], addr6B.AsSlice())
	binary.BigEndian.PutUint16(q[40:], cli.local.Port())
	binary.BigEndian.PutUint16(q[42:], cli.remote.Port())
	binary.BigEndian.PutUint32(q[44:], seq)
	m := make([]byte, 8+len(q))
	m[0] = 2
	binary.BigEndian.PutUint32(m[4:], mtu)
	copy(m[8:], q)
	binary.BigEndian.PutUint16(m[2:], csum6(addr6B, addr6A, 58, m))
	p := ip6Packet(58, 64, m)
	copy(p[8:24], addr6B.AsSlice())
	copy(p[24:40], addr6A.AsSlice())
	return p
}

// A packet too big quoting a segment in flight lowers the path MTU and
// the MSS (tcp_v6_err -> tcp_v6_mtu_reduced), and the transfer goes on
// at the new size; one quoting a sequence outside the window is only
// counted (RFC 5927); one below 1280 is taken as 1280.
func TestPacketTooBigShrinksMSS6(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 71)
	cli, srv := tcpPairAt(t, n, addr6B, 8443)
	if i := cli.Info(); i.SndMSS != 1428 || i.PMTU != 1500 {
		t.Fatalf("before: mss %d pmtu %d", i.SndMSS, i.PMTU)
	}
	inject := func(p []byte) {
		b := skb.Alloc(len(p))
		b.PutData(p)
		n.da.NetifRx([]*skb.SKB{b})
	}
	inject(packetTooBig(cli, 1400, cli.sndUna+100000))
	if i := cli.Info(); i.SndMSS != 1428 || n.a.mib.Get(memctl.TcpExtOutOfWindowIcmps) != 1 {
		t.Fatalf("blind packet too big applied: mss %d", i.SndMSS)
	}
	inject(packetTooBig(cli, 1000, cli.sndUna))
	if i := cli.Info(); i.SndMSS != 1280-60-12 || i.PMTU != 1280 {
		t.Fatalf("after packet too big 1000: mss %d pmtu %d, want %d 1280", i.SndMSS, i.PMTU, 1280-60-12)
	}
	if c := n.a.PMTUCache(); len(c) != 1 || c[0].Dst != addr6B || c[0].MTU != 1280 {
		t.Fatalf("route cache %+v", c)
	}
	if n.a.mib.Get(memctl.Icmp6InPktTooBigs) != 2 {
		t.Fatal("Icmp6InPktTooBigs")
	}
	transfer(t, n, cli, srv, 256<<10, 9, 30*time.Second)
}

// The Go API over IPv6: net.PacketConn both ways with *net.UDPAddr, a
// dual-stack net.PacketConn on [::] that answers an IPv4 client (the
// client's address IPv4-mapped), and net.Listener / net.Conn.
func TestGoAPIIPv6(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 72)
	srv, err := n.b.ListenUDP(netip.AddrPortFrom(netip.IPv6Unspecified(), 5353))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var pc net.PacketConn = srv
	for _, to := range []netip.Addr{addr6B, addrB} {
		cli, err := n.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(to, 5353))
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		if _, err := cli.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		type rd struct {
			from net.Addr
			err  error
		}
		got := make(chan rd, 1)
		go func() {
			buf := make([]byte, 8)
			k, from, err := pc.ReadFrom(buf)
			if err == nil {
				_, err = pc.WriteTo(buf[:k], from)
			}
			got <- rd{from, err}
		}()
		r := await(n, got)
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := cli.LocalAddr().(*net.UDPAddr).AddrPort()
		if to.Is4() {
			want = netip.AddrPortFrom(netip.AddrFrom16(want.Addr().As16()), want.Port())
		}
		if ap := r.from.(*net.UDPAddr).AddrPort(); ap != want {
			t.Fatalf("to %v: from %v, want %v", to, ap, want)
		}
		n.run(time.Millisecond)
		buf := make([]byte, 8)
		if k, err := cli.Read(buf); err != nil || string(buf[:k]) != "q" {
			t.Fatalf("to %v: echo %q %v", to, buf[:k], err)
		}
	}
	ln, err := n.b.ListenTCP(netip.AddrPortFrom(addr6B, 80), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var l net.Listener = ln
	if l.Addr().String() != "[fd00:5f::2]:80" {
		t.Fatalf("listener %v", l.Addr())
	}
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); accepted <- c }()
	dialed := make(chan net.Conn, 1)
	go func() {
		c, err := n.a.DialTCP(context.Background(), netip.AddrPort{}, netip.AddrPortFrom(addr6B, 80))
		if err != nil {
			t.Error(err)
		}
		dialed <- c
	}()
	c := await(n, dialed)
	s := await(n, accepted)
	defer c.Close()
	defer s.Close()
	if c.RemoteAddr().String() != "[fd00:5f::2]:80" || s.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("addresses %v %v %v", c.RemoteAddr(), s.RemoteAddr(), c.LocalAddr())
	}
}

// ::1 and the stack's own IPv6 address go through the loopback device,
// which alone may carry loopback addresses (ip6_rcv_core).
func TestLoopback6(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 73)
	if _, err := n.b.AddDevice(link.NewLoopback(n.clk, 0)); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{netip.IPv6Loopback(), addr6B} {
		ln, err := n.b.ListenTCP(netip.AddrPortFrom(a, 7), 4)
		if err != nil {
			t.Fatal(err)
		}
		dialed := make(chan error, 1)
		go func() {
			c, err := n.b.DialTCP(context.Background(), netip.AddrPort{}, netip.AddrPortFrom(a, 7))
			if err == nil {
				c.Close()
			}
			dialed <- err
		}()
		if err := await(n, dialed); err != nil {
			t.Fatalf("%v: %v", a, err)
		}
		ln.Close()
		done := make(chan error, 1)
		go func() { done <- n.b.Ping(context.Background(), a, 1, []byte("lo")) }()
		if err := await(n, done); err != nil {
			t.Fatalf("ping %v: %v", a, err)
		}
	}
	if n.b.mib.Get(memctl.Ip6InHdrErrors) != 0 {
		t.Fatal("loopback traffic counted as header errors")
	}
}

// A UDP datagram larger than the MTU is fragmented by the sender (with the
// sender charged for the fragments) and reassembled by the receiver.
func TestUDP6Fragmented(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 74)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addr6B, 4000))
	cli := mustUDP(t, n.a, netip.AddrPortFrom(addr6A, 0))
	msg := make([]byte, 5000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if _, err := cli.SendTo(context.Background(), msg, netip.AddrPortFrom(addr6B, 4000)); err != nil {
		t.Fatal(err)
	}
	n.run(10 * time.Millisecond) // the fragments cross the pipe
	buf := make([]byte, 8000)
	k, _, err := srv.RecvFrom(context.Background(), buf)
	if err != nil || k != len(msg) || string(buf[:k]) != string(msg) {
		t.Fatalf("received %d bytes (%v), or different ones", k, err)
	}
	if n.a.mib.Get(memctl.Ip6FragCreates) != 4 || n.b.mib.Get(memctl.Ip6ReasmOKs) != 1 {
		t.Fatalf("FragCreates %d ReasmOKs %d", n.a.mib.Get(memctl.Ip6FragCreates), n.b.mib.Get(memctl.Ip6ReasmOKs))
	}
	n.run(time.Second)
	if cli.Mem().WmemAllocGet() != 0 {
		t.Fatalf("wmem_alloc %d after the fragments left", cli.Mem().WmemAllocGet())
	}
}

// TestUDP6RcvbufErrorsCountedInUdp6: an IPv6 datagram dropped at a full
// receive buffer counts Udp6 RcvbufErrors and InErrors, as
// __udpv6_queue_rcv_skb does, and leaves the IPv4 Udp group alone. It was
// counted in Udp.
func TestUDP6RcvbufErrorsCountedInUdp6(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 68)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(netip.IPv6Unspecified(), 7004))
	srv.Mem().SetSockoptRcvbuf(1024, false, false) // rcvbuf 2304: two 832-byte datagrams
	cli := n.a.NewUDP()
	t.Cleanup(func() { cli.Close() })
	dst := netip.AddrPortFrom(addr6B, 7004)
	for range 10 {
		if _, err := cli.SendTo(context.Background(), []byte{1}, dst); err != nil {
			t.Fatal(err)
		}
	}
	n.run(time.Millisecond)
	d := srv.Mem().Drops()
	if d == 0 {
		t.Fatal("nothing dropped")
	}
	for _, c := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"Udp6 RcvbufErrors", n.b.mib.Get(memctl.Udp6RcvbufErrors), uint64(d)},
		{"Udp6 InErrors", n.b.mib.Get(memctl.Udp6InErrors), uint64(d)},
		{"Udp RcvbufErrors", n.b.mib.Get(memctl.UdpRcvbufErrors), 0},
		{"Udp InErrors", n.b.mib.Get(memctl.UdpInErrors), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s %d, want %d (%d drops)", c.name, c.got, c.want, d)
		}
	}
}

// Each datagram's fragments carry a fresh random non-zero identification,
// as __ipv6_select_ident's get_random_u32_above(0) gives: not a counter
// from 0 (predictable by anyone who sees one), and the same for the same
// seed, so a simulation repeats.
func TestFragment6IdentsRandom(t *testing.T) {
	idents := func() []uint32 {
		n := newTestNet6(t, impair.Config{}, impair.Config{}, 97)
		sent := n.captureB()
		cli := mustUDP(t, n.b, netip.AddrPortFrom(addr6B, 0))
		var ids []uint32
		for range 4 {
			*sent = (*sent)[:0]
			if _, err := cli.SendTo(context.Background(), make([]byte, 3000), netip.AddrPortFrom(addr6A, 9)); err != nil {
				t.Fatal(err)
			}
			n.run(time.Millisecond)
			if len(*sent) < 2 || (*sent)[0][6] != 44 {
				t.Fatalf("%d packets, not fragments", len(*sent))
			}
			for _, p := range (*sent)[1:] {
				if binary.BigEndian.Uint32(p[44:]) != binary.BigEndian.Uint32((*sent)[0][44:]) {
					t.Fatal("fragments of one datagram with different identifications")
				}
			}
			ids = append(ids, binary.BigEndian.Uint32((*sent)[0][44:]))
		}
		return ids
	}
	ids := idents()
	for i, id := range ids {
		if id == 0 || id < 1000 || i > 0 && (id == ids[i-1]+1 || id == ids[i-1]) {
			t.Fatalf("identifications %d: predictable", ids)
		}
	}
	if again := idents(); fmt.Sprint(again) != fmt.Sprint(ids) {
		t.Fatalf("same seed, identifications %d then %d", ids, again)
	}
}

// Extension headers as the live 6.18 kernel takes them (raw packets over a
// veth): segment routing (type 4) and RPL (type 3) routing headers are
// dropped silently and uncounted whatever their segments left
// (seg6_enabled, rpl_seg_enabled 0: ipv6_srh_rcv, ipv6_rpl_srh_rcv); a
// routing header to a multicast address is an address error
// (ipv6_rthdr_rcv); three destination options headers are delivered; a
// jumbo option with a non-zero payload length draws a parameter problem
// pointing at the option (ipv6_hop_jumbo's optoff), one whose length fits
// 16 bits at its length; No Next Header is counted delivered.
func TestIPv6ExtHeadersAsKernel(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 98)
	sent := n.captureB()
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addr6B, 7201))
	d := udp6Dgram(1, 7201, "x")
	srh := func(typ, left byte) []byte { return []byte{17, 2, typ, left, 0, 0, 0, 0, 16: 0, 23: 0} }
	toMcast := ip6Packet(43, 64, cat([]byte{17, 0, 0, 1, 0, 0, 0, 0}, d))
	copy(toMcast[24:40], netip.MustParseAddr("ff02::1").AsSlice())
	for _, c := range []struct {
		name      string
		pkt       []byte
		counter   memctl.Counter // moved by one (Ip6InReceives: no other)
		delivered bool
		pointer   int // the parameter problem's pointer, 0 for none sent
	}{
		{"SRH, segments left 0", ip6Packet(43, 64, cat(srh(4, 0), d)), memctl.Ip6InReceives, false, 0},
		{"SRH, segments left 1", ip6Packet(43, 64, cat(srh(4, 1), d)), memctl.Ip6InReceives, false, 0},
		{"RPL, segments left 0", ip6Packet(43, 64, cat(srh(3, 0), d)), memctl.Ip6InReceives, false, 0},
		{"routing header to multicast", toMcast, memctl.Ip6InAddrErrors, false, 0},
		{"three destination options", ip6Packet(60, 64, cat(ext(60), ext(60), ext(17), d)), memctl.Ip6InDelivers, true, 0},
		{"jumbo with a payload length", ip6Packet(0, 64, cat(ext(17, 0xc2, 4, 0, 1, 0, 0), d)), memctl.Ip6InHdrErrors, false, 42},
		{"jumbo of 16 bits", ip6Packet(0, 64, cat(ext(17, 0xc2, 4, 0, 0, 0xff, 0xff), d)), memctl.Ip6InHdrErrors, false, 44},
		{"no next header", ip6Packet(59, 64, make([]byte, 8)), memctl.Ip6InDelivers, false, 0},
	} {
		var before [memctl.Ip6InDelivers - memctl.Ip6InReceives + 1]uint64
		for ctr := memctl.Ip6InReceives; ctr <= memctl.Ip6InDelivers; ctr++ {
			before[ctr-memctl.Ip6InReceives] = n.b.mib.Get(ctr)
		}
		*sent = (*sent)[:0]
		n.inject(c.pkt)
		n.run(time.Second) // past the ICMPv6 rate limit before the next case
		for ctr := memctl.Ip6InReceives + 1; ctr <= memctl.Ip6InDelivers; ctr++ {
			want := before[ctr-memctl.Ip6InReceives]
			if ctr == c.counter {
				want++
			}
			if got := n.b.mib.Get(ctr); got != want {
				t.Errorf("%s: %v moved by %d", c.name, ctr, int64(got-before[ctr-memctl.Ip6InReceives]))
			}
		}
		k, _, err := srv.RecvFrom(context.Background(), make([]byte, 4))
		if got := err == nil && k == 1; got != c.delivered {
			t.Errorf("%s: delivered %v, want %v", c.name, got, c.delivered)
		}
		switch {
		case c.pointer == 0 && len(*sent) != 0:
			t.Errorf("%s: answered with %x", c.name, (*sent)[0])
		case c.pointer != 0 && (len(*sent) != 1 || (*sent)[0][40] != 4 || binary.BigEndian.Uint32((*sent)[0][44:]) != uint32(c.pointer)):
			t.Errorf("%s: want a parameter problem at %d, sent %x", c.name, c.pointer, *sent)
		}
	}
}
