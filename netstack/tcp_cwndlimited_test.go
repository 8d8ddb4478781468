package netstack

import "testing"

// Within one window, a send that is not cwnd-limited does not undo an
// earlier one that was: is_cwnd_limited sticks until snd_una passes
// cwnd_usage_seq, and only then does the next send decide afresh.
// Without it, an application-limited send with more packets out than
// before in the same window cleared the signal, and congestion avoidance
// (which grows cwnd only when cwnd-limited) stopped growing. Mirrors
// tcp_cwnd_validate's !tp->is_cwnd_limited condition.
func TestCwndLimitedSticksForTheWindow(t *testing.T) {
	c := sackEstablished(t)
	tp := c.tp
	tp.lockSock()
	defer tp.releaseSock()
	tp.sndUna, tp.sndNxt = 1000, 2000
	tp.cwndUsageSeq, tp.cwndLimited, tp.maxPacketsOut = 2000, true, 10
	tp.packetsOut = 12
	tp.cwndValidate(false)
	if !tp.cwndLimited || tp.maxPacketsOut != 10 {
		t.Fatalf("within the window: cwnd-limited %v, max_packets_out %d; want true and 10", tp.cwndLimited, tp.maxPacketsOut)
	}
	tp.sndUna = 2000 // the window is over
	tp.cwndValidate(false)
	if tp.cwndLimited || tp.maxPacketsOut != 12 || tp.cwndUsageSeq != tp.sndNxt {
		t.Fatalf("after the window: cwnd-limited %v, max_packets_out %d, cwnd_usage_seq %d; want false, 12, %d",
			tp.cwndLimited, tp.maxPacketsOut, tp.cwndUsageSeq, tp.sndNxt)
	}
}
