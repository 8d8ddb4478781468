package integration

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack"
	"sockfs/netstack/impair"
)

// ECN against the kernel's TCP with net.ipv4.tcp_ecn=1 in the namespace,
// both ways: the kernel's SYN asks (ECE|CWR) and sockfs's SYN-ACK accepts
// (ECE), and sockfs with tcp_ecn 1 asks and the kernel's SYN-ACK accepts;
// data goes ECT(0) both ways, and the kernel's tcp_info shows
// TCPI_OPT_ECN (negotiated) and TCPI_OPT_ECN_SEEN (ECT data received from
// sockfs). tcp_info is read with getsockopt, not `ss -ti`: the iproute2
// 6.1 ss here prints no options at all (not even ts, sack) against the
// 6.18 kernel.
func TestKernelECNNegotiation(t *testing.T) {
	needRoot(t)
	needTool(t, "tcpdump")
	needTool(t, "python3")
	ns := newNetns(t)
	ns.mustRun("sysctl", "-qw", "net.ipv4.tcp_ecn=1")
	st := stackInNetns(t, ns, "sfsecn0")
	sc, _ := st.Net().Sysctls.Lookup("ipv4/tcp_ecn")
	if err := sc.Write("1"); err != nil {
		t.Fatal(err)
	}
	ln, err := st.ListenTCP(netip.MustParseAddrPort("198.18.0.2:9000"), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	stopDump := startTcpdump(t, ns, "sfsecn0", "tcp")

	// 1: the kernel connects to sockfs, sends, reads the echo, and
	// prints its tcpi_options before closing.
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	o, err := ns.run("python3", "-c", `
import socket
s = socket.create_connection(("198.18.0.2", 9000), timeout=5)
s.sendall(b"x" * 5000)
got = b""
while len(got) < 5000:
    got += s.recv(65536)
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5])
s.close()
`)
	if err != nil {
		t.Fatalf("kernel client: %v\n%s", err, o)
	}
	checkKernelECN(t, "kernel connecting", o)

	// 2: sockfs connects to a kernel listener that echoes.
	srv := ns.cmd("python3", "-c", `
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("198.18.0.1", 9001)); l.listen(1)
print("ready", flush=True)
c, _ = l.accept()
got = b""
while len(got) < 5000:
    got += c.recv(65536)
c.sendall(got)
print(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5], flush=True)
c.recv(1)
`)
	srvOut, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	rd := bufio.NewReader(srvOut)
	if l, _ := rd.ReadString('\n'); !strings.Contains(l, "ready") {
		t.Fatalf("kernel listener: %q", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := st.DialTCP(ctx, netip.AddrPort{}, netip.MustParseAddrPort("198.18.0.1:9001"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	opts, _ := rd.ReadString('\n')
	checkKernelECN(t, "sockfs connecting", opts)
	if i := c.Socket().Info(); !i.ECN || !i.ECNSeen {
		t.Errorf("sockfs's connection: ecn %v ecnseen %v", i.ECN, i.ECNSeen)
	}
	c.Close()

	// 3: the kernel sends through sockfs's `in` impairment with netem's
	// `loss 5% ecn`: the marked packets arrive CE, sockfs echoes ECE until
	// the kernel's CWR.
	var dev *netstack.NetDevice
	for _, d := range st.Devices() {
		if d.Name() != "lo" { // the TUN (the stack names it tun0)
			dev = d
		}
	}
	sink, err := st.ListenTCP(netip.MustParseAddrPort("198.18.0.2:9002"), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// The impairment starts once the connection is up (a lost ECN SYN
	// would make the kernel retry without ECN, tcp_ecn_fallback): sockfs
	// sends one byte as the go-ahead.
	go func() {
		c, err := sink.Accept()
		if err != nil {
			return
		}
		if err := dev.SetImpair(netstack.In, impair.Config{Loss: 0.05, ECN: true}); err == nil {
			c.Write([]byte("g"))
			io.Copy(io.Discard, c)
		}
		c.Close()
	}()
	ce0 := st.Net().MIB.Get(memctl.IpExtInCEPkts)
	if o, err := ns.run("python3", "-c", `
import socket
s = socket.create_connection(("198.18.0.2", 9002), timeout=10)
s.recv(1)
s.sendall(b"x" * 2000000)
s.close()
`); err != nil {
		t.Fatalf("kernel sender: %v\n%s", err, o)
	}
	_, ic := dev.Impair(netstack.In)
	dev.SetImpair(netstack.In, impair.Config{})
	ce := st.Net().MIB.Get(memctl.IpExtInCEPkts) - ce0
	t.Logf("in impairment: %d marked CE; sockfs counted InCEPkts %d", ic.Marked, ce)
	// netem's ecn marks ECN-capable packets and drops the others: the
	// kernel's data is ECT(0), but its pure ACKs (of the go-ahead byte)
	// and its FIN are not (tcp_ecn_send), so one or two of those may be
	// lost by the 5% chance.
	if ic.Marked == 0 || ce == 0 || ic.Lost > 2 {
		t.Errorf("in impairment marked %d, lost %d; InCEPkts %d: want marks, and no data lost", ic.Marked, ic.Lost, ce)
	}

	capture := stopDump()
	t.Logf("captured %d lines", strings.Count(capture, "\n"))
	if os.Getenv("ECN_DUMP") != "" {
		t.Log(capture)
	}
	// tcpdump -vv prints the IP header line (tos ...) before the TCP line.
	for name, re := range map[string]*regexp.Regexp{
		"kernel SYN asking for ECN":         regexp.MustCompile(`198\.18\.0\.1\.\d+ > 198\.18\.0\.2\.9000: Flags \[SEW\]`),
		"sockfs SYN-ACK accepting ECN":      regexp.MustCompile(`198\.18\.0\.2\.9000 > 198\.18\.0\.1\.\d+: Flags \[S\.E\]`),
		"sockfs SYN asking for ECN":         regexp.MustCompile(`198\.18\.0\.2\.\d+ > 198\.18\.0\.1\.9001: Flags \[SEW\]`),
		"kernel SYN-ACK accepting ECN":      regexp.MustCompile(`198\.18\.0\.1\.9001 > 198\.18\.0\.2\.\d+: Flags \[S\.E\]`),
		"sockfs data ECT(0)":                regexp.MustCompile(`tos 0x2,ECT\(0\).*\n\s+198\.18\.0\.2\.\d+ > 198\.18\.0\.1\.\d+: Flags \[[P.]+\], .*length [1-9]`),
		"kernel data ECT(0)":                regexp.MustCompile(`tos 0x2,ECT\(0\).*\n\s+198\.18\.0\.1\.\d+ > 198\.18\.0\.2\.\d+: Flags \[[P.]+\], .*length [1-9]`),
		"sockfs pure ACK Not-ECT (tos 0x0)": regexp.MustCompile(`tos 0x0,.*\n\s+198\.18\.0\.2\.\d+ > 198\.18\.0\.1\.\d+: Flags \[\.\], .*length 0`),
		"sockfs echoing CE with ECE":        regexp.MustCompile(`198\.18\.0\.2\.9002 > 198\.18\.0\.1\.\d+: Flags \[\.E\]`),
		"the kernel's CWR after the echo":   regexp.MustCompile(`198\.18\.0\.1\.\d+ > 198\.18\.0\.2\.9002: Flags \[[P.]*W\]`),
	} {
		if !re.MatchString(capture) {
			t.Errorf("capture lacks %s\n%s", name, capture)
		}
	}
}

// checkKernelECN checks a tcpi_options value the kernel printed for
// TCPI_OPT_ECN (8) and TCPI_OPT_ECN_SEEN (16).
func checkKernelECN(t *testing.T, what, out string) {
	t.Helper()
	o, err := strconv.Atoi(strings.TrimSpace(out))
	t.Logf("%s: kernel's tcpi_options %q", what, strings.TrimSpace(out))
	if err != nil || o&8 == 0 || o&16 == 0 {
		t.Errorf("%s: kernel's tcpi_options %q: want TCPI_OPT_ECN and TCPI_OPT_ECN_SEEN", what, out)
	}
}
