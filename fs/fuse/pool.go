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
// and a request longer than a worker's small buffer gathered from its
// reqPages.
var reqBufs = newBufPool(reqBufLen, 16)

// writeHeadLen is the part of a WRITE request before its data: the
// header and fuse_write_in.
const writeHeadLen = inHeaderLen + writeInLen

// reqPages is what a reader reads a request into (readv): its first
// writeHeadLen bytes into head, the rest into pages, so that a WRITE's
// data starts at the first page's start and the send queue of a TCP
// conversation can take those pages without a copy (netstack's
// SendPages). Every other request fits in head or is copied out of it and
// the pages before it is served. Readers take one for each read(2) of
// /dev/fuse and give it back once the request is copied out or, for a
// WRITE, written; a page the send queue took is replaced first (renew).
type reqPages struct {
	head  [writeHeadLen]byte
	pages [maxIO / skb.PageFragSize]*skb.Page
	iov   [1 + maxIO/skb.PageFragSize]unix.Iovec
}

func newReqPages() *reqPages {
	rp := new(reqPages)
	rp.iov[0] = unix.Iovec{Base: &rp.head[0], Len: writeHeadLen}
	for i := range rp.pages {
		rp.setPage(i, skb.NewPage())
	}
	return rp
}

func (rp *reqPages) setPage(i int, pg *skb.Page) {
	rp.pages[i] = pg
	rp.iov[1+i] = unix.Iovec{Base: unsafe.SliceData(pg.Buf), Len: uint64(len(pg.Buf))}
}

// data returns the n bytes after head as one slice: the first page's
// own if they fit, else copied into buf.
func (rp *reqPages) data(n int, buf []byte) []byte {
	if n <= skb.PageFragSize {
		return rp.pages[0].Buf[:n]
	}
	rp.copyPages(buf[:n])
	return buf[:n]
}

// gather copies the request, head and the bytes after it, into req.
func (rp *reqPages) gather(req []byte) {
	m := copy(req, rp.head[:])
	rp.copyPages(req[m:])
}

// copyPages fills p from the pages, from the first page's start.
func (rp *reqPages) copyPages(p []byte) {
	for i, done := 0, 0; done < len(p); i++ {
		done += copy(p[done:], rp.pages[i].Buf)
	}
}

// renew replaces the pages among the first n bytes' that something else
// still references (a send queue's skbs): the reader must not read the
// next request into them. A page whose other references are gone already
// is kept; nothing else can take one after that.
func (rp *reqPages) renew(n int) {
	for i := 0; i*skb.PageFragSize < n; i++ {
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
