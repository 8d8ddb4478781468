package integration

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestP9ImportThroughDaemon: `sockfs serve --9p` in a namespace, Debian's
// diodcat reading it, and `sockfs import` mounting it through FUSE, where
// the shell idioms reach a kernel TCP server across the TUN device. SIGTERM
// makes import unmount.
func TestP9ImportThroughDaemon(t *testing.T) {
	needRoot(t)
	needTool(t, "fusermount3")
	needTool(t, "python3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	ns := newNetns(t)
	const addr = "127.0.0.1:5640"
	startServe(t, ns, "sfs9p0", "--mount", "", "--9p", addr)

	if _, err := exec.LookPath("diodcat"); err == nil {
		out := ns.mustRun("diodcat", "-s", addr, "-a", "/", "sys/ipv4/tcp_rmem")
		if !strings.HasPrefix(out, "4096\t") {
			t.Fatalf("diodcat tcp_rmem: %q", out)
		}
	} else {
		t.Log("diodcat not installed; skipping that part")
	}

	// A kernel TCP server on the host side of the TUN: answers one line.
	srv := ns.cmd("python3", "-c", `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.1", 8000)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(b"kernel says " + c.recv(100))
c.close()
`)
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	dir := t.TempDir()
	imp := ns.cmd(sockfsBin(t), "import", addr, dir)
	var impOut bytes.Buffer
	imp.Stdout, imp.Stderr = &impOut, &impOut
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	impDone := make(chan error, 1)
	go func() { impDone <- imp.Wait() }()
	t.Cleanup(func() {
		imp.Process.Kill()
		select {
		case <-impDone:
		case <-time.After(5 * time.Second):
		}
		if data, _ := os.ReadFile("/proc/mounts"); bytes.Contains(data, []byte(dir)) {
			exec.Command("fusermount3", "-uz", dir).Run()
			t.Errorf("import left its mount behind")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(dir + "/sys/ipv4/tcp_rmem"); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import did not come up\n%s", impOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for !strings.Contains(srvOut.String(), "ready") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}

	cmd := exec.Command("bash", "-c", `set -e
exec 3<>$M/tcp/clone; n=$(cat <&3)
echo 'connect 198.18.0.1!8000' >&3
exec 4<$M/tcp/$n/data 5>$M/tcp/$n/data
printf 'hello' >&5
cat <&4; echo
exec 5>&- 4<&- 3<&-
`)
	cmd.Env = append(os.Environ(), "M="+dir)
	cmd.WaitDelay = time.Second
	timer := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	out, err := cmd.CombinedOutput()
	timer.Stop()
	if err != nil || string(out) != "kernel says hello\n" {
		t.Fatalf("script: %v\n%s\nimport: %s", err, out, impOut.String())
	}

	imp.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-impDone:
		impDone <- err
		if err != nil {
			t.Fatalf("import after SIGTERM: %v\n%s", err, impOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("import ignored SIGTERM\n%s", impOut.String())
	}
	if data, _ := os.ReadFile("/proc/mounts"); bytes.Contains(data, []byte(dir)) {
		t.Fatalf("mount still present after SIGTERM")
	}
}
