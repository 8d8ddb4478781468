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

// updateSackBlocks rebuilds the SACK blocks from the out-of-order queue,
// the block containing the latest segment first (RFC 2018). Mirrors
// tcp_sack_new_ofo_skb / tcp_sack_remove in effect.
func (tp *TCPSock) updateSackBlocks(latest *skb.SKB) {
	if !tp.sackOK {
		return
	}
	var blocks [16]header.SACKBlock
	n := 0
	for b := tp.ofo.Peek(); b != nil; b = b.Next() {
		s, e := cbGetSeq(b), cbGetEndSeq(b)
		if n > 0 && !seqGT(s, blocks[n-1].End) {
			if seqGT(e, blocks[n-1].End) {
				blocks[n-1].End = e
			}
			continue
		}
		if n == len(blocks) {
			break
		}
		blocks[n] = header.SACKBlock{Start: s, End: e}
		n++
	}
	tp.numSacks = 0
	if latest != nil {
		ls := cbGetSeq(latest)
		for i := 0; i < n; i++ {
			if seqLEQ(blocks[i].Start, ls) && seqLT(ls, blocks[i].End) {
				tp.selectiveAcks[0] = blocks[i]
				tp.numSacks = 1
				blocks[i] = blocks[n-1]
				n--
				break
			}
		}
	}
	for i := n - 1; i >= 0 && tp.numSacks < tcpMaxSackBlocks; i-- {
		tp.selectiveAcks[tp.numSacks] = blocks[i]
		tp.numSacks++
	}
}

// Sender side: tagging the retransmit queue from received SACK blocks and
// deciding what is lost (RFC 6675).

// sackTag marks the retransmit-queue skbs covered by the peer's SACK
// blocks. Mirrors tcp_sacktag_write_queue.
//
// reord is lowered to the start of every newly SACKed skb that was never
// retransmitted and lies below priorFack (the highest SACKed sequence
// before this ACK): a hole filled by the original transmission, that is
// reordering (tcp_sacktag_one's state->reord).
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
			if tp.undoMarker != 0 && seqGEQ(blk.Start, tp.undoMarker) && tp.undoRetrans > 0 {
				tp.undoRetrans--
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
		for b := tp.rtxQueue.Peek(); b != nil; b = b.Next() {
			s, e := cbGetSeq(b), cbGetEndSeq(b)
			if seqGEQ(s, blk.End) {
				break
			}
			if seqLT(s, blk.Start) || seqGT(e, blk.End) {
				continue
			}
			sk := cbGetSacked(b)
			if sk&tcpcbSackedAcked != 0 {
				continue
			}
			if sk&tcpcbSackedRetrans != 0 {
				tp.retransOut--
				sk &^= tcpcbSackedRetrans
			}
			if sk&tcpcbLost != 0 {
				tp.lostOut--
				sk &^= tcpcbLost
			}
			if sk&tcpcbEverRetrans == 0 && seqLT(s, priorFack) && seqLT(s, *reord) {
				*reord = s
			}
			cbSetSacked(b, sk|tcpcbSackedAcked)
			tp.sackedOut++
			newly++
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

// tcpMaxReordering is net.ipv4.tcp_max_reordering.
const tcpMaxReordering = 300

// checkSackReordering raises the reordering degree (the RFC 6675 DupThresh
// of markLostSack) when data below the highest SACKed sequence turned out
// to have arrived out of order rather than lost, so that reordering paths
// stop triggering spurious fast retransmits. Mirrors
// tcp_check_sack_reordering.
func (tp *TCPSock) checkSackReordering(lowSeq uint32) {
	mss := uint32(tp.mssCache)
	fack := tp.highestSackSeq()
	if !seqLT(lowSeq, fack) || mss == 0 {
		return
	}
	if metric := fack - lowSeq; metric > tp.reordering*mss {
		tp.reordering = min((metric+mss-1)/mss, tcpMaxReordering)
	}
	tp.stack.mib.Inc(memctl.TcpExtTCPSACKReorder)
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
			count++
			continue
		}
		if count >= tp.reordering && sk&(tcpcbLost|tcpcbSackedRetrans) == 0 {
			cbSetSacked(b, sk|tcpcbLost)
			tp.lostOut++
			marked = true
		}
	}
	return marked
}

// markHeadLost marks the first unacked skb lost (NewReno, three dupacks or
// a partial ACK). Mirrors tcp_mark_head_lost for one packet.
func (tp *TCPSock) markHeadLost() {
	b := tp.rtxQueue.Peek()
	if b == nil {
		return
	}
	sk := cbGetSacked(b)
	if sk&(tcpcbLost|tcpcbSackedAcked) == 0 {
		if sk&tcpcbSackedRetrans != 0 {
			tp.retransOut--
			sk &^= tcpcbSackedRetrans
		}
		cbSetSacked(b, sk|tcpcbLost)
		tp.lostOut++
	}
}

