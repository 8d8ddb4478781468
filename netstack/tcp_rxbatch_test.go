package netstack

import (
	"slices"
	"strings"
	"testing"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

// leaveQuickack ends quick-ack mode, as happens after the first round trips
// of a connection, so that the ACK decisions below are the steady-state
// ones. The first data ever received enters quick-ack mode
// (tcp_event_data_recv), so one warm-up segment of n bytes at *seq goes
// first; and while rcv_ssthresh still grows every ACK is quick
// (tcp_grow_window), so it starts at the window clamp, as once the window
// has opened.
func leaveQuickack(c *script, seq *uint32, n int) {
	c.send(seg{seq: *seq, ack: c.iss + 1, flags: fAck, payload: strings.Repeat("w", n)})
	*seq += uint32(n)
	c.takeAll()
	c.tp.lockSock()
	c.tp.ackQuick = 0
	c.tp.rcvSsthresh = c.tp.windowClamp
	c.tp.releaseSock()
}

// sackOutOfQuickack returns a SACK connection out of quick-ACK mode and the
// next sequence number it expects: the hole the tests' out-of-order
// segments leave behind them.
func sackOutOfQuickack(t *testing.T) (*script, uint32) {
	c := sackEstablished(t)
	hole := c.peerIS + 1
	leaveQuickack(c, &hole, 100)
	return c, hole
}

// takeAll returns every transmitted segment.
func (c *script) takeAll() []seg {
	var out []seg
	for {
		s, _, ok := c.take()
		if !ok {
			return out
		}
		out = append(out, s)
	}
}

// Eight full segments in one receive batch get one ACK, for all of them,
// at the end of the batch (per-segment processing would ACK every second
// one: "more than one full segment").
func TestAckPerReceiveBatch(t *testing.T) {
	c := newEstablished(t)
	seq := c.peerIS + 1
	leaveQuickack(c, &seq, 1460)
	payload := strings.Repeat("x", 1460)
	var batch []seg
	for range 8 {
		batch = append(batch, seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: payload})
		seq += 1460
	}
	c.sendBatch(batch...)
	acks := c.takeAll()
	if len(acks) != 1 || acks[0].ack != seq {
		t.Fatalf("one batch of 8 segments: ACKs %v, want one acking %d", acks, seq)
	}
}

// Out-of-order segments in one batch: the first three duplicate ACKs go at
// once (fast retransmit needs them), the other seven are merged into one
// sent at the end of the batch, whose SACK block covers everything, and
// TCPAckCompressed counts six: the seven merged but the one sent, as
// Linux's compressed-ACK timer counts them (tcp_compressed_ack_kick).
func TestSackCompressionInBatch(t *testing.T) {
	c, hole := sackOutOfQuickack(t)
	seq := hole + 100 // the first 100 bytes are missing
	var batch []seg
	for range 10 {
		batch = append(batch, seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: strings.Repeat("y", 100)})
		seq += 100
	}
	c.sendBatch(batch...)
	checkTenCompressed(t, c, hole, "in one batch")
	// The compressed ACK reports the whole out-of-order range.
	c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: "z"}) // one more, alone
	last, o, ok := c.take()
	if !ok || last.ack != hole || o.NumSACK == 0 || o.SACK[0] != (header.SACKBlock{Start: hole + 100, End: seq + 1}) {
		t.Fatalf("ACK after one more segment: %v %+v", last, o)
	}
}

// Out-of-order segments that arrive while the reader owns the socket wait
// on the backlog; release_sock's pass over them is a receive batch too:
// three duplicate ACKs at once, the other seven merged into one sent at
// the end of the pass (before, each one sent its own ACK, a TUN write).
// The segments come in descending order, so the backlog cannot coalesce
// them (each ends where the one before it starts) and each widens the
// first SACK block.
func TestSackCompressionInBacklog(t *testing.T) {
	c, hole := sackOutOfQuickack(t)
	c.tp.lockSock()
	for i := range uint32(10) {
		seq := hole + 1000 - 100*i
		c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: strings.Repeat("y", 100)})
	}
	if acks := c.takeAll(); len(acks) != 0 {
		t.Fatalf("%d ACKs while the socket was owned, want none", len(acks))
	}
	c.tp.releaseSock()
	checkTenCompressed(t, c, hole, "from the backlog")
}

