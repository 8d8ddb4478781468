package netstack

import (
	"encoding/binary"
	"time"

	"sockfs/memctl"
	"sockfs/skb"
)

// TSO-sized send skbs, as Linux builds them. tcp_sendmsg appends to the
// tail skb of the write queue up to the size goal (about 64 KiB, page
// fragments from the socket's page frag), so a queued byte costs little
// more than a byte of wmem_queued. Such an skb stands for pcount segments
// of the current MSS (tcp_skb_pcount, kept in the control block with the
// MSS it was cut for); every counter of the congestion machinery
// (packets_out, sacked_out, lost_out, retrans_out, delivered) counts
// segments, so it adds and subtracts pcounts. tcp_write_xmit cuts an skb
// where the congestion or receive window ends (tso_fragment); SACK blocks,
// partial retransmissions and loss probes cut skbs on the retransmit queue
// (tcp_fragment); a cumulative ACK inside an skb trims its head
// (tcp_trim_head). The device gets each skb as one GSO packet; a device
// without TSO, or an impairment stage in front of it, gets it cut into wire
// packets in software (xmitGSO, skb_gso_segment's role).

// Control-block offsets past tcp_seq.go's: tcp_gso_segs and tcp_gso_size.
const (
	cbPcount  = 24
	cbGSOSize = 26
)

// gsoMaxSize is the devices' gso_max_size: GSO_LEGACY_MAX_SIZE, which a TUN
// device (and every device that does not raise it) reports.
const gsoMaxSize = 65536

// gsoMaxSegs is the devices' gso_max_segs (GSO_MAX_SEGS).
const gsoMaxSegs = 65535

// tcpPacingShift is sk_pacing_shift's default: a TSO burst holds about
// 1 ms (2^-10 s) of the pacing rate.
const tcpPacingShift = 10

// tcpSkbPcount is the number of MSS-sized segments b stands for. Mirrors
// tcp_skb_pcount.
func tcpSkbPcount(b *skb.SKB) int { return int(binary.LittleEndian.Uint16(b.CB[cbPcount:])) }

// tcpSkbMss is the segment size b was cut for (0 for a single segment).
// Mirrors tcp_skb_mss.
func tcpSkbMss(b *skb.SKB) int { return int(binary.LittleEndian.Uint16(b.CB[cbGSOSize:])) }

func cbSetPcount(b *skb.SKB, n int) { binary.LittleEndian.PutUint16(b.CB[cbPcount:], uint16(n)) }

// setSkbTsoSegs sets b's segment count and size for mss. Mirrors
// tcp_set_skb_tso_segs.
func setSkbTsoSegs(b *skb.SKB, mss int) {
	if b.Len() <= mss {
		cbSetPcount(b, 1)
		binary.LittleEndian.PutUint16(b.CB[cbGSOSize:], 0)
		return
	}
	cbSetPcount(b, (b.Len()+mss-1)/mss)
	binary.LittleEndian.PutUint16(b.CB[cbGSOSize:], uint16(mss))
}

// initTsoSegs (re)computes b's segment count if it has none yet or was cut
// for another MSS, and returns it. Mirrors tcp_init_tso_segs.
func initTsoSegs(b *skb.SKB, mss int) int {
	n := tcpSkbPcount(b)
	if n == 0 || (n > 1 && tcpSkbMss(b) != mss) {
		setSkbTsoSegs(b, mss)
		n = tcpSkbPcount(b)
	}
	return n
}

// tcpHeaderLen is the header length of a non-SYN segment without SACK
// blocks (tp->tcp_header_len).
func (tp *TCPSock) tcpHeaderLen() int {
	if tp.tstampOK {
		return 20 + tcpOlenTstampAl
	}
	return 20
}

// boundToHalfWnd keeps an skb at most half the largest window the peer has
// offered, so that two are in flight at a time. Mirrors
// tcp_bound_to_half_wnd.
func (tp *TCPSock) boundToHalfWnd(pktsize int) int {
	cutoff := int(tp.maxWindow)
	if cutoff > tcpMssDefault {
		cutoff >>= 1
	}
	if cutoff != 0 && pktsize > cutoff {
		return max(cutoff, 68-tp.tcpHeaderLen())
	}
	return pktsize
}

