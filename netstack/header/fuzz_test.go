package header

import (
	"bytes"
	"reflect"
	"testing"
)

// The fuzz targets feed arbitrary bytes to the validators and parsers,
// which must never panic. Where validation passes, every accessor must be
// in bounds, and re-encoding the parsed fields must give back the same
// header (the round-trip property), except for what the Fields structs do
// not represent (reserved bits) and the checksum's two encodings of zero
// (0x0000 and 0xffff are both valid when the rest sums to 0xffff).

// Seeds are the fixtures of the tests plus a few broken variants.
func ipv4Seeds() [][]byte {
	return [][]byte{echoRequestPkt, echoReplyPkt, dnsQueryPkt, synPkt, dataPkt}
}

// sameExcept reports whether a and b are equal apart from the 16-bit
// word at off.
func sameExcept(a, b []byte, off int) bool {
	return len(a) == len(b) && bytes.Equal(a[:off], b[:off]) && bytes.Equal(a[off+2:], b[off+2:])
}

func FuzzIPv4(f *testing.F) {
	for _, s := range ipv4Seeds() {
		f.Add(s)
	}
	f.Add(echoRequestPkt[:20])
	f.Add(unhex("4f 00 00 14"))
	f.Add(unhex("46 00 00 18 00 00 00 00 40 01 00 00 0a 00 00 01 0a 00 00 02 94 04 00 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := IPv4(b)
		err := h.Check(len(b))
		if err == ErrIPv4Checksum {
			// Random bytes rarely carry a right checksum: fix it, so
			// that the fuzzer explores what lies behind it.
			h = IPv4(bytes.Clone(b))
			h.SetChecksum(h.CalculateChecksum())
			b, err = h, h.Check(len(h))
		}
		if err != nil {
			if _, ok := err.(Error); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		hl := h.HeaderLength()
		if !h.IsChecksumValid() || len(h.Options()) != hl-IPv4MinSize ||
			len(h.Payload()) != int(h.TotalLength())-hl {
			t.Fatalf("valid header, inconsistent accessors: %x", b)
		}
		_, _, _ = h.SrcAddr(), h.DstAddr(), h.Flags()

		// Round trip: encode the fields into a fresh packet.
		fields := h.Fields()
		enc := IPv4(bytes.Clone(b[:h.TotalLength()]))
		enc.Encode(&fields)
		if err := enc.Check(len(enc)); err != nil {
			t.Fatalf("re-encoded header fails Check: %v", err)
		}
		if got := enc.Fields(); !reflect.DeepEqual(got, fields) {
			t.Fatalf("round trip: %+v, want %+v", got, fields)
		}
		if h.Flags()&IPv4FlagReserved == 0 && !sameExcept(enc[:hl], h[:hl], ipv4Checksum) {
			t.Fatalf("round trip bytes %x, want %x", []byte(enc[:hl]), b[:hl])
		}
		if ttl := enc.TTL(); ttl > 0 {
			enc.DecrementTTL()
			if !enc.IsChecksumValid() || enc.TTL() != ttl-1 {
				t.Fatal("DecrementTTL broke the checksum")
			}
		}
	})
}

func FuzzICMPv4(f *testing.F) {
	f.Add(IPv4(echoRequestPkt).Payload())
	f.Add(IPv4(echoReplyPkt).Payload())
	f.Add(unhex("03 04 f6 73 00 00 05 78"))
	f.Add(unhex("08 00 f7 ff 00 00 00 00"))
	f.Add(unhex("00 00 ff ff 00 00 00 00")) // the checksum's other zero
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ICMPv4(b)
		_ = m.Payload()
		err := m.Check()
		if err == ErrICMPv4Checksum {
			// As in FuzzIPv4: fix the checksum to explore behind it.
			m = ICMPv4(bytes.Clone(b))
			m.SetChecksum(m.CalculateChecksum())
			b, err = m, m.Check()
		}
		if err != nil {
			return
		}
		_, _, _ = m.Ident(), m.Sequence(), m.MTU()
		_ = ICMPv4IsInfo(m.Type())
		fields := m.Fields()
		enc := ICMPv4(bytes.Clone(b))
		enc.Encode(&fields)
		if enc.Check() != nil || enc.Fields() != fields || !sameExcept(enc, m, icmpv4Checksum) {
			t.Fatalf("round trip %x, want %x", []byte(enc), b)
		}
	})
}

