package fs

import (
	"context"
	"io/fs"
	"sync"
	"syscall"
)

// dirNode is a directory whose entries come from functions, so listings are
// always current.
type dirNode struct {
	qid  Qid
	stat Stat
	list func() []Node
	// lookup, if set, finds an entry without listing (optional).
	lookup func(name string) (Node, error)
}

func newDir(path uint64, name string, list func() []Node) *dirNode {
	return &dirNode{
		qid:  Qid{Path: path, Type: QTDir},
		stat: Stat{Name: name, Mode: fs.ModeDir | 0555},
		list: list,
	}
}

func (d *dirNode) Qid() Qid     { return d.qid }
func (d *dirNode) Stat() Stat   { return d.stat }
func (d *dirNode) List() []Node { return d.list() }

func (d *dirNode) Lookup(name string) (Node, error) {
	if d.lookup != nil {
		return d.lookup(name)
	}
	for _, n := range d.list() {
		if n.Stat().Name == name {
			return n, nil
		}
	}
	return nil, syscall.ENOENT
}

// staticList returns a list function over a fixed slice.
func staticList(nodes ...Node) func() []Node {
	return func() []Node { return nodes }
}

// textFile is a file whose content is generated text (read honours the
// offset, Plan 9's readstr) and whose write, if any, takes one whole value
// per write(2) call, ignoring the offset (so `echo v > f` and `>>` work).
type textFile struct {
	qid   Qid
	stat  Stat
	read  func() string
	write func(ctx context.Context, text string) error
	// writeAt, if set, replaces write: it sees the offset and returns the
	// count consumed, which may be short (sysctl files).
	writeAt func(ctx context.Context, text string, off int64) (int, error)
	// writePos, if set, replaces write and writeAt for files whose own
	// position after a write is not the kernel's (sysctls: Linux's
	// unsigned handlers leave it at 0): it returns the count consumed and
	// the position the handle's next sequential write starts from.
	writePos func(ctx context.Context, text string, off int64) (int, int64, error)
	// endAtOffset makes a read at a non-zero position end of file (a
	// numeric sysctl's, as Linux's handlers answer a read with *ppos set).
	endAtOffset bool
}

func newText(path uint64, name string, mode fs.FileMode, read func() string, write func(context.Context, string) error) *textFile {
	return &textFile{
		qid:   Qid{Path: path, Type: QTFile},
		stat:  Stat{Name: name, Mode: mode},
		read:  read,
		write: write,
	}
}

func (f *textFile) Qid() Qid   { return f.qid }
func (f *textFile) Stat() Stat { return f.stat }

func (f *textFile) Open(ctx context.Context, req OpenReq) (Handle, error) {
	if req.Writable() && f.write == nil && f.writeAt == nil && f.writePos == nil {
		return nil, syscall.EACCES
	}
	if req.Readable() && f.read == nil {
		return nil, syscall.EACCES
	}
	if req.Writable() && req.Uid != 0 && f.stat.Mode&0002 == 0 && !(f.stat.Mode&0200 != 0 && req.Uid == f.stat.Uid) {
		return nil, syscall.EACCES
	}
	return &textHandle{f: f}, nil
}

// textHandle snapshots the text at the first read and at every read at
// offset 0, so a reader going through the file in several reads sees one
// consistent text.
type textHandle struct {
	baseHandle
	f    *textFile
	mu   sync.Mutex
	text string
	have bool
	// For writePos: whether the handle has written, where the kernel's
	// (or a 9P client's) position is after the last write, and where the
	// file's own is.
	wrote      bool
	clientNext int64
	pos        int64
}

func (h *textHandle) Read(_ context.Context, p []byte, off int64) (int, error) {
	if h.f.read == nil {
		return 0, syscall.EBADF
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if off != 0 && h.f.endAtOffset {
		return 0, nil
	}
	if !h.have || off == 0 {
		h.text, h.have = h.f.read(), true
	}
	return readAt(h.text, p, off), nil
}

func (h *textHandle) Write(ctx context.Context, p []byte, off int64) (int, error) {
	if h.f.writePos != nil {
		// A write where the last one left the client's position (no seek
		// between) starts where it left the file's own.
		h.mu.Lock()
		defer h.mu.Unlock()
		pos := off
		if h.wrote && off == h.clientNext {
			pos = h.pos
		}
		n, next, err := h.f.writePos(ctx, string(p), pos)
		h.wrote, h.clientNext, h.pos = true, off+int64(n), next
		return n, err
	}
	if h.f.writeAt != nil {
		return h.f.writeAt(ctx, string(p), off)
	}
	if h.f.write == nil {
		return 0, syscall.EBADF
	}
	if err := h.f.write(ctx, string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
