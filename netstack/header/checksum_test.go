package header

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// refChecksum is a deliberately naive RFC 1071 sum, 16 bits at a time with
// the end-around carry folded at the end, written independently of
// Checksum to check it. It returns the uncomplemented sum.
func refChecksum(b []byte) uint16 {
	var s uint64
	for i := 0; i < len(b); i += 2 {
		w := uint64(b[i]) << 8
		if i+1 < len(b) {
			w |= uint64(b[i+1])
		}
		s += w
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// refPseudo returns the IPv4 pseudo-header bytes (RFC 768, RFC 9293 3.1).
func refPseudo(src, dst string, proto uint8, length int) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	return append(append(s[:], d[:]...), 0, proto, byte(length>>8), byte(length))
}

// unhex decodes hex with spaces allowed between bytes.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestChecksumRFC1071Example is the worked example of RFC 1071 section 3:
// the words 0001 f203 f4f5 f6f7 sum to 2ddf0, folded ddf2.
func TestChecksumRFC1071Example(t *testing.T) {
	b := unhex("00 01 f2 03 f4 f5 f6 f7")
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Fatalf("Checksum = %#04x, want 0xddf2", got)
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4099)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	ff := make([]byte, 300)
	for i := range ff {
		ff[i] = 0xff
	}
	for n := 0; n <= 300; n++ {
		for _, off := range []int{0, 1, 3, 7} { // unaligned starts too
			b := buf[off : off+n]
			if got, want := Checksum(b, 0), refChecksum(b); got != want {
				t.Fatalf("len %d off %d: Checksum %#04x, reference %#04x", n, off, got, want)
			}
		}
		// All-ones words stress the end-around carry.
		if got, want := Checksum(ff[:n], 0), refChecksum(ff[:n]); got != want {
			t.Fatalf("0xff len %d: Checksum %#04x, reference %#04x", n, got, want)
		}
	}
	for range 2000 {
		n := r.IntN(len(buf))
		init := uint16(r.Uint32())
		want := CombineChecksums(refChecksum(buf[:n]), init)
		if got := Checksum(buf[:n], init); got != want && !(got == 0xffff && want == 0) && !(got == 0 && want == 0xffff) {
			t.Fatalf("len %d initial %#04x: Checksum %#04x, reference %#04x", n, init, got, want)
		}
	}
	if Checksum(nil, 0) != 0 || Checksum(make([]byte, 64), 0) != 0 {
		t.Fatal("zeros must sum to 0")
	}
}

func TestChecksumPartialSumsCombine(t *testing.T) {
	b := make([]byte, 1501)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	whole := refChecksum(b)
	for _, split := range []int{0, 2, 100, 700, 1500} {
		if got := Checksum(b[split:], Checksum(b[:split], 0)); got != whole {
			t.Errorf("chained at %d: %#04x, want %#04x", split, got, whole)
		}
		if got := CombineChecksums(Checksum(b[:split], 0), Checksum(b[split:], 0)); got != whole {
			t.Errorf("combined at %d: %#04x, want %#04x", split, got, whole)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	got := PseudoHeaderChecksum(IPv4ProtocolTCP, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), 40)
	// 0a00 + 0002 + 0a00 + 0001 + 0006 + 0028 = 0x1431
	if want := refChecksum(refPseudo("10.0.0.2", "10.0.0.1", 6, 40)); got != want || got != 0x1431 {
		t.Fatalf("pseudo-header sum %#04x, want %#04x", got, want)
	}
	// Not IPv4: no panic, counted as 0.0.0.0.
	if got := PseudoHeaderChecksum(17, netip.Addr{}, netip.MustParseAddr("::1"), 8); got != 17+8 {
		t.Fatalf("non-IPv4 addresses: %#04x", got)
	}
	// IPv4-mapped IPv6 is the IPv4 address.
	if PseudoHeaderChecksum(6, netip.MustParseAddr("::ffff:10.0.0.2"), netip.MustParseAddr("10.0.0.1"), 40) != 0x1431 {
		t.Fatal("IPv4-mapped address")
	}
}

// TestChecksumUpdate checks RFC 1624's incremental update against summing
// again, on random IPv4 headers whose TTL is decremented.
func TestChecksumUpdate(t *testing.T) {
	// An echo reply's checksum is the request's with the type word 0800
	// changed to 0000: 0x5d31 + 0x0800 = 0x6531 (see icmpv4_test.go).
	if got := ChecksumUpdate(0x5d31, 0x0800, 0x0000); got != 0x6531 {
		t.Fatalf("ChecksumUpdate = %#04x, want 0x6531", got)
	}
	r := rand.New(rand.NewPCG(3, 4))
	h := make(IPv4, IPv4MinSize)
	for range 10000 {
		for i := range h {
			h[i] = byte(r.Uint32())
		}
		h[0] = 0x45
		h[ipv4TTL] = byte(r.IntN(255) + 1)
		h.SetChecksum(h.CalculateChecksum())
		h.DecrementTTL()
		if got, want := h.Checksum(), h.CalculateChecksum(); got != want {
			t.Fatalf("header %x: incremental %#04x, full %#04x", []byte(h), got, want)
		}
	}
}

func benchmarkChecksum(b *testing.B, n int) {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		Checksum(buf, 0)
	}
}

func BenchmarkChecksum64(b *testing.B)   { benchmarkChecksum(b, 64) }
func BenchmarkChecksum1500(b *testing.B) { benchmarkChecksum(b, 1500) }
func BenchmarkChecksum64K(b *testing.B)  { benchmarkChecksum(b, 65536) }

// BenchmarkChecksumReference1500 is the naive sum, for comparison.
func BenchmarkChecksumReference1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		refChecksum(buf)
	}
}

// FuzzChecksum compares Checksum with the naive reference on any bytes,
// at any alignment.
func FuzzChecksum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint8(0))
	f.Add(bytes.Repeat([]byte{0xff}, 67), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, off uint8) {
		b = b[min(int(off&7), len(b)):]
		if got, want := Checksum(b, 0), refChecksum(b); got != want {
			t.Fatalf("%x: Checksum %#04x, reference %#04x", b, got, want)
		}
	})
}
