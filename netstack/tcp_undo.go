package netstack

// Undoing a window reduction that turned out to be unnecessary, as Linux
// does (net/ipv4/tcp_input.c, "Undo procedures"): the losses that made us
// reduce cwnd were not losses but reordering or a premature timeout.
//
// Two kinds of evidence show it. D-SACKs (RFC 2883) report every
// retransmission that arrived as a duplicate: when all of them have been
// reported (undo_retrans back to zero) none was needed (tryUndoDsack).
// TCP timestamps (the Eifel detection of RFC 3522) show it one round trip
// sooner: an ACK that echoes a TSval older than the episode's first
// retransmission (retrans_stamp) was triggered by an original
// transmission, so the data had merely been delayed (packetDelayed). That
// evidence is used at the end of recovery (tryUndoRecovery, TCPFullUndo or
// TCPLossUndo), on a partial ACK in fast recovery (tryUndoPartial,
// TCPPartialUndo, which also records the reordering so that it is not
// mistaken for loss again) and on any ACK that advances snd_una after an
// RTO (tryUndoLoss, TCPLossUndo). Without timestamps only D-SACKs undo
// (and, as in Linux, an episode in which nothing was retransmitted yet).
//
// The episode's bookkeeping: undo_marker (snd_una when the reduction
// started; zero once undone or given up), undo_retrans (retransmissions not
// yet reported duplicate; -1 before the first), prior_cwnd and
// prior_ssthresh (what an undo restores) and retrans_stamp.
//
// Deviations: no F-RTO (RFC 5682), so a spurious RTO is only undone by
// timestamps or D-SACKs, and TCPSpuriousRTOs, which Linux counts only for
// an F-RTO undo, stays zero; without SACK, recovery and Loss end when
// snd_una reaches high_seq rather than holding until an ACK above it
// (tcp_is_non_sack_preventing_reopen), as sockfs did before (the NewReno
// script tests expect Open there).

import (
	"time"

	"sockfs/memctl"
)

// tcpInfiniteSsthresh is TCP_INFINITE_SSTHRESH.
const tcpInfiniteSsthresh = 0x7fffffff

// initUndo opens an undo episode: snd_una is the marker, and D-SACKs are
// awaited for the retransmissions still in flight, a tail loss probe's
// included; -1 says none was sent yet (zero would mean "all reported,
// undo now"). Mirrors tcp_init_undo. sockfs's probe goes through
// retransmitSkb and so is in retrans_out already unless the RTO's marking
// took it out; it is added only then, where Linux always adds it (its
// probe is never in retrans_out).
func (tp *TCPSock) initUndo() {
	tp.undoMarker = tp.sndUna
	tp.undoRetrans = int(tp.retransOut)
	if tp.tlpHighSeq != 0 && tp.tlpRetrans && !tp.tlpProbeCounted() {
		tp.undoRetrans++
	}
	if tp.undoRetrans == 0 {
		tp.undoRetrans = -1
	}
}

// tlpProbeCounted says whether the skb the last loss probe resent (the one
// ending at tlp_high_seq) is still counted in retrans_out.
func (tp *TCPSock) tlpProbeCounted() bool {
	for b := tp.rtxQueue.PeekTail(); b != nil; b = b.Prev() {
		if e := cbGetEndSeq(b); e == tp.tlpHighSeq {
			return cbGetSacked(b)&tcpcbSackedRetrans != 0
		} else if seqLT(e, tp.tlpHighSeq) {
			break
		}
	}
	return false
}

// currentSsthresh is the ssthresh an undo may restore: the current one, or
// three quarters of cwnd when that is larger and no reduction is under
// way. Mirrors tcp_current_ssthresh.
func (tp *TCPSock) currentSsthresh() uint32 {
	if tp.inCwndReduction() {
		return tp.ssthresh
	}
	return max(tp.ssthresh, tp.cwnd>>1+tp.cwnd>>2)
}

