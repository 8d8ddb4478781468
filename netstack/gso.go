package netstack

import (
	"net/netip"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// gsoSegment cuts a TCP/IPv4 super-packet (a TUN offload's GSO skb) into
// the MTU-sized packets it stands for, appending them to out, and frees b.
// Each segment is a linear skb of its own size class with complete IP and
// TCP checksums; sequence numbers, IP IDs and lengths advance as the
// sender's TSO would have cut them; FIN and PSH stay on the last segment
// and CWR on the first. A packet that is not a super-packet is appended
// unchanged. Mirrors skb_gso_segment -> inet_gso_segment ->
// tcp_gso_segment, in software.
//
// Used only in front of an impairment stage: netem in Linux drops, delays
// and duplicates a GSO skb whole (the usual advice is to turn TSO off
// under netem), so "in loss 1%" would lose 1% of 64 KiB bursts. Here an
// impaired link impairs wire-sized packets, which is what an experiment
// on it means; without impairment super-packets go up the stack whole.
func gsoSegment(b *skb.SKB, out []*skb.SKB) []*skb.SKB {
	sh := b.Shared()
	mss := int(sh.GSOSize)
	if mss == 0 || sh.GSOType&skb.GSOTCPv4 == 0 || b.HeadLen() < header.IPv4MinSize {
		return append(out, b)
	}
	ip := header.IPv4(b.Data())
	ihl := ip.HeaderLength()
	if ip.Protocol() != header.IPv4ProtocolTCP || b.HeadLen() < ihl+header.TCPMinSize {
		return append(out, b)
	}
	th := header.TCP(b.Data()[ihl:])
	hlen := ihl + th.DataOffset()
	payload := b.Len() - hlen
	if th.DataOffset() < header.TCPMinSize || b.HeadLen() < hlen || payload <= mss {
		return append(out, b)
	}
	hdr := b.Data()[:hlen]
	src, dst := ip.SrcAddr(), ip.DstAddr()
	seq, id, flags := th.Seq(), ip.ID(), th.Flags()
	for off := 0; off < payload; off += mss {
		n := min(mss, payload-off)
		s := skb.Alloc(hlen + n)
		p := s.Put(hlen + n)
		copy(p, hdr)
		b.CopyBits(hlen+off, p[hlen:])
		sip, sth := header.IPv4(p), header.TCP(p[ihl:])
		sip.SetTotalLength(uint16(hlen + n))
		sip.SetID(id)
		sip.SetChecksum(sip.CalculateChecksum())
		f := flags
		if off > 0 {
			f &^= header.TCPFlagCwr
		}
		if off+n < payload {
			f &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		sth.SetFlags(f)
		sth.SetSeq(seq + uint32(off))
		sth.SetChecksum(sth.CalculateChecksum(src, dst))
		out = append(out, s)
		id++
	}
	b.Free()
	return out
}

// gsoCutter cuts a TCP/IPv4 GSO skb that TCP built (data at the IP header,
// headers in the linear part, payload after them and in page fragments)
// into the wire packets it stands for, one per next call, for a device
// without TSO or an impairment stage in front of one. Each segment gets a
// copy of the headers, fixed up as tcp_gso_segment fixes them, and
// references to the payload's pages (skb_segment shares the fragments the
// same way; payload in the linear part is copied). Segments are charged to
// the sender as the GSO skb was (tcp_gso_segment moves the destructor).
// The zero value is not usable; init it with the skb, which it frees when
// the last segment is cut. Mirrors skb_gso_segment -> tcp4_gso_segment
// on the transmit path (validate_xmit_skb).
type gsoCutter struct {
	b      *skb.SKB
	hwCsum bool // leave each segment's checksum to the device
	owner  *memctl.Sock
	ihl    int
	hlen   int
	mss    int
	off    int // payload bytes cut so far
	total  int // payload bytes
	frag   int // current fragment, and the bytes of it already cut
	fragAt int
	seq    uint32
	id     uint16
	flags  header.TCPFlags
	src    netip.Addr
	dst    netip.Addr
}

// init prepares to cut b; it reports false (and leaves b alone) if b is not
// a GSO packet of more than one segment with its headers in the linear
// part.
func (g *gsoCutter) init(b *skb.SKB, hwCsum bool) bool {
	mss := int(b.Shared().GSOSize)
	if mss == 0 || b.HeadLen() < header.IPv4MinSize {
		return false
	}
	ip := header.IPv4(b.Data())
	ihl := ip.HeaderLength()
	if ip.Protocol() != header.IPv4ProtocolTCP || b.HeadLen() < ihl+header.TCPMinSize {
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
		seq: th.Seq(), id: ip.ID(), flags: th.Flags(), src: ip.SrcAddr(), dst: ip.DstAddr(),
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
	linPay := b.HeadLen() - g.hlen // payload bytes in the linear part
	linN := max(min(linPay-g.off, n), 0)
	s := skb.Alloc(g.hlen + linN)
	p := s.Put(g.hlen + linN)
	copy(p, b.Data()[:g.hlen])
	if linN > 0 {
		copy(p[g.hlen:], b.Data()[g.hlen+g.off:g.hlen+g.off+linN])
	}
	for left := n - linN; left > 0; {
		f := b.Frag(g.frag)
		take := min(f.Size-g.fragAt, left)
		f.Page.Get()
		if !s.AddFrag(f.Page, f.Off+g.fragAt, take) {
			panic("netstack: a GSO segment needs more fragments than an skb holds")
		}
		s.AddTruesize(take)
		left -= take
		if g.fragAt += take; g.fragAt == f.Size {
			g.frag++
			g.fragAt = 0
		}
	}
	seg := g.off / g.mss
	last := g.off+n >= g.total
	ip, th := header.IPv4(p), header.TCP(p[g.ihl:])
	ip.SetTotalLength(uint16(g.hlen + n))
	ip.SetID(g.id + uint16(seg))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
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