// sizeGoal is how large the tail skb of the write queue may grow: a whole
// number of MSS under the device's GSO limit and half the peer's window,
// remembered in gso_segs so that it changes only when it must. Mirrors
// tcp_xmit_size_goal.
func (tp *TCPSock) sizeGoal(mss int) int {
	goal := tp.boundToHalfWnd(gsoMaxSize - 1 - maxTCPHeader())
	sg := int(tp.gsoSegs) * mss
	if goal < sg || goal >= sg+mss {
		tp.gsoSegs = uint16(min(goal/mss, gsoMaxSegs))
		sg = int(tp.gsoSegs) * mss
	}
	return max(sg, mss)
}

// pacingRate is sk_pacing_rate in bytes per second as Linux keeps it for
// a socket not paced by fq: tcp_pacing_ss_ratio (200%) of cwnd per srtt
// in slow start (cwnd below half ssthresh), tcp_pacing_ca_ratio (120%)
// after, both sysctls read live; unlimited before the first RTT sample.
// Computed when needed instead of on every ACK. Mirrors
// tcp_update_pacing_rate.
func (tp *TCPSock) pacingRate() uint64 {
	if tp.ccMain != nil {
		return tp.skPacingRate // set by the algorithm (bbr_set_pacing_rate)
	}
	if tp.srttUs == 0 {
		return ^uint64(0)
	}
	sys := tp.stack.net.Sysctls
	rate := uint64(tp.mssCache) * (10000 << 3) // USEC_PER_SEC/100, srtt_us is <<3
	if tp.cwnd < tp.ssthresh/2 {
		rate *= uint64(sys.TCPPacingSsRatio())
	} else {
		rate *= uint64(sys.TCPPacingCaRatio())
	}
	rate *= uint64(max(tp.cwnd, tp.packetsOut))
	return rate / uint64(tp.srttUs)
}

// tsoSegs is how many segments one skb may carry at most: about 1 ms of
// the pacing rate, more on short paths (below 2^tcp_tso_rtt_log us of
// min_rtt), at least tcp_min_tso_segs; both sysctls read live. Mirrors
// tcp_tso_segs with tcp_tso_autosize.
func (tp *TCPSock) tsoSegs(mss int) int {
	sys := tp.stack.net.Sysctls
	bytes := min(tp.pacingRate()>>tcpPacingShift, gsoMaxSize)
	if r := tp.minRttUs() >> sys.TCPTsoRttLog(); r < 32 && tp.srttUs != 0 {
		bytes += gsoMaxSize >> r
	}
	bytes = min(bytes, gsoMaxSize)
	minSegs := sys.TCPMinTsoSegs()
	if tp.ccMain != nil {
		minSegs = tp.ccMain.minTsoSegs(tp) // ca_ops->min_tso_segs
	}
	return min(max(int(bytes)/mss, minSegs), gsoMaxSegs)
}

// cwndTest is how many segments the congestion window lets b send now: at
// most half the window in one skb, so that ACK clocking survives; a lone
// FIN always goes. Mirrors tcp_cwnd_test.
func (tp *TCPSock) cwndTest(b *skb.SKB) int {
	if cbGetFlags(b)&tcpFin != 0 && tcpSkbPcount(b) == 1 {
		return 1
	}
	inflight, cwnd := tp.packetsInFlight(), tp.cwnd
	if inflight >= cwnd {
		return 0
	}
	return int(min(max(cwnd>>1, 1), cwnd-inflight))
}

