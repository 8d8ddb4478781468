package netstack

// Undoing spurious window reductions (tcp_undo.go) as packet scripts. The
// peer negotiates SACK and, unless a test says otherwise, timestamps; the
// round trip is rackRTT (10 ms), so a retransmission sent one round trip
// after the original carries a TSval 10 higher, and the peer's echo tells
// which of the two arrived. Segments are full-sized so that the reordering
// degree (counted in MSS) can grow.

import (
	"strings"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

// undoConn is an established passive connection seen from the peer.
type undoConn struct {
	*script
	ts    bool   // timestamps negotiated
	tsval uint32 // the peer's next TSval
	base  uint32 // the next sequence number the stack sends
	mss   int
}

// undoEstablished sets net.ipv4.tcp_recovery, completes a handshake with
// SACK (and timestamps if ts) and a one-byte warm-up exchange, each taking
// rackRTT.
func undoEstablished(t *testing.T, recovery string, ts bool) *undoConn {
	t.Helper()
	c := newScript(t)
	c.setRecovery(recovery)
	c.listen(8)
	u := &undoConn{script: c, ts: ts, tsval: 100}
	opts := make([]byte, 20)
	k := header.EncodeSynOptions(opts, 1460, -1, true, ts, u.tsval, 0)
	u.tsval++
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: opts[:k]})
	sa, o, _ := c.take()
	if o.HasTimestamp != ts {
		t.Fatalf("SYN-ACK timestamps %v, want %v", o.HasTimestamp, ts)
	}
	c.iss = sa.seq
	c.clk.Advance(rackRTT)
	u.ack(c.iss+1, o.TSVal)
	c.acceptNoDelay()
	c.sendData("w")
	_, o = c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "w"})
	c.clk.Advance(rackRTT)
	u.ack(c.iss+2, o.TSVal)
	u.base = c.iss + 2
	u.mss = c.tp.Info().SndMSS
	return u
}

// ack sends a pure ACK from the peer echoing ecr (with timestamps) and
// carrying the SACK blocks given.
func (u *undoConn) ack(ack, ecr uint32, sacks ...header.SACKBlock) {
	u.t.Helper()
	b := make([]byte, 40)
	n := header.EncodeOptions(b, u.ts, u.tsval, ecr, sacks)
	u.tsval++
	u.send(seg{seq: 1001, ack: ack, flags: fAck, opts: b[:n]})
}

// seq is the start of the i-th full-sized segment from base.
func (u *undoConn) seq(i int) uint32 { return u.base + uint32(i*u.mss) }

// blk is the SACK block of segments i to j-1.
func (u *undoConn) blk(i, j int) header.SACKBlock {
	return header.SACKBlock{Start: u.seq(i), End: u.seq(j)}
}

func (u *undoConn) payload(i int) string { return strings.Repeat(string(rune('a'+i)), u.mss) }

// sendSegs sends n full-sized segments at the same instant and returns
// the TSval they carry.
func (u *undoConn) sendSegs(n int) (tsval uint32) {
	u.t.Helper()
	for i := 0; i < n; i++ {
		u.sendData(u.payload(i))
		// Each write ends in PSH (tcp_push marks the tail skb).
		_, o := u.expect(seg{seq: u.seq(i), ack: 1001, flags: fAck | fPsh, payload: u.payload(i)})
		tsval = o.TSVal
	}
	return tsval
}

// expectResend expects segment i again and returns its TSval.
func (u *undoConn) expectResend(i int) uint32 {
	u.t.Helper()
	_, o := u.expect(seg{seq: u.seq(i), ack: 1001, flags: fAck | fPsh, payload: u.payload(i)})
	return o.TSVal
}

// state is what the tests check of the sender, read under the socket lock.
type undoState struct {
	ca                   uint8
	cwnd, ssthresh, reor uint32
	reordSeen            uint32
	undoMarker           uint32
}

func (u *undoConn) state() undoState {
	tp := u.tp
	tp.lockSock()
	defer tp.releaseSock()
	return undoState{ca: tp.caState, cwnd: tp.cwnd, ssthresh: tp.ssthresh, reor: tp.reordering,
		reordSeen: tp.reordSeen, undoMarker: tp.undoMarker}
}

func (u *undoConn) mib(c memctl.Counter) uint64 { return u.s.mib.Get(c) }

