package integration

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// startImport runs `sockfs import [flags] addr DIR` in ns (nil: this
// namespace) and waits until the remote tree answers through the mount.
// Cleanup kills it and fails the test if it left its mount behind.
func startImport(t *testing.T, ns *netns, addr string, flags ...string) *importer {
	t.Helper()
	return startImportBin(t, sockfsBin(t), ns, addr, flags...)
}

// startImportBin is startImport with the sockfs binary bin.
func startImportBin(t testing.TB, bin string, ns *netns, addr string, flags ...string) *importer {
	t.Helper()
	return startImportAt(t, bin, ns, addr, t.TempDir(), flags...)
}

// startImportAt is startImportBin mounting at dir.
func startImportAt(t testing.TB, bin string, ns *netns, addr, dir string, flags ...string) *importer {
	t.Helper()
	im := &importer{out: new(lockedBuffer), done: make(chan error, 1), dir: dir}
	args := append(append([]string{"import"}, flags...), addr, im.dir)
	if ns != nil {
		im.cmd = ns.cmd(bin, args...)
	} else {
		im.cmd = exec.Command(bin, args...)
	}
	im.cmd.Stdout, im.cmd.Stderr = im.out, im.out
	if err := im.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { im.done <- im.cmd.Wait() }()
	t.Cleanup(func() {
		// SIGTERM first (a test that failed before stop still checks the
		// unmount); SIGKILL only if import ignores it.
		im.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-im.done:
			im.done <- err
		case <-time.After(5 * time.Second):
			im.cmd.Process.Kill()
			select {
			case err := <-im.done:
				im.done <- err
			case <-time.After(5 * time.Second):
			}
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

// twoMachines makes two namespaces joined by a veth pair, A at
// 198.18.1.1/24 and B at 198.18.1.2/24.
func twoMachines(t *testing.T) (nsA, nsB *netns) {
	t.Helper()
	nsA, nsB = newNetns(t), newNetns(t)
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
	return nsA, nsB
}

func needImport(t *testing.T) {
	t.Helper()
	needRoot(t)
	needTool(t, "fusermount3")
	needTool(t, "python3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

// Plan 9's import across machines: sockfs A serves its tree over 9P on a
// veth link between two namespaces (to B's network only, --9p-allow);
// `sockfs import` in the other namespace mounts it, and the client idiom
// run through that mount uses A's stack: bash -> FUSE -> 9P over the veth
// -> daemon A -> sockfs TCP -> TUN -> the kernel's TCP in A's namespace.
func TestImportSecondMachine(t *testing.T) {
	needImport(t)
	nsA, nsB := twoMachines(t)
	d := startServe(t, nsA, "sfimpA0", "--9p", "198.18.1.1:5640", "--9p-allow", "198.18.1.2/32")
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

// TestImportTLS: with certificates from `sockfs cert`, A serves 9P inside
// mutual TLS on the veth and B imports it with --tls; the client idiom
// works through it. Without a certificate, with one from another CA, or
// without TLS at all, nothing attaches: import exits with an error and
// leaves no mount, and diodcat gets nothing.
func TestImportTLS(t *testing.T) {
	needImport(t)
	nsA, nsB := twoMachines(t)
	certs, other := t.TempDir(), t.TempDir()
	for _, c := range [][]string{
		{"cert", "--dir", certs, "--server", "198.18.1.1", "--client", "root"},
		{"cert", "--dir", other, "--server", "198.18.1.1", "--client", "root"},
	} {
		if out, err := exec.Command(sockfsBin(t), c...).CombinedOutput(); err != nil {
			t.Fatalf("sockfs %v: %v\n%s", c, err, out)
		}
	}
	f := func(dir, name string) string { return filepath.Join(dir, name) }
	d := startServe(t, nsA, "sfimpT0", "--9p", "198.18.1.1:5640",
		"--9p-tls", f(certs, "server.crt")+","+f(certs, "server.key")+","+f(certs, "ca.crt"))
	lineServer(t, nsA, "198.18.0.1", 8000)

	for name, flags := range map[string][]string{
		"no TLS":       nil,
		"another CA":   {"--tls", f(other, "root.crt") + "," + f(other, "root.key") + "," + f(certs, "ca.crt")},
		"wrong server": {"--tls", f(certs, "root.crt") + "," + f(certs, "root.key") + "," + f(other, "ca.crt")},
	} {
		dir := t.TempDir()
		args := append(append([]string{"import"}, flags...), "198.18.1.1:5640", dir)
		cmd := nsB.cmd(sockfsBin(t), args...)
		cmd.WaitDelay = time.Second
		timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
		out, err := cmd.CombinedOutput()
		timer.Stop()
		if err == nil || mounted(dir) {
			t.Fatalf("import with %s: %v, mounted %v\n%s", name, err, mounted(dir), out)
		}
		// Plain 9P gets the server's reason at once (its Tversion
		// waited out the TLS handshake's 10 s, read as an alert record).
		if name == "no TLS" && !strings.Contains(string(out), "speaks 9P inside mutual TLS") {
			t.Errorf("import without TLS says:\n%s", out)
		}
	}
	if _, err := exec.LookPath("diodcat"); err == nil {
		if out, err := nsB.run("timeout", "10", "diodcat", "-s", "198.18.1.1:5640", "-a", "/", "sys/ipv4/tcp_rmem"); err == nil {
			t.Fatalf("diodcat read through the TLS port: %q", out)
		}
	}

	im := startImport(t, nsB, "198.18.1.1:5640", "--tls", f(certs, "root.crt")+","+f(certs, "root.key")+","+f(certs, "ca.crt"))
	if got := clientScript(t, im.dir, "198.18.0.1!8000"); got != "kernel says hello\n" {
		t.Fatalf("through the TLS import: %q\nimport log: %s\nserve log: %s", got, im.out, d.stderr)
	}
	im.stop(t)
}

// The tuning tools read only files, so they work unchanged on a mount made
// with `sockfs import`: with a conversation holding 1000 unread bytes from
// a kernel sender, `sockfs ss` lists it with the remote mem file's skmem,
// `sockfs trace` samples it into CSV, and `sockfs top` shows it under tmux
// and quits on q.
func TestToolsOnImportedMount(t *testing.T) {
	needRoot(t)
	needTool(t, "fusermount3")
	needTool(t, "python3")
	needTool(t, "tmux")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	ns := newNetns(t)
	startServe(t, ns, "sftools0", "--9p", "127.0.0.1:5641")
	// A kernel sender: 1000 bytes, then it waits for the reader to go.
	srv := ns.cmd("python3", "-c", `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.1", 8001)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(b"x" * 1000)
c.recv(1)
`)
	srvOut := new(lockedBuffer)
	srv.Stdout, srv.Stderr = srvOut, srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(srvOut.String(), "ready"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sender did not start")
		}
	}
	im := startImport(t, ns, "127.0.0.1:5641")

	// Hold a conversation open through the imported tree.
	nfile := filepath.Join(t.TempDir(), "n")
	holder := exec.Command("bash", "-c", `exec 3<>$M/tcp/clone; n=$(cat <&3)
echo 'connect 198.18.0.1!8001' >&3 && echo $n > $F && sleep 60`)
	holder.Env = append(os.Environ(), "M="+im.dir, "F="+nfile)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	var conv string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(nfile); err == nil && len(b) > 1 {
			conv = "tcp/" + strings.TrimSpace(string(b))
			if st, _ := os.ReadFile(filepath.Join(im.dir, conv, "status")); strings.Contains(string(st), "qin 1000 ") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the conversation never held 1000 unread bytes")
		}
	}
	tool := func(args ...string) string {
		cmd := exec.Command(sockfsBin(t), args...)
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sockfs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	mem, _ := os.ReadFile(filepath.Join(im.dir, conv, "mem"))
	ss := tool("ss", im.dir)
	found := false
	for _, line := range strings.Split(ss, "\n") {
		if strings.Contains(line, conv+" ") {
			found = true
			f := strings.Fields(line)
			if f[0] != "tcp" || f[1] != "ESTAB" || f[3] != "1000" || f[6] != "198.18.0.1:8001" ||
				!strings.Contains(line, strings.TrimSpace(string(mem))) {
				t.Fatalf("ss line %q (mem %q)", line, mem)
			}
		}
	}
	if !found {
		t.Fatalf("ss does not list %s:\n%s", conv, ss)
	}

	csvPath := filepath.Join(t.TempDir(), "run.csv")
	// Each sample is several reads through FUSE, 9P and the remote tree;
	// a loaded 2-core machine may take most of an interval for one, so
	// ask for a few samples, not a count the interval promises.
	tool("trace", im.dir, "--conv", conv, "--every", "20ms", "--for", "800ms", "-o", csvPath)
	rows, err := csv.NewReader(mustOpen(t, csvPath)).ReadAll()
	if err != nil || len(rows) < 4 {
		t.Fatalf("trace: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	qi, ok := col["qin"]
	if !ok {
		t.Fatalf("trace columns %v lack qin", rows[0])
	}
	for _, r := range rows[1:] {
		if r[qi] != "1000" {
			t.Fatalf("trace sampled qin %s, want 1000", r[qi])
		}
	}

	// A socket of our own in the test's temporary directory (removed with
	// it), not a named one left behind in /tmp/tmux-UID.
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "120", "-y", "40",
		sockfsBin(t), "top", im.dir, "-i", "100ms"); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { tmux("kill-server") }) // our own socket only
	var screen string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		screen, _ = tmux("capture-pane", "-p", "-t", "top")
		if strings.Contains(screen, "tcp_mem") && strings.Contains(screen, conv) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("top never showed tcp_mem and %s:\n%s", conv, screen)
		}
	}
	tmux("send-keys", "-t", "top", "q")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := tmux("has-session", "-t", "top"); err != nil {
			break // top quit and its session ended
		}
		if time.Now().After(deadline) {
			t.Fatal("top did not quit on q")
		}
	}
	im.stop(t)
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestImportServerGone: when the exporting daemon stops under an import
// (a restart, say), the import says so in its log and unmounts, exiting
// with status 1; it used to stay mounted answering EIO to everything,
// with an empty `ls`, and said nothing.
func TestImportServerGone(t *testing.T) {
	needImport(t)
	ns := newNetns(t)
	d := startServe(t, ns, "sfimpG0", "--9p", "127.0.0.1:5642")
	im := startImport(t, ns, "127.0.0.1:5642")
	d.stop(t)
	select {
	case err := <-im.done:
		im.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("import ended with %v, want exit status 1", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("import still running 10 s after the server stopped\n%s", im.out)
	}
	if !strings.Contains(im.out.String(), "connection to the server lost") {
		t.Errorf("import's log does not say the connection was lost:\n%s", im.out)
	}
	if mounted(im.dir) {
		t.Errorf("import left %s mounted", im.dir)
	}
}

// TestImportRecoversStaleMount: an import started on a mount point that a
// killed import left stale ("Transport endpoint is not connected")
// recovers it, as serve does, and mounts; it said "is not a directory"
// and exited 2, leaving a manual umount to the user.
func TestImportRecoversStaleMount(t *testing.T) {
	needImport(t)
	ns := newNetns(t)
	startServe(t, ns, "sfimpS0", "--9p", "127.0.0.1:5643")
	im := startImport(t, ns, "127.0.0.1:5643")
	im.cmd.Process.Kill()
	<-im.done
	im.done <- nil
	if _, err := os.Stat(im.dir); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL, stat of the mount point: %v, want ENOTCONN", err)
	}
	again := startImportAt(t, sockfsBin(t), ns, "127.0.0.1:5643", im.dir)
	if b, err := os.ReadFile(again.dir + "/sys/ipv4/tcp_rmem"); err != nil || len(b) == 0 {
		t.Fatalf("the second import's tree: %q %v\n%s", b, err, again.out)
	}
}
