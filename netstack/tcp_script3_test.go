package netstack

// RFC 9293 section 3.10.7 (SEGMENT ARRIVES) and 3.10.1-3.10.6 (user calls),
// state by state, with Linux's answers where it refines the RFC. The test
// for a (state, event) pair is named Test<State><Event>; this table maps
// every pair to its test (file: s1 tcp_script_test.go, s2
// tcp_script2_test.go, s3 this file, bl tcp_backlog_test.go). "-" means the
// pair cannot occur or is the same code path as the pair named.
//
//  state        | SYN                  | ACK ok / bad ack            | RST in / out of window        | FIN                      | data / unacceptable seq          | user calls
//  CLOSED       | s1 ClosedSynRst      | s2 ClosedAckRst             | s2 ClosedRstIgnored           | (ClosedAckRst)           | (ClosedAckRst)                   | s3 ClosedSend, ClosedRecv
//  LISTEN       | s1 ListenSyn(+Opts)  | s1 ListenAckNoRequestRst    | s2 ListenRst                  | s3 ListenFin             | s3 ListenData                    | s3 ListenSend, ListenRecv, ListenClose; s1 ListenAcceptQueueFull, ListenSynQueueFullSyncookies
//  SYN-SENT     | s1 SynSentSyn        | s1 SynSentSynAck / BadAckRst; s3 SynSentAck | s1 SynSentRst; s3 SynSentRstBadAck, SynSentRstNoAck | s3 SynSentFin | s3 SynSentFin | s3 SynSentSend, SynSentClose, SynSentAbort; s1 SynSentTimeout
//  SYN-RECEIVED | s3 SynRecvSyn        | s1 SynRecvAck; s3 SynRecvBadAck | s2 SynRecvRst             | s3 SynRecvFin            | s3 SynRecvData                   | s3 SynRecvTimeout
//  ESTABLISHED  | s1 EstablishedSynChallengeAck | s3 EstablishedAckOld, EstablishedAckTooOldChallenge; s2 EstablishedAckUnsentData | s1 EstablishedRstInWindow, EstablishedRstOutOfWindowChallengeAck | s1 EstablishedFin | s1 EstablishedData, EstablishedOutOfOrder, EstablishedOldSegmentDupack; s3 EstablishedBeyondWindow | s3 EstablishedClose, EstablishedShutdownRecv; s1 EstablishedAbort, EstablishedCloseUnreadRst
//  FIN-WAIT-1   | s3 FinWait1Syn       | s1 FinWait1Ack              | s3 FinWait1Rst                | s1 FinWait1Fin; s3 FinWait1FinAck | s2 FinWait1DataAfterShutdown | s3 FinWait1Retransmit, FinWait1Send
//  FIN-WAIT-2   | s3 FinWait2Syn       | (FinWait1Ack)               | s2 FinWait2Rst                | s1 FinWait2Fin           | s2 FinWait2DataAfterCloseRst; s3 FinWait2Data | s1 (FinWait1Ack: fin_timeout)
//  CLOSE-WAIT   | s3 CloseWaitSyn      | s3 CloseWaitSend            | s2 CloseWaitRst               | s2 CloseWaitFinRetransmit | s3 CloseWaitData               | s3 CloseWaitSend, CloseWaitRecv; s1 LastAckAck (close)
//  CLOSING      | s3 ClosingSyn        | s1 ClosingAck               | s2 ClosingRst                 | s3 ClosingFin            | -                                | -
//  LAST-ACK     | s3 LastAckSyn        | s1 LastAckAck               | s2 LastAckRst                 | s3 LastAckFin            | -                                | s3 LastAckRetransmit, LastAckAbort
//  TIME-WAIT    | s1 TimeWaitSyn       | s3 TimeWaitAck              | s1 TimeWaitRst; s3 TimeWaitRstOutOfWindow | s1 TimeWaitFin | s3 TimeWaitData                | s3 TimeWaitTimeout
//
// Beyond 3.10.7: RFC 5961 (s1 EstablishedRstOutOfWindowChallengeAck,
// EstablishedSynChallengeAck; s3 EstablishedAckTooOldChallenge), PAWS (s1
// EstablishedPaws; s3 TimeWaitPaws), SACK recovery (s3
// EstablishedSackRecovery, EstablishedSackReordering; s1
// EstablishedThreeDupacksFastRetransmit for NewReno; RACK in
// tcp_rack_test.go, EstablishedRack*), zero window and persist (s1 EstablishedZeroWindowProbe; s3
// EstablishedPersistBackoff, EstablishedZeroWindowDrop), the socket backlog
// (bl).

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

