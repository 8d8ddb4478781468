package netstack

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"

	"sockfs/netstack/impair"
	"sockfs/skb"
)

// injectTun hands pkt to b's device laid out as tun_alloc_skb lays out a
// packet under a page: linear, after NET_SKB_PAD (64) of headroom.
func (n *testNet) injectTun(pkt []byte) int {
	s := skb.Alloc(64 + len(pkt))
	s.Reserve(64)
	s.PutData(pkt)
	ts := s.Truesize()
	n.db.NetifRx([]*skb.SKB{s})
	return ts
}

// fragTruesizes are UDP payloads sent in fragments at MTU 1500, with the
// truesize the live 6.18.44 kernel charged each reassembled IPv4 datagram
// received from a TUN (`make linuxdiff`, the udpfrag rows): the fragments'
// truesizes summed, except a fragment that fits the first one's tailroom
// (1500 B: 1480 + 28), which skb_try_coalesce copies for nothing.
var fragTruesizes = []struct{ payload, truesize int }{
	{1500, 2304},            // 2304, and 28 bytes copied into its tailroom
	{2000, 2304 + 1280},     // 548-byte last fragment: kmalloc-1k
	{2500, 2304 + 2304},     // 1048-byte last fragment: kmalloc-2k
	{2960, 2304*2 + 832},    // an 8-byte third fragment: the small-head cache
	{4000, 2304 * 3},        // the outside probe's datagram
	{9000, 2304*6 + 832},    // 148-byte last fragment
	{1472 + 1480, 2304 * 2}, // two full fragments
}

// TestFragmentReasmTruesize: a datagram reassembled from IPv4 fragments is
// charged what inet_frag_reasm_finish leaves in the head's truesize, as
// the kernel measured; the fragment queue held the fragments' truesizes
// and gives them all back. sockfs charged its one linear copy (8448 for
// 4000 B, 4352 for 2000 and 2500 B).
func TestFragmentReasmTruesize(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 15)
	for i, c := range fragTruesizes {
		port := uint16(7200 + i)
		srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, port))
		u := make([]byte, 8+c.payload)
		binary.BigEndian.PutUint16(u[0:], 1234)
		binary.BigEndian.PutUint16(u[2:], port)
		binary.BigEndian.PutUint16(u[4:], uint16(len(u))) // checksum 0: none
		held := 0
		for off := 0; off < len(u); off += 1480 {
			end := min(off+1480, len(u))
			frag := uint16(off / 8)
			if end < len(u) {
				frag |= 0x2000 // MF
			}
			held += n.injectTun(ipPacket(17, uint16(100+i), frag, u[off:end]))
			if end < len(u) && n.b.frags.Mem() != held {
				t.Fatalf("%d B: frag mem %d, want the fragments' truesizes %d", c.payload, n.b.frags.Mem(), held)
			}
		}
		if got := srv.Mem().RmemAlloc(); got != c.truesize {
			t.Errorf("%d B in %d fragments: rmem_alloc %d, want %d", c.payload, (len(u)+1479)/1480, got, c.truesize)
		}
		if n.b.frags.Mem() != 0 || n.b.frags.Queues() != 0 {
			t.Fatalf("%d B: reassembly state left behind", c.payload)
		}
		buf := make([]byte, 10000)
		if k, _, err := srv.RecvFrom(context.Background(), buf); err != nil || k != c.payload {
			t.Fatalf("%d B: received %d, %v", c.payload, k, err)
		}
	}
}

// TestFragment6ReasmTruesize: the same for IPv6 (ip6_frag_reasm also
// calls inet_frag_reasm_finish with try_coalesce), 1448 payload bytes a
// fragment at MTU 1500. The expected values follow the kernel's rule; the
// linuxdiff harness has no IPv6 to measure them.
func TestFragment6ReasmTruesize(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 64)
	for i, c := range []struct{ payload, truesize int }{
		{1500, 2304},            // 1448 + 60: the 60 bytes fit the tailroom
		{2000, 2304 + 1280},     // 560 bytes: a 608-byte packet, kmalloc-1k
		{4000, 2304 * 3},        // 1448 + 1448 + 1112
		{1440 + 1448, 2304 * 2}, // two full fragments
	} {
		port := uint16(7300 + i)
		srv := mustUDP(t, n.b, netip.AddrPortFrom(addr6B, port))
		d := udp6Dgram(1, port, string(make([]byte, c.payload)))
		held := 0
		for off := 0; off < len(d); off += 1448 {
			end := min(off+1448, len(d))
			held += n.injectTun(ip6Packet(44, 64, cat(fragHdr(17, off, end < len(d), uint32(200+i)), d[off:end])))
			if end < len(d) && n.b.frags6.Mem() != held {
				t.Fatalf("%d B: frag mem %d, want %d", c.payload, n.b.frags6.Mem(), held)
			}
		}
		if got := srv.Mem().RmemAlloc(); got != c.truesize {
			t.Errorf("%d B: rmem_alloc %d, want %d", c.payload, got, c.truesize)
		}
		if n.b.frags6.Mem() != 0 || n.b.frags6.Queues() != 0 {
			t.Fatalf("%d B: reassembly state left behind", c.payload)
		}
		buf := make([]byte, 10000)
		if k, _, err := srv.RecvFrom(context.Background(), buf); err != nil || k != c.payload {
			t.Fatalf("%d B: received %d, %v", c.payload, k, err)
		}
	}
}
