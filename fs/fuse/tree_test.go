package fuse

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	netfs "sockfs/fs"
)

// sizeTree is a one-file tree, /io, whose handles answer every read in
// full (with a byte pattern) and every write whole, and record the size
// of each call: what one request of the kernel carried.
type sizeTree struct {
	mu     sync.Mutex
	reads  []int
	writes []int
}

// root is the tree: a directory holding only /io.
func (t *sizeTree) root() netfs.Dir { return oneFileDir{streamFile{"io", 0o666, sizeHandle{t}}} }

// oneFileDir is a test tree's root directory holding the one file f.
type oneFileDir struct{ f netfs.Node }

func (oneFileDir) Qid() netfs.Qid       { return netfs.Qid{Type: netfs.QTDir} }
func (oneFileDir) Stat() netfs.Stat     { return netfs.Stat{Name: "/", Mode: fs.ModeDir | 0o555} }
func (d oneFileDir) List() []netfs.Node { return []netfs.Node{d.f} }
func (d oneFileDir) Lookup(name string) (netfs.Node, error) {
	if name != d.f.Stat().Name {
		return nil, syscall.ENOENT
	}
	return d.f, nil
}

// reset forgets the recorded calls (keeping their storage).
func (t *sizeTree) reset() {
	t.mu.Lock()
	t.reads, t.writes = t.reads[:0], t.writes[:0]
	t.mu.Unlock()
}

// streamFile is a test tree's one file: a stream named name whose every
// open returns h.
type streamFile struct {
	name string
	mode fs.FileMode
	h    netfs.Handle
}

func (streamFile) Qid() netfs.Qid { return netfs.Qid{Path: 1} }
func (f streamFile) Stat() netfs.Stat {
	return netfs.Stat{Name: f.name, Mode: f.mode, Stream: true}
}
func (f streamFile) Open(context.Context, netfs.OpenReq) (netfs.Handle, error) {
	return f.h, nil
}

type sizeHandle struct{ t *sizeTree }

func (h sizeHandle) Read(_ context.Context, p []byte, _ int64) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	h.t.mu.Lock()
	h.t.reads = append(h.t.reads, len(p))
	h.t.mu.Unlock()
	return len(p), nil
}

func (h sizeHandle) Write(_ context.Context, p []byte, _ int64) (int, error) {
	h.t.mu.Lock()
	h.t.writes = append(h.t.writes, len(p))
	h.t.mu.Unlock()
	return len(p), nil
}

func (sizeHandle) Poll(ev netfs.Event, _ func()) netfs.Event {
	return ev & (netfs.PollIn | netfs.PollOut)
}
func (sizeHandle) Release() {}

// mountSizeTree mounts a sizeTree and opens its file read-write as a raw
// descriptor; everything is undone at cleanup.
func mountSizeTree(t testing.TB) (*sizeTree, int) {
	t.Helper()
	tree := &sizeTree{reads: make([]int, 0, 1024), writes: make([]int, 0, 1024)}
	return tree, mountOneFile(t, tree.root(), "io")
}

// mountOneFile mounts root and opens its file name read-write as a raw
// descriptor; everything is undone at cleanup.
func mountOneFile(t testing.TB, root netfs.Dir, name string) int {
	t.Helper()
	needFuse(t)
	m, err := Mount(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(filepath.Join(m.Dir, name), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		m.Unmount()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Close(fd)
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
		if data, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(data), " "+m.Dir+" ") {
			t.Errorf("mount %s left behind", m.Dir)
		}
	})
	return fd
}
