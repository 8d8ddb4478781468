package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/memctl"
	"sockfs/netstack"
	"sockfs/netstack/link"
	"sockfs/tun"
)

// stackInNetns runs a sockfs stack in this test process on a TUN device
// created inside ns (198.18.0.2/24, kernel side 198.18.0.1/24), so that
// tests drive it through the Go API while the kernel's tools in ns are the
// peer. The TUN device is created on a thread that has entered ns; the
// stack then reaches it only through the device's file descriptor.
func stackInNetns(t testing.TB, ns *netns, name string) *netstack.Stack {
	t.Helper()
	return stackInNetnsCfg(t, ns, name, tun.Config{})
}

// stackInNetnsCfg is stackInNetns with the TUN's offload setting from cfg
// (its name, MTU and host address are set here).
func stackInNetnsCfg(t testing.TB, ns *netns, name string, cfg tun.Config) *netstack.Stack {
	t.Helper()
	return stackInNetnsFam(t, ns, name, cfg, false)
}

// The IPv6 addresses of the dual-stack tests: sockfs fd00:5f::2/64, the
// kernel side fd00:5f::1/64 (sockfs serve's defaults).
var (
	addr6 = netip.MustParsePrefix("fd00:5f::2/64")
	host6 = netip.MustParsePrefix("fd00:5f::1/64")
)

// stackInNetns6 is stackInNetns with IPv6 too: addr6 on sockfs, host6 on
// the kernel side.
func stackInNetns6(t testing.TB, ns *netns, name string) *netstack.Stack {
	t.Helper()
	return stackInNetnsFam(t, ns, name, tun.Config{}, true)
}

