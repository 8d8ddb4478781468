package header

import (
	"testing"
)

// receiveTCP is the receive path of a TCP segment as the stack runs it:
// validate the IPv4 header, the TCP header and checksum, parse the
// options, read the fields. It returns something from each step so the
// compiler keeps them.
func receiveTCP(pkt []byte, o *TCPOptions) int {
	ip := IPv4(pkt)
	if ip.Check(len(pkt)) != nil {
		return -1
	}
	h := TCP(ip.Payload())
	if h.Check() != nil || !h.IsChecksumValid(ip.SrcAddr(), ip.DstAddr()) {
		return -2
	}
	if h.ParseOptions(o) != nil {
		return -3
	}
	return int(h.SrcPort()) + int(h.Seq()) + int(h.Flags()) + len(h.Payload()) + int(o.MSS) + len(o.Blocks())
}

// TestReceiveAllocatesNothing: parsing and checksumming a segment, options
// included, allocates nothing.
func TestReceiveAllocatesNothing(t *testing.T) {
	var o TCPOptions
	for _, pkt := range [][]byte{synPkt, dataPkt} {
		if receiveTCP(pkt, &o) < 0 {
			t.Fatal("fixture rejected")
		}
		if n := testing.AllocsPerRun(1000, func() { receiveTCP(pkt, &o) }); n != 0 {
			t.Errorf("%v allocations per segment", n)
		}
	}
	// Building allocates nothing either.
	buf := make([]byte, 60)
	if n := testing.AllocsPerRun(1000, func() {
		var opts [TCPMaxOptionsSize]byte
		k := synOptions.Encode(opts[:])
		h := TCP(buf[20:])
		h.Encode(&TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagSyn, Options: opts[:k]})
		h.SetChecksum(h.CalculateChecksum(addrC, addrD))
		IPv4(buf).Encode(&IPv4Fields{TotalLength: 60, TTL: 64, Protocol: IPv4ProtocolTCP, Src: addrC, Dst: addrD})
	}); n != 0 {
		t.Errorf("%v allocations per built segment", n)
	}
}

// BenchmarkReceiveTCP measures receiveTCP on a data segment with
// timestamps and SACK.
func BenchmarkReceiveTCP(b *testing.B) {
	var o TCPOptions
	b.ReportAllocs()
	b.SetBytes(int64(len(dataPkt)))
	for b.Loop() {
		receiveTCP(dataPkt, &o)
	}
}
