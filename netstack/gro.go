package netstack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"sockfs/netstack/header"
	"sockfs/skb"
)

// GRO (generic receive offload) for the packets that leave a device's In
// impairment stage. The stage emulates a wire, so what leaves it are
// wire-sized packets (gsoSegment cut the TUN's super-packets in front of
// it); a Linux host behind a real NIC runs GRO on such packets in its NAPI
// poll (napi_gro_receive), merging each TCP flow's consecutive segments
// into one skb before IP sees them, and that is what this file does, so
// that a receiver behind an impaired link gets the skbs, and is charged
// the truesize, Linux's would. Without an In stage the device's packets
// (a TUN's super-packets included) go up as they came, untouched.
//
// Linux counts nothing for software GRO (no SNMP or netstat counter), so
// neither does this.

// Limits of Linux's GRO.
const (
	groHashBuckets   = 8     // GRO_HASH_BUCKETS: flow lists per NAPI instance
	maxGroSkbs       = 8     // MAX_GRO_SKBS: packets held per list
	groLegacyMaxSize = 65536 // GRO_LEGACY_MAX_SIZE, the default gro_max_size
)

// Control bits as they sit in the word tcp_flag_word reads (header.TCP's
// FlagWord): TCP_FLAG_CWR, TCP_FLAG_PSH, TCP_FLAG_FIN.
const (
	tcpFlagWordCwr = uint32(header.TCPFlagCwr) << 16
	tcpFlagWordPsh = uint32(header.TCPFlagPsh) << 16
	tcpFlagWordFin = uint32(header.TCPFlagFin) << 16
)

// groHeld is a packet GRO holds as the start of a flow's super-packet,
// with what Linux keeps about it in its NAPI_GRO_CB.
type groHeld struct {
	p    *skb.SKB // data at the IPv4 header
	hash uint32   // the flow's receive hash (skb_get_hash_raw)
	hlen int      // IPv4 and TCP header bytes (skb_gro_offset at the payload)
	// mss is the gso_size dev_gro_receive gives a packet it holds: its
	// payload length. Kept here, not in p's shared info, because p may be
	// a clone whose shared info its sender still reads (a pipe hands the
	// sender's clones over); it is written to p when p is completed.
	mss   int
	count int // segments in p (count)
	// lastFrags is the number of fragments Linux would see in
	// NAPI_GRO_CB(p)->last, the skb skb_gro_receive appends fragments to:
	// p, or the last skb chained on p's frag_list.
	lastFrags int
	fixedID   bool // the flow keeps one IP ID (ip_fixedid)
}

// groList is one bucket of held packets, oldest first. Mirrors struct
// gro_list.
type groList struct {
	held [maxGroSkbs]groHeld
	n    int
}

// groNode is a device's GRO state: the held packets by flow hash. It is
// used from one goroutine at a time (the In stage's deliveries are serial)
// and holds nothing between two batches. Mirrors struct gro_node (a NAPI
// instance's gro_hash).
type groNode struct {
	lists [groHashBuckets]groList
	// frag is where payload is copied when a packet is appended the way
	// Linux would chain it on frag_list; released at the end of each
	// batch so that nothing outlives it.
	frag skb.PageFrag
	// deliver hands a packet up to IP (the stack's ip_rcv): what
	// gro_normal_one queues for netif_receive_skb_list_internal.
	deliver func(*skb.SKB)
	// off is NETIF_F_GRO cleared (ethtool -K dev gro off): every packet
	// goes up as it is (netif_elide_gro). Set before the first packet.
	off bool
}

