package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack"
)

// ping -6 from the kernel to sockfs, 56 and 4000 bytes: the large one is
// fragmented by the kernel (sockfs reassembles) and its reply by sockfs
// (the kernel reassembles). The kernel's own router solicitations and MLD
// reports reach sockfs, which counts them by type and answers none.
func TestKernelPing6(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	st := stackInNetns6(t, ns, "sfsping6")
	mib := st.Net().MIB
	var out string
	var err error
	for i := 0; i < 30; i++ { // the kernel's address may take a moment
		if out, err = ns.run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", addr6.Addr().String()); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ping -6: %v\n%s", err, out)
	}
	out, err = ns.run("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", addr6.Addr().String())
	if err != nil || !strings.Contains(out, "4008 bytes from") {
		t.Fatalf("ping -6 -s 4000: %v\n%s", err, out)
	}
	// ping can print the last reply before sockfs counts the fragmented
	// send that carried it (FragOKs is counted after the last fragment
	// is written, as ip6_fragment counts it), so give the counters a
	// moment to catch up.
	fragmented := func() bool {
		return mib.Get(memctl.Ip6ReasmOKs) >= 2 && mib.Get(memctl.Ip6FragOKs) >= 2 && mib.Get(memctl.Ip6FragCreates) >= 6 &&
			mib.Get(memctl.Icmp6OutEchoReplies) >= 5
	}
	for deadline := time.Now().Add(2 * time.Second); !fragmented() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !fragmented() {
		t.Fatalf("not fragmented both ways: ReasmOKs %d FragOKs %d FragCreates %d",
			mib.Get(memctl.Ip6ReasmOKs), mib.Get(memctl.Ip6FragOKs), mib.Get(memctl.Ip6FragCreates))
	}
	if mib.Get(memctl.Icmp6InEchos) != 5 || mib.Get(memctl.Icmp6OutEchoReplies) != 5 {
		t.Fatalf("echo counters %d/%d", mib.Get(memctl.Icmp6InEchos), mib.Get(memctl.Icmp6OutEchoReplies))
	}
	deadline := time.Now().Add(5 * time.Second)
	for mib.Get(memctl.Icmp6InRouterSolicits)+mib.Get(memctl.Icmp6InMLDv2Reports) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if mib.Get(memctl.Icmp6InRouterSolicits)+mib.Get(memctl.Icmp6InMLDv2Reports) == 0 {
		t.Fatal("no router solicitation or MLD report from the kernel counted")
	}
	if mib.Get(memctl.Icmp6InErrors) != 0 || mib.Get(memctl.Ip6InHdrErrors) != 0 {
		t.Fatalf("kernel traffic counted as errors: Icmp6InErrors %d Ip6InHdrErrors %d",
			mib.Get(memctl.Icmp6InErrors), mib.Get(memctl.Ip6InHdrErrors))
	}
}

// One listener on [::]:80 (v6only off, the default) takes curl -4 and
// curl -6; the IPv4 client is seen IPv4-mapped, as Linux shows it.
func TestKernelDualStackListener(t *testing.T) {
	needRoot(t)
	needTool(t, "curl")
	ns := newNetns(t)
	st := stackInNetns6(t, ns, "sfsdual6")
	ln, err := st.ListenTCP(netip.AddrPortFrom(netip.IPv6Unspecified(), 80), 16)
	if err != nil {
		t.Fatal(err)
	}
	// The peer's address as the socket gives it (Go's net.TCPAddr
	// prints a mapped address in IPv4 form, so keep the AddrPort).
	type peerKey struct{}
	srv := &http.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, c.RemoteAddr().(*net.TCPAddr).AddrPort())
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, r.Context().Value(peerKey{}).(netip.AddrPort).Addr())
		}),
	}
	go srv.Serve(ln)
	defer srv.Close()
	for _, c := range []struct{ fam, url, want string }{
		{"-4", "http://198.18.0.2/", "::ffff:198.18.0.1"},
		{"-6", "http://[fd00:5f::2]/", "fd00:5f::1"},
	} {
		var out string
		for i := 0; i < 30; i++ {
			if out, err = ns.run("curl", c.fam, "-gsS", "--max-time", "5", c.url); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || strings.TrimSpace(out) != c.want {
			t.Fatalf("curl %s: %v: %q, want %q", c.fam, err, out, c.want)
		}
	}
}

