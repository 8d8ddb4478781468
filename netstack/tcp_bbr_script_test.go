package netstack

import (
	"context"
	"testing"
	"time"

	"sockfs/netstack/header"
)

// bbrScript is a packet script in which the test plays a receiver behind
// a bottleneck: every data segment the stack sends is acknowledged, alone,
// one round-trip time after it was sent and at most one per perPkt (the
// bottleneck's serialisation time), in order. The stack's side is a BBR
// sender that always has data to send.
type bbrScript struct {
	*script
	rtt, perPkt time.Duration
	q           []bbrSent // data segments sent, not yet acknowledged
	high        uint32    // end of the highest segment seen
	data        []byte
	acks        int
	log         []bbrStep // the mode after each ACK
}

type bbrSent struct {
	end uint32
	at  int64
}

// bbrStep is the sender's BBR state after one ACK.
type bbrStep struct {
	at                   time.Duration
	mode                 uint8
	fullBwCnt, rttCnt    uint32
	cwnd, inflight       uint32
	inNetAtEdt, bdpQuant uint32 // packets_in_net_at_edt and inflight(bw, 1.0)
	bw, fullBw           uint32
	minRttStamp          int64
}

// newBBRScript establishes a connection (window scale 7, no timestamps or
// SACK) whose handshake takes rtt, and switches it to BBR.
func newBBRScript(t *testing.T, rtt time.Duration, rateBps uint64) *bbrScript {
	c := newScript(t)
	c.clk.Advance(time.Millisecond)
	c.listen(8)
	opts := make([]byte, 20)
	k := header.EncodeSynOptions(opts, 1460, 7, false, false, 0, 0)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: opts[:k]})
	sa, _, _ := c.take()
	c.iss = sa.seq
	c.clk.Advance(rtt)
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck, win: 0xffff})
	tp, err := c.l.Accept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tp.SetNonblock(true)
	c.tp = tp
	if err := tp.SetCongestion("bbr", true); err != nil {
		t.Fatal(err)
	}
	s := &bbrScript{script: c, rtt: rtt, high: c.iss + 1, data: make([]byte, 64<<10)}
	s.perPkt = time.Duration(uint64(1500*8) * uint64(time.Second) / rateBps)
	return s
}

// bbr returns the sender's BBR state.
func (s *bbrScript) bbr() *bbrCC { return s.tp.cc.(*bbrCC) }

// tick runs one bottleneck slot: the clock moves on by perPkt, the
// segments sent meanwhile join the queue, the oldest one sent at least
// an RTT ago is acknowledged, and the application refills the send queue.
func (s *bbrScript) tick() {
	s.clk.Advance(s.perPkt)
	now := s.clk.Nanotime()
	for {
		g, _, ok := s.take()
		if !ok {
			break
		}
		if end := g.seq + uint32(len(g.payload)); len(g.payload) > 0 && seqGT(end, s.high) {
			s.high = end
			s.q = append(s.q, bbrSent{end: end, at: now})
		}
	}
	if len(s.q) > 0 && s.q[0].at+int64(s.rtt) <= now {
		s.send(seg{seq: s.peerIS + 1, ack: s.q[0].end, flags: fAck, win: 0xffff})
		s.q = s.q[1:]
		s.acks++
		s.record()
	}
	for {
		if n, err := s.tp.Send(context.Background(), s.data); err != nil || n == 0 {
			break
		}
	}
}

// record notes BBR's state after an ACK.
func (s *bbrScript) record() {
	tp := s.tp
	tp.lockSock()
	defer tp.releaseSock()
	b := s.bbr()
	in := tp.packetsInFlight()
	s.log = append(s.log, bbrStep{at: time.Duration(s.clk.Nanotime()), mode: b.mode, fullBwCnt: b.fullBwCnt,
		rttCnt: b.rttCnt, cwnd: tp.cwnd, inflight: in, inNetAtEdt: b.packetsInNetAtEdt(tp, in),
		bdpQuant: b.inflight(tp, b.maxBw(), bbrUnit), bw: b.maxBw(), fullBw: b.fullBw,
		minRttStamp: b.minRttStamp})
}