// receive offers b, a packet with its data at the IPv4 header, to GRO: it
// is merged into the super-packet held for its TCP flow, held as the start
// of one, or handed up at once; a held packet its arrival ends goes up
// first. Malformed packets and packets whose checksum fails go up unmerged
// for IP and TCP to drop and count. Mirrors dev_gro_receive with
// inet_gro_receive, tcp4_gro_receive and tcp_gro_receive.
func (g *groNode) receive(b *skb.SKB) {
	if g.off {
		g.deliver(b)
		return
	}
	sh := b.Shared()
	gsoSize, count, flush := int(sh.GSOSize), 1, false
	if gsoSize != 0 {
		// Only a trusted TCP super-packet may join a flow.
		count = int(sh.GSOSegs)
		flush = count == 0 || sh.GSOType&skb.GSOTCPv4 == 0 || sh.GSOType&skb.GSODodgy != 0
	}
	// inet_gro_receive: TCP in IPv4 without options, not a fragment,
	// with a sound header checksum; ipv6_gro_receive: TCP right after the
	// IPv6 header (deviation: Linux also walks extension headers, which
	// no TCP sender here uses). Anything else goes up as it is and ends
	// no flow (UDP's udp4_gro_receive merges nothing for a plain socket,
	// other protocols have no GRO at all).
	if b.HeadLen() < header.IPv4MinSize+header.TCPMinSize {
		g.deliver(b)
		return
	}
	d := b.Data()
	nhlen := header.IPv4MinSize
	if d[0]>>4 == header.IPv6Version {
		ip6 := header.IPv6(d)
		if b.HeadLen() < header.IPv6MinSize+header.TCPMinSize || ip6.NextHeader() != header.IPv6NextTCP {
			g.deliver(b)
			return
		}
		nhlen = header.IPv6MinSize
		flush = flush || header.IPv6MinSize+int(ip6.PayloadLength()) != b.Len()
	} else {
		iph := header.IPv4(d)
		if iph.Protocol() != header.IPv4ProtocolTCP || iph.Version() != header.IPv4Version ||
			iph.HeaderLength() != header.IPv4MinSize || iph.MoreFragments() || iph.FragmentOffset() != 0 ||
			!iph.IsChecksumValid() {
			g.deliver(b)
			return
		}
		flush = flush || int(iph.TotalLength()) != b.Len() || iph.Flags()&header.IPv4FlagReserved != 0
	}
	// tcp4_gro_receive / tcp6_gro_receive: verify the checksum before
	// merging (not worth it for a packet that cannot merge anyway), then
	// the header length (tcp_gro_pull_header); a failure sends the packet
	// up alone.
	if !flush && !groChecksumValidate(b, nhlen) {
		g.deliver(b)
		return
	}
	th := header.TCP(d[nhlen:])
	thlen := th.DataOffset()
	if thlen < header.TCPMinSize || nhlen+thlen > b.HeadLen() {
		g.deliver(b)
		return
	}
	hlen := nhlen + thlen
	plen := b.Len() - hlen // skb_gro_len past the headers
	flags := th.Flags()

	// tcp_gro_receive.
	hash := groFlowHash(d, th)
	l := &g.lists[hash%groHashBuckets]
	i := l.lookup(hash, d, th)
	mss, merged := 1, false
	if i >= 0 {
		h := &l.held[i]
		d2 := h.p.Data()
		th2 := header.TCP(d2[nhlen:])
		f := flags&header.TCPFlagCwr != 0
		// The rest of the flag word (data offset, reserved bits, the
		// other control bits, the window), the ACK and every option
		// byte, timestamps included, must be the same.
		if (th.FlagWord()^th2.FlagWord())&^(tcpFlagWordCwr|tcpFlagWordFin|tcpFlagWordPsh) != 0 {
			f = true
		} else if th.Ack() != th2.Ack() ||
			string(th[header.TCPMinSize:thlen]) != string(th2[header.TCPMinSize:thlen]) {
			f = true
		}
		f = h.inetGroFlush(d, d2) || f // always run: it decides ip_fixedid
		mss = h.mss
		if gsoSize != 0 {
			f = f || gsoSize != mss
		} else {
			f = f || plen == 0 || plen-1 >= mss // (len - 1) >= mss, unsigned
		}
		f = f || th2.Seq()+uint32(h.p.Len()-h.hlen) != th.Seq()
		if !f && !flush && g.skbGroReceive(h, b, hlen, plen, count) {
			merged = true // b is gone
			th2 := header.TCP(h.p.Data()[nhlen:])
			th2.SetFlags(th2.Flags() | flags&(header.TCPFlagFin|header.TCPFlagPsh))
		} else {
			mss = 1
		}
	}
	// out_check_final: a segment shorter than the flow's gso_size, or one
	// with PSH, URG, RST, SYN or FIN, ends the flow.
	var end bool
	if gsoSize != 0 {
		end = plen != count*gsoSize
	} else {
		end = plen < mss
	}
	end = end || flags&(header.TCPFlagUrg|header.TCPFlagPsh|header.TCPFlagRst|header.TCPFlagSyn|header.TCPFlagFin) != 0
	if i >= 0 && (!merged || end) {
		g.napiGroComplete(l.remove(i))
	}
	if merged {
		return
	}
	if flush || end {
		g.deliver(b)
		return
	}
	if l.n == maxGroSkbs {
		g.napiGroComplete(l.remove(0)) // gro_flush_oldest
	}
	if gsoSize == 0 {
		gsoSize = plen
	}
	l.held[l.n] = groHeld{p: b, hash: hash, hlen: hlen, mss: gsoSize, count: count, lastFrags: b.NrFrags()}
	l.n++
}