func FuzzUDP(f *testing.F) {
	f.Add(IPv4(dnsQueryPkt).Payload())
	f.Add(unhex("03 e8 07 d0 00 0a 00 00 e0 1f"))
	f.Add(unhex("03 e8 07 d0 00 0a ff ff e0 1f"))
	f.Add(unhex("00 35 cf 84 00 07 00 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u := UDP(b)
		if err := u.Check(); err != nil {
			return
		}
		if len(u.Payload()) != int(u.Length())-UDPMinSize {
			t.Fatal("payload length")
		}
		valid := u.IsChecksumValid(addrC, addrD)
		fields := u.Fields()
		enc := UDP(bytes.Clone(b))
		enc.Encode(&fields)
		if !bytes.Equal(enc, u) || enc.Fields() != fields {
			t.Fatalf("round trip %x, want %x", []byte(enc), b)
		}
		enc.SetChecksum(enc.CalculateChecksum(addrC, addrD))
		if !enc.IsChecksumValid(addrC, addrD) || enc.Checksum() == 0 {
			t.Fatal("computed checksum does not validate")
		}
		if valid && u.Checksum() != 0 && !sameExcept(enc, u, udpChecksum) {
			t.Fatal("checksum changed other bytes")
		}
	})
}

func FuzzTCPOptions(f *testing.F) {
	f.Add(IPv4(synPkt).Payload()[20:])
	f.Add(IPv4(dataPkt).Payload()[20:44])
	f.Add(unhex("01 01 05 22" + repeatHex("00", 32)))
	f.Add(unhex("02 04 05 b4 08 0b 00"))
	f.Add(unhex("02 03 05 01 03 03 07"))
	f.Add(unhex("05 02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o TCPOptions
		err := ParseTCPOptions(b, &o)
		if err != nil {
			if _, ok := err.(Error); !ok {
				t.Fatalf("error of type %T", err)
			}
		}
		if o.NumSACK < 0 || o.NumSACK > TCPMaxSACKBlocks {
			t.Fatalf("NumSACK %d", o.NumSACK)
		}
		// Round trip: everything but SACK blocks always fits in 40 bytes;
		// blocks are cut to as many as fit, in order.
		var buf [TCPMaxOptionsSize]byte
		n := o.Encode(buf[:])
		if n%4 != 0 || n != o.EncodedLen() {
			t.Fatalf("encoded %d bytes, EncodedLen %d", n, o.EncodedLen())
		}
		var back TCPOptions
		if err := ParseTCPOptions(buf[:n], &back); err != nil {
			t.Fatalf("re-parse of %x: %v", buf[:n], err)
		}
		if back.NumSACK > o.NumSACK || !reflect.DeepEqual(back.Blocks(), o.SACK[:back.NumSACK]) {
			t.Fatalf("SACK blocks %v, from %v", back.Blocks(), o.Blocks())
		}
		want := o
		want.NumSACK, want.SACK = back.NumSACK, back.SACK
		if back != want {
			t.Fatalf("round trip %+v, want %+v", back, want)
		}
		var again [TCPMaxOptionsSize]byte
		if m := back.Encode(again[:]); !bytes.Equal(again[:m], buf[:n]) {
			t.Fatalf("encoding is not stable: %x then %x", buf[:n], again[:m])
		}
	})
}

func FuzzTCP(f *testing.F) {
	f.Add(IPv4(synPkt).Payload())
	f.Add(IPv4(dataPkt).Payload())
	f.Add(make([]byte, 20))
	f.Add(unhex("0001 0002 00000003 00000004 f011 0005 0006 0007"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := TCP(b)
		if err := h.Check(); err != nil {
			return
		}
		off := h.DataOffset()
		if len(h.Options()) != off-TCPMinSize || len(h.Payload()) != len(b)-off {
			t.Fatal("inconsistent accessors")
		}
		var o TCPOptions
		_ = h.ParseOptions(&o)
		_ = h.Flags().String()
		valid := h.IsChecksumValid(addrC, addrD)

		fields := h.Fields()
		enc := TCP(bytes.Clone(b))
		enc.Encode(&fields)
		b12 := b[tcpDataOffset]
		if enc[tcpDataOffset] != b12&0xf0 {
			t.Fatal("data offset")
		}
		enc[tcpDataOffset] = b12 // reserved bits are not represented
		if !bytes.Equal(enc, h) {
			t.Fatalf("round trip %x, want %x", []byte(enc), b)
		}
		enc.SetChecksum(enc.CalculateChecksum(addrC, addrD))
		if !enc.IsChecksumValid(addrC, addrD) {
			t.Fatal("computed checksum does not validate")
		}
		if valid && !sameExcept(enc, h, tcpChecksum) {
			t.Fatal("checksum changed other bytes")
		}
	})
}
