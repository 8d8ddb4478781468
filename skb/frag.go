package skb

import (
	"fmt"
	"sync/atomic"
)

// PageFragSize is the size of the pages a PageFrag carves fragments from:
// Linux's sk_page_frag uses 32 KiB compound pages (SKB_FRAG_PAGE_ORDER 3).
const PageFragSize = 32768

// Page is a reference-counted block that fragments point into.
type Page struct {
	Buf  []byte
	refs atomic.Int32
}

// pageCacheLimit bounds the bytes of free pages kept for reuse. It is
// larger than the other caches' cacheLimit because pages hold the payload
// of receive queues, and one queue may hold up to tcp_rmem[2] (32 MiB):
// with pages bounded at 16 MiB, a bulk receiver whose queue swings between
// empty and full (DRS grows its rcvbuf to tcp_rmem[2] over a fast path, as
// Linux's does) gave back more pages at each drain than the cache kept and
// allocated them again at the next fill: make bench's MTU 65000
// kernel->peer rows went from 0.001-0.008 to 0.011-0.022 allocations per
// wire packet (one wire packet is about 64 KiB there) when DRS began to
// work on that path, and came back to 0.006-0.008 with this bound. Linux's
// freed pages go back to the page allocator for anyone; here they stay with
// the process, up to this bound, until the shrinker finds them idle for a
// ShrinkInterval (ShrinkCaches).
const pageCacheLimit = 64 << 20

var pagePool = objCache[Page]{max: pageCacheLimit / PageFragSize}

// NewPage returns a page with one reference. Mirrors alloc_pages for the
// page-fragment cache.
func NewPage() *Page {
	p := pagePool.get()
	if p == nil {
		p = &Page{Buf: make([]byte, PageFragSize)}
	}
	p.refs.Store(1)
	return p
}

// Get takes a reference. Mirrors get_page.
func (p *Page) Get() { p.refs.Add(1) }

// Put drops a reference and recycles the page with the last. Mirrors
// put_page.
func (p *Page) Put() {
	switch r := p.refs.Add(-1); {
	case r == 0:
		if debug {
			poison(p.Buf)
			return
		}
		pagePool.put(p)
	case r < 0 && debug:
		panic("skb: page reference underflow")
	}
}

// Refs returns the reference count, for tests.
func (p *Page) Refs() int { return int(p.refs.Load()) }

// Frag is a piece of a page holding packet data. Mirrors skb_frag_t.
type Frag struct {
	Page *Page
	Off  int
	Size int
}

// Bytes returns the fragment's data.
func (f Frag) Bytes() []byte { return f.Page.Buf[f.Off : f.Off+f.Size] }

// NrFrags returns the number of fragments.
func (b *SKB) NrFrags() int { return b.shared.nrFrags }

// Frag returns fragment i.
func (b *SKB) Frag(i int) Frag { return b.shared.frags[i] }

// AddFrag appends size bytes at off in page as a new fragment (or extends the
// last fragment when they are adjacent in the same page, as skb_can_coalesce
// allows), taking over the caller's page reference in the new-fragment case
// and dropping it in the merge case. It updates len and data_len but not
// truesize: the caller adds what it charges, as Linux's callers do
// (skb_len_add / skb_copy_to_page_nocache). It reports false when the skb
// has no room for another fragment, and then consumes nothing.
func (b *SKB) AddFrag(page *Page, off, size int) bool {
	if b.Cloned() {
		panic("skb: AddFrag on a cloned skb")
	}
	sh := b.shared
	if n := sh.nrFrags; n > 0 {
		last := &sh.frags[n-1]
		if last.Page == page && last.Off+last.Size == off {
			last.Size += size
			page.Put()
			b.len += size
			b.dataLen += size
			return true
		}
	}
	if sh.nrFrags == MaxFrags {
		return false
	}
	sh.frags[sh.nrFrags] = Frag{Page: page, Off: off, Size: size}
	sh.nrFrags++
	b.len += size
	b.dataLen += size
	return true
}

// trimFrags keeps only the first n bytes of fragment data.
func (b *SKB) trimFrags(n int) {
	sh := b.shared
	if b.Cloned() && n < b.dataLen {
		panic("skb: trimming the fragments of a cloned skb")
	}
	keep := 0
	for i := 0; i < sh.nrFrags; i++ {
		f := &sh.frags[i]
		switch {
		case n <= 0:
			f.Page.Put()
			*f = Frag{}
		case f.Size > n:
			f.Size = n
			n = 0
			keep = i + 1
		default:
			n -= f.Size
			keep = i + 1
		}
	}
	sh.nrFrags = keep
	b.dataLen = 0
	for i := 0; i < keep; i++ {
		b.dataLen += sh.frags[i].Size
	}
}

