package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lingerWriter connects to argv[1]:argv[2] with SO_SNDBUF 1000000 and
// SO_LINGER on for 2 s, sends the file argv[3] whole, closes, and prints
// how long close(2) took, in seconds.
const lingerWriter = `
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1000000)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 2))
s.sendall(open(sys.argv[3], "rb").read())
t0 = time.monotonic()
s.close()
print(time.monotonic() - t0, flush=True)
`

// lingerPeers are the peers of the linger tests (scripts/peer.py kinds)
// and how long a last close with `linger 2` may take against each, the
// kernel socket's range: the full 2 s while a slowsink does not read,
// under a second while a sink reads.
var lingerPeers = []struct {
	peer     string
	min, max time.Duration
}{
	{"slowsink", 1800 * time.Millisecond, 4 * time.Second},
	{"sink", 0, time.Second},
}

// TestFilesLinger: after `linger 2`, the last close(2) of a conversation's
// files waits as close(2) of a kernel socket with SO_LINGER {1, 2} does,
// in the same namespace against the same peers, the live kernel being the
// reference: the full 2 s while the peer does not read (its window full,
// the data unacknowledged), well under that when it reads. A close that is
// not the conversation's last does not wait. Afterwards the peer gets the
// data exactly, then EOF.
func TestFilesLinger(t *testing.T) {
	needTool(t, "python3")
	d := startFiles(t, "sfsfling0")
	file, want := lingerPayload(t)
	port := 7310
	for _, tc := range lingerPeers {
		t.Run(tc.peer, func(t *testing.T) {
			check := func(who string, took time.Duration) {
				t.Logf("%s: the last close took %v", who, took)
				if took < tc.min || took > tc.max {
					t.Errorf("%s: the last close took %v, want %v to %v", who, took, tc.min, tc.max)
				}
			}
			start := func() (*peerProc, string) {
				port++
				out := filepath.Join(t.TempDir(), "got")
				return d.peer(tc.peer, strconv.Itoa(port), out), out
			}
			accepted := func(p *peerProc) {
				if tc.peer == "slowsink" {
					if l := p.line(t, 10*time.Second); l != "accepted" {
						t.Fatalf("peer: %q", l)
					}
				}
			}
			release := func(p *peerProc) {
				if tc.peer == "slowsink" {
					io.WriteString(p.stdin, "go\n")
				}
			}

			port++
			check("sockfs", lingerThroughFiles(t, d, d.mnt, tc.peer, port, want))

			p, out := start()
			w := d.ns.cmd("python3", "-c", lingerWriter, "198.18.0.1", strconv.Itoa(port), file)
			stdout, _ := w.StdoutPipe()
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			accepted(p)
			line, _ := io.ReadAll(stdout)
			w.Wait()
			secs, err := strconv.ParseFloat(strings.TrimSpace(string(line)), 64)
			if err != nil {
				t.Fatalf("the kernel writer printed %q (%v)", line, w.ProcessState)
			}
			check("kernel", time.Duration(secs*float64(time.Second)))
			release(p)
			checkSlowsink(t, p, out, want)
		})
	}
}