// CLOSED: user calls on a socket never connected.
func TestClosedSend(t *testing.T) {
	c := newScript(t)
	tp := c.s.NewTCP()
	tp.SetNonblock(true)
	// The live kernel: send() on a fresh TCP socket is EPIPE
	// (sk_stream_wait_connect), recv() ENOTCONN.
	if _, err := tp.Send(context.Background(), []byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("send on a fresh socket: %v, want EPIPE", err)
	}
	tp.Close()
}

func TestClosedRecv(t *testing.T) {
	c := newScript(t)
	tp := c.s.NewTCP()
	tp.SetNonblock(true)
	if _, err := tp.Recv(context.Background(), make([]byte, 1)); err == nil {
		t.Fatal("recv on a fresh socket succeeded")
	}
	tp.Close()
}

// LISTEN: anything that is not SYN, ACK or RST is dropped silently
// (3.10.7.2 fourth: "drop the segment and return").
func TestListenFin(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, flags: fFin})
	c.expectNone()
}

func TestListenData(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, flags: fPsh, payload: "data"})
	c.expectNone()
	if c.l.State() != TCPListen {
		t.Fatalf("state %v", c.l.State())
	}
}

// LISTEN: SEND is an error (Linux: EPIPE from sk_stream_wait_connect), as
// is RECEIVE (ENOTCONN).
func TestListenSend(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	if _, err := c.l.Send(context.Background(), []byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("send on a listener: %v, want EPIPE", err)
	}
}

func TestListenRecv(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	if _, err := c.l.Recv(context.Background(), make([]byte, 1)); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("recv on a listener: %v, want ENOTCONN", err)
	}
}

// LISTEN: CLOSE resets connections not yet accepted and frees the port.
func TestListenClose(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	sa, _, _ := c.take()
	c.send(seg{seq: 1001, ack: sa.seq + 1, flags: fAck})
	c.expectNone()
	c.l.Close()
	c.expect(seg{seq: sa.seq + 1, ack: 1001, flags: fRst | fAck})
	c.send(seg{seq: 9000, flags: fSyn})
	c.expect(seg{seq: 0, ack: 9001, flags: fRst | fAck})
}

// SYN-SENT: an acceptable ACK without SYN is dropped (3.10.7.3, fifth).
func TestSynSentAck(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.send(seg{seq: 3000, ack: c.iss + 1, flags: fAck})
	c.expectNone()
	if c.tp.State() != TCPSynSent {
		t.Fatalf("state %v", c.tp.State())
	}
}

// SYN-SENT: a RST whose ACK is unacceptable is dropped, never answered.
func TestSynSentRstBadAck(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.send(seg{seq: 0, ack: c.iss + 77, flags: fRst | fAck})
	c.expectNone()
	if c.tp.State() != TCPSynSent {
		t.Fatalf("state %v", c.tp.State())
	}
}

// SYN-SENT: a RST without ACK is dropped (RFC 9293: "If the ACK bit is not
// set, drop the segment"; RFC 5961 blind reset).
func TestSynSentRstNoAck(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.send(seg{seq: 0, flags: fRst})
	c.expectNone()
	if c.tp.State() != TCPSynSent {
		t.Fatalf("state %v", c.tp.State())
	}
}

// SYN-SENT: a FIN (or data) without SYN is dropped.
func TestSynSentFin(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.send(seg{seq: 3000, ack: c.iss + 1, flags: fAck | fFin, payload: "x"})
	c.expectNone()
	if c.tp.State() != TCPSynSent {
		t.Fatalf("state %v", c.tp.State())
	}
}

// SYN-SENT: a non-blocking SEND cannot queue yet (EAGAIN).
func TestSynSentSend(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	if _, err := c.tp.Send(context.Background(), []byte("x")); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("send in SYN-SENT: %v, want EAGAIN", err)
	}
}