// tsoShouldDefer reports whether b, of more than one segment, should wait
// for an ACK that is due soon and lets a larger TSO skb go, rather than
// leave now with what the windows allow; cwndLimited and rwndLimited say
// which window held it. It never waits in Recovery or Loss, more than
// 1 ms after the last transmission, with room for a full-sized skb or
// for a fraction of the window (tcp_tso_win_divisor; with 0, for more
// than three segments), or when the head's ACK is due later than
// min(srtt/2, 1 ms). No timer ends the wait: the ACK it waits for pushes
// the queue, and the loss probe or RTO covers its loss. Mirrors
// tcp_tso_should_defer (Linux 6.18).
func (tp *TCPSock) tsoShouldDefer(b *skb.SKB, maxSegs int) (deferred, cwndLimited, rwndLimited bool) {
	if tp.caState >= tcpCARecovery {
		return false, false, false
	}
	now := tp.now()
	if now-tp.wstampNs > int64(time.Millisecond) { // the last write was not recent
		return false, false, false
	}
	mss := uint32(tp.mssCache)
	inFlight := tp.packetsInFlight()
	sendWin := tp.sndUna + tp.sndWnd - cbGetSeq(b)
	congWin := (tp.cwnd - inFlight) * mss // the caller checked cwnd > in_flight
	limit := min(sendWin, congWin)
	n := uint32(b.Len())
	if limit >= uint32(maxSegs)*mss { // a full-sized TSO skb can go
		return false, false, false
	}
	if b != tp.writeQueue.PeekTail() && limit >= n { // it gets no more data and can go whole
		return false, false, false
	}
	if d := uint32(tp.stack.net.Sysctls.TCPTsoWinDivisor()); d != 0 {
		if limit >= min(tp.sndWnd, tp.cwnd*mss)/d { // a fraction of the window is available
			return false, false, false
		}
	} else if limit > tcpMaxTsoDeferredMss*mss {
		return false, false, false
	}
	head := tp.rtxQueue.Peek()
	if head == nil {
		return false, false, false
	}
	srttNs := int64(tp.srttUs) * 1000 >> 3
	howFar := head.Tstamp + srttNs - now // until the head's ACK is expected
	if howFar > min(srttNs>>1, int64(time.Millisecond)) {
		return false, false, false
	}
	if congWin < sendWin {
		if congWin <= n {
			return true, true, false
		}
	} else if sendWin <= n {
		return true, false, true
	}
	if cbGetFlags(b)&tcpFin != 0 { // it will get no more data
		return false, false, false
	}
	return true, false, false
}

// tcpMaxTsoDeferredMss is the room, in segments, past which
// tcp_tso_win_divisor 0 does not wait. Mirrors tcp_max_tso_deferred_mss.
const tcpMaxTsoDeferredMss = 3

// sndWndTest says whether the first segment of b fits the peer's window.
// Mirrors tcp_snd_wnd_test.
func (tp *TCPSock) sndWndTest(b *skb.SKB, mss int) bool {
	end := cbGetEndSeq(b)
	if b.Len() > mss {
		end = cbGetSeq(b) + uint32(mss)
	}
	return !seqGT(end, tp.sndUna+tp.sndWnd)
}

// mssSplitPoint is how much of b to send now: maxSegs segments if the
// window has room and more data follows, else what the window allows,
// less a trailing partial segment that Nagle would hold back. Mirrors
// tcp_mss_split_point.
func (tp *TCPSock) mssSplitPoint(b *skb.SKB, mss, maxSegs, nonagle int) int {
	window := int(tp.sndUna + tp.sndWnd - cbGetSeq(b))
	maxLen := mss * maxSegs
	if maxLen <= window && b != tp.writeQueue.PeekTail() {
		return maxLen
	}
	needed := min(b.Len(), window)
	if maxLen <= needed {
		return maxLen
	}
	partial := needed % mss
	if tp.nagleCheck(partial != 0, nonagle) {
		return needed - partial
	}
	return needed
}

