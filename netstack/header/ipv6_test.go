package header

import (
	"bytes"
	"net/netip"
	"testing"
)

// echo6Pkt is an IPv6 packet carrying an ICMPv6 echo request: fd00:5f::1
// -> fd00:5f::2, identifier 0x1234, sequence 1, data "abcd". The checksum
// 0xadfa was computed apart from this package (over the pseudo-header of
// RFC 8200 8.1: both addresses, length 12, next header 58).
var echo6Pkt = unhex("" +
	"60 00 00 00" + // version 6, traffic class 0, flow label 0
	"00 0c 3a 40" + // payload length 12; next header ICMPv6; hop limit 64
	"fd 00 00 5f 00 00 00 00 00 00 00 00 00 00 00 01" + // source
	"fd 00 00 5f 00 00 00 00 00 00 00 00 00 00 00 02" + // destination
	"80 00 ad fa" + // type 128, code 0, checksum
	"12 34 00 01" + // identifier, sequence
	"61 62 63 64")

var (
	src6 = netip.MustParseAddr("fd00:5f::1")
	dst6 = netip.MustParseAddr("fd00:5f::2")
)

func TestIPv6ParseAndBuild(t *testing.T) {
	h := IPv6(echo6Pkt)
	if err := h.Check(len(h)); err != nil {
		t.Fatal(err)
	}
	if h.Version() != 6 || h.PayloadLength() != 12 || h.NextHeader() != IPv6NextICMP || h.HopLimit() != 64 ||
		h.SrcAddr() != src6 || h.DstAddr() != dst6 || h.TrafficClass() != 0 || h.FlowLabel() != 0 {
		t.Fatalf("parsed %v %v %d %d", h.SrcAddr(), h.DstAddr(), h.PayloadLength(), h.NextHeader())
	}
	m := ICMPv6(echo6Pkt[40:])
	if err := m.Check(src6, dst6); err != nil {
		t.Fatal(err)
	}
	if m.Type() != ICMPv6EchoRequest || m.Ident() != 0x1234 || m.Sequence() != 1 || string(m.Payload()) != "abcd" {
		t.Fatal("ICMPv6 fields")
	}
	// Build the same packet.
	out := make([]byte, len(echo6Pkt))
	IPv6(out).Encode(&IPv6Fields{PayloadLength: 12, NextHeader: IPv6NextICMP, HopLimit: 64, Src: src6, Dst: dst6})
	o := ICMPv6(out[40:])
	o.SetType(ICMPv6EchoRequest)
	o.SetRestOfHeader(0x12340001)
	copy(o[8:], "abcd")
	o.Finish(src6, dst6)
	if !bytes.Equal(out, echo6Pkt) {
		t.Fatalf("built\n% x\nwant\n% x", out, echo6Pkt)
	}
	// Traffic class and flow label straddle byte boundaries.
	IPv6(out).Encode(&IPv6Fields{TrafficClass: 0xb9, FlowLabel: 0xabcde, Src: src6, Dst: dst6})
	if !bytes.Equal(out[:4], []byte{0x6b, 0x9a, 0xbc, 0xde}) || IPv6(out).TrafficClass() != 0xb9 || IPv6(out).FlowLabel() != 0xabcde {
		t.Fatalf("first word % x", out[:4])
	}
	for _, c := range []struct {
		pkt  []byte
		want error
	}{
		{echo6Pkt[:39], ErrIPv6Short},
		{append([]byte{0x50}, echo6Pkt[1:]...), ErrIPv6Version},
		{echo6Pkt[:51], ErrIPv6Truncated},
	} {
		if err := IPv6(c.pkt).Check(len(c.pkt)); err != c.want {
			t.Errorf("Check: %v, want %v", err, c.want)
		}
	}
	bad := bytes.Clone(echo6Pkt)
	bad[len(bad)-1] ^= 1
	if ICMPv6(bad[40:]).Check(src6, dst6) != ErrICMPv6Checksum || ICMPv6(bad[40:43]).Check(src6, dst6) != ErrICMPv6Short {
		t.Fatal("bad ICMPv6 accepted")
	}
}

func TestIPv6FragmentHeader(t *testing.T) {
	f := make(IPv6Fragment, IPv6FragmentSize)
	f.Encode(IPv6NextUDP, 1448, true, 0xdeadbeef)
	if !bytes.Equal(f, unhex("11 00 05 a9 de ad be ef")) {
		t.Fatalf("built % x", []byte(f))
	}
	if f.NextHeader() != 17 || f.FragmentOffset() != 1448 || !f.MoreFragments() || f.ID() != 0xdeadbeef {
		t.Fatal("parsed fields")
	}
}

