package fs

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

// treePair6 is treePair with IPv6 addresses added through ipifc/0/ctl: A
// fd00:5f::1/64, B fd00:5f::2/64.
func treePair6(t *testing.T) (ta, tb *Tree) {
	t.Helper()
	ta, tb = treePair(t)
	if err := fileWrite(t, ta, "add fd00:5f::1 /64", "ipifc", "0", "ctl"); err != nil {
		t.Fatal(err)
	}
	if err := fileWrite(t, tb, "add fd00:5f::2/64", "ipifc", "0", "ctl"); err != nil {
		t.Fatal(err)
	}
	return ta, tb
}

// Dial strings with IPv6 literals (tcp!fd00:5f::2!80, and in brackets),
// local and remote in Plan 9's format, data both ways; an announce on *
// takes IPv4 and IPv6 calls (the remote of the IPv4 one in dotted form)
// until v6only.
func TestFilesTCP6DialStrings(t *testing.T) {
	ta, tb := treePair6(t)
	srv := clone(t, tb, "tcp")
	srv.must("announce *!8080")
	if got := srv.read("local"); got != "::!8080\n" {
		t.Fatalf("announced local %q", got)
	}
	for _, dial := range []string{"fd00:5f::2!8080", "[fd00:5f::2]!8080", "198.18.0.2!8080"} {
		a := clone(t, ta, "tcp")
		a.must("connect " + dial)
		b := srv.accept()
		want := "fd00:5f::1!"
		if strings.HasPrefix(dial, "198") {
			want = "198.18.0.1!"
		}
		if r := b.read("remote"); !strings.HasPrefix(r, want) || r != strings.Replace(a.read("local"), "\n", "", 1)+"\n" {
			t.Fatalf("%s: remote %q, caller's local %q", dial, r, a.read("local"))
		}
		if r := a.read("remote"); r != strings.TrimPrefix(strings.TrimPrefix(dial, "["), "")+"\n" && !strings.Contains(r, "!8080") {
			t.Fatalf("%s: caller's remote %q", dial, r)
		}
		ad, bd := a.data(), b.data()
		ctx := context.Background()
		if _, err := ad.Write(ctx, []byte("over v6?"), 0); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		if n, err := readTimeout(bd, buf); err != nil || string(buf[:n]) != "over v6?" {
			t.Fatalf("%s: read %q %v", dial, buf[:n], err)
		}
	}
	if got := sysRead(t, tb, "sockstat6"); !strings.HasPrefix(got, "TCP6: inuse ") || strings.HasPrefix(got, "TCP6: inuse 0") {
		t.Fatalf("sockstat6 %q", got)
	}
	// v6only: only before the socket is bound, then IPv4 calls get a reset.
	only := clone(t, tb, "tcp")
	if err := only.cmd("v6only maybe"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("v6only maybe: %v", err)
	}
	only.must("v6only on")
	only.must("announce *!8081")
	if err := only.cmd("v6only off"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("v6only after announce: %v", err)
	}
	c := clone(t, ta, "tcp")
	if err := c.cmd("connect 198.18.0.2!8081"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("IPv4 call to a v6only announce: %v", err)
	}
	c6 := clone(t, ta, "tcp")
	c6.must("connect fd00:5f::2!8081")
}

// ipifc shows and takes IPv6 addresses, iproute shows their routes (flag
// 6) and takes IPv6 routes, and bad IPv6 input is EINVAL, changing
// nothing.
func TestIpifcIprouteIPv6(t *testing.T) {
	ta, _ := treePair6(t)
	if st := readIpifc(t, ta, "status"); !strings.Contains(st, ifcLine("fd00:5f::1", "/64", "fd00:5f::")) {
		t.Fatalf("ipifc status %q", st)
	}
	if r := sysRead(t, ta, "iproute"); !strings.Contains(r, "fd00:5f::       /64  fd00:5f::1      6i    ifc   0\n") {
		t.Fatalf("iproute %q", r)
	}
	if err := fileWrite(t, ta, "add fd00:77:: /48 fd00:5f::2 v6", "iproute"); err != nil {
		t.Fatal(err)
	}
	want := sysRead(t, ta, "iproute")
	if !strings.Contains(want, "fd00:77::       /48  fd00:5f::2      6      v6   0\n") {
		t.Fatalf("iproute after add %q", want)
	}
	s := ta.stack.NewUDP()
	defer s.Close()
	if err := s.Connect(netip.MustParseAddrPort("[fd00:77::5]:9")); err != nil {
		t.Fatalf("connect through the IPv6 route: %v", err)
	}
	for _, bad := range []string{
		"add fd00:78:: /129 fd00:5f::2",          // mask too long
		"add fd00:78::1 /48 fd00:5f::2",          // bits outside the mask
		"add fd00:78:: /48 198.18.0.2",           // nexthop of the other family
		"add fd00:78:: ffff:0:ffff:: fd00:5f::2", // non-contiguous
		"add fd00:78:: /48 fd00:99::1",           // nexthop on no network
	} {
		if err := fileWrite(t, ta, bad, "iproute"); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%q: %v, want EINVAL", bad, err)
		}
		if g := sysRead(t, ta, "iproute"); g != want {
			t.Fatalf("after %q: %q", bad, g)
		}
	}
	if err := fileWrite(t, ta, "remove fd00:77:: ffff:ffff:ffff::", "iproute"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"add fe80::1%eth0 /64", "add fd00:5f::1 /64", "add ::ffff:1.2.3.4/120", "add fd00:6::1 /200"} {
		if err := fileWrite(t, ta, bad, "ipifc", "0", "ctl"); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ipifc %q: %v, want EINVAL", bad, err)
		}
	}
	if err := fileWrite(t, ta, "remove fd00:5f::1 /64", "ipifc", "0", "ctl"); err != nil {
		t.Fatal(err)
	}
	if r := sysRead(t, ta, "iproute"); strings.Contains(r, "fd00") {
		t.Fatalf("IPv6 route left after remove: %q", r)
	}
}

