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
// data), answered from the queue's own pieces, allocates nothing, with
// writev (a short reply) or through the worker's pipe (spliceReply): the
// worker keeps its slice and iovec storage and its pipe. The device is a
// socket pair (spliceDevice's mock of /dev/fuse), which takes a spliced
// reply in several records where the device takes it as one write.
func TestAllocsReadSpliced(t *testing.T) {
	for _, size := range []int{4 << 10, spliceReplyMin} {
		piece := make([]byte, size)
		var pieces [2][]byte
		q := &queueHandle{}
		_, peer, _, read := spliceDevice(t, q)
		want := outHeaderLen + len(piece) + 1000
		reply := make([]byte, want)
		step := func() {
			// ReadTo reslices what it consumes: queue both pieces afresh.
			pieces[0], pieces[1] = piece, piece[:1000]
			q.pieces = pieces[:]
			read(1, len(piece)+1000)
			for got := 0; got < want; {
				n, err := syscall.Read(peer, reply[got:])
				if err != nil || n == 0 {
					t.Fatalf("reply of %d: %d more after %d, %v", want, n, got, err)
				}
				got += n
			}
			if int(ne.Uint32(reply)) != want {
				t.Fatalf("reply header says %d bytes, want %d", ne.Uint32(reply), want)
			}
		}
		for range 10 {
			step()
		}
		if a := testing.AllocsPerRun(200, step); a > 0 {
			t.Fatalf("%.2f allocations per spliced READ of %d, want none", a, len(piece)+1000)
		}
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
