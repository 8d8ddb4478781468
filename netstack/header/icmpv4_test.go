package header

import (
	"bytes"
	"testing"
)

// echoReplyPkt is the reply to echoRequestPkt as Linux sends it:
// 192.168.1.1 -> 192.168.1.10, same identifier, sequence and data.
//
// The ICMP checksum is the request's with the type/code word 0800 changed
// to 0000 (RFC 1624): ~(~0x5d31 + ~0x0800 + 0) = 0x5d31 + 0x0800 = 0x6531.
var echoReplyPkt = unhex("" +
	"45 00 00 54" + // version 4, IHL 5; TOS 0; total length 84
	"9c 31 00 00" + // ID 0x9c31; no flags
	"40 01 5b 1c" + // TTL 64; protocol ICMP; checksum 0x5b1c
	"c0 a8 01 01" + // source 192.168.1.1
	"c0 a8 01 0a" + // destination 192.168.1.10
	"00 00 65 31" + // ICMP: type 0 (echo reply), code 0, checksum 0x6531
	"0b 2a 00 01" + // identifier 0x0b2a, sequence 1
	"5f 4e 2b 65 00 00 00 00 3c 1d 0a 00 00 00 00 00" +
	"10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f" +
	"20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f" +
	"30 31 32 33 34 35 36 37")

func TestICMPv4EchoParse(t *testing.T) {
	for _, c := range []struct {
		name string
		pkt  []byte
		typ  uint8
		sum  uint16
	}{
		{"request", echoRequestPkt, ICMPv4EchoRequest, 0x5d31},
		{"reply", echoReplyPkt, ICMPv4EchoReply, 0x6531},
	} {
		ip := IPv4(c.pkt)
		if err := ip.Check(len(c.pkt)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m := ICMPv4(ip.Payload())
		if err := m.Check(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if refChecksum(m) != 0xffff {
			t.Fatalf("%s: fixture's checksum disagrees with the reference sum", c.name)
		}
		if m.Type() != c.typ || m.Code() != 0 || m.Checksum() != c.sum || m.Ident() != 0x0b2a ||
			m.Sequence() != 1 || m.RestOfHeader() != 0x0b2a0001 || len(m.Payload()) != 56 ||
			m.Payload()[16] != 0x10 || m.Payload()[55] != 0x37 || m.CalculateChecksum() != c.sum {
			t.Errorf("%s: fields %+v checksum %#04x", c.name, m.Fields(), m.Checksum())
		}
	}
}

func TestICMPv4EchoBuild(t *testing.T) {
	// The reply, the way a stack builds it: copy the request, change the
	// type, checksum again.
	req := ICMPv4(IPv4(echoRequestPkt).Payload())
	m := ICMPv4(bytes.Clone(req))
	m.SetType(ICMPv4EchoReply)
	m.SetChecksum(m.CalculateChecksum())
	if want := IPv4(echoReplyPkt).Payload(); !bytes.Equal(m, want) {
		t.Fatalf("reply\n%x\nwant\n%x", []byte(m), want)
	}
	// The request, from fields.
	m = make(ICMPv4, len(req))
	copy(m.Payload(), req.Payload())
	m.Encode(&ICMPv4Fields{Type: ICMPv4EchoRequest, Rest: 0x0b2a<<16 | 1})
	if !bytes.Equal(m, req) {
		t.Fatalf("request\n%x\nwant\n%x", []byte(m), []byte(req))
	}
	if f := m.Fields(); f != (ICMPv4Fields{Type: 8, Rest: 0x0b2a0001}) {
		t.Fatalf("Fields() = %+v", f)
	}
	m.SetIdent(0x1234)
	m.SetSequence(0x5678)
	m.SetCode(0)
	if m.RestOfHeader() != 0x12345678 {
		t.Fatal("SetIdent/SetSequence")
	}
}

// TestICMPv4FragNeeded builds a "fragmentation needed, MTU 1400" error
// quoting an IPv4 header and 8 bytes, and reads it back.
func TestICMPv4FragNeeded(t *testing.T) {
	quote := echoRequestPkt[:28]
	m := make(ICMPv4, ICMPv4MinSize+len(quote))
	copy(m.Payload(), quote)
	m.Encode(&ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4FragmentationNeeded, Rest: 1400})
	// 03 04 csum | 00 00 05 78 (unused, then the next-hop MTU)
	if want := unhex("03 04"); !bytes.Equal(m[:2], want) || !bytes.Equal(m[4:8], unhex("00 00 05 78")) {
		t.Fatalf("header %x", []byte(m[:8]))
	}
	if m.Check() != nil || m.MTU() != 1400 || refChecksum(m) != 0xffff {
		t.Fatalf("MTU %d, checksum %#04x", m.MTU(), m.Checksum())
	}
	q := IPv4(m.Payload())
	if q.SrcAddr() != IPv4(echoRequestPkt).SrcAddr() || q.Protocol() != IPv4ProtocolICMP {
		t.Fatal("quoted header")
	}
	m.SetMTU(576)
	if m.MTU() != 576 || m.RestOfHeader() != 576 {
		t.Fatal("SetMTU")
	}
	m.SetRestOfHeader(12 << 24)
	if m.Pointer() != 12 {
		t.Fatal("Pointer")
	}
}

func TestICMPv4CheckErrors(t *testing.T) {
	good := IPv4(echoRequestPkt).Payload()
	bad := bytes.Clone(good)
	bad[40] ^= 0x80
	for _, c := range []struct {
		name string
		m    []byte
		want error
	}{
		{"empty", nil, ErrICMPv4Short},
		{"7 bytes", good[:7], ErrICMPv4Short},
		{"corrupt data", bad, ErrICMPv4Checksum},
		{"cut short", good[:20], ErrICMPv4Checksum},
		{"good", good, nil},
	} {
		if err := ICMPv4(c.m).Check(); err != c.want {
			t.Errorf("%s: Check = %v, want %v", c.name, err, c.want)
		}
	}
	if len(ICMPv4(good[:3]).Payload()) != 0 {
		t.Error("Payload of a short message")
	}
}

func TestICMPv4IsInfo(t *testing.T) {
	info := map[uint8]bool{0: true, 8: true, 13: true, 14: true, 17: true, 18: true,
		3: false, 4: false, 5: false, 11: false, 12: false, 19: false, 255: false}
	for typ, want := range info {
		if ICMPv4IsInfo(typ) != want {
			t.Errorf("ICMPv4IsInfo(%d) = %v", typ, !want)
		}
	}
}