func stackInNetnsFam(t testing.TB, ns *netns, name string, cfg tun.Config, v6 bool) *netstack.Stack {
	t.Helper()
	var dev *tun.Device
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// This thread is never unlocked: it ends with the goroutine, so the
		// namespace change cannot leak into other goroutines.
		fd, err := unix.Open("/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		cfg.Name, cfg.MTU, cfg.HostAddr = name, 1500, netip.MustParsePrefix("198.18.0.1/24")
		if v6 {
			cfg.HostAddr6 = host6
		}
		dev, err = tun.New(cfg)
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := netstack.New(netstack.Options{})
	t.Cleanup(func() { st.Close() })
	if _, err := st.AddDevice(link.NewLoopback(st.Clock(), link.DefaultLoopbackMTU)); err != nil {
		t.Fatal(err)
	}
	nd, err := st.AddDevice(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddAddress(nd, netip.MustParsePrefix("198.18.0.2/24")); err != nil {
		t.Fatal(err)
	}
	if v6 {
		if err := st.AddAddress(nd, addr6); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func randomFile(t testing.TB, size int64) (string, [32]byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "payload")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	src, _ := os.Open("/dev/urandom")
	defer src.Close()
	if _, err := io.CopyN(io.MultiWriter(f, h), src, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return p, sum
}

// The kernel as client and sockfs as server, 100 MiB each way through socat,
// byte-exact.
func TestKernelSocatBulkBothWays(t *testing.T) {
	needRoot(t)
	needTool(t, "socat")
	ns := newNetns(t)
	socatBulkBothWays(t, ns, stackInNetns(t, ns, "sfsbulk0"), netip.MustParseAddr("198.18.0.2"))
}

// TestKernelSocatBulkBothWays6 is TestKernelSocatBulkBothWays over IPv6.
func TestKernelSocatBulkBothWays6(t *testing.T) {
	needRoot(t)
	needTool(t, "socat")
	ns := newNetns(t)
	st := stackInNetns6(t, ns, "sfsbulk6")
	socatBulkBothWays(t, ns, st, addr6.Addr())
	if st.Net().MIB.Get(memctl.Ip6InDelivers) == 0 || st.Net().MIB.Get(memctl.IpInDelivers) != 0 {
		t.Fatal("not carried by IPv6")
	}
	// TUN_F_TSO6: the kernel sent TCP/IPv6 super-packets both ways.
	o := st.Devices()[1].Device().(*tun.Device).OffloadStats()
	if o.RxGSOPackets.Load() == 0 || o.TxGSOPackets.Load() == 0 {
		t.Fatalf("no TSO6 super-packets: rx %d tx %d", o.RxGSOPackets.Load(), o.TxGSOPackets.Load())
	}
}

// socatBulkBothWays sends 100 MiB from socat in ns to sockfs at addr, and
// 100 MiB back, and compares SHA-256 both ways.
func socatBulkBothWays(t *testing.T, ns *netns, st *netstack.Stack, addr netip.Addr) {
	const size = 100 << 20
	file, want := randomFile(t, size)

	// Kernel -> sockfs sink.
	ln, err := st.ListenTCP(netip.AddrPortFrom(addr, 5001), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		got <- s
	}()
	start := time.Now()
	if out, err := ns.run("socat", "-u", "FILE:"+file, "TCP:"+netip.AddrPortFrom(addr, 5001).String()); err != nil {
		t.Fatalf("socat send: %v\n%s", err, out)
	}
	select {
	case s := <-got:
		if s != want {
			t.Fatal("kernel -> sockfs: SHA-256 differs")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("sink did not finish")
	}
	t.Logf("kernel -> sockfs: 100 MiB in %v", time.Since(start))

	// sockfs source -> kernel.
	ln2, err := st.ListenTCP(netip.AddrPortFrom(addr, 5002), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go func() {
		c, err := ln2.Accept()
		if err != nil {
			return
		}
		f, _ := os.Open(file)
		io.Copy(c, f)
		f.Close()
		c.Close()
	}()
	out := filepath.Join(t.TempDir(), "received")
	start = time.Now()
	if o, err := ns.run("socat", "-u", "TCP:"+netip.AddrPortFrom(addr, 5002).String(), "CREATE:"+out); err != nil {
		t.Fatalf("socat receive: %v\n%s", err, o)
	}
	t.Logf("sockfs -> kernel: 100 MiB in %v", time.Since(start))
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(data) != want {
		t.Fatalf("sockfs -> kernel: SHA-256 differs (%d bytes received)", len(data))
	}
}

// curl in the kernel's namespace against net/http served over sockfs, and
// net/http over sockfs against python3's http.server.
func TestHTTPBothWays(t *testing.T) {
	needRoot(t)
	needTool(t, "curl")
	needTool(t, "python3")
	ns := newNetns(t)
	httpBothWays(t, ns, stackInNetns(t, ns, "sfshttp0"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1"))
}

// TestHTTPBothWays6 is TestHTTPBothWays over IPv6: curl -6 to net/http on
// sockfs, net/http on sockfs to python3's http.server bound to the
// kernel's IPv6 address.
func TestHTTPBothWays6(t *testing.T) {
	needRoot(t)
	needTool(t, "curl")
	needTool(t, "python3")
	ns := newNetns(t)
	httpBothWays(t, ns, stackInNetns6(t, ns, "sfshttp6"), addr6.Addr(), host6.Addr())
}

// httpBothWays serves HTTP on sockfs at addr to curl, and fetches from
// python3's http.server at host through sockfs.
func httpBothWays(t *testing.T, ns *netns, st *netstack.Stack, addr, host netip.Addr) {
	ln, err := st.ListenTCP(netip.AddrPortFrom(addr, 8080), 16)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from sockfs\n", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	fam := "-4"
	if addr.Is6() {
		fam = "-6"
	}
	out, err := ns.run("curl", fam, "-gsS", "--max-time", "10", "http://"+netip.AddrPortFrom(addr, 8080).String()+"/x")
	if err != nil || out != "hello /x from sockfs\n" {
		t.Fatalf("curl: %v: %q", err, out)
	}

	dir := t.TempDir()
	body := strings.Repeat("python3 http.server over the kernel's TCP\n", 50000)
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte(body), 0o644)
	py := ns.cmd("python3", "-m", "http.server", "--bind", host.String(), "8000", "--directory", dir)
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { py.Process.Kill(); py.Wait() }()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return st.DialTCP(ctx, netip.AddrPort{}, netip.MustParseAddrPort(addr))
	}}}
	var resp *http.Response
	for i := 0; i < 50; i++ { // until python3 listens
		if resp, err = client.Get("http://" + netip.AddrPortFrom(host, 8000).String() + "/f.txt"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != body {
		t.Fatalf("GET over sockfs: %v, %d bytes (want %d)", err, len(got), len(body))
	}
}
