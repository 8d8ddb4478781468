package header

import (
	"bytes"
	"reflect"
	"testing"
)

// synPkt is a Linux SYN from 10.0.0.2:40000 to 10.0.0.1:80 with the usual
// options, "mss 1460,sackOK,TS val 710622285 ecr 0,nop,wscale 7".
var synPkt = unhex("" +
	"45 00 00 3c" + // version 4, IHL 5; TOS 0; total length 60
	"3d 21 40 00" + // ID 0x3d21; DF
	"40 06 e9 98" + // TTL 64; protocol TCP; checksum 0xe998
	"0a 00 00 02" + // source 10.0.0.2
	"0a 00 00 01" + // destination 10.0.0.1
	"9c 40 00 50" + // TCP: source port 40000, destination port 80
	"6c 1a 2b 3c" + // sequence number 0x6c1a2b3c
	"00 00 00 00" + // acknowledgment number 0
	"a0 02 fa f0" + // data offset 10 (40 bytes); SYN; window 64240
	"9e 7d 00 00" + // checksum 0x9e7d; urgent pointer 0
	"02 04 05 b4" + // MSS 1460
	"04 02 08 0a" + // SACK-permitted; timestamps (kind 8, length 10)
	"2a 5b 3c 4d" + // TSval 0x2a5b3c4d
	"00 00 00 00" + // TSecr 0
	"01 03 03 07") // NOP; window scale 7

// dataPkt is a later segment of that connection: PSH|ACK with
// "GET / HTTP/1.0\r\n\r\n", timestamps and one SACK block, laid out
// NOP,NOP,TS,NOP,NOP,SACK.
var dataPkt = unhex("" +
	"45 00 00 52 3d 22 40 00 40 06 e9 81 0a 00 00 02 0a 00 00 01" + // IPv4, total 82
	"9c 40 00 50" + // ports 40000 -> 80
	"6c 1a 2b 3d" + // seq
	"1f 2e 3d 4c" + // ack
	"b0 18 01 f6" + // data offset 11 (44 bytes); PSH|ACK; window 502
	"c3 77 00 00" + // checksum 0xc377; urgent pointer 0
	"01 01 08 0a 2a 5b 3d 01 91 e0 c2 a7" + // NOP NOP TS val, ecr
	"01 01 05 0a 6c 1a 30 00 6c 1a 34 00" + // NOP NOP SACK [0x6c1a3000, 0x6c1a3400)
	"47 45 54 20 2f 20 48 54 54 50 2f 31 2e 30 0d 0a 0d 0a") // GET / HTTP/1.0

// synOptions is what synPkt's options parse to.
var synOptions = TCPOptions{
	HasMSS: true, MSS: 1460, HasWS: true, WS: 7, SACKPermitted: true,
	HasTimestamp: true, TSVal: 0x2a5b3c4d, TSEcr: 0,
}

