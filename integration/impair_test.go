package integration

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"sockfs/fs"
	"sockfs/fs/fuse"
)

// readRaw and writeRaw do file I/O with plain system calls. A test that
// serves a FUSE mount from its own process must not use os.Open on it:
// os registers the file with Go's netpoller, and the FUSE POLL and I/O
// requests that follow can deadlock against the process's own server (seen
// in CI as a write stuck in request_wait_answer for ever).
func readRaw(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for tries := 0; err == syscall.EINTR && tries < 100; tries++ { // as os.Open retries
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var out []byte
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

func writeRaw(path string, data []byte) error {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	for tries := 0; err == syscall.EINTR && tries < 100; tries++ { // as os.Open retries
		fd, err = syscall.Open(path, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	_, err = syscall.Write(fd, data)
	return err
}

// mountTree mounts tree over FUSE in a temporary directory.
func mountTree(t *testing.T, tree *fs.Tree) string {
	t.Helper()
	dir := t.TempDir()
	mp, err := fuse.Mount(dir, tree.Root())
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := mp.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

var (
	pingAvg  = regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`)
	pingLoss = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
)

// kernelPing pings sockfs from the kernel side of the namespace and returns
// the average RTT in ms, and the packets sent and received.
func kernelPing(t *testing.T, ns *netns, args ...string) (avg float64, sent, recv int) {
	t.Helper()
	out, _ := ns.run("ping", append([]string{"-n", "-q"}, append(args, "198.18.0.2")...)...)
	m := pingLoss.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping: %s", out)
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ = strconv.Atoi(m[2])
	if a := pingAvg.FindStringSubmatch(out); a != nil {
		avg, _ = strconv.ParseFloat(a[1], 64)
	}
	return avg, sent, recv
}

// The ipifc/N/impair file on the TUN interface, written through FUSE:
// delay 50ms raises the kernel's ping RTT by 50 ms, inbound loss 10% loses
// about a tenth of 1000 pings, off restores the link, and a bad line is
// refused without changing anything.
func TestImpairFileKernelPing(t *testing.T) {
	needRoot(t)
	needTool(t, "ping")
	ns := newNetns(t)
	st := stackInNetns(t, ns, "sfimp0")
	mnt := mountTree(t, fs.New(st, fs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))

	// Find the TUN's ipifc directory by its status.
	var impair string
	for i := 0; i < 4; i++ {
		b, err := readRaw(filepath.Join(mnt, "ipifc", strconv.Itoa(i), "status"))
		if err == nil && strings.HasPrefix(string(b), "device tun") {
			impair = filepath.Join(mnt, "ipifc", strconv.Itoa(i), "impair")
		}
	}
	if impair == "" {
		t.Fatal("no ipifc directory for the TUN device")
	}
	set := func(line string) error { return writeRaw(impair, []byte(line+"\n")) }

	base, _, recv := kernelPing(t, ns, "-c", "5", "-i", "0.05")
	if recv != 5 {
		t.Fatalf("baseline: %d of 5 pings answered", recv)
	}
	if err := set("out delay 50ms"); err != nil {
		t.Fatal(err)
	}
	delayed, _, recv := kernelPing(t, ns, "-c", "5", "-i", "0.05")
	if recv != 5 || delayed-base < 40 || delayed-base > 60 {
		t.Fatalf("delay 50ms: avg rtt %.3f ms (base %.3f), %d/5 answered", delayed, base, recv)
	}
	t.Logf("ping rtt %.3f ms, with delay 50ms %.3f ms", base, delayed)

	if err := set("sideways 50ms"); err == nil {
		t.Fatal("a bad impair line was accepted")
	}
	b, _ := readRaw(impair)
	if !strings.Contains(string(b), "out delay 50ms sent") || !strings.Contains(string(b), "in off sent") {
		t.Fatalf("impair after a bad write:\n%s", b)
	}

	if err := set("off"); err != nil {
		t.Fatal(err)
	}
	if err := set("in loss 10%"); err != nil {
		t.Fatal(err)
	}
	_, sent, recv := kernelPing(t, ns, "-c", "1000", "-i", "0.002", "-W", "1")
	lost := sent - recv
	t.Logf("loss 10%%: %d of %d pings lost", lost, sent)
	if sent != 1000 || lost < 60 || lost > 140 {
		t.Fatalf("loss 10%%: %d of %d pings lost", lost, sent)
	}
	b, _ = readRaw(impair)
	if want := fmt.Sprintf("lost %d ", lost); !strings.Contains(string(b), want) {
		t.Fatalf("impair counters do not show %q:\n%s", want, b)
	}
}
