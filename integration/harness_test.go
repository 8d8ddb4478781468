// Package integration holds end-to-end tests: sockfs on a real TUN device
// inside a network namespace the test creates, with the Linux kernel's own
// stack and tools (ping, socat, curl, python3) as the peer. They need root;
// `make test` installs the Debian tools they use. Every namespace, process
// and device a test starts is removed when it ends.
package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binaries sockfsBin and sockfsBinPlain built (one
// temporary directory each per run).
func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range []string{binPath, plainBin} {
		if p != "" {
			os.RemoveAll(filepath.Dir(p))
		}
	}
	os.Exit(code)
}

// sockfsBin builds cmd/sockfs once per test run.
func sockfsBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sockfs-it-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sockfs")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, "../cmd/sockfs").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces and TUN devices)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
}

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (make test installs it)", name)
	}
}

// netns is a network namespace made for one test.
type netns struct {
	t    testing.TB
	name string
}

var nsSeq struct {
	sync.Mutex
	n int
}

// newNetns creates a fresh namespace with lo up and deletes it at cleanup.
func newNetns(t testing.TB) *netns {
	t.Helper()
	nsSeq.Lock()
	nsSeq.n++
	name := fmt.Sprintf("sockfs-it-%d-%d", os.Getpid(), nsSeq.n)
	nsSeq.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	ns := &netns{t: t, name: name}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns.mustRun("ip", "link", "set", "lo", "up")
	return ns
}

// cmd returns a command that runs inside the namespace. nsenter (unlike
// `ip netns exec`) does not make a new mount namespace, so FUSE mounts made
// inside stay visible outside.
func (ns *netns) cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns.name, "--", name}, args...)...)
}

// run runs a command in the namespace and returns its combined output.
func (ns *netns) run(name string, args ...string) (string, error) {
	out, err := ns.cmd(name, args...).CombinedOutput()
	return string(out), err
}

func (ns *netns) mustRun(name string, args ...string) string {
	ns.t.Helper()
	out, err := ns.run(name, args...)
	if err != nil {
		ns.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// daemon is a `sockfs serve` started by a test.
type daemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startServe runs `sockfs serve` in ns with extra flags and waits until the
// TUN device is up and the stack answers a ping. FUSE and 9P are off unless
// flags turn them on (later flags win), so a test never touches the default
// /mnt/sockfs or 127.0.0.1:5640 of a daemon the developer may be running.
func startServe(t *testing.T, ns *netns, tunName string, flags ...string) *daemon {
	t.Helper()
	d := &daemon{stderr: new(bytes.Buffer), done: make(chan error, 1)}
	args := append([]string{"serve", "--tun", tunName, "--mount", "", "--9p", ""}, flags...)
	d.cmd = ns.cmd(sockfsBin(t), args...)
	d.cmd.Stderr = d.stderr
	d.cmd.Stdout = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := ns.run("ping", "-c", "1", "-W", "1", "198.18.0.2"); err == nil {
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("sockfs serve exited: %v\n%s", err, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sockfs serve did not come up\n%s", d.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the daemon (SIGKILL after 10 s).
func (d *daemon) stop(t *testing.T) error {
	if d.cmd.Process == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		t.Errorf("sockfs serve ignored SIGTERM\n%s", d.stderr)
		return <-d.done
	}
}