// fragment splits b after n payload bytes; the rest goes to a new skb
// queued right after b on q (the write queue or the retransmit queue). The
// new skb's struct is charged as a new send skb and the moved fragment
// bytes move their truesize with them. Both halves get their segment
// counts for mss; on the retransmit queue the counters follow
// (tcp_adjust_pcount), the control block (sacked state, send time) is
// copied, and a clone still in flight keeps the old data (Unclone). It
// reports false, changing nothing, when n does not split b or, on the
// retransmit queue, when wmem_queued is far over sndbuf (TCPWqueueTooBig).
// Mirrors tcp_fragment (and tso_fragment for the write queue).
func (tp *TCPSock) fragment(q *skb.Queue, b *skb.SKB, n, mss int) bool {
	if n <= 0 || n >= b.Len() {
		return false
	}
	rtx := q == &tp.rtxQueue
	if rtx && b != q.Peek() && b != q.PeekTail() && tp.sk.TCPWqueueTooBig() {
		tp.stack.mib.Inc(memctl.TcpExtTCPWqueueTooBig)
		return false
	}
	b.Unclone()
	nb := skb.AllocFclone(maxTCPHeader())
	nb.Reserve(maxTCPHeader())
	tp.sk.ForcedMemSchedule(nb.Truesize())
	tp.sk.SkbEntail(nb.Truesize())
	moved := 0
	lin := b.HeadLen()
	if n < lin { // linear payload: copy what goes
		nb.PutData(b.Data()[n:])
		moved += lin - n
	}
	off := lin
	for i := 0; i < b.NrFrags(); i++ {
		f := b.Frag(i)
		fs, fe := off, off+f.Size
		off = fe
		if fe <= n {
			continue
		}
		start := max(fs, n) - fs
		f.Page.Get()
		if !nb.AddFrag(f.Page, f.Off+start, f.Size-start) {
			f.Page.Put()
		}
		moved += f.Size - start
	}
	flags := cbGetFlags(b)
	end := cbGetEndSeq(b)
	b.Trim(n)
	q.Resized(n+moved, n)
	b.AddTruesize(-moved)
	nb.AddTruesize(moved)
	nb.CB = b.CB
	nb.Tstamp = b.Tstamp
	cbSetSeq(nb, cbGetSeq(b)+uint32(n))
	cbSetEndSeq(nb, end)
	cbSetFlags(nb, flags)
	cbSetEndSeq(b, cbGetSeq(b)+uint32(n))
	cbSetFlags(b, flags&^(tcpFin|tcpPsh))
	if !rtx {
		cbSetSacked(nb, 0)
	}
	old := tcpSkbPcount(b)
	setSkbTsoSegs(b, mss)
	setSkbTsoSegs(nb, mss)
	q.InsertAfter(b, nb)
	if rtx {
		nb.HeaderRelease()
		if diff := old - tcpSkbPcount(b) - tcpSkbPcount(nb); diff != 0 {
			tp.adjustPcount(b, diff)
		}
	}
	return true
}

// adjustPcount takes decr segments (negative: adds) off the counters b is
// counted in, after b's segment count changed. Mirrors tcp_adjust_pcount.
func (tp *TCPSock) adjustPcount(b *skb.SKB, decr int) {
	d := uint32(decr)
	tp.packetsOut -= d
	s := cbGetSacked(b)
	if s&tcpcbSackedAcked != 0 {
		tp.sackedOut -= d
	}
	if s&tcpcbSackedRetrans != 0 {
		tp.retransOut -= d
	}
	if s&tcpcbLost != 0 {
		tp.lostOut -= d
	}
}

// trimHead removes the first n bytes, cumulatively acknowledged, of an skb
// on the retransmit queue; their truesize leaves wmem_queued and the
// socket's charge. Mirrors tcp_trim_head.
func (tp *TCPSock) trimHead(b *skb.SKB, n int) {
	b.Unclone()
	b.HeaderRelease()
	old := b.Len()
	delta := b.TrimHead(n)
	tp.rtxQueue.Resized(old, b.Len())
	cbSetSeq(b, cbGetSeq(b)+uint32(n))
	if delta != 0 {
		b.AddTruesize(-delta)
		tp.sk.WmemQueuedAdd(-delta)
		tp.sk.MemUncharge(delta)
	}
	if tcpSkbPcount(b) > 1 {
		setSkbTsoSegs(b, tcpSkbMss(b))
	}
}

