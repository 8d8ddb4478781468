package tun

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"sockfs/netstack/link"
	"sockfs/skb"
)

// rxState is the reader goroutine's private state. fill is bound once as a
// method value so that each RawRead passes the same func without allocating.
type rxState struct {
	d       *Device
	scratch []byte     // one read's worth: virtio_net_hdr + the largest IPv4 datagram
	batch   []*skb.SKB // packets read, not yet delivered; cap = batch size
	err     error      // a read error that ends the reader
	fill    func(fd uintptr) bool
	// frag hands out the pages the payload of large packets is copied
	// into, as the per-CPU page_frag cache does for a driver.
	frag skb.PageFrag
}

// reader runs until Stop closes the file (or a read fails): it waits in the
// netpoller until the descriptor is readable, drains up to a batch of
// packets with non-blocking read(2)s, and hands them to rx in one call.
//
// Why drain through RawRead rather than call the file's Read:
// both wait in the netpoller, so neither holds a thread while idle and Stop
// can wake either (a blocking read(2) on a TUN is not woken by close), but
// Read returns one packet per call, while fill goes on reading until EAGAIN
// and delivers the lot, so the stack can amortise its per-NetifRx work.
// At the device itself the two cost the same: BenchmarkTunRx measured about
// 2.8 us per packet either way (2 vCPU VM, 92- and 1428-byte packets), all
// of it in read(2), since a TUN gives one packet per read whatever we do
// (a packet that, with offloads, may stand for up to 45 MSS-sized ones).
//
// Why read into scratch and copy rather than read straight into an skb of
// MTU size (and copy only small packets): the copy, at most an MTU, is tens
// of nanoseconds against that read(2), and the direct variant measured no
// faster while reading into a buffer shorter than 64 KiB silently truncates
// packets if someone raises the kernel side's MTU later. With offloads a
// read may bring 64 KiB; copying it into page fragments (about 5 us) still
// costs far less than the 44 read(2)s it replaces.
func (d *Device) reader(rx link.Receiver, done chan struct{}) {
	defer close(done)
	r := &rxState{
		d:       d,
		scratch: make([]byte, vnetHdrLen+maxPacket),
		batch:   make([]*skb.SKB, 0, d.rxBatch),
	}
	defer r.frag.Release()
	r.fill = r.read
	for {
		err := d.raw.Read(r.fill)
		if len(r.batch) > 0 {
			rx.NetifRx(r.batch)
			clear(r.batch)
			r.batch = r.batch[:0]
		}
		if err == nil {
			err = r.err
		}
		if err != nil {
			// Closing the file (Stop) is the normal end; anything else
			// (EBADFD once the interface was deleted under us) is an error.
			if !d.stopped.Load() {
				d.stats.RxErrors.Add(1)
			}
			return
		}
	}
}

// read is the RawRead callback: it reads packets until the batch is full or
// the descriptor has nothing more (EAGAIN). It reports false, asking to wait
// for readability, only if it got nothing to deliver.
func (r *rxState) read(fd uintptr) bool {
	d := r.d
	for len(r.batch) < cap(r.batch) {
		n, err := unix.Read(int(fd), r.scratch)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return len(r.batch) > 0
		default:
			r.err = err
			return true
		}
		pkt := r.scratch[:n]
		var vh vnetHdr
		if d.vnetHdr {
			if n < vnetHdrLen {
				d.stats.RxErrors.Add(1)
				continue
			}
			vh.decode(pkt)
			pkt = pkt[vnetHdrLen:]
		}
		if len(pkt) == 0 || pkt[0]>>4 != 4 {
			// IPv6 (router solicitations once the link is up) and anything
			// else that is not IPv4: the stack speaks IPv4 only.
			d.stats.RxDropped.Add(1)
			continue
		}
		b := r.build(pkt, &vh)
		if b == nil {
			d.offl.RxBadVnetHdr.Add(1)
			d.stats.RxDropped.Add(1)
			continue
		}
		d.stats.RxPackets.Add(1)
		d.stats.RxBytes.Add(uint64(len(pkt)))
		r.batch = append(r.batch, b)
	}
	return true
}

// tunPrepad is the headroom tun_alloc_skb counts before deciding whether a
// packet fits a page: NET_SKB_PAD (64) + NET_IP_ALIGN (0 on x86).
const tunPrepad = 64

