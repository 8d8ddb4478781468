package netstack

import (
	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// Receiver side: the SACK blocks we advertise.

// sackBlocksToSend is how many SACK blocks the next segment carries.
func (tp *TCPSock) sackBlocksToSend() int {
	if !tp.sackOK {
		return 0
	}
	n := tp.numSacks
	if tp.dsack {
		n++
	}
	max := tcpMaxSackBlocks
	if tp.tstampOK {
		max = 3
	}
	return min(n, max)
}

func (tp *TCPSock) sackBlocksSlice(k int) []header.SACKBlock {
	var out [tcpMaxSackBlocks + 1]header.SACKBlock
	n := 0
	if tp.dsack {
		out[n] = tp.duplicateSack
		n++
	}
	for i := 0; i < tp.numSacks && n < k; i++ {
		out[n] = tp.selectiveAcks[i]
		n++
	}
	return out[:n:n]
}

// sackNewOfoSkb records seq..end, out-of-order data just queued (or found
// queued already), in the SACK blocks we advertise, most recent first (RFC
// 2018): the block it touches grows to cover it and moves to the front,
// taking in any other block it now reaches (sackMaybeCoalesce); if it
// touches none, a new block goes in front and, with all of them in use,
// the oldest is forgotten. Constant work per segment, however long the
// out-of-order queue. When the block it touches or adds is past the first
// two (TCP_SACK_BLOCKS_EXPECTED: what an ACK that may be lost is counted on
// to carry), an ACK whose duplicates were being merged (sackCompress) goes
// at once, before the blocks move (tcp_sack_compress_send_ack). Mirrors
// tcp_sack_new_ofo_skb.
func (tp *TCPSock) sackNewOfoSkb(seq, end uint32) {
	sp := tp.selectiveAcks[:tp.numSacks]
	for i := range sp {
		if sackExtend(&sp[i], seq, end) {
			if i >= tcpSackBlocksExpected {
				tp.sackCompressSendAck()
			}
			blk := sp[i]
			copy(sp[1:i+1], sp[:i])
			sp[0] = blk
			tp.sackMaybeCoalesce()
			return
		}
	}
	if tp.numSacks >= tcpSackBlocksExpected {
		tp.sackCompressSendAck()
	}
	n := min(tp.numSacks, tcpMaxSackBlocks-1)
	copy(tp.selectiveAcks[1:n+1], tp.selectiveAcks[:n])
	tp.selectiveAcks[0] = header.SACKBlock{Start: seq, End: end}
	tp.numSacks = n + 1
}

// tcpSackBlocksExpected is how many SACK blocks a receiver counts on an ACK
// to carry (TCP_SACK_BLOCKS_EXPECTED: four fit, three with timestamps, and
// SACKs may be lost).
const tcpSackBlocksExpected = 2

// sackExtend widens blk to cover seq..end if the two overlap or touch, and
// reports whether it did. Mirrors tcp_sack_extend.
func sackExtend(blk *header.SACKBlock, seq, end uint32) bool {
	if seqGT(blk.Start, end) || seqGT(seq, blk.End) {
		return false
	}
	if seqLT(seq, blk.Start) {
		blk.Start = seq
	}
	if seqGT(end, blk.End) {
		blk.End = end
	}
	return true
}

// sackMaybeCoalesce merges into the first SACK block every other block it
// overlaps or touches. Mirrors tcp_sack_maybe_coalesce.
func (tp *TCPSock) sackMaybeCoalesce() {
	first := &tp.selectiveAcks[0]
	n := tp.numSacks
	for i := 1; i < n; {
		if sackExtend(first, tp.selectiveAcks[i].Start, tp.selectiveAcks[i].End) {
			copy(tp.selectiveAcks[i:n-1], tp.selectiveAcks[i+1:n])
			n--
			continue
		}
		i++
	}
	tp.numSacks = n
}

// sackRemove forgets the SACK blocks that rcv_nxt has reached (all of them
// once the out-of-order queue is empty). Mirrors tcp_sack_remove.
func (tp *TCPSock) sackRemove() {
	if tp.ofo.Empty() {
		tp.numSacks = 0
		return
	}
	n := tp.numSacks
	for i := 0; i < n; {
		if !seqLT(tp.rcvNxt, tp.selectiveAcks[i].Start) {
			copy(tp.selectiveAcks[i:n-1], tp.selectiveAcks[i+1:n])
			n--
			continue
		}
		i++
	}
	tp.numSacks = n
}

// Sender side: tagging the retransmit queue from received SACK blocks and
// deciding what is lost (RFC 6675).

// sackTag marks the retransmit-queue skbs covered by the peer's SACK
// blocks. Mirrors tcp_sacktag_write_queue.
//
// reord is lowered to the start of every newly SACKed skb that was never
// retransmitted and lies below priorFack (the highest SACKed sequence
// before this ACK): a hole filled by the original transmission, that is
// reordering (tcp_sacktag_one's state->reord). Every newly SACKed skb
// advances RACK and counts as delivered (tcp_sacktag_one); a D-SACK may
// widen RACK's reordering window (rackDsackSeen).
func (tp *TCPSock) sackTag(opts *header.TCPOptions, ack, priorFack uint32, reord *uint32) (newly uint32, dsack bool) {
	if !tp.sackOK || opts.NumSACK == 0 {
		return 0, false
	}
	for i := 0; i < opts.NumSACK; i++ {
		blk := opts.SACK[i]
		if !seqGT(blk.End, blk.Start) {
			continue
		}
		if i == 0 && (seqLEQ(blk.End, ack) || (opts.NumSACK > 1 &&
			seqGEQ(blk.Start, opts.SACK[1].Start) && seqLEQ(blk.End, opts.SACK[1].End))) {
			// D-SACK (RFC 2883): a duplicate arrived. If it covers a
			// retransmission, that retransmission was spurious.
			tp.stack.mib.Inc(memctl.TcpExtTCPDSACKRecv)
			dsack = true
			tp.rackDsackSeen(blk.Start, blk.End)
			if tp.undoMarker != 0 && seqGEQ(blk.Start, tp.undoMarker) && tp.undoRetrans > 0 {
				// A D-SACK may report several segments of a
				// multi-segment retransmission (tcp_check_dsack's
				// dup_segs).
				mss := uint32(max(tp.mssCache, 1))
				dup := int(max((blk.End-blk.Start+mss-1)/mss, 1))
				tp.undoRetrans = max(tp.undoRetrans-dup, 0)
			}
			continue
		}
		if seqLEQ(blk.End, ack) {
			continue
		}
		if seqGT(blk.End, tp.sndNxt) {
			tp.stack.mib.Inc(memctl.TcpExtTCPSACKDiscard)
			continue
		}
		var next *skb.SKB
		for b := tp.rtxQueue.Peek(); b != nil; b = next {
			next = b.Next()
			if seqGEQ(cbGetSeq(b), blk.End) {
				break
			}
			if !seqGT(cbGetEndSeq(b), blk.Start) {
				continue
			}
			sk := cbGetSacked(b)
			if sk&tcpcbSackedAcked != 0 { // SACKed before: not walked again (the SACK cache)
				continue
			}
			how := tp.shiftDecision(b, blk.Start, blk.End)
			if how == shiftFallback {
				tp.stack.mib.Inc(memctl.TcpExtTCPSackShiftFallback)
			}
			if tp.matchSkbToSack(b, blk.Start, blk.End) != 1 {
				next = b.Next() // the rest of b, if it was cut
				continue
			}
			next = b.Next()
			s, e := cbGetSeq(b), cbGetEndSeq(b)
			pc := uint32(max(tcpSkbPcount(b), 1))
			tp.rackAdvance(sk, e, b.Tstamp)
			tp.rateSkbDelivered(b, pc)
			if sk&tcpcbSackedRetrans != 0 {
				tp.retransOut -= pc
				sk &^= tcpcbSackedRetrans
			}
			if sk&tcpcbLost != 0 {
				tp.lostOut -= pc
				sk &^= tcpcbLost
			}
			if sk&tcpcbEverRetrans == 0 && seqLT(s, priorFack) && seqLT(s, *reord) {
				*reord = s
			}
			if cbGetSacked(b)&(tcpcbEverRetrans|tcpcbSackedRetrans) == 0 && seqLEQ(e, tp.highSeq) {
				tp.ackOrigSackAcked = true // FLAG_ORIG_SACK_ACKED (tcp_sacktag_one)
			}
			cbSetSacked(b, sk|tcpcbSackedAcked)
			tp.sackedOut += pc
			newly += pc
			if how == shiftWhole || how == shiftPart {
				next = tp.shiftSacked(b, how)
			}
		}
	}
	return newly, dsack
}

// highestSackSeq is the end of the highest SACKed skb, or snd_una when
// nothing is SACKed. Mirrors tcp_highest_sack_seq.
func (tp *TCPSock) highestSackSeq() uint32 {
	if tp.sackedOut == 0 {
		return tp.sndUna
	}
	for b := tp.rtxQueue.PeekTail(); b != nil; b = b.Prev() {
		if cbGetSacked(b)&tcpcbSackedAcked != 0 {
			return cbGetEndSeq(b)
		}
	}
	return tp.sndUna
}

// checkSackReordering raises the reordering degree (the RFC 6675 DupThresh
// of markLostSack) when data below the highest SACKed sequence turned out
// to have arrived out of order rather than lost, so that reordering paths
// stop triggering spurious fast retransmits. ts says the evidence came from
// timestamps (tryUndoPartial: TCPTSReorder) rather than SACKs
// (TCPSACKReorder). The degree is capped by the live sysctl
// tcp_max_reordering. Mirrors tcp_check_sack_reordering.
func (tp *TCPSock) checkSackReordering(lowSeq uint32, ts bool) {
	mss := uint32(tp.mssCache)
	fack := tp.highestSackSeq()
	if !seqLT(lowSeq, fack) {
		return
	}
	if metric := fack - lowSeq; mss != 0 && metric > tp.reordering*mss {
		tp.reordering = min((metric+mss-1)/mss, uint32(tp.stack.net.Sysctls.TCPMaxReordering()))
	}
	tp.reordSeen++ // RACK's reordering window opens (rackReoWnd)
	if ts {
		tp.stack.mib.Inc(memctl.TcpExtTCPTSReorder)
	} else {
		tp.stack.mib.Inc(memctl.TcpExtTCPSACKReorder)
	}
}

// markLostSack marks as lost every unSACKed skb with at least reordering
// SACKed skbs above it (RFC 6675 IsLost). Returns whether any was marked.
func (tp *TCPSock) markLostSack() bool {
	if tp.sackedOut == 0 {
		return false
	}
	count := uint32(0)
	marked := false
	for b := tp.rtxQueue.PeekTail(); b != nil; b = b.Prev() {
		sk := cbGetSacked(b)
		if sk&tcpcbSackedAcked != 0 {
			count += uint32(max(tcpSkbPcount(b), 1))
			continue
		}
		if count >= tp.reordering && sk&(tcpcbLost|tcpcbSackedRetrans) == 0 {
			tp.sumLost(sk, uint32(max(tcpSkbPcount(b), 1)))
			cbSetSacked(b, sk|tcpcbLost)
			tp.lostOut += uint32(max(tcpSkbPcount(b), 1))
			marked = true
		}
	}
	return marked
}

// markHeadLost marks the first unacked segment lost (NewReno, three
// dupacks or a partial ACK), cutting it off a multi-segment skb. Mirrors
// tcp_newreno_mark_lost.
func (tp *TCPSock) markHeadLost() {
	b := tp.rtxQueue.Peek()
	if b == nil {
		return
	}
	sk := cbGetSacked(b)
	if sk&(tcpcbLost|tcpcbSackedAcked) == 0 {
		if mss := tcpSkbMss(b); tcpSkbPcount(b) > 1 && b.Len() > mss {
			tp.fragment(&tp.rtxQueue, b, mss, mss)
		}
		pc := uint32(max(tcpSkbPcount(b), 1))
		tp.sumLost(sk, pc)
		if sk&tcpcbSackedRetrans != 0 {
			tp.retransOut -= pc
			sk &^= tcpcbSackedRetrans
		}
		cbSetSacked(b, sk|tcpcbLost)
		tp.lostOut += pc
	}
}

// enterRecovery starts fast recovery: a new undo episode (tcp_undo.go),
// ssthresh from the congestion control, then cwnd brought down to it
// gradually by Proportional Rate Reduction. A recovery started again
// before the last one ended (RACK after an undo) keeps its reduction.
// From Loss (a lost retransmission, RACK) it reduces again, as Linux.
// Mirrors tcp_enter_recovery + tcp_init_cwnd_reduction.
func (tp *TCPSock) enterRecovery() {
	if tp.sackOK {
		tp.stack.mib.Inc(memctl.TcpExtTCPSackRecovery)
	} else {
		tp.stack.mib.Inc(memctl.TcpExtTCPRenoRecovery)
	}
	tp.priorSsthr = 0
	tp.initUndo()
	if !tp.inCwndReduction() {
		if !tp.ackFlagECE { // an ECN echo's reduction is not undone
			tp.priorSsthr = tp.currentSsthresh()
		}
		tp.ecnQueueCWR()
		tp.highSeq = tp.sndNxt
		tp.priorCwnd = tp.cwnd
		tp.ssthresh = tp.cc.ssthresh(tp)
		tp.cc.onLoss(tp)
		tp.cwndCnt = 0
		tp.prrDelivered, tp.prrOut = 0, 0
	}
	tp.setCAState(tcpCARecovery)
}

// xmitRecovery retransmits what is marked lost. With an algorithm that
// sets cwnd itself (congControl) it waits for the end of the ACK, after
// congControl, as Linux's REXMIT_LOST waits for tcp_xmit_recovery; PRR
// sets cwnd here, so with reno and cubic it goes now.
func (tp *TCPSock) xmitRecovery() {
	if tp.ccMain != nil {
		tp.rexmitLost = true
		return
	}
	tp.xmitRetransmitQueue()
}

// processLoss is the Loss state's handling of an ACK: an RTO undone by
// timestamps or D-SACKs on an ACK that advances snd_una, or by F-RTO
// (RFC 5682, SACK-enhanced) when data below high_seq that was never
// retransmitted is (s)acked; else over once high_seq is acked. It
// reports F-RTO's step 2.b, new data to be sent instead of
// retransmissions (REXMIT_NEW). Mirrors tcp_process_loss.
func (tp *TCPSock) processLoss(advanced, isDupack, dataSacked bool) (sendNew bool) {
	recovered := seqGEQ(tp.sndUna, tp.highSeq)
	if advanced && tp.tryUndoLoss(false) {
		return false
	}
	if tp.frto {
		// Step 3.b: the timeout was spurious if not everything was
		// lost, that is if never-retransmitted data is (s)acked.
		if tp.ackOrigSackAcked && tp.tryUndoLoss(true) {
			return false
		}
		if seqGT(tp.sndNxt, tp.highSeq) {
			if dataSacked || isDupack {
				tp.frto = false // step 3.a: the loss was real
			}
		} else if advanced && !recovered {
			tp.highSeq = tp.sndNxt
			// Step 2.b: send new data (once cwnd is updated); with
			// none to send, or no window for it, conventional recovery.
			if tp.writeQueue.Peek() != nil && seqGT(tp.sndUna+tp.sndWnd, tp.sndNxt) {
				return true
			}
			tp.frto = false
		}
	}
	if recovered {
		tp.tryUndoRecovery() // step 2.a and the first part of step 3.a
	}
	return false
}

// xmitNew is tcp_xmit_recovery's REXMIT_NEW (F-RTO step 2.b): new data,
// after congControl when a congestion module sets cwnd itself.
func (tp *TCPSock) xmitNew() {
	if tp.ccMain != nil {
		tp.rexmitNew = true
		return
	}
	tp.xmitNewOrRetransmit()
}

// xmitNewOrRetransmit sends what the window and cwnd let out of the write
// queue; if that took snd_nxt no further than high_seq, F-RTO gives up
// and the retransmissions go instead. Mirrors tcp_xmit_recovery with
// REXMIT_NEW.
func (tp *TCPSock) xmitNewOrRetransmit() {
	tp.pushPendingFrames(nagleOff)
	if seqGT(tp.sndNxt, tp.highSeq) {
		return
	}
	tp.frto = false
	tp.xmitRetransmitQueue()
}

// cwndReduction sets cwnd during recovery from what the ACK delivered.
// Mirrors tcp_cwnd_reduction (RFC 6937 PRR with the SSRB bound).
func (tp *TCPSock) cwndReduction(newlyAckedSacked uint32, newlyLost, unaAdvanced bool) {
	if tp.ccMain != nil {
		return // tcp_cong_control calls cong_control instead
	}
	if newlyAckedSacked == 0 && !newlyLost {
		return
	}
	tp.prrDelivered += newlyAckedSacked
	inflight := tp.packetsInFlight()
	delta := int64(tp.ssthresh) - int64(inflight)
	var sndcnt int64
	if delta < 0 {
		d := uint64(tp.ssthresh)*uint64(tp.prrDelivered) + uint64(max(tp.priorCwnd, 1)) - 1
		sndcnt = int64(d/uint64(max(tp.priorCwnd, 1))) - int64(tp.prrOut)
	} else if unaAdvanced && !newlyLost {
		sndcnt = min(delta, max(int64(tp.prrDelivered)-int64(tp.prrOut), int64(newlyAckedSacked))+1)
	} else {
		sndcnt = min(delta, int64(newlyAckedSacked))
	}
	if tp.prrOut == 0 {
		sndcnt = max(sndcnt, 1) // fast retransmit on entering recovery
	}
	sndcnt = max(sndcnt, 0)
	tp.cwnd = max(uint32(int64(inflight)+sndcnt), 1)
}

// enterLoss is the RTO's reaction: every outstanding unSACKed skb is lost
// (timeoutMarkLost), cwnd 1. Unless the timeout falls inside an episode
// whose reduction is already made (a recovery not yet over, or an earlier
// RTO not yet answered), ssthresh is reduced and a new undo episode opens,
// awaiting D-SACKs for the retransmissions still in flight after the
// marking. Mirrors tcp_enter_loss (cwnd 1 where Linux sets packets in
// flight + 1, as sockfs did before RACK).
func (tp *TCPSock) enterLoss() {
	newRecovery := tp.caState < tcpCARecovery
	tp.timeoutMarkLost()
	if tp.caState <= tcpCADisorder || !seqGT(tp.highSeq, tp.sndUna) ||
		(tp.caState == tcpCALoss && tp.retransmits == 0) {
		tp.priorSsthr = tp.currentSsthresh()
		tp.priorCwnd = tp.cwnd
		tp.ssthresh = tp.cc.ssthresh(tp)
		tp.cc.onLoss(tp)
		tp.initUndo()
	}
	tp.cwnd = 1
	tp.cwndCnt = 0
	// A timeout after many SACKs in Open/Disorder means the reordering
	// degree was overestimated (tcp_enter_loss): back to tcp_reordering.
	if reord := uint32(tp.stack.net.Sysctls.TCPReordering()); tp.caState <= tcpCADisorder && tp.sackedOut >= reord {
		tp.reordering = min(tp.reordering, reord)
	}
	tp.highSeq = tp.sndNxt
	tp.tlpHighSeq = 0 // its probe is counted in undo_retrans (6.11+)
	tp.setCAState(tcpCALoss)
	tp.dupAcks = 0
	tp.ecnQueueCWR()
	// F-RTO (RFC 5682 section 3.1, step 1): on a first timeout outside
	// recovery, or a repeated one on the same snd_una (section 3.2), not
	// while a path-MTU probe is out.
	tp.frto = tp.stack.net.Sysctls.TCPFrto() != 0 && (newRecovery || tp.retransmits > 0) && tp.mtup.probeSize == 0
}

// timeoutMarkLost marks every unSACKed skb lost after an RTO; with RACK,
// skbs (re)sent less than the RACK RTT ago are not yet overdue and stay in
// flight, the head always goes. Mirrors tcp_timeout_mark_lost.
func (tp *TCPSock) timeoutMarkLost() {
	tp.retransOut = 0
	tp.lostOut = 0
	head := tp.rtxQueue.Peek()
	rack := tp.sackOK && tp.rackEnabled()
	for b := head; b != nil; b = b.Next() {
		sk := cbGetSacked(b)
		pc := uint32(max(tcpSkbPcount(b), 1))
		if rack && b != head && sk&(tcpcbSackedAcked|tcpcbLost) == 0 && tp.rackSkbTimeout(b, 0) > 0 {
			if sk&tcpcbSackedRetrans != 0 {
				tp.retransOut += pc
			}
			continue
		}
		if sk&tcpcbSackedAcked == 0 {
			tp.sumLost(sk, pc)
		}
		sk &^= tcpcbSackedRetrans
		if sk&tcpcbSackedAcked == 0 {
			sk |= tcpcbLost
			tp.lostOut += pc
		}
		cbSetSacked(b, sk)
	}
}

// fastretransAlert is the loss-recovery state machine run on every ACK that
// is not a plain in-order advance. Mirrors tcp_fastretrans_alert (loss
// marking by RACK with SACK when net.ipv4.tcp_recovery has it, else RFC
// 6675; RFC 6582 without SACK; PRR for cwnd, which Linux applies later in
// tcp_cong_control; the undo rules of tcp_undo.go). Returns whether RACK
// armed the reorder timer, which the caller must then leave in place
// (tcp_identify_packet_loss clearing FLAG_SET_XMIT_TIMER).
//
// With RACK, as in Linux, RACK alone marks losses when SACK is on (the
// dupthresh rules of tcp_time_to_recover and tcp_update_scoreboard,
// markLostSack here, are used only with RACK off), recovery starts as soon
// as something is marked lost, and a retransmission found lost in the Loss
// state starts fast recovery (FLAG_LOST_RETRANS).
func (tp *TCPSock) fastretransAlert(ack, priorUna uint32, isDupack bool, ackedSacked uint32) bool {
	advanced := seqGT(ack, priorUna)
	rack := tp.sackOK && tp.rackEnabled()
	if tp.undoMarker != 0 && tp.caState == tcpCAOpen && seqGT(tp.sndUna, tp.undoEnd) {
		// sockfs: no D-SACK came back for a full window after the
		// episode, the losses were real (Linux keeps the marker until
		// the next episode; this bounds the ACKs sent here for it).
		tp.undoMarker = 0
	}
	reoArmed := false

	// Leave fast recovery once high_seq is acked, undone if the
	// timestamps or D-SACKs allow (section D of tcp_fastretrans_alert).
	if tp.caState == tcpCAOpen {
		tp.retransStamp = 0
	} else if tp.caState == tcpCARecovery && seqGEQ(tp.sndUna, tp.highSeq) {
		tp.tryUndoRecovery()
		tp.endCwndReduction()
	} else if tp.caState == tcpCACWR && seqGT(tp.sndUna, tp.highSeq) {
		// CWR is held until something above high_seq is acked, so
		// that the CWR flag has reached the receiver.
		tp.endCwndReduction()
		tp.setCAState(tcpCAOpen)
	}

	switch tp.caState {
	case tcpCARecovery:
		if advanced && tp.tryUndoPartial(priorUna) {
			// The hole was filled by a delayed original but
			// retransmissions are still out: clock out new data,
			// mark nothing more lost.
			tp.cwndReduction(ackedSacked, false, advanced)
			return false
		}
		if tp.tryUndoDsack() {
			tp.tryKeepOpen()
		}
		lost := false
		if !tp.sackOK && advanced && tp.caState == tcpCARecovery {
			tp.markHeadLost() // NewReno partial ACK (tcp_newreno_mark_lost)
			lost = true
		}
		if rack {
			armed, marked := tp.rackMarkLost() // tcp_identify_packet_loss
			reoArmed = armed
			lost = lost || marked > 0
		} else if tp.sackOK {
			lost = tp.markLostSack() || lost
		}
		if tp.caState != tcpCARecovery {
			// Undone above; a loss now evident starts a new recovery
			// (reordering, then loss).
			if tp.lostOut == 0 {
				return reoArmed
			}
			tp.enterRecovery()
		}
		tp.cwndReduction(ackedSacked, lost, advanced)
		tp.xmitRecovery()
		return reoArmed
	case tcpCALoss:
		sendNew := tp.processLoss(advanced, isDupack, tp.ackDataSacked)
		lostRetrans := false
		if rack {
			priorRetrans := tp.retransOut
			reoArmed, _ = tp.rackMarkLost()
			lostRetrans = tp.retransOut < priorRetrans // FLAG_LOST_RETRANS
		} else if tp.sackOK && tp.caState == tcpCALoss {
			tp.markLostSack()
		}
		if tp.caState != tcpCAOpen && !lostRetrans {
			if sendNew {
				tp.xmitNew()
			} else {
				tp.xmitRecovery()
			}
			return reoArmed
		}
		// Undone or over, or a retransmission was lost: as in Open.
	}

	if isDupack {
		tp.dupAcks++
	} else if advanced {
		tp.dupAcks = 0
	}
	if tp.caState <= tcpCADisorder {
		tp.tryUndoDsack()
	}
	if rack {
		// tcp_identify_packet_loss, then tcp_time_to_recover: only a
		// proven loss (lost_out) starts recovery.
		armed, _ := tp.rackMarkLost()
		reoArmed = reoArmed || armed
		if tp.lostOut > 0 && tp.mtupProbeLost() {
			return reoArmed
		}
		if tp.lostOut > 0 {
			tp.enterRecovery()
			tp.cwndReduction(ackedSacked, true, advanced)
			tp.xmitRecovery()
			return reoArmed
		}
	} else {
		lost := false
		if tp.sackOK {
			lost = tp.markLostSack()
		}
		if !lost && uint32(tp.dupAcks) >= tp.reordering {
			tp.markHeadLost()
			lost = true
		}
		if lost && tp.lostOut > 0 && tp.mtupProbeLost() {
			return false
		}
		if lost && tp.lostOut > 0 {
			tp.enterRecovery()
			tp.cwndReduction(ackedSacked, true, advanced)
			tp.xmitRecovery()
			return false
		}
	}
	tp.tryToOpen()
	if tp.caState == tcpCACWR { // tcp_cong_control: PRR in CWR too
		tp.cwndReduction(ackedSacked, false, advanced)
	}
	return reoArmed
}