func TestTCPSynParse(t *testing.T) {
	ip := IPv4(synPkt)
	if err := ip.Check(len(synPkt)); err != nil {
		t.Fatal(err)
	}
	h := TCP(ip.Payload())
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
	if refChecksum(append(refPseudo("10.0.0.2", "10.0.0.1", 6, 40), h...)) != 0xffff {
		t.Fatal("fixture's checksum disagrees with the reference sum")
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"SrcPort", h.SrcPort(), uint16(40000)},
		{"DstPort", h.DstPort(), uint16(80)},
		{"Seq", h.Seq(), uint32(0x6c1a2b3c)},
		{"Ack", h.Ack(), uint32(0)},
		{"DataOffset", h.DataOffset(), 40},
		{"Flags", h.Flags(), TCPFlagSyn},
		{"Flags.String", h.Flags().String(), "[S]"},
		{"Window", h.Window(), uint16(64240)},
		{"Checksum", h.Checksum(), uint16(0x9e7d)},
		{"UrgentPointer", h.UrgentPointer(), uint16(0)},
		{"len(Options)", len(h.Options()), 20},
		{"len(Payload)", len(h.Payload()), 0},
		{"IsChecksumValid", h.IsChecksumValid(ip.SrcAddr(), ip.DstAddr()), true},
		{"CalculateChecksum", h.CalculateChecksum(ip.SrcAddr(), ip.DstAddr()), uint16(0x9e7d)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var o TCPOptions
	if err := h.ParseOptions(&o); err != nil || o != synOptions {
		t.Fatalf("options %+v, %v; want %+v", o, err, synOptions)
	}
	if h.IsChecksumValid(ip.DstAddr(), ip.SrcAddr().Next()) {
		t.Fatal("checksum accepted under a wrong pseudo-header")
	}
}

func TestTCPSynBuild(t *testing.T) {
	want := IPv4(synPkt).Payload()
	var opts [TCPMaxOptionsSize]byte
	n := synOptions.Encode(opts[:])
	if n != 20 || synOptions.EncodedLen() != 20 || !bytes.Equal(opts[:n], want[20:]) {
		t.Fatalf("options %x, want %x", opts[:n], want[20:])
	}
	h := make(TCP, 40)
	f := TCPFields{SrcPort: 40000, DstPort: 80, Seq: 0x6c1a2b3c, Flags: TCPFlagSyn, Window: 64240, Options: opts[:n]}
	h.Encode(&f)
	h.SetChecksum(h.CalculateChecksum(addrC, addrD))
	if !bytes.Equal(h, want) {
		t.Fatalf("built\n%x\nwant\n%x", []byte(h), want)
	}
	// The whole packet.
	pkt := make([]byte, 60)
	IPv4(pkt).Encode(&IPv4Fields{TotalLength: 60, ID: 0x3d21, DontFragment: true, TTL: 64,
		Protocol: IPv4ProtocolTCP, Src: addrC, Dst: addrD})
	copy(pkt[20:], h)
	if !bytes.Equal(pkt, synPkt) {
		t.Fatalf("built\n%x\nwant\n%x", pkt, synPkt)
	}
	g := TCP(pkt[20:]).Fields()
	f.Checksum, f.DataOffset = 0x9e7d, 40
	if !bytes.Equal(g.Options, f.Options) {
		t.Fatal("Fields().Options")
	}
	g.Options, f.Options = nil, nil
	if !reflect.DeepEqual(g, f) {
		t.Fatalf("Fields() = %+v, want %+v", g, f)
	}
}

func TestTCPDataSegmentBothWays(t *testing.T) {
	ip := IPv4(dataPkt)
	h := TCP(ip.Payload())
	if ip.Check(len(dataPkt)) != nil || h.Check() != nil || !h.IsChecksumValid(addrC, addrD) ||
		refChecksum(append(refPseudo("10.0.0.2", "10.0.0.1", 6, len(h)), h...)) != 0xffff {
		t.Fatal("fixture does not validate")
	}
	if h.Flags() != TCPFlagPsh|TCPFlagAck || h.Flags().String() != "[P.]" || h.Ack() != 0x1f2e3d4c ||
		h.DataOffset() != 44 || h.Window() != 502 || string(h.Payload()) != "GET / HTTP/1.0\r\n\r\n" {
		t.Fatalf("fields %+v", h.Fields())
	}
	// doff 11, no reserved bits, PSH|ACK, window 502.
	if h.FlagWord() != 0xb018_01f6 {
		t.Fatalf("FlagWord %#x", h.FlagWord())
	}
	var o TCPOptions
	want := TCPOptions{HasTimestamp: true, TSVal: 0x2a5b3d01, TSEcr: 0x91e0c2a7, NumSACK: 1}
	want.SACK[0] = SACKBlock{0x6c1a3000, 0x6c1a3400}
	if err := h.ParseOptions(&o); err != nil || o != want || len(o.Blocks()) != 1 {
		t.Fatalf("options %+v, %v", o, err)
	}
	// Build it back.
	b := make(TCP, len(h))
	var opts [TCPMaxOptionsSize]byte
	n := want.Encode(opts[:])
	b.Encode(&TCPFields{SrcPort: 40000, DstPort: 80, Seq: 0x6c1a2b3d, Ack: 0x1f2e3d4c,
		Flags: TCPFlagPsh | TCPFlagAck, Window: 502, Options: opts[:n]})
	copy(b.Payload(), "GET / HTTP/1.0\r\n\r\n")
	b.SetChecksum(b.CalculateChecksum(addrC, addrD))
	if !bytes.Equal(b, h) {
		t.Fatalf("built\n%x\nwant\n%x", []byte(b), []byte(h))
	}
}

func TestTCPSetters(t *testing.T) {
	h := make(TCP, 24)
	h.SetSrcPort(1)
	h.SetDstPort(2)
	h.SetSeq(3)
	h.SetAck(4)
	h.SetDataOffset(24)
	h.SetFlags(TCPFlagFin | TCPFlagAck)
	h.SetWindow(5)
	h.SetChecksum(6)
	h.SetUrgentPointer(7)
	want := unhex("0001 0002 00000003 00000004 6011 0005 0006 0007 00000000")
	if !bytes.Equal(h, want) {
		t.Fatalf("%x, want %x", []byte(h), want)
	}
	if h.Check() != nil || len(h.Options()) != 4 || len(h.Payload()) != 0 {
		t.Fatal("accessors")
	}
}

func TestTCPFlagsString(t *testing.T) {
	for f, want := range map[TCPFlags]string{
		0:                                    "[none]",
		TCPFlagSyn:                           "[S]",
		TCPFlagSyn | TCPFlagAck:              "[S.]",
		TCPFlagAck:                           "[.]",
		TCPFlagFin | TCPFlagAck:              "[F.]",
		TCPFlagRst:                           "[R]",
		TCPFlagRst | TCPFlagAck:              "[R.]",
		TCPFlagPsh | TCPFlagAck:              "[P.]",
		TCPFlagSyn | TCPFlagEce | TCPFlagCwr: "[SEW]",
		0xff:                                 "[FSRP.UEW]",
	} {
		if got := f.String(); got != want {
			t.Errorf("%#02x: %q, want %q", uint8(f), got, want)
		}
	}
}

func TestTCPCheckErrors(t *testing.T) {
	good := IPv4(synPkt).Payload()
	withOff := func(words byte) []byte {
		b := bytes.Clone(good)
		b[12] = words << 4
		return b
	}
	for _, c := range []struct {
		name string
		h    []byte
		want error
	}{
		{"empty", nil, ErrTCPShort},
		{"19 bytes", good[:19], ErrTCPShort},
		{"options cut", good[:39], ErrTCPShort},
		{"offset 4", withOff(4), ErrTCPDataOffset},
		{"offset 0", withOff(0), ErrTCPDataOffset},
		{"offset 15 past 40 bytes", withOff(15), ErrTCPShort},
		{"offset 5", withOff(5), nil},
		{"good", good, nil},
	} {
		if err := TCP(c.h).Check(); err != c.want {
			t.Errorf("%s: Check = %v, want %v", c.name, err, c.want)
		}
	}
	// Accessors clamp whatever the data offset says once 20 bytes are there.
	for w := range byte(16) {
		h := TCP(withOff(w)[:24])
		_, _ = h.Options(), h.Payload()
		var o TCPOptions
		_ = h.ParseOptions(&o)
	}
}

func TestTCPOptionsParseMalformed(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want error
		opts TCPOptions // what was parsed before the error
	}{
		{"empty", "", nil, TCPOptions{}},
		{"EOL then junk", "00 ff ff", nil, TCPOptions{}},
		{"NOPs", "01 01 01", nil, TCPOptions{}},
		{"kind without length", "02", ErrTCPOptionLength, TCPOptions{}},
		{"length 0", "02 00 05 b4", ErrTCPOptionLength, TCPOptions{}},
		{"length 1", "08 01", ErrTCPOptionLength, TCPOptions{}},
		{"length past end", "02 04 05", ErrTCPOptionLength, TCPOptions{}},
		{"unknown past end", "fe 08 00 00", ErrTCPOptionLength, TCPOptions{}},
		{"MSS kept before a bad length", "02 04 05 b4 08 0b 00", ErrTCPOptionLength,
			TCPOptions{HasMSS: true, MSS: 1460}},
		{"MSS of length 3 skipped", "02 03 05 01 03 03 07", ErrTCPOptionSize,
			TCPOptions{HasWS: true, WS: 7}},
		{"WS of length 4 skipped", "03 04 07 00 02 04 05 b4", ErrTCPOptionSize,
			TCPOptions{HasMSS: true, MSS: 1460}},
		{"SACK-perm of length 3", "04 03 00", ErrTCPOptionSize, TCPOptions{}},
		{"TS of length 8", "08 08 00 00 00 01 00 00", ErrTCPOptionSize, TCPOptions{}},
		{"SACK of length 2", "05 02", ErrTCPOptionSize, TCPOptions{}},
		{"SACK of length 9", "05 09 00 00 00 01 00 00 00", ErrTCPOptionSize, TCPOptions{}},
		{"SACK of 5 blocks", "05 2a" + repeatHex("00", 40), ErrTCPOptionSize, TCPOptions{}},
		{"unknown kind skipped", "fd 04 aa bb 04 02", nil, TCPOptions{SACKPermitted: true}},
		{"repeated MSS: last wins", "02 04 00 01 02 04 00 02", nil, TCPOptions{HasMSS: true, MSS: 2}},
	} {
		var o TCPOptions
		o.MSS = 99 // ParseTCPOptions clears o
		err := ParseTCPOptions(unhex(c.in), &o)
		if err != c.want || o != c.opts {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.name, o, err, c.opts, c.want)
		}
	}
}