// SYN-SENT: CLOSE deletes the TCB without sending anything; the SYN-ACK
// that arrives later finds no socket and is reset.
func TestSynSentClose(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.tp.Close()
	c.expectNone()
	if st := c.tp.State(); st != TCPClose {
		t.Fatalf("state %v", st)
	}
	c.send(seg{seq: 3000, ack: c.iss + 1, flags: fSyn | fAck, opts: mssOpt(1460)})
	c.expect(seg{seq: c.iss + 1, flags: fRst})
	c.clk.Advance(10 * time.Second)
	c.expectNone() // no SYN retransmission either
}

// SYN-SENT: ABORT sends no RST (tcp_need_reset excludes SYN-SENT).
func TestSynSentAbort(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.tp.Abort()
	c.expectNone()
	if c.s.mib.Get(memctl.TcpExtTCPAbortOnData) != 1 {
		t.Fatal("TCPAbortOnData")
	}
}

// synRecv sends a SYN to the listener and returns the SYN-ACK's seq.
func (c *script) synRecv() uint32 {
	c.t.Helper()
	c.listen(8)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(1460)})
	sa, _, ok := c.take()
	if !ok || sa.flags != fSyn|fAck || sa.ack != c.peerIS+1 {
		c.t.Fatalf("no SYN-ACK: %v", sa)
	}
	c.iss = sa.seq
	return sa.seq
}

// SYN-RECEIVED: a retransmitted SYN gets the SYN-ACK again.
func TestSynRecvSyn(t *testing.T) {
	c := newScript(t)
	iss := c.synRecv()
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(1460)})
	c.expect(seg{seq: iss, ack: c.peerIS + 1, flags: fSyn | fAck})
}

// SYN-RECEIVED: an unacceptable ACK is answered with <SEQ=SEG.ACK><RST>.
func TestSynRecvBadAck(t *testing.T) {
	c := newScript(t)
	iss := c.synRecv()
	c.send(seg{seq: c.peerIS + 1, ack: iss + 50, flags: fAck})
	c.expect(seg{seq: iss + 50, flags: fRst})
	if _, err := c.l.Accept(context.Background()); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("accept: %v", err)
	}
}

// SYN-RECEIVED: the ACK completing the handshake may carry data.
func TestSynRecvData(t *testing.T) {
	c := newScript(t)
	iss := c.synRecv()
	c.send(seg{seq: c.peerIS + 1, ack: iss + 1, flags: fAck | fPsh, payload: "early"})
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, err := tp.Recv(context.Background(), buf); err != nil || string(buf[:n]) != "early" {
		t.Fatalf("recv %q %v", buf[:n], err)
	}
}

// SYN-RECEIVED: the ACK completing the handshake may carry FIN: the child
// is accepted in CLOSE-WAIT and reads EOF.
func TestSynRecvFin(t *testing.T) {
	c := newScript(t)
	iss := c.synRecv()
	c.send(seg{seq: c.peerIS + 1, ack: iss + 1, flags: fAck | fFin})
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := tp.State(); st != TCPCloseWait {
		t.Fatalf("state %v", st)
	}
	if n, err := tp.Recv(context.Background(), make([]byte, 4)); n != 0 || err != nil {
		t.Fatalf("recv %d %v, want EOF", n, err)
	}
}

// SYN-RECEIVED: the SYN-ACK is retransmitted tcp_synack_retries (5) times
// with back-off, then the request is dropped.
func TestSynRecvTimeout(t *testing.T) {
	c := newScript(t)
	iss := c.synRecv()
	retries := c.s.net.Sysctls.TCPSynackRetries()
	for i := 0; i < retries; i++ {
		c.clk.Advance(tcpTimeoutInit << i)
		c.expect(seg{seq: iss, ack: c.peerIS + 1, flags: fSyn | fAck})
	}
	c.clk.Advance(tcpTimeoutInit << retries)
	c.expectNone()
	c.send(seg{seq: c.peerIS + 1, ack: iss + 1, flags: fAck})
	c.expect(seg{seq: iss + 1, flags: fRst}) // the request is gone
}