// fastRetransmitA sends a..e, lets b, c and d be SACKed a round trip later
// (a looks lost: RFC 6675's three SACKs, or RACK with a zero reordering
// window since dupthresh is reached) and expects a's fast retransmit.
// Returns the original's and the retransmission's TSval and the state
// before the episode.
func (u *undoConn) fastRetransmitA() (orig, resent uint32, before undoState) {
	u.t.Helper()
	before = u.state()
	orig = u.sendSegs(5)
	u.clk.Advance(rackRTT)
	for j := 2; j <= 4; j++ {
		u.ack(u.base, orig, u.blk(1, j))
	}
	resent = u.expectResend(0)
	u.expectNone()
	if st := u.state(); st.ca != tcpCARecovery || st.ssthresh >= before.cwnd {
		u.t.Fatalf("after the fast retransmit: ca_state %d ssthresh %d (cwnd was %d)", st.ca, st.ssthresh, before.cwnd)
	}
	if u.ts && resent == orig {
		u.t.Fatalf("retransmission TSval %d equals the original's", resent)
	}
	return orig, resent, before
}

// ESTABLISHED, fast recovery: a and b are only reordered behind c, d and
// e, but look lost and a is retransmitted. The partial ACK for a echoes the
// original's timestamp (older than the retransmission): the hole was
// filled by the delayed original. The reordering is recorded (TCPTSReorder,
// reordering raised to the 5 segments seen, reord_seen), and as a's
// retransmission is no longer out the reduction is undone at once
// (TCPPartialUndo: cwnd and ssthresh as before, Disorder while SACKed data
// remains); b is not retransmitted and its late arrival reopens. Same with
// RACK (tcp_recovery=1) and RFC 6675 (0).
func TestRecoveryDelayedOriginalPartialUndo(t *testing.T) {
	for _, recovery := range []string{"0", "1"} {
		t.Run("tcp_recovery="+recovery, func(t *testing.T) {
			u := undoEstablished(t, recovery, true)
			before := u.state()
			orig := u.sendSegs(5)
			u.clk.Advance(rackRTT)
			for j := 3; j <= 5; j++ { // c, d, e SACKed: a and b look lost
				u.ack(u.base, orig, u.blk(2, j))
			}
			u.expectResend(0) // PRR allows one: a
			u.expectNone()
			if st := u.state(); st.ca != tcpCARecovery || st.cwnd >= before.cwnd || st.ssthresh >= before.cwnd {
				t.Fatalf("in recovery: %+v (before %+v)", st, before)
			}
			u.clk.Advance(time.Millisecond)
			u.ack(u.seq(1), orig, u.blk(2, 5)) // a's original arrived
			st := u.state()
			if n := u.mib(memctl.TcpExtTCPPartialUndo); n != 1 {
				t.Fatalf("TCPPartialUndo %d", n)
			}
			if n := u.mib(memctl.TcpExtTCPTSReorder); n != 1 {
				t.Fatalf("TCPTSReorder %d", n)
			}
			if st.cwnd != before.cwnd || st.ssthresh != before.ssthresh {
				t.Fatalf("cwnd %d ssthresh %d after the undo, want %d and %d", st.cwnd, st.ssthresh, before.cwnd, before.ssthresh)
			}
			if st.ca != tcpCADisorder || st.reor != 5 || st.reordSeen == 0 || st.undoMarker != 0 {
				t.Fatalf("after the undo: %+v", st)
			}
			u.expectNone() // b is not retransmitted
			u.clk.Advance(time.Millisecond)
			u.ack(u.seq(5), orig) // b's original arrived too
			u.clk.Advance(time.Second)
			u.expectNone()
			if st := u.state(); st.ca != tcpCAOpen {
				t.Fatalf("ca_state %d at the end", st.ca)
			}
			if n := u.mib(memctl.TcpRetransSegs); n != 1 {
				t.Fatalf("%d retransmissions, want a's only", n)
			}
		})
	}
}

// ESTABLISHED, fast recovery: a is only reordered behind b, c and d and is
// fast-retransmitted; the ACK that ends the recovery echoes the original's
// timestamp, so the recovery is undone (TCPFullUndo): cwnd and ssthresh
// come back to their values before it.
func TestRecoveryDelayedOriginalFullUndo(t *testing.T) {
	for _, recovery := range []string{"0", "1"} {
		t.Run("tcp_recovery="+recovery, func(t *testing.T) {
			u := undoEstablished(t, recovery, true)
			orig, _, before := u.fastRetransmitA()
			u.clk.Advance(time.Millisecond)
			u.ack(u.seq(5), orig)
			st := u.state()
			if n := u.mib(memctl.TcpExtTCPFullUndo); n != 1 {
				t.Fatalf("TCPFullUndo %d", n)
			}
			if st.ca != tcpCAOpen || st.cwnd != before.cwnd || st.ssthresh != before.ssthresh {
				t.Fatalf("after the undo: %+v, before %+v", st, before)
			}
		})
	}
}

