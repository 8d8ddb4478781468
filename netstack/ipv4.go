package netstack

import (
	"net/netip"
	"sync"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// ipRcv validates a received IPv4 packet (data at the IP header), trims
// link padding, reassembles fragments and hands the packet to its protocol.
// It owns b. Malformed packets are dropped and counted, never trusted.
// Mirrors ip_rcv / ip_rcv_core / ip_local_deliver.
func (s *Stack) ipRcv(dev *NetDevice, b *skb.SKB, rx *rxBatch) {
	if d := b.Data(); len(d) > 0 && d[0]>>4 == header.IPv6Version {
		// The device's protocol is the version nibble (tun_get_user
		// reads it so for IFF_NO_PI); __netif_receive_skb dispatches on it.
		s.ip6Rcv(dev, b, rx)
		return
	}
	s.mib.Inc(memctl.IpInReceives)
	s.mib.Add(memctl.IpExtInOctets, uint64(b.Len())) // ip_rcv_core: IP_UPD_PO_STATS(IPSTATS_MIB_IN)
	iph := header.IPv4(b.Data())
	switch err := iph.Check(b.Len()); err {
	case nil:
	case header.ErrIPv4Checksum:
		s.mib.Inc(memctl.IpExtInCsumErrors)
		s.mib.Inc(memctl.IpInHdrErrors)
		b.Free()
		return
	case header.ErrIPv4Truncated:
		s.mib.Inc(memctl.IpExtInTruncatedPkts)
		b.Free()
		return
	default:
		s.mib.Inc(memctl.IpInHdrErrors)
		b.Free()
		return
	}
	if tl := int(iph.TotalLength()); tl < b.Len() {
		b.Trim(tl) // link-layer padding
	}
	// ip_rcv_core: packets by their ECN codepoint (IpExt InNoECTPkts,
	// InECT1Pkts, InECT0Pkts, InCEPkts, in that order), a super-packet
	// counting its segments.
	s.mib.Add(memctl.IpExtInNoECTPkts+memctl.Counter(iph.TOS()&3), uint64(max(b.Shared().GSOSegs, 1)))
	dst := iph.DstAddr()
	typ := s.inetAddrType(dst)
	if typ == rtnUnicast {
		// A host does not forward (ip_forward = 0): the packet is not for us.
		s.mib.Inc(memctl.IpInAddrErrors)
		b.Free()
		return
	}
	bcast := typ == rtnBroadcast
	if bcast { // ip_rcv_finish_core: RTN_BROADCAST
		s.mib.Inc(memctl.IpExtInBcastPkts)
		s.mib.Add(memctl.IpExtInBcastOctets, uint64(b.Len()))
	}
	b.SetNetworkHeader()
	if iph.MoreFragments() || iph.FragmentOffset() != 0 {
		s.mib.Inc(memctl.IpReasmReqds)
		if b = s.frags.queue(b); b == nil {
			return // kept for reassembly, or dropped and counted
		}
		b.SetNetworkHeader()
		iph = header.IPv4(b.Data())
	}
	s.ipLocalDeliver(b, iph, bcast, rx)
}

// ipLocalDeliver strips the IP header and demultiplexes by protocol;
// bcast says the packet was sent to a broadcast address (the input
// route's RTCF_BROADCAST). Mirrors ip_local_deliver_finish /
// ip_protocol_deliver_rcu.
func (s *Stack) ipLocalDeliver(b *skb.SKB, iph header.IPv4, bcast bool, rx *rxBatch) {
	b.Pull(iph.HeaderLength())
	switch iph.Protocol() {
	case header.IPv4ProtocolUDP:
		s.mib.Inc(memctl.IpInDelivers)
		s.udpRcv(b, iph.SrcAddr(), iph.DstAddr(), bcast)
	case header.IPv4ProtocolICMP:
		s.mib.Inc(memctl.IpInDelivers)
		s.icmpRcv(b, iph, bcast)
	case header.IPv4ProtocolTCP:
		s.mib.Inc(memctl.IpInDelivers)
		s.tcpRcv(b, iph.SrcAddr(), iph.DstAddr(), iph.TOS(), rx)
	default:
		s.mib.Inc(memctl.IpInUnknownProtos)
		s.icmpSendDestUnreach(b, iph, header.ICMPv4ProtoUnreachable)
		b.Free()
	}
}

// ipOutput prepends an IPv4 header to b (data at the transport header,
// headroom reserved), fragments it if it exceeds the route's MTU, and
// transmits it. owner, if not nil, is the socket the fragments are charged
// to (the original skb's charge is released when it is freed). It owns b.
// Mirrors ip_queue_xmit / ip_local_out / ip_finish_output / ip_fragment.
func (s *Stack) ipOutput(b *skb.SKB, rt Route, src, dst netip.Addr, proto uint8, ttl, tos uint8, owner *memctl.Sock) error {
	return s.ipOutputQ(b, rt, src, dst, proto, ttl, tos, owner, nil)
}

// ipOutputQ is ipOutput that, if q is not nil, appends a packet that needs
// no fragmenting to q instead of transmitting it at once; the caller
// flushes q. Fragments are never queued (they are rare and each is sent as
// it is made).
//
// An IPv6 destination goes to ip6Output instead, with ttl as the hop limit
// and tos as the traffic class: the transports call this one function for
// both families, as Linux's TCP calls icsk_af_ops->queue_xmit.
func (s *Stack) ipOutputQ(b *skb.SKB, rt Route, src, dst netip.Addr, proto uint8, ttl, tos uint8, owner *memctl.Sock, q *xmitQueue) error {
	if dst.Is6() {
		return s.ip6Output(b, rt, src, dst, proto, ttl, tos, owner, q)
	}
	s.mib.Inc(memctl.IpOutRequests)
	mtu, locked := s.pathMTU(rt, dst)
	total := header.IPv4MinSize + b.Len()
	if total > 0xffff {
		b.Free()
		return errMsgSize
	}
	gsoSegs := max(int(b.Shared().GSOSegs), 1)
	gso := b.Shared().GSOSize != 0
	// Path-MTU discovery "want": DF when it fits, unless the path's MTU is
	// locked (ip_dont_fragment).
	df := (total <= mtu || gso) && !locked
	iph := header.IPv4(b.Push(header.IPv4MinSize))
	fields := header.IPv4Fields{
		TOS:          tos,
		TotalLength:  uint16(total),
		ID:           uint16(s.ipID.Add(uint32(gsoSegs)) - uint32(gsoSegs-1)), // ip_select_ident_segs
		TTL:          ttl,
		Protocol:     proto,
		Src:          src,
		Dst:          dst,
		DontFragment: df,
	}
	iph.Encode(&fields)
	b.SetNetworkHeader()
	if rt.Broadcast {
		s.ipMcLoop(b, rt.Dev)
	}
	if gso || total <= mtu {
		s.countOut(total) // a GSO packet counts once, before the device cuts it
	}
	if s.ipFinishOutput(b, rt.Dev, total <= mtu, gso, q) {
		return nil
	}
	return s.ipFragment(b, rt.Dev, mtu, owner)
}

// ipMcLoop loops a copy of the broadcast b (data at the IP header, not
// yet fragmented) back to the stack's own sockets, as ip_mc_output does
// for an RTCF_BROADCAST route with dev_loopback_xmit, which marks it
// CHECKSUM_UNNECESSARY and netif_rx's it. Nothing is looped when dev is
// the loopback device (__mkroute_output gives such a route
// ip_local_deliver, not ip_mc_output: the device delivers it anyway).
// Deviation: the copy is received from the loopback device, not from dev,
// because only a device's own receive path may call into the stack
// (xmit never calls a Receiver); a stack without a loopback device loops
// nothing back, as it delivers nothing to its own addresses either.
func (s *Stack) ipMcLoop(b *skb.SKB, dev *NetDevice) {
	s.mu.RLock()
	lo := s.lo
	s.mu.RUnlock()
	if lo == nil || dev == lo {
		return
	}
	c := b.Copy()
	if c.IPSummed == skb.ChecksumNone {
		c.IPSummed = skb.ChecksumUnnecessary
	}
	s.xmit(lo, c)
}

// ipFinishOutput sends b on dev whole and reports true: a GSO packet
// through xmitGSO, one that fits the MTU to the device (or onto q).
// It reports false, and leaves b alone, for a packet to fragment. Mirrors
// the choice of ip_finish_output / ip6_finish_output, for both families.
func (s *Stack) ipFinishOutput(b *skb.SKB, dev *NetDevice, fits, gso bool, q *xmitQueue) bool {
	switch {
	case gso:
		s.xmitGSO(b, dev, q)
	case !fits:
		return false
	case q != nil:
		q.add(dev, b)
	default:
		s.xmit(dev, b)
	}
	return true
}

// countOut counts a packet of n bytes leaving IP. Mirrors
// ip_finish_output2's IP_UPD_PO_STATS(IPSTATS_MIB_OUT): IpOutTransmits and
// IpExtOutOctets.
func (s *Stack) countOut(n int) {
	s.mib.Inc(memctl.IpOutTransmits)
	s.mib.Add(memctl.IpExtOutOctets, uint64(n))
}

// ipFragment splits b (data at the IP header, no DF) into fragments that fit
// mtu, charges each to owner, and transmits them; b is freed. Mirrors the
// slow path of ip_do_fragment.
func (s *Stack) ipFragment(b *skb.SKB, dev *NetDevice, mtu int, owner *memctl.Sock) error {
	iph := header.IPv4(b.Data())
	hlen := iph.HeaderLength()
	// Fragments are copies: complete a partial checksum first, as
	// ip_do_fragment does (skb_checksum_help), since no device will.
	if b.IPSummed == skb.ChecksumPartial && (b.Cloned() || !b.ChecksumHelp()) {
		s.mib.Inc(memctl.IpFragFails)
		b.Free()
		return errMsgSize
	}
	left := b.Len() - hlen
	chunk := (mtu - hlen) &^ 7
	if chunk <= 0 {
		s.mib.Inc(memctl.IpFragFails)
		b.Free()
		return errMsgSize
	}
	off := 0
	for left > 0 {
		n := min(chunk, left)
		f := skb.Alloc(llReserved + hlen + n)
		f.Reserve(llReserved)
		fh := header.IPv4(f.Put(hlen + n))
		copy(fh, b.Data()[:hlen])
		b.CopyBits(hlen+off, fh[hlen:hlen+n])
		fh.SetTotalLength(uint16(hlen + n))
		fh.SetFragment(off, left > n, false)
		fh.SetChecksum(0)
		fh.SetChecksum(fh.CalculateChecksum())
		f.SetNetworkHeader()
		if owner != nil {
			memctl.SetOwnerW(f, owner)
		}
		s.mib.Inc(memctl.IpFragCreates)
		s.countOut(hlen + n)
		s.xmit(dev, f)
		off += n
		left -= n
	}
	s.mib.Inc(memctl.IpFragOKs)
	b.Free()
	return nil
}

// xmitGSO hands a GSO packet to dev whole if it does TSO and nothing
// impairs its output, else the wire packets gsoCutter cuts it into. With
// q, the packets are queued on it. Mirrors validate_xmit_skb's
// skb_gso_segment decision (netif_needs_gso).
func (s *Stack) xmitGSO(b *skb.SKB, dev *NetDevice, q *xmitQueue) {
	send := func(p *skb.SKB) {
		if q != nil {
			q.add(dev, p)
		} else {
			s.xmit(dev, p)
		}
	}
	var g gsoCutter
	if dev.tso() && dev.impairStage(Out) == nil || !g.init(b, dev.hwCsum()) {
		send(b)
		return
	}
	for p := g.next(); p != nil; p = g.next() {
		send(p)
	}
}

// batchPool recycles the one-element batches used to hand a single packet
// to a device, so that transmitting does not allocate.
var batchPool = sync.Pool{New: func() any { return new([1]*skb.SKB) }}

// xmit hands one packet to the device. Mirrors dev_queue_xmit.
func (s *Stack) xmit(dev *NetDevice, b *skb.SKB) {
	if st := dev.impairStage(Out); st != nil {
		st.Enqueue(b)
		return
	}
	one := batchPool.Get().(*[1]*skb.SKB)
	one[0] = b
	dev.dev.Xmit(one[:])
	one[0] = nil
	batchPool.Put(one)
}

// A xmitQueue flushes on its own once it holds xmitQueueMax packets or
// xmitQueueBytes bytes: a 64 KiB super-packet's worth, so a device that
// coalesces (tun) gets whole runs and the first packet of a long Send waits
// no longer than Linux's does for its size_goal skb to fill.
const (
	xmitQueueMax   = 64
	xmitQueueBytes = 64 << 10
)

// xmitQueue is a run of packets one sender transmits with one Xmit call
// (Linux's xmit_more: the driver learns that more packets follow and may
// act on them together, here by coalescing them into a GSO packet). Each
// TCP socket has one, active between txBegin and txEnd while it is locked;
// it is never shared between sockets. The slice is reused, so queueing
// allocates nothing after the first use.
type xmitQueue struct {
	dev   *NetDevice
	skbs  []*skb.SKB
	bytes int // the length of skbs' packets
	depth int // nesting of txBegin; flushed when it returns to 0
}

// add queues b for dev, flushing first if the queue holds another device's
// packets, and after if it is full.
func (q *xmitQueue) add(dev *NetDevice, b *skb.SKB) {
	if q.dev != dev && len(q.skbs) > 0 {
		q.flush()
	}
	if q.skbs == nil {
		q.skbs = make([]*skb.SKB, 0, xmitQueueMax)
	}
	q.dev = dev
	q.skbs = append(q.skbs, b)
	q.bytes += b.Len()
	if len(q.skbs) >= xmitQueueMax || q.bytes >= xmitQueueBytes {
		q.flush()
	}
}

// flush hands the queued packets to the device (through its Out
// impairment stage, if any) in one batch. Like xmit, it never blocks and
// never calls a Receiver, so the caller may hold socket locks.
func (q *xmitQueue) flush() {
	if len(q.skbs) == 0 {
		return
	}
	if st := q.dev.impairStage(Out); st != nil {
		st.EnqueueBatch(q.skbs)
	} else {
		q.dev.dev.Xmit(q.skbs)
	}
	clear(q.skbs)
	q.skbs = q.skbs[:0]
	q.bytes = 0
	q.dev = nil
}