// sys/ipv6 holds the IPv6 sysctls as /proc/sys/net/ipv6 does; netstat
// holds the Ip6, Icmp6 and Udp6 groups, snmp6 them in Linux's layout.
func TestSysIPv6AndNetstat6(t *testing.T) {
	ta, tb := treePair6(t)
	for path, want := range map[string]string{
		"ip6frag_time": "60\n", "ip6frag_high_thresh": "4194304\n", "icmp/ratelimit": "100\n", "conf/all/hop_limit": "64\n",
	} {
		if got := sysRead(t, ta, append([]string{"sys", "ipv6"}, strings.Split(path, "/")...)...); got != want {
			t.Errorf("sys/ipv6/%s = %q, want %q", path, got, want)
		}
	}
	if _, err := sysWrite(t, ta, "0\n", 0, "sys", "ipv6", "conf", "all", "hop_limit"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("hop_limit 0: %v", err)
	}
	if _, err := sysWrite(t, ta, "9\n", 0, "sys", "ipv6", "conf", "all", "hop_limit"); err != nil {
		t.Fatal(err)
	}
	if err := ta.stack.Ping(context.Background(), netip.MustParseAddr("fd00:5f::2"), 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	ns := sysRead(t, tb, "netstat")
	if !strings.Contains(ns, "\nIp6: InReceives ") || !strings.Contains(ns, "\nIcmp6: InMsgs ") {
		t.Fatalf("netstat lacks the IPv6 groups:\n%s", ns)
	}
	s6 := sysRead(t, tb, "snmp6")
	for _, line := range []string{"Ip6InReceives", "Icmp6InEchos", "Icmp6OutEchoReplies", "Icmp6InType128", "Udp6InDatagrams"} {
		if !strings.Contains(s6, line+" ") {
			t.Errorf("snmp6 lacks %s:\n%s", line, s6)
		}
	}
	if !strings.Contains(s6, "Icmp6InEchos                    \t1\n") {
		t.Fatalf("snmp6 echo count:\n%s", s6)
	}
	if got := sysRead(t, tb, "sockstat6"); got != "TCP6: inuse 0\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n" {
		t.Fatalf("sockstat6 %q", got)
	}
}

// TestIprouteLinuxIPv6Default: iproute.linux takes back the IPv6 default
// route it prints (`default via fd00:5f::2`: ip(8) takes the family from
// the gateway; `default` was always IPv4, so the gateway was refused), and
// refuses a prefix with host bits set, as ip(8) does ("Invalid prefix for
// given prefix length"); it masked them quietly.
func TestIprouteLinuxIPv6Default(t *testing.T) {
	ta, _ := treePair6(t)
	if err := fileWrite(t, ta, "add default via fd00:5f::2", "iproute.linux"); err != nil {
		t.Fatalf("add default via an IPv6 gateway: %v", err)
	}
	if l := sysRead(t, ta, "iproute.linux"); !strings.Contains(l, "default via fd00:5f::2 dev pipe0") {
		t.Fatalf("iproute.linux: %q", l)
	}
	if err := fileWrite(t, ta, "del default via fd00:5f::2", "iproute.linux"); err != nil {
		t.Fatalf("del default via an IPv6 gateway: %v", err)
	}
	if l := sysRead(t, ta, "iproute.linux"); strings.Contains(l, "default via fd00:5f::2") {
		t.Fatalf("still there: %q", l)
	}
	for _, bad := range []string{"add 198.18.61.5/24 via 198.18.0.2", "add fd00:7c::1/48 via fd00:5f::2"} {
		if err := fileWrite(t, ta, bad, "iproute.linux"); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%q: %v, want EINVAL", bad, err)
		}
	}
}

// TestUDPHeadersLaddrIPv6: a conversation announced on every address
// (`announce *!P`) in headers mode gets the address each datagram was
// sent to as the header's laddr and ifcaddr, as Plan 9's Udphdr has it:
// an IPv6 datagram's is the IPv6 address. It was the first address of the
// first device, whatever the datagram's family (::ffff:198.18.0.2).
func TestUDPHeadersLaddrIPv6(t *testing.T) {
	ta, tb := treePair6(t)
	srv := clone(t, tb, "udp")
	srv.must("headers")
	srv.must("announce *!6010")
	cli := clone(t, ta, "udp")
	cli.must("connect fd00:5f::2!6010")
	if _, err := cli.data().Write(context.Background(), []byte("ping"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	n, err := readTimeout(srv.data(), buf)
	if err != nil || n != udpHdrLen+4 {
		t.Fatalf("read %d, %v", n, err)
	}
	want := netip.MustParseAddr("fd00:5f::2")
	if l, i := netip.AddrFrom16([16]byte(buf[16:32])), netip.AddrFrom16([16]byte(buf[32:48])); l != want || i != want {
		t.Fatalf("laddr %v ifcaddr %v, want %v", l, i, want)
	}
}