func repeatHex(s string, n int) string { return string(bytes.Repeat([]byte(s), n)) }

// TestTCPOptionsLayout checks the Linux layouts of tcp_options_write.
func TestTCPOptionsLayout(t *testing.T) {
	blocks := [TCPMaxSACKBlocks]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	for _, c := range []struct {
		name string
		o    TCPOptions
		want string
	}{
		{"none", TCPOptions{}, ""},
		{"SYN without timestamps", TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasWS: true, WS: 7},
			"02 04 05 b4  01 01 04 02  01 03 03 07"},
		{"SYN without SACK", TCPOptions{HasMSS: true, MSS: 1460, HasTimestamp: true, TSVal: 1, HasWS: true, WS: 0},
			"02 04 05 b4  01 01 08 0a 00 00 00 01 00 00 00 00  01 03 03 00"},
		{"SYN-ACK MSS only", TCPOptions{HasMSS: true, MSS: 536}, "02 04 02 18"},
		{"data with timestamps", TCPOptions{HasTimestamp: true, TSVal: 0x01020304, TSEcr: 0x05060708},
			"01 01 08 0a 01 02 03 04 05 06 07 08"},
		{"4 SACK blocks", TCPOptions{NumSACK: 4, SACK: blocks},
			"01 01 05 22" + "00000001 00000002 00000003 00000004 00000005 00000006 00000007 00000008"},
		{"TS and SACK: 3 blocks fit", TCPOptions{HasTimestamp: true, NumSACK: 4, SACK: blocks},
			"01 01 08 0a 00000000 00000000  01 01 05 1a 00000001 00000002 00000003 00000004 00000005 00000006"},
	} {
		var b [TCPMaxOptionsSize + 8]byte
		n := c.o.Encode(b[:])
		want := unhex(c.want)
		if !bytes.Equal(b[:n], want) || c.o.EncodedLen() != n || n%4 != 0 {
			t.Errorf("%s: %x (EncodedLen %d), want %x", c.name, b[:n], c.o.EncodedLen(), want)
		}
		var back TCPOptions
		if err := ParseTCPOptions(b[:n], &back); err != nil {
			t.Errorf("%s: reparse: %v", c.name, err)
		}
	}
	// A small buffer: options that do not fit are left out, in order.
	var b [8]byte
	o := synOptions
	if n := o.Encode(b[:]); n != 8 || !bytes.Equal(b[:n], unhex("02 04 05 b4 01 01 04 02")) {
		t.Errorf("8-byte buffer: %x", b[:n])
	}
	if n := o.Encode(nil); n != 0 {
		t.Errorf("nil buffer: %d bytes", n)
	}
	o.NumSACK = 99 // out of range: clamped, no panic
	_ = o.Encode(make([]byte, 40))
	_ = o.Blocks()
}

