package netstack

import (
	"sync"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// The socket lock and the socket backlog (include/net/sock.h socket_lock_t,
// net/core/sock.c lock_sock/release_sock/__release_sock, tcp_add_backlog).
//
// A TCP socket is owned either by a user context (a socket call, which holds
// it across sleeps by dropping and retaking ownership) or, for the length of
// one segment or timer, by softirq-side code holding the spinlock with the
// socket not owned. Segment input never waits for a user: when the socket is
// owned it queues the segment on sk_backlog (bounded by tcp_add_backlog's
// limit) and the owner processes it in release_sock. Timers that find the
// socket owned defer their work to release_sock (tcp_release_cb) or retry
// later, as Linux's do. Either context has exclusive use of the TCP state.

// sockLock is the socket lock. Mirrors socket_lock_t: slock is the
// spinlock taken by softirq-side code (bh_lock_sock) and, briefly, by
// lock_sock/release_sock; owned is sk_lock.owned; wq (a condition on slock)
// is sk_lock.wq, where lock_sock sleeps while another user owns the socket.
type sockLock struct {
	slock   sync.Mutex
	owned   bool
	waiters int
	wq      sync.Cond
}

// Deferred work flags (tsq_flags bits of tcp_release_cb).
const (
	tcpWriteTimerDeferred  = 1 << iota // TCP_WRITE_TIMER_DEFERRED
	tcpDelackTimerDeferred             // TCP_DELACK_TIMER_DEFERRED
	tcpAckDeferred                     // TCP_ACK_DEFERRED (a receive batch's ACK, rxBatch)
	tcpTsqDeferred                     // TCP_TSQ_DEFERRED: the pacing timer's work (tcp_pacing.go)
	tcpMtuReducedDeferred              // TCP_MTU_REDUCED_DEFERRED: a fragmentation-needed (tcp_err.go)
)

// lockSock takes ownership of the socket for a user context, sleeping while
// another user owns it. Softirq-side code never holds the spinlock for long,
// so the wait is only for other users. Mirrors lock_sock.
func (tp *TCPSock) lockSock() {
	l := &tp.mu
	l.slock.Lock()
	for l.owned { // __lock_sock
		l.waiters++
		l.wq.Wait()
		l.waiters--
	}
	l.owned = true
	l.slock.Unlock()
}

// releaseSock gives up ownership: first it processes every segment queued
// on the backlog while the socket was owned, then the deferred timer work,
// then it wakes a user waiting in lockSock. Mirrors release_sock.
func (tp *TCPSock) releaseSock() {
	l := &tp.mu
	l.slock.Lock()
	if !tp.skBacklog.Empty() {
		tp.releaseBacklog()
	}
	tp.releaseCb()
	l.owned = false
	if l.waiters > 0 {
		l.wq.Signal()
	}
	l.slock.Unlock()
}

// bhLockSock takes the spinlock for softirq-side work and reports whether
// the socket is owned by a user (sock_owned_by_user); the caller must then
// not touch the TCP state beyond queueing to the backlog. Mirrors
// bh_lock_sock.
func (tp *TCPSock) bhLockSock() bool {
	tp.mu.slock.Lock()
	return tp.mu.owned
}

// bhUnlockSock mirrors bh_unlock_sock.
func (tp *TCPSock) bhUnlockSock() { tp.mu.slock.Unlock() }

// releaseBacklog processes the backlog in batches: it takes the whole queue,
// drops the spinlock while processing it (so input can queue more), and
// loops until the queue is empty. backlog.len is reset only at the end, so a
// flood during the processing still meets the limit. Caller holds slock and
// owns the socket. Mirrors __release_sock.
//
// Each pass is a receive batch (backlogBatch): an ACK that
// __tcp_ack_snd_check would send at once for more than one full segment,
// or that SACK compression merges, goes once at the end of the pass. See
// rxBatch for why; Linux sends the merged SACKs from its compressed-ACK
// hrtimer instead, and acknowledges the in-order data the backlog
// coalesced (tcp_add_backlog) once per coalesced skb.
func (tp *TCPSock) releaseBacklog() {
	for !tp.skBacklog.Empty() {
		tp.blProc.Splice(&tp.skBacklog)
		tp.mu.slock.Unlock()
		tp.inBacklogRcv = true
		tp.rxb = &backlogBatch
		for b := tp.blProc.PopFront(); b != nil; b = tp.blProc.PopFront() {
			tp.backlogRcv(b)
		}
		tp.rxb = nil
		tp.inBacklogRcv = false
		if tp.backlogAckDue {
			tp.backlogAckDue = false
			tp.sendBatchAck()
		}
		tp.mu.slock.Lock()
	}
	tp.sk.ResetBacklog()
}

// backlogRcv processes one segment taken from the backlog. The skb still
// holds its TCP header in front of the data (TransportHeader), so the
// header and options are read again. Mirrors sk_backlog_rcv ->
// tcp_v4_do_rcv.
func (tp *TCPSock) backlogRcv(b *skb.SKB) {
	if tp.destroyed {
		// The user closed the socket while segments were queued; Linux
		// answers them from TCP_CLOSE with a RST, but here the socket's
		// memory is already gone, so they are dropped.
		tp.dropReason(b)
		b.Free()
		return
	}
	th := tcpHeaderOf(b)
	var opts header.TCPOptions
	header.ParseTCPOptions(th.Options(), &opts)
	if !tp.doRcv(b, th, &opts, tcpTupleOf(b, th)) {
		b.Free()
	}
}

// tcpHeaderOf returns the TCP header of a received skb whose data was pulled
// past it, extending over the linear payload as at input.
func tcpHeaderOf(b *skb.SKB) header.TCP {
	return header.TCP(b.Head()[b.TransportHeader : b.DataOffset()+b.HeadLen()])
}

// tcpTupleOf returns the connection tuple of a received segment, from our
// point of view.
func tcpTupleOf(b *skb.SKB, th header.TCP) tcpTuple {
	src, dst := skbNetAddrs(b)
	return tcpTuple{laddr: dst, raddr: src, lport: th.DstPort(), rport: th.SrcPort()}
}

// doRcv dispatches a segment by state, from softirq-side input or from the
// backlog. It returns true if it kept b. Mirrors tcp_v4_do_rcv.
func (tp *TCPSock) doRcv(b *skb.SKB, th header.TCP, opts *header.TCPOptions, tu tcpTuple) bool {
	if tp.state == TCPListen {
		return tp.listenProcess(b, th, opts, tu, 0)
	}
	return tp.rcv(b, th, opts)
}

// addBacklog queues a segment that arrived while the socket was owned. It
// first tries to merge it into the backlog's tail (same flow, contiguous,
// only ACK/PSH/FIN, identical options), charging backlog.len with the
// truesize delta and counting TCPBacklogCoalesce; otherwise it appends it if
// backlog.len + rmem_alloc is within 2*rcvbuf + sndbuf/2 + 64 KiB. It
// returns false if b was dropped (TCPBacklogDrop and sk_drops counted) or
// merged; either way the caller frees b. Caller holds slock. Mirrors
// tcp_add_backlog (+ sk_add_backlog).
//
// A listener's backlog (see listenRcvWithISN) mixes flows, so coalesce is
// false there.
func (tp *TCPSock) addBacklog(b *skb.SKB, th header.TCP, coalesce bool) bool {
	if tail := tp.skBacklog.PeekTail(); coalesce && tail != nil && tp.backlogCoalesce(tail, b, th) {
		tp.stack.mib.Inc(memctl.TcpExtTCPBacklogCoalesce)
		return false
	}
	if err := tp.sk.AddBacklog(b.Truesize(), tp.sk.TCPBacklogLimit()); err != nil {
		tp.stack.mib.Inc(memctl.TcpExtTCPBacklogDrop)
		tp.dropReason(b) // discard_and_relse: sk_drops_skbadd
		return false
	}
	tp.skBacklog.PushBack(b)
	return true
}

// backlogCoalesce merges from into the backlog's tail when tcp_add_backlog
// allows it, updating the tail's end_seq, ack_seq, window and flags, and
// adding the truesize delta (0 for a copy into the tail's tailroom, the
// stolen fragments' size otherwise, as skb_try_coalesce computes it) to
// backlog.len.
func (tp *TCPSock) backlogCoalesce(tail, from *skb.SKB, th header.TCP) bool {
	const noMerge = tcpSyn | tcpRst | uint8(header.TCPFlagUrg)
	const ecn = uint8(header.TCPFlagEce | header.TCPFlagCwr)
	tf, ff := cbGetFlags(tail), cbGetFlags(from)
	thTail := tcpHeaderOf(tail)
	if cbGetEndSeq(tail) != cbGetSeq(from) || cbGetDsfield(tail) != cbGetDsfield(from) ||
		(tf|ff)&noMerge != 0 || tf&ff&tcpAck == 0 ||
		(tf^ff)&ecn != 0 || thTail.DataOffset() != th.DataOffset() ||
		string(thTail.Options()) != string(th.Options()) || tail.Cloned() {
		return false
	}
	l := from.Len()
	delta := 0
	switch {
	case l <= tail.Tailroom() && !tail.IsNonlinear():
		from.CopyBits(0, tail.Put(l))
	case from.HeadLen() == 0 && tail.NrFrags()+from.NrFrags() <= skb.MaxFrags:
		for i := 0; i < from.NrFrags(); i++ {
			f := from.Frag(i)
			f.Page.Get()
			if !tail.AddFrag(f.Page, f.Off, f.Size) {
				f.Page.Put()
				panic("tcp: backlog coalesce frag overflow")
			}
		}
		delta = from.Truesize() - skb.CurrentProfile().TruesizeOf(from.EndOffset())
		tail.AddTruesize(delta)
		from.AddTruesize(-delta)
	default:
		return false
	}
	tp.skBacklog.Resized(tail.Len()-l, tail.Len())
	cbSetEndSeq(tail, cbGetEndSeq(from))
	if !seqLT(cbGetAckSeq(from), cbGetAckSeq(tail)) {
		cbSetAckSeq(tail, cbGetAckSeq(from))
		thTail.SetAck(cbGetAckSeq(from))
		thTail.SetWindow(th.Window())
	}
	// The header's FIN too, so that a later reader of the header sees it.
	thTail.SetFlags(thTail.Flags() | th.Flags()&header.TCPFlagFin)
	cbSetFlags(tail, tf|ff)
	if delta > 0 {
		tp.sk.AddBacklog(delta, 1<<32-1) // backlog.len += delta; never refused
	}
	return true
}

// runTimerWork does the work of the timer whose deferred-work flag is
// flag under the socket spinlock or, if a user owns the socket, leaves it
// to release_sock (tcp_write_timer, tcp_delack_timer, tcp_tsq_handler).
func (tp *TCPSock) runTimerWork(flag uint8) {
	if tp.bhLockSock() {
		tp.deferred |= flag
		tp.bhUnlockSock()
		return
	}
	defer tp.bhUnlockSock()
	switch flag {
	case tcpTsqDeferred:
		tp.tsqWrite()
	case tcpWriteTimerDeferred:
		tp.writeTimerHandler()
	case tcpDelackTimerDeferred:
		tp.delackTimerHandler()
	}
}

// releaseCb runs the timer work deferred while the socket was owned.
// Caller holds slock and owns the socket. Mirrors tcp_release_cb.
func (tp *TCPSock) releaseCb() {
	f := tp.deferred
	if f == 0 {
		return
	}
	tp.deferred = 0
	if f&tcpTsqDeferred != 0 {
		tp.tsqWrite()
	}
	if f&tcpWriteTimerDeferred != 0 {
		tp.writeTimerHandler()
	}
	if f&tcpDelackTimerDeferred != 0 {
		tp.delackTimerHandler()
	}
	if f&tcpMtuReducedDeferred != 0 && !tp.destroyed {
		// The quoted sequence is checked now that the state is ours.
		if seqBetween(tp.mtuInfoSeq, tp.sndUna, tp.sndNxt) {
			tp.mtuReduced()
		} else {
			tp.stack.mib.Inc(memctl.TcpExtOutOfWindowIcmps)
		}
	}
	if f&tcpAckDeferred != 0 {
		tp.sendBatchAck()
	}
}

// tcpTimerRetry is how long a timer that finds the socket owned waits before
// trying again, where Linux retries rather than defers (HZ/20).
const tcpTimerRetry = 50 * time.Millisecond

// ownerLocker is the socket's lock_sock/release_sock pair as a sync.Locker,
// for the memctl waits that drop the socket lock while they sleep
// (sk_stream_wait_memory).
type ownerLocker TCPSock

func (o *ownerLocker) Lock()   { (*TCPSock)(o).lockSock() }
func (o *ownerLocker) Unlock() { (*TCPSock)(o).releaseSock() }
