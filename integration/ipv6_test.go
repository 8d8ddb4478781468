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
	if mib.Get(memctl.Ip6ReasmOKs) < 2 || mib.Get(memctl.Ip6FragOKs) < 2 || mib.Get(memctl.Ip6FragCreates) < 6 {
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