// runUntil ticks until cond holds on the latest step, at most limit.
func (s *bbrScript) runUntil(limit time.Duration, cond func(bbrStep) bool) (bbrStep, bool) {
	end := s.clk.Nanotime() + int64(limit)
	for s.clk.Nanotime() < end {
		n := len(s.log)
		s.tick()
		if len(s.log) > n && cond(s.log[len(s.log)-1]) {
			return s.log[len(s.log)-1], true
		}
	}
	return bbrStep{}, false
}

// bwPkts converts a BBR bw (packets per us << 24) to packets per second.
func bwPkts(bw uint32) float64 { return float64(bw) * 1e6 / bbrBwUnit }

// TestBBRStartupDrainOnPlateau: in STARTUP the bandwidth samples grow
// each round until the bottleneck's rate is reached; BBR leaves for DRAIN
// on the ACK that ends the third round in a row without 25% growth
// (bbr_check_full_bw_reached), with ssthresh set to one BDP, and not
// before.
func TestBBRStartupDrainOnPlateau(t *testing.T) {
	s := newBBRScript(t, 50*time.Millisecond, 10_000_000)
	st, ok := s.runUntil(5*time.Second, func(st bbrStep) bool { return st.mode != bbrStartup })
	if !ok {
		t.Fatal("still in STARTUP after 5 s")
	}
	if st.mode != bbrDrain {
		t.Fatalf("left STARTUP for %s", bbrModeNames[st.mode])
	}
	if st.fullBwCnt != bbrFullBwCnt || !s.bbr().fullBwReached {
		t.Fatalf("DRAIN with full_bw_cnt %d", st.fullBwCnt)
	}
	// The plateau: the max bw is within 25% of full_bw, which was last
	// raised three rounds before, and it is the bottleneck's rate.
	prev := s.log[len(s.log)-2]
	if prev.mode != bbrStartup || prev.fullBwCnt != bbrFullBwCnt-1 {
		t.Fatalf("ACK before DRAIN: %s full_bw_cnt %d", bbrModeNames[prev.mode], prev.fullBwCnt)
	}
	var lastRaise bbrStep
	for _, l := range s.log {
		if l.fullBw == st.fullBw {
			lastRaise = l
			break
		}
	}
	if rounds := st.rttCnt - lastRaise.rttCnt; rounds != bbrFullBwCnt {
		t.Errorf("DRAIN %d rounds after full_bw was last raised, want %d", rounds, bbrFullBwCnt)
	}
	if uint64(st.bw)*bbrUnit >= uint64(st.fullBw)*bbrFullBwThresh {
		t.Errorf("bw %d grew 25%% over full_bw %d", st.bw, st.fullBw)
	}
	rate := 1e9 / float64(s.perPkt)
	if got := bwPkts(st.bw); got < 0.95*rate || got > 1.05*rate {
		t.Errorf("bw at DRAIN %.0f packets/s, bottleneck %.0f", got, rate)
	}
	if s.tp.ssthresh != st.bdpQuant {
		t.Errorf("ssthresh %d, want inflight(bw, 1) %d", s.tp.ssthresh, st.bdpQuant)
	}
	t.Logf("DRAIN at %v after %d rounds: bw %.0f packets/s (bottleneck %.0f), cwnd %d, in flight %d",
		st.at, st.rttCnt, bwPkts(st.bw), rate, st.cwnd, st.inflight)
}

