package tun

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"sockfs/skb"
)

// rxBuf is where one read(2) lands, laid out so that the payload of a
// large packet is read straight into the pages its skb will reference: a
// readv(2) into the virtio_net_hdr, a small head buffer of rxHeadLen bytes
// (every IPv4+TCP header fits), then free page space. build then copies
// only headers (and small packets, which are linear anyway) and gives the
// skb page fragments where the payload already is, instead of reading the
// whole packet into a scratch buffer and copying 64 KiB into pages as an
// earlier version did (kernel -> stack, 2.6 GB in 64 KiB super-packets:
// the reader's CPU went from 0.53 to 0.47 s; throughput, which the
// kernel's sending side bounds here, did not change measurably).
//
// The page space starts rxHeadLen bytes into its first page (slack), so
// that the payload bytes the head buffer caught behind shorter headers
// can be moved in front of the rest, keeping each fragment contiguous.
type rxBuf struct {
	hdr   [vnetHdrLen]byte
	head  [rxHeadLen]byte
	pages [rxPagesMax]*skb.Page // held by the reader: the next read's space
	npg   int
	off   int // where the free space of pages[0] starts
	iov   [2 + rxPagesMax]unix.Iovec
	niov  int
	n     int // bytes of packet (after the virtio_net_hdr) the last read gave
	vnet  bool
}

// rxHeadLen is the head buffer's size: the longest IPv4 and TCP headers
// (60 + 60 bytes), rounded up.
const rxHeadLen = 128

// rxPagesMax pages of skb.PageFragSize hold a 64 KiB packet behind the
// slack wherever the free space starts.
const rxPagesMax = 4

// prepare makes sure at least maxPacket-rxHeadLen bytes of page space
// follow the slack, and points the iovecs at the header, the head buffer
// and that space.
func (r *rxBuf) prepare() {
	if r.npg > 0 && r.off+rxHeadLen >= len(r.pages[0].Buf) {
		r.drop(1)
	}
	for r.space() < maxPacket-rxHeadLen {
		r.pages[r.npg] = skb.NewPage()
		if r.npg == 0 {
			r.off = 0
		}
		r.npg++
	}
	r.niov = 0
	if r.vnet {
		r.setIov(r.hdr[:])
	}
	r.setIov(r.head[:])
	for i := 0; i < r.npg; i++ {
		buf := r.pages[i].Buf
		if i == 0 {
			buf = buf[r.off+rxHeadLen:]
		}
		r.setIov(buf)
	}
}

// space is the page space after the slack.
func (r *rxBuf) space() int {
	s := 0
	for i := 0; i < r.npg; i++ {
		s += len(r.pages[i].Buf)
	}
	if r.npg > 0 {
		s -= r.off + rxHeadLen
	}
	return s
}

func (r *rxBuf) setIov(p []byte) {
	r.iov[r.niov].Base = unsafe.SliceData(p)
	r.iov[r.niov].SetLen(len(p))
	r.niov++
}

// readv reads one packet into the buffers, returning its length (the
// virtio_net_hdr included) or the errno.
func (r *rxBuf) readv(fd uintptr) (int, unix.Errno) {
	n, _, e := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&r.iov[0])), uintptr(r.niov))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// copyOut copies the n packet bytes from offset at into to.
func (r *rxBuf) copyOut(to []byte, at int) {
	if at < rxHeadLen {
		k := copy(to, r.head[at:min(r.n, rxHeadLen)])
		to, at = to[k:], rxHeadLen
	}
	at -= rxHeadLen
	for i := 0; i < r.npg && len(to) > 0; i++ {
		buf := r.pages[i].Buf
		if i == 0 {
			buf = buf[r.off+rxHeadLen:]
		}
		if at >= len(buf) {
			at -= len(buf)
			continue
		}
		k := copy(to, buf[at:])
		to, at = to[k:], 0
	}
}

// fragsFrom gives b page fragments for the packet bytes from offset at to
// the end, where they already are, and consumes the page space they used:
// the next read starts behind them. Bytes the head buffer holds beyond at
// are first moved into the slack in front of the page data.
func (r *rxBuf) fragsFrom(b *skb.SKB, at int) bool {
	// Physical position of packet offset rxHeadLen: page 0, off+rxHeadLen.
	pos := r.off + rxHeadLen + (at - rxHeadLen) // may lie in the slack
	if at < rxHeadLen {
		copy(r.pages[0].Buf[pos:r.off+rxHeadLen], r.head[at:min(r.n, rxHeadLen)])
	}
	left := r.n - at
	pg := 0
	for pos >= len(r.pages[pg].Buf) {
		pos -= len(r.pages[pg].Buf)
		pg++
	}
	for left > 0 {
		p := r.pages[pg]
		k := min(len(p.Buf)-pos, left)
		p.Get()
		if !b.AddFrag(p, pos, k) {
			p.Put()
			return false
		}
		left -= k
		pos += k
		if pos == len(p.Buf) && left > 0 {
			pg++
			pos = 0
		}
	}
	// The next read starts in the page the data ended in, cache-line
	// aligned; the pages before it are the skbs' now.
	r.drop(pg)
	r.off = (pos + 63) &^ 63
	return true
}

// drop gives up the reader's reference to the first k pages.
func (r *rxBuf) drop(k int) {
	for i := 0; i < k; i++ {
		r.pages[i].Put()
	}
	copy(r.pages[:], r.pages[k:r.npg])
	for i := r.npg - k; i < r.npg; i++ {
		r.pages[i] = nil
	}
	r.npg -= k
	r.off = 0
}

// release drops every page (the reader's end).
func (r *rxBuf) release() { r.drop(r.npg) }
