//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nsPrefix starts the name of every namespace the harness creates; the
// process id follows, so a later run can tell its own leftovers from a
// live run's.
const nsPrefix = "sfsb-"

// cleanup is the registry of what must go when the harness ends, whether
// normally, by an error or by a signal: the processes it started (killed by
// PID) and the namespaces it created.
var cleanup struct {
	sync.Mutex
	procs map[int]*exec.Cmd
	nss   map[string]bool
	dirs  []string // temporary directories (binaries, mount points)
	seq   int
}

func init() {
	cleanup.procs = make(map[int]*exec.Cmd)
	cleanup.nss = make(map[string]bool)
}

// cleanAll kills every process still registered and deletes every
// namespace; safe to call more than once.
func cleanAll() {
	cleanup.Lock()
	defer cleanup.Unlock()
	for pid, c := range cleanup.procs {
		c.Process.Kill()
		delete(cleanup.procs, pid)
	}
	for ns := range cleanup.nss {
		exec.Command("ip", "netns", "del", ns).Run()
		delete(cleanup.nss, ns)
	}
	for _, d := range cleanup.dirs {
		if strings.HasSuffix(filepath.Base(d), mountSuffix) || strings.Contains(d, mountSuffix) {
			// A mount point a killed daemon may have left mounted: unmount
			// lazily, then remove only if empty (never recurse into a
			// live /net tree).
			exec.Command("umount", "-l", d).Run()
			os.Remove(d)
			continue
		}
		os.RemoveAll(d)
	}
	cleanup.dirs = nil
}

// mountSuffix marks temporary directories used as mount points.
const mountSuffix = "-mnt"

// tempDir makes a temporary directory that cleanAll removes.
func tempDir(pattern string) (string, error) {
	d, err := os.MkdirTemp("", pattern)
	if err == nil {
		cleanup.Lock()
		cleanup.dirs = append(cleanup.dirs, d)
		cleanup.Unlock()
	}
	return d, err
}

// removeStale deletes namespaces left by earlier harness runs whose process
// is gone (a SIGKILLed run cannot clean up after itself).
func removeStale() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}

// netns is one namespace made by the harness.
type netns struct{ name string }

// newNetns creates a namespace with lo up, IPv6 off (no router
// solicitations on the TUN) and a wide ephemeral port range (the
// connection benchmarks open tens of thousands of connections).
func newNetns() (*netns, error) { return newNetnsV6(false) }

// newNetnsV6 is newNetns with IPv6 left on if v6 (the IPv6 rows).
func newNetnsV6(v6 bool) (*netns, error) {
	cleanup.Lock()
	cleanup.seq++
	name := fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), cleanup.seq)
	cleanup.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	cleanup.Lock()
	cleanup.nss[name] = true
	cleanup.Unlock()
	ns := &netns{name}
	off := "1"
	if v6 {
		off = "0"
	}
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=" + off},
		{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=" + off},
		{"sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"},
		{"sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"},
	} {
		if err := ns.run(c...); err != nil {
			ns.del()
			return nil, err
		}
	}
	return ns, nil
}

func (ns *netns) del() {
	exec.Command("ip", "netns", "del", ns.name).Run()
	cleanup.Lock()
	delete(cleanup.nss, ns.name)
	cleanup.Unlock()
}

// cmd runs a program inside the namespace. nsenter (unlike ip netns exec)
// execs the program in place, so the PID the harness sees is the
// program's, and it keeps the mount namespace (FUSE mounts stay visible).
func (ns *netns) cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns.name, "--", name}, args...)...)
}

func (ns *netns) run(args ...string) error {
	if out, err := ns.cmd(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// do runs f on an OS thread that has entered the namespace, so the sockets
// f creates belong to it (a socket keeps its namespace for life, so they
// may be used from any goroutine afterwards). The thread is never unlocked:
// it exits with the goroutine, and the namespace cannot leak elsewhere.
func (ns *netns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// proc is a peer program running in a namespace.
type proc struct {
	name   string // the program's base name
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line
	stderr *bytes.Buffer
	done   chan error
	once   sync.Once // stop
}

// startPeer starts bin in ns and waits up to 30 s for it to print "ready".
func startPeer(ns *netns, bin string, args ...string) (*proc, error) {
	p := &proc{name: filepath.Base(bin), cmd: ns.cmd(bin, args...), stderr: new(bytes.Buffer), lines: make(chan string, 16), done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	cleanup.Lock()
	cleanup.procs[p.cmd.Process.Pid] = p.cmd
	cleanup.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- p.cmd.Wait()
	}()
	line, err := p.line(30 * time.Second)
	if err != nil || line != "ready" {
		p.stop()
		return nil, fmt.Errorf("%s did not start (%q, %v): %s", filepath.Base(bin), line, err, p.stderr)
	}
	return p, nil
}

// line returns the next line of the peer's stdout.
func (p *proc) line(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", fmt.Errorf("peer exited: %s", p.stderr)
		}
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no output from peer in %v", timeout)
	}
}

// explain adds to a failed run's err what the peer printed, which says
// why: it may have exited (a failed open once ended the files peer and
// reset its calls). It stops the peer first, so that its output is
// complete. A nil err is returned as is.
func (p *proc) explain(err error) error {
	if err == nil {
		return nil
	}
	p.stop()
	if msg := strings.TrimSpace(p.stderr.String()); msg != "" {
		return fmt.Errorf("%w (%s peer: %s)", err, p.name, msg)
	}
	return err
}

// stop waits up to 5 s for the peer to exit by itself (after "quit"),
// then kills it by PID. Calls after the first do nothing.
func (p *proc) stop() {
	p.once.Do(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				// Unkillable: stuck in a file server's request (the
				// daemon, stopped after us, ends it).
				logf("peer %d ignores SIGKILL; going on", p.cmd.Process.Pid)
			}
		}
		cleanup.Lock()
		delete(cleanup.procs, p.cmd.Process.Pid)
		cleanup.Unlock()
	})
}
