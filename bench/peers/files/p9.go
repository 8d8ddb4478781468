package main

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// p9FS is the tree over one 9P2000.L connection (hugelgupf/p9 client);
// concurrent requests share it, each with its own tag.
type p9FS struct{ root p9.File }

func (p9FS) ioSize() int { return maxIO }

func dial9P(addr string) (p9FS, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return p9FS{}, err
	}
	// A daemon that accepts but does not answer must not hang the peer.
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := p9.NewClient(conn, p9.WithMessageSize(maxIO+4096))
	if err != nil {
		conn.Close()
		return p9FS{}, fmt.Errorf("9P version: %w", err)
	}
	root, err := c.Attach("/")
	if err != nil {
		conn.Close()
		return p9FS{}, fmt.Errorf("9P attach: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return p9FS{root}, nil
}

func (f p9FS) open(path ...string) (handle, error) {
	_, file, err := f.root.Walk(path)
	if err != nil {
		return nil, fmt.Errorf("9P walk %v: %w", path, err)
	}
	if _, _, err := file.Open(p9.ReadWrite); err != nil {
		file.Close()
		return nil, fmt.Errorf("9P open %v: %w", path, err)
	}
	return &p9Handle{f: file}, nil
}

// p9Handle reads and writes at a running offset, as a kernel client
// would; the stream files ignore it.
type p9Handle struct {
	f      p9.File
	mu     sync.Mutex
	rd, wr int64
}

func (h *p9Handle) Read(p []byte) (int, error) {
	h.mu.Lock()
	off := h.rd
	h.mu.Unlock()
	n, err := h.f.ReadAt(p, off)
	h.mu.Lock()
	h.rd += int64(n)
	h.mu.Unlock()
	return n, err
}

func (h *p9Handle) Write(p []byte) (int, error) {
	h.mu.Lock()
	off := h.wr
	h.mu.Unlock()
	n, err := h.f.WriteAt(p, off)
	h.mu.Lock()
	h.wr += int64(n)
	h.mu.Unlock()
	return n, err
}

func (h *p9Handle) Close() error { return h.f.Close() }
