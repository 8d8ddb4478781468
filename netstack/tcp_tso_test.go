package netstack

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/netstack/impair"
	"sockfs/skb"
)

// Packet scripts and accounting checks for TSO-sized send skbs
// (tcp_tso.go). The capture device has no TSO, so every GSO skb reaches
// the script cut into wire segments by software GSO; the tests look at the
// queues to see the skbs themselves.

// tsoSkb is what a test checks of one skb on a send queue.
type tsoSkb struct {
	seq, len, pcount int
	sacked           uint8
}

// queueShape returns the skbs of q relative to base, read under the
// socket lock.
func (c *script) queueShape(q *skb.Queue, base uint32) []tsoSkb {
	c.tp.lockSock()
	defer c.tp.releaseSock()
	var out []tsoSkb
	for b := q.Peek(); b != nil; b = b.Next() {
		out = append(out, tsoSkb{int(cbGetSeq(b) - base), b.Len(), tcpSkbPcount(b), cbGetSacked(b)})
	}
	return out
}

// checkWmemQueued asserts the send side's accounting invariant: every
// byte of wmem_queued is the truesize of an skb on the write or
// retransmit queue (sk_wmem_queued_add's callers keep it so).
func (c *script) checkWmemQueued() {
	c.t.Helper()
	c.tp.lockSock()
	defer c.tp.releaseSock()
	sum := 0
	for _, q := range []*skb.Queue{&c.tp.writeQueue, &c.tp.rtxQueue} {
		for b := q.Peek(); b != nil; b = b.Next() {
			sum += b.Truesize()
		}
	}
	if w := c.tp.sk.WmemQueued(); w != sum {
		c.t.Fatalf("wmem_queued %d, truesize of the queued skbs %d", w, sum)
	}
}

// counters returns packets_out, sacked_out, lost_out and retrans_out.
func (c *script) counters() [4]uint32 {
	c.tp.lockSock()
	defer c.tp.releaseSock()
	return [4]uint32{c.tp.packetsOut, c.tp.sackedOut, c.tp.lostOut, c.tp.retransOut}
}

// expectSegs takes n wire segments of mss from seq on (the last one may
// be shorter: last bytes) and returns how many it saw.
func (c *script) expectData(seq uint32, n, mss, last int) {
	c.t.Helper()
	for i := 0; i < n; i++ {
		g, _, ok := c.take()
		want := mss
		if i == n-1 && last > 0 {
			want = last
		}
		if !ok || g.seq != seq+uint32(i*mss) || len(g.payload) != want {
			c.t.Fatalf("segment %d: got %v (sent: %v), want seq %d len %d", i, g, ok, seq+uint32(i*mss), want)
		}
	}
}

