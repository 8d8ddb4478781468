package impair

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"sockfs/netstack/clock"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// ipPkt is a 100-byte IPv4 packet with the given ECN codepoint.
func ipPkt(ecn uint8) *skb.SKB {
	b := skb.Alloc(100)
	d := b.Put(100)
	header.IPv4(d).Encode(&header.IPv4Fields{TOS: 0x20 | ecn, TotalLength: 100, TTL: 64, Protocol: 6,
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2")})
	return b
}

// tosSink records the TOS of delivered packets and checks their header
// checksum.
type tosSink struct {
	mu  sync.Mutex
	tos map[uint8]int
	bad int
}

func (s *tosSink) deliver(batch []*skb.SKB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range batch {
		h := header.IPv4(b.Data())
		s.tos[h.TOS()]++
		if !h.IsChecksumValid() {
			s.bad++
		}
		b.Free()
	}
}

func TestParseECN(t *testing.T) {
	for in, want := range map[string]Config{
		"loss 1% ecn":             {Loss: 0.01, ECN: true},
		"ECN loss 1%":             {Loss: 0.01, ECN: true},
		"rate 20mbit ce_limit 20": {Rate: 20e6, CELimit: 20},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v, want %+v", in, got, err, want)
			continue
		}
		if back, err := Parse(got.String()); err != nil || back != got {
			t.Errorf("%q: String %q parses to %+v, %v", in, got.String(), back, err)
		}
	}
	for _, in := range []string{"ecn 1", "ecn ecn", "ce_limit", "ce_limit 0", "ce_limit -1", "ce_limit x"} {
		if c, err := Parse(in); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Parse(%q) = %+v, %v, want EINVAL", in, c, err)
		}
	}
	if err := (Config{CELimit: -1}).Validate(); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Validate(CELimit -1): %v", err)
	}
}

// netem's ecn: what loss picks is marked CE if it is ECN-capable (the
// header checksum updated), dropped if not.
func TestImpairerLossECN(t *testing.T) {
	s := clock.NewSim()
	k := &tosSink{tos: map[uint8]int{}}
	im := New(s, Config{Loss: 1, ECN: true}, 1, k.deliver)
	for i := 0; i < 10; i++ {
		im.Enqueue(ipPkt(header.ECNECT0))
		im.Enqueue(ipPkt(header.ECNNotECT))
	}
	s.Advance(time.Second)
	c := im.Counters()
	if k.tos[0x20|header.ECNCE] != 10 || len(k.tos) != 1 || k.bad != 0 || c.Marked != 10 || c.Lost != 10 {
		t.Fatalf("delivered by TOS %v (%d bad checksums), counters %+v: want 10 CE, 10 lost", k.tos, k.bad, c)
	}
	checkBalance(t, c)
}

// ce_limit: a packet that finds K or more waiting is marked CE, the ones
// before are not; Not-ECT packets pass unmarked.
func TestImpairerCELimit(t *testing.T) {
	s := clock.NewSim()
	k := &tosSink{tos: map[uint8]int{}}
	im := New(s, Config{Rate: 1e6, CELimit: 3}, 1, k.deliver)
	for i := 0; i < 5; i++ {
		im.Enqueue(ipPkt(header.ECNECT0))
	}
	im.Enqueue(ipPkt(header.ECNNotECT))
	s.Advance(time.Second)
	c := im.Counters()
	if k.tos[0x20|header.ECNECT0] != 3 || k.tos[0x20|header.ECNCE] != 2 || k.tos[0x20] != 1 || k.bad != 0 || c.Marked != 2 {
		t.Fatalf("delivered by TOS %v (%d bad checksums), marked %d: want 3 ECT(0), 2 CE, 1 Not-ECT", k.tos, k.bad, c.Marked)
	}
	checkBalance(t, c)
}
