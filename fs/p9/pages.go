package p9

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"sockfs/skb"
)

// pagedWriteMin is the smallest Twrite whose data is read into pages
// rather than into the message's frame: two TSO-sized segments, below
// which the copy a frame costs is small next to the request itself.
const pagedWriteMin = 64 << 10

// pageRun holds a large Twrite's data in skb pages, read there straight
// from the connection, so that a TCP conversation's send queue takes the
// pages themselves (fs.Splicer's WritePages: netstack's SendPages,
// tcp_sendmsg_locked with MSG_SPLICE_PAGES) instead of a copy of a frame,
// as fs/fuse does with a WRITE's pages. Page i holds the bytes from
// i*skb.PageFragSize on. The run holds one reference to each page; a
// send queue that took a page holds its own, so the page is recycled
// only once both are dropped.
type pageRun struct {
	pages []*skb.Page
	n     int          // bytes of data
	iov   []unix.Iovec // readv's vector (runReader)
}

// pagedWrites counts the calls that handed a run's pages to a send queue,
// in every connection (for tests).
var pagedWrites atomic.Int64

var runPool = sync.Pool{New: func() any { return new(pageRun) }}

// newRun returns a run of fresh pages for n bytes.
func newRun(n int) *pageRun {
	run := runPool.Get().(*pageRun)
	run.n = n
	for range (n + skb.PageFragSize - 1) / skb.PageFragSize {
		run.pages = append(run.pages, skb.NewPage())
	}
	return run
}

// readRun reads n bytes from r into a run of fresh pages, a page at a time.
func readRun(r io.Reader, n int) (*pageRun, error) {
	run := newRun(n)
	for done := 0; done < n; {
		k := min(skb.PageFragSize, n-done)
		if _, err := io.ReadFull(r, run.pages[done/skb.PageFragSize].Buf[:k]); err != nil {
			run.free()
			return nil, err
		}
		done += k
	}
	return run, nil
}

// runReader reads a Twrite's data from a connection into a run: first what
// the connection's buffered reader holds already, then, where the
// connection has a descriptor, with readv(2) straight into the pages, one
// system call for as much of the run as has arrived (a read(2) per page
// would take five times as many system calls as a frame's reads did);
// elsewhere (TLS) through the buffered reader, a page at a time.
type runReader struct {
	br  *bufio.Reader
	raw *rawVec // nil: no descriptor
}

func newRunReader(br *bufio.Reader, nc net.Conn) *runReader {
	return &runReader{br: br, raw: newRawVec(nc, true)}
}

// read reads n bytes into a new run.
func (rr *runReader) read(n int) (*pageRun, error) {
	if rr.raw == nil {
		return readRun(rr.br, n)
	}
	run := newRun(n)
	done := 0
	// What the buffered reader holds is read from it: no system call.
	for b := min(rr.br.Buffered(), n); done < b; {
		k := min(skb.PageFragSize-done%skb.PageFragSize, b-done)
		at := done % skb.PageFragSize
		if _, err := io.ReadFull(rr.br, run.pages[done/skb.PageFragSize].Buf[at:at+k]); err != nil {
			run.free()
			return nil, err
		}
		done += k
	}
	for done < n {
		iov := run.iov[:0]
		for at := done; at < n; {
			pg, o := run.pages[at/skb.PageFragSize], at%skb.PageFragSize
			k := min(skb.PageFragSize-o, n-at)
			iov = append(iov, unix.Iovec{Base: &pg.Buf[o], Len: uint64(k)})
			at += k
		}
		run.iov = iov
		got, err := rr.raw.do(iov)
		if err == nil && got == 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			run.free()
			return nil, err
		}
		done += got
	}
	return run, nil
}

// copyOut fills p with the run's bytes from byte off on.
func (run *pageRun) copyOut(off int, p []byte) {
	for done := 0; done < len(p); {
		at := off + done
		done += copy(p[done:], run.pages[at/skb.PageFragSize].Buf[at%skb.PageFragSize:])
	}
}

// free drops the run's page references and recycles it.
func (run *pageRun) free() {
	for i, pg := range run.pages {
		pg.Put()
		run.pages[i] = nil
	}
	clear(run.iov[:cap(run.iov)]) // no page pointers kept past the run
	run.pages, run.n, run.iov = run.pages[:0], 0, run.iov[:0]
	runPool.Put(run)
}