// ESTABLISHED: one write of 20 segments becomes one skb under the size
// goal; tcp_write_xmit cuts (tso_fragment) two skbs of 5 segments off it,
// half the initial window each (tcp_cwnd_test), and stops at the window of
// 10; the rest stays one unsent skb. An ACK for 2 segments trims the first
// skb's head (tcp_trim_head): 3 segments left, 2 acknowledged; slow start
// opens the window by 2, and 4 more segments go. wmem_queued is always
// the truesize of what is queued.
func TestEstablishedTsoFragmentAtCwnd(t *testing.T) {
	c := sackEstablished(t)
	const mss = 1460
	data := make([]byte, 20*mss)
	if _, err := c.tp.Send(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	base := c.iss + 1
	c.expectData(base, 10, mss, 0)
	c.expectNone()
	rtx := c.queueShape(&c.tp.rtxQueue, base)
	wq := c.queueShape(&c.tp.writeQueue, base)
	if len(rtx) != 2 || rtx[0] != (tsoSkb{0, 5 * mss, 5, 0}) || rtx[1] != (tsoSkb{5 * mss, 5 * mss, 5, 0}) {
		t.Fatalf("retransmit queue %v, want two skbs of 5 segments", rtx)
	}
	if len(wq) != 1 || wq[0].seq != 10*mss || wq[0].len != 10*mss {
		t.Fatalf("write queue %v, want one skb of the other 10 segments", wq)
	}
	if got := c.counters(); got[0] != 10 {
		t.Fatalf("packets_out %d, want 10", got[0])
	}
	c.checkWmemQueued()

	c.send(seg{seq: 1001, ack: base + 2*mss, flags: fAck, win: 65535})
	rtx = c.queueShape(&c.tp.rtxQueue, base)
	if rtx[0] != (tsoSkb{2 * mss, 3 * mss, 3, 0}) {
		t.Fatalf("head after a 2-segment ACK %v, want 3 segments from 2*mss", rtx[0])
	}
	c.expectData(base+10*mss, 4, mss, 0)
	if got := c.counters(); got[0] != 12 {
		t.Fatalf("packets_out %d, want 12 (cwnd 12)", got[0])
	}
	c.checkWmemQueued()
}

// ESTABLISHED, SACK: a SACK block covering the middle of a 5-segment skb
// cuts it at segment boundaries (tcp_match_skb_to_sack): the part before
// the block, the SACKed part, the part after; sacked_out counts segments.
// A block ending inside a segment rounds down to whole segments.
func TestEstablishedSackSplitsTsoSkb(t *testing.T) {
	c, base := sackFiveSegments(t)
	const mss = 1460
	c.send(seg{seq: 1001, ack: base, flags: fAck, win: 65535,
		opts: sackOpt(header.SACKBlock{Start: base + 2*mss, End: base + 4*mss + 100})})
	rtx := c.queueShape(&c.tp.rtxQueue, base)
	want := []tsoSkb{{0, 2 * mss, 2, 0}, {2 * mss, 2 * mss, 2, tcpcbSackedAcked}, {4 * mss, mss, 1, 0}}
	if len(rtx) != len(want) {
		t.Fatalf("retransmit queue %v, want %v", rtx, want)
	}
	for i := range want {
		if rtx[i] != want[i] {
			t.Fatalf("retransmit queue %v, want %v", rtx, want)
		}
	}
	if got := c.counters(); got[0] != 5 || got[1] != 2 {
		t.Fatalf("packets_out %d sacked_out %d, want 5 and 2", got[0], got[1])
	}
	c.checkWmemQueued()
	// The rest arrives: everything is freed.
	c.send(seg{seq: 1001, ack: base + 5*mss, flags: fAck, win: 65535})
	if got := c.counters(); got != [4]uint32{} {
		t.Fatalf("counters %v after the final ACK", got)
	}
	c.checkWmemQueued()
}

// ESTABLISHED: the RTO retransmits only the first segment of a
// 5-segment head skb (tcp_retransmit_timer passes one segment to
// __tcp_retransmit_skb, which cuts the skb there): one wire segment, the
// head skb now one segment long and marked retransmitted, retrans_out 1,
// the other four still lost.
func TestEstablishedRetransmitPartOfTsoSkb(t *testing.T) {
	c := sackEstablished(t)
	const mss = 1460
	if _, err := c.tp.Send(context.Background(), make([]byte, 5*mss)); err != nil {
		t.Fatal(err)
	}
	base := c.iss + 1
	c.expectData(base, 5, mss, 0)
	// Before any RTT sample the loss probe and the RTO are both due after
	// 1 s; the probe goes first, with the last segment.
	c.clk.Advance(1000 * time.Millisecond)
	c.expectData(base+4*mss, 1, mss, 0)
	c.expectNone()
	c.clk.Advance(1000 * time.Millisecond)
	c.expectData(base, 1, mss, 0)
	c.expectNone()
	rtx := c.queueShape(&c.tp.rtxQueue, base)
	want := []tsoSkb{
		{0, mss, 1, tcpcbLost | tcpcbSackedRetrans | tcpcbEverRetrans},
		{mss, 3 * mss, 3, tcpcbLost},
		{4 * mss, mss, 1, tcpcbLost | tcpcbEverRetrans},
	}
	if len(rtx) != len(want) || rtx[0] != want[0] || rtx[1] != want[1] || rtx[2] != want[2] {
		t.Fatalf("retransmit queue %v, want %v", rtx, want)
	}
	if got := c.counters(); got != [4]uint32{5, 0, 5, 1} {
		t.Fatalf("packets/sacked/lost/retrans_out %v, want [5 0 5 1]", got)
	}
	c.checkWmemQueued()
	if n := c.s.mib.Get(memctl.TcpRetransSegs); n != 2 {
		t.Fatalf("RetransSegs %d, want 2 (the probe and the RTO's)", n)
	}
	// The ACK of the first segment lets the window (now 2) resend two
	// more lost segments, cut off the 3-segment skb.
	c.send(seg{seq: 1001, ack: base + mss, flags: fAck, win: 65535})
	c.expectData(base+mss, 2, mss, 0)
	c.checkWmemQueued()
}

// ESTABLISHED: a tail loss probe with nothing new to send retransmits only
// the last segment of the last skb, cut off it (tcp_send_loss_probe).
func TestEstablishedLossProbeLastSegment(t *testing.T) {
	c := sackEstablished(t)
	const mss = 1460
	if _, err := c.tp.Send(context.Background(), make([]byte, 3*mss+100)); err != nil {
		t.Fatal(err)
	}
	base := c.iss + 1
	c.expectData(base, 4, mss, 100)
	c.clk.Advance(time.Second) // the probe timeout before any RTT sample
	c.expectData(base+3*mss, 1, mss, 100)
	c.expectNone()
	rtx := c.queueShape(&c.tp.rtxQueue, base)
	if n := len(rtx); n != 2 || rtx[1] != (tsoSkb{3 * mss, 100, 1, tcpcbSackedRetrans | tcpcbEverRetrans}) {
		t.Fatalf("retransmit queue %v, want the last segment cut off and resent", rtx)
	}
	c.checkWmemQueued()
}

// A sender blocked on a peer that never reads holds its data in skbs of
// the size goal, so wmem_queued is barely more than the bytes queued:
// Linux 6.18 shows 1.018 charged bytes per queued byte in the same
// scenario (tcp_sendmsg_locked filling the tail skb to tcp_xmit_size_goal;
// shared/research/probes-2026-12.md), where one skb per MSS cost 1.575.
func TestTCPSenderBlockedWmemPerByte(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 11)
	cli, _ := tcpPair(t, n, 80)
	buf := make([]byte, 64<<10)
	ctx := context.Background()
	last, still := uint32(0), 0
	for i := 0; still < 50; i++ {
		if i > 20000 {
			t.Fatal("the sender never settled")
		}
		if _, err := cli.Send(ctx, buf); err != nil && !errors.Is(err, syscall.EAGAIN) {
			t.Fatal(err)
		}
		n.run(10 * time.Millisecond)
		cli.lockSock()
		if ws := cli.writeSeq; ws != last || cli.sndWnd != 0 {
			last, still = ws, 0
		} else {
			still++
		}
		cli.releaseSock()
	}
	cli.lockSock()
	queued := int(cli.writeSeq - cli.sndUna)
	w := cli.sk.WmemQueued()
	cli.releaseSock()
	ratio := float64(w) / float64(queued)
	t.Logf("w%d for %d queued at tb%d: %.3f per byte (Linux: 1.018)", w, queued, cli.sk.Sndbuf(), ratio)
	if ratio > 1.018*1.05 || ratio < 1 {
		t.Fatalf("%.3f charged bytes per queued byte, want within 5%% of Linux's 1.018", ratio)
	}
}

