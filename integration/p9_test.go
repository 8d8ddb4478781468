package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
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

	lineServer(t, ns, "198.18.0.1", 8000)
	im := startImport(t, ns, addr)
	if got := clientScript(t, im.dir, "198.18.0.1!8000"); got != "kernel says hello\n" {
		t.Fatalf("through the import: %q\n%s", got, im.out)
	}
	im.stop(t)
}
