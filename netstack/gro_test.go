package netstack

import (
	"testing"

	"sockfs/netstack/header"
	"sockfs/skb"
)

// GRO packet scripts: real skbs, built as the In impairment stage hands
// them over, go into a groNode whose deliveries are recorded.

const (
	groISN  = 1_000_000
	groMSS  = 1448
	groHlen = header.IPv4MinSize + header.TCPMinSize + 12 // timestamps
)

// groSeg describes one packet of a script. Zero values give a full-sized
// in-order segment of flow 1 with ACK, DF, TTL 64, IP ID 100 + seq/MSS.
type groSeg struct {
	seq     uint32 // relative to groISN
	n       int    // payload bytes; 0 means groMSS, -1 none
	flags   header.TCPFlags
	id      int // IP ID; 0 means 100 + seq/groMSS
	ttl     uint8
	tos     uint8
	noDF    bool
	win     uint16 // 0 means 500
	tsval   uint32 // 0 means 7
	sport   uint16 // 0 means 40000
	ack     uint32 // 0 means 1
	paged   bool   // payload in page fragments (a pipe hands over its sender's clones)
	badCsum bool   // a payload bit flipped after the checksum was computed
	badIP   bool   // the IP header checksum is wrong
}

type groTest struct {
	t     *testing.T
	g     groNode
	out   []*skb.SKB
	pf    skb.PageFrag // the sender's page fragments, for paged segments
	sent  []*skb.SKB   // the sender's originals of paged segments
	heads int64
}

func newGROTest(t *testing.T) *groTest {
	c := &groTest{t: t, heads: skb.LiveHeads()}
	c.g.deliver = func(b *skb.SKB) { c.out = append(c.out, b) }
	t.Cleanup(func() {
		c.g.flush()
		for _, b := range c.take() {
			b.Free()
		}
		for _, b := range c.sent {
			b.Free()
		}
		c.pf.Release()
		if d := skb.LiveHeads() - c.heads; d != 0 && !t.Failed() {
			t.Errorf("%d skb heads leaked", d)
		}
	})
	return c
}

func (s groSeg) payload() int {
	switch s.n {
	case 0:
		return groMSS
	case -1:
		return 0
	}
	return s.n
}

// groByte is the payload byte at sequence number seq: every stream byte
// is known, so a merged packet's contents can be checked.
func groByte(seq uint32) byte { return byte(seq*7 + seq>>8) }

// build makes the skb for s, data at the IPv4 header.
func (c *groTest) build(s groSeg) *skb.SKB {
	n := s.payload()
	hdr := make([]byte, groHlen+n)
	opts := header.TCPOptions{HasTimestamp: true, TSVal: 7, TSEcr: 3}
	if s.tsval != 0 {
		opts.TSVal = s.tsval
	}
	var ob [header.TCPMaxOptionsSize]byte
	ol := opts.Encode(ob[:])
	id := s.id
	if id == 0 {
		id = 100 + int(s.seq/groMSS)
	}
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	header.IPv4(hdr).Encode(&header.IPv4Fields{TOS: s.tos, TotalLength: uint16(len(hdr)), ID: uint16(id),
		DontFragment: !s.noDF, TTL: ttl, Protocol: header.IPv4ProtocolTCP, Src: addrA, Dst: addrB})
	th := header.TCP(hdr[header.IPv4MinSize:])
	win, sport, ack := s.win, s.sport, s.ack
	if win == 0 {
		win = 500
	}
	if sport == 0 {
		sport = 40000
	}
	if ack == 0 {
		ack = 1
	}
	th.Encode(&header.TCPFields{SrcPort: sport, DstPort: 80, Seq: groISN + s.seq, Ack: ack,
		Flags: s.flags | header.TCPFlagAck, Window: win, Options: ob[:ol]})
	for i := 0; i < n; i++ {
		hdr[groHlen+i] = groByte(s.seq + uint32(i))
	}
	th.SetChecksum(th.CalculateChecksum(addrA, addrB))
	if s.badCsum {
		hdr[len(hdr)-1] ^= 0x04
	}
	if s.badIP {
		header.IPv4(hdr).SetChecksum(header.IPv4(hdr).Checksum() ^ 1)
	}
	if !s.paged {
		b := skb.Alloc(len(hdr))
		b.PutData(hdr)
		return b
	}
	// As TCP builds what it sends: headers in a MAX_TCP_HEADER head,
	// payload in page fragments charged by their size; the pipe hands
	// over a clone while the sender keeps the original for
	// retransmission.
	mth := skb.CurrentProfile().MaxTCPHeader
	o := skb.Alloc(mth)
	o.Reserve(mth - groHlen)
	o.PutData(hdr[:groHlen])
	for p := hdr[groHlen:]; len(p) > 0; {
		_, room := c.pf.Refill()
		k := copy(room, p)
		page, off := c.pf.Commit(k)
		if !o.AddFrag(page, off, k) {
			c.t.Fatal("AddFrag")
		}
		o.AddTruesize(k)
		p = p[k:]
	}
	c.sent = append(c.sent, o)
	return o.Clone()
}

