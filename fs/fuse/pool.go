package fuse

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"sockfs/skb"
)

// freeList keeps up to max objects for reuse. Unlike sync.Pool it is not
// emptied by the garbage collector, so a steady stream of requests
// allocates nothing.
type freeList[T any] struct {
	max  int
	mu   sync.Mutex
	free []T
}

// take returns a kept object, if there is one.
func (l *freeList[T]) take() (x T, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.free)
	if n == 0 {
		return x, false
	}
	x = l.free[n-1]
	var zero T
	l.free[n-1] = zero
	l.free = l.free[:n-1]
	return x, true
}

// keep keeps x unless max are kept already; it reports whether it did.
func (l *freeList[T]) keep(x T) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) >= l.max {
		return false
	}
	l.free = append(l.free, x)
	return true
}

// bufPool keeps up to max buffers of one size for reuse.
type bufPool struct {
	size int
	list freeList[[]byte]
}

func newBufPool(size, max int) *bufPool {
	return &bufPool{size: size, list: freeList[[]byte]{max: max}}
}

func (p *bufPool) get() []byte {
	if b, ok := p.list.take(); ok {
		return b
	}
	return make([]byte, p.size)
}

func (p *bufPool) put(b []byte) {
	if cap(b) == p.size {
		p.list.keep(b[:p.size])
	}
}

// reqBufs hold whole requests in one piece: the sentinel's (ownpoll.go),
// and a request longer than a worker's small buffer copied out of its
// reqPages.
var reqBufs = newBufPool(reqBufLen, 16)

// writeHeadLen is the part of a WRITE request before its data: the
// header and fuse_write_in.
const writeHeadLen = inHeaderLen + writeInLen

// reqPagesLen is the pages a reader reads a request into: room for the
// largest, a WRITE's head and max_write bytes.
const reqPagesLen = (writeHeadLen + maxIO + skb.PageFragSize - 1) / skb.PageFragSize

// reqPages is what a reader reads a request into (readv): a run of skb
// pages, the request from the first page's start, as it would be in one
// buffer. A WRITE's data then lies in pages from byte writeHeadLen of
// the run on, and the send queue of a TCP conversation can take those
// pages without a copy (netstack's SendPages). Every other request, and
// a small WRITE's data, is one slice of the first page, as in a buffer
// (one page of ours touched by the kernel's copy, as before). Readers
// take one for each read(2) of /dev/fuse and give it back once the
// request is copied out or, for a WRITE, written; a page the send queue
// took is replaced first (renew).
type reqPages struct {
	pages [reqPagesLen]*skb.Page
	iov   [reqPagesLen]unix.Iovec
}

func newReqPages() *reqPages {
	rp := new(reqPages)
	for i := range rp.pages {
		rp.setPage(i, skb.NewPage())
	}
	return rp
}

func (rp *reqPages) setPage(i int, pg *skb.Page) {
	rp.pages[i] = pg
	rp.iov[i] = unix.Iovec{Base: unsafe.SliceData(pg.Buf), Len: uint64(len(pg.Buf))}
}

// first returns the first page's bytes: the start of the request.
func (rp *reqPages) first() []byte { return rp.pages[0].Buf }

// slice returns the n bytes from byte off of the run as one slice: the
// first page's own if they lie in it, else copied into buf.
func (rp *reqPages) slice(off, n int, buf []byte) []byte {
	if off+n <= skb.PageFragSize {
		return rp.pages[0].Buf[off : off+n]
	}
	rp.copyOut(off, buf[:n])
	return buf[:n]
}

// copyOut fills p with the bytes from byte off of the run on.
func (rp *reqPages) copyOut(off int, p []byte) {
	for done := 0; done < len(p); {
		at := off + done
		done += copy(p[done:], rp.pages[at/skb.PageFragSize].Buf[at%skb.PageFragSize:])
	}
}

// renew replaces the pages holding the n bytes from byte off that
// something else still references (a send queue's skbs): the reader must
// not read the next request into them. A page whose other references are
// gone already is kept; nothing else can take one after that.
func (rp *reqPages) renew(off, n int) {
	for i := off / skb.PageFragSize; i*skb.PageFragSize < off+n; i++ {
		if pg := rp.pages[i]; pg.Refs() > 1 {
			pg.Put()
			rp.setPage(i, skb.NewPage())
		}
	}
}

// reqPagesFree keeps reqPages for reuse, as a bufPool does buffers.
var reqPagesFree = &freeList[*reqPages]{max: 16}

func getReqPages() *reqPages {
	if rp, ok := reqPagesFree.take(); ok {
		return rp
	}
	return newReqPages()
}

// putReqPages keeps rp, or gives its pages back to the page pool.
func putReqPages(rp *reqPages) {
	if !reqPagesFree.keep(rp) {
		for _, pg := range rp.pages {
			pg.Put()
		}
	}
}

// replyBufs hold READ and READDIR replies: the out header followed by up
// to the class's payload. A blocked read holds its buffer while it waits,
// as the kernel's own read would hold its pages.
var replyBufs = []*bufPool{
	newBufPool(outHeaderLen+4<<10, 64),
	newBufPool(outHeaderLen+64<<10, 32),
	newBufPool(outHeaderLen+128<<10, 32),
	newBufPool(outHeaderLen+maxIO, 16),
}

// replyPool returns the smallest class that holds n payload bytes.
func replyPool(n int) *bufPool {
	for _, p := range replyBufs {
		if n <= p.size-outHeaderLen {
			return p
		}
	}
	return replyBufs[len(replyBufs)-1]
}
