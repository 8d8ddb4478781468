package header

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

// echoRequestPkt is an IPv4 packet carrying an ICMP echo request as Linux's
// ping sends it: 192.168.1.10 -> 192.168.1.1, 56 bytes of data (a 16-byte
// timestamp, then 0x10 to 0x37).
//
// IP checksum by hand: 4500 + 0054 + 4a2f + 4000 + 4001 + 0000 + c0a8 +
// 010a + c0a8 + 0101 = 0x292df; folded 0x92df + 0x2 = 0x92e1; complement
// 0x6d1e.
var echoRequestPkt = unhex("" +
	"45 00 00 54" + // version 4, IHL 5; TOS 0; total length 84
	"4a 2f 40 00" + // ID 0x4a2f; flags DF, offset 0
	"40 01 6d 1e" + // TTL 64; protocol ICMP; checksum 0x6d1e
	"c0 a8 01 0a" + // source 192.168.1.10
	"c0 a8 01 01" + // destination 192.168.1.1
	"08 00 5d 31" + // ICMP: type 8 (echo request), code 0, checksum 0x5d31
	"0b 2a 00 01" + // identifier 0x0b2a, sequence 1
	"5f 4e 2b 65 00 00 00 00 3c 1d 0a 00 00 00 00 00" + // timestamp
	"10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f" +
	"20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f" +
	"30 31 32 33 34 35 36 37")