// build copies pkt, an IPv4 datagram, into an skb laid out as Linux's
// tun_get_user / tun_alloc_skb lay out what a TUN writer sends the kernel,
// and applies the virtio_net_hdr as virtio_net_hdr_to_skb does. It returns
// nil if the header asks for something we cannot honour.
//
// Layout, mirroring tun_alloc_skb: a packet that fits a page with its
// prepad is linear, in a head of its own size class (truesize tracks the
// packet). A larger TCP packet (a super-packet, or any large packet at a
// large MTU) keeps its IP and TCP headers in a small head and its payload
// in page fragments, each charged its size rounded up to pages, as
// alloc_skb_with_frags charges the pages it allocates: a 64 KiB
// super-packet costs about 64 KiB plus the head, not the 128 KiB head
// class a linear copy would need. Other large packets (UDP, fragments)
// stay linear: their input reads them as one block.
func (r *rxState) build(pkt []byte, vh *vnetHdr) *skb.SKB {
	gsoType := vh.gsoType &^ unix.VIRTIO_NET_HDR_GSO_ECN
	if gsoType != unix.VIRTIO_NET_HDR_GSO_NONE && (gsoType != unix.VIRTIO_NET_HDR_GSO_TCPV4 || vh.gsoSize == 0) {
		return nil // we asked for TSO4 only (no UFO/USO, no IPv6)
	}
	hlen := 0
	if len(pkt)+tunPrepad >= skb.PageSize {
		hlen = tcpHeadersLen(pkt)
	}
	if gsoType != unix.VIRTIO_NET_HDR_GSO_NONE && tcpHeadersLen(pkt) == 0 {
		return nil // a TCP super-packet without a TCP header
	}
	var b *skb.SKB
	if hlen == 0 {
		b = skb.Alloc(len(pkt))
		b.PutData(pkt)
	} else {
		b = skb.Alloc(hlen)
		b.PutData(pkt[:hlen])
		if !r.fillFrags(b, pkt[hlen:]) {
			b.Free()
			return nil
		}
	}
	if vh.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
		if !b.PartialCsumSet(int(vh.csumStart), int(vh.csumOffset)) {
			b.Free()
			return nil
		}
		r.d.offl.RxCsumPartial.Add(1)
	} else if vh.flags&unix.VIRTIO_NET_HDR_F_DATA_VALID != 0 {
		b.IPSummed = skb.ChecksumUnnecessary
		r.d.offl.RxCsumValid.Add(1)
	}
	if gsoType != unix.VIRTIO_NET_HDR_GSO_NONE {
		// gso_segs is left 0 by virtio_net_hdr_to_skb (SKB_GSO_DODGY asks
		// for it to be recomputed); computing it here is that
		// recomputation: the payload in gso_size pieces.
		payload := len(pkt) - tcpHeadersLen(pkt)
		segs := max(1, (payload+int(vh.gsoSize)-1)/int(vh.gsoSize))
		sh := b.Shared()
		sh.GSOSize = vh.gsoSize
		sh.GSOSegs = uint16(segs)
		sh.GSOType = skb.GSOTCPv4 | skb.GSODodgy
		r.d.offl.RxGSOPackets.Add(1)
		r.d.offl.RxGSOSegs.Add(uint64(segs))
	}
	return b
}

// fillFrags copies p into page fragments of b taken from the reader's page
// cache, charging each piece its size rounded up to pages (and starting the
// next piece on a page boundary, so the charge is the space used).
func (r *rxState) fillFrags(b *skb.SKB, p []byte) bool {
	for len(p) > 0 {
		_, free := r.frag.Refill()
		n := copy(free, p)
		use := min((n+skb.PageSize-1)&^(skb.PageSize-1), len(free))
		page, off := r.frag.Commit(use)
		if !b.AddFrag(page, off, n) {
			page.Put()
			return false // more than MAX_SKB_FRAGS pieces: cannot happen for 64 KiB
		}
		b.AddTruesize(use)
		p = p[n:]
	}
	return true
}

// tcpHeadersLen returns the length of the IPv4 and TCP headers of pkt, or
// 0 if pkt is not an unfragmented TCP packet whose headers it holds. It
// looks only as far as the layout needs; the stack validates the packet.
func tcpHeadersLen(pkt []byte) int {
	if len(pkt) < 20 || pkt[9] != unix.IPPROTO_TCP {
		return 0
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
		return 0 // a fragment (MF or an offset)
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+20 {
		return 0
	}
	doff := int(pkt[ihl+12]>>4) * 4
	if doff < 20 || len(pkt) < ihl+doff {
		return 0
	}
	return ihl + doff
}
