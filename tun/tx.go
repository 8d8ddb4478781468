package tun

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"sockfs/skb"
)

// txState holds one packet's iovecs for writev(2): the virtio_net_hdr (on
// a device with IFF_VNET_HDR), the skb's linear part and its page
// fragments, written as one packet without linearising. write is bound
// once as method values so Control and RawWrite do not allocate.
type txState struct {
	hdr   [vnetHdrLen]byte
	iov   []unix.Iovec
	niov  int
	used  int // most iovecs set since the pool handed t out
	n     int
	errno unix.Errno
	write func(fd uintptr) bool
	try   func(fd uintptr)
}

var txPool = sync.Pool{New: func() any {
	t := &txState{iov: make([]unix.Iovec, 2+skb.MaxFrags)}
	t.write = t.writev
	t.try = t.tryWritev
	return t
}}

// tryWritev is the Control callback: one writev(2), EAGAIN included in
// t.errno. Control holds a reference on the descriptor (so Stop's close
// waits for it) but not poll.FD's write lock, so goroutines transmitting
// on different sockets write at the same time. That matters because a TUN
// write is not just a copy: tun_get_user hands the packet to
// netif_receive_skb in the writer's context, so the kernel's whole input
// path (IP, TCP, checksum verification without offloads) runs inside the
// writev. Under the write lock, four streams' senders took turns through
// one CPU. The kernel side needs no such lock: tun_chr_write_iter takes
// none for a TUN without IFF_NAPI.
func (t *txState) tryWritev(fd uintptr) {
	for {
		n, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&t.iov[0])), uintptr(t.niov))
		if e == unix.EINTR {
			continue
		}
		t.n, t.errno = int(n), e
		return
	}
}

// writev is the RawWrite callback, the slow path after tryWritev met
// EAGAIN (the TUN socket's sk_sndbuf full, which TUNSETSNDBUF can make
// happen): it asks the netpoller to wait for writability.
func (t *txState) writev(fd uintptr) bool {
	t.tryWritev(fd)
	if t.errno == unix.EAGAIN {
		t.errno = 0
		return false
	}
	return true
}

// load points t's iovecs at b's data, behind a virtio_net_hdr if vnet. A
// ChecksumPartial packet asks the kernel to complete its checksum
// (VIRTIO_NET_HDR_F_NEEDS_CSUM with csum_start/csum_offset, as
// virtio_net_hdr_from_skb describes a CHECKSUM_PARTIAL skb); anything else
// goes with the all-zero header: no offload, checksums complete. It reports
// whether the checksum was offloaded.
func (t *txState) load(b *skb.SKB, vnet bool) (offloaded bool) {
	t.niov = 0
	if vnet {
		var h vnetHdr
		if b.IPSummed == skb.ChecksumPartial {
			h.flags = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
			h.csumStart = uint16(b.ChecksumStartOffset())
			h.csumOffset = b.CsumOffset
			offloaded = true
			if sh := b.Shared(); sh.GSOSize != 0 {
				// A TCP GSO packet: the kernel cuts it (as
				// virtio_net_hdr_from_skb describes one).
				h.gsoType = unix.VIRTIO_NET_HDR_GSO_TCPV4
				if sh.GSOType&skb.GSOTCPv6 != 0 {
					h.gsoType = unix.VIRTIO_NET_HDR_GSO_TCPV6
				}
				if sh.GSOType&skb.GSOTCPECN != 0 {
					h.gsoType |= unix.VIRTIO_NET_HDR_GSO_ECN
				}
				h.gsoSize = sh.GSOSize
				if th := int(h.csumStart); th+12 < b.HeadLen() {
					h.hdrLen = uint16(th + int(b.Data()[th+12]>>4)*4)
				}
			}
		}
		h.encode(t.hdr[:])
		t.iov[0].Base = &t.hdr[0]
		t.iov[0].SetLen(vnetHdrLen)
		t.niov = 1
	}
	t.addIov(b.Data())
	t.addFrags(b)
	t.used = max(t.used, t.niov)
	return offloaded
}

