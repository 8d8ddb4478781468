package netstack

import (
	"context"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
)

// More of RFC 9293 section 3.10.7 (SEGMENT ARRIVES), state by state.

// LISTEN: a RST is ignored (3.10.7.2, first check).
func TestListenRst(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, flags: fRst})
	c.expectNone()
	if c.l.State() != TCPListen {
		t.Fatalf("state %v", c.l.State())
	}
}

// CLOSED: an ACK-bearing segment gets <SEQ=SEG.ACK><CTL=RST> (3.10.7.1).
func TestClosedAckRst(t *testing.T) {
	c := newScript(t)
	c.send(seg{seq: 1000, ack: 4242, flags: fAck, payload: "x"})
	c.expect(seg{seq: 4242, flags: fRst})
}

// CLOSED: a RST is never answered.
func TestClosedRstIgnored(t *testing.T) {
	c := newScript(t)
	c.send(seg{seq: 1000, ack: 4242, flags: fRst | fAck})
	c.expectNone()
}

// SYN-RECEIVED: a RST in the window drops the embryonic connection; a later
// ACK for it finds nothing and is reset.
func TestSynRecvRst(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	sa, _, ok := c.take()
	if !ok || sa.flags != fSyn|fAck || sa.ack != 1001 {
		t.Fatalf("no SYN-ACK: %v", sa)
	}
	c.send(seg{seq: 1001, flags: fRst})
	c.expectNone()
	c.send(seg{seq: 1001, ack: sa.seq + 1, flags: fAck})
	c.expect(seg{seq: sa.seq + 1, flags: fRst})
	if _, err := c.l.Accept(context.Background()); err != syscall.EAGAIN {
		t.Fatalf("accept after the request was reset: %v", err)
	}
}

// ESTABLISHED: a segment that ACKs data never sent is dropped, its data
// not accepted, and answered with a challenge ACK under the socket's
// tcp_invalid_ratelimit (tcp_ack -> tcp_send_challenge_ack, as the live
// 6.18.44 kernel does: TCPChallengeACK 2 and TCPACKSkippedChallenge 1 for
// a pure ACK, data 100 ms later and data 600 ms later).
func TestEstablishedAckUnsentData(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 100, flags: fAck})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	c.clk.Advance(100 * time.Millisecond)
	c.send(seg{seq: 1001, ack: c.iss + 100, flags: fAck | fPsh, payload: "nope"})
	c.expectNone()
	c.clk.Advance(500 * time.Millisecond)
	c.send(seg{seq: 1001, ack: c.iss + 100, flags: fAck | fPsh, payload: "nope"})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	if got := c.tp.Info().Qin; got != 0 {
		t.Fatalf("%d bytes queued from a segment acknowledging unsent data", got)
	}
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v", c.tp.State())
	}
	if ch, sk := c.s.mib.Get(memctl.TcpExtTCPChallengeACK), c.s.mib.Get(memctl.TcpExtTCPACKSkippedChallenge); ch != 2 || sk != 1 {
		t.Fatalf("TCPChallengeACK %d TCPACKSkippedChallenge %d, want 2 and 1", ch, sk)
	}
}

// FIN-WAIT-1 after a half close: the peer may still send; data is ACKed and
// readable.
func TestFinWait1DataAfterShutdown(t *testing.T) {
	c := newEstablished(t)
	c.tp.Shutdown(ShutWr)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fFin})
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fPsh, payload: "more"})
	c.clk.Advance(tcpDelackMax)
	c.expect(seg{seq: c.iss + 2, ack: 1005, flags: fAck})
	buf := make([]byte, 8)
	if k, err := c.tp.Recv(context.Background(), buf); err != nil || string(buf[:k]) != "more" {
		t.Fatalf("recv %q, %v", buf[:k], err)
	}
}