// tcpdump sees the IPv6 handshake with MSS 1440 (MTU 1500 - 40 - 20) from
// both sides.
func TestCaptureHandshake6(t *testing.T) {
	needRoot(t)
	needTool(t, "tcpdump")
	needTool(t, "curl")
	ns := newNetns(t)
	st := stackInNetns6(t, ns, "sfscap6")
	ln, err := st.ListenTCP(netip.AddrPortFrom(addr6.Addr(), 8080), 16)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })}
	go srv.Serve(ln)
	defer srv.Close()
	stopDump := startTcpdump(t, ns, "sfscap6", "ip6 and tcp")
	var out string
	for i := 0; i < 30; i++ {
		if out, err = ns.run("curl", "-6", "-gsS", "--max-time", "5", "http://[fd00:5f::2]:8080/"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || out != "ok\n" {
		t.Fatalf("curl -6: %v %q", err, out)
	}
	text := stopDump()
	syn := regexp.MustCompile(`fd00:5f::1\.\d+ > fd00:5f::2\.8080: Flags \[S\].*mss 1440`)
	synack := regexp.MustCompile(`fd00:5f::2\.8080 > fd00:5f::1\.\d+: Flags \[S\.\].*mss 1440`)
	if !syn.MatchString(text) || !synack.MatchString(text) {
		t.Fatalf("handshake without MSS 1440 both ways:\n%s", text)
	}
}

// Path-MTU discovery for IPv6 against a real router: the kernel in the
// TUN's namespace forwards sockfs's traffic over a veth of MTU 1280 (the
// IPv6 minimum) and answers each packet too large with an ICMPv6 packet
// too big (ip6_forward -> ip6_pkt_too_big); sockfs learns the path MTU,
// its segments shrink to 1280 - 40 - 20 - 12 bytes of payload, and 4 MiB
// arrive byte-exact.
func TestPMTU6ThroughKernelRouter(t *testing.T) {
	needRoot(t)
	needTool(t, "socat")
	router := newNetns(t)
	far := newNetns(t)
	st := stackInNetns6(t, router, "sfspmtu6")
	router.mustRun("ip", "link", "add", "pmtu6a", "mtu", "1280", "type", "veth", "peer", "name", "pmtu6b", "netns", far.name)
	router.mustRun("ip", "addr", "add", "fd00:51::1/64", "dev", "pmtu6a", "nodad")
	router.mustRun("ip", "link", "set", "pmtu6a", "up")
	router.mustRun("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	far.mustRun("ip", "addr", "add", "fd00:51::2/64", "dev", "pmtu6b", "nodad")
	far.mustRun("ip", "link", "set", "pmtu6b", "up")
	far.mustRun("ip", "-6", "route", "add", "default", "via", "fd00:51::1")
	if err := st.AddRoute(netstack.Route{Dst: netip.MustParsePrefix("fd00:51::/64"), Gateway: host6.Addr(),
		Dev: st.Devices()[1], Src: addr6.Addr()}); err != nil {
		t.Fatal(err)
	}
	info := sendThroughRouter(t, st, far, "[fd00:51::2]:5302", 4<<20, 30*time.Second)
	if info.PMTU != 1280 || info.SndMSS != 1280-40-20-12 {
		t.Fatalf("pmtu %d mss %d, want 1280 %d", info.PMTU, info.SndMSS, 1280-40-20-12)
	}
	if st.Net().MIB.Get(memctl.Icmp6InPktTooBigs) == 0 {
		t.Fatal("no packet too big counted")
	}
	cache := st.PMTUCache()
	if len(cache) != 1 || cache[0].Dst != netip.MustParseAddr("fd00:51::2") || cache[0].MTU != 1280 {
		t.Fatalf("route cache %+v", cache)
	}
}
