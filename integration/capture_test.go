package integration

import (
	"bufio"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sockfs/tun"
)

// A captured exchange between the kernel and sockfs: the handshake
// negotiates MSS, SACK, timestamps and window scaling both ways, data
// segments carry timestamps, FIN closes both directions, a RST from sockfs
// resets the kernel's connection, and tcpdump finds no malformed segment
// or bad checksum. With the TUN's offloads on, TCP checksums in either
// direction are partial (the pseudo-header sum, which tcpdump reports as
// "incorrect -> the right value", as on any Linux device with checksum
// offload), so only the offloads-off capture is checked for them.
func TestCaptureOptionsFinRst(t *testing.T) {
	needRoot(t)
	needTool(t, "tcpdump")
	needTool(t, "socat")
	for _, off := range []bool{true, false} {
		name := map[bool]string{true: "no-offload", false: "offload"}[off]
		t.Run(name, func(t *testing.T) { captureOptionsFinRst(t, off) })
	}
}

// startTcpdump runs tcpdump -nn -vv -S on iface in ns with filter until
// the function it returns, which gives what it printed.
func startTcpdump(t *testing.T, ns *netns, iface, filter string) func() string {
	t.Helper()
	capFile := filepath.Join(t.TempDir(), "cap.txt")
	out, _ := os.Create(capFile)
	dump := ns.cmd("tcpdump", "-i", iface, "-nn", "-vv", "-l", "-S", filter)
	dump.Stdout = out
	stderr, _ := dump.StderrPipe()
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until tcpdump is listening.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening on") {
	}
	go io.Copy(io.Discard, stderr)
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			time.Sleep(300 * time.Millisecond)
			dump.Process.Signal(os.Interrupt)
			dump.Wait()
			out.Close()
		}
		text, _ := os.ReadFile(capFile)
		return string(text)
	}
	t.Cleanup(func() { stop() })
	return stop
}

func captureOptionsFinRst(t *testing.T, noOffload bool) {
	ns := newNetns(t)
	st := stackInNetnsCfg(t, ns, "sfscap0", tun.Config{DisableOffload: noOffload})
	ln, err := st.ListenTCP(netip.MustParseAddrPort("198.18.0.2:9000"), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	stopDump := startTcpdump(t, ns, "sfscap0", "tcp")

	// 1: an echo exchange closed with FIN by both sides.
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	if o, err := ns.run("sh", "-c", "printf 'hello sockfs' | socat -t 2 - TCP:198.18.0.2:9000"); err != nil || o != "hello sockfs" {
		t.Fatalf("echo through sockfs: %v %q", err, o)
	}
	// 2: sockfs aborts a connection: the kernel sees a reset.
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		c.Socket().Abort()
	}()
	o, _ := ns.run("python3", "-c", `
import socket, time
s = socket.create_connection(("198.18.0.2", 9000), timeout=5)
s.sendall(b"reset")
try:
    while s.recv(100): pass
    print("eof")
except ConnectionResetError:
    print("reset")
`)
	if strings.TrimSpace(o) != "reset" {
		t.Fatalf("kernel after sockfs's abort: %q", o)
	}
	capture := stopDump()
	t.Logf("captured %d lines:\n%s", strings.Count(capture, "\n"), capture)

	synOpts := regexp.MustCompile(`198\.18\.0\.1\.\d+ > 198\.18\.0\.2\.9000: Flags \[S\].*options \[mss 1460,sackOK,TS val \d+ ecr 0,nop,wscale \d+\]`)
	synAckOpts := regexp.MustCompile(`198\.18\.0\.2\.9000 > 198\.18\.0\.1\.\d+: Flags \[S\.\].*options \[mss 1460,sackOK,TS val \d+ ecr \d+,nop,wscale \d+\]`)
	for name, re := range map[string]*regexp.Regexp{
		"kernel SYN with mss, sackOK, TS, wscale":     synOpts,
		"sockfs SYN-ACK with mss, sackOK, TS, wscale": synAckOpts,
		"sockfs data segment with timestamps":         regexp.MustCompile(`198\.18\.0\.2\.9000 > .*Flags \[P\.\].*options \[nop,nop,TS val`),
		"FIN from sockfs":                             regexp.MustCompile(`198\.18\.0\.2\.9000 > .*Flags \[F\.\]`),
		"FIN from the kernel":                         regexp.MustCompile(`198\.18\.0\.1\.\d+ > 198\.18\.0\.2\.9000: Flags \[F\.\]`),
		"RST from sockfs":                             regexp.MustCompile(`198\.18\.0\.2\.9000 > .*Flags \[R`),
	} {
		if !re.MatchString(capture) {
			t.Errorf("capture lacks %s\n%s", name, capture)
		}
	}
	for _, bad := range []string{"incorrect", "bad cksum", "[|tcp]", "truncated", "bad opt"} {
		if bad == "incorrect" && !noOffload {
			continue
		}
		if strings.Contains(capture, bad) {
			t.Errorf("capture shows %q:\n%s", bad, capture)
		}
	}
}
