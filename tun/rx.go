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
	d     *Device
	buf   rxBuf      // where each read lands (rxbuf.go)
	batch []*skb.SKB // packets read, not yet delivered; cap = batch size
	err   error      // a read error that ends the reader
	fill  func(fd uintptr) bool
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
// Each read is a readv(2) that puts the headers into a small buffer and a
// large packet's payload straight into the pages its skb will reference
// (rxBuf); only headers and small packets are copied.
func (d *Device) reader(rx link.Receiver, done chan struct{}) {
	defer close(done)
	r := &rxState{
		d:     d,
		buf:   rxBuf{vnet: d.vnetHdr},
		batch: make([]*skb.SKB, 0, d.rxBatch),
	}
	defer r.buf.release()
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
		r.buf.prepare()
		n, err := r.buf.readv(fd)
		switch err {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return len(r.batch) > 0
		default:
			r.err = err
			return true
		}
		var vh vnetHdr
		if d.vnetHdr {
			if n < vnetHdrLen {
				d.stats.RxErrors.Add(1)
				continue
			}
			vh.decode(r.buf.hdr[:])
			n -= vnetHdrLen
		}
		r.buf.n = n
		if n == 0 || r.buf.head[0]>>4 != 4 {
			// IPv6 (router solicitations once the link is up) and anything
			// else that is not IPv4: the stack speaks IPv4 only.
			d.stats.RxDropped.Add(1)
			continue
		}
		b := r.buildRead(&vh)
		if b == nil {
			// A virtio_net_hdr the kernel would refuse from a writer:
			// tun_get_user counts those (virtio_net_hdr_to_skb failing)
			// in rx_frame_errors. Deviation: a hdr_len past the packet is
			// counted there too; Linux returns EINVAL to the writer and
			// counts nothing, but here the writer is the kernel, which
			// sees no error.
			d.stats.RxFrameErrors.Add(1)
			continue
		}
		d.stats.RxPackets.Add(1)
		d.stats.RxBytes.Add(uint64(n))
		r.batch = append(r.batch, b)
	}
	return true
}

// tunAlign is the headroom tun_get_user reserves in front of a packet in
// the linear part of its skb (tun->align, passed to tun_alloc_skb as
// prepad): NET_SKB_PAD, max(32, L1_CACHE_BYTES) = 64 on x86_64
// (NET_IP_ALIGN, 0 on x86, is added for a TAP only). It is why a UDP
// datagram of an IP length in 193..256 costs a 1024-byte head, not the
// small-head cache: the live 6.18 kernel charges 1280 for 180 bytes of
// payload written into a TUN.
const tunAlign = 64

// tunGoodLinear is tun_get_user's good_linear, SKB_MAX_HEAD(tunAlign): the
// most a packet that does not fit a page keeps in its linear part (3712
// bytes with 6.18's 320-byte skb_shared_info).
func tunGoodLinear() int { return skb.CurrentProfile().WithOverhead(skb.PageSize - tunAlign) }

// pageAlign rounds n up to whole pages. Mirrors PAGE_ALIGN.
func pageAlign(n int) int { return (n + skb.PageSize - 1) &^ (skb.PageSize - 1) }