// ESTABLISHED, fast recovery, a genuine loss: the ACK that ends the
// recovery echoes the retransmission's timestamp (it was the
// retransmission that filled the hole), so nothing is undone and cwnd
// ends at the reduced ssthresh. The same script echoing the original's
// timestamp is undone, so the echo alone decides.
func TestRecoveryRetransmissionEchoedNoUndo(t *testing.T) {
	run := func(t *testing.T, echoResent bool) (undoState, undoState, uint64) {
		u := undoEstablished(t, "1", true)
		orig, resent, before := u.fastRetransmitA()
		ecr := orig
		if echoResent {
			ecr = resent
		}
		u.clk.Advance(rackRTT)
		u.ack(u.seq(5), ecr)
		return before, u.state(), u.mib(memctl.TcpExtTCPFullUndo) + u.mib(memctl.TcpExtTCPPartialUndo)
	}
	before, st, undos := run(t, true)
	if undos != 0 || st.ca != tcpCAOpen || st.cwnd >= before.cwnd || st.cwnd != st.ssthresh || st.ssthresh >= before.ssthresh {
		t.Fatalf("genuine loss: undos %d, after %+v, before %+v", undos, st, before)
	}
	if _, _, undos := run(t, false); undos != 1 {
		t.Fatalf("same script echoing the original: %d undos, want 1", undos)
	}
}

// ESTABLISHED, no timestamps: nothing tells which copy of a arrived, so a
// spurious fast retransmit stays a reduction until D-SACKs say otherwise
// (Linux's rule; the same script with timestamps is undone). Both with
// RACK and with RFC 6675.
func TestRecoveryNoTimestampsNoUndo(t *testing.T) {
	for _, recovery := range []string{"0", "1"} {
		t.Run("tcp_recovery="+recovery, func(t *testing.T) {
			for _, ts := range []bool{false, true} {
				u := undoEstablished(t, recovery, ts)
				orig, _, before := u.fastRetransmitA()
				u.clk.Advance(time.Millisecond)
				u.ack(u.seq(5), orig)
				st := u.state()
				undos := u.mib(memctl.TcpExtTCPFullUndo) + u.mib(memctl.TcpExtTCPPartialUndo)
				if ts && (undos != 1 || st.cwnd != before.cwnd) {
					t.Fatalf("with timestamps: %d undos, cwnd %d (before %d)", undos, st.cwnd, before.cwnd)
				}
				if !ts && (undos != 0 || st.cwnd >= before.cwnd || st.ssthresh >= before.ssthresh) {
					t.Fatalf("without timestamps: %d undos, after %+v, before %+v", undos, st, before)
				}
			}
		})
	}
}

// ESTABLISHED, RTO: a and b go unacknowledged; the tail loss probe resends
// b, then the RTO resends a and enters Loss with cwnd 1. The ACK that
// finally comes echoes the originals' timestamp, older than the first
// retransmission: the timeout was premature and is undone (TCPLossUndo;
// F-RTO has nothing to go by, both segments having been resent, so
// TCPSpuriousRTOs stays 0 as in Linux):
// Open again with cwnd and ssthresh as before. The same ACK echoing the
// RTO retransmission undoes nothing.
func TestLossDelayedOriginalUndo(t *testing.T) {
	for _, spurious := range []bool{true, false} {
		name := map[bool]string{true: "spurious", false: "genuine"}[spurious]
		t.Run(name, func(t *testing.T) {
			u := undoEstablished(t, "1", true)
			before := u.state()
			orig := u.sendSegs(2)
			u.clk.Advance(2*rackRTT + tcpTimeoutMin) // the loss probe (2*srtt + TCP_TIMEOUT_MIN): b again
			u.expectResend(1)
			_, deadline := u.tp.retransTimerState()
			u.clk.Advance(time.Duration(deadline - u.clk.Nanotime()))
			rto := u.expectResend(0)
			if st := u.state(); st.ca != tcpCALoss || st.cwnd != 1 {
				t.Fatalf("after the RTO: %+v", st)
			}
			ecr := orig
			if !spurious {
				ecr = rto
			}
			u.clk.Advance(time.Millisecond)
			u.ack(u.seq(2), ecr)
			st := u.state()
			if n := u.mib(memctl.TcpExtTCPTimeouts); n != 1 {
				t.Fatalf("TCPTimeouts %d", n)
			}
			if n := u.mib(memctl.TcpExtTCPSpuriousRTOs); n != 0 {
				t.Fatalf("TCPSpuriousRTOs %d with every segment resent", n)
			}
			n := u.mib(memctl.TcpExtTCPLossUndo)
			if spurious && (n != 1 || st.ca != tcpCAOpen || st.cwnd != before.cwnd || st.ssthresh != before.ssthresh) {
				t.Fatalf("spurious RTO: TCPLossUndo %d, after %+v, before %+v", n, st, before)
			}
			if !spurious && (n != 0 || st.cwnd >= before.cwnd || st.ssthresh >= before.ssthresh) {
				t.Fatalf("genuine RTO: TCPLossUndo %d, after %+v, before %+v", n, st, before)
			}
		})
	}
}
