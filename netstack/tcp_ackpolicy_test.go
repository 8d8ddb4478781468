package netstack

import (
	"context"
	"strings"
	"testing"
	"time"

	"sockfs/memctl"

	"sockfs/netstack/header"
)

// The fast path's verdict is taken as tcp_rcv_established takes it, before
// the segment is processed, and decides both TCPHPHits (predicted data) and
// TCPHPAcks (an ACK advancing snd_una on the fast path):
//
//   - in-order data with only the predicted header, fitting in
//     forward_alloc: TCPHPHits;
//   - the same data with a SACK option (a longer header): the slow path,
//     with its receive-memory admission, and no TCPHPHits;
//   - data too large for forward_alloc (more than a page: forward_alloc
//     keeps less than one after each charge) that advances snd_una: the
//     slow path (step 5), so neither TCPHPAcks nor TCPPureAcks;
//   - a pure ACK with the predicted header that advances snd_una:
//     TCPHPAcks.
//
// sockfs counted the second as TCPHPHits, admitted it without the rcvbuf
// check, and counted the third as TCPHPAcks; in a bidirectional exchange
// against the live kernel (TestLinuxDiffSackMss) it showed 8 to 20 times
// the kernel's TCPHPAcks.
func TestFastPathVerdictBeforeProcessing(t *testing.T) {
	c := sackEstablished(t)
	mib := c.s.mib
	hits := func() uint64 { return mib.Get(memctl.TcpExtTCPHPHits) }
	hpacks := func() uint64 { return mib.Get(memctl.TcpExtTCPHPAcks) }
	pure := func() uint64 { return mib.Get(memctl.TcpExtTCPPureAcks) }
	seq := c.peerIS + 1
	una := c.iss + 1
	data := func(n int, opts []byte, ack uint32) {
		t.Helper()
		c.send(seg{seq: seq, ack: ack, flags: fAck, win: 65535, payload: strings.Repeat("d", n), opts: opts})
		seq += uint32(n)
		c.takeAll()
	}
	c.send(seg{seq: seq, ack: una, flags: fAck, win: 65535}) // the window the fast path predicts
	c.takeAll()

	data(100, nil, una) // forward_alloc is empty: the slow path charges a page
	h0 := hits()
	data(100, nil, una)
	if hits() != h0+1 {
		t.Fatalf("TCPHPHits %d -> %d for predicted in-order data that fits in forward_alloc, want +1", h0, hits())
	}
	sackBlock := sackOpt(header.SACKBlock{Start: una - 2000, End: una - 1000}) // a block of nothing sent
	data(100, sackBlock, una)
	if hits() != h0+1 {
		t.Fatalf("TCPHPHits %d -> %d for data with a SACK option (a longer header: the slow path), want no change", h0+1, hits())
	}

	if _, err := c.tp.Send(context.Background(), []byte("abc")); err != nil {
		t.Fatal(err)
	}
	c.takeAll()
	a0, p0 := hpacks(), pure()
	data(5000, nil, una+3) // truesize over a page: step 5
	una += 3
	if hpacks() != a0 || pure() != p0 {
		t.Fatalf("data too large for forward_alloc acking new data: TCPHPAcks %d -> %d, TCPPureAcks %d -> %d, want neither to move",
			a0, hpacks(), p0, pure())
	}

	if _, err := c.tp.Send(context.Background(), []byte("abc")); err != nil {
		t.Fatal(err)
	}
	c.takeAll()
	c.send(seg{seq: seq, ack: una + 3, flags: fAck, win: 65535})
	if hpacks() != a0+1 {
		t.Fatalf("TCPHPAcks %d -> %d for a predicted pure ACK advancing snd_una, want +1", a0, hpacks())
	}
}

// A read that empties a receive queue holding pushed data sends the ACK at
// once, as tcp_cleanup_rbuf does; in interactive (ping-pong) mode only after
// two small pushed segments (ICSK_ACK_PUSHED2): one would wait for the
// delayed-ACK timer, as a reply is expected to carry the ACK. sockfs never
// marked pushed data (tcp_measure_rcv_mss), so every such ACK waited for
// the timer.
func TestReadEmptyingPushedDataAcks(t *testing.T) {
	c := sackEstablished(t)
	c.tp.SetQuickAck(false) // ping-pong: small segments' ACKs are delayed
	seq := c.peerIS + 1
	buf := make([]byte, 100)
	push := func(p string) {
		t.Helper()
		c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck | fPsh, win: 65535, payload: p})
		seq += uint32(len(p))
	}
	read := func(want int) {
		t.Helper()
		if n, err := c.tp.Recv(context.Background(), buf); err != nil || n != want {
			t.Fatalf("Recv: %d, %v; want %d bytes", n, err, want)
		}
	}

	push("one")
	c.expectNone()
	read(3)
	c.expectNone() // one pushed segment in ping-pong mode: the timer's

	c.clk.Advance(time.Second) // the delayed ACK goes
	c.takeAll()
	c.tp.SetQuickAck(false) // the timer's ACK left ping-pong mode
	push("two")
	push("three")
	c.expectNone()
	read(8)
	if sg, _, ok := c.take(); !ok || sg.flags != fAck || sg.ack != seq {
		t.Fatalf("after reading two small pushed segments: %v (sent: %v), want the ACK of %d at once", sg, ok, seq)
	}
}

