package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cookieProbe listens on argv[1]:argv[2] (kernel; "-" for none), then
// connects to argv[3]:argv[4] and prints the client's tcpi_options and
// its send window scale (the server's), as TCP_INFO reports them.
const cookieProbe = `
import socket, sys, threading
if sys.argv[1] != "-":
    ln = socket.socket()
    ln.bind((sys.argv[1], int(sys.argv[2])))
    ln.listen(8)
    threading.Thread(target=lambda: ln.accept(), daemon=True).start()
c = socket.create_connection((sys.argv[3], int(sys.argv[4])), timeout=10)
info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print(info[5], info[6] & 0xf, flush=True)
`

// TestFilesSyncookieOptions: with tcp_syncookies 2 every SYN is answered
// with a cookie. A kernel client asking for timestamps, SACK, window
// scaling and ECN (tcp_ecn 1) gets all four from a sockfs listener, as it
// does from a kernel listener with the same setting in the same namespace
// (both count a cookie sent): the cookie keeps them in the SYN-ACK's
// timestamp (cookie_init_timestamp).
func TestFilesSyncookieOptions(t *testing.T) {
	needTool(t, "python3")
	d := startFiles(t, "sfsfcook0")
	d.ns.mustRun("sysctl", "-qw", "net.ipv4.tcp_syncookies=2", "net.ipv4.tcp_ecn=1")
	if err := os.WriteFile(filepath.Join(d.mnt, "sys", "ipv4", "tcp_syncookies"), []byte("2\n"), 0); err != nil {
		t.Fatal(err)
	}
	openConv(t, d.mnt, "announce 7340") // closed by the test's cleanup
	cookies := func(path string) string {
		out, err := d.ns.run("cat", path)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	sent := func(netstat string) string {
		var names, vals []string
		for _, l := range strings.Split(netstat, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "TcpExt:" {
				if names == nil {
					names = f
				} else {
					vals = f
				}
			}
		}
		for i, n := range names {
			if n == "SyncookiesSent" && i < len(vals) {
				return vals[i]
			}
		}
		return "?"
	}
	res := map[string][]string{}
	for _, c := range []struct{ who, lhost, lport, host, port, netstat string }{
		{"sockfs", "-", "0", "198.18.0.2", "7340", filepath.Join(d.mnt, "netstat")},
		{"kernel", "198.18.0.1", "7341", "198.18.0.1", "7341", "/proc/net/netstat"},
	} {
		before := sent(cookies(c.netstat))
		out, err := d.ns.cmd("python3", "-c", cookieProbe, c.lhost, c.lport, c.host, c.port).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.who, err, out)
		}
		time.Sleep(100 * time.Millisecond)
		after := sent(cookies(c.netstat))
		res[c.who] = strings.Fields(string(out))
		t.Logf("%s: tcpi_options %v, SyncookiesSent %s -> %s", c.who, res[c.who], before, after)
		if before == after {
			t.Errorf("%s: no SYN cookie sent (SyncookiesSent %s)", c.who, after)
		}
	}
	for who, f := range res {
		// TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE | TCPI_OPT_ECN
		if len(f) != 2 || f[0] != "15" || f[1] == "0" {
			t.Errorf("%s: tcpi_options %v, want 15 (timestamps, SACK, window scale, ECN) and a window scale", who, f)
		}
	}
	if s, k := res["sockfs"], res["kernel"]; len(s) == 2 && len(k) == 2 && s[1] != k[1] {
		t.Errorf("window scale %s from sockfs, %s from the kernel", s[1], k[1])
	}
}
