//go:build !race

package fuse

import (
	"syscall"
	"testing"

	"sockfs/skb"
)

// TestAllocsFUSERequests: in steady state a READ and a WRITE of 1 MiB
// through the mount allocate nothing in the server (pooled request and
// reply buffers, reused request contexts, readers that serve what they
// read). AllocsPerRun counts every goroutine of the process, the
// server's included. Run without -race by `make test`'s allocation pass.
func TestAllocsFUSERequests(t *testing.T) {
	tree, fd := mountSizeTree(t)
	buf := make([]byte, 1<<20)
	step := func() {
		if n, err := syscall.Read(fd, buf); err != nil || n != len(buf) {
			t.Fatalf("read: %d, %v", n, err)
		}
		if n, err := syscall.Write(fd, buf); err != nil || n != len(buf) {
			t.Fatalf("write: %d, %v", n, err)
		}
		tree.reset()
	}
	for range 50 {
		step()
	}
	// Two requests per run; 0.1 leaves room for a reader goroutine
	// started now and then, not for an allocation per request.
	if a := testing.AllocsPerRun(500, step); a/2 > 0.1 {
		t.Fatalf("%.2f allocations per read+write, want none per request", a)
	}
}

// TestAllocsReadSpliced: a READ of a splicing handle (a TCP conversation's
// data), answered with one writev from the queue's own pieces, allocates
// nothing: the worker keeps its slice and iovec storage. The device is a
// socket pair (spliceDevice's mock of /dev/fuse).
func TestAllocsReadSpliced(t *testing.T) {
	piece := make([]byte, 64<<10)
	var pieces [2][]byte
	q := &queueHandle{}
	_, peer, _, read := spliceDevice(t, q)
	reply := make([]byte, outHeaderLen+len(piece)+1000)
	step := func() {
		// ReadTo reslices what it consumes: queue both pieces afresh.
		pieces[0], pieces[1] = piece, piece[:1000]
		q.pieces = pieces[:]
		read(1, len(piece)+1000)
		if n, err := syscall.Read(peer, reply); err != nil || n != outHeaderLen+len(piece)+1000 {
			t.Fatalf("reply: %d, %v", n, err)
		}
	}
	for range 10 {
		step()
	}
	if a := testing.AllocsPerRun(200, step); a > 0 {
		t.Fatalf("%.2f allocations per spliced READ, want none", a)
	}
}

// TestAllocsWritePages: a 1 MiB WRITE to a splicing file (a TCP
// conversation's data) allocates nothing in steady state: the file takes
// the request's pages, the reader replaces them from the page pool, and
// the pages come back to the pool as their data is acknowledged (here:
// when the next write comes).
func TestAllocsWritePages(t *testing.T) {
	sink := &pageSink{lean: true, held: make([]*skb.Page, 0, 64)}
	sink.splices.Store(true)
	fd := mountOneFile(t, sink.root(), "io")
	defer sink.release()
	buf := make([]byte, 1<<20)
	step := func() {
		if n, err := syscall.Write(fd, buf); err != nil || n != len(buf) {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	for range 50 {
		step()
	}
	// 0.1 leaves room for a reader goroutine started now and then, not
	// for an allocation per request.
	if a := testing.AllocsPerRun(500, step); a > 0.1 {
		t.Fatalf("%.2f allocations per 1 MiB write, want none", a)
	}
}
