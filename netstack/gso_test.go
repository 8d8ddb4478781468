package netstack

import (
	"bytes"
	"net/netip"
	"testing"

	"sockfs/netstack/header"
	"sockfs/skb"
)

// A super-packet as a TUN offload delivers it (headers in the head, the
// payload in page fragments, gso_size set) comes out of gsoSegment as the
// wire packets TSO would have sent: each with valid IP and TCP checksums,
// its own length, IP ID and sequence number; FIN and PSH on the last only,
// CWR on the first only; the payloads joined are the original payload.
// As skb_segment builds them, each has a small head of its own and
// references the super-packet's pages for its payload, charged the head
// plus the payload bytes.
func TestGSOSegment(t *testing.T) {
	src, dst := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	const mss, payload, hlen = 1448, 10000, header.IPv4MinSize + 32
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b := skb.Alloc(hlen)
	h := b.Put(hlen)
	header.IPv4(h).Encode(&header.IPv4Fields{TotalLength: hlen + payload, ID: 100, TTL: 64,
		Protocol: header.IPv4ProtocolTCP, Src: src, Dst: dst, DontFragment: true})
	header.TCP(h[header.IPv4MinSize:]).Encode(&header.TCPFields{SrcPort: 40000, DstPort: 5001,
		Seq: 0xfffff000, Ack: 7, DataOffset: 32, Window: 512,
		Flags: header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin | header.TCPFlagCwr})
	for off := 0; off < payload; {
		pg := skb.NewPage()
		n := copy(pg.Buf, data[off:])
		b.AddFrag(pg, 0, n)
		off += n
	}
	sh := b.Shared()
	sh.GSOSize, sh.GSOSegs, sh.GSOType = mss, (payload+mss-1)/mss, skb.GSOTCPv4

	segs := gsoSegment(b, nil)
	if want := (payload + mss - 1) / mss; len(segs) != want {
		t.Fatalf("%d segments, want %d", len(segs), want)
	}
	var joined []byte
	for i, s := range segs {
		p := s.Data()
		ip := header.IPv4(p)
		th := header.TCP(p[header.IPv4MinSize:])
		n := min(mss, payload-i*mss)
		if s.Len() != hlen+n || int(ip.TotalLength()) != hlen+n {
			t.Errorf("segment %d: len %d, total length %d, want %d", i, s.Len(), ip.TotalLength(), hlen+n)
		}
		if ip.ID() != uint16(100+i) || !ip.IsChecksumValid() {
			t.Errorf("segment %d: id %d, ip checksum valid %v", i, ip.ID(), ip.IsChecksumValid())
		}
		s.Pull(header.IPv4MinSize)
		if skbChecksum(s, header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, src, dst, uint16(s.Len()))) != 0xffff {
			t.Errorf("segment %d: bad tcp checksum", i)
		}
		s.Push(header.IPv4MinSize)
		if th.Seq() != 0xfffff000+uint32(i*mss) {
			t.Errorf("segment %d: seq %#x", i, th.Seq())
		}
		f := th.Flags()
		last := i == len(segs)-1
		if (f&header.TCPFlagFin != 0) != last || (f&header.TCPFlagPsh != 0) != last ||
			(f&header.TCPFlagCwr != 0) != (i == 0) || f&header.TCPFlagAck == 0 {
			t.Errorf("segment %d: flags %v", i, f)
		}
		if s.Shared().GSOSize != 0 || s.HeadLen() != hlen || s.DataLen() != n {
			t.Errorf("segment %d: gso_size %d, %d bytes in the head, %d in fragments", i, s.Shared().GSOSize, s.HeadLen(), s.DataLen())
		}
		if want := skb.CurrentProfile().AllocTruesize(hlen) + n; s.Truesize() != want {
			t.Errorf("segment %d: truesize %d, want %d", i, s.Truesize(), want)
		}
		pl := make([]byte, n)
		s.CopyBits(hlen, pl)
		joined = append(joined, pl...)
		s.Free()
	}
	if !bytes.Equal(joined, data) {
		t.Errorf("payloads joined differ from the original")
	}

	// Payload in the head (a small super-packet, which a TUN keeps
	// linear) is copied into each segment's head, as skb_segment copies
	// hsize bytes; the head has the super-packet's headroom too.
	b = skb.Alloc(64 + hlen + 3000)
	b.Reserve(64)
	h = b.Put(hlen + 3000)
	header.IPv4(h).Encode(&header.IPv4Fields{TotalLength: hlen + 3000, ID: 1, TTL: 64,
		Protocol: header.IPv4ProtocolTCP, Src: src, Dst: dst, DontFragment: true})
	header.TCP(h[header.IPv4MinSize:]).Encode(&header.TCPFields{SrcPort: 40000, DstPort: 5001,
		Seq: 1, Ack: 7, DataOffset: 32, Window: 512, Flags: header.TCPFlagAck})
	copy(h[hlen:], data)
	sh = b.Shared()
	sh.GSOSize, sh.GSOSegs, sh.GSOType = mss, 3, skb.GSOTCPv4
	segs = gsoSegment(b, nil)
	for i, s := range segs {
		n := min(mss, 3000-i*mss)
		pl := make([]byte, n)
		s.CopyBits(hlen, pl)
		if s.IsNonlinear() || s.Headroom() != 64 || !bytes.Equal(pl, data[i*mss:i*mss+n]) ||
			s.Truesize() != skb.CurrentProfile().AllocTruesize(64+hlen+n) {
			t.Errorf("linear segment %d: %v", i, s)
		}
		s.Free()
	}

	// A packet that is not a super-packet passes through untouched.
	c := skb.Alloc(100)
	c.Put(100)
	if out := gsoSegment(c, nil); len(out) != 1 || out[0] != c {
		t.Errorf("plain packet: %v", out)
	}
	c.Free()
}
