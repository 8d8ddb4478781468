package netstack

import (
	"math"
	"math/bits"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// This file holds TCP's memory paths: window from buffer space, the initial
// window, rcv_ssthresh growth, receive autotuning (DRS), receive-memory
// admission with pruning and collapsing, and send-buffer growth and
// write-space wake-ups. The rules are shared/research/linux-skmem.md 1.8
// and 1.9 (Linux 6.18).

// winFromSpace converts buffer space to window. Mirrors tcp_win_from_space.
func (tp *TCPSock) winFromSpace(space int) int {
	return int((int64(space) * int64(tp.scalingRatio)) >> 8)
}

// spaceFromWin is the inverse. Mirrors tcp_space_from_win.
func (tp *TCPSock) spaceFromWin(win int) int {
	return int((uint64(win) << 8) / uint64(tp.scalingRatio))
}

// tcpSpace is the window the free receive space allows (can be negative).
// Mirrors tcp_space.
func (tp *TCPSock) tcpSpace() int {
	return tp.winFromSpace(tp.sk.Rcvbuf() - tp.sk.BacklogLen() - tp.sk.RmemAlloc())
}

// tcpFullSpace mirrors tcp_full_space.
func (tp *TCPSock) tcpFullSpace() int { return tp.winFromSpace(tp.sk.Rcvbuf()) }

func (tp *TCPSock) underPressure() bool { return tp.stack.net.TCP.UnderMemoryPressure() }

// selectInitialWindow picks rcv_wnd, window_clamp and the window scale of a
// SYN or SYN-ACK. Mirrors tcp_select_initial_window.
func (tp *TCPSock) selectInitialWindow(mss int) {
	sys := tp.stack.net.Sysctls
	if tp.sk.Userlocks()&memctl.SockRcvbufLock != 0 && (tp.windowClamp == 0 || int(tp.windowClamp) > tp.tcpFullSpace()) {
		tp.windowClamp = uint32(tp.tcpFullSpace())
	}
	space := max(0, tp.tcpFullSpace())
	if tp.windowClamp == 0 {
		tp.windowClamp = 65535 << tcpMaxWscale
	}
	space = min(space, int(tp.windowClamp))
	if space > mss {
		space = space / mss * mss
	}
	if sys.TCPWorkaroundSignedWindows() != 0 {
		tp.rcvWnd = uint32(min(space, 32767))
	} else {
		tp.rcvWnd = uint32(space)
	}
	ws := 0
	if tp.wscaleOK || (tp.state == TCPSynSent || tp.state == TCPClose) && sys.TCPWindowScaling() {
		s := max(space, sys.TCPRmem()[2], sys.RmemMax())
		s = min(s, int(tp.windowClamp))
		if s > 0 {
			ws = bits.Len(uint(s)) - 1 - 15
		}
		ws = max(0, min(ws, tcpMaxWscale))
	}
	tp.rcvWscale = uint8(ws)
	tp.windowClamp = min(uint32(65535)<<ws, tp.windowClamp)
	tp.rcvSsthresh = tp.rcvWnd
}

// initBufferSpace sizes the buffers once the connection is established.
// Mirrors tcp_init_buffer_space (and tcp_sndbuf_expand through it).
func (tp *TCPSock) initBufferSpace() {
	if tp.sk.Userlocks()&memctl.SockSndbufLock == 0 {
		tp.sk.TCPSndbufExpand(tp.mssClamp, tp.mssCache, int(tp.cwnd), int(tp.reordering), tp.cc.sndbufExpand())
	}
	appWin := int(tp.stack.net.Sysctls.TCPAppWin())
	maxwin := tp.tcpFullSpace()
	clamp := int(tp.windowClamp)
	adv := tp.advmss
	if clamp >= maxwin {
		clamp = maxwin
		if appWin != 0 && maxwin > 4*adv {
			clamp = max(maxwin-(maxwin>>appWin), 4*adv)
		}
	}
	if appWin != 0 && clamp > 2*adv && clamp+adv > maxwin {
		clamp = max(2*adv, maxwin-adv)
	}
	tp.windowClamp = uint32(clamp)
	tp.rcvSsthresh = min(tp.rcvSsthresh, tp.windowClamp)
	tp.rcvqSpace = min(int(tp.rcvSsthresh), int(tp.rcvWnd), tcpInitCwnd*adv)
	tp.rcvqSeq = tp.copiedSeq
	tp.rcvqTime = tp.now()
	tp.lsndtime = tp.now()
}

// measureRcvMss tracks the peer's segment size and the skb len/truesize
// ratio (truesize: b's as it arrived). A super-packet (a TUN's offload)
// counts by its gso_size, the sender's segment size, while the ratio uses
// its whole length. It also marks pushed data for tcp_cleanup_rbuf: a
// full-sized segment with PSH (likely the end of a write), or any segment
// below rcv_mss that is not the size of the last one (a second one marks
// ICSK_ACK_PUSHED2). Mirrors tcp_measure_rcv_mss.
func (tp *TCPSock) measureRcvMss(b *skb.SKB, truesize int) {
	lss := tp.lastSegSize
	tp.lastSegSize = 0
	l := b.Len()
	if gs := int(b.Shared().GSOSize); gs != 0 {
		l = gs
	}
	if l >= tp.rcvMss {
		if l != tp.rcvMss && truesize > 0 {
			r := max(1, (b.Len()<<8)/truesize)
			r = min(r, 255)
			if uint8(r) != tp.scalingRatio {
				tp.scalingRatio = uint8(r)
				clamp := tp.winFromSpace(tp.sk.Rcvbuf())
				tp.setWindowClamp(clamp)
				tp.rcvqSpace = min(tp.rcvqSpace, int(tp.windowClamp))
			}
		}
		tp.rcvMss = min(l, tp.advmss)
		if cbGetFlags(b)&tcpPsh != 0 {
			tp.ackPending |= icskAckPushed
		}
		return
	}
	// Below rcv_mss: count the header in, then take out the invariant
	// one, so that SACK blocks (variable) do not hide a steady size.
	l += header.TCP(b.Head()[b.TransportHeader:]).DataOffset()
	const tcpRemnant = tcpFin | tcpSyn | tcpPsh | uint8(header.TCPFlagUrg)
	if l >= tcpMssDefault+header.TCPMinSize ||
		(l >= tcpMinMss+header.TCPMinSize && cbGetFlags(b)&tcpRemnant == 0) {
		l -= tp.tcpHeaderLen()
		tp.lastSegSize = l
		if l == lss {
			tp.rcvMss = l
			return
		}
	}
	if tp.ackPending&icskAckPushed != 0 {
		tp.ackPending |= icskAckPushed2
	}
	tp.ackPending |= icskAckPushed
}

// setWindowClamp sets window_clamp to v (at least SOCK_MIN_RCVBUF/2) and
// moves rcv_ssthresh with it: down to a smaller clamp
// (__tcp_adjust_rcv_ssthresh, with no SO_RESERVE_MEM memory to keep), up
// to min(rcv_wnd, clamp) for a larger one. Mirrors the non-zero case of
// tcp_set_window_clamp, which tcp_measure_rcv_mss goes through when the
// scaling ratio changes: the live 6.18 kernel's rcv_ssthresh after the
// first data segment (7104 for 1000 bytes, 8800 for 1448, 7990 for a
// 2896-byte super-packet, tcp_rmem 4096 16384 65536) needs the raise.
func (tp *TCPSock) setWindowClamp(v int) {
	v = max(v, tp.sk.Net().Profile.SockMinRcvbuf()/2)
	old := tp.windowClamp
	if uint32(v) == old {
		return
	}
	tp.windowClamp = uint32(v)
	if tp.windowClamp < old {
		tp.rcvSsthresh = min(tp.rcvSsthresh, tp.windowClamp)
	} else {
		tp.rcvSsthresh = max(min(tp.rcvWnd, tp.windowClamp), tp.rcvSsthresh)
	}
}

// growWindow raises rcv_ssthresh when a well-filled segment arrives;
// truesize is b's as it arrived and space is tcp_space at that point of
// Linux's path. With adjust (in-order data), a segment whose payload is
// all in page fragments counts without its head, which coalescing will
// free (truesize_adjust). Mirrors tcp_grow_window / __tcp_grow_window.
func (tp *TCPSock) growWindow(b *skb.SKB, truesize int, adjust bool, space int) {
	room := min(int(tp.windowClamp), space) - int(tp.rcvSsthresh)
	if room <= 0 {
		return
	}
	if tp.underPressure() {
		tp.rcvSsthresh = min(tp.rcvSsthresh, uint32(4*tp.advmss))
		return
	}
	l := b.Len()
	ts := truesize
	if adjust && b.HeadLen() == 0 {
		if t := ts - skb.CurrentProfile().TruesizeOf(b.EndOffset()); t >= l {
			ts = t
		}
	}
	incr := 0
	if tp.winFromSpace(ts) <= l {
		incr = 2 * tp.advmss
	} else {
		t := tp.winFromSpace(ts) >> 1
		w := tp.winFromSpace(tp.stack.net.Sysctls.TCPRmem()[2]) >> 1
		for int(tp.rcvSsthresh) <= w {
			if t <= l {
				incr = 2 * tp.rcvMss
				break
			}
			t >>= 1
			w >>= 1
		}
	}
	if incr > 0 {
		incr = max(incr, 2*l)
		tp.rcvSsthresh += uint32(min(room, incr))
		tp.ackQuick = max(tp.ackQuick, 1) // inet_csk(sk)->icsk_ack.quick |= 1
	}
}

// clampWindow reacts to a receive queue over rcvbuf: grow rcvbuf to what is
// queued if allowed, else shrink rcv_ssthresh. Mirrors tcp_clamp_window.
func (tp *TCPSock) clampWindow() {
	tp.ackQuick = 0
	sys := tp.stack.net.Sysctls
	rmem2 := sys.TCPRmem()[2]
	rmem := tp.sk.RmemAlloc()
	if tp.sk.Rcvbuf() < rmem2 && tp.sk.Userlocks()&memctl.SockRcvbufLock == 0 && !tp.underPressure() &&
		tp.stack.net.TCP.MemoryAllocated() < tp.stack.net.TCP.MemLimit(0) {
		tp.sk.SetRcvbuf(min(rmem, rmem2))
	}
	if rmem > tp.sk.Rcvbuf() {
		tp.rcvSsthresh = min(tp.windowClamp, uint32(2*tp.advmss))
	}
}

// canIngest is the recommended 6.18.y rule: rmem_alloc <= rcvbuf. Mirrors
// tcp_can_ingest after 026dfef287c0.
func (tp *TCPSock) canIngest() bool { return tp.sk.RmemAlloc() <= tp.sk.Rcvbuf() }

// tryRmemSchedule admits size bytes of receive memory, pruning if needed.
// Mirrors tcp_try_rmem_schedule.
func (tp *TCPSock) tryRmemSchedule(in *skb.SKB, size int) bool {
	if !tp.canIngest() || !tp.sk.RmemSchedule(size) {
		if tp.pruneQueue(in) < 0 {
			return false
		}
		for !tp.sk.RmemSchedule(size) {
			if !tp.pruneOfoQueue(in) {
				return false
			}
		}
	}
	return true
}

// pruneQueue tries to get under rcvbuf by clamping, collapsing and pruning
// the out-of-order queue. Mirrors tcp_prune_queue.
func (tp *TCPSock) pruneQueue(in *skb.SKB) int {
	if tp.sk.RmemAlloc() == 0 {
		return -1
	}
	mib := tp.stack.mib
	mib.Inc(memctl.TcpExtPruneCalled)
	if !tp.canIngest() {
		tp.clampWindow()
	} else if tp.underPressure() {
		tp.rcvSsthresh = min(tp.rcvSsthresh, uint32(4*tp.advmss))
	}
	if tp.canIngest() {
		return 0
	}
	tp.collapseOfoQueue()
	if !tp.rcvq.Empty() {
		tp.collapse(&tp.rcvq, tp.copiedSeq, tp.rcvNxt)
	}
	tp.sk.MemReclaim()
	if tp.canIngest() {
		return 0
	}
	tp.pruneOfoQueue(in)
	if tp.canIngest() {
		return 0
	}
	mib.Inc(memctl.TcpExtRcvPruned)
	return -1
}

// collapse copies the data of the skbs of q between start and end that are
// worth it (bloated, overlapping or followed by a gap) into compact skbs of
// up to 3776 payload bytes, freeing the originals. Mirrors tcp_collapse.
func (tp *TCPSock) collapse(q *skb.Queue, start, end uint32) {
	// Free skbs wholly before start and find the first worth collapsing.
	b := q.Peek()
	for b != nil {
		next := b.Next()
		if !seqLT(start, cbGetEndSeq(b)) { // wholly consumed
			q.Unlink(b)
			b.Free()
			tp.stack.mib.Inc(memctl.TcpExtTCPRcvCollapsed)
			b = next
			continue
		}
		fl := cbGetFlags(b)
		if fl&(tcpSyn|tcpFin) == 0 && (tp.winFromSpace(b.Truesize()) > b.Len() || seqLT(cbGetSeq(b), start) ||
			(next != nil && cbGetSeq(next) != cbGetEndSeq(b))) {
			break
		}
		if next == nil || fl&(tcpSyn|tcpFin) != 0 {
			return
		}
		start = cbGetEndSeq(b)
		b = next
	}
	if b == nil {
		return
	}
	for seqLT(start, end) && b != nil {
		if cbGetFlags(b)&(tcpSyn|tcpFin) != 0 {
			return
		}
		size := min(tcpCollapseMax, int(end-start))
		nskb := skb.Alloc(size)
		cbSetSeq(nskb, start)
		cbSetEndSeq(nskb, start)
		cbSetFlags(nskb, 0)
		q.InsertBefore(b, nskb)
		memctl.SetOwnerR(nskb, tp.sk)
		for size > 0 && b != nil {
			off := int(start - cbGetSeq(b))
			if off < 0 {
				return
			}
			avail := b.Len() - off
			if avail > 0 {
				n := min(avail, size)
				old := nskb.Len()
				b.CopyBits(off, nskb.Put(n))
				q.Resized(old, old+n)
				cbSetEndSeq(nskb, cbGetEndSeq(nskb)+uint32(n))
				start += uint32(n)
				size -= n
			}
			if !seqLT(start, cbGetEndSeq(b)) {
				next := b.Next()
				q.Unlink(b)
				b.Free()
				tp.stack.mib.Inc(memctl.TcpExtTCPRcvCollapsed)
				b = next
				if b == nil || cbGetFlags(b)&(tcpSyn|tcpFin) != 0 {
					return
				}
			}
		}
	}
}

// collapseOfoQueue collapses each contiguous range of the out-of-order
// queue that is more than one small skb. Mirrors tcp_collapse_ofo_queue.
func (tp *TCPSock) collapseOfoQueue() {
	b := tp.ofo.Peek()
	if b == nil {
		return
	}
	sumTiny := 0
	rangeTrue := 0
	for b != nil {
		head := b
		start, end := cbGetSeq(b), cbGetEndSeq(b)
		n := 0
		rangeTrue = 0
		for b != nil && !seqGT(cbGetSeq(b), end) {
			if seqGT(cbGetEndSeq(b), end) {
				end = cbGetEndSeq(b)
			}
			rangeTrue += b.Truesize()
			n++
			b = b.Next()
		}
		if n == 1 && int(end-start) < tcpCollapseMax {
			sumTiny += rangeTrue
			if sumTiny > tp.sk.Rcvbuf()>>3 {
				return
			}
			continue
		}
		tp.collapseRange(&tp.ofo, head, b, start, end)
	}
}

// collapseRange collapses [head, stop) of q covering start..end.
func (tp *TCPSock) collapseRange(q *skb.Queue, head, stop *skb.SKB, start, end uint32) {
	b := head
	for seqLT(start, end) && b != nil && b != stop {
		size := min(tcpCollapseMax, int(end-start))
		nskb := skb.Alloc(size)
		cbSetSeq(nskb, start)
		cbSetEndSeq(nskb, start)
		cbSetFlags(nskb, 0)
		q.InsertBefore(b, nskb)
		memctl.SetOwnerR(nskb, tp.sk)
		for size > 0 && b != nil && b != stop {
			off := int(start - cbGetSeq(b))
			avail := b.Len() - off
			if off >= 0 && avail > 0 {
				n := min(avail, size)
				old := nskb.Len()
				b.CopyBits(off, nskb.Put(n))
				q.Resized(old, old+n)
				cbSetEndSeq(nskb, cbGetEndSeq(nskb)+uint32(n))
				start += uint32(n)
				size -= n
			}
			if !seqLT(start, cbGetEndSeq(b)) || off < 0 {
				next := b.Next()
				fin := cbGetFlags(b) & tcpFin
				q.Unlink(b)
				b.Free()
				tp.stack.mib.Inc(memctl.TcpExtTCPRcvCollapsed)
				if fin != 0 {
					cbSetFlags(nskb, tcpFin)
					cbSetEndSeq(nskb, cbGetEndSeq(nskb)+1)
					return
				}
				b = next
			}
		}
	}
}

// pruneOfoQueue drops out-of-order skbs from the highest sequence down
// until rcvbuf/8 has been freed and the socket can ingest. Mirrors
// tcp_prune_ofo_queue.
func (tp *TCPSock) pruneOfoQueue(in *skb.SKB) bool {
	if tp.ofo.Empty() {
		return false
	}
	goal := tp.sk.Rcvbuf() >> 3
	pruned := false
	for b := tp.ofo.PeekTail(); b != nil; b = tp.ofo.PeekTail() {
		if in != nil && seqGT(cbGetSeq(in), cbGetSeq(b)) {
			break
		}
		goal -= b.Truesize()
		tp.ofo.Unlink(b)
		tp.dropReason(b) // TCP_OFO_QUEUE_PRUNE
		b.Free()
		pruned = true
		if goal <= 0 || tp.ofo.Empty() {
			tp.sk.MemReclaim()
			if tp.canIngest() && !tp.underPressure() {
				break
			}
			goal = tp.sk.Rcvbuf() >> 3
		}
	}
	if pruned {
		tp.stack.mib.Inc(memctl.TcpExtOfoPruned)
		tp.numSacks = 0
		tp.sk.MemReclaim()
	}
	return pruned
}

// selectWindowRaw computes the window to offer from free space. Mirrors
// __tcp_select_window.
func (tp *TCPSock) selectWindowRaw() uint32 {
	mss := tp.rcvMss
	free := tp.tcpSpace()
	allowed := tp.tcpFullSpace()
	full := min(int(tp.windowClamp), allowed)
	if mss > full {
		mss = full
		if mss <= 0 {
			return 0
		}
	}
	if free < full/2 {
		tp.ackQuick = 0
		if tp.underPressure() {
			tp.rcvSsthresh = min(tp.rcvSsthresh, uint32(4*tp.advmss))
		}
		free = free &^ ((1 << tp.rcvWscale) - 1)
		if free < allowed/16 || free < mss {
			return 0
		}
	}
	free = min(free, int(tp.rcvSsthresh))
	var window int
	if tp.rcvWscale != 0 {
		a := 1 << tp.rcvWscale
		window = (free + a - 1) &^ (a - 1)
	} else {
		window = int(tp.rcvWnd)
		if window <= free-mss || window > free {
			window = free / mss * mss
		} else if mss == full && free > window+full/2 {
			window = free
		}
	}
	return uint32(max(window, 0))
}

// receiveWindow is what remains of the window last offered. Mirrors
// tcp_receive_window.
func (tp *TCPSock) receiveWindow() uint32 {
	w := int32(tp.rcvWup + tp.rcvWnd - tp.rcvNxt)
	if w < 0 {
		return 0
	}
	return uint32(w)
}

// selectWindow chooses the window field of an outgoing segment: never
// shrinking what was offered, zero after a memory drop, counting the
// zero-window transitions. Mirrors tcp_select_window.
func (tp *TCPSock) selectWindow() uint16 {
	mib := tp.stack.mib
	old := tp.rcvWnd
	var newWin uint32
	if tp.ackPending&icskAckNoMem != 0 {
		tp.ackPending &^= icskAckNoMem
		newWin = 0 // and pred_flags cleared below
	} else {
		cur := tp.receiveWindow()
		newWin = tp.selectWindowRaw()
		if newWin < cur {
			if newWin == 0 {
				mib.Inc(memctl.TcpExtTCPWantZeroWindowAdv)
			}
			a := uint32(1) << tp.rcvWscale
			newWin = (cur + a - 1) &^ (a - 1)
		}
	}
	tp.rcvWnd = newWin
	tp.rcvWup = tp.rcvNxt
	if tp.rcvWscale == 0 {
		newWin = min(newWin, 65535)
	} else {
		newWin = min(newWin, uint32(65535)<<tp.rcvWscale)
	}
	newWin >>= tp.rcvWscale
	if newWin == 0 {
		tp.predOn = false // a zero window disables the fast path
		if old != 0 {
			mib.Inc(memctl.TcpExtTCPToZeroWindowAdv)
		}
	} else if old == 0 {
		mib.Inc(memctl.TcpExtTCPFromZeroWindowAdv)
	}
	return uint16(newWin)
}

// rcvRttUpdate folds an RTT sample (us) into the receiver's estimate.
// Mirrors tcp_rcv_rtt_update.
func (tp *TCPSock) rcvRttUpdate(sample uint32, winDep bool) {
	newSample := tp.rcvRttUs
	m := int64(sample)
	if newSample != 0 {
		if m<<3 < int64(newSample) {
			newSample = uint32(m << 3)
		} else if winDep || !tp.rcvq.Empty() {
			return
		} else {
			newSample = uint32(int64(newSample) - int64(newSample>>3) + m)
		}
	} else {
		newSample = uint32(m << 3)
	}
	tp.rcvRttUs = max(newSample, 1)
}

// rcvRttMeasure times one window's worth of data: from the moment rcv_nxt
// was some point to the moment it passed that point plus the window. Linux
// runs it for all data (tcp_event_data_recv), timestamps or not: with
// millisecond timestamps it is the only source of sub-millisecond samples
// (see rcvRttMeasureTS). Mirrors tcp_rcv_rtt_measure.
func (tp *TCPSock) rcvRttMeasure() {
	if tp.rcvRttTime == 0 {
		goto newMeasure
	}
	if seqLT(tp.rcvNxt, tp.rcvRttSeq) {
		return
	}
	tp.rcvRttUpdate(uint32(max((tp.now()-tp.rcvRttTime)/int64(time.Microsecond), 1)), true)
newMeasure:
	tp.rcvRttSeq = tp.rcvNxt + tp.rcvWnd
	tp.rcvRttTime = tp.now()
}

// rcvRttMeasureTS takes an RTT sample from the TSecr of a segment at
// least rcv_mss long, once per echoed value. A delta of 0 ms gives no
// sample: since Linux 6.16 (d59fc95be9d0, "tcp: remove zero TCP TS samples
// for autotuning") tcp_rtt_tsopt_us is called with min_delta 0 here, because
// counting it as 1 ms (as before) made a sub-millisecond path look 1 ms
// long to DRS. The window-based rcvRttMeasure covers those paths. Mirrors
// tcp_rcv_rtt_measure_ts.
//
// A TSecr of 0 is no echo at all (the peer had nothing to echo); Linux
// 6.18 no longer tests for it here, and sockfs keeps the older guard
// rather than take a sample from it. A delta of INT_MAX/1000 ms or more
// is no sample either, as in tcp_rtt_tsopt_us.
func (tp *TCPSock) rcvRttMeasureTS(b *skb.SKB) {
	if !tp.sawTstamp || tp.rcvTsecr == 0 || tp.rcvTsecr == tp.rcvRttLastTsecr {
		return
	}
	tp.rcvRttLastTsecr = tp.rcvTsecr
	if b.Len() < tp.rcvMss {
		return
	}
	if delta := int32(tp.tsNow() - tp.rcvTsecr); delta > 0 && delta < math.MaxInt32/1000 {
		tp.rcvRttUpdate(uint32(delta)*1000, false)
	}
}

// rcvSpaceAdjust is receive-buffer autotuning, run after the user copied
// data. Mirrors tcp_rcv_space_adjust.
func (tp *TCPSock) rcvSpaceAdjust() {
	now := tp.now()
	rtt := int64(tp.rcvRttUs >> 3)
	if rtt == 0 || (now-tp.rcvqTime)/int64(time.Microsecond) < rtt {
		return
	}
	copied := int(int32(tp.copiedSeq-tp.rcvqSeq)) - int(int32(tp.rcvNxt-tp.copiedSeq))
	if copied > tp.rcvqSpace {
		tp.rcvbufGrow(copied)
	}
	tp.rcvqSeq = tp.copiedSeq
	tp.rcvqTime = now
}

// rcvbufGrow grows rcvbuf and window_clamp to twice what was read in one
// RTT, plus the growth trend. Mirrors tcp_rcvbuf_grow.
func (tp *TCPSock) rcvbufGrow(newval int) {
	old := tp.rcvqSpace
	tp.rcvqSpace = newval
	sys := tp.stack.net.Sysctls
	if sys.TCPModerateRcvbuf() == 0 || tp.sk.Userlocks()&memctl.SockRcvbufLock != 0 {
		return
	}
	rcvwin := int64(newval) << 1
	if old > 0 {
		rcvwin += (rcvwin * int64(newval-old) / int64(old)) << 1
	}
	if last := tp.ofo.PeekTail(); last != nil {
		rcvwin += int64(cbGetEndSeq(last) - tp.rcvNxt)
	}
	rcvbuf := min(tp.spaceFromWin(int(rcvwin)), sys.TCPRmem()[2])
	if rcvbuf > tp.sk.Rcvbuf() {
		tp.sk.SetRcvbuf(rcvbuf)
		tp.windowClamp = uint32(tp.winFromSpace(rcvbuf))
	}
}

// newSpace grows the send buffer if allowed and wakes writers. Mirrors
// tcp_new_space.
func (tp *TCPSock) newSpace() {
	if tp.sk.TCPShouldExpandSndbuf(tp.packetsInFlight(), tp.cwnd) {
		tp.sk.TCPSndbufExpand(tp.mssClamp, tp.mssCache, int(tp.cwnd), int(tp.reordering), tp.cc.sndbufExpand())
	}
	memctl.StreamWriteSpace(tp.sk)
}

// checkSpace runs newSpace when a writer found no room and the queue has
// shrunk. Mirrors tcp_check_space.
func (tp *TCPSock) checkSpace() {
	if tp.sk.HasFlag(memctl.FlagQueueShrunk) {
		tp.sk.ClearFlag(memctl.FlagQueueShrunk)
		if tp.sk.HasFlag(memctl.FlagNoSpace) {
			tp.newSpace()
		}
	}
}

// queueRcv appends in-order data to the receive queue, coalescing it into
// the tail when possible (charging only the truesize delta); returns true
// if b was absorbed (the caller frees it). Mirrors tcp_queue_rcv with
// tcp_try_coalesce.
func (tp *TCPSock) queueRcv(b *skb.SKB, charged bool) bool {
	tail := tp.rcvq.PeekTail()
	if tail != nil && tp.tryCoalesce(tail, b, charged) {
		return true
	}
	if !charged {
		memctl.SetOwnerR(b, tp.sk)
	}
	tp.rcvq.PushBack(b)
	return false
}

// tryCoalesce merges from's data into to. The delta charged is 0 for a copy
// into to's tailroom and from's fragment bytes for a fragment steal, as
// skb_try_coalesce computes it. from must be charged (owner_r) or not:
// the caller has scheduled its truesize. Mirrors tcp_try_coalesce.
func (tp *TCPSock) tryCoalesce(to, from *skb.SKB, charged bool) bool {
	if cbGetSeq(from) != cbGetEndSeq(to) || cbGetFlags(to)&tcpFin != 0 || to.Cloned() {
		return false
	}
	l := from.Len()
	delta := 0
	switch {
	case l == 0: // a FIN: skb_try_coalesce's tailroom case, nothing to copy
	case l <= to.Tailroom() && !to.IsNonlinear():
		old := to.Len()
		from.CopyBits(0, to.Put(l))
		tp.rcvq.Resized(old, old+l)
	case from.HeadLen() == 0 && to.NrFrags()+from.NrFrags() <= skb.MaxFrags:
		old := to.Len()
		for i := 0; i < from.NrFrags(); i++ {
			f := from.Frag(i)
			f.Page.Get()
			if !to.AddFrag(f.Page, f.Off, f.Size) {
				f.Page.Put()
				panic("tcp: coalesce frag overflow")
			}
		}
		tp.rcvq.Resized(old, old+l)
		delta = from.Truesize() - skb.CurrentProfile().TruesizeOf(from.EndOffset())
	default:
		return false
	}
	// Charge the delta: from is charged with owner_r first, then the delta
	// moves from from's truesize to to's, so freeing from uncharges the rest.
	if !charged {
		memctl.SetOwnerR(from, tp.sk)
	}
	if delta > 0 {
		to.AddTruesize(delta)
		from.AddTruesize(-delta)
	}
	cbSetEndSeq(to, cbGetEndSeq(from))
	cbSetFlags(to, cbGetFlags(to)|cbGetFlags(from)&(tcpFin|tcpPsh))
	cbSetAckSeq(to, cbGetAckSeq(from))
	tp.stack.mib.Inc(memctl.TcpExtTCPRcvCoalesce)
	return true
}
