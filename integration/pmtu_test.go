package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sockfs/fs"
	"strings"
	"testing"
	"time"

	"sockfs/netstack"
	"sockfs/tun"
)

// Path-MTU discovery against a real router: the kernel in the TUN's
// namespace forwards sockfs's traffic over a veth of MTU 1200 to a second
// namespace, and answers each DF packet too large for it with an ICMP
// fragmentation-needed (ip_forward -> ip_exceeds_mtu). sockfs must learn the
// path MTU, shrink its MSS and retransmit at once; without it every
// full-size segment (and every retransmission of one) dies at the router
// and the transfer never completes. 4 MiB are sent and compared byte for
// byte; the connection's pmtu and MSS and the route cache are checked,
// and the pmtu and MSS against a Linux sender's through the same router.
func TestPMTUThroughKernelRouter(t *testing.T) {
	needRoot(t)
	needTool(t, "socat")
	router := newNetns(t)
	far := newNetns(t)
	st := stackInNetns(t, router, "sfspmtu0")
	// Only the router's end is small: the far host keeps MTU 1500 and
	// advertises MSS 1460, so the MSS option alone cannot save sockfs.
	router.mustRun("ip", "link", "add", "pmtua", "mtu", "1200", "type", "veth", "peer", "name", "pmtub", "netns", far.name)
	router.mustRun("ip", "addr", "add", "198.18.51.1/24", "dev", "pmtua")
	router.mustRun("ip", "link", "set", "pmtua", "up")
	router.mustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	far.mustRun("ip", "addr", "add", "198.18.51.2/24", "dev", "pmtub")
	far.mustRun("ip", "link", "set", "pmtub", "up")
	far.mustRun("ip", "route", "add", "default", "via", "198.18.51.1")
	routeVia(t, st, "198.18.51.0/24")

	info := sendThroughRouter(t, st, far, "198.18.51.2:5300", 4<<20, 30*time.Second)
	// 1200 - 20 (IP) - 20 (TCP) - 12 (timestamps); the peer's MSS allows
	// 1460 - 12.
	if info.PMTU != 1200 || info.SndMSS != 1148 {
		t.Fatalf("pmtu %d mss %d, want 1200 1148", info.PMTU, info.SndMSS)
	}
	cache := st.PMTUCache()
	if len(cache) != 1 || cache[0].Dst != netip.MustParseAddr("198.18.51.2") || cache[0].MTU != 1200 {
		t.Fatalf("route cache %+v", cache)
	}
	// The same learned MTU as `ip route show cache` would list it.
	if got, want := readTreeFile(t, st, "iproute.cache"), "198.18.51.2 via 198.18.0.1 dev "+st.Devices()[1].Name()+" \n    cache expires "; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "sec mtu 1200 \n") {
		t.Fatalf("iproute.cache: %q, want %q...sec mtu 1200", got, want)
	}
	// The live kernel in the same place: a Linux sender in a third
	// namespace behind the same router, to the same far host, ends with
	// the same path MTU and MSS (tcp_info's tcpi_pmtu, tcpi_snd_mss).
	near := newNetns(t)
	router.mustRun("ip", "link", "add", "pmtuc", "type", "veth", "peer", "name", "pmtud", "netns", near.name)
	router.mustRun("ip", "addr", "add", "198.18.53.1/24", "dev", "pmtuc")
	router.mustRun("ip", "link", "set", "pmtuc", "up")
	near.mustRun("ip", "addr", "add", "198.18.53.2/24", "dev", "pmtud")
	near.mustRun("ip", "link", "set", "pmtud", "up")
	near.mustRun("ip", "route", "add", "default", "via", "198.18.53.1")
	sink := far.cmd("socat", "-u", "TCP-LISTEN:5302,reuseaddr", "OPEN:/dev/null")
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sink.Process.Kill(); sink.Wait() }()
	out, err := near.run("python3", "-c", `
import socket, struct, time
for i in range(50):
    try:
        s = socket.create_connection(("198.18.51.2", 5302), timeout=10)
        break
    except OSError:
        time.sleep(0.05)
s.sendall(b"x" * (4 << 20))
i = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print(struct.unpack_from("I", i, 60)[0], struct.unpack_from("I", i, 16)[0])
s.close()
`)
	if err != nil {
		t.Fatalf("kernel sender: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("%d %d", info.PMTU, info.SndMSS); strings.TrimSpace(out) != want {
		t.Fatalf("kernel's pmtu and mss %q, sockfs's %q", strings.TrimSpace(out), want)
	}
	t.Logf("4 MiB through a 1200-byte hop: pmtu %d, mss %d, %d retransmitted", info.PMTU, info.SndMSS, info.TotalRetrans)
}