// inetGroFlush reports whether iph's packet may not join the flow whose
// first packet's header is iph2: TTL, TOS and DF must be the same, and the
// IP ID must follow the flow's: one more per segment, or the same for a
// flow whose second packet had DF set and its first packet's ID (an atomic
// flow, ip_fixedid). Mirrors inet_gro_flush (before the change that made
// fixed IDs acceptable without DF, which does not matter here: TCP sets DF).
//
// For IPv6 a different traffic class or hop limit ends the flow, and there
// is no ID (ipv6_gro_receive).
func (h *groHeld) inetGroFlush(d, d2 []byte) bool {
	if d[0]>>4 == header.IPv6Version {
		a, b := header.IPv6(d), header.IPv6(d2)
		return a.TrafficClass() != b.TrafficClass() || a.HopLimit() != b.HopLimit()
	}
	iph, iph2 := header.IPv4(d), header.IPv4(d2)
	df := iph.DontFragment()
	if iph.TTL() != iph2.TTL() || iph.TOS() != iph2.TOS() || df != iph2.DontFragment() {
		return true
	}
	off := iph.ID() - iph2.ID()
	if h.count == 1 && df && off == 0 {
		h.fixedID = true
	}
	if h.fixedID {
		return off != 0
	}
	return off != uint16(h.count)
}

// skbGroReceive appends b's payload (plen bytes after hlen header bytes)
// to the held packet and frees b, or reports false, changing nothing, if
// the super-packet would reach 64 KiB. The truesize p gains is Linux's:
// a packet whose linear part holds only headers gives its fragments to p
// (or to the skb last chained on p's frag_list) and adds their truesize
// (skb->truesize - SKB_TRUESIZE(skb_end_offset)), keeping its head; any
// other packet, or one whose fragments no longer fit MAX_SKB_FRAGS, is
// chained on frag_list whole and adds its whole truesize. Mirrors
// skb_gro_receive.
//
// Deviations, for want of a frag_list in package skb: a chained packet's
// payload is copied into page fragments of p (charged as Linux charges
// the chain), and fragments are referenced rather than stolen, since b may
// be a clone; p is made private first (skb_unclone), since a pipe hands
// over its sender's clones, whose shared info Linux's receivers never
// share. Should p run out of fragment slots, it ends its flow (false).
// Linux's head_frag case (a driver's page-fragment head stolen whole) has
// no counterpart: no skb here has a head in a page fragment.
func (g *groNode) skbGroReceive(h *groHeld, b *skb.SKB, hlen, plen, count int) bool {
	p := h.p
	if p.Len()+plen >= groLegacyMaxSize {
		return false // -E2BIG
	}
	byRef := b.HeadLen() == hlen // the payload is all in fragments
	need := b.NrFrags()
	if !byRef {
		need = plen/skb.PageFragSize + 2 // the pieces of a copy
	}
	if p.NrFrags()+need > skb.MaxFrags {
		return false
	}
	p.Unclone()
	var delta int
	if b.HeadLen() <= hlen && h.lastFrags+b.NrFrags() <= skb.MaxFrags {
		delta = b.Truesize() - skb.CurrentProfile().TruesizeOf(b.EndOffset())
		h.lastFrags += b.NrFrags()
	} else {
		delta = b.Truesize() // merge: chained on frag_list
		h.lastFrags = b.NrFrags()
	}
	if byRef {
		for i := 0; i < b.NrFrags(); i++ {
			f := b.Frag(i)
			f.Page.Get()
			p.AddFrag(f.Page, f.Off, f.Size) // room checked above
		}
	} else {
		for off, end := hlen, hlen+plen; off < end; {
			_, free := g.frag.Refill()
			n := min(len(free), end-off)
			b.CopyBits(off, free[:n])
			page, at := g.frag.Commit(n)
			p.AddFrag(page, at, n) // merges with the previous piece
			off += n
		}
	}
	p.AddTruesize(delta)
	h.count += count
	b.Free()
	return true
}

