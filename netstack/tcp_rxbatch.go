package netstack

// rxBatch collects, while a device's batch of received packets is being
// processed, the connections that decided to acknowledge at once because
// more than one full segment arrived (__tcp_ack_snd_check's first case),
// or whose duplicate ACKs SACK compression merges (sackCompress), and
// sends one ACK for each when the batch is done.
//
// Deviation, on purpose: Linux gets the same effect from GRO, which merges
// a flow's consecutive segments of one NAPI poll into one skb, so TCP sees
// one large segment and acknowledges it once. A device's plain receive
// path has no GRO here (a TUN read gives one packet; GRO runs only after
// an In impairment stage, gro.go), and without it every second segment
// cost a write(2) of an ACK into the TUN, inside which the kernel runs its
// TCP input for that ACK: with four kernel senders that was 57% of the
// stack's CPU, and the TUN ring overflowed. ACKs in quick-ack mode, forced by ICSK_ACK_NOW,
// and the first three duplicate ACKs for a hole are not deferred, so the
// sender's fast retransmit is as prompt as before.
// Only the device's goroutine touches a batch (NetifRx calls for one
// device never overlap).
type rxBatch struct {
	acks []*TCPSock
	// backlog marks backlogBatch, the batch of a socket owner's pass over
	// its own backlog (releaseBacklog): its one connection's ACK is due at
	// the end of the pass (TCPSock.backlogAckDue), so the batch itself
	// holds nothing and one value serves every socket.
	backlog bool
}

// backlogBatch is the receive batch of every releaseBacklog pass.
var backlogBatch = rxBatch{backlog: true}

// deferAck queues tp's ACK for the end of the batch. Caller holds tp's
// spinlock and does not own tp (softirq context), or, for backlogBatch,
// owns tp.
func (rx *rxBatch) deferAck(tp *TCPSock) {
	if rx.backlog {
		tp.backlogAckDue = true
		return
	}
	if !tp.ackDeferred {
		tp.ackDeferred = true
		rx.acks = append(rx.acks, tp)
	}
}

// flush sends the deferred ACKs, each acknowledging everything its
// connection received in the batch. A connection a user owns by now must
// not be touched here: its owner sends the ACK in release_sock
// (TCP_ACK_DEFERRED, handled by tcp_release_cb).
func (rx *rxBatch) flush() {
	for i, tp := range rx.acks {
		owned := tp.bhLockSock()
		tp.ackDeferred = false
		if owned {
			tp.deferred |= tcpAckDeferred
		} else {
			tp.sendBatchAck()
		}
		tp.bhUnlockSock()
		rx.acks[i] = nil
	}
	rx.acks = rx.acks[:0]
}

// Linux's defaults for SACK compression: sysctl tcp_comp_sack_nr and
// TCP_FASTRETRANS_THRESH.
const (
	tcpFastRetransThresh = 3
)
