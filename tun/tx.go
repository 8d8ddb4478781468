package tun

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"sockfs/skb"
)

// txState holds one packet's iovecs for writev(2): the skb's linear part
// and its page fragments, written as one packet without linearising. write
// is bound once as a method value so RawWrite does not allocate.
type txState struct {
	iov   [1 + skb.MaxFrags]unix.Iovec
	niov  int
	n     int
	errno unix.Errno
	write func(fd uintptr) bool
}

var txPool = sync.Pool{New: func() any {
	t := new(txState)
	t.write = t.writev
	return t
}}

// writev is the RawWrite callback. A TUN write never blocks for long (the
// kernel queues the packet on its backlog or drops it); EAGAIN asks the
// netpoller to wait anyway.
func (t *txState) writev(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&t.iov[0])), uintptr(t.niov))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		t.n, t.errno = int(n), e
		return true
	}
}

// load points t's iovecs at b's data.
func (t *txState) load(b *skb.SKB) {
	t.niov = 0
	if h := b.Data(); len(h) > 0 {
		t.iov[0].Base = &h[0]
		t.iov[0].SetLen(len(h))
		t.niov = 1
	}
	for i := range b.NrFrags() {
		if f := b.Frag(i).Bytes(); len(f) > 0 {
			t.iov[t.niov].Base = &f[0]
			t.iov[t.niov].SetLen(len(f))
			t.niov++
		}
	}
}

// Xmit writes each packet of batch to the kernel, one writev(2) per packet
// (a TUN write is one packet), and frees every skb, which runs its
// destructor (TX completion: the sender's buffer is released after the
// kernel has copied the packet). Packets longer than the MTU or sent after
// Stop are dropped (TxDropped); failed writes count as TxErrors.
//
// Safe for concurrent use from any number of goroutines: writes on the
// descriptor are serialised by its write lock in Go's poll.FD, and each is
// a copy into the kernel that does not block. It never calls the Receiver,
// so callers may hold socket locks. Xmit before Open is allowed (the
// interface is up from New).
func (d *Device) Xmit(batch []*skb.SKB) {
	if len(batch) == 0 {
		return
	}
	t := txPool.Get().(*txState)
	for i, b := range batch {
		batch[i] = nil
		n := b.Len()
		if n == 0 {
			d.stats.TxErrors.Add(1) // TUN refuses an empty write (EINVAL)
			b.Free()
			continue
		}
		if n > d.cfg.MTU || d.stopped.Load() {
			d.stats.TxDropped.Add(1)
			b.Free()
			continue
		}
		t.load(b)
		t.errno = 0
		err := d.raw.Write(t.write)
		switch {
		case err != nil && d.stopped.Load():
			// Raced with Stop: RawWrite fails with poll's "use of closed
			// file", which (unlike os.File's methods) it does not map to
			// os.ErrClosed.
			d.stats.TxDropped.Add(1)
		case err != nil, t.errno != 0, t.n != n:
			d.stats.TxErrors.Add(1)
		default:
			d.stats.TxPackets.Add(1)
			d.stats.TxBytes.Add(uint64(n))
		}
		b.Free()
	}
	t.iov = [len(t.iov)]unix.Iovec{} // do not pin freed buffers from the pool
	txPool.Put(t)
}