func TestIPv4Parse(t *testing.T) {
	h := IPv4(echoRequestPkt)
	if err := h.Check(len(h)); err != nil {
		t.Fatal(err)
	}
	if refChecksum(h[:20]) != 0xffff {
		t.Fatal("fixture's checksum disagrees with the reference sum")
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Version", h.Version(), uint8(4)},
		{"IHL", h.IHL(), uint8(5)},
		{"HeaderLength", h.HeaderLength(), 20},
		{"TOS", h.TOS(), uint8(0)},
		{"TotalLength", h.TotalLength(), uint16(84)},
		{"ID", h.ID(), uint16(0x4a2f)},
		{"Flags", h.Flags(), IPv4FlagDontFragment},
		{"DontFragment", h.DontFragment(), true},
		{"MoreFragments", h.MoreFragments(), false},
		{"FragmentOffset", h.FragmentOffset(), 0},
		{"TTL", h.TTL(), uint8(64)},
		{"Protocol", h.Protocol(), IPv4ProtocolICMP},
		{"Checksum", h.Checksum(), uint16(0x6d1e)},
		{"SrcAddr", h.SrcAddr(), netip.MustParseAddr("192.168.1.10")},
		{"DstAddr", h.DstAddr(), netip.MustParseAddr("192.168.1.1")},
		{"len(Options)", len(h.Options()), 0},
		{"len(Payload)", len(h.Payload()), 64},
		{"IsChecksumValid", h.IsChecksumValid(), true},
		{"CalculateChecksum", h.CalculateChecksum(), uint16(0x6d1e)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Link-layer padding after TotalLength is not payload.
	padded := append(append([]byte(nil), echoRequestPkt...), 0, 0, 0, 0)
	if p := IPv4(padded).Payload(); len(p) != 64 || IPv4(padded).Check(len(padded)) != nil {
		t.Fatalf("padded packet: payload %d bytes", len(p))
	}
}

func TestIPv4Build(t *testing.T) {
	b := make([]byte, len(echoRequestPkt))
	copy(b[20:], echoRequestPkt[20:])
	f := IPv4Fields{
		TotalLength:  84,
		ID:           0x4a2f,
		DontFragment: true,
		TTL:          64,
		Protocol:     IPv4ProtocolICMP,
		Src:          netip.MustParseAddr("192.168.1.10"),
		Dst:          netip.MustParseAddr("192.168.1.1"),
	}
	b[10], b[11] = 0xde, 0xad // Encode must not depend on the old checksum
	IPv4(b).Encode(&f)
	if !bytes.Equal(b, echoRequestPkt) {
		t.Fatalf("built\n%x\nwant\n%x", b, echoRequestPkt)
	}
	got := IPv4(b).Fields()
	if len(got.Options) != 0 {
		t.Fatalf("Fields().Options = %x", got.Options)
	}
	got.Options = nil
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("Fields() = %+v, want %+v", got, f)
	}
}

// TestIPv4Fragment builds the second fragment of a 3000-byte datagram and
// one with options, and reads them back.
func TestIPv4Fragment(t *testing.T) {
	b := make([]byte, 28)
	f := IPv4Fields{
		TotalLength: 28, ID: 7, MoreFragments: true, FragmentOffset: 1480, TTL: 1,
		Protocol: IPv4ProtocolUDP, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
	}
	IPv4(b).Encode(&f)
	// flags/offset word: MF (0x2000) | 1480/8 = 185 = 0x00b9
	if want := unhex("45 00 00 1c 00 07 20 b9 01 11"); !bytes.Equal(b[:10], want) {
		t.Fatalf("built %x, want %x...", b[:10], want)
	}
	h := IPv4(b)
	if h.Check(len(b)) != nil || h.FragmentOffset() != 1480 || !h.MoreFragments() || h.DontFragment() ||
		h.Flags() != IPv4FlagMoreFragments {
		t.Fatalf("fragment fields: %+v", h.Fields())
	}
	h.SetFragment(0, false, true)
	if h.FragmentOffset() != 0 || h.MoreFragments() || !h.DontFragment() {
		t.Fatal("SetFragment")
	}

	// Options: a router alert (94 04 00 00) and 1 byte padded to 4.
	b = make([]byte, 40)
	f = IPv4Fields{TotalLength: 28, TTL: 1, Protocol: 2, Options: unhex("94 04 00 00 01"),
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("224.0.0.22")}
	if f.EncodedLen() != 28 {
		t.Fatalf("EncodedLen = %d", f.EncodedLen())
	}
	for i := range b {
		b[i] = 0xaa
	}
	IPv4(b).Encode(&f)
	h = IPv4(b[:28])
	if h.Check(28) != nil || h.HeaderLength() != 28 || !bytes.Equal(h.Options(), unhex("94 04 00 00 01 00 00 00")) ||
		len(h.Payload()) != 0 || b[28] != 0xaa {
		t.Fatalf("header with options: %x", b)
	}
}

func TestIPv4DecrementTTL(t *testing.T) {
	h := IPv4(bytes.Clone(echoRequestPkt))
	h.DecrementTTL()
	// 0x6d1e was the complement of 0x92e1; 4001 became 3f01, so the sum
	// drops by 0x0100 to 0x91e1 and the checksum is 0x6e1e.
	if h.TTL() != 63 || h.Checksum() != 0x6e1e || h.Check(len(h)) != nil {
		t.Fatalf("TTL %d checksum %#04x", h.TTL(), h.Checksum())
	}
}

func TestIPv4CheckErrors(t *testing.T) {
	good := echoRequestPkt
	mod := func(f func(h IPv4)) []byte {
		b := bytes.Clone(good)
		f(IPv4(b))
		return b
	}
	fix := func(h IPv4) { h.SetChecksum(h.CalculateChecksum()) }
	for _, c := range []struct {
		name   string
		pkt    []byte
		pktLen int // 0: len(pkt)
		want   error
	}{
		{"empty", nil, 0, ErrIPv4Short},
		{"one byte", []byte{0x45}, 0, ErrIPv4Short},
		{"19 bytes", good[:19], 0, ErrIPv4Short},
		{"pktLen below 20", good, 10, ErrIPv4Short},
		{"version 6", mod(func(h IPv4) { h[0] = 0x65; fix(h) }), 0, ErrIPv4Version},
		{"version 0", mod(func(h IPv4) { h[0] = 0x05 }), 0, ErrIPv4Version},
		{"IHL 4", mod(func(h IPv4) { h[0] = 0x44; fix(h) }), 0, ErrIPv4IHL},
		{"IHL 0", mod(func(h IPv4) { h[0] = 0x40 }), 0, ErrIPv4IHL},
		{"IHL past the end", mod(func(h IPv4) { h[0] = 0x4f })[:40], 0, ErrIPv4IHL},
		{"bad checksum", mod(func(h IPv4) { h[11] ^= 1 }), 0, ErrIPv4Checksum},
		{"corrupt address", mod(func(h IPv4) { h[15]++ }), 0, ErrIPv4Checksum},
		{"total below header", mod(func(h IPv4) { h.SetTotalLength(10); fix(h) }), 0, ErrIPv4Length},
		{"total past data", mod(func(h IPv4) { h.SetTotalLength(85); fix(h) }), 0, ErrIPv4Truncated},
		{"truncated packet", good[:60], 0, ErrIPv4Truncated},
		{"pktLen short of total", good, 83, ErrIPv4Truncated},
		{"good", good, 0, nil},
		{"header only", mod(func(h IPv4) { h.SetTotalLength(20); fix(h) }), 0, nil},
	} {
		n := c.pktLen
		if n == 0 {
			n = len(c.pkt)
		}
		err := IPv4(c.pkt).Check(n)
		if err != c.want {
			t.Errorf("%s: Check = %v, want %v", c.name, err, c.want)
		}
		if IPv4(c.pkt).IsValid(n) != (c.want == nil) {
			t.Errorf("%s: IsValid disagrees with Check", c.name)
		}
		if err != nil && err.Error() == "" {
			t.Errorf("%s: empty message", c.name)
		}
	}
}

// TestIPv4ClampedAccessors: with the fixed header present, Options and
// Payload never panic, whatever IHL and TotalLength say.
func TestIPv4ClampedAccessors(t *testing.T) {
	for ihl := range 16 {
		for _, tl := range []uint16{0, 10, 20, 24, 30, 60, 65535} {
			h := make(IPv4, 24)
			h[0] = 0x40 | byte(ihl)
			h.SetTotalLength(tl)
			_, _ = h.Options(), h.Payload()
			_ = h.IsChecksumValid()
			_ = h.CalculateChecksum()
		}
	}
}

// SetCE marks an ECT packet CE with a checksum that stays valid, leaves a
// CE one as it is and refuses a Not-ECT one.
func TestIPv4SetCE(t *testing.T) {
	for _, tc := range []struct {
		tos, want uint8
		ok        bool
	}{{0xb8 | ECNECT0, 0xb8 | ECNCE, true}, {ECNECT1, ECNCE, true}, {ECNCE, ECNCE, true}, {0xb8, 0xb8, false}} {
		h := make(IPv4, IPv4MinSize)
		h.Encode(&IPv4Fields{TOS: tc.tos, TotalLength: 40, TTL: 64, Protocol: 6,
			Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2")})
		if ok := h.SetCE(); ok != tc.ok || h.TOS() != tc.want || !h.IsChecksumValid() {
			t.Errorf("TOS %#x: SetCE %v, TOS %#x, checksum valid %v; want %v %#x", tc.tos, ok, h.TOS(), h.IsChecksumValid(), tc.ok, tc.want)
		}
	}
}
