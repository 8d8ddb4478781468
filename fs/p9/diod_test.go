package p9

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// syncBuffer is a bytes.Buffer written by exec's copying goroutine and
// read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func needDiod(t *testing.T) {
	t.Helper()
	for _, b := range []string{"diodls", "diodcat"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (Debian package diod): %v", b, err)
		}
	}
}

func diod(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestDiodClients: Debian's diodls and diodcat get past Tauth, attach
// (aname "/" or a directory), list and read.
func TestDiodClients(t *testing.T) {
	needDiod(t)
	e := newEnv(t)
	out := diod(t, "diodls", "-s", e.addr, "-a", "/")
	for _, want := range []string{"tcp", "udp", "sys", "iproute"} {
		if !strings.Contains("\n"+out, "\n"+want+"\n") {
			t.Errorf("diodls / = %q, lacks %s", out, want)
		}
	}
	// -l walks each entry from the directory fid it opened (9P2000.L
	// allows it): a long listing line per entry, no npc_walk error (the
	// output of the error also names tcp_rmem, which the old check took).
	if out := diod(t, "diodls", "-s", e.addr, "-a", "/sys/ipv4", "-l"); strings.Contains(out, "npc_walk") ||
		!regexp.MustCompile(`(?m)^-\S+ .* tcp_rmem$`).MatchString(out) {
		t.Errorf("diodls -l /sys/ipv4 = %q, want a long listing line for tcp_rmem", out)
	}
	out = diod(t, "diodcat", "-s", e.addr, "-a", "/", "sys/ipv4/tcp_rmem")
	if !strings.HasPrefix(out, "4096\t131072\t") {
		t.Errorf("diodcat tcp_rmem = %q", out)
	}
	out = diod(t, "diodcat", "-s", e.addr, "-m", "1048576", "-a", "/sys", "ipv4/tcp_wmem")
	if !strings.HasPrefix(out, "4096\t") {
		t.Errorf("diodcat -m 1M tcp_wmem = %q", out)
	}
}

// TestDiodcatKilledWhileReading: diodcat streams a UDP data file; killed
// while its read is blocked, it takes nothing with it: the next datagram
// goes to the next reader.
func TestDiodcatKilledWhileReading(t *testing.T) {
	needDiod(t)
	e := newEnv(t)
	c, root := e.client(t, 0)
	ctl := openP9(t, root, "udp/clone", p9.ReadWrite)
	defer ctl.Close()
	n := readAll(t, ctl)
	if _, err := ctl.WriteAt([]byte("announce 7100"), 0); err != nil {
		t.Fatal(err)
	}
	bctl := local(t, e.tb, "udp/clone")
	write(t, bctl, "connect 198.18.0.1!7100")
	bdata := local(t, e.tb, "udp/"+readNum(t, bctl)+"/data")

	var out syncBuffer
	cmd := exec.Command("diodcat", "-s", e.addr, "-a", "/", "udp/"+n+"/data")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	write(t, bdata, "one datagram")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "one datagram") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "one datagram") {
		t.Fatalf("diodcat printed %q", out.String())
	}
	time.Sleep(200 * time.Millisecond) // diodcat is blocked in its next read
	cmd.Process.Kill()
	cmd.Wait()
	waited = true
	time.Sleep(100 * time.Millisecond)

	write(t, bdata, "for the next reader")
	data := openP9(t, root, "udp/"+n+"/data", p9.ReadOnly)
	defer data.Close()
	if got := readFull(t, c, data, len("for the next reader")); got != "for the next reader" {
		t.Fatalf("next reader got %q", got)
	}
}
