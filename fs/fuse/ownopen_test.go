package fuse

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	netfs "sockfs/fs"
	"sockfs/netstack"
	"sockfs/netstack/stacktest"
)

// watchdog is a child process that aborts the FUSE connection of a mount
// through fusectl if it is not stopped within d: a deadlocked test
// process cannot time itself out (every goroutine waits for the stopped
// world), so something outside it has to break the deadlock, after
// which the test sees its requests fail and reports it.
type watchdog struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
}

func startWatchdog(t *testing.T, dir string, d time.Duration) *watchdog {
	t.Helper()
	conns := "/sys/fs/fuse/connections"
	if ents, _ := os.ReadDir(conns); len(ents) == 0 {
		// fusectl is not mounted yet (the kernel creates the directory).
		exec.Command("mount", "-t", "fusectl", "fusectl", conns).Run()
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	abort := fmt.Sprintf("%s/%d/abort", conns, unix.Minor(st.Dev))
	if _, err := os.Stat(abort); err != nil {
		t.Fatalf("no fusectl entry for %s: %v", dir, err)
	}
	w := &watchdog{done: make(chan struct{})}
	// Only while this process lives: a later mount may get the number.
	w.cmd = exec.Command("sh", "-c", fmt.Sprintf("sleep %d; kill -0 %d && echo 1 > %s && echo aborted", int(d.Seconds()), os.Getpid(), abort))
	w.cmd.Stdout = &w.out
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.cmd.Wait(); close(w.done) }()
	t.Cleanup(w.stop)
	return w
}

// fired reports whether the watchdog aborted the connection.
func (w *watchdog) fired() bool {
	select {
	case <-w.done:
		return strings.Contains(w.out.String(), "aborted")
	default:
		return false
	}
}

func (w *watchdog) stop() {
	select {
	case <-w.done:
	default:
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL) // sh and its sleep
		<-w.done
	}
}

// TestOwnProcessOpensUnderLoad: the serving process itself opens, reads,
// writes and closes files on its own mount, over and over, with
// os.OpenFile and os.ReadFile (so the Go runtime registers every file
// with its netpoller, which sends the kernel's POLL to this very
// server), from 8 goroutines, while another forces garbage collections
// (stops of the world) back to back and a bash subprocess reads the
// mount in a loop. Some goroutines receive UDP datagrams through data
// with the runtime's non-blocking read and netpoller (the wake-up comes
// as NOTIFY_POLL). Without ownpoll.go this deadlocked the process (a
// thread in epoll_ctl -> fuse_file_poll holding its P, the world
// stopping); a watchdog process aborts the connection after 60 s so the
// test fails instead of hanging.
func TestOwnProcessOpensUnderLoad(t *testing.T) {
	needFuse(t)
	sa, sb := stacktest.Pair(t)
	m, err := Mount(t.TempDir(), netfs.New(sa, netfs.Options{}).Root())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmount() })
	wd := startWatchdog(t, m.Dir, 60*time.Second)

	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // back-to-back stops of the world
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	reader := exec.Command("bash", "-c", `for i in $(seq 2000); do cat "$1"/sys/ipv4/tcp_rmem "$1"/udp/stats >/dev/null || exit 1; done`, "-", m.Dir)
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}

	const workers, rounds = 8, 150
	deadline := time.Now().Add(20 * time.Second)
	var opens atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds && time.Now().Before(deadline); i++ {
				if err := ownRound(m.Dir, sb, g, i); err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", g, i, err)
					return
				}
				opens.Add(4)
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	reader.Process.Kill()
	reader.Wait()
	if wd.fired() {
		t.Fatalf("deadlock: the watchdog had to abort the FUSE connection (%d opens done)", opens.Load())
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d in-process opens on the own mount", opens.Load())
	if opens.Load() < 400 {
		t.Errorf("only %d opens in 20 s", opens.Load())
	}
}