// addIov appends an iovec for p, unless p is empty.
func (t *txState) addIov(p []byte) {
	if len(p) > 0 {
		t.iov[t.niov].Base = &p[0]
		t.iov[t.niov].SetLen(len(p))
		t.niov++
	}
}

// addFrags appends an iovec for each of b's page fragments.
func (t *txState) addFrags(b *skb.SKB) {
	for i := range b.NrFrags() {
		t.addIov(b.Frag(i).Bytes())
	}
}

// hdrLen is the length of the virtio_net_hdr in the iovecs, if any.
func (t *txState) hdrLen() int {
	if t.niov > 0 && t.iov[0].Base == &t.hdr[0] {
		return vnetHdrLen
	}
	return 0
}

// Xmit writes the packets of batch to the kernel and frees every skb,
// which runs its destructor (TX completion: the sender's buffer is released
// after the kernel has copied the packet). A TUN write is one packet: one
// writev(2) per skb, a GSO skb (with offloads in force) included, counted
// once in Stats with its length and in OffloadStats.TxGSOPackets/TxGSOSegs.
// Packets longer than the MTU (or, for a GSO skb, than 64 KiB), GSO skbs
// without offloads, and packets sent after Stop are dropped (TxDropped);
// failed writes count as TxErrors.
//
// Safe for concurrent use from any number of goroutines, which write at the
// same time (see tryWritev); each write is a copy into the kernel that does
// not block. It never calls the Receiver,
// so callers may hold socket locks. Xmit before Open is allowed (the
// interface is up from New).
func (d *Device) Xmit(batch []*skb.SKB) {
	if len(batch) == 0 {
		return
	}
	t := txPool.Get().(*txState)
	for i, b := range batch {
		d.xmitOne(t, b)
		batch[i] = nil
	}
	clear(t.iov[:t.used]) // do not pin freed buffers from the pool
	t.used = 0
	txPool.Put(t)
}

// xmitOne writes b as one packet and frees it.
func (d *Device) xmitOne(t *txState, b *skb.SKB) {
	n := b.Len()
	if n == 0 {
		d.stats.TxErrors.Add(1) // TUN refuses an empty write (EINVAL)
		b.Free()
		return
	}
	gso := b.Shared().GSOSize != 0
	if gso && (!d.vnetHdr || !d.rxOffload || b.IPSummed != skb.ChecksumPartial || n > gsoMaxSize) ||
		!gso && n > d.cfg.MTU || d.stopped.Load() {
		d.stats.TxDropped.Add(1)
		b.Free()
		return
	}
	if b.IPSummed == skb.ChecksumPartial && !d.vnetHdr && !b.ChecksumHelp() {
		// Not from this stack, which offloads only to devices with
		// link.FeatureHWCsum; complete it as validate_xmit_skb would.
		d.stats.TxErrors.Add(1)
		b.Free()
		return
	}
	offloaded := t.load(b, d.vnetHdr)
	t.errno = 0
	err := d.raw.Control(t.try)
	if err == nil && t.errno == unix.EAGAIN {
		t.errno = 0
		err = d.raw.Write(t.write)
	}
	switch {
	case err != nil && d.stopped.Load():
		// Raced with Stop: RawWrite fails with poll's "use of closed
		// file", which (unlike os.File's methods) it does not map to
		// os.ErrClosed.
		d.stats.TxDropped.Add(1)
	case err != nil, t.errno != 0, t.n != n+t.hdrLen():
		d.stats.TxErrors.Add(1)
	default:
		if offloaded {
			d.offl.TxCsumOffloaded.Add(1)
		}
		if gso {
			d.offl.TxGSOPackets.Add(1)
			d.offl.TxGSOSegs.Add(uint64(b.Shared().GSOSegs))
		}
		d.stats.TxPackets.Add(1)
		d.stats.TxBytes.Add(uint64(n))
	}
	b.Free()
}
