package skb

import (
	"encoding/binary"
	"testing"
)

// sum16 is RFC 1071 over p seeded with sum, folded, not complemented.
func sum16(p []byte, sum uint32) uint16 {
	for ; len(p) >= 2; p = p[2:] {
		sum += uint32(binary.BigEndian.Uint16(p))
	}
	if len(p) == 1 {
		sum += uint32(p[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// TestChecksumHelp completes a partial checksum over a head and two
// fragments of odd sizes and checks it against a sum of the flat bytes;
// Copy keeps the checksum state and the GSO description.
func TestChecksumHelp(t *testing.T) {
	flat := make([]byte, 20+20+3001)
	for i := range flat {
		flat[i] = byte(i*31 + 7)
	}
	const pseudo = 0x1234
	binary.BigEndian.PutUint16(flat[20+16:], pseudo) // TCP check field: pseudo-header sum
	b := Alloc(64)
	b.Reserve(8)
	b.PutData(flat[:41]) // IP, TCP and one odd payload byte
	pg := NewPage()
	copy(pg.Buf[1000:], flat[41:41+1501])
	b.AddFrag(pg, 1000, 1501)
	pg2 := NewPage()
	copy(pg2.Buf, flat[41+1501:])
	b.AddFrag(pg2, 0, len(flat)-41-1501)
	defer b.Free()
	if !b.PartialCsumSet(20, 16) || b.IPSummed != ChecksumPartial || b.ChecksumStartOffset() != 20 || !b.CsumUnnecessary() {
		t.Fatalf("PartialCsumSet: %d %d", b.IPSummed, b.ChecksumStartOffset())
	}
	if b.PartialCsumSet(20, len(flat)) {
		t.Fatal("PartialCsumSet accepted a field past the end")
	}
	b.Shared().GSOSize, b.Shared().GSOSegs, b.Shared().GSOType = 1448, 3, GSOTCPv4
	c := b.Copy()
	defer c.Free()
	if c.IPSummed != ChecksumPartial || c.ChecksumStartOffset() != 20 || c.CsumOffset != 16 || c.Shared().GSOSize != 1448 || c.Shared().GSOSegs != 3 {
		t.Fatalf("Copy lost the checksum state or GSO: %+v", c)
	}
	for _, s := range []*SKB{b, c} {
		if !s.ChecksumHelp() || s.IPSummed != ChecksumNone || s.CsumUnnecessary() {
			t.Fatalf("ChecksumHelp: state %d", s.IPSummed)
		}
		want := ^sum16(flat[20:], 0)
		if got := binary.BigEndian.Uint16(s.Data()[36:]); got != want {
			t.Errorf("checksum %#04x, want %#04x", got, want)
		}
		// What a receiver checks: the segment with its checksum, its check
		// field counted as the checksum and the pseudo-header sum added
		// separately, sums to all ones.
		full := make([]byte, s.Len())
		s.CopyBits(0, full)
		if v := sum16(full[20:], pseudo); v != 0xffff {
			t.Errorf("verification sum %#04x", v)
		}
	}
}
