package fuse

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The signal watch on a real process: a stopped python3 (which therefore
// cannot take its signals) is watched as if it were blocked in a FUSE
// request. Nothing pending, or only a signal it blocks: the call goes on.
// A signal it handles, pending: the call is cancelled within a few polls,
// as a dropped INTERRUPT should have cancelled it.
func TestWatchSignalsPendingSignal(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	cmd := exec.Command(py, "-c", `
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda *a: None)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
print("ready", flush=True)
time.sleep(30)
`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("child said %q", line)
	}
	pid := cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, pid)

	// A request of that thread, in flight for longer than signalPoll.
	s := newServer(-1, nil)
	c := new(reqCtx)
	c.reset(7, uint32(pid))
	c.start = time.Now().Add(-2 * signalPoll)
	s.inflight[7] = c
	idle := new(reqCtx)
	idle.reset(8, 0) // a request the kernel makes itself: never watched
	idle.start = c.start
	s.inflight[8] = idle

	syscall.Kill(pid, syscall.SIGUSR2) // blocked: does not interrupt
	time.Sleep(signalPoll)
	s.checkSignals(time.Now())
	if c.Err() != nil {
		t.Fatal("cancelled with nothing but a blocked signal pending")
	}
	syscall.Kill(pid, syscall.SIGUSR1)
	deadline := time.Now().Add(10 * signalPoll)
	for c.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(signalPoll / 4)
		s.checkSignals(time.Now())
	}
	if c.Err() == nil {
		t.Fatal("a pending SIGUSR1 did not cancel the watched call")
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after cancel")
	}
	if idle.Err() != nil {
		t.Fatal("tid 0 was watched")
	}
	// A young request is not looked at yet.
	young := new(reqCtx)
	young.reset(9, uint32(pid))
	s.inflight[9] = young
	s.checkSignals(time.Now())
	if young.Err() != nil {
		t.Fatal("a request younger than signalPoll was cancelled")
	}
}

func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		// The third field of /proc/PID/stat is T once the stop took effect.
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if f := strings.Fields(string(b)); err == nil && len(f) > 2 && f[2] == "T" {
			return
		}
	}
	t.Fatal("child did not stop")
}