// An answer sent within ato of the data it answers counts toward ping-pong
// mode (tcp_event_data_sent); at tcp_pingpong_thresh answers (1 by
// default) the next request's ACK is delayed, to ride on the next answer,
// instead of going at once as a quick ACK. sockfs had no such count: every
// small request of an interactive exchange got its own ACK while quick ACKs
// lasted (TestLinuxDiffRequestResponse: 604 segments sent against the
// kernel's 305 for 300 exchanges).
func TestAnswersEnterPingpongMode(t *testing.T) {
	for _, tc := range []struct {
		thresh  string
		delayed bool // the second request's ACK
	}{{"1", true}, {"3", false}} {
		t.Run("thresh"+tc.thresh, func(t *testing.T) {
			c := sackEstablished(t)
			if sc, _ := c.s.net.Sysctls.Lookup("ipv4/tcp_pingpong_thresh"); sc.Write(tc.thresh) != nil {
				t.Fatal("tcp_pingpong_thresh")
			}
			seq, una := c.peerIS+1, c.iss+1
			c.send(seg{seq: seq, ack: una, flags: fAck | fPsh, win: 65535, payload: "req1"})
			seq += 4
			c.takeAll() // quick ACK mode: the first request is ACKed at once
			buf := make([]byte, 16)
			if n, err := c.tp.Recv(context.Background(), buf); err != nil || n != 4 {
				t.Fatalf("Recv: %d, %v", n, err)
			}
			if _, err := c.tp.Send(context.Background(), []byte("ans1")); err != nil {
				t.Fatal(err)
			}
			c.takeAll()
			una += 4
			c.send(seg{seq: seq, ack: una, flags: fAck | fPsh, win: 65535, payload: "req2"})
			_, _, acked := c.take()
			if acked == tc.delayed {
				t.Fatalf("tcp_pingpong_thresh %s: second request ACKed at once: %v, want %v", tc.thresh, acked, !tc.delayed)
			}
		})
	}
}

// Tcp:OutSegs counts segments with new data or no sequence space, not a
// retransmission (Tcp:RetransSegs counts that), as __tcp_transmit_skb and
// RFC 1213's tcpOutSegs do. sockfs counted retransmissions in both
// (TestLinuxDiffBlackHole: 27 segments against the kernel's 13).
func TestOutSegsLeaveOutRetransmissions(t *testing.T) {
	c := sackEstablished(t)
	mib := c.s.mib
	out, rtx := func() uint64 { return mib.Get(memctl.TcpOutSegs) }, func() uint64 { return mib.Get(memctl.TcpRetransSegs) }
	o0, r0 := out(), rtx()
	if _, err := c.tp.Send(context.Background(), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	c.takeAll()
	if out() != o0+1 {
		t.Fatalf("Tcp:OutSegs %d -> %d for one new segment, want +1", o0, out())
	}
	c.clk.Advance(3 * time.Second) // unanswered: the RTO retransmits it
	if got := c.takeAll(); len(got) == 0 {
		t.Fatal("no retransmission after 3 s")
	}
	if rtx() == r0 || out() != o0+1 {
		t.Fatalf("after the retransmission: Tcp:OutSegs %d -> %d (want +1, the original only), Tcp:RetransSegs %d -> %d (want more)",
			o0, out(), r0, rtx())
	}
}

// A zero-window probe (and any control segment) counts in Tcp:OutSegs: it
// has no sequence space (tcp_init_nondata_skb sets its end_seq to its
// seq). sockfs set only its seq, so whether transmitSkb counted it
// depended on the initial sequence number (TestLinuxDiffZeroWindowProbes:
// the kernel 81 segments out, sockfs 78, 3 probes each); hence several
// seeds here.
func TestZeroWindowProbesCountAsOutSegs(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		c := sackEstablishedSeed(t, seed)
		mib := c.s.mib
		c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true}) // the window closes
		c.takeAll()
		if _, err := c.tp.Send(context.Background(), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		o0, p0 := mib.Get(memctl.TcpOutSegs), mib.Get(memctl.TcpExtTCPWinProbe)
		c.clk.Advance(2 * time.Second)
		c.takeAll()
		probes, out := mib.Get(memctl.TcpExtTCPWinProbe)-p0, mib.Get(memctl.TcpOutSegs)-o0
		if probes == 0 || out != probes {
			t.Fatalf("seed %d: %d zero-window probes, Tcp:OutSegs +%d: want one segment counted per probe", seed, probes, out)
		}
	}
}