// Packetization-layer path-MTU discovery through a real black hole: the far
// host's veth has MTU 1200 but its route advertises MSS 1460, and the
// router's end has MTU 1500, so the router forwards full-size packets and
// the far veth drops them silently (is_skb_forwardable), no ICMP ever sent.
// The TUN runs without offloads so that sockfs's segments cross the router
// one by one (a GSO packet would pass a veth whole). With tcp_mtu_probing 1
// sockfs detects the hole after tcp_retries1 RTOs, falls to tcp_base_mss
// and then probes upwards; 1 MiB arrives byte-exact, at an MSS that fits
// the hole. (Without probing the transfer stalls: TestMTUBlackHoleDetection
// shows the retransmissions staying full-size.)
func TestMTUProbingThroughBlackHole(t *testing.T) {
	needRoot(t)
	needTool(t, "socat")
	router := newNetns(t)
	far := newNetns(t)
	st := stackInNetnsCfg(t, router, "sfsbh0", tun.Config{DisableOffload: true})
	router.mustRun("ip", "link", "add", "bha", "type", "veth", "peer", "name", "bhb", "mtu", "1200", "netns", far.name)
	router.mustRun("ip", "addr", "add", "198.18.52.1/24", "dev", "bha")
	router.mustRun("ip", "link", "set", "bha", "up")
	router.mustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	far.mustRun("ip", "addr", "add", "198.18.52.2/24", "dev", "bhb")
	far.mustRun("ip", "link", "set", "bhb", "up")
	far.mustRun("ip", "route", "add", "default", "via", "198.18.52.1", "advmss", "1460")
	routeVia(t, st, "198.18.52.0/24")
	sc, _ := st.Net().Sysctls.Lookup("ipv4/tcp_mtu_probing")
	if err := sc.Write("1"); err != nil {
		t.Fatal(err)
	}

	info := sendThroughRouter(t, st, far, "198.18.52.2:5301", 1<<20, 60*time.Second)
	// 1204 bytes of IP fit the far veth (1200 + VLAN_HLEN): with
	// timestamps the largest MSS that passes is 1152.
	if info.SndMSS > 1152 || info.SndMSS < 512 {
		t.Fatalf("mss %d after the transfer, want one that fits the 1200-byte hole", info.SndMSS)
	}
	t.Logf("1 MiB through a black hole: mss %d, %d retransmitted", info.SndMSS, info.TotalRetrans)
}

// routeVia routes dst from the stack through the kernel side of its TUN
// (198.18.0.1, the router).
func routeVia(t *testing.T, st *netstack.Stack, dst string) {
	t.Helper()
	tunDev := st.Devices()[1] // after the loopback (stackInNetnsCfg)
	if err := st.AddRoute(netstack.Route{Dst: netip.MustParsePrefix(dst), Gateway: netip.MustParseAddr("198.18.0.1"),
		Dev: tunDev, Src: netip.MustParseAddr("198.18.0.2")}); err != nil {
		t.Fatal(err)
	}
}

// sendThroughRouter sends size random bytes from the stack to socat
// listening at dst in far, checks they arrive byte-exact within limit, and
// returns the connection's TCP_INFO as it was when the last byte was
// queued.
func sendThroughRouter(t *testing.T, st *netstack.Stack, far *netns, dst string, size int64, limit time.Duration) netstack.TCPInfo {
	t.Helper()
	file, want := randomFile(t, size)
	out := filepath.Join(t.TempDir(), "received")
	port := dst[strings.LastIndexByte(dst, ':')+1:]
	listen := "TCP-LISTEN:"
	if strings.HasPrefix(dst, "[") {
		listen = "TCP6-LISTEN:"
	}
	sink := far.cmd("socat", "-u", listen+port+",reuseaddr", "CREATE:"+out)
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var sinkErr error
	go func() { sinkErr = sink.Wait(); close(done) }()
	t.Cleanup(func() {
		sink.Process.Kill()
		<-done
	})
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var c *netstack.TCPConn
	var err error
	for i := 0; i < 50; i++ { // until socat listens
		if c, err = st.DialTCP(ctx, netip.AddrPort{}, netip.MustParseAddrPort(dst)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(limit))
	f, _ := os.Open(file)
	n, err := io.Copy(c, f)
	f.Close()
	if err != nil {
		t.Fatalf("sent %d of %d bytes: %v (mss %d)", n, size, err, c.Socket().Info().SndMSS)
	}
	info := c.Socket().Info()
	c.CloseWrite()
	select {
	case <-done:
		if sinkErr != nil {
			t.Fatalf("socat: %v", sinkErr)
		}
	case <-time.After(limit):
		t.Fatalf("the far side did not receive everything in %v (mss %d)", limit, c.Socket().Info().SndMSS)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size || sha256.Sum256(data) != want {
		t.Fatalf("received %d of %d bytes, or SHA-256 differs", len(data), size)
	}
	return info
}

// readTreeFile reads a top-level file of st's /net tree through the fs
// package (the tree the FUSE and 9P frontends serve).
func readTreeFile(t *testing.T, st *netstack.Stack, name string) string {
	t.Helper()
	n, err := fs.New(st, fs.Options{}).Root().Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := n.(fs.File).Open(context.Background(), fs.OpenReq{Flags: os.O_RDONLY})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	buf := make([]byte, 4096)
	k, _ := h.Read(context.Background(), buf, 0)
	return string(buf[:k])
}