// FIN-WAIT-2 after close(): new data cannot be delivered to anyone, so the
// connection is reset. With tcp_fin_timeout at most TCP_TIMEWAIT_LEN the
// orphan is a FIN_WAIT2 timewait sock by then, which answers TCP_TW_RST
// without counting TCPAbortOnData: the live 6.18 kernel, the same
// exchange on loopback, counted OutRsts 1, TW 1, TCPAbortOnData 0.
func TestFinWait2DataAfterCloseRst(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fPsh, payload: "late"})
	got, _, ok := c.take()
	if !ok || got.flags&fRst == 0 {
		t.Fatalf("expected a reset, got %v (sent %v)", got, ok)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPAbortOnData); n != 0 {
		t.Fatalf("TCPAbortOnData %d, want 0 (a timewait sock's reset)", n)
	}
	if tw := c.s.net.TCP.TwCount(); tw != 0 || c.tp.State() != TCPClose {
		t.Fatalf("after the reset: tw %d, state %v", tw, c.tp.State())
	}
}

// An orphan whose FIN the peer acknowledged becomes a FIN_WAIT2 timewait
// sock (tcp_time_wait(sk, TCP_FIN_WAIT2, tcp_fin_time)): sockstat counts
// it in tw, not as an orphan, and when tcp_fin_timeout passes without the
// peer's FIN it goes without a word. It stayed a full orphan and sent a
// RST at the end (an outside probe saw [R.] at 60 s; the kernel sent
// nothing and the peer's next send still worked).
func TestFinWait2OrphanExpiresSilently(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_fin_timeout", "3")
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	p := c.s.net.TCP
	if p.TwCount() != 1 || p.OrphanCount() != 0 || c.s.mib.Get(memctl.TcpExtTWKilled) != 1 {
		t.Fatalf("FIN_WAIT2 orphan: tw %d orphan %d TWKilled %d; want 1, 0, 1 (3.5 s is a killed one)",
			p.TwCount(), p.OrphanCount(), c.s.mib.Get(memctl.TcpExtTWKilled))
	}
	c.clk.Advance(4 * time.Second) // tcp_fin_time: at least 3.5 RTOs (1 s here): 3.5 s
	c.expectNone()
	if c.tp.State() != TCPClose || p.TwCount() != 0 {
		t.Fatalf("after tcp_fin_timeout: state %v tw %d", c.tp.State(), p.TwCount())
	}
	// The peer's FIN before that would have moved it to TIME_WAIT.
	c2 := newEstablished(t)
	c2.closeActive()
	c2.send(seg{seq: 1001, ack: c2.iss + 2, flags: fAck})
	c2.send(seg{seq: 1001, ack: c2.iss + 2, flags: fAck | fFin})
	c2.expect(seg{seq: c2.iss + 2, ack: 1002, flags: fAck})
	if c2.tp.State() != TCPTimeWait || c2.s.net.TCP.TwCount() != 1 || c2.s.mib.Get(memctl.TcpExtTW) != 1 {
		t.Fatalf("FIN in FIN_WAIT2: state %v tw %d TW %d", c2.tp.State(), c2.s.net.TCP.TwCount(), c2.s.mib.Get(memctl.TcpExtTW))
	}
}

// RST in the closing states ends the connection.
func TestFinWait2Rst(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.send(seg{seq: 1001, flags: fRst})
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

func TestCloseWaitRst(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	if st := c.tp.state; st != TCPCloseWait {
		t.Fatalf("state %v", st)
	}
	c.send(seg{seq: 1002, flags: fRst})
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
	// tcp_reset reports EPIPE in CLOSE_WAIT: the peer had already finished.
	if _, err := c.tp.Send(context.Background(), []byte("x")); err != syscall.EPIPE {
		t.Fatalf("send after reset in CLOSE_WAIT: %v", err)
	}
}

func TestLastAckRst(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.tp.Close()
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fFin})
	c.send(seg{seq: 1002, flags: fRst})
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

func TestClosingRst(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	c.send(seg{seq: 1002, flags: fRst})
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

// CLOSE-WAIT: a retransmitted FIN is a duplicate, acknowledged at once
// (tcp_send_dupack), and changes nothing.
func TestCloseWaitFinRetransmit(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.clk.Advance(tcpDelackMax) // the first FIN's ACK is delayed (pingpong)
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPCloseWait {
		t.Fatalf("state %v", st)
	}
}
