package netstack

import (
	"testing"
	"time"

	"sockfs/memctl"
)

// F-RTO (RFC 5682, SACK-enhanced, as tcp_process_loss does it) as packet
// scripts, without timestamps, so that only F-RTO can tell a spurious
// timeout: a..d go out and nothing comes back; the loss probe resends d,
// the RTO resends a (Loss, cwnd 1) and e is written meanwhile.

// frtoRTO sets net.ipv4.tcp_frto, runs the script to the RTO and returns
// the state before it.
func frtoRTO(t *testing.T, frto string) (*undoConn, undoState) {
	t.Helper()
	u := undoEstablished(t, "1", false)
	s, _ := u.s.net.Sysctls.Lookup("ipv4/tcp_frto")
	if err := s.Write(frto); err != nil {
		t.Fatal(err)
	}
	before := u.state()
	u.sendSegs(4)
	u.clk.Advance(2*rackRTT + tcpTimeoutMin) // the loss probe (2*srtt + TCP_TIMEOUT_MIN): d again
	u.expectResend(3)
	_, deadline := u.tp.retransTimerState()
	u.clk.Advance(time.Duration(deadline - u.clk.Nanotime()))
	u.expectResend(0)
	if st := u.state(); st.ca != tcpCALoss || st.cwnd != 1 {
		t.Fatalf("after the RTO: %+v", st)
	}
	u.sendData(u.payload(4)) // e waits: cwnd is full
	u.expectNone()
	return u, before
}

// A spurious RTO: the ACKs of the originals come late. The first acks a
// (which was retransmitted, so it proves nothing): F-RTO sends the new
// segment e instead of retransmitting b (step 2.b). The next acks b, never
// retransmitted: the timeout was spurious (step 3.b), undone at once
// (TCPSpuriousRTOs, TCPLossUndo; Open, cwnd and ssthresh as before) and
// nothing is retransmitted. With tcp_frto 0 the same ACKs make b and c
// retransmissions and leave the reduction in place, as in Linux.
func TestFRTOSpuriousTimeoutUndone(t *testing.T) {
	u, before := frtoRTO(t, "2")
	u.ack(u.seq(1), 0)
	u.expect(seg{seq: u.seq(4), ack: 1001, flags: fAck | fPsh, payload: u.payload(4)})
	u.expectNone()
	u.ack(u.seq(2), 0)
	st := u.state()
	if n := u.mib(memctl.TcpExtTCPSpuriousRTOs); n != 1 || u.mib(memctl.TcpExtTCPLossUndo) != 1 {
		t.Fatalf("TCPSpuriousRTOs %d, TCPLossUndo %d; want 1 and 1", n, u.mib(memctl.TcpExtTCPLossUndo))
	}
	if st.ca != tcpCAOpen || st.cwnd < before.cwnd || st.ssthresh != before.ssthresh {
		t.Fatalf("after the undo %+v, before the RTO %+v", st, before)
	}
	u.expectNone()

	u, before = frtoRTO(t, "0")
	u.ack(u.seq(1), 0)
	u.expectResend(1)
	u.ack(u.seq(2), 0)
	st = u.state()
	if u.mib(memctl.TcpExtTCPSpuriousRTOs) != 0 || u.mib(memctl.TcpExtTCPLossUndo) != 0 || st.ca != tcpCALoss || st.ssthresh >= before.ssthresh {
		t.Fatalf("tcp_frto 0: TCPSpuriousRTOs %d, TCPLossUndo %d, after %+v, before %+v",
			u.mib(memctl.TcpExtTCPSpuriousRTOs), u.mib(memctl.TcpExtTCPLossUndo), st, before)
	}
}

// A genuine loss: after F-RTO's new segment e, the peer SACKs e while b
// is still missing (step 3.a): the loss was real, F-RTO ends and b is
// retransmitted as in conventional recovery; nothing is undone.
func TestFRTOGenuineLossFallsBack(t *testing.T) {
	u, before := frtoRTO(t, "2")
	u.ack(u.seq(1), 0)
	u.expect(seg{seq: u.seq(4), ack: 1001, flags: fAck | fPsh, payload: u.payload(4)})
	u.clk.Advance(time.Millisecond)
	u.ack(u.seq(1), 0, u.blk(4, 5))
	u.expectResend(1)
	st := u.state()
	if u.mib(memctl.TcpExtTCPSpuriousRTOs) != 0 || u.mib(memctl.TcpExtTCPLossUndo) != 0 || st.ca != tcpCALoss || st.ssthresh >= before.ssthresh {
		t.Fatalf("TCPSpuriousRTOs %d, TCPLossUndo %d, after %+v, before %+v",
			u.mib(memctl.TcpExtTCPSpuriousRTOs), u.mib(memctl.TcpExtTCPLossUndo), st, before)
	}
	u.tp.lockSock()
	frto := u.tp.frto
	u.tp.releaseSock()
	if frto {
		t.Fatal("F-RTO still on after the SACK of new data")
	}
}