func TestIPv6Options(t *testing.T) {
	// Hop-by-hop as MLD sends it: router alert (MLD), PadN of 0.
	h := unhex("3a 00 05 02 00 00 01 00")
	it := IPv6Options{H: h}
	opt, ok, err := it.Next()
	if err != nil || !ok || opt.Type != IPv6OptRouterAlert || !bytes.Equal(opt.Data, []byte{0, 0}) || opt.Offset != 2 {
		t.Fatalf("first option %+v %v %v", opt, ok, err)
	}
	if _, ok, err := it.Next(); ok || err != nil {
		t.Fatalf("past the end: %v %v", ok, err)
	}
	for name, bad := range map[string][]byte{
		"option past the header": unhex("3a 00 1e 09 00 00 00 00"),
		"PadN over 7 bytes":      unhex("3a 01 01 0a 00 00 00 00 00 00 00 00 00 00 00 00"),
		"PadN not zeros":         unhex("3a 00 01 04 00 00 01 00"),
		"eight Pad1":             unhex("3a 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
	} {
		it := IPv6Options{H: bad}
		var err error
		for range 16 {
			var ok bool
			if _, ok, err = it.Next(); !ok {
				break
			}
		}
		if err != ErrIPv6Option {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzIPv6(f *testing.F) {
	f.Add(echo6Pkt)
	f.Add(echo6Pkt[:40])
	f.Add(unhex("60 00 00 00 00 10 00 01" + "fd00005f000000000000000000000001fd00005f000000000000000000000002" + "3a00050200000100 8f000000 00000001"))
	f.Add(unhex("60 00 00 00 00 10 2c 40" + "fd00005f000000000000000000000001fd00005f000000000000000000000002" + "11000001 00000009 0001000200080000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := IPv6(b)
		if err := h.Check(len(b)); err != nil {
			if _, ok := err.(Error); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		_, _, _, _ = h.SrcAddr(), h.DstAddr(), h.TrafficClass(), h.FlowLabel()
		// Round trip.
		enc := IPv6(bytes.Clone(b))
		enc.Encode(&IPv6Fields{TrafficClass: h.TrafficClass(), FlowLabel: h.FlowLabel(), PayloadLength: h.PayloadLength(),
			NextHeader: h.NextHeader(), HopLimit: h.HopLimit(), Src: h.SrcAddr(), Dst: h.DstAddr()})
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip\n% x\n% x", b[:40], enc[:40])
		}
		// Walk the extension header chain as a parser would: it ends,
		// every header inside the packet.
		nh, off := h.NextHeader(), IPv6MinSize
		end := IPv6MinSize + int(h.PayloadLength())
		for steps := 0; IPv6IsExtHeader(nh) && nh != IPv6NextNone; steps++ {
			if steps > end/8 {
				t.Fatal("chain walk does not end")
			}
			n, ok := IPv6ExtHeaderLen(nh, b[off:end])
			if !ok {
				return
			}
			if n < 8 || off+n > end {
				t.Fatalf("header of %d bytes at %d past %d", n, off, end)
			}
			if nh == IPv6NextHopByHop || nh == IPv6NextDestOpts {
				it := IPv6Options{H: b[off : off+n]}
				for i := 0; ; i++ {
					opt, ok, err := it.Next()
					if err != nil || !ok {
						break
					}
					if i > n || opt.Offset < 2 || opt.Offset+2+len(opt.Data) > n {
						t.Fatalf("option %+v in a header of %d", opt, n)
					}
				}
			}
			nh = b[off]
			off += n
		}
	})
}

func FuzzICMPv6(f *testing.F) {
	f.Add(echo6Pkt[40:])
	f.Add(unhex("87 00 00 00 00 00 00 00 fd00005f000000000000000000000002"))
	f.Add(unhex("01 04 00 00 00 00 00 00 60"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ICMPv6(b)
		err := m.Check(src6, dst6)
		if err == ErrICMPv6Checksum {
			m = ICMPv6(bytes.Clone(b))
			m.Finish(src6, dst6)
			err = m.Check(src6, dst6)
		}
		if err != nil {
			if err != ErrICMPv6Short || len(b) >= ICMPv6MinSize {
				t.Fatalf("%v for %d bytes", err, len(b))
			}
			return
		}
		_, _, _, _ = m.Type(), m.Code(), m.RestOfHeader(), m.Payload()
		if len(m) >= ICMPv6NeighborMinSize {
			_ = m.Target()
		}
		// A message from the other direction does not pass (the
		// pseudo-header is in the sum) unless the addresses' sums agree,
		// which they do: swapping them keeps the sum.
		if m.Check(dst6, src6) != nil {
			t.Fatal("checksum depends on the addresses' order")
		}
	})
}