// ESTABLISHED: an old duplicate ACK (below snd_una, within max_window) is
// ignored.
func TestEstablishedAckOld(t *testing.T) {
	c := newEstablished(t)
	c.tp.Send(context.Background(), []byte("abc"))
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "abc"})
	c.send(seg{seq: 1001, ack: c.iss + 4, flags: fAck})
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.expectNone()
	if i := c.tp.Info(); i.Unacked != 0 || c.tp.State() != TCPEstablished {
		t.Fatalf("unacked %d state %v", i.Unacked, c.tp.State())
	}
}

// ESTABLISHED: an ACK older than snd_una - max_window gets a challenge ACK
// (RFC 5961 5.2), and its data is not accepted.
func TestEstablishedAckTooOldChallenge(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1 - 1<<20, flags: fAck, payload: "inject"})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	if c.tp.Info().Qin != 0 {
		t.Fatal("data of a too-old ACK accepted")
	}
	if c.s.mib.Get(memctl.TcpExtTCPChallengeACK) != 1 {
		t.Fatal("TCPChallengeACK")
	}
}

// ESTABLISHED: a segment wholly beyond the receive window is unacceptable:
// dropped and answered with an ACK (3.10.7.4 first).
func TestEstablishedBeyondWindow(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001 + 1<<20, ack: c.iss + 1, flags: fAck, payload: "far"})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	if c.tp.Info().Qin != 0 {
		t.Fatal("data beyond the window accepted")
	}
}

// ESTABLISHED: CLOSE sends FIN and enters FIN-WAIT-1.
func TestEstablishedClose(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	if st := c.tp.state; st != TCPFinWait1 {
		t.Fatalf("state %v", st)
	}
}

// ESTABLISHED: shutdown(SHUT_RD) sends nothing; the connection stays up.
func TestEstablishedShutdownRecv(t *testing.T) {
	c := newEstablished(t)
	c.tp.Shutdown(ShutRd)
	c.expectNone()
	if n, err := c.tp.Recv(context.Background(), make([]byte, 4)); n != 0 || err != nil {
		t.Fatalf("recv after SHUT_RD: %d %v, want EOF", n, err)
	}
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v", c.tp.State())
	}
}

// sackEstablished is an established passive connection with SACK
// negotiated (no timestamps, no window scaling).
func sackEstablished(t *testing.T) *script { return sackEstablishedSeed(t, 7) }

// sackEstablishedSeed is sackEstablished on a stack with the given seed.
func sackEstablishedSeed(t *testing.T, seed uint64) *script {
	c := newScriptSeed(t, seed)
	c.listen(8)
	opts := make([]byte, 20)
	k := header.EncodeSynOptions(opts, 1460, -1, true, false, 0, 0)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: opts[:k]})
	sa, o, _ := c.take()
	if !o.SACKPermitted {
		t.Fatalf("SYN-ACK without SACK-permitted: %+v", o)
	}
	c.iss = sa.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck})
	c.acceptNoDelay()
	return c
}

func sackOpt(blocks ...header.SACKBlock) []byte {
	b := make([]byte, 40)
	n := header.EncodeOptions(b, false, 0, 0, blocks)
	return b[:n]
}

// ESTABLISHED, SACK recovery (RFC 6675): the first segment is lost and the
// peer SACKs the next three; the hole is retransmitted at once, recovery is
// counted, and the cumulative ACK ends it.
func TestEstablishedSackRecovery(t *testing.T) {
	c := sackEstablished(t)
	for i := 0; i < 5; i++ {
		c.tp.Send(context.Background(), []byte{byte('a' + i)})
		c.expect(seg{seq: c.iss + 1 + uint32(i), ack: 1001, flags: fAck | fPsh, payload: string(rune('a' + i))})
	}
	base := c.iss + 1
	for i := 2; i <= 4; i++ {
		c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sackOpt(header.SACKBlock{Start: base + 1, End: base + uint32(i)})})
	}
	c.expect(seg{seq: base, ack: 1001, flags: fAck | fPsh, payload: "a"})
	if c.s.mib.Get(memctl.TcpExtTCPSackRecovery) != 1 {
		t.Fatalf("TCPSackRecovery %d", c.s.mib.Get(memctl.TcpExtTCPSackRecovery))
	}
	c.send(seg{seq: 1001, ack: base + 5, flags: fAck})
	if i := c.tp.Info(); i.CAState != tcpCAOpen || i.Unacked != 0 {
		t.Fatalf("after the cumulative ACK: ca_state %d unacked %d", i.CAState, i.Unacked)
	}
}