// tsoptEcrBefore says whether the ACK being processed echoes a timestamp
// older than when (a stack-clock time in ns, converted to our TSval
// clock). Mirrors tcp_tsopt_ecr_before.
func (tp *TCPSock) tsoptEcrBefore(when int64) bool {
	if !tp.tstampOK || !tp.sawTstamp || tp.rcvTsecr == 0 {
		return false
	}
	return seqLT(tp.rcvTsecr, uint32(when/int64(time.Millisecond))+tp.tsOffset)
}

// packetDelayed says whether the ACK being processed shows that the data
// it acknowledges was delayed rather than lost: it echoes a timestamp from
// before the episode's first retransmission, or nothing was retransmitted
// at all. A zero retrans_stamp is no evidence without SACK once snd_una
// reached high_seq, nor in SYN_SENT (the SYN's ACK clears it). Mirrors
// tcp_packet_delayed (6.16+).
func (tp *TCPSock) packetDelayed() bool {
	if tp.retransStamp != 0 {
		return tp.tsoptEcrBefore(tp.retransStamp)
	}
	if !tp.sackOK && seqGEQ(tp.sndUna, tp.highSeq) {
		return false
	}
	return tp.state != TCPSynSent
}

// anyRetransDone says whether a retransmission may still be outstanding:
// one counted in flight, or a head skb ever retransmitted. Mirrors
// tcp_any_retrans_done.
func (tp *TCPSock) anyRetransDone() bool {
	if tp.retransOut > 0 {
		return true
	}
	head := tp.rtxQueue.Peek()
	return head != nil && cbGetSacked(head)&tcpcbEverRetrans != 0
}

// mayUndo says whether the reduction can be undone: D-SACKs reported every
// retransmission, or the timestamps show the data was only delayed.
// Mirrors tcp_may_undo.
func (tp *TCPSock) mayUndo() bool {
	return tp.undoMarker != 0 && (tp.undoRetrans == 0 || tp.packetDelayed())
}

// undoCwndReduction restores cwnd (the congestion control's undo_cwnd:
// the larger of the current and the prior one, as tcp_reno_undo_cwnd that
// CUBIC uses too) and ssthresh, closes the episode and makes RACK look at
// the queue again. With unmarkLoss the skbs marked lost are unmarked: they
// were not lost. Mirrors tcp_undo_cwnd_reduction.
func (tp *TCPSock) undoCwndReduction(unmarkLoss bool) {
	if unmarkLoss {
		for b := tp.rtxQueue.Peek(); b != nil; b = b.Next() {
			cbSetSacked(b, cbGetSacked(b)&^tcpcbLost)
		}
		tp.lostOut = 0
	}
	if tp.priorSsthr != 0 {
		tp.cwnd = tp.cc.undoCwnd(tp)
		if tp.priorSsthr > tp.ssthresh {
			tp.ssthresh = tp.priorSsthr
		}
	}
	tp.undoMarker = 0
	tp.rack.advanced = true
}

// tryUndoRecovery ends fast recovery or the Loss state when snd_una has
// reached high_seq, undoing the reduction if it may (TCPFullUndo, or
// TCPLossUndo after an RTO). A recovery that is not undone uses up one of
// RACK's persistent reo_wnd rounds. Mirrors tcp_try_undo_recovery.
func (tp *TCPSock) tryUndoRecovery() {
	if tp.mayUndo() {
		tp.undoCwndReduction(false)
		if tp.caState == tcpCALoss {
			tp.stack.mib.Inc(memctl.TcpExtTCPLossUndo)
		} else {
			tp.stack.mib.Inc(memctl.TcpExtTCPFullUndo)
		}
	} else if tp.rack.reoWndPersist > 0 {
		tp.rack.reoWndPersist--
	}
	tp.setCAOpen()
}

// setCAOpen moves to the Open state at the end of an episode. sockfs then
// waits up to one more window for late D-SACKs (undoEnd), where Linux
// keeps undo_marker until the next episode; see fastretransAlert.
func (tp *TCPSock) setCAOpen() {
	tp.setCAState(tcpCAOpen)
	tp.dupAcks = 0
	tp.undoEnd = tp.sndNxt
}

