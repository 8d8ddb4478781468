package fuse

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	netfs "sockfs/fs"
	"sockfs/skb"
)

// pageSink is a one-file tree, /io, whose handle splices as a TCP
// conversation's data does: WritePages takes a reference to each page
// holding the data, as a send queue's skbs do until the peer acknowledges
// it, and keeps it until release; Write records a copy.
type pageSink struct {
	splices atomic.Bool
	// lean: WritePages records nothing and keeps only the last call's
	// pages (the previous call's data counts as acknowledged).
	lean bool

	mu      sync.Mutex
	held    []*skb.Page // referenced, as by queued skbs
	heldAt  [][]byte    // what each held page held when it was taken
	paged   [][]byte    // the data of each WritePages
	written [][]byte    // the data of each Write
}

func (s *pageSink) root() netfs.Dir { return oneFileDir{streamFile{"io", 0o666, pageSinkHandle{s}}} }

// release drops the references WritePages took, as the acknowledgement
// of the data frees its skbs.
func (s *pageSink) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pg := range s.held {
		pg.Put()
	}
	s.held, s.heldAt = s.held[:0], s.heldAt[:0]
}

type pageSinkHandle struct{ s *pageSink }

func (pageSinkHandle) Read(context.Context, []byte, int64) (int, error) { return 0, nil }
func (h pageSinkHandle) Write(_ context.Context, p []byte, _ int64) (int, error) {
	h.s.mu.Lock()
	h.s.written = append(h.s.written, bytes.Clone(p))
	h.s.mu.Unlock()
	return len(p), nil
}
func (pageSinkHandle) Poll(ev netfs.Event, _ func()) netfs.Event { return ev }
func (pageSinkHandle) Release()                                  {}
func (h pageSinkHandle) Splices() bool                           { return h.s.splices.Load() }
func (pageSinkHandle) ReadTo(context.Context, int, [][]byte, netfs.RecvActor) (int, error) {
	return 0, nil
}

func (h pageSinkHandle) WritePages(_ context.Context, pages []*skb.Page, off, n int) (int, error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lean {
		for _, pg := range s.held {
			pg.Put()
		}
		s.held = s.held[:0]
		for i := off / skb.PageFragSize; i*skb.PageFragSize < off+n; i++ {
			pages[i].Get()
			s.held = append(s.held, pages[i])
		}
		return n, nil
	}
	var data []byte
	for i := off / skb.PageFragSize; i*skb.PageFragSize < off+n; i++ {
		pg := pages[i]
		pg.Get()
		s.held = append(s.held, pg)
		s.heldAt = append(s.heldAt, bytes.Clone(pg.Buf))
		lo, hi := max(off-i*skb.PageFragSize, 0), min(off+n-i*skb.PageFragSize, skb.PageFragSize)
		data = append(data, pg.Buf[lo:hi]...)
	}
	s.paged = append(s.paged, data)
	return n, nil
}

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i>>8) ^ byte(i)*seed
	}
	return p
}

// TestWritePages: a WRITE of more than a page to a splicing file (a TCP
// conversation's data) reaches it as the pages the request was read into
// (WritePages), and the reader reads its next requests into other pages
// while the file still references those: what a send queue holds is never
// overwritten by the next request. A write of a page or less, and any
// write to a file that does not splice, arrive whole through Write.
func TestWritePages(t *testing.T) {
	sink := &pageSink{}
	sink.splices.Store(true)
	fd := mountOneFile(t, sink.root(), "io")
	defer sink.release()
	write := func(p []byte) {
		t.Helper()
		if n, err := syscall.Write(fd, p); n != len(p) || err != nil {
			t.Fatalf("write of %d bytes: %d, %v", len(p), n, err)
		}
	}
	// More writes than the readers have request buffers, so that the
	// buffers come round again while the file holds their pages.
	var large [][]byte
	for i := range 2 * (maxIdle + reqPagesFree.max) {
		large = append(large, pattern(1<<20-i*5000, byte(2*i+3)))
		write(large[i])
	}
	c := pattern(100000, 7)
	write(c)
	large = append(large, c)
	small := pattern(1000, 9)
	write(small)
	check := func(f func()) {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		f()
	}
	check(func() {
		if len(sink.paged) != len(large) {
			t.Fatalf("WritePages got %d writes, want the %d larger than a page", len(sink.paged), len(large))
		}
		for i, p := range large {
			if !bytes.Equal(sink.paged[i], p) {
				t.Fatalf("WritePages' write %d is not the %d bytes written, in order", i, len(p))
			}
		}
		for i, pg := range sink.held {
			if !bytes.Equal(pg.Buf, sink.heldAt[i]) {
				t.Fatalf("held page %d (of %d) was written over while referenced: a later request was read into it", i, len(sink.held))
			}
		}
		if len(sink.written) != 1 || !bytes.Equal(sink.written[0], small) {
			t.Fatalf("Write got %d writes, want the one of 1000 bytes", len(sink.written))
		}
		sink.written = sink.written[:0]
		sink.splices.Store(false)
	})

	write(c)
	check(func() {
		if len(sink.paged) != len(large) || len(sink.written) != 1 || !bytes.Equal(sink.written[0], c) {
			t.Fatalf("a file that does not splice: %d WritePages, %d Writes; want its write whole through Write", len(sink.paged)-len(large), len(sink.written))
		}
	})
}