// buildRead turns the packet read into r.buf, an IPv4 datagram, into an
// skb laid out and charged as Linux lays out what a TUN writer sends the kernel, and applies the
// virtio_net_hdr (all zero without IFF_VNET_HDR) as the kernel does. It
// returns nil, having counted nothing, if the header is one the kernel
// would refuse (tun_vnet_hdr_get, virtio_net_hdr_to_skb) or one we did not
// ask for; the caller counts rx_frame_errors.
//
// Layout, mirroring tun_get_user -> tun_alloc_skb -> sock_alloc_send_pskb
// -> alloc_skb_with_frags: the linear part is tunAlign bytes of headroom
// plus `linear` bytes of packet, in a head of that size class; the rest
// goes into page fragments, charged PAGE_ALIGN(rest). A packet that fits
// a page with its headroom is all linear (truesize follows its size
// class); a larger one keeps hdr_len bytes (the kernel's skb_headlen for
// its TSO super-packets, the checksum field's end for a partial
// checksum), capped at good_linear, or good_linear bytes without a hint.
// A 64 KiB super-packet costs about 64 KiB plus the head, not the 128 KiB
// head class a linear copy would need.
//
// Deviations, which keep the charge exact: the stack reads IP and TCP
// headers from the linear part, so a TCP packet's head holds at least
// them (Linux's pskb_may_pull moves them there later, into tailroom the
// same head class already has); other large packets (UDP, ICMP,
// fragments) stay wholly linear, since their input reads them as one
// block, and are charged what Linux's paged layout costs.
//
// The packet is the one the last read left in r.buf (tests put one there
// with build, in rx_build_test.go).
func (r *rxState) buildRead(vh *vnetHdr) *skb.SKB {
	n := r.buf.n
	hdrs := r.buf.head[:min(n, rxHeadLen)]
	chk, ok := checkVnetHdr(hdrs, n, vh)
	if !ok {
		return nil
	}
	good := tunGoodLinear()
	linear := n
	if tunAlign+n >= skb.PageSize { // tun_alloc_skb: "under a page" is linear
		linear = min(chk.hdrLen, good)
		if linear == 0 {
			linear = min(good, n)
		}
	}
	prof := skb.CurrentProfile()
	truesize := prof.AllocTruesize(tunAlign+linear) + pageAlign(n-linear)

	head := n
	if linear < n {
		if th := tcpHeadersLen(hdrs); th != 0 {
			head = max(linear, th, chk.needed)
		}
	}
	b := skb.Alloc(tunAlign + head)
	b.Reserve(tunAlign)
	r.buf.copyOut(b.Put(head), 0)
	if head < n && !r.buf.fragsFrom(b, head) {
		b.Free()
		return nil
	}
	b.SetTruesize(truesize)

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
	if chk.gso {
		// gso_segs is left 0, as virtio_net_hdr_to_skb leaves it for
		// SKB_GSO_DODGY's recomputation, which local delivery never
		// does: a dropped super-packet counts once in sk_drops, as in
		// Linux. The device counts the segments it stands for.
		sh := b.Shared()
		sh.GSOSize = vh.gsoSize
		sh.GSOSegs = 0
		sh.GSOType = skb.GSOTCPv4 | skb.GSODodgy
		payload := n - tcpHeadersLen(hdrs)
		r.d.offl.RxGSOPackets.Add(1)
		r.d.offl.RxGSOSegs.Add(uint64((payload + int(vh.gsoSize) - 1) / int(vh.gsoSize)))
	}
	return b
}

// vnetCheck is what checkVnetHdr found: the hdr_len in force, how much of
// the packet the checksum needs in the linear part, and whether the packet
// is a super-packet.
type vnetCheck struct {
	hdrLen int
	needed int
	gso    bool
}

// checkVnetHdr validates vh against a packet of total bytes, whose headers
// pkt holds, as the kernel validates what a TUN writer sends: tun_vnet_hdr_get (a partial checksum raises hdr_len to the
// end of its field; a hdr_len past the packet is refused) and
// virtio_net_hdr_to_skb (a known gso_type with a non-zero gso_size that is
// not GSO_BY_FRAGS, a checksum start past the IP header with its field
// inside the packet, a TCP super-packet's checksum at the TCP checksum
// field, and "too small packets are not really GSO ones": a super-packet
// no longer than one gso_size after the headers is a plain packet).
//
// Stricter than Linux, because the stack could do nothing sensible with
// them: gso_types other than TCPV4 (we asked TUNSETOFFLOAD for TSO4 only,
// so the kernel never sends them) and a TCPV4 super-packet that is not an
// unfragmented TCP packet (Linux finds that only when it segments it).
func checkVnetHdr(pkt []byte, total int, vh *vnetHdr) (vnetCheck, bool) {
	var c vnetCheck
	partial := vh.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0
	start, off := int(vh.csumStart), int(vh.csumOffset)
	c.hdrLen = int(vh.hdrLen)
	if partial {
		c.hdrLen = max(c.hdrLen, start+off+2)
	}
	if c.hdrLen > total {
		return c, false
	}
	thlen := 0
	switch vh.gsoType &^ unix.VIRTIO_NET_HDR_GSO_ECN {
	case unix.VIRTIO_NET_HDR_GSO_NONE:
	case unix.VIRTIO_NET_HDR_GSO_TCPV4:
		if vh.gsoSize == 0 || vh.gsoSize == gsoByFrags || tcpHeadersLen(pkt) == 0 {
			return c, false
		}
		c.gso = true
		thlen = 20 // sizeof(struct tcphdr)
	default:
		return c, false
	}
	nhOff := 0
	if partial {
		c.needed = start + max(thlen, off+2)
		if c.needed > total || start < 20 || (c.gso && off != 16) {
			return c, false // 20: sizeof(struct iphdr); 16: offsetof(struct tcphdr, check)
		}
		nhOff = start + thlen
	}
	if c.gso && total-nhOff <= int(vh.gsoSize) {
		c.gso = false
	}
	return c, true
}

// gsoByFrags is GSO_BY_FRAGS, a gso_size only the kernel's own SCTP uses.
const gsoByFrags = 0xffff

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
