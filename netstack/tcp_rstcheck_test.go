package netstack

import (
	"testing"

	"sockfs/memctl"
)

// Which RST sequences reset a synchronized connection besides rcv_nxt
// (tcp_validate_incoming, tcp_reset_check). Found by an outside probe
// against the live kernel 6.18.44.

// A RST at the end of the right-most SACK block the stack advertises
// resets the connection; one at the end of another block draws a
// challenge ACK.
func TestEstablishedRstAtMaxSackEnd(t *testing.T) {
	c := sackEstablished(t)
	c.send(seg{seq: 1101, ack: c.iss + 1, flags: fAck, payload: "0123456789"})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	c.send(seg{seq: 1051, ack: c.iss + 1, flags: fAck, payload: "abcdefghij"})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	if c.tp.numSacks != 2 || c.tp.selectiveAcks[0].End != 1061 {
		t.Fatalf("SACK blocks %v (%d): want the newest, [1051,1061), first", c.tp.selectiveAcks, c.tp.numSacks)
	}
	c.send(seg{seq: 1061, flags: fRst})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v after a RST at the end of a lower SACK block", c.tp.State())
	}
	c.send(seg{seq: 1111, flags: fRst})
	c.expectNone()
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v after a RST at the right-most SACK block's end", c.tp.State())
	}
	if c.s.mib.Get(memctl.TcpEstabResets) != 1 || c.s.mib.Get(memctl.TcpExtTCPChallengeACK) != 1 {
		t.Fatalf("EstabResets %d TCPChallengeACK %d, want 1 and 1",
			c.s.mib.Get(memctl.TcpEstabResets), c.s.mib.Get(memctl.TcpExtTCPChallengeACK))
	}
}

// In CLOSE_WAIT a RST with the FIN's sequence (rcv_nxt-1) resets, here
// while the FIN's ACK is still delayed (rcv_wup below rcv_nxt: in window).
func TestCloseWaitRstAtFinSeq(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	if c.tp.State() != TCPCloseWait {
		t.Fatalf("state %v", c.tp.State())
	}
	c.send(seg{seq: 1001, flags: fRst})
	c.expectNone()
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v after a RST at rcv_nxt-1 in CLOSE_WAIT", c.tp.State())
	}
	if c.s.mib.Get(memctl.TcpEstabResets) != 1 {
		t.Fatal("EstabResets not counted")
	}
}

// In LAST_ACK, with the FIN acknowledged (rcv_wup = rcv_nxt), the RST at
// rcv_nxt-1 fails tcp_sequence and is still accepted by tcp_reset_check.
func TestLastAckRstAtFinSeq(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.tp.Close()
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fFin})
	if c.tp.State() != TCPLastAck || c.tp.rcvWup != 1002 {
		t.Fatalf("state %v rcv_wup %d", c.tp.State(), c.tp.rcvWup)
	}
	c.send(seg{seq: 1001, flags: fRst})
	c.expectNone()
	if c.tp.state != TCPClose {
		t.Fatalf("state %v after a RST at rcv_nxt-1 in LAST_ACK", c.tp.state)
	}
	c.tp = nil // closed by the user already
}
