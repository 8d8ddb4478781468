package fuse

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watchSignals on a real process: a stopped python3 (which therefore
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

	ctx, stop := watchSignals(context.Background(), uint32(pid))
	defer stop()
	syscall.Kill(pid, syscall.SIGUSR2) // blocked: does not interrupt
	select {
	case <-ctx.Done():
		t.Fatal("cancelled with nothing but a blocked signal pending")
	case <-time.After(3 * signalPoll):
	}
	syscall.Kill(pid, syscall.SIGUSR1)
	select {
	case <-ctx.Done():
	case <-time.After(10 * signalPoll):
		t.Fatal("a pending SIGUSR1 did not cancel the watched call")
	}

	// stop ends the watch; tid 0 is never watched.
	ctx0, stop0 := watchSignals(context.Background(), 0)
	stop0()
	if ctx0.Err() != nil {
		t.Fatal("tid 0 was watched")
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
