package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// synProbe connects to argv[2] port 80, through a kernel socket (argv[1]
// "kernel") or through the tree mounted at argv[3] ("file"), and prints
// the errno connect ended with, the seconds it took and how many segments
// were retransmitted meanwhile (RetransSegs of /proc/net/snmp, or of the
// tree's netstat file).
const synProbe = `
import os, socket, sys, time
def retrans(path):
    rows = [l.split() for l in open(path) if l.startswith("Tcp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:]))["RetransSegs"])
if sys.argv[1] == "kernel":
    path = "/proc/net/snmp"
else:
    path = sys.argv[3] + "/netstat"
    ctl = os.open(sys.argv[3] + "/tcp/clone", os.O_RDWR)
    os.read(ctl, 32)
r0, t0 = retrans(path), time.monotonic()
try:
    if sys.argv[1] == "kernel":
        socket.create_connection((sys.argv[2], 80))
    else:
        os.write(ctl, ("connect %s!80" % sys.argv[2]).encode())
    err = 0
except OSError as e:
    err = e.errno
print(err, "%.2f" % (time.monotonic() - t0), retrans(path) - r0, flush=True)
`

// TestFilesSynRetriesAgainstKernel: with tcp_syn_retries 2, a connect to
// an address nothing answers gives up with ETIMEDOUT after 7 s having
// resent its SYN five times (tcp_syn_linear_timeouts 4, Linux's default:
// five resends a second apart, where exponential backoff alone would send
// two), on sockfs as on a kernel socket in the same namespace, run side
// by side: sockfs's SYNs go out of its TUN to an address on the
// namespace's side that no one has, the kernel's out of a veth whose peer
// is down.
func TestFilesSynRetriesAgainstKernel(t *testing.T) {
	needTool(t, "python3")
	d := startFiles(t, "sfsfsyn0")
	d.ns.mustRun("ip", "link", "add", "sfsbh0", "type", "veth", "peer", "name", "sfsbh1")
	d.ns.mustRun("ip", "link", "set", "sfsbh0", "up")
	d.ns.mustRun("ip", "addr", "add", "198.18.9.1/24", "dev", "sfsbh0")
	d.ns.mustRun("ip", "neigh", "add", "198.18.9.2", "lladdr", "02:00:00:00:00:09", "dev", "sfsbh0", "nud", "permanent")
	d.ns.mustRun("sysctl", "-qw", "net.ipv4.tcp_syn_retries=2")
	if err := os.WriteFile(filepath.Join(d.mnt, "sys", "ipv4", "tcp_syn_retries"), []byte("2\n"), 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ipv4/tcp_syn_linear_timeouts"} {
		got, err := os.ReadFile(filepath.Join(d.mnt, "sys", f))
		want, _ := d.ns.run("cat", "/proc/sys/net/"+f)
		if err != nil || string(got) != want {
			t.Fatalf("%s: sockfs %q (%v), kernel %q", f, got, err, want)
		}
	}
	probes := map[string]*exec.Cmd{
		"kernel": d.ns.cmd("python3", "-c", synProbe, "kernel", "198.18.9.2"),
		"sockfs": exec.Command("python3", "-c", synProbe, "file", "198.18.0.77", d.mnt),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	res := map[string][]string{}
	for who, c := range probes {
		wg.Go(func() {
			out, err := c.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("%s: %v\n%s", who, err, out)
			}
			res[who] = strings.Fields(string(out))
		})
	}
	wg.Wait()
	for who, f := range res {
		t.Logf("%s: errno %v", who, f)
		if len(f) != 3 {
			t.Fatalf("%s printed %q", who, f)
		}
		secs, _ := strconv.ParseFloat(f[1], 64)
		took := time.Duration(secs * float64(time.Second))
		if f[0] != "110" || f[2] != "5" || took < 6500*time.Millisecond || took > 8*time.Second {
			t.Errorf("%s: errno %s after %v with %s retransmissions; want ETIMEDOUT (110) after 7 s, 5 retransmissions", who, f[0], took, f[2])
		}
	}
}