// napiGroComplete hands a held packet up: one that stayed alone as it
// came; a merged one as the super-packet it now is, its IP total length
// and checksum fixed (inet_gro_complete), gso_size, gso_segs and
// SKB_GSO_TCPV4 set, and its checksum state CHECKSUM_PARTIAL with the
// pseudo-header sum in the TCP checksum field (tcp4_gro_complete,
// tcp_gro_complete): every part was verified, and a partial packet is
// what the receive path trusts without summing it again. gso_type's
// TCP_ECN and TCP_FIXEDID bits are left out: only resegmentation on
// forwarding reads them, and sockfs does not forward. Mirrors
// napi_gro_complete.
func (g *groNode) napiGroComplete(h groHeld) {
	p := h.p
	if h.count == 1 {
		if p.Shared().GSOSize != 0 {
			p.Unclone()
			p.Shared().GSOSize = 0
		}
		g.deliver(p)
		return
	}
	d := p.Data()
	nhlen := groNetLen(d)
	src, dst := groAddrs(d)
	gsoType := uint8(skb.GSOTCPv4)
	if nhlen == header.IPv6MinSize {
		header.IPv6(d).SetPayloadLength(uint16(p.Len() - nhlen)) // ipv6_gro_complete
		gsoType = skb.GSOTCPv6
	} else {
		iph := header.IPv4(d)
		old := iph.TotalLength()
		iph.SetTotalLength(uint16(p.Len()))
		iph.SetChecksum(header.ChecksumUpdate(iph.Checksum(), old, iph.TotalLength())) // csum_replace2
	}
	th := header.TCP(d[nhlen:])
	th.SetChecksum(header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, src, dst, uint16(p.Len()-nhlen)))
	sh := p.Shared()
	sh.GSOSize, sh.GSOSegs = uint16(h.mss), uint16(h.count)
	sh.GSOType |= gsoType
	p.PartialCsumSet(nhlen, tcpCsumOffset)
	g.deliver(p)
}

// flush completes every held packet, bucket by bucket and oldest first in
// each, and lets go of the page payload was copied into: the end of a
// NAPI poll. Mirrors napi_gro_flush(napi, false) followed by
// gro_normal_list (completed packets are handed up one by one as they
// complete rather than batched in rx_list; the order is the same).
func (g *groNode) flush() {
	for k := range g.lists {
		l := &g.lists[k]
		for i := 0; i < l.n; i++ {
			h := l.held[i]
			l.held[i] = groHeld{}
			g.napiGroComplete(h)
		}
		l.n = 0
	}
	g.frag.Release()
}