// tryUndoDsack undoes the reduction once D-SACKs have reported every
// retransmission of the episode, and keeps RACK's widened reordering
// window for one more recovery. Mirrors tcp_try_undo_dsack.
func (tp *TCPSock) tryUndoDsack() bool {
	if tp.undoMarker == 0 || tp.undoRetrans != 0 {
		return false
	}
	tp.rack.reoWndPersist = min(tp.rack.reoWndPersist+1, tcpRackRecoveryThresh)
	tp.undoCwndReduction(false)
	tp.stack.mib.Inc(memctl.TcpExtTCPDSACKUndo)
	return true
}

// tryUndoLoss undoes an RTO's reduction when F-RTO found the timeout
// spurious (frtoUndo: TCPSpuriousRTOs), or on an ACK that advances
// snd_una when the timestamps show the timeout was premature (or D-SACKs
// covered every retransmission): the skbs marked lost are unmarked and,
// with SACK or F-RTO, the Loss state is left (otherwise it ends at
// high_seq, as Linux does). Mirrors tcp_try_undo_loss.
func (tp *TCPSock) tryUndoLoss(frtoUndo bool) bool {
	if !frtoUndo && !tp.mayUndo() {
		return false
	}
	tp.undoCwndReduction(true)
	tp.stack.mib.Inc(memctl.TcpExtTCPLossUndo)
	if frtoUndo {
		tp.stack.mib.Inc(memctl.TcpExtTCPSpuriousRTOs)
	}
	tp.retransmits = 0
	if frtoUndo || tp.sackOK {
		tp.setCAOpen()
	}
	return true
}

// tryUndoPartial handles a partial ACK in fast recovery whose timestamp
// shows the hole was filled by the delayed original rather than by our
// retransmission: that was reordering, so it is recorded
// (checkSackReordering from the old snd_una, TCPTSReorder), which raises
// the dupthresh and opens RACK's reordering window. If no retransmission
// is still in flight the reduction is undone (TCPPartialUndo); otherwise
// the caller only clocks out new data, marking nothing more lost
// (returns true). Mirrors tcp_try_undo_partial.
func (tp *TCPSock) tryUndoPartial(priorUna uint32) bool {
	if tp.undoMarker == 0 || !tp.packetDelayed() {
		return false
	}
	tp.checkSackReordering(priorUna, true)
	if tp.retransOut > 0 {
		return true
	}
	if !tp.anyRetransDone() {
		tp.retransStamp = 0
	}
	tp.undoCwndReduction(true)
	tp.stack.mib.Inc(memctl.TcpExtTCPPartialUndo)
	tp.tryKeepOpen()
	return false
}

// tryKeepOpen leaves a reduction for Open, or for Disorder while SACKed,
// lost (or, without SACK, duplicate-acked) or retransmitted data is still
// out. Mirrors tcp_try_keep_open.
func (tp *TCPSock) tryKeepOpen() {
	state := uint8(tcpCAOpen)
	if tp.sackedOut+tp.lostOut > 0 || tp.dupAcks > 0 || tp.anyRetransDone() {
		state = tcpCADisorder
	}
	if tp.caState != state {
		if tp.caState >= tcpCARecovery {
			tp.undoEnd = tp.sndNxt
		}
		tp.setCAState(state)
		tp.highSeq = tp.sndNxt
	}
}

// tryToOpen settles Open or Disorder after an ACK that starts no recovery,
// forgetting retrans_stamp once no retransmission is left; an ECN echo
// starts CWR instead. Mirrors tcp_try_to_open.
func (tp *TCPSock) tryToOpen() {
	if !tp.anyRetransDone() {
		tp.retransStamp = 0
	}
	if tp.ackFlagECE {
		tp.enterCWR()
	}
	if tp.caState != tcpCACWR {
		tp.tryKeepOpen()
	}
}

// endCwndReduction sets cwnd to ssthresh at the end of a fast recovery
// that is not undone. Mirrors tcp_end_cwnd_reduction.
func (tp *TCPSock) endCwndReduction() {
	if tp.ccMain != nil {
		return // the algorithm sets cwnd itself
	}
	if tp.ssthresh < tcpInfiniteSsthresh && (tp.caState == tcpCACWR || tp.undoMarker != 0) {
		tp.cwnd = max(tp.ssthresh, 2)
	}
}
