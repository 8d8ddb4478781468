package netstack

import (
	"sockfs/netstack/header"
	"sockfs/skb"
)

// gsoSegment cuts a TCP/IPv4 super-packet (a TUN offload's GSO skb) into
// the MTU-sized packets it stands for, appending them to out, and frees b.
// Each segment is built as skb_segment builds it on a scatter-gather path:
// a head of its own (b's headroom, the headers, and whatever of its
// payload lies in b's linear part) with the rest of its payload as
// references to b's page fragments, charged the head's truesize plus the
// referenced bytes (nskb->truesize += nskb->data_len). Checksums are
// complete (IP and TCP); sequence numbers, IP IDs and lengths advance as
// the sender's TSO would have cut them; FIN and PSH stay on the last
// segment and CWR on the first. A packet that is not a super-packet is
// appended unchanged. Mirrors skb_gso_segment -> inet_gso_segment ->
// tcp_gso_segment -> skb_segment, in software.
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
	lin := b.HeadLen() - hlen // payload bytes in b's linear part
	for off := 0; off < payload; off += mss {
		n := min(mss, payload-off)
		hsize := min(max(lin-off, 0), n) // this segment's bytes of lin
		if gsoFragsSpanned(b, hlen+off+hsize, n-hsize) > skb.MaxFrags {
			hsize = n // cannot happen for an MSS; copy rather than fail
		}
		s := skb.Alloc(b.Headroom() + hlen + hsize)
		s.Reserve(b.Headroom())
		p := s.Put(hlen + hsize)
		copy(p, hdr)
		b.CopyBits(hlen+off, p[hlen:])
		gsoFragRef(s, b, hlen+off+hsize, n-hsize)
		s.AddTruesize(n - hsize)
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
		sth.SetChecksum(0)
		s.Pull(ihl)
		sth.SetChecksum(^skbChecksum(s, header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, src, dst, uint16(s.Len()))))
		s.Push(ihl)
		out = append(out, s)
		id++
	}
	b.Free()
	return out
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