// lookup returns the index of the packet held for b's flow, or -1. The
// flow is the receive hash, the addresses and protocol (inet_gro_receive's
// same_flow test; for IPv6 also the flow label, ipv6_gro_receive's) and
// the ports (tcp_gro_lookup).
func (l *groList) lookup(hash uint32, d []byte, th header.TCP) int {
	for i := l.n - 1; i >= 0; i-- { // youngest first, as Linux walks the list
		h := &l.held[i]
		if h.hash != hash {
			continue
		}
		d2 := h.p.Data()
		if !groSameNet(d, d2) {
			continue
		}
		th2 := header.TCP(d2[groNetLen(d2):])
		if th2.SrcPort() == th.SrcPort() && th2.DstPort() == th.DstPort() {
			return i
		}
	}
	return -1
}

// groNetLen is the network header length of a packet GRO took: IPv4
// without options or IPv6 without extension headers.
func groNetLen(d []byte) int {
	if d[0]>>4 == header.IPv6Version {
		return header.IPv6MinSize
	}
	return header.IPv4MinSize
}

// groSameNet reports whether the network headers d and d2 are of one
// flow: same family, addresses and protocol, and for IPv6 the same flow
// label (ipv6_gro_receive compares the first word masked 0xF00FFFFF).
func groSameNet(d, d2 []byte) bool {
	if d[0]>>4 != d2[0]>>4 {
		return false
	}
	if d[0]>>4 == header.IPv6Version {
		a, b := header.IPv6(d), header.IPv6(d2)
		return a.FlowLabel() == b.FlowLabel() && a.SrcAddr() == b.SrcAddr() && a.DstAddr() == b.DstAddr()
	}
	a, b := header.IPv4(d), header.IPv4(d2)
	return a.SrcAddr() == b.SrcAddr() && a.DstAddr() == b.DstAddr() && a.Protocol() == b.Protocol()
}

// remove takes the packet at index i off the list, keeping the order.
func (l *groList) remove(i int) groHeld {
	h := l.held[i]
	copy(l.held[i:l.n], l.held[i+1:l.n])
	l.n--
	l.held[l.n] = groHeld{}
	return h
}

// groFlowHash is the receive hash a NIC computes over a flow's addresses
// and ports (RSS), which Linux reads with skb_get_hash_raw to choose a GRO
// bucket.
func groFlowHash(nh []byte, th header.TCP) uint32 {
	src, dst := groAddrs(nh)
	s, d := src.As16(), dst.As16()
	var sw, dw uint32
	for i := 0; i < 16; i += 4 {
		sw ^= binary.BigEndian.Uint32(s[i:])
		dw ^= binary.BigEndian.Uint32(d[i:])
	}
	h := sw ^ bits.RotateLeft32(dw, 13) ^ (uint32(th.SrcPort())<<16 | uint32(th.DstPort()))
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	h *= 0x846ca68b
	return h ^ h>>16
}

// groChecksumValidate checks b's TCP checksum (data at the IPv4 header)
// unless it is known good: verified already, or a partial packet from
// this host. A packet it verifies is marked CHECKSUM_UNNECESSARY, so TCP
// does not sum it again. Mirrors skb_gro_checksum_validate with
// inet_gro_compute_pseudo and skb_gro_incr_csum_unnecessary.
func groChecksumValidate(b *skb.SKB, nhlen int) bool {
	switch {
	case b.IPSummed == skb.ChecksumUnnecessary:
		return true
	case b.IPSummed == skb.ChecksumPartial && b.ChecksumStartOffset() >= nhlen:
		return true
	}
	src, dst := groAddrs(b.Data())
	b.Pull(nhlen)
	ok := skbChecksum(b, header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, src, dst, uint16(b.Len()))) == 0xffff
	b.Push(nhlen)
	if ok && b.IPSummed == skb.ChecksumNone {
		b.IPSummed = skb.ChecksumUnnecessary
	}
	return ok
}

// groAddrs returns the source and destination of the network header nh
// (IPv4 or IPv6).
func groAddrs(nh []byte) (src, dst netip.Addr) {
	if nh[0]>>4 == header.IPv6Version {
		h := header.IPv6(nh)
		return h.SrcAddr(), h.DstAddr()
	}
	h := header.IPv4(nh)
	return h.SrcAddr(), h.DstAddr()
}