// tsoAcked trims the acknowledged head of a multi-segment skb that an ACK
// covers in part, returning how many segments that acknowledged (0: none
// whole, and nothing trimmed). Mirrors tcp_tso_acked.
func (tp *TCPSock) tsoAcked(b *skb.SKB, ack uint32) uint32 {
	old := tcpSkbPcount(b)
	if old <= 1 || !seqGT(ack, cbGetSeq(b)) {
		return 0
	}
	tp.trimHead(b, int(ack-cbGetSeq(b)))
	return uint32(old - tcpSkbPcount(b))
}

// matchSkbToSack decides whether b lies within the SACK block
// [start, end), first cutting a multi-segment skb that the block covers in
// part so that SACKs cover whole segments (and the odd end): the piece
// before the block, or the piece inside it, becomes b. It returns 1 if b
// (now) lies within the block, 0 if not, -1 if it could not be cut.
// Mirrors tcp_match_skb_to_sack.
func (tp *TCPSock) matchSkbToSack(b *skb.SKB, start, end uint32) int {
	seq, endSeq := cbGetSeq(b), cbGetEndSeq(b)
	in := !seqGT(start, seq) && !seqLT(end, endSeq)
	if tcpSkbPcount(b) > 1 && !in && seqGT(endSeq, start) {
		mss := tcpSkbMss(b)
		in = !seqGT(start, seq)
		var pktLen int
		if !in {
			pktLen = max(int(start-seq), mss)
		} else {
			pktLen = int(end - seq)
			if pktLen < mss {
				return -1
			}
		}
		if pktLen > mss { // round to whole segments
			l := pktLen / mss * mss
			if !in && l < pktLen {
				l += mss
			}
			pktLen = l
		}
		if pktLen >= b.Len() && !in {
			return 0
		}
		if !tp.fragment(&tp.rtxQueue, b, pktLen, mss) {
			return -1
		}
	}
	if in {
		return 1
	}
	return 0
}

// Outcomes of tcp_shift_skb_data for an skb a SACK block overlaps.
const (
	shiftNoop     = iota // nothing to shift (not SACKed, or less than a segment)
	shiftFallback        // no shift: tagged on its own (TCPSackShiftFallback)
	shiftWhole           // the whole skb joins the SACKed skb before it (TCPSackMerged)
	shiftPart            // its head joins, the rest stays (TCPSackShifted)
)

// skbSeglen is the size of b's segments. Mirrors tcp_skb_seglen.
func skbSeglen(b *skb.SKB) int {
	if tcpSkbPcount(b) <= 1 {
		return b.Len()
	}
	return tcpSkbMss(b)
}

// shiftDecision decides, for an skb not yet SACKed that the block
// [start, end) overlaps, before sackTag cuts or tags it, what Linux's
// tcp_shift_skb_data does with it: merge it (or the whole segments of it
// the block covers) into the SACKed skb before it, or fall back to
// tagging it on its own, or nothing. sockfs then cuts and tags b first
// and merges the tagged piece after (shiftSacked), which ends in the same
// queue and counters. Mirrors tcp_shift_skb_data's tests.
func (tp *TCPSock) shiftDecision(b *skb.SKB, start, end uint32) int {
	seq, endSeq := cbGetSeq(b), cbGetEndSeq(b)
	prev := b.Prev()
	const tag = tcpcbSackedAcked | tcpcbSackedRetrans | tcpcbLost
	s := cbGetSacked(b)
	switch {
	case s&(tcpcbLost|tcpcbSackedRetrans) == tcpcbSackedRetrans, // R without L
		b.HeadLen() != 0 || b.NrFrags() == 0, // !skb_can_shift
		!seqGT(endSeq, tp.sndUna),
		prev == nil,
		cbGetSacked(prev)&tag != tcpcbSackedAcked,
		cbGetEndSeq(prev) != seq, // sockfs: the pieces of one stream only
		cbGetFlags(b)&tcpSyn != 0:
		return shiftFallback
	}
	if !seqGT(start, seq) && !seqLT(end, endSeq) { // the whole skb
		if skbSeglen(b) != skbSeglen(prev) {
			return shiftFallback
		}
		return shiftWhole
	}
	if !seqGT(endSeq, start) || tcpSkbPcount(b) <= 1 {
		return shiftNoop
	}
	if seqGT(start, seq) {
		return shiftFallback
	}
	mss := tcpSkbMss(b)
	if mss != skbSeglen(prev) {
		return shiftFallback
	}
	if int(end-seq) < mss {
		return shiftNoop
	}
	return shiftPart
}