// checkTenCompressed checks the ACKs for ten out-of-order segments behind
// hole: three duplicate ACKs and one for the seven merged, six of them
// counted in TCPAckCompressed.
func checkTenCompressed(t *testing.T, c *script, hole uint32, where string) {
	t.Helper()
	acks := c.takeAll()
	if len(acks) != 4 {
		t.Fatalf("10 out-of-order segments %s: %d ACKs, want 3 + 1 compressed", where, len(acks))
	}
	for _, a := range acks {
		if a.ack != hole {
			t.Fatalf("duplicate ACK acks %d, want %d", a.ack, hole)
		}
	}
	if got := c.s.mib.Get(memctl.TcpExtTCPAckCompressed); got != 6 {
		t.Fatalf("TCPAckCompressed %d, want 6", got)
	}
}

// A segment that widens the third SACK block while duplicate ACKs are being
// merged sends the merged ACK at once, before the blocks move, and that ACK
// counts the merged ones but itself (tcp_sack_compress_send_ack): ranges 1,
// 3, 5 and 7 past the hole give three duplicate ACKs and one merged; range
// 2 then widens range 3's block, third in most-recent-first order.
func TestSackCompressSendAck(t *testing.T) {
	c, hole := sackOutOfQuickack(t)
	rng := func(i uint32) seg {
		return seg{seq: hole + 100*i, ack: c.iss + 1, flags: fAck, payload: strings.Repeat("r", 100)}
	}
	c.sendBatch(rng(1), rng(3), rng(5), rng(7), rng(2))
	var acks []seg
	var last header.TCPOptions
	for {
		a, o, ok := c.take()
		if !ok {
			break
		}
		acks, last = append(acks, a), o
	}
	if len(acks) != 4 {
		t.Fatalf("%d ACKs, want 3 duplicates and the merged one", len(acks))
	}
	want := header.SACKBlock{Start: hole + 700, End: hole + 800}
	if last.NumSACK == 0 || last.SACK[0] != want {
		t.Fatalf("merged ACK's SACK blocks %v; want range 7 first (sent before range 2 moved its block to the front)", last.SACK[:last.NumSACK])
	}
	if got := c.s.mib.Get(memctl.TcpExtTCPAckCompressed); got != 0 {
		t.Fatalf("TCPAckCompressed %d, want 0 (one merged, and it is the one sent)", got)
	}
}

// The SACK blocks we send list the most recently changed range first and
// then the others in the order they last changed (RFC 2018, as Linux's
// tcp_sack_new_ofo_skb keeps them), not in sequence order; a segment that
// bridges two blocks merges them into the first; a fifth range pushes out
// the least recent one.
func TestSackBlocksMostRecentFirst(t *testing.T) {
	c, hole := sackOutOfQuickack(t)
	blk := func(i uint32) header.SACKBlock { // the i-th 100-byte range past the hole, 1-based
		return header.SACKBlock{Start: hole + 100*i, End: hole + 100*i + 100}
	}
	sendRange := func(i uint32) []header.SACKBlock {
		t.Helper()
		b := blk(i)
		c.send(seg{seq: b.Start, ack: c.iss + 1, flags: fAck, payload: strings.Repeat("s", 100)})
		a, o, ok := c.take()
		if !ok || a.ack != hole {
			t.Fatalf("no duplicate ACK for range %d: %v", i, a)
		}
		return o.SACK[:o.NumSACK]
	}
	sendRange(5)
	sendRange(1)
	got := sendRange(3)
	want := []header.SACKBlock{blk(3), blk(1), blk(5)}
	if !slices.Equal(got, want) {
		t.Fatalf("SACK blocks %v, want %v (most recent first)", got, want)
	}
	// Range 2 bridges ranges 1 and 3: one block 1..3, first.
	got = sendRange(2)
	want = []header.SACKBlock{{Start: blk(1).Start, End: blk(3).End}, blk(5)}
	if !slices.Equal(got, want) {
		t.Fatalf("after the bridge: SACK blocks %v, want %v", got, want)
	}
	sendRange(7)
	sendRange(9)
	got = sendRange(11)
	want = []header.SACKBlock{blk(11), blk(9), blk(7), {Start: blk(1).Start, End: blk(3).End}}
	if !slices.Equal(got, want) {
		t.Fatalf("five ranges: SACK blocks %v, want %v (range 5, the least recent, left out)", got, want)
	}
}