// ownRound is one round of a worker: a sysctl file read whole, a UDP
// conversation cloned and announced, its data file opened; every second
// round a datagram from the other stack is read through data with the
// runtime's netpoller.
func ownRound(dir string, sb *netstack.Stack, g, i int) error {
	b, err := os.ReadFile(filepath.Join(dir, "sys/ipv4/tcp_rmem"))
	if err != nil || len(b) == 0 {
		return fmt.Errorf("tcp_rmem: %q, %v", b, err)
	}
	ctl, err := os.OpenFile(filepath.Join(dir, "udp", "clone"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer ctl.Close()
	nb := make([]byte, 16)
	k, err := ctl.Read(nb)
	if err != nil {
		return fmt.Errorf("clone: %v", err)
	}
	port := 7100 + g*1000 + i
	if _, err := ctl.WriteString(fmt.Sprintf("announce %d", port)); err != nil {
		return fmt.Errorf("announce %d: %v", port, err)
	}
	data, err := os.OpenFile(filepath.Join(dir, "udp", string(nb[:k]), "data"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer data.Close()
	if i%2 == 1 {
		return nil
	}
	msg := fmt.Sprintf("w%d r%d", g, i)
	go func() {
		time.Sleep(time.Millisecond)
		c, err := sb.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(port)))
		if err == nil {
			c.Write([]byte(msg))
			c.Close()
		}
	}()
	data.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 64)
	n, err := data.Read(got)
	if err != nil || string(got[:n]) != msg {
		return fmt.Errorf("data read: %q, %v (want %q)", got[:n], err, msg)
	}
	return nil
}

// TestGrowPipeWithoutCapSysResource: the sentinel's pipe gets room for a
// whole WRITE request with CAP_SYS_RESOURCE, and pipe-max-size (the most
// the kernel grants) on a thread without it, where asking for the whole
// request is refused (EPERM), as for root in a user namespace or in a
// sandbox that withholds the capability (this machine's does: there the
// pipe had stayed at its 64 KiB before growPipe).
func TestGrowPipeWithoutCapSysResource(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: drops CAP_SYS_RESOURCE on a thread of its own")
	}
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err != nil {
		t.Fatal(err)
	}
	max, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if max >= reqBufLen {
		t.Skipf("fs.pipe-max-size %d already holds a request of %d", max, reqBufLen)
	}
	pipe := func() (int, func()) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		return p[1], func() { unix.Close(p[0]); unix.Close(p[1]) }
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	const bit = 1 << (unix.CAP_SYS_RESOURCE % 32)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		// Capabilities are a thread's: this goroutine keeps its OS thread
		// and never unlocks it, so the thread goes away with it.
		runtime.LockOSThread()
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			t.Error(err)
			return
		}
		if caps[unix.CAP_SYS_RESOURCE/32].Effective&bit != 0 {
			fd, done := pipe()
			if got, err := growPipe(fd, reqBufLen); err != nil || got < reqBufLen {
				t.Errorf("with CAP_SYS_RESOURCE: pipe of %d bytes, %v; want at least %d", got, err, reqBufLen)
			}
			done()
			caps[unix.CAP_SYS_RESOURCE/32].Effective &^= bit
			if err := unix.Capset(&hdr, &caps[0]); err != nil {
				t.Error(err)
				return
			}
		} else {
			t.Log("this process has no CAP_SYS_RESOURCE")
		}
		fd, done := pipe()
		defer done()
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, reqBufLen); err != unix.EPERM {
			t.Errorf("F_SETPIPE_SZ %d without CAP_SYS_RESOURCE: %v, want EPERM", reqBufLen, err)
		}
		if got, err := growPipe(fd, reqBufLen); err != nil || got != max {
			t.Errorf("without CAP_SYS_RESOURCE: pipe of %d bytes, %v; want pipe-max-size %d", got, err, max)
		}
	}()
	<-finished
}