// send offers each segment to GRO.
func (c *groTest) send(segs ...groSeg) {
	for _, s := range segs {
		c.g.receive(c.build(s))
	}
}

// take returns the packets delivered so far and forgets them; the caller
// frees them.
func (c *groTest) take() []*skb.SKB {
	out := c.out
	c.out = nil
	return out
}

// groOut is what a delivered packet should be: its first sequence number
// (relative), payload bytes and segment count.
type groOut struct {
	seq  uint32
	n    int
	segs int
}

// expect checks the packets delivered since the last call, verifies each
// (headers, checksum state, contents) and frees them.
func (c *groTest) expect(want ...groOut) {
	c.t.Helper()
	got := c.take()
	defer func() {
		for _, b := range got {
			b.Free()
		}
	}()
	if len(got) != len(want) {
		c.t.Fatalf("%d packets delivered, want %d: %v", len(got), len(want), describeGRO(got))
	}
	for i, b := range got {
		w := want[i]
		iph := header.IPv4(b.Data())
		th := header.TCP(b.Data()[header.IPv4MinSize:])
		plen := b.Len() - header.IPv4MinSize - th.DataOffset()
		sh := b.Shared()
		if th.Seq() != groISN+w.seq || plen != w.n {
			c.t.Fatalf("packet %d: seq %d len %d, want %d len %d", i, th.Seq()-groISN, plen, w.seq, w.n)
		}
		if err := iph.Check(b.Len()); err != nil || int(iph.TotalLength()) != b.Len() {
			c.t.Fatalf("packet %d: IP header %v, total length %d of %d", i, err, iph.TotalLength(), b.Len())
		}
		if w.segs == 1 {
			if sh.GSOSize != 0 {
				c.t.Fatalf("packet %d alone has gso_size %d", i, sh.GSOSize)
			}
		} else {
			pseudo := header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, addrA, addrB, uint16(b.Len()-header.IPv4MinSize))
			if int(sh.GSOSegs) != w.segs || sh.GSOSize != groMSS || sh.GSOType&skb.GSOTCPv4 == 0 ||
				b.IPSummed != skb.ChecksumPartial || b.ChecksumStartOffset() != header.IPv4MinSize ||
				b.CsumOffset != tcpCsumOffset || th.Checksum() != pseudo {
				c.t.Fatalf("packet %d: gso %d×%d type %#x, ip_summed %d csum_start %d check %#x (pseudo %#x)",
					i, sh.GSOSegs, sh.GSOSize, sh.GSOType, b.IPSummed, b.ChecksumStartOffset(), th.Checksum(), pseudo)
			}
		}
		data := make([]byte, plen)
		b.CopyBits(b.Len()-plen, data)
		for k, v := range data {
			if v != groByte(w.seq+uint32(k)) {
				c.t.Fatalf("packet %d: payload byte %d is %#x, want %#x", i, k, v, groByte(w.seq+uint32(k)))
			}
		}
	}
}

func describeGRO(bs []*skb.SKB) []groOut {
	var d []groOut
	for _, b := range bs {
		th := header.TCP(b.Data()[header.IPv4MinSize:])
		segs := max(1, int(b.Shared().GSOSegs))
		d = append(d, groOut{th.Seq() - groISN, b.Len() - header.IPv4MinSize - th.DataOffset(), segs})
	}
	return d
}

// groK returns the k-th full-sized segment of flow 1.
func groK(k int) groSeg { return groSeg{seq: uint32(k * groMSS)} }

// Four in-order wire packets (linear skbs, as a TUN read without offloads
// gives them) become one: headers fixed, checksum partial, gso_size and gso_segs set,
// and the truesize the sum of the four (Linux chains them on frag_list).
func TestGROInOrderMergeLinear(t *testing.T) {
	c := newGROTest(t)
	var sum int
	for k := 0; k < 4; k++ {
		b := c.build(groK(k))
		sum += b.Truesize()
		c.g.receive(b)
	}
	if len(c.out) != 0 {
		t.Fatalf("%d packets delivered before the end of the batch", len(c.out))
	}
	c.g.flush()
	if ts := c.out[0].Truesize(); ts != sum {
		t.Errorf("truesize %d, want the sum of the parts %d", ts, sum)
	}
	c.expect(groOut{0, 4 * groMSS, 4})
}