// ESTABLISHED, persist timer: unanswered zero-window probes back off
// exponentially; a window update resumes sending.
func TestEstablishedPersistBackoff(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true})
	c.tp.Send(context.Background(), []byte("blocked"))
	c.expectNone()
	rto := c.tp.Info().RTO
	c.clk.Advance(rto)
	c.expect(seg{seq: c.iss, ack: 1001, flags: fAck})
	c.clk.Advance(2*rto - time.Millisecond)
	c.expectNone() // backed off: not before 2*RTO
	c.clk.Advance(time.Millisecond)
	c.expect(seg{seq: c.iss, ack: 1001, flags: fAck})
	if n := c.s.mib.Get(memctl.TcpExtTCPWinProbe); n != 2 {
		t.Fatalf("TCPWinProbe %d", n)
	}
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 1000})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "blocked"})
}

// ESTABLISHED, zero receive window: in-order data that does not fit is
// dropped (TCPZeroWindowDrop) and answered with a zero-window ACK.
func TestEstablishedZeroWindowDrop(t *testing.T) {
	c := newEstablished(t)
	c.tp.lockSock()
	c.tp.rcvWnd = 0 // as if everything offered had been filled
	c.tp.rcvWup = c.tp.rcvNxt
	c.tp.releaseSock()
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "overflow"})
	got, _ := c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	_ = got
	if c.s.mib.Get(memctl.TcpExtTCPZeroWindowDrop) != 1 || c.tp.Info().Qin != 0 {
		t.Fatalf("TCPZeroWindowDrop %d Qin %d", c.s.mib.Get(memctl.TcpExtTCPZeroWindowDrop), c.tp.Info().Qin)
	}
}

// FIN-WAIT-1: SYN in the window gets a challenge ACK (RFC 5961 4.2).
func TestFinWait1Syn(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, flags: fSyn})
	c.expect(seg{seq: c.iss + 2, ack: 1001, flags: fAck})
	if st := c.tp.state; st != TCPFinWait1 {
		t.Fatalf("state %v", st)
	}
}

func TestFinWait1Rst(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, flags: fRst})
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

// FIN-WAIT-1: FIN that also acknowledges our FIN goes straight to TIME-WAIT.
func TestFinWait1FinAck(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v", st)
	}
}

// FIN-WAIT-1: an unacknowledged FIN is retransmitted on RTO.
func TestFinWait1Retransmit(t *testing.T) {
	c := newEstablished(t)
	rto := c.tp.Info().RTO
	c.closeActive()
	c.clk.Advance(rto)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fFin})
}

// FIN-WAIT-1 after shutdown(SHUT_WR): SEND is EPIPE.
func TestFinWait1Send(t *testing.T) {
	c := newEstablished(t)
	c.tp.Shutdown(ShutWr)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fFin})
	if _, err := c.tp.Send(context.Background(), []byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("send after SHUT_WR: %v", err)
	}
}

// FIN-WAIT-2 after shutdown(SHUT_WR): data from the peer is still received.
func TestFinWait2Data(t *testing.T) {
	c := newEstablished(t)
	c.tp.Shutdown(ShutWr)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fFin})
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	if st := c.tp.State(); st != TCPFinWait2 {
		t.Fatalf("state %v", st)
	}
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fPsh, payload: "tail"})
	buf := make([]byte, 8)
	if n, err := c.tp.Recv(context.Background(), buf); err != nil || string(buf[:n]) != "tail" {
		t.Fatalf("recv %q %v", buf[:n], err)
	}
}

func TestFinWait2Syn(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.send(seg{seq: 1001, flags: fSyn})
	c.expect(seg{seq: c.iss + 2, ack: 1001, flags: fAck})
	if st := c.tp.state; st != TCPFinWait2 {
		t.Fatalf("state %v", st)
	}
}

// closeWait returns a connection in CLOSE-WAIT whose FIN's ACK was taken.
func closeWait(t *testing.T) *script {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.clk.Advance(tcpDelackMax)
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
	return c
}

