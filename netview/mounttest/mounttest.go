// Package mounttest builds real sockfs mounts for the tests of the tools
// that read the files (netview, sockfs ss/top/trace): two in-process stacks
// joined by an in-memory link, each tree mounted over FUSE in a temporary
// directory, with conversations made through the files (clone, ctl,
// listen), as a user would.
package mounttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	netfs "sockfs/fs"
	"sockfs/fs/fuse"
	"sockfs/netstack"

	"sockfs/netstack/stacktest"
)

// Pair is stack A (198.18.0.1, mounted at A) and stack B (198.18.0.2, at
// B) on one pipe.
type Pair struct {
	A, B   string
	SA, SB *netstack.Stack
}

// Skip skips t unless FUSE mounts can be made (root, /dev/fuse,
// fusermount3).
func Skip(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for FUSE mounts")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3 (Debian package fuse3)")
	}
}

// New mounts the pair; t.Cleanup unmounts and closes the stacks.
func New(t testing.TB) *Pair {
	t.Helper()
	Skip(t)
	sa, sb := stacktest.Pair(t)
	p := &Pair{A: t.TempDir(), B: t.TempDir(), SA: sa, SB: sb}
	ma, err := fuse.Mount(p.A, netfs.New(sa, netfs.Options{}).Root())
	if err != nil {
		t.Fatal(err)
	}
	mb, err := fuse.Mount(p.B, netfs.New(sb, netfs.Options{}).Root())
	if err != nil {
		ma.Unmount()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ma.Unmount(); err != nil {
			t.Error(err)
		}
		if err := mb.Unmount(); err != nil {
			t.Error(err)
		}
		if data, _ := os.ReadFile("/proc/mounts"); bytes.Contains(data, []byte(p.A)) || bytes.Contains(data, []byte(p.B)) {
			t.Errorf("mount left behind:\n%s", data)
		}
	})
	return p
}

// Conv is a conversation made through the files; its ctl (and data, once
// opened) stay open until the test ends. The descriptors are raw (not
// os.File) so that Go's network poller never polls a file of a mount this
// process serves (see netview.readText).
type Conv struct {
	Mount string
	Proto string
	N     int
	Ctl   int // fd
	Data  int // fd, -1 until OpenData
}

// Dir is the conversation's directory.
func (c *Conv) Dir() string { return filepath.Join(c.Mount, c.Proto, strconv.Itoa(c.N)) }

// File reads one of the conversation's files.
func (c *Conv) File(t testing.TB, name string) string {
	t.Helper()
	fd, err := syscall.Open(filepath.Join(c.Dir(), name), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for tries := 0; err == syscall.EINTR && tries < 100; tries++ { // as os.Open retries
		fd, err = syscall.Open(filepath.Join(c.Dir(), name), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		t.Fatalf("open %s/%s: %v", c.Dir(), name, err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		t.Fatalf("read %s/%s: %v", c.Dir(), name, err)
	}
	return string(buf[:n])
}

// openFd opens path read-write with a raw descriptor closed at cleanup.
func openFd(t testing.TB, path string) (int, error) {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	for tries := 0; err == syscall.EINTR && tries < 100; tries++ { // as os.Open retries
		fd, err = syscall.Open(path, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, err
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return fd, nil
}

// readNum reads a conversation number from a ctl descriptor.
func readNum(fd int) (int, error) {
	buf := make([]byte, 32)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(buf[:n])))
}

// Clone opens mount/proto/clone.
func Clone(t testing.TB, mount, proto string) *Conv {
	t.Helper()
	path := filepath.Join(mount, proto, "clone")
	fd, err := openFd(t, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	n, err := readNum(fd)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return &Conv{Mount: mount, Proto: proto, N: n, Ctl: fd, Data: -1}
}

// Cmd writes one ctl command.
func (c *Conv) Cmd(t testing.TB, cmd string) {
	t.Helper()
	if _, err := syscall.Write(c.Ctl, []byte(cmd)); err != nil {
		t.Fatalf("%s ctl %q: %v", c.Dir(), cmd, err)
	}
}

// OpenData opens the data file for reading and writing.
func (c *Conv) OpenData(t testing.TB) int {
	t.Helper()
	fd, err := openFd(t, filepath.Join(c.Dir(), "data"))
	if err != nil {
		t.Fatalf("open %s/data: %v", c.Dir(), err)
	}
	c.Data = fd
	return fd
}

// Write writes p to the data file; it may block while the send buffer is
// full, so tests write no more than the peer can take.
func (c *Conv) Write(p []byte) (int, error) { return syscall.Write(c.Data, p) }

// TCP makes a connection from B to A's port: A announces (the listener),
// B connects, and A's listen gives the accepted conversation. It returns
// A's listener, A's accepted conversation and B's client, data files open.
func (p *Pair) TCP(t testing.TB, port int) (listener, server, client *Conv) {
	t.Helper()
	listener = Clone(t, p.A, "tcp")
	listener.Cmd(t, "announce "+strconv.Itoa(port))
	type res struct {
		fd, n int
		err   error
	}
	ch := make(chan res, 1)
	go func() {
		fd, err := syscall.Open(filepath.Join(listener.Dir(), "listen"), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		for tries := 0; err == syscall.EINTR && tries < 100; tries++ { // as os.Open retries
			fd, err = syscall.Open(filepath.Join(listener.Dir(), "listen"), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		}
		if err != nil {
			ch <- res{err: err}
			return
		}
		n, err := readNum(fd)
		ch <- res{fd: fd, n: n, err: err}
	}()
	client = Clone(t, p.B, "tcp")
	client.Cmd(t, "connect 198.18.0.1!"+strconv.Itoa(port))
	select {
	case r := <-ch:
		if r.fd > 0 {
			t.Cleanup(func() { syscall.Close(r.fd) })
		}
		if r.err != nil {
			t.Fatalf("listen: %v", r.err)
		}
		server = &Conv{Mount: p.A, Proto: "tcp", N: r.n, Ctl: r.fd, Data: -1}
	case <-time.After(10 * time.Second):
		t.Fatal("listen: no call within 10s")
	}
	server.OpenData(t)
	client.OpenData(t)
	return listener, server, client
}
