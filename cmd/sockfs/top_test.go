package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sockfs/netview"
	"sockfs/netview/mounttest"
)

// TestHelperSockfsMain is not a test: run by the tests as a child process
// with SOCKFS_HELPER_MAIN=1, it is the sockfs command with the arguments
// after "--".
func TestHelperSockfsMain(t *testing.T) {
	if os.Getenv("SOCKFS_HELPER_MAIN") != "1" {
		t.Skip("helper process")
	}
	for i, a := range os.Args {
		if a == "--" {
			os.Args = append([]string{"sockfs"}, os.Args[i+1:]...)
			break
		}
	}
	main()
	os.Exit(0)
}

// TestTopUnderTmux runs `sockfs top` in a 120x40 tmux pane against a real
// mount holding a connection with 32 KiB unread: the screen shows the
// tcp_mem thresholds from the protocols file and the conversation's mem,
// and q makes the process exit.
func TestTopUnderTmux(t *testing.T) {
	mounttest.Skip(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("no tmux")
	}
	p, server := unread32K(t, 8080)
	ps, err := netview.ReadProtocols(p.A)
	if err != nil {
		t.Fatal(err)
	}
	tcp := ps[0]

	// A socket of our own in the test's temporary directory (removed with
	// it), not a named one left behind in /tmp/tmux-UID.
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	dir := t.TempDir()
	exitFile := filepath.Join(dir, "exit")
	cmd := fmt.Sprintf("SOCKFS_HELPER_MAIN=1 %q -test.run='^TestHelperSockfsMain$' -- top %q -i 100ms; echo \"exit=$?\" > %q",
		os.Args[0], p.A, exitFile)
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "120", "-y", "40", "sh", "-c", cmd); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() { tmux("kill-server") }) // our own socket only

	wantThresh := fmt.Sprintf("tcp_mem  low %d  pressure %d  high %d", tcp.Low, tcp.PressAt, tcp.High)
	convName := fmt.Sprintf("tcp/%d", server.N)
	var screen string
	ok := false
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		screen, err = tmux("capture-pane", "-p", "-t", "top")
		if err != nil {
			continue
		}
		mem := strings.TrimSpace(server.File(t, "mem"))
		if strings.Contains(screen, wantThresh) && strings.Contains(screen, mem) && convLine(screen, convName, mem) {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatalf("screen never showed %q and %s's mem %q:\n%s", wantThresh, convName, strings.TrimSpace(server.File(t, "mem")), screen)
	}
	for _, want := range []string{"pressure: no", "PruneCalled", "TCPBacklogDrop", "per second", "BUSIEST CONVERSATIONS"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if _, err := tmux("send-keys", "-t", "top", "q"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(exitFile); err == nil && strings.TrimSpace(string(b)) != "" {
			if strings.TrimSpace(string(b)) != "exit=0" {
				t.Fatalf("top ended with %q", b)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("top did not exit within 5s of q")
}

// convLine reports whether a line of screen names conv as ESTAB with 32768
// bytes queued and the next line is its mem.
func convLine(screen, conv, mem string) bool {
	lines := strings.Split(screen, "\n")
	for i, l := range lines[:len(lines)-1] {
		f := strings.Fields(l)
		if len(f) > 5 && f[0] == conv && f[1] == "ESTAB" && f[4] == "32768" && strings.TrimSpace(lines[i+1]) == mem {
			return true
		}
	}
	return false
}

// TestTopFits24Rows: on an 80x24 terminal (also what top assumes when its
// output is not one) the frame fits and shows the busiest conversation:
// the counters at 0 share a row. The protocol block and one row per
// counter took 27 rows, so the conversations were always cut off. And a
// negative -n is a usage error (it made top panic).
func TestTopFits24Rows(t *testing.T) {
	if _, err := parseTop([]string{"-n", "-1"}); !errors.As(err, new(usageError)) {
		t.Errorf("-n -1: %v, want a usage error", err)
	}
	mounttest.Skip(t)
	p, server := unread32K(t, 8081)
	snap, err := netview.Read(p.A)
	if err != nil {
		t.Fatal(err)
	}
	lines := topScreen(topConfig{mount: p.A, interval: time.Second, convs: 10}, snap, nil, 80, 24)
	screen := strings.Join(lines, "\n")
	name, mem := fmt.Sprintf("tcp/%d", server.N), ""
	for _, c := range snap.Convs { // the mem of the frame's snapshot: the file may have moved on
		if c.Name() == name {
			mem = strings.TrimSpace(c.Mem.Text)
		}
	}
	if len(lines) > 24 || !convLine(screen, name, mem) {
		t.Fatalf("%d rows, want at most 24 with tcp/%d in them:\n%s", len(lines), server.N, screen)
	}
	if !strings.Contains(screen, "at 0: ") {
		t.Errorf("no row for the counters at 0:\n%s", screen)
	}
}

// unread32K mounts a pair of trees and connects them on port, with 32 KiB
// the server's side has not read.
func unread32K(t *testing.T, port int) (*mounttest.Pair, *mounttest.Conv) {
	t.Helper()
	p := mounttest.New(t)
	_, server, client := p.TCP(t, port)
	if _, err := client.Write(bytes.Repeat([]byte("z"), 32<<10)); err != nil {
		t.Fatal(err)
	}
	waitField(t, p.A, "tcp", server.N, "qin", 32<<10)
	return p, server
}
