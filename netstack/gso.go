package netstack

import (
	"net/netip"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// gsoSegment cuts a TCP/IPv4 super-packet (a TUN offload's GSO skb) into
// the MTU-sized packets it stands for, appending them to out, and frees b;
// a packet that is not a super-packet is appended unchanged. The segments
// are gsoCutter's, with complete checksums. Used only in front of an
// impairment stage: netem in Linux drops, delays and duplicates a GSO skb
// whole (the usual advice is to turn TSO off under netem), so "in loss 1%"
// would lose 1% of 64 KiB bursts. Here an impaired link impairs wire-sized
// packets, which is what an experiment on it means; without impairment
// super-packets go up the stack whole, and after the stage GRO (gro.go)
// merges what it can again, as a host behind a real NIC would.
func gsoSegment(b *skb.SKB, out []*skb.SKB) []*skb.SKB {
	var g gsoCutter
	if !g.init(b, false) {
		return append(out, b)
	}
	for p := g.next(); p != nil; p = g.next() {
		out = append(out, p)
	}
	return out
}

// gsoCutter cuts a TCP/IPv4 GSO skb (data at the IP header, headers in the
// linear part, payload after them and in page fragments: one TCP built for
// a device without TSO or an impairment stage in front of one, or one a
// TUN delivered) into the wire packets it stands for, one per next call.
// Each segment is built as skb_segment builds it on a scatter-gather path:
// a head of its own (b's headroom, the headers fixed up as tcp_gso_segment
// fixes them, and whatever of its payload lies in b's linear part) with the
// rest of its payload as references to b's pages, charged the head's
// truesize plus the referenced bytes. IP IDs advance per segment, FIN and
// PSH stay on the last segment and CWR on the first. Segments are charged
// to the sender as the GSO skb was (tcp_gso_segment moves the destructor).
// The zero value is not usable; init it with the skb, which it frees when
// the last segment is cut. Mirrors skb_gso_segment -> tcp4_gso_segment
// (and tcp6_gso_segment, for a TCP/IPv6 skb) on the transmit path
// (validate_xmit_skb).
type gsoCutter struct {
	b      *skb.SKB
	hwCsum bool // leave each segment's checksum to the device
	owner  *memctl.Sock
	ihl    int
	hlen   int
	mss    int
	off    int // payload bytes cut so far
	total  int // payload bytes
	seq    uint32
	id     uint16
	flags  header.TCPFlags
	src    netip.Addr
	dst    netip.Addr
	v6     bool // TCP/IPv6: no IP ID or header checksum, a payload length
}

// init prepares to cut b; it reports false (and leaves b alone) if b is not
// a GSO packet of more than one segment with its headers in the linear
// part.
func (g *gsoCutter) init(b *skb.SKB, hwCsum bool) bool {
	sh := b.Shared()
	mss := int(sh.GSOSize)
	if mss == 0 || sh.GSOType&(skb.GSOTCPv4|skb.GSOTCPv6) == 0 || b.HeadLen() < header.IPv4MinSize {
		return false
	}
	ip := header.IPv4(b.Data())
	ihl := ip.HeaderLength()
	v6 := ip.Version() == header.IPv6Version
	if v6 {
		// tcp6_gso_segment: TCP right after the fixed header (what TCP
		// builds and what a TSO6 super-packet carries).
		ihl = header.IPv6MinSize
		if b.HeadLen() < ihl+header.TCPMinSize || header.IPv6(b.Data()).NextHeader() != header.IPv6NextTCP {
			return false
		}
	} else if ip.Protocol() != header.IPv4ProtocolTCP || b.HeadLen() < ihl+header.TCPMinSize {
		return false
	}
	th := header.TCP(b.Data()[ihl:])
	hlen := ihl + th.DataOffset()
	if th.DataOffset() < header.TCPMinSize || b.HeadLen() < hlen || b.Len()-hlen <= mss {
		return false
	}
	*g = gsoCutter{
		b: b, hwCsum: hwCsum, owner: memctl.WOwner(b.Destructor()),
		ihl: ihl, hlen: hlen, mss: mss, total: b.Len() - hlen,
		seq: th.Seq(), flags: th.Flags(), v6: v6,
	}
	if v6 {
		g.src, g.dst = header.IPv6(b.Data()).SrcAddr(), header.IPv6(b.Data()).DstAddr()
	} else {
		g.id, g.src, g.dst = ip.ID(), ip.SrcAddr(), ip.DstAddr()
	}
	return true
}

// next returns the next segment, or nil (having freed the GSO skb) when
// all are cut.
func (g *gsoCutter) next() *skb.SKB {
	if g.b == nil {
		return nil
	}
	if g.off >= g.total {
		g.b.Free()
		g.b = nil
		return nil
	}
	b := g.b
	n := min(g.mss, g.total-g.off)
	at := g.hlen + g.off                   // packet offset of this segment's payload
	linN := max(min(b.HeadLen()-at, n), 0) // of it, bytes in b's linear part
	if gsoFragsSpanned(b, at+linN, n-linN) > skb.MaxFrags {
		linN = n // cannot happen for an MSS; copy rather than fail
	}
	s := skb.Alloc(b.Headroom() + g.hlen + linN)
	s.Reserve(b.Headroom())
	p := s.Put(g.hlen + linN)
	copy(p, b.Data()[:g.hlen])
	b.CopyBits(at, p[g.hlen:])
	gsoFragRef(s, b, at+linN, n-linN)
	s.AddTruesize(n - linN) // nskb->truesize += nskb->data_len
	seg := g.off / g.mss
	last := g.off+n >= g.total
	th := header.TCP(p[g.ihl:])
	if g.v6 {
		header.IPv6(p).SetPayloadLength(uint16(g.hlen - g.ihl + n))
	} else {
		ip := header.IPv4(p)
		ip.SetTotalLength(uint16(g.hlen + n))
		ip.SetID(g.id + uint16(seg))
		ip.SetChecksum(0)
		ip.SetChecksum(ip.CalculateChecksum())
	}
	f := g.flags
	if seg > 0 {
		f &^= header.TCPFlagCwr
	}
	if !last {
		f &^= header.TCPFlagFin | header.TCPFlagPsh
	}
	th.SetFlags(f)
	th.SetSeq(g.seq + uint32(g.off))
	csum := header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, g.src, g.dst, uint16(g.hlen-g.ihl+n))
	s.SetNetworkHeader()
	if g.hwCsum {
		th.SetChecksum(csum)
		s.PartialCsumSet(g.ihl, tcpCsumOffset)
	} else {
		th.SetChecksum(0)
		s.Pull(g.ihl)
		th.SetChecksum(^skbChecksum(s, csum))
		s.Push(g.ihl)
	}
	s.Dev, s.Mark, s.Protocol = b.Dev, b.Mark, b.Protocol
	if g.owner != nil {
		memctl.SetOwnerW(s, g.owner)
	}
	g.off += n
	return s
}

// gsoFragRef appends to s references to the n bytes of b's fragment data
// that start at packet offset off (past b's linear part), each with a page
// reference of its own. Mirrors skb_segment's frag loop (__skb_frag_ref,
// then trimming the first and last fragment to the segment).
func gsoFragRef(s, b *skb.SKB, off, n int) {
	off -= b.HeadLen()
	for i := 0; i < b.NrFrags() && n > 0; i++ {
		f := b.Frag(i)
		if off >= f.Size {
			off -= f.Size
			continue
		}
		k := min(f.Size-off, n)
		f.Page.Get()
		s.AddFrag(f.Page, f.Off+off, k) // gsoFragsSpanned checked the room
		n -= k
		off = 0
	}
}

// gsoFragsSpanned is how many of b's fragments the n bytes at packet
// offset off (past b's linear part) touch.
func gsoFragsSpanned(b *skb.SKB, off, n int) int {
	off -= b.HeadLen()
	c := 0
	for i := 0; i < b.NrFrags() && n > 0; i++ {
		f := b.Frag(i)
		if off >= f.Size {
			off -= f.Size
			continue
		}
		n -= min(f.Size-off, n)
		off = 0
		c++
	}
	return c
}