// shiftSacked merges b, just SACKed, into the SACKed skb before it, as
// shiftDecision decided (shiftWhole or shiftPart, which sackTag has cut
// b down to), then, the hole being filled, the SACKed skb after it too:
// page fragments, bytes and segments move to prev and b is freed, its
// struct's charge returned. This undoes the cuts SACK blocks make
// (tcp_match_skb_to_sack), so a long recovery does not leave the
// retransmit queue, and wmem_queued, full of small skbs. It counts
// TCPSackMerged for a whole skb, TCPSackShifted for the head of one, and
// TCPSackShiftFallback when the merge cannot be done after all (too many
// fragments, or a segment size that would not stay whole). It returns
// the skb after the ones merged. Mirrors tcp_shift_skb_data's shifting
// part with skb_shift and tcp_shifted_skb.
func (tp *TCPSock) shiftSacked(b *skb.SKB, how int) *skb.SKB {
	prev := b.Prev()
	if !tp.mergeSacked(prev, b) {
		tp.stack.mib.Inc(memctl.TcpExtTCPSackShiftFallback)
		return b.Next()
	}
	if how == shiftPart {
		tp.stack.mib.Inc(memctl.TcpExtTCPSackShifted)
	} else {
		tp.stack.mib.Inc(memctl.TcpExtTCPSackMerged)
	}
	// "Hole filled allows collapsing with the next as well."
	const tag = tcpcbSackedAcked | tcpcbSackedRetrans | tcpcbLost
	if next := prev.Next(); next != nil && cbGetSacked(next)&tag == tcpcbSackedAcked &&
		skbSeglen(next) == skbSeglen(prev) && cbGetEndSeq(prev) == cbGetSeq(next) &&
		tp.mergeSacked(prev, next) {
		tp.stack.mib.Inc(memctl.TcpExtTCPSackMerged)
	}
	return prev.Next()
}

// mergeSacked moves all of b into prev, if prev's segments stay whole
// and the fragments fit, and frees b. It reports whether it did.
func (tp *TCPSock) mergeSacked(prev, b *skb.SKB) bool {
	mss := skbSeglen(prev)
	if mss == 0 || prev.Len()%mss != 0 || b.HeadLen() != 0 || cbGetFlags(prev)&tcpFin != 0 ||
		prev.NrFrags()+b.NrFrags() > skb.MaxFrags {
		return false
	}
	prev.Unclone()
	b.Unclone()
	prev.HeaderRelease()
	n := b.Len()
	for i := 0; i < b.NrFrags(); i++ {
		f := b.Frag(i)
		f.Page.Get()
		if !prev.AddFrag(f.Page, f.Off, f.Size) {
			panic("netstack: mergeSacked over MAX_SKB_FRAGS") // checked above
		}
	}
	b.Trim(0)
	b.AddTruesize(-n)
	prev.AddTruesize(n)
	pc := tcpSkbPcount(prev) + tcpSkbPcount(b)
	cbSetEndSeq(prev, cbGetEndSeq(b))
	cbSetFlags(prev, cbGetFlags(prev)|cbGetFlags(b)) // a FIN moves too (tcp_shifted_skb)
	cbSetSacked(prev, cbGetSacked(prev)|cbGetSacked(b)&tcpcbEverRetrans)
	setSkbTsoSegs(prev, mss)
	if tcpSkbPcount(prev) != pc {
		panic("netstack: mergeSacked changed the segment count")
	}
	tp.rtxQueue.Unlink(b)
	tp.sk.WmemFreeSkb(b.Truesize())
	b.Free()
	return true
}
