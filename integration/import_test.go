package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// importer is a running `sockfs import`.
type importer struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
	dir  string
}

// startImport runs `sockfs import addr DIR` in ns (nil: this namespace)
// and waits until the remote tree answers through the mount. Cleanup kills
// it and fails the test if it left its mount behind.
func startImport(t *testing.T, ns *netns, addr string) *importer {
	t.Helper()
	im := &importer{out: new(lockedBuffer), done: make(chan error, 1), dir: t.TempDir()}
	if ns != nil {
		im.cmd = ns.cmd(sockfsBin(t), "import", addr, im.dir)
	} else {
		im.cmd = exec.Command(sockfsBin(t), "import", addr, im.dir)
	}
	im.cmd.Stdout, im.cmd.Stderr = im.out, im.out
	if err := im.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { im.done <- im.cmd.Wait() }()
	t.Cleanup(func() {
		im.cmd.Process.Kill()
		select {
		case err := <-im.done:
			im.done <- err
		case <-time.After(5 * time.Second):
		}
		if mounted(im.dir) {
			exec.Command("fusermount3", "-uz", im.dir).Run()
			t.Errorf("import left its mount behind")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(im.dir + "/sys/ipv4/tcp_rmem"); err == nil && len(b) > 0 {
			return im
		}
		select {
		case err := <-im.done:
			im.done <- err
			t.Fatalf("import exited: %v\n%s", err, im.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("import did not come up\n%s", im.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks that import exits cleanly and unmounts.
func (im *importer) stop(t *testing.T) {
	t.Helper()
	im.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-im.done:
		im.done <- err
		if err != nil {
			t.Fatalf("import after SIGTERM: %v\n%s", err, im.out)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("import ignored SIGTERM\n%s", im.out)
	}
	if mounted(im.dir) {
		t.Fatal("mount still present after SIGTERM")
	}
}

// lineServer starts a kernel TCP server in ns on addr:port that answers
// one connection with "kernel says " and what it read, and waits until it
// listens.
func lineServer(t *testing.T, ns *netns, addr string, port int) {
	t.Helper()
	srv := ns.cmd("python3", "-c", fmt.Sprintf(`
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("%s", %d)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(b"kernel says " + c.recv(100))
c.close()
`, addr, port))
	out := new(lockedBuffer)
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "ready"); {
		if time.Now().After(deadline) {
			t.Fatalf("python server did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientScript runs the contract's client idiom (exec, echo, cat, printf
// only) against the tree mounted at dir: dial addr, send "hello", print the
// reply. It returns what the script printed.
func clientScript(t *testing.T, dir, addr string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", `set -e
exec 3<>$M/tcp/clone; n=$(cat <&3)
echo "connect $A" >&3
exec 4<$M/tcp/$n/data 5>$M/tcp/$n/data
printf 'hello' >&5
cat <&4; echo
exec 5>&- 4<&- 3<&-
`)
	cmd.Env = append(os.Environ(), "M="+dir, "A="+addr)
	cmd.WaitDelay = time.Second
	timer := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client script: %v\n%s", err, out)
	}
	return string(out)
}

// Plan 9's import across machines: sockfs A serves its tree over 9P on a
// veth link between two namespaces; `sockfs import` in the other namespace
// mounts it, and the client idiom run through that mount uses A's stack:
// bash -> FUSE -> 9P over the veth -> daemon A -> sockfs TCP -> TUN -> the
// kernel's TCP in A's namespace.
func TestImportSecondMachine(t *testing.T) {
	needRoot(t)
	needTool(t, "fusermount3")
	needTool(t, "python3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	nsA, nsB := newNetns(t), newNetns(t)
	va, vb := fmt.Sprintf("sfva%d", os.Getpid()%10000), fmt.Sprintf("sfvb%d", os.Getpid()%10000)
	if out, err := exec.Command("ip", "link", "add", va, "type", "veth", "peer", "name", vb).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", va).Run() }) // if still in this namespace
	for _, s := range [][]string{
		{"ip", "link", "set", va, "netns", nsA.name}, {"ip", "link", "set", vb, "netns", nsB.name},
	} {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", s, err, out)
		}
	}
	nsA.mustRun("ip", "addr", "add", "198.18.1.1/24", "dev", va)
	nsA.mustRun("ip", "link", "set", va, "up")
	nsB.mustRun("ip", "addr", "add", "198.18.1.2/24", "dev", vb)
	nsB.mustRun("ip", "link", "set", vb, "up")

	d := startServe(t, nsA, "sfimpA0", "--9p", "198.18.1.1:5640", "--9p-any")
	lineServer(t, nsA, "198.18.0.1", 8000)
	im := startImport(t, nsB, "198.18.1.1:5640")

	// B itself has no route to A's TUN network: only A's stack reaches it.
	if out, err := nsB.run("ping", "-c", "1", "-W", "1", "198.18.0.1"); err == nil {
		t.Fatalf("namespace B reaches 198.18.0.1 directly:\n%s", out)
	}
	if got := clientScript(t, im.dir, "198.18.0.1!8000"); got != "kernel says hello\n" {
		t.Fatalf("through the import: %q\nimport log: %s\nserve log: %s", got, im.out, d.stderr)
	}
	im.stop(t)
}
