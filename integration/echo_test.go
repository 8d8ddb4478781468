package integration

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"sockfs/netstack"
)

// 200 concurrent connections from the kernel to sockfs, each echoing 64 KiB:
// every one completes with its own bytes back. The kernel side is one
// python3 process with 200 threads, so the load is the kernel's TCP.
func TestKernel200ConcurrentEcho(t *testing.T) {
	needRoot(t)
	needTool(t, "python3")
	ns := newNetns(t)
	concurrentEcho(t, ns, stackInNetns(t, ns, "sfsecho0"), netip.MustParseAddr("198.18.0.2"))
}

// TestKernel200ConcurrentEcho6 is TestKernel200ConcurrentEcho over IPv6.
func TestKernel200ConcurrentEcho6(t *testing.T) {
	needRoot(t)
	needTool(t, "python3")
	ns := newNetns(t)
	concurrentEcho(t, ns, stackInNetns6(t, ns, "sfsecho6"), addr6.Addr())
}

func concurrentEcho(t *testing.T, ns *netns, st *netstack.Stack, addr netip.Addr) {
	ln, err := st.ListenTCP(netip.AddrPortFrom(addr, 7), 256)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	const clients, size = 200, 64 << 10
	script := fmt.Sprintf(`
import socket, threading, os, sys
N, SIZE = %d, %d
ok = [False] * N
def one(i):
    data = bytes([(i + j) %% 251 for j in range(256)]) * (SIZE // 256)
    s = socket.create_connection((%q, 7), timeout=60)
    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    w = threading.Thread(target=send); w.start()
    got = bytearray()
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
    w.join(); s.close()
    ok[i] = (bytes(got) == data)
ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]
for t in ts: t.start()
for t in ts: t.join()
print(sum(ok))
`, clients, size, addr.String())
	out, err := ns.run("python3", "-c", script)
	if err != nil {
		t.Fatalf("python3 clients: %v\n%s", err, out)
	}
	if strings.TrimSpace(out) != fmt.Sprint(clients) {
		t.Fatalf("%s of %d connections echoed correctly; the stack's non-zero counters:\n%s",
			strings.TrimSpace(out), clients, nonzeroCounters(st))
	}
}

// nonzeroCounters lists the stack's SNMP and TcpExt counters that are not
// zero, "Group: name value" one per line, so that a failure says which
// path reset or dropped (ListenOverflows, TCPAbortOnData, OutRsts, ...).
func nonzeroCounters(st *netstack.Stack) string {
	mib := st.Net().MIB
	var b strings.Builder
	for _, table := range []string{mib.FormatSNMP(false, 64), mib.FormatNetstat()} {
		lines := strings.Split(strings.TrimSpace(table), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j := 1; j < len(names) && j < len(values); j++ {
				if values[j] != "0" {
					fmt.Fprintf(&b, "%s %s %s\n", names[0], names[j], values[j])
				}
			}
		}
	}
	return b.String()
}