// The same with the payload in page fragments (a pipe's clones of its
// sender's skbs): the first packet keeps its truesize and each other adds
// only its fragments', as skb_gro_receive's frags case charges; the
// sender's own skbs are not changed by the merge.
func TestGROInOrderMergePaged(t *testing.T) {
	c := newGROTest(t)
	first := c.build(groSeg{paged: true})
	want := first.Truesize()
	c.g.receive(first)
	for k := 1; k < 4; k++ {
		s := groK(k)
		s.paged = true
		c.send(s)
		want += groMSS
	}
	c.g.flush()
	if ts := c.out[0].Truesize(); ts != want {
		t.Errorf("truesize %d, want %d", ts, want)
	}
	for i, o := range c.sent {
		th := header.TCP(o.Data()[header.IPv4MinSize:])
		if o.Len() != groHlen+groMSS || th.Flags() != header.TCPFlagAck || th.Checksum() == 0 ||
			header.IPv4(o.Data()).TotalLength() != groHlen+groMSS || o.Shared().GSOSize != 0 {
			t.Errorf("the sender's skb %d changed: %v", i, o)
		}
	}
	c.expect(groOut{0, 4 * groMSS, 4})
}

// Linux appends fragments to the head only while MAX_SKB_FRAGS allows:
// the donor that would make 18 is chained on frag_list instead and
// charged whole, and the next ones give their fragments to it.
func TestGROFragListChargeAfterMaxFrags(t *testing.T) {
	c := newGROTest(t)
	var want int
	for k := 0; k < 20; k++ {
		s := groK(k)
		s.paged = true
		b := c.build(s)
		switch {
		case k == 0:
			want = b.Truesize()
		case k == skb.MaxFrags: // 1 + 16 fragments so far: this one is chained
			want += b.Truesize()
		default:
			want += groMSS
		}
		c.g.receive(b)
	}
	c.g.flush()
	if ts := c.out[0].Truesize(); ts != want {
		t.Errorf("truesize %d, want %d", ts, want)
	}
	c.expect(groOut{0, 20 * groMSS, 20})
}

// A segment with PSH or FIN joins the flow and ends it at once; one with
// RST, URG or SYN does not join (the flag word differs) and goes up
// alone, after the flow it ended; CWR cannot join but starts a new flow.
func TestGROFlushFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flag   header.TCPFlags
		before []groOut // delivered before the end of the batch
		after  []groOut // delivered by the flush
	}{
		{"psh", header.TCPFlagPsh, []groOut{{0, 2 * groMSS, 2}}, []groOut{{2 * groMSS, groMSS, 1}}},
		{"fin", header.TCPFlagFin, []groOut{{0, 2 * groMSS, 2}}, []groOut{{2 * groMSS, groMSS, 1}}},
		{"rst", header.TCPFlagRst, []groOut{{0, groMSS, 1}, {groMSS, groMSS, 1}}, []groOut{{2 * groMSS, groMSS, 1}}},
		{"urg", header.TCPFlagUrg, []groOut{{0, groMSS, 1}, {groMSS, groMSS, 1}}, []groOut{{2 * groMSS, groMSS, 1}}},
		{"syn", header.TCPFlagSyn, []groOut{{0, groMSS, 1}, {groMSS, groMSS, 1}}, []groOut{{2 * groMSS, groMSS, 1}}},
		{"cwr", header.TCPFlagCwr, []groOut{{0, groMSS, 1}}, []groOut{{groMSS, 2 * groMSS, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newGROTest(t)
			s := groK(1)
			s.flags = tc.flag
			c.send(groK(0), s, groK(2))
			c.expect(tc.before...)
			c.g.flush()
			c.expect(tc.after...)
		})
	}
}

// A merged PSH or FIN shows in the super-packet's header.
func TestGROPshCarriedToSuperPacket(t *testing.T) {
	c := newGROTest(t)
	s := groK(1)
	s.flags = header.TCPFlagPsh | header.TCPFlagFin
	c.send(groK(0), s)
	if len(c.out) != 1 {
		t.Fatalf("%d delivered", len(c.out))
	}
	if f := header.TCP(c.out[0].Data()[header.IPv4MinSize:]).Flags(); f != header.TCPFlagAck|header.TCPFlagPsh|header.TCPFlagFin {
		t.Fatalf("flags %v", f)
	}
	c.expect(groOut{0, 2 * groMSS, 2})
}

