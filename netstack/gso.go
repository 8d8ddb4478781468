package netstack

import (
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