// TestBBRDrainProbeBwWhenInflightBelowBdp: DRAIN paces below the rate
// until what will be in the network at the next departure is down to one
// BDP (with the quantization budget), and enters PROBE_BW on that ACK; on
// the ACKs before, it was above.
func TestBBRDrainProbeBwWhenInflightBelowBdp(t *testing.T) {
	s := newBBRScript(t, 50*time.Millisecond, 10_000_000)
	if _, ok := s.runUntil(5*time.Second, func(st bbrStep) bool { return st.mode == bbrDrain }); !ok {
		t.Fatal("no DRAIN in 5 s")
	}
	first := len(s.log) - 1
	st, ok := s.runUntil(5*time.Second, func(st bbrStep) bool { return st.mode != bbrDrain })
	if !ok || st.mode != bbrProbeBw {
		t.Fatalf("after DRAIN: %s", bbrModeNames[st.mode])
	}
	if st.inNetAtEdt > st.bdpQuant {
		t.Errorf("PROBE_BW with %d packets in the network at EDT, BDP target %d", st.inNetAtEdt, st.bdpQuant)
	}
	drain := s.log[first : len(s.log)-1]
	for _, l := range drain {
		if l.inNetAtEdt <= l.bdpQuant && l.mode == bbrDrain && l != s.log[first] {
			t.Errorf("still DRAIN at %v with %d in the network at EDT <= %d", l.at, l.inNetAtEdt, l.bdpQuant)
		}
	}
	if s.log[first].inflight <= st.inflight {
		t.Errorf("DRAIN did not drain: %d in flight at entry, %d at exit", s.log[first].inflight, st.inflight)
	}
	if g := s.bbr().pacingGain; g != bbrPacingGain[s.bbr().cycleIdx] || s.bbr().cycleIdx == 1 {
		t.Errorf("PROBE_BW entered at phase %d gain %d (never the draining phase 1)", s.bbr().cycleIdx, g)
	}
	t.Logf("DRAIN %v..%v: in flight %d -> %d (BDP target %d)", s.log[first].at, st.at, s.log[first].inflight, st.inflight, st.bdpQuant)
}

// TestBBRProbeRttEntryExit: with the queue kept small, no RTT sample beats
// min_rtt, so 10 s after it was taken BBR enters PROBE_RTT: cwnd 4, held
// for 200 ms from when the flight is down to 4 and one round more; then
// min_rtt's stamp is renewed, cwnd restored and PROBE_BW resumed.
func TestBBRProbeRttEntryExit(t *testing.T) {
	s := newBBRScript(t, 50*time.Millisecond, 10_000_000)
	enter, ok := s.runUntil(12*time.Second, func(st bbrStep) bool { return st.mode == bbrProbeRtt })
	if !ok {
		t.Fatal("no PROBE_RTT in 12 s")
	}
	b := s.bbr()
	// The ACK that enters it also takes its RTT as the new min_rtt
	// (the filter expired); the stamp it replaced is the step's before.
	stamp := s.log[len(s.log)-2].minRttStamp
	if since := time.Duration(int64(enter.at) - stamp); since <= bbrMinRttWin*time.Nanosecond ||
		since > bbrMinRttWin*time.Nanosecond+s.rtt {
		t.Errorf("PROBE_RTT %v after min_rtt's stamp, want just over 10 s", since)
	}
	if enter.minRttStamp != int64(enter.at) {
		t.Errorf("min_rtt not renewed by the expiring ACK")
	}
	saved := b.priorCwnd
	if enter.cwnd != bbrCwndMinTarget {
		t.Errorf("cwnd %d in PROBE_RTT, want %d", enter.cwnd, bbrCwndMinTarget)
	}
	var low bbrStep // the first ACK with at most 4 in flight
	exit, ok := s.runUntil(2*time.Second, func(st bbrStep) bool {
		if low.at == 0 && st.inflight <= bbrCwndMinTarget {
			low = st
		}
		if st.mode == bbrProbeRtt && st.cwnd > bbrCwndMinTarget {
			t.Fatalf("cwnd %d in PROBE_RTT at %v", st.cwnd, st.at)
		}
		return st.mode != bbrProbeRtt
	})
	if !ok {
		t.Fatal("PROBE_RTT not left in 2 s")
	}
	if exit.mode != bbrProbeBw {
		t.Errorf("PROBE_RTT left for %s, want PROBE_BW (the pipe was full)", bbrModeNames[exit.mode])
	}
	held := exit.at - low.at
	if held <= bbrProbeRttModeNs*time.Nanosecond || held > bbrProbeRttModeNs*time.Nanosecond+2*s.rtt {
		t.Errorf("PROBE_RTT held %v from flight <= 4 to exit, want 200 ms and a round", held)
	}
	if exit.cwnd < saved {
		t.Errorf("cwnd %d after PROBE_RTT, saved %d", exit.cwnd, saved)
	}
	if got := time.Duration(s.bbr().minRttStamp); got != exit.at {
		t.Errorf("min_rtt stamp %v, want renewed at the exit %v", got, exit.at)
	}
	t.Logf("PROBE_RTT %v..%v (flight <= 4 at %v), cwnd %d restored to %d", enter.at, exit.at, low.at, enter.cwnd, exit.cwnd)
}