// Out of order: each packet ends the flow before it, nothing merges.
func TestGROOutOfOrderNotMerged(t *testing.T) {
	c := newGROTest(t)
	c.send(groK(0), groK(2), groK(1))
	c.expect(groOut{0, groMSS, 1}, groOut{2 * groMSS, groMSS, 1})
	c.g.flush()
	c.expect(groOut{groMSS, groMSS, 1})
	// A duplicate does not merge either.
	c.send(groK(3), groK(3))
	c.g.flush()
	c.expect(groOut{3 * groMSS, groMSS, 1}, groOut{3 * groMSS, groMSS, 1})
}

// Any difference in the options (a new timestamp), the window, the ACK,
// TTL, TOS or DF ends the flow.
func TestGROHeaderMismatchNotMerged(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*groSeg)
	}{
		{"tsval", func(s *groSeg) { s.tsval = 8 }},
		{"window", func(s *groSeg) { s.win = 501 }},
		{"ack", func(s *groSeg) { s.ack = 2 }},
		{"ttl", func(s *groSeg) { s.ttl = 63 }},
		{"tos", func(s *groSeg) { s.tos = 0x10 }},
		{"df", func(s *groSeg) { s.noDF = true }},
		{"ip id jump", func(s *groSeg) { s.id = 300 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newGROTest(t)
			s := groK(1)
			tc.mod(&s)
			c.send(groK(0), s)
			c.g.flush()
			c.expect(groOut{0, groMSS, 1}, groOut{groMSS, groMSS, 1})
		})
	}
}

// IP IDs: incrementing ones merge; a flow whose second packet repeats the
// first's ID with DF set is atomic and merges while the ID stays; without
// DF a repeated ID does not merge.
func TestGROIPIDRules(t *testing.T) {
	c := newGROTest(t)
	fixed := func(k int, df bool) groSeg { s := groK(k); s.id = 7; s.noDF = !df; return s }
	c.send(fixed(0, true), fixed(1, true), fixed(2, true))
	c.g.flush()
	c.expect(groOut{0, 3 * groMSS, 3})
	c.send(fixed(3, false), fixed(4, false))
	c.g.flush()
	c.expect(groOut{3 * groMSS, groMSS, 1}, groOut{4 * groMSS, groMSS, 1})
}

// A segment shorter than the flow's gso_size joins it and ends it; a
// longer one does not join.
func TestGROShortSegmentEndsFlow(t *testing.T) {
	c := newGROTest(t)
	short := groK(1)
	short.n = 1000
	c.send(groK(0), short)
	c.expect(groOut{0, groMSS + 1000, 2})
	// A short first packet: the next, full-sized, may not join it.
	c.send(groSeg{seq: groMSS + 1000, n: 500}, groSeg{seq: groMSS + 1500})
	c.g.flush()
	c.expect(groOut{groMSS + 1000, 500, 1}, groOut{groMSS + 1500, groMSS, 1})
	// A pure ACK ends the flow and goes up alone.
	c.send(groK(10), groSeg{seq: 11 * groMSS, n: -1})
	c.expect(groOut{10 * groMSS, groMSS, 1}, groOut{11 * groMSS, 0, 1})
}

// A super-packet stops short of 64 KiB (GRO_LEGACY_MAX_SIZE): 45
// segments of 1448 bytes with 52 header bytes are 65212 bytes.
func TestGROMax64KiB(t *testing.T) {
	c := newGROTest(t)
	for k := 0; k < 50; k++ {
		c.send(groK(k))
	}
	c.expect(groOut{0, 45 * groMSS, 45})
	c.g.flush()
	c.expect(groOut{45 * groMSS, 5 * groMSS, 5})
}

// Nothing is held past the end of a batch, and the next batch starts
// afresh even for the same flow.
func TestGROEndOfBatchFlush(t *testing.T) {
	c := newGROTest(t)
	c.send(groK(0), groK(1), groSeg{seq: 100 * groMSS, sport: 40001})
	if len(c.out) != 0 {
		t.Fatalf("%d delivered before the end of the batch", len(c.out))
	}
	c.g.flush()
	c.expect(groOut{0, 2 * groMSS, 2}, groOut{100 * groMSS, groMSS, 1})
	for i := range c.g.lists {
		if c.g.lists[i].n != 0 {
			t.Fatalf("list %d still holds %d packets", i, c.g.lists[i].n)
		}
	}
	c.send(groK(2), groK(3))
	c.g.flush()
	c.expect(groOut{2 * groMSS, 2 * groMSS, 2})
}