// CopyBits copies len(to) bytes of packet data starting at offset into to,
// walking the linear part and then the fragments. It returns the number of
// bytes copied (short only if the packet ends first). Mirrors skb_copy_bits.
func (b *SKB) CopyBits(offset int, to []byte) int {
	if offset < 0 || offset > b.len {
		panic(fmt.Sprintf("skb: CopyBits offset %d of %d", offset, b.len))
	}
	done := 0
	lin := b.Data()
	if offset < len(lin) {
		done = copy(to, lin[offset:])
		offset = 0
	} else {
		offset -= len(lin)
	}
	for i := 0; i < b.shared.nrFrags && done < len(to); i++ {
		f := b.shared.frags[i].Bytes()
		if offset >= len(f) {
			offset -= len(f)
			continue
		}
		done += copy(to[done:], f[offset:])
		offset = 0
	}
	return done
}

// AppendSlices appends to iov the pieces of the packet data from offset on,
// at most n bytes and no more slices than iov has room for (cap), linear
// part first, then the fragments, and returns iov with the bytes added.
// The slices alias the packet: valid while it lives. Mirrors skb_to_sgvec.
func (b *SKB) AppendSlices(iov [][]byte, offset, n int) ([][]byte, int) {
	if offset < 0 || offset > b.len {
		panic(fmt.Sprintf("skb: AppendSlices offset %d of %d", offset, b.len))
	}
	done := 0
	add := func(p []byte) {
		if len(p) == 0 || done >= n || len(iov) >= cap(iov) {
			return
		}
		p = p[:min(len(p), n-done)]
		iov = append(iov, p)
		done += len(p)
	}
	lin := b.Data()
	if offset < len(lin) {
		add(lin[offset:])
		offset = 0
	} else {
		offset -= len(lin)
	}
	for i := 0; i < b.shared.nrFrags && done < n && len(iov) < cap(iov); i++ {
		f := b.shared.frags[i].Bytes()
		if offset >= len(f) {
			offset -= len(f)
			continue
		}
		add(f[offset:])
		offset = 0
	}
	return iov, done
}

// PageFrag hands out pieces of a page for fragments, refilling with a fresh
// page when the current one is full. One per socket, as sk_page_frag is.
// It is not safe for concurrent use; the socket's lock covers it.
type PageFrag struct {
	page   *Page
	offset int
}

// Refill makes sure at least one byte is free, reusing the current page from
// its start when nobody else references it any more. It returns the page and
// the free space at the current offset. Mirrors skb_page_frag_refill.
func (pf *PageFrag) Refill() (*Page, []byte) {
	if pf.page != nil {
		if pf.page.refs.Load() == 1 {
			pf.offset = 0
		} else if pf.offset >= len(pf.page.Buf) {
			pf.page.Put()
			pf.page = nil
		}
	}
	if pf.page == nil {
		pf.page = NewPage()
		pf.offset = 0
	}
	return pf.page, pf.page.Buf[pf.offset:]
}

// Commit records that n bytes at the current offset were used by a fragment
// and returns their offset; the fragment gets its own page reference.
func (pf *PageFrag) Commit(n int) (page *Page, off int) {
	page, off = pf.page, pf.offset
	page.Get()
	pf.offset += n
	return page, off
}

// Release drops the cache's own page reference (socket destruction).
func (pf *PageFrag) Release() {
	if pf.page != nil {
		pf.page.Put()
		pf.page = nil
	}
}

// TrimHead removes the first n bytes of the packet: from the linear part
// first, then whole fragments and the front of the next one. It returns
// how many of the bytes were fragment bytes, which is what the caller may
// take off truesize (the linear head stays allocated). The data must be
// private (Unclone first). Mirrors __pskb_trim_head.
func (b *SKB) TrimHead(n int) int {
	if n < 0 || n > b.len {
		panic(fmt.Sprintf("skb: TrimHead(%d) of %d", n, b.len))
	}
	if debug && b.Cloned() {
		panic("skb: TrimHead of a cloned skb")
	}
	eat := min(n, b.HeadLen())
	b.data += eat
	b.len -= eat
	n -= eat
	if n == 0 {
		return 0
	}
	sh := b.shared
	k, left := 0, n
	for i := 0; i < sh.nrFrags; i++ {
		f := sh.frags[i]
		if f.Size <= left {
			left -= f.Size
			f.Page.Put()
			continue
		}
		f.Off += left
		f.Size -= left
		left = 0
		sh.frags[k] = f
		k++
	}
	for i := k; i < sh.nrFrags; i++ {
		sh.frags[i] = Frag{}
	}
	sh.nrFrags = k
	b.dataLen -= n
	b.len -= n
	return n
}