func TestCloseWaitSyn(t *testing.T) {
	c := closeWait(t)
	c.send(seg{seq: 1002, flags: fSyn})
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPCloseWait {
		t.Fatalf("state %v", st)
	}
}

// CLOSE-WAIT: SEND still works; the ACK of the data is processed.
func TestCloseWaitSend(t *testing.T) {
	c := closeWait(t)
	if _, err := c.tp.Send(context.Background(), []byte("reply")); err != nil {
		t.Fatal(err)
	}
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fPsh, payload: "reply"})
	c.send(seg{seq: 1002, ack: c.iss + 6, flags: fAck})
	if i := c.tp.Info(); i.Unacked != 0 {
		t.Fatalf("unacked %d", i.Unacked)
	}
}

// CLOSE-WAIT: RECEIVE returns EOF once the queue is empty.
func TestCloseWaitRecv(t *testing.T) {
	c := closeWait(t)
	if n, err := c.tp.Recv(context.Background(), make([]byte, 4)); n != 0 || err != nil {
		t.Fatalf("recv %d %v, want EOF", n, err)
	}
}

// CLOSE-WAIT: new data after the FIN is ignored (3.10.7.4 seventh).
func TestCloseWaitData(t *testing.T) {
	c := closeWait(t)
	c.send(seg{seq: 1002, ack: c.iss + 1, flags: fAck, payload: "after"})
	if c.tp.Info().Qin != 0 || c.tp.State() != TCPCloseWait {
		t.Fatalf("Qin %d state %v", c.tp.Info().Qin, c.tp.State())
	}
}

// closing returns a connection in CLOSING (simultaneous close).
func closing(t *testing.T) *script {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	return c
}

// CLOSING: a retransmitted FIN is acknowledged again.
func TestClosingFin(t *testing.T) {
	c := closing(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPClosing {
		t.Fatalf("state %v", st)
	}
}

func TestClosingSyn(t *testing.T) {
	c := closing(t)
	c.send(seg{seq: 1002, flags: fSyn})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPClosing {
		t.Fatalf("state %v", st)
	}
}

// lastAck returns a connection in LAST-ACK (the peer closed first).
func lastAck(t *testing.T) *script {
	c := closeWait(t)
	c.tp.Shutdown(ShutWr)
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fFin})
	if st := c.tp.State(); st != TCPLastAck {
		t.Fatalf("state %v", st)
	}
	return c
}

// LAST-ACK: a retransmitted FIN is acknowledged again.
func TestLastAckFin(t *testing.T) {
	c := lastAck(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.State(); st != TCPLastAck {
		t.Fatalf("state %v", st)
	}
}

func TestLastAckSyn(t *testing.T) {
	c := lastAck(t)
	c.send(seg{seq: 1002, flags: fSyn})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
}

// LAST-ACK: our FIN is retransmitted on RTO until acknowledged.
func TestLastAckRetransmit(t *testing.T) {
	c := lastAck(t)
	c.clk.Advance(c.tp.Info().RTO)
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fFin})
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck})
	if st := c.tp.State(); st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

// LAST-ACK with the FIN already sent: a zero-linger close sends no RST
// (tcp_disconnect resets CLOSING/LAST-ACK only with unsent data).
func TestLastAckAbort(t *testing.T) {
	c := lastAck(t)
	c.tp.Abort()
	c.expectNone()
}

// TIME-WAIT: an in-window bare ACK is absorbed and restarts the 2*MSL timer.
func TestTimeWaitAck(t *testing.T) {
	c := timeWaitScript(t)
	c.clk.Advance(tcpTimewaitLen / 2)
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck})
	c.expectNone()
	c.clk.Advance(tcpTimewaitLen/2 + time.Second)
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v: the ACK did not restart the timer", st)
	}
	c.clk.Advance(tcpTimewaitLen)
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v after 2*MSL", st)
	}
}

// TIME-WAIT: a segment carrying data is answered with an ACK.
func TestTimeWaitData(t *testing.T) {
	c := timeWaitScript(t)
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck, payload: "late"})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v", st)
	}
}

