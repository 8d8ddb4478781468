package header

import (
	"bytes"
	"net/netip"
	"testing"
)

// dnsQueryPkt is a DNS query for example.com/A from 10.0.0.2:53124 to
// 10.0.0.1:53, as a resolver sends it (29 bytes of DNS).
var dnsQueryPkt = unhex("" +
	"45 00 00 39" + // version 4, IHL 5; TOS 0; total length 57
	"1f 0e 40 00" + // ID 0x1f0e; DF
	"40 11 07 a4" + // TTL 64; protocol UDP; checksum 0x07a4
	"0a 00 00 02" + // source 10.0.0.2
	"0a 00 00 01" + // destination 10.0.0.1
	"cf 84 00 35" + // UDP: source port 53124, destination port 53
	"00 25 21 3e" + // length 37, checksum 0x213e
	"2b 3c 01 00 00 01 00 00 00 00 00 00" + // DNS header: id, RD, 1 question
	"07 65 78 61 6d 70 6c 65 03 63 6f 6d 00" + // "example.com"
	"00 01 00 01") // type A, class IN

var (
	addrC = netip.MustParseAddr("10.0.0.2")
	addrD = netip.MustParseAddr("10.0.0.1")
)

func TestUDPParse(t *testing.T) {
	ip := IPv4(dnsQueryPkt)
	if err := ip.Check(len(dnsQueryPkt)); err != nil {
		t.Fatal(err)
	}
	u := UDP(ip.Payload())
	if err := u.Check(); err != nil {
		t.Fatal(err)
	}
	if refChecksum(append(refPseudo("10.0.0.2", "10.0.0.1", 17, 37), u...)) != 0xffff {
		t.Fatal("fixture's checksum disagrees with the reference sum")
	}
	if u.SrcPort() != 53124 || u.DstPort() != 53 || u.Length() != 37 || u.Checksum() != 0x213e ||
		len(u.Payload()) != 29 || u.Payload()[13] != 'e' || !u.IsChecksumValid(ip.SrcAddr(), ip.DstAddr()) ||
		u.CalculateChecksum(addrC, addrD) != 0x213e {
		t.Fatalf("fields %+v", u.Fields())
	}
	// The same bytes under other addresses fail the pseudo-header sum.
	if u.IsChecksumValid(addrD, addrC.Next()) {
		t.Fatal("checksum accepted under a wrong pseudo-header")
	}
	// Trailing bytes past Length are not payload.
	long := UDP(append(bytes.Clone(u), 0xee, 0xee))
	if long.Check() != nil || len(long.Payload()) != 29 || !long.IsChecksumValid(addrC, addrD) {
		t.Fatal("trailing bytes")
	}
}

func TestUDPBuild(t *testing.T) {
	want := IPv4(dnsQueryPkt).Payload()
	u := make(UDP, len(want))
	f := UDPFields{SrcPort: 53124, DstPort: 53, Length: 37}
	u.Encode(&f)
	copy(u.Payload(), want[8:])
	u.SetChecksum(u.CalculateChecksum(addrC, addrD))
	if !bytes.Equal(u, want) {
		t.Fatalf("built\n%x\nwant\n%x", []byte(u), want)
	}
	f.Checksum = 0x213e
	if u.Fields() != f {
		t.Fatalf("Fields() = %+v", u.Fields())
	}
}

// TestUDPZeroChecksum: a received 0 means no checksum; a computed 0 is
// sent as 0xffff (RFC 768).
func TestUDPZeroChecksum(t *testing.T) {
	// 1000 -> 2000, length 10, data e01f, chosen so that the sum is 0xffff:
	// pseudo-header 0a00+0002+0a00+0001+0011+000a = 0x141e; header
	// 03e8+07d0+000a = 0x0bc2; 0x141e+0x0bc2 = 0x1fe0; + data 0xe01f =
	// 0xffff, whose complement is 0.
	u := UDP(unhex("03 e8 07 d0 00 0a 00 00 e0 1f"))
	if s := refChecksum(append(refPseudo("10.0.0.2", "10.0.0.1", 17, 10), u...)); s != 0xffff {
		t.Fatalf("fixture sums to %#04x, not 0xffff", s)
	}
	if c := u.CalculateChecksum(addrC, addrD); c != 0xffff {
		t.Fatalf("CalculateChecksum = %#04x, want 0xffff", c)
	}
	if !u.IsChecksumValid(addrC, addrD) || !u.IsChecksumValid(addrD, addrD) {
		t.Fatal("a zero checksum field means none and is valid")
	}
	u.SetChecksum(0xffff)
	if !u.IsChecksumValid(addrC, addrD) {
		t.Fatal("0xffff for a computed 0 is valid")
	}
	u.SetChecksum(0xfffe)
	if u.IsChecksumValid(addrC, addrD) {
		t.Fatal("wrong checksum accepted")
	}
}

func TestUDPCheckErrors(t *testing.T) {
	good := IPv4(dnsQueryPkt).Payload()
	withLen := func(n uint16) []byte {
		b := bytes.Clone(good)
		UDP(b).SetLength(n)
		return b
	}
	for _, c := range []struct {
		name string
		u    []byte
		want error
	}{
		{"empty", nil, ErrUDPShort},
		{"7 bytes", good[:7], ErrUDPShort},
		{"length 7", withLen(7), ErrUDPLength},
		{"length 0", withLen(0), ErrUDPLength},
		{"length past data", withLen(38), ErrUDPTruncated},
		{"truncated", good[:36], ErrUDPTruncated},
		{"header only", withLen(8), nil},
		{"good", good, nil},
	} {
		if err := UDP(c.u).Check(); err != c.want {
			t.Errorf("%s: Check = %v, want %v", c.name, err, c.want)
		}
	}
	// Accessors clamp whatever Length says once 8 bytes are there.
	for _, n := range []uint16{0, 7, 8, 9, 0xffff} {
		u := UDP(withLen(n)[:12])
		_ = u.Payload()
		_ = u.IsChecksumValid(addrC, addrD)
		_ = u.CalculateChecksum(addrC, addrD)
	}
}