// enterRecovery starts fast recovery: ssthresh from the congestion control,
// then cwnd brought down to it gradually by Proportional Rate Reduction.
// Mirrors tcp_enter_recovery + tcp_init_cwnd_reduction.
func (tp *TCPSock) enterRecovery() {
	if tp.sackOK {
		tp.stack.mib.Inc(memctl.TcpExtTCPSackRecovery)
	} else {
		tp.stack.mib.Inc(memctl.TcpExtTCPRenoRecovery)
	}
	tp.highSeq = tp.sndNxt
	tp.priorCwnd, tp.priorSsthr = tp.cwnd, tp.ssthresh
	tp.undoMarker, tp.undoRetrans = tp.sndUna, 0
	tp.ssthresh = tp.cc.ssthresh(tp)
	tp.cc.onLoss(tp)
	tp.cwndCnt = 0
	tp.prrDelivered, tp.prrOut = 0, 0
	tp.caState = tcpCARecovery
}

// cwndReduction sets cwnd during recovery from what the ACK delivered.
// Mirrors tcp_cwnd_reduction (RFC 6937 PRR with the SSRB bound).
func (tp *TCPSock) cwndReduction(newlyAckedSacked uint32, newlyLost, unaAdvanced bool) {
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

// tryUndo restores the window reduced for losses that D-SACKs showed to be
// spurious. Mirrors tcp_try_undo_dsack + tcp_undo_cwnd_reduction.
func (tp *TCPSock) tryUndo() {
	if tp.undoMarker == 0 || tp.undoRetrans != 0 {
		return
	}
	tp.cwnd = max(tp.cwnd, tp.priorCwnd)
	tp.ssthresh = max(tp.ssthresh, tp.priorSsthr)
	tp.undoMarker = 0
	tp.stack.mib.Inc(memctl.TcpExtTCPDSACKUndo)
}

// enterLoss is the RTO's reaction: every outstanding unSACKed skb is lost,
// cwnd 1. Mirrors tcp_enter_loss.
func (tp *TCPSock) enterLoss() {
	if tp.caState != tcpCALoss || tp.backoff == 0 {
		tp.priorCwnd, tp.priorSsthr = tp.cwnd, tp.ssthresh
		tp.ssthresh = tp.cc.ssthresh(tp)
		tp.cc.onLoss(tp)
	}
	// A timeout after many SACKs in Open/Disorder means the reordering
	// degree was overestimated (tcp_enter_loss).
	if tp.caState <= tcpCADisorder && tp.sackedOut >= tcpDefaultReord {
		tp.reordering = min(tp.reordering, tcpDefaultReord)
	}
	tp.undoMarker, tp.undoRetrans = 0, 0 // an RTO is not undone here (no F-RTO)
	tp.cwnd = 1
	tp.cwndCnt = 0
	tp.retransOut = 0
	tp.lostOut = 0
	for b := tp.rtxQueue.Peek(); b != nil; b = b.Next() {
		sk := cbGetSacked(b) &^ tcpcbSackedRetrans
		if sk&tcpcbSackedAcked == 0 {
			sk |= tcpcbLost
			tp.lostOut++
		}
		cbSetSacked(b, sk)
	}
	tp.highSeq = tp.sndNxt
	tp.caState = tcpCALoss
	tp.dupAcks = 0
}

// fastretransAlert is the loss-recovery state machine run on every ACK that
// is not a plain in-order advance. Mirrors tcp_fastretrans_alert (RFC 6675
// loss marking with SACK, RFC 6582 without, PRR for cwnd, D-SACK undo).
func (tp *TCPSock) fastretransAlert(ack, priorUna uint32, isDupack bool, ackedSacked uint32, dsack bool) {
	advanced := seqGT(ack, priorUna)
	if dsack {
		tp.tryUndo()
	}
	if tp.undoMarker != 0 && tp.caState == tcpCAOpen && seqGT(tp.sndUna, tp.undoEnd) {
		tp.undoMarker = 0 // no D-SACK came back for a full window: the losses were real
	}
	switch tp.caState {
	case tcpCARecovery, tcpCALoss:
		if seqGEQ(tp.sndUna, tp.highSeq) {
			// Recovery complete (tcp_end_cwnd_reduction).
			was := tp.caState
			tp.caState = tcpCAOpen
			tp.dupAcks = 0
			tp.undoEnd = tp.sndNxt
			if was == tcpCARecovery && tp.undoMarker != 0 {
				tp.cwnd = max(tp.ssthresh, 2)
			}
			return
		}
		lost := false
		if !tp.sackOK && advanced && tp.caState == tcpCARecovery {
			tp.markHeadLost() // NewReno partial ACK
			lost = true
		}
		if tp.sackOK {
			lost = tp.markLostSack() || lost
		}
		if tp.caState == tcpCARecovery {
			tp.cwndReduction(ackedSacked, lost, advanced)
		}
		tp.xmitRetransmitQueue()
		return
	}
	if isDupack {
		tp.dupAcks++
	} else if advanced {
		tp.dupAcks = 0
	}
	lost := false
	if tp.sackOK {
		lost = tp.markLostSack()
	}
	if !lost && uint32(tp.dupAcks) >= tp.reordering {
		tp.markHeadLost()
		lost = true
	}
	if lost && tp.lostOut > 0 {
		tp.enterRecovery()
		tp.cwndReduction(ackedSacked, true, advanced)
		tp.xmitRetransmitQueue()
		return
	}
	if tp.sackedOut > 0 || tp.dupAcks > 0 {
		tp.caState = tcpCADisorder
	} else {
		tp.caState = tcpCAOpen
	}
}