// TIME-WAIT: a RST not at rcv_nxt does not kill the socket (only the
// in-window exact RST assassinates TIME-WAIT).
func TestTimeWaitRstOutOfWindow(t *testing.T) {
	c := timeWaitScript(t)
	c.send(seg{seq: 1002 + 5000, flags: fRst})
	c.expectNone()
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v after an out-of-window RST", st)
	}
}

// TIME-WAIT: TW counts its start; the timeout deletes the TCB; a later
// segment is reset.
func TestTimeWaitTimeout(t *testing.T) {
	c := timeWaitScript(t)
	if c.s.mib.Get(memctl.TcpExtTW) != 1 { // counted on entry, as Linux does
		t.Fatal("TcpExtTW")
	}
	c.clk.Advance(tcpTimewaitLen)
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
	if c.s.mib.Get(memctl.TcpExtTW) != 1 {
		t.Fatal("TcpExtTW counted again at the end")
	}
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck})
	c.expect(seg{seq: c.iss + 2, flags: fRst})
}

// TIME-WAIT with timestamps: a segment failing PAWS is counted
// (PAWSTimewait) and answered with an ACK.
func TestTimeWaitPaws(t *testing.T) {
	c, ecr := newEstablishedTS(t)
	c.tp.Close()
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fFin})
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin, opts: tsOpt(500, ecr)})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v", st)
	}
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck, opts: tsOpt(400, ecr)})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if c.s.mib.Get(memctl.TcpExtPAWSTimewait) != 1 {
		t.Fatal("PAWSTimewait")
	}
}

// ESTABLISHED, SACK reordering: segments below the highest SACKed one that
// are then cumulatively acked without ever being retransmitted arrived out
// of order, not lost: the reordering degree rises to the distance seen
// (tcp_check_sack_reordering), so the same pattern later does not start a
// spurious recovery. This is the RFC 6675 dupthresh rule, so RACK is off
// (with RACK and a zero RTT, as here, the holes would be marked lost at
// once, as in Linux; tcp_rack_test.go has the RACK cases).
func TestEstablishedSackReordering(t *testing.T) {
	c := sackEstablished(t)
	c.setRecovery("0")
	const mss = 1460
	data := make([]byte, 5*mss)
	if _, err := c.tp.Send(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	base := c.iss + 1
	for i := 0; i < 5; i++ {
		g, _, ok := c.take()
		if !ok || g.seq != base+uint32(i*mss) || len(g.payload) != mss {
			t.Fatalf("segment %d: %v %v", i, g, ok)
		}
	}
	if c.tp.Info().SndMSS != mss {
		t.Fatalf("mss %d", c.tp.Info().SndMSS)
	}
	// Segments 3 and 4 arrive first: one dupack with SACK, no recovery.
	c.send(seg{seq: 1001, ack: base, flags: fAck, opts: sackOpt(header.SACKBlock{Start: base + 2*mss, End: base + 4*mss})})
	c.expectNone()
	if r := c.tp.Info().Reordering; r != 3 {
		t.Fatalf("reordering %d before", r)
	}
	// Then everything: 1 and 2 were only late.
	c.send(seg{seq: 1001, ack: base + 5*mss, flags: fAck})
	if r := c.tp.Info().Reordering; r != 5 {
		t.Fatalf("reordering %d, want 5 (fack - low_seq = 5 segments)", r)
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPSACKReorder); n != 1 {
		t.Fatalf("TCPSACKReorder %d", n)
	}
	if c.s.mib.Get(memctl.TcpRetransSegs) != 0 {
		t.Fatal("retransmitted")
	}
}

// TIME-WAIT: answers to out-of-window segments without data are rate
// limited (tcp_timewait_check_oow_rate_limit, 500 ms).
func TestTimeWaitAckRateLimited(t *testing.T) {
	c := timeWaitScript(t)
	c.send(seg{seq: 1500, ack: c.iss + 2, flags: fAck})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	c.send(seg{seq: 1600, ack: c.iss + 2, flags: fAck})
	c.expectNone()
	if c.s.mib.Get(memctl.TcpExtTCPACKSkippedTimeWait) != 1 {
		t.Fatal("TCPACKSkippedTimeWait")
	}
	c.clk.Advance(501 * time.Millisecond)
	c.send(seg{seq: 1700, ack: c.iss + 2, flags: fAck})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
}