// ESTABLISHED, SACK: a block that grows one segment at a time (as every
// dupack in a recovery grows it) cuts a new piece off the skb each time;
// each piece is shifted into the SACKed skb before it
// (tcp_shift_skb_data), so the queue holds one SACKed skb for the block,
// not one per ACK, and the struct charges of the pieces are returned.
func TestEstablishedSackShiftMergesPieces(t *testing.T) {
	c, base := sackFiveSegments(t)
	const mss = 1460
	for end := 2; end <= 4; end++ {
		c.send(seg{seq: 1001, ack: base, flags: fAck, win: 65535,
			opts: sackOpt(header.SACKBlock{Start: base + mss, End: base + uint32(end*mss)})})
		c.checkWmemQueued()
	}
	rtx := c.queueShape(&c.tp.rtxQueue, base)
	// The hole before the block is marked lost and resent (three SACKed
	// segments above it), whatever the layout of the block.
	rtx[0].sacked = 0
	want := []tsoSkb{{0, mss, 1, 0}, {mss, 3 * mss, 3, tcpcbSackedAcked}, {4 * mss, mss, 1, 0}}
	if len(rtx) != len(want) || rtx[0] != want[0] || rtx[1] != want[1] || rtx[2] != want[2] {
		t.Fatalf("retransmit queue %v, want %v", rtx, want)
	}
	if got := c.counters(); got[0] != 5 || got[1] != 3 {
		t.Fatalf("packets_out %d sacked_out %d, want 5 and 3", got[0], got[1])
	}
	// As Linux counts them: the first block's skb has no SACKed skb
	// before it, nor has its piece after the cut (two fallbacks); each
	// later ACK shifts the head segment of the rest into the SACKed skb,
	// leaving the tail: TCPSackShifted, not TCPSackMerged.
	mib := c.s.mib
	if got := [3]uint64{mib.Get(memctl.TcpExtTCPSackShiftFallback), mib.Get(memctl.TcpExtTCPSackShifted),
		mib.Get(memctl.TcpExtTCPSackMerged)}; got != [3]uint64{2, 2, 0} {
		t.Fatalf("TCPSackShiftFallback, TCPSackShifted, TCPSackMerged %v, want [2 2 0]", got)
	}
}