// Two flows interleaved merge separately.
func TestGRODifferentFlowsApart(t *testing.T) {
	c := newGROTest(t)
	other := func(k int) groSeg { s := groK(k); s.sport = 40001; s.seq += 50 * groMSS; return s }
	c.send(groK(0), other(0), groK(1), other(1), groK(2), other(2))
	c.g.flush()
	got := describeGRO(c.out)
	if len(got) != 2 || got[0].segs != 3 || got[1].segs != 3 {
		t.Fatalf("delivered %v", got)
	}
	// Bucket by bucket: which comes first depends on the flow hash.
	if got[0].seq != 0 {
		c.out[0], c.out[1] = c.out[1], c.out[0]
	}
	c.expect(groOut{0, 3 * groMSS, 3}, groOut{50 * groMSS, 3 * groMSS, 3})
}

// A list holds at most MAX_GRO_SKBS flows: the oldest goes up when a
// ninth arrives in the same bucket.
func TestGROFlushOldestOfFullList(t *testing.T) {
	c := newGROTest(t)
	var ports []uint16
	var bucket uint32
	for p := uint16(40000); len(ports) < maxGroSkbs+1; p++ {
		s := groSeg{sport: p}
		b := c.build(s)
		iph := header.IPv4(b.Data())
		h := groFlowHash(iph, header.TCP(b.Data()[header.IPv4MinSize:])) % groHashBuckets
		b.Free()
		if len(ports) == 0 {
			bucket = h
		}
		if h == bucket {
			ports = append(ports, p)
		}
	}
	for i, p := range ports {
		c.send(groSeg{sport: p, seq: uint32(i) * 10 * groMSS})
	}
	c.expect(groOut{0, groMSS, 1})
	c.g.flush()
	got := c.take()
	for _, b := range got {
		b.Free()
	}
	if len(got) != maxGroSkbs {
		t.Fatalf("flush delivered %d held flows, want %d", len(got), maxGroSkbs)
	}
}

// A packet whose checksum fails never merges: it goes up at once, as it
// came (not marked verified), for TCP to drop and count; the flow it
// interrupted is not ended by it. Verified packets are marked
// CHECKSUM_UNNECESSARY. A bad IP header checksum goes up unmerged too.
func TestGROBadChecksumNotMerged(t *testing.T) {
	c := newGROTest(t)
	bad := groK(1)
	bad.badCsum = true
	c.send(groK(0), bad)
	got := c.take()
	if len(got) != 1 || got[0].IPSummed != skb.ChecksumNone {
		t.Fatalf("delivered %v", describeGRO(got))
	}
	got[0].Free()
	c.send(groK(1))
	c.g.flush()
	c.expect(groOut{0, 2 * groMSS, 2})

	badIP := groK(3)
	badIP.badIP = true
	c.send(groK(2), badIP)
	got = c.take()
	if len(got) != 1 || header.IPv4(got[0].Data()).IsChecksumValid() {
		t.Fatalf("delivered %v", describeGRO(got))
	}
	got[0].Free()
	c.g.flush()
	got = c.take()
	if len(got) != 1 || got[0].IPSummed != skb.ChecksumUnnecessary {
		t.Fatalf("a verified packet alone: %v ip_summed %d", describeGRO(got), got[0].IPSummed)
	}
	got[0].Free()
}

// In steady state GRO allocates nothing: skbs and pages come from the
// caches.
func TestGROSteadyStateAllocs(t *testing.T) {
	if !skbRecycles {
		t.Skip("skbs are not recycled under -race or skbdebug")
	}
	c := newGROTest(t)
	c.g.deliver = func(b *skb.SKB) { b.Free() }
	bs := make([]*skb.SKB, 16)
	k := 0
	run := func() {
		for i := range bs {
			bs[i] = c.build(groK(k))
			k++
		}
		for _, b := range bs {
			c.g.receive(b)
		}
		c.g.flush()
	}
	run()
	// build allocates its scratch header; count GRO's own work only.
	built := testing.AllocsPerRun(20, func() {
		for range bs {
			c.build(groK(k)).Free()
		}
	})
	all := testing.AllocsPerRun(20, run)
	if all-built > 0.5 {
		t.Fatalf("%.1f allocations per batch of 16 in GRO", all-built)
	}
}