// TestTCPEncodeWithDataOffset builds the SYN the way a stack writing the
// options itself does: the convenience encoder, a data offset, then the
// options copied after the fixed header.
func TestTCPEncodeWithDataOffset(t *testing.T) {
	want := IPv4(synPkt).Payload()
	var opts [TCPMaxOptionsSize]byte
	n := EncodeSynOptions(opts[:], 1460, 7, true, true, 0x2a5b3c4d, 0)
	h := make(TCP, TCPMinSize+n)
	h.Encode(&TCPFields{SrcPort: 40000, DstPort: 80, Seq: 0x6c1a2b3c, DataOffset: TCPMinSize + n,
		Flags: TCPFlagSyn, Window: 64240})
	copy(h[TCPMinSize:], opts[:n])
	h.SetChecksum(h.CalculateChecksum(addrC, addrD))
	if !bytes.Equal(h, want) {
		t.Fatalf("built\n%x\nwant\n%x", []byte(h), want)
	}
	// No window scale (ws < 0), no timestamps: MSS, NOP NOP SACKOK.
	if n := EncodeSynOptions(opts[:], 536, -1, true, false, 0, 0); !bytes.Equal(opts[:n], unhex("02 04 02 18 01 01 04 02")) {
		t.Fatalf("SYN options %x", opts[:n])
	}
	// Data segment: 5 blocks offered (a D-SACK and 4), 3 fit beside TS.
	sack := []SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}}
	n = EncodeOptions(opts[:], true, 5, 6, sack)
	var o TCPOptions
	if n != 40 || ParseTCPOptions(opts[:n], &o) != nil || o.NumSACK != 3 || o.SACK[2] != sack[2] || o.TSVal != 5 || o.TSEcr != 6 {
		t.Fatalf("data options %x: %+v", opts[:n], o)
	}
	if n = EncodeOptions(opts[:], false, 0, 0, nil); n != 0 {
		t.Fatalf("no options: %d bytes", n)
	}
}