// sackFiveSegments is an established SACK connection (RFC 6675 loss
// marking) that has sent one 5-segment skb of 1460-byte segments from
// base.
func sackFiveSegments(t *testing.T) (*script, uint32) {
	c := sackEstablished(t)
	c.setRecovery("0")
	if _, err := c.tp.Send(context.Background(), make([]byte, 5*1460)); err != nil {
		t.Fatal(err)
	}
	base := c.iss + 1
	c.expectData(base, 5, 1460, 0)
	return c, base
}

// ESTABLISHED, SACK, five one-segment skbs A..E: B SACKed alone has no
// SACKed skb before it (TCPSackShiftFallback); C SACKed next to it is
// merged whole into B (TCPSackMerged); E SACKed alone falls back again;
// then D fills the hole between B+C and E: D is merged into B+C and,
// the hole being filled, E too (two more TCPSackMerged), as
// tcp_shift_skb_data does. The queue ends as A and one SACKed skb of four
// segments.
func TestEstablishedSackShiftHoleFilled(t *testing.T) {
	c := sackEstablished(t)
	c.setRecovery("0")
	const mss = 1460
	base := c.iss + 1
	for i := 0; i < 5; i++ {
		if _, err := c.tp.Send(context.Background(), make([]byte, mss)); err != nil {
			t.Fatal(err)
		}
		c.expectData(base+uint32(i*mss), 1, mss, 0)
	}
	at := func(i int) uint32 { return base + uint32(i*mss) }
	mib := c.s.mib
	for _, st := range []struct {
		blocks []header.SACKBlock
		want   [3]uint64 // fallback, shifted, merged
	}{
		{[]header.SACKBlock{{Start: at(1), End: at(2)}}, [3]uint64{1, 0, 0}},
		{[]header.SACKBlock{{Start: at(1), End: at(3)}}, [3]uint64{1, 0, 1}},
		{[]header.SACKBlock{{Start: at(4), End: at(5)}, {Start: at(1), End: at(3)}}, [3]uint64{2, 0, 1}},
		{[]header.SACKBlock{{Start: at(1), End: at(5)}}, [3]uint64{2, 0, 3}},
	} {
		c.send(seg{seq: 1001, ack: base, flags: fAck, win: 65535, opts: sackOpt(st.blocks...)})
		c.takeAll()
		c.checkWmemQueued()
		got := [3]uint64{mib.Get(memctl.TcpExtTCPSackShiftFallback), mib.Get(memctl.TcpExtTCPSackShifted),
			mib.Get(memctl.TcpExtTCPSackMerged)}
		if got != st.want {
			t.Fatalf("after SACK %v: fallback, shifted, merged %v, want %v", st.blocks, got, st.want)
		}
	}
	rtx := c.queueShape(&c.tp.rtxQueue, base)
	if len(rtx) != 2 || rtx[1] != (tsoSkb{mss, 4 * mss, 4, tcpcbSackedAcked}) {
		t.Fatalf("retransmit queue %v, want A and one SACKed skb of 4 segments", rtx)
	}
}