// lingerThroughFiles writes want to a peer of kind peer (scripts/peer.py)
// on port in d's namespace through a conversation of the tree mounted at
// mnt, with `sndbuf 1000000` and `linger 2`, closes data (which must not
// wait, ctl being open) and then ctl, and returns how long that last
// close took;
// then it lets a slowsink read and checks that the peer got want exactly.
func lingerThroughFiles(t *testing.T, d *filesDaemon, mnt, peer string, port int, want []byte) time.Duration {
	t.Helper()
	out := filepath.Join(t.TempDir(), "got")
	p := d.peer(peer, strconv.Itoa(port), out)
	ctl, n := openConv(t, mnt, "connect 198.18.0.1!"+strconv.Itoa(port))
	if peer == "slowsink" {
		if l := p.line(t, 10*time.Second); l != "accepted" {
			t.Fatalf("peer: %q", l)
		}
	}
	for _, c := range []string{"sndbuf 1000000", "linger 2"} {
		if _, err := ctl.Write([]byte(c)); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	data, err := os.OpenFile(filepath.Join(mnt, "tcp", n, "data"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := data.Write(want); k != len(want) || err != nil {
		t.Fatalf("write: %d, %v", k, err)
	}
	at := time.Now()
	data.Close()
	if took := time.Since(at); took > 500*time.Millisecond {
		t.Errorf("closing data with ctl still open took %v", took)
	}
	at = time.Now()
	ctl.Close()
	took := time.Since(at)
	if peer == "slowsink" {
		io.WriteString(p.stdin, "go\n")
	}
	checkSlowsink(t, p, out, want)
	return took
}

// TestImportLinger: through `sockfs import` of the daemon's 9P export,
// the last close of a conversation given `linger 2` waits as on the
// daemon's own mount (TestFilesLinger, where a kernel socket is the
// reference): the full 2 s while the peer does not read, under a second
// when it reads; closing data with ctl open does not wait; the peer gets
// the data exactly. The import learns the linger from the ctl write it
// carries and waits in its FLUSH until the server's send queue is empty.
func TestImportLinger(t *testing.T) {
	needImport(t)
	d := startFiles9P(t, "sfsfiling0")
	im := startImport(t, d.ns, "127.0.0.1:5640")
	_, want := lingerPayload(t)
	for i, tc := range lingerPeers {
		t.Run(tc.peer, func(t *testing.T) {
			took := lingerThroughFiles(t, d, im.dir, tc.peer, 7330+i, want)
			t.Logf("through the import: the last close took %v", took)
			if took < tc.min || took > tc.max {
				t.Errorf("through the import: the last close took %v, want %v to %v", took, tc.min, tc.max)
			}
		})
	}
	im.stop(t)
}

// lingerExiter connects (argv[1] "file": through the tree mounted at
// argv[2], its ctl closed before the data is written, so that data is the
// last file; "tcp": a kernel socket to argv[2]), sets a 2 s linger and the
// sndbuf, writes the file argv[4] to port argv[3], prints "exiting" and
// exits without closing.
const lingerExiter = `
import os, socket, struct, sys
data = open(sys.argv[4], "rb").read()
if sys.argv[1] == "file":
    m = sys.argv[2]
    ctl = os.open(m + "/tcp/clone", os.O_RDWR)
    n = os.read(ctl, 32).decode()
    for c in ("connect 198.18.0.1!" + sys.argv[3], "sndbuf 1000000", "linger 2"):
        os.write(ctl, c.encode())
    fd = os.open(m + "/tcp/" + n + "/data", os.O_WRONLY)
    os.close(ctl)
    off = 0
    while off < len(data):
        off += os.write(fd, data[off:])
else:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1000000)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 2))
    s.sendall(data)
print("exiting", flush=True)
os._exit(0)
`

// TestFilesLingerAtExit: a process that exits with a lingering
// conversation's last file open does not wait (Linux lingers in close(2),
// not in exit: inet_release skips the linger when PF_EXITING), here as
// with a kernel socket in the same namespace against the same peer that
// does not read; the peer then gets everything.
func TestFilesLingerAtExit(t *testing.T) {
	needTool(t, "python3")
	d := startFiles(t, "sfsflexit0")
	file, want := lingerPayload(t)
	for i, w := range []struct {
		who string
		cmd func(port string) *exec.Cmd
	}{
		{"sockfs", func(port string) *exec.Cmd {
			return exec.Command("python3", "-c", lingerExiter, "file", d.mnt, port, file)
		}},
		{"kernel", func(port string) *exec.Cmd {
			return d.ns.cmd("python3", "-c", lingerExiter, "tcp", "198.18.0.1", port, file)
		}},
	} {
		port := strconv.Itoa(7320 + i)
		out := filepath.Join(t.TempDir(), "got")
		p := d.peer("slowsink", port, out)
		c := w.cmd(port)
		stdout, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if l := p.line(t, 10*time.Second); l != "accepted" {
			t.Fatalf("peer: %q", l)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "exiting" {
			c.Process.Kill()
			c.Wait()
			t.Fatalf("%s: the writer printed %q", w.who, sc.Text())
		}
		at := time.Now()
		c.Wait()
		took := time.Since(at)
		t.Logf("%s: exit took %v", w.who, took)
		if took > time.Second {
			t.Errorf("%s: exit with a lingering socket open took %v, want no linger", w.who, took)
		}
		io.WriteString(p.stdin, "go\n")
		checkSlowsink(t, p, out, want)
	}
}

// lingerPayload is a file of 300 KB and its bytes: more than the kernel
// peer's receive window takes while it does not read, less than the
// sender's raised sndbuf holds.
func lingerPayload(t *testing.T) (string, []byte) {
	t.Helper()
	file, _ := randomFile(t, 300_000)
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, want
}