// pacedCC is a test algorithm that asks for internal pacing at a fixed
// rate and keeps cwnd at 100, so that only pacing spaces the segments.
type pacedCC struct{ rate uint64 }

func (*pacedCC) name() string                  { return "paced" }
func (*pacedCC) ssthresh(tp *TCPSock) uint32   { return tp.ssthresh }
func (*pacedCC) congAvoid(*TCPSock, uint32)    {}
func (*pacedCC) onLoss(*TCPSock)               {}
func (*pacedCC) pktsAcked(*TCPSock, ackSample) {}
func (*pacedCC) sndbufExpand() int             { return 2 }
func (*pacedCC) setState(*TCPSock, uint8)      {}
func (*pacedCC) cwndEvent(*TCPSock, uint8)     {}
func (*pacedCC) undoCwnd(tp *TCPSock) uint32   { return tp.cwnd }
func (*pacedCC) minTsoSegs(*TCPSock) int       { return 1 }
func (c *pacedCC) init(tp *TCPSock) {
	tp.pacingStatus = skPacingNeeded
	tp.skPacingRate = c.rate
	tp.cwnd = 100
}
func (c *pacedCC) congControl(tp *TCPSock, _ *tcpRateSample) { tp.cwnd = 100 }

// TestEstablishedInternalPacing: a paced socket sends its first 10 data
// segments at once (sch_fq's exemption, kept by tcp_update_skb_after_send)
// and then one skb per len/sk_pacing_rate: tcp_write_xmit stops at the
// first skb whose departure time is in the future and the pacing timer
// sends it then (tcp_pacing_check, tcp_pace_kick). Each segment is acked
// 20 ms after it left, so neither cwnd nor a timer sends anything.
func TestEstablishedInternalPacing(t *testing.T) {
	s := newBBRScript(t, 20*time.Millisecond, 10_000_000)
	tp := s.tp
	tp.lockSock()
	tp.setCC(&pacedCC{rate: 146_000}, "paced") // 10 ms per 1460-byte segment
	tp.initCongestionControl()
	tp.releaseSock()
	if _, err := tp.Send(context.Background(), make([]byte, 40*1460)); err != nil {
		t.Fatal(err)
	}
	type dep struct {
		at  time.Duration
		seq uint32
	}
	var deps []dep
	var pending []bbrSent
	start := s.clk.Nanotime()
	for s.clk.Nanotime()-start < int64(500*time.Millisecond) {
		for {
			g, _, ok := s.take()
			if !ok {
				break
			}
			if len(g.payload) == 0 {
				continue
			}
			if len(g.payload) != 1460 {
				t.Fatalf("segment of %d bytes", len(g.payload))
			}
			deps = append(deps, dep{time.Duration(s.clk.Nanotime() - start), g.seq})
			pending = append(pending, bbrSent{end: g.seq + 1460, at: s.clk.Nanotime()})
		}
		for len(pending) > 0 && pending[0].at+int64(20*time.Millisecond) <= s.clk.Nanotime() {
			s.send(seg{seq: s.peerIS + 1, ack: pending[0].end, flags: fAck, win: 0xffff})
			pending = pending[1:]
		}
		s.clk.Advance(100 * time.Microsecond)
	}
	if len(deps) < 40 {
		t.Fatalf("%d segments sent in 500 ms, want 40", len(deps))
	}
	for i, d := range deps[:40] {
		want := time.Duration(0)
		if i >= 10 {
			// The tenth is the first whose length is paced
			// (data_segs_out counts it before the check).
			want = time.Duration(i-9) * 10 * time.Millisecond
		}
		if d.at != want || d.seq != s.iss+1+uint32(i)*1460 {
			t.Fatalf("segment %d (seq %d) left at %v, want %v", i, d.seq-s.iss-1, d.at, want)
		}
	}
}
