package netstack

import (
	"net/netip"
	"syscall"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// tcpRcv receives a segment from src to dst whose data starts at the TCP
// header, for both families. It owns b. Mirrors tcp_v4_rcv and tcp_v6_rcv
// (which differ in the pseudo-header only): validation, demultiplexing to
// an established (or TIME_WAIT) socket, then to a listener, else RST. The
// socket's spinlock is taken, never its ownership: a segment for a socket a
// user owns goes to the backlog (tcp_add_backlog).
func (s *Stack) tcpRcv(b *skb.SKB, src, dst netip.Addr, dsfield uint8, rx *rxBatch) {
	th := header.TCP(b.Data())
	if th.Check() != nil || th.DataOffset() > b.HeadLen() {
		s.mib.Inc(memctl.TcpInErrs)
		b.Free()
		return
	}
	s.mib.Inc(memctl.TcpInSegs)
	// A packet the device verified, or a partial one from the local host
	// (a TUN's offload), is not summed again: tcp_v4_rcv's
	// skb_checksum_init passes what skb_csum_unnecessary accepts.
	tu := tcpTuple{laddr: dst, raddr: src, lport: th.DstPort(), rport: th.SrcPort()}
	if !b.CsumUnnecessary() && skbChecksum(b, header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, src, dst, uint16(b.Len()))) != 0xffff {
		s.mib.Inc(memctl.TcpInCsumErrors)
		s.mib.Inc(memctl.TcpInErrs)
		s.tcpCsumDrop(b, tu)
		b.Free()
		return
	}
	var opts header.TCPOptions
	header.ParseTCPOptions(th.Options(), &opts)
	flags := uint8(th.Flags())
	plen := b.Len() - th.DataOffset()
	seq := th.Seq()
	end := seq + uint32(plen)
	if flags&tcpSyn != 0 {
		end++
	}
	if flags&tcpFin != 0 {
		end++
	}
	cbSetSeq(b, seq)
	cbSetEndSeq(b, end)
	cbSetAckSeq(b, th.Ack())
	cbSetFlags(b, flags)
	cbSetSacked(b, 0)
	cbSetDsfield(b, dsfield) // tcp_v4_fill_cb, tcp_v6_fill_cb: the ECN codepoint
	b.SetTransportHeader()
	b.Pull(th.DataOffset())
	b.Tstamp = s.clock.Nanotime()

	if (testEstabMiss == nil || !testEstabMiss(tu)) && s.tcpRcvEstab(b, th, &opts, tu, rx) {
		return
	}
	if l := s.tcp.lookupListener(dst, tu.lport); l != nil {
		if !l.listenRcv(b, th, &opts, tu) {
			b.Free()
		}
		return
	}
	s.tcpSendReset(th, src, dst, plen)
	b.Free()
}

// testEstabMiss, when a test sets it, makes tcpRcv's established lookup
// miss for the tuples it reports, as when that lookup ran just before
// another goroutine hashed the connection's child
// (TestListenerFindsChildHashedAfterLookup). Nil outside tests.
var testEstabMiss func(tu tcpTuple) bool

// tcpCsumDrop counts a segment with a bad checksum in the sk_drops of the
// socket it was for, where Linux does: tcp_v4_rcv leaves the check to the
// socket's path, and tcp_rcv_established (ESTABLISHED) and tcp_add_backlog
// (a socket a user owns) drop through tcp_drop_reason / discard_and_relse,
// while tcp_v4_do_rcv (other states, listeners) and TIME_WAIT count
// nothing. Deviation: sockfs checks before the lookup, so it looks the
// socket up again here, for a segment that is dropped anyway.
func (s *Stack) tcpCsumDrop(b *skb.SKB, tu tcpTuple) {
	tp := s.tcp.lookupEstab(tu)
	if tp == nil {
		return
	}
	// An owned socket is never in TIME_WAIT, and its state is the
	// owner's to change: it is read only when not owned.
	if owned := tp.bhLockSock(); owned || tp.state == TCPEstablished {
		tp.dropReason(b)
	}
	tp.bhUnlockSock()
}

// dropReason counts b, which the caller drops, in sk_drops: one per
// segment of a super-packet (gso_segs; 0, so one, for a TUN's, which
// virtio_net_hdr_to_skb leaves uncounted). Mirrors tcp_drop_reason ->
// sk_drops_skbadd; the reason itself is not kept (sockfs has no drop
// monitor to hand it to).
func (tp *TCPSock) dropReason(b *skb.SKB) {
	tp.sk.DropsAdd(max(1, int(b.Shared().GSOSegs)))
}

// sndUnaUpdate advances snd_una to ack, counting the bytes acknowledged
// (tcpi_bytes_acked, RFC 4898 tcpEStatsAppHCThruOctetsAcked). Mirrors
// tcp_snd_una_update.
func (tp *TCPSock) sndUnaUpdate(ack uint32) {
	tp.bytesAcked += uint64(ack - tp.sndUna)
	tp.sndUna = ack
}

// rcvNxtUpdate advances rcv_nxt to seq, counting the bytes received in
// order (tcpi_bytes_received). Mirrors tcp_rcv_nxt_update.
func (tp *TCPSock) rcvNxtUpdate(seq uint32) {
	tp.bytesReceived += uint64(seq - tp.rcvNxt)
	tp.rcvNxt = seq
}

// tcpRcvEstab hands b to the established (or connecting) socket of tu, if
// there is one, and reports whether there was: processed at once, or queued
// on its backlog when a user owns it. It frees b unless the socket kept it.
// rx is the receive batch b came in (nil outside one): see rxBatch.
func (s *Stack) tcpRcvEstab(b *skb.SKB, th header.TCP, opts *header.TCPOptions, tu tcpTuple, rx *rxBatch) bool {
	for tries := 0; tries < 2; tries++ {
		tp := s.tcp.lookupEstab(tu)
		if tp == nil {
			return false
		}
		var keep bool
		if tp.bhLockSock() {
			// Owned: only the backlog may be touched; the owner
			// drops what arrives for a socket it destroyed.
			keep = tp.addBacklog(b, th, true)
		} else if !tp.hashed || tp.destroyed {
			tp.bhUnlockSock()
			continue
		} else {
			tp.rxb = rx
			keep = tp.rcv(b, th, opts)
			tp.rxb = nil
		}
		tp.bhUnlockSock()
		if !keep {
			b.Free()
		}
		return true
	}
	return false
}

// rcv processes a segment for a socket that is not listening. Caller owns
// the socket or holds its spinlock with the socket not owned. It returns
// true if it kept b. Mirrors tcp_rcv_state_process and tcp_rcv_established.
//
// Deviation: tcp_rcv_established's fast path is not a separate path here.
// Every segment takes the slow path's steps, which for a segment the fast
// path would take come to the same result; what the fast path changes is
// kept: its verdict (fastPathVerdict), taken first, as Linux takes it,
// decides the counters (TCPHPHits, TCPHPAcks) and lets predicted data skip
// the receive-memory admission.
func (tp *TCPSock) rcv(b *skb.SKB, th header.TCP, opts *header.TCPOptions) bool {
	flags := cbGetFlags(b)
	tp.rcvTstamp = tp.now()
	tp.sawTstamp = opts.HasTimestamp
	tp.rcvTsval, tp.rcvTsecr = opts.TSVal, opts.TSEcr
	switch tp.state {
	case TCPClose:
		tp.dropReason(b) // tcp_rcv_state_process: TCP_CLOSE
		tp.stack.tcpSendReset(th, tp.remote.Addr(), tp.local.Addr(), b.Len())
		return false
	case TCPSynSent:
		return tp.rcvSynSent(b, th, opts)
	case TCPTimeWait:
		return tp.timeWaitRcv(b, th, opts)
	}
	if flags&(tcpAck|tcpRst|tcpSyn) == 0 {
		tp.dropReason(b) // SKB_DROP_REASON_TCP_FLAGS, before tcp_validate_incoming
		return false
	}
	fast := tp.state == TCPEstablished && tp.fastPathVerdict(b, th, opts)
	if !tp.validateIncoming(b, th, opts) {
		return false
	}
	if flags&tcpAck == 0 {
		return false
	}
	wasEstablished := tp.state == TCPEstablished
	switch tp.ack(b, th, opts, fast) {
	case -1:
		tp.dropReason(b) // tcp_ack's TOO_OLD_ACK / ACK_UNSENT_DATA
		return false
	case -2: // SYN_RECV with an unacceptable ACK
		tp.stack.tcpSendReset(th, tp.remote.Addr(), tp.local.Addr(), b.Len())
		return false
	}
	if tp.state == TCPClose { // an orphan finished in ack processing
		return false
	}
	finAcked := tp.sndUna == tp.writeSeq
	switch tp.state {
	case TCPFinWait1:
		if finAcked {
			tp.setState(TCPFinWait2)
			tp.sk.Shutdown(memctl.SendShutdown)
			if tp.dead {
				tp.finWait2Timer(flags&tcpFin != 0 || tp.inBacklogRcv)
				if tp.fw2tw {
					return false // tcp_time_wait; goto consume
				}
			}
		}
	case TCPClosing:
		if finAcked {
			tp.enterTimeWait()
			return false
		}
	case TCPLastAck:
		if finAcked {
			tp.tcpDone()
			tp.destroyIfOrphan()
			return false
		}
	}
	if wasEstablished && tp.state == TCPEstablished {
		// tcp_rcv_established's step 5, after tcp_ack (its fast path
		// does the same for data); tcp_rcv_state_process has none.
		tp.rcvRttMeasureTS(b)
	}
	keep := false
	switch tp.state {
	case TCPEstablished, TCPFinWait1, TCPFinWait2:
		if tp.dead && cbGetSeq(b) != cbGetEndSeq(b) && seqGT(cbGetEndSeq(b)-uint32(flags&tcpFin), tp.rcvNxt) {
			// Data for a socket the user closed, or a FIN beyond
			// rcv_nxt: abort. Mirrors the RCV_SHUTDOWN check of
			// tcp_rcv_state_process (a FIN_WAIT2 timewait sock answers
			// TCP_TW_RST, uncounted, to anything but a FIN at rcv_nxt).
			if !tp.fw2tw {
				tp.stack.mib.Inc(memctl.TcpExtTCPAbortOnData)
			}
			tp.sendActiveReset()
			tp.tcpReset()
			return false
		}
		if tp.fw2tw && flags&tcpFin != 0 && cbGetEndSeq(b) == tp.rcvNxt+1 {
			tp.timeWaitFin(b)
			return false
		}
		keep = tp.dataQueue(b, fast)
	case TCPCloseWait, TCPClosing, TCPLastAck:
		// The peer already sent FIN, so nothing can start at or after
		// rcv_nxt. An older segment (a retransmitted FIN whose ACK was
		// lost) goes to dataQueue, which acknowledges a duplicate at once;
		// one that carries data beyond the FIN resets the connection.
		// Mirrors the fall-through of tcp_rcv_state_process's step 7.
		if !seqLT(cbGetSeq(b), tp.rcvNxt) {
			// Not queued: tcp_rcv_state_process drops it through
			// tcp_drop_reason, a bare ACK included.
			tp.dropReason(b)
			break
		}
		if seqGT(cbGetEndSeq(b)-uint32(flags&tcpFin), tp.rcvNxt) {
			tp.stack.mib.Inc(memctl.TcpExtTCPAbortOnData)
			tp.sendActiveReset()
			tp.tcpReset()
			return false
		}
		keep = tp.dataQueue(b, false)
	}
	if tp.state != TCPClose {
		tp.dataSndCheck()
		tp.ackSndCheck()
	}
	return keep
}

// dataSndCheck pushes what a new ACK or window allows and wakes writers.
// Mirrors tcp_data_snd_check.
func (tp *TCPSock) dataSndCheck() {
	tp.pushPendingFrames(tp.nonagle())
	tp.checkSpace()
}

// validateIncoming applies PAWS, the sequence check and RFC 5961's RST and
// SYN rules; what it refuses it counts in sk_drops, except an acceptable
// RST, which resets the connection. Mirrors tcp_validate_incoming.
func (tp *TCPSock) validateIncoming(b *skb.SKB, th header.TCP, opts *header.TCPOptions) bool {
	flags := cbGetFlags(b)
	seq, end := cbGetSeq(b), cbGetEndSeq(b)
	mib := tp.stack.mib
	if tp.tstampOK && opts.HasTimestamp && flags&tcpRst == 0 && tp.tsRecentStamp != 0 &&
		int32(tp.tsRecent-opts.TSVal) > 1 && // TCP_PAWS_WINDOW
		time.Duration(tp.now()-tp.tsRecentStamp) < 24*24*time.Hour { // TCP_PAWS_24DAYS
		mib.Inc(memctl.TcpExtPAWSEstab)
		tp.sendDupack(b)
		tp.dropReason(b)
		return false
	}
	if r := tp.sequence(seq, end, flags&tcpFin != 0); r != seqOK {
		if flags&tcpRst == 0 {
			if flags&tcpSyn != 0 {
				tp.synChallenge()
				tp.dropReason(b)
				return false
			}
			if r != seqOld {
				mib.Inc(memctl.TcpExtBeyondWindow)
			}
			if !tp.oowRateLimited(b) {
				tp.sendDupack(b)
			}
		} else if tp.resetCheck(seq) {
			tp.tcpReset() // consumed, not dropped
			return false
		}
		tp.dropReason(b)
		return false
	}
	if flags&tcpRst != 0 {
		// RFC 5961 3.2, as Linux extends it: a RST resets at rcv_nxt,
		// at rcv_nxt-1 after the peer's FIN (resetCheck) or at the end
		// of the right-most SACK block this side advertises; any other
		// in-window RST draws a challenge ACK.
		if seq == tp.rcvNxt || tp.resetCheck(seq) || tp.sackOK && tp.numSacks > 0 && seq == tp.maxSackEnd() {
			tp.tcpReset() // consumed, not dropped
		} else {
			tp.sendChallengeAck()
			tp.dropReason(b)
		}
		return false
	}
	if opts.HasTimestamp && tp.tstampOK && seqLEQ(seq, tp.rcvWup) {
		tp.tsRecent = opts.TSVal // tcp_replace_ts_recent
		tp.tsRecentStamp = max(tp.now(), 1)
	}
	if flags&tcpSyn != 0 {
		if tp.state == TCPSynRecv && flags&tcpAck != 0 && seq+1 == end && seq+1 == tp.rcvNxt && cbGetAckSeq(b) == tp.sndNxt {
			return true // our SYN-ACK's answer in a simultaneous open
		}
		tp.synChallenge()
		tp.dropReason(b)
		return false
	}
	return true
}

// resetCheck accepts a RST at rcv_nxt-1, the sequence of the peer's FIN,
// once that FIN was received (CLOSE_WAIT, LAST_ACK, CLOSING): some stacks
// (macOS on ^C) send FIN then RST with the FIN's sequence and rate-limit
// their answers to the challenge ACK. Mirrors tcp_reset_check.
func (tp *TCPSock) resetCheck(seq uint32) bool {
	switch tp.state {
	case TCPCloseWait, TCPLastAck, TCPClosing:
		return seq == tp.rcvNxt-1
	}
	return false
}

// maxSackEnd is the end of the right-most block among the SACK blocks this
// side advertises (numSacks > 0), which tcp_validate_incoming accepts as
// a RST's sequence besides rcv_nxt.
func (tp *TCPSock) maxSackEnd() uint32 {
	end := tp.selectiveAcks[0].End
	for _, sp := range tp.selectiveAcks[1:tp.numSacks] {
		if seqGT(sp.End, end) {
			end = sp.End
		}
	}
	return end
}

func (tp *TCPSock) synChallenge() {
	tp.stack.mib.Inc(memctl.TcpExtTCPSYNChallenge)
	tp.sendChallengeAck()
}

// tcp_sequence's verdicts: SKB_NOT_DROPPED_YET and the drop reasons
// TCP_OLD_SEQUENCE, TCP_INVALID_SEQUENCE and TCP_INVALID_END_SEQUENCE.
const (
	seqOK = iota
	seqOld
	seqInvalid
	seqInvalidEnd
)

// sequence checks a segment against the receive window: it must not end
// before rcv_wup, nor start beyond the window, and (since Linux 6.17, "tcp:
// do not accept packets beyond window") it may end beyond the window only
// if the receive queue is empty or only its FIN is beyond (some stacks send
// FIN so). Mirrors tcp_sequence.
func (tp *TCPSock) sequence(seq, end uint32, fin bool) int {
	if seqLT(end, tp.rcvWup) {
		return seqOld
	}
	limit := tp.rcvNxt + tp.receiveWindow()
	if seqGT(end, limit) {
		switch {
		case fin && !seqGT(end-1, limit):
		case seqGT(seq, limit):
			return seqInvalid
		case !tp.rcvq.Empty():
			return seqInvalidEnd
		}
	}
	return seqOK
}

// oowRateLimited limits ACKs to out-of-window pure ACKs to one per 500 ms.
// Mirrors tcp_oow_rate_limited with tcp_invalid_ratelimit.
func (tp *TCPSock) oowRateLimited(b *skb.SKB) bool {
	return tp.oowRateLimitedMib(b, memctl.TcpExtTCPACKSkippedSeq)
}

// oowRateLimitedMib is tcp_oow_rate_limited counting c when it skips:
// segments carrying data (not SYN) are never limited; others get at most
// one answer per tcp_invalid_ratelimit (500 ms).
func (tp *TCPSock) oowRateLimitedMib(b *skb.SKB, c memctl.Counter) bool {
	if cbGetSeq(b) != cbGetEndSeq(b) && cbGetFlags(b)&tcpSyn == 0 {
		return false
	}
	return tp.oowRateLimitedAny(c)
}

// oowRateLimitedAny is __tcp_oow_rate_limited: at most one answer per the
// live sysctl tcp_invalid_ratelimit, counting c for each one skipped.
func (tp *TCPSock) oowRateLimitedAny(c memctl.Counter) bool {
	return tp.stack.oowRateLimitedAt(&tp.lastOOWAck, c)
}

// oowRateLimitedAt is __tcp_oow_rate_limited on the last_oow_ack_time
// *last of a socket or a request. *last holds the time plus one, so that 0
// means never.
func (s *Stack) oowRateLimitedAt(last *int64, c memctl.Counter) bool {
	now := s.clock.Nanotime()
	if *last != 0 {
		if elapsed := time.Duration(now - (*last - 1)); elapsed >= 0 &&
			elapsed < s.net.Sysctls.TCPInvalidRatelimit() {
			s.mib.Inc(c)
			return true
		}
	}
	*last = now + 1
	return false
}

// dsackSet reports the duplicate [seq, end) in the next ACK's D-SACK
// block when SACK was negotiated and the sysctl tcp_dsack allows it,
// counting TCPDSACKOldSent (below rcv_nxt) or TCPDSACKOfoSent. Mirrors
// tcp_dsack_set.
func (tp *TCPSock) dsackSet(seq, end uint32) {
	if !tp.sackOK || !tp.stack.net.Sysctls.TCPDsack() {
		return
	}
	if seqLT(seq, tp.rcvNxt) {
		tp.stack.mib.Inc(memctl.TcpExtTCPDSACKOldSent)
	} else {
		tp.stack.mib.Inc(memctl.TcpExtTCPDSACKOfoSent)
	}
	tp.duplicateSack = header.SACKBlock{Start: seq, End: end}
	tp.dsack = true
}

// sendChallengeAck sends an RFC 5961 challenge ACK unless the socket sent
// an out-of-window ACK within tcp_invalid_ratelimit (TCPACKSkippedChallenge)
// or the namespace's tcp_challenge_ack_limit per second is used up (no
// limit at its default, INT_MAX). Mirrors tcp_send_challenge_ack.
func (tp *TCPSock) sendChallengeAck() {
	if tp.oowRateLimitedAny(memctl.TcpExtTCPACKSkippedChallenge) || !tp.stack.challengeAckAllowed() {
		return
	}
	tp.sendAck()
}

// challengeAckAllowed is the host-wide part of tcp_send_challenge_ack:
// the namespace's tcp_challenge_ack_limit per second (no limit at its
// default, INT_MAX); an allowed challenge ACK is counted in
// TCPChallengeACK.
func (s *Stack) challengeAckAllowed() bool {
	if limit := s.net.Sysctls.TCPChallengeAckLimit(); limit != 1<<31-1 {
		if !s.tcp.challengeAllow(s, limit) {
			return false
		}
	}
	s.mib.Inc(memctl.TcpExtTCPChallengeACK)
	return true
}

// challengeAllow takes one of the second's challenge ACKs: a new second
// draws a budget between limit/2 and 1.5*limit. Mirrors the host-wide part
// of tcp_send_challenge_ack.
func (t *tcpTable) challengeAllow(s *Stack, limit int) bool {
	t.challengeMu.Lock()
	defer t.challengeMu.Unlock()
	now := s.clock.Nanotime() / int64(time.Second)
	if now != t.challengeStamp || !t.challengeInit {
		half := uint64(limit+1) >> 1
		t.challengeStamp, t.challengeInit = now, true
		t.challengeCount = uint32(half + s.rand()%uint64(max(limit, 1)))
	}
	if t.challengeCount == 0 {
		return false
	}
	t.challengeCount--
	return true
}

// sendDupack answers an unacceptable or duplicate segment. Mirrors
// tcp_send_dupack.
func (tp *TCPSock) sendDupack(b *skb.SKB) {
	seq, end := cbGetSeq(b), cbGetEndSeq(b)
	if end != seq && seqLT(seq, tp.rcvNxt) {
		tp.stack.mib.Inc(memctl.TcpExtDelayedACKLost)
		tp.enterQuickack()
		e := end
		if seqGT(e, tp.rcvNxt) {
			e = tp.rcvNxt
		}
		tp.dsackSet(seq, e)
	}
	tp.sendAck()
}

// tcpReset handles an acceptable RST. Mirrors tcp_reset.
func (tp *TCPSock) tcpReset() {
	var err syscall.Errno
	switch tp.state {
	case TCPSynSent:
		err = syscall.ECONNREFUSED
	case TCPCloseWait:
		err = syscall.EPIPE
	case TCPClose:
		return
	default:
		err = syscall.ECONNRESET
	}
	tp.setErr(err)
	tp.tcpDone()
}

// rttEstimator folds an RTT sample into srtt/rttvar and recomputes the
// RTO. Mirrors tcp_rtt_estimator + tcp_set_rto (RFC 6298 with Linux's
// mdev_max and icsk_rto_min, tcp_rto_min_us when the socket was made, as
// the floor on rttvar; the RTO at most icsk_rto_max).
func (tp *TCPSock) rttEstimator(sample time.Duration) {
	m := int64(sample / time.Microsecond)
	if m <= 0 {
		m = 1
	}
	rtoMinUs := uint32(tp.rtoMin / time.Microsecond) // tcp_rto_min_us(sk)
	srtt := int64(tp.srttUs)
	if srtt != 0 {
		m -= srtt >> 3
		srtt += m
		if m < 0 {
			m = -m
			m -= int64(tp.mdevUs >> 2)
			if m > 0 {
				m >>= 3
			}
		} else {
			m -= int64(tp.mdevUs >> 2)
		}
		tp.mdevUs = uint32(int64(tp.mdevUs) + m)
		if tp.mdevUs > tp.mdevMaxUs {
			tp.mdevMaxUs = tp.mdevUs
			if tp.mdevMaxUs > tp.rttvarUs {
				tp.rttvarUs = tp.mdevMaxUs
			}
		}
		if seqGT(tp.sndUna, tp.rttSeq) {
			if tp.mdevMaxUs < tp.rttvarUs {
				tp.rttvarUs -= (tp.rttvarUs - tp.mdevMaxUs) >> 2
			}
			tp.rttSeq = tp.sndNxt
			tp.mdevMaxUs = rtoMinUs
		}
	} else {
		srtt = m << 3
		tp.mdevUs = uint32(m << 1)
		tp.rttvarUs = max(tp.mdevUs, rtoMinUs)
		tp.mdevMaxUs = tp.rttvarUs
		tp.rttSeq = tp.sndNxt
	}
	tp.srttUs = uint32(max(srtt, 1))
	rto := time.Duration(int64(tp.srttUs>>3)+int64(tp.rttvarUs)) * time.Microsecond
	tp.rto = min(rto, tp.rtoMax) // tcp_bound_rto
}

// mayUpdateWindow mirrors tcp_may_update_window.
func (tp *TCPSock) mayUpdateWindow(ack, ackSeq, nwin uint32) bool {
	return seqGT(ack, tp.sndUna) || seqGT(ackSeq, tp.sndWl1) || (ackSeq == tp.sndWl1 && (nwin > tp.sndWnd || nwin == 0))
}

// ack processes the ACK field. fast says the segment took the fast path
// (no FLAG_SLOWPATH). Returns 1 when processing continues, 0 for an old
// ACK (the data is still processed), -1 to drop the segment and -2 for an
// unacceptable ACK in SYN_RECV. Mirrors tcp_ack.
func (tp *TCPSock) ack(b *skb.SKB, th header.TCP, opts *header.TCPOptions, fast bool) int {
	ack := cbGetAckSeq(b)
	seq := cbGetSeq(b)
	priorUna := tp.sndUna
	if tp.state == TCPSynRecv && (!seqGT(ack, tp.sndUna) || seqGT(ack, tp.sndNxt)) {
		return -2
	}
	if seqGT(ack, tp.sndNxt) {
		// Acks data never sent: RFC 5961 5.2 and RFC 9293 3.10.7.4 want
		// a (rate-limited) challenge ACK. In ESTABLISHED tcp_ack sends
		// it itself since "tcp: send a challenge ACK on SEG.ACK >
		// SND.NXT" (7.1, in 6.18 stable from 6.18.38; before, it was
		// dropped silently); in the other states tcp_rcv_state_process
		// passes FLAG_NO_CHALLENGE_ACK and sends it on tcp_ack's
		// negative return. Both come to tcp_send_challenge_ack.
		tp.sendChallengeAck()
		return -1
	}
	if seqLT(ack, priorUna) {
		if seqLT(ack, priorUna-tp.maxWindow) {
			tp.sendChallengeAck()
			return -1
		}
		return 0
	}
	tp.probesOut = 0 // something answered: keepalive and window probes start over
	// tcp_ack: ACKs that advance snd_una on the fast path (pure, or on
	// predicted data) count as TCPHPAcks, other ACKs without data as
	// TCPPureAcks.
	if seqGT(ack, priorUna) && fast {
		tp.stack.mib.Inc(memctl.TcpExtTCPHPAcks)
	} else if seq == cbGetEndSeq(b) {
		tp.stack.mib.Inc(memctl.TcpExtTCPPureAcks)
	}
	nwin := uint32(th.Window()) << tp.sndWscale
	oldWnd := tp.sndWnd
	winUpdate := tp.mayUpdateWindow(ack, seq, nwin) // FLAG_WIN_UPDATE
	if winUpdate {                                  // tcp_ack_update_window
		tp.sndWl1 = seq
		if nwin != tp.sndWnd {
			tp.sndWnd = nwin
			// "The only place where fast path is recovered for
			// sending TCP": predict the new window.
			tp.predOn = false
			tp.fastPathCheck()
		}
		if nwin > tp.maxWindow {
			tp.maxWindow = nwin
			if tp.pmtuCookie != 0 { // the MSS is synced from the handshake on
				tp.syncMss(tp.pmtuCookie) // half the new max_window may allow more
			}
		}
	}
	ece := tp.ecnRcvEcnEcho(cbGetFlags(b)) // FLAG_ECE
	tp.ackFlagECE = ece
	tp.ackOrigSackAcked = false // cleanRtxQueue also runs outside ack (the SYN-ACK's)
	defer func() {
		tp.ackFlagECE, tp.ackOrigSackAcked, tp.ackDataSacked, tp.ackDsackTLP = false, false, false, false
	}()
	tp.ecnAcceptCWR(b)
	priorFack := tp.highestSackSeq()
	reord := priorFack
	priorPackets, priorSacked := tp.packetsOut, tp.sackedOut
	priorDelivered, priorLost := tp.delivered, tp.rate.lost
	tp.rs = tcpRateSample{rttUs: -1, priorInFlight: tp.packetsInFlight()}
	sackedNew, dsack := tp.sackTag(opts, ack, priorFack, &reord)
	tp.ackDataSacked = sackedNew > 0
	acked, rtt := tp.cleanRtxQueue(ack, priorFack, &reord)
	tp.sndUnaUpdate(ack)
	if tp.sackOK && seqLT(reord, priorFack) {
		tp.checkSackReordering(reord, false)
	}
	if ece { // tcp_count_delivered with ece_ack: delivered_ce and TCPDeliveredCE
		tp.deliveredCE += tp.delivered - priorDelivered
		tp.stack.mib.Add(memctl.TcpExtTCPDeliveredCE, uint64(tp.delivered-priorDelivered))
	}
	tp.rackUpdateReoWnd()
	if e, ok := tp.cc.(ackEventer); ok {
		e.inAckEvent(tp) // tcp_in_ack_event
	}
	if acked > 0 || seqGT(ack, priorUna) {
		skbRtt := rtt
		if tp.tstampOK && opts.HasTimestamp && opts.TSEcr != 0 {
			if d := int32(tp.tsNow() - opts.TSEcr); d >= 0 {
				rtt = max(time.Duration(d)*time.Millisecond, time.Microsecond)
			}
		}
		if rtt > 0 {
			tp.rttEstimator(rtt)
			// min_rtt prefers the microsecond sample of the skb's
			// transmit time, as Linux's ca_rtt_us does; a timestamp
			// sample counts at least one tick (tcp_rtt_tsopt_us).
			if skbRtt > 0 {
				tp.updateRttMin(skbRtt)
			} else {
				tp.updateRttMin(max(rtt, time.Millisecond))
			}
		}
		tp.caPktsAcked(acked, skbRtt, rtt) // pkts_acked (tcp_cong.go)
		tp.backoff = 0
		tp.retransmits = 0
		tp.probesOut = 0
		// retrans_stamp stays until the episode is over (tryToOpen):
		// timestamp undo compares echoes with it (tcp_undo.go).
	}
	plen := b.Len()
	flags := cbGetFlags(b)
	isDupack := ack == priorUna && plen == 0 && flags&(tcpSyn|tcpFin) == 0 && nwin == oldWnd && tp.packetsOut > 0
	if tp.state == TCPSynRecv {
		tp.synRecvEstablished(b, nwin)
	}
	// PRR sets cwnd in recovery and CWR, which an ECN echo in Open or
	// Disorder is about to enter (tcp_cong_control runs after
	// tcp_fastretrans_alert in Linux).
	if acked > 0 && !tp.inCwndReduction() && !(ece && tp.caState <= tcpCADisorder) && tp.ccMain == nil {
		tp.cc.congAvoid(tp, acked)
	}
	// tcp_ack processes a probe's ACK before tcp_fastretrans_alert, and
	// on its no_queue path (nothing was in flight) after it.
	notDup := plen > 0 || winUpdate || acked > 0 // FLAG_NOT_DUP
	if tp.tlpHighSeq != 0 && priorPackets > 0 {
		tp.processTlpAck(ack, seqGT(ack, priorUna), notDup, sackedNew > 0)
	}
	reoArmed := false // RACK armed the reorder timer: FLAG_SET_XMIT_TIMER cleared
	if tp.caState != tcpCAOpen || isDupack || sackedNew > 0 || tp.sackedOut > 0 || dsack || tp.undoMarker != 0 || ece {
		reoArmed = tp.fastretransAlert(ack, priorUna, isDupack, acked+sackedNew)
	}
	if tp.tlpHighSeq != 0 && priorPackets == 0 {
		tp.processTlpAck(ack, seqGT(ack, priorUna), notDup, sackedNew > 0)
	}
	if priorPackets > 0 { // tcp_ack's no_queue path skips what follows
		rs := &tp.rs
		// FLAG_ACK_MAYBE_DELAYED: one runt segment acked alone, with
		// nothing SACKed (tcp_clean_rtx_queue).
		rs.isAckDelayed = acked == 1 && priorSacked == 0 && sackedNew == 0 && !dsack &&
			int(ack-priorUna) < tp.mssCache && rs.priorDelivered+1 == tp.delivered
		tp.rateGen(tp.delivered-priorDelivered, tp.rate.lost-priorLost, rs)
		if tp.ccMain != nil {
			tp.ccMain.congControl(tp, rs) // tcp_cong_control
		}
	}
	if tp.rexmitNew { // tcp_xmit_recovery, REXMIT_NEW
		tp.rexmitNew = false
		tp.xmitNewOrRetransmit()
	}
	if tp.rexmitLost { // tcp_xmit_recovery
		tp.rexmitLost = false
		tp.xmitRetransmitQueue()
	}
	if (seqGT(ack, priorUna) || acked > 0) && !reoArmed {
		if !tp.scheduleLossProbe() { // tcp_set_xmit_timer
			tp.rearmRTO()
		}
	}
	if priorPackets == 0 { // tcp_ack's no_queue path
		tp.ackProbe()
	}
	return 1
}

// ackProbe, on an ACK with nothing in flight and data waiting, stops the
// persist timer if the window now holds the next skb, and otherwise
// re-arms it from now (backed off, cut to what TCP_USER_TIMEOUT leaves).
// Mirrors tcp_ack_probe.
func (tp *TCPSock) ackProbe() {
	h := tp.writeQueue.Peek()
	if h == nil {
		return
	}
	if !seqGT(cbGetEndSeq(h), tp.sndUna+tp.sndWnd) {
		tp.backoff = 0
		tp.probesTstamp = 0
		tp.clearRetransTimer()
		return
	}
	tp.resetRetransTimer(timerProbe0, tp.clampProbe0ToUserTimeout(tp.probe0When()))
}

// cleanRtxQueue frees the fully acknowledged skbs, trims the acknowledged
// head off a multi-segment skb the ACK covers in part (tsoAcked), and
// returns how many segments were acked and an RTT sample from the newest
// skb never retransmitted (Karn). An skb neither SACKed nor retransmitted
// that is cumulatively acked below priorFack arrived out of order: reord
// is lowered to its start. Segments not SACKed before count as delivered
// and, with SACK, advance RACK unless the ACK was for their original
// transmission (tcp_rack_advance). Mirrors tcp_clean_rtx_queue.
func (tp *TCPSock) cleanRtxQueue(ack, priorFack uint32, reord *uint32) (uint32, time.Duration) {
	var acked uint32
	var rtt time.Duration
	now := tp.now()
	for b := tp.rtxQueue.Peek(); b != nil; b = tp.rtxQueue.Peek() {
		fully := !seqGT(cbGetEndSeq(b), ack)
		s, start := cbGetSacked(b), cbGetSeq(b)
		var n uint32
		if fully {
			n = uint32(max(tcpSkbPcount(b), 1))
		} else if n = tp.tsoAcked(b, ack); n == 0 {
			break
		}
		tp.adjustPcount(b, int(n)) // out of every count it is in
		if s&tcpcbEverRetrans == 0 && b.Tstamp != 0 {
			rtt = max(time.Duration(now-b.Tstamp), time.Microsecond)
		}
		if s&tcpcbSackedAcked == 0 {
			tp.rateSkbDelivered(b, n)
			if tp.sackOK && !tp.skbSpuriousRetrans(b) {
				tp.rackAdvance(s, cbGetEndSeq(b), b.Tstamp)
			}
		}
		if s&(tcpcbEverRetrans|tcpcbSackedAcked) == 0 && seqLT(start, priorFack) && seqLT(start, *reord) {
			*reord = start
		}
		if s&(tcpcbEverRetrans|tcpcbSackedRetrans|tcpcbSackedAcked) == 0 && seqLEQ(cbGetEndSeq(b), tp.highSeq) {
			tp.ackOrigSackAcked = true // FLAG_ORIG_SACK_ACKED
		}
		acked += n
		if !fully {
			break
		}
		if cbGetFlags(b)&tcpSyn != 0 {
			tp.retransStamp = 0 // FLAG_SYN_ACKED
		}
		tp.rtxQueue.Unlink(b)
		tp.sk.WmemFreeSkb(b.Truesize())
		b.Free()
	}
	if tp.rtxQueue.Empty() {
		tp.packetsOut, tp.sackedOut, tp.lostOut, tp.retransOut = 0, 0, 0, 0
	}
	if acked > 0 && tp.mtup.probeSize != 0 && !seqGT(tp.mtup.probeSeqEnd, ack) {
		tp.mtupProbeSuccess()
	}
	return acked, rtt
}

// synRecvEstablished completes a passive (or simultaneous) open. Mirrors
// the TCP_SYN_RECV case of tcp_rcv_state_process.
func (tp *TCPSock) synRecvEstablished(b *skb.SKB, nwin uint32) {
	tp.setState(TCPEstablished)
	tp.sndWnd = nwin
	tp.sndWl1 = cbGetSeq(b)
	tp.maxWindow = max(tp.maxWindow, nwin)
	tp.initTransfer()
	tp.fastPathOn()
	if p := tp.parent; p != nil {
		p.sk.Wq.Wake()
	}
}

// initTransfer starts data transfer. Mirrors tcp_init_transfer.
func (tp *TCPSock) initTransfer() {
	tp.mtupInit()
	tp.syncMss(tp.pathMTU())
	tp.initBufferSpace()
	tp.initCongestionControl()
	if tp.keepalive {
		tp.resetKeepTimer(tp.keepaliveTime())
	}
	tp.clearRetransTimer()
	tp.rearmRTO()
}

// rcvSynSent handles a segment in SYN_SENT. Mirrors
// tcp_rcv_synsent_state_process and tcp_finish_connect.
func (tp *TCPSock) rcvSynSent(b *skb.SKB, th header.TCP, opts *header.TCPOptions) bool {
	flags := cbGetFlags(b)
	tp.stack.synOptionsAllowed(opts)
	seq, ack := cbGetSeq(b), cbGetAckSeq(b)
	if flags&tcpAck != 0 {
		if !seqGT(ack, tp.iss) || seqGT(ack, tp.sndNxt) {
			tp.stack.tcpSendReset(th, tp.remote.Addr(), tp.local.Addr(), b.Len())
			return false
		}
		if flags&tcpRst != 0 {
			tp.tcpReset()
			return false
		}
		if flags&tcpSyn == 0 {
			tp.dropReason(b) // discard_and_undo: TCP_FLAGS
			return false
		}
		tp.applySynOptions(opts, true)
		tp.irs = seq
		tp.rcvNxt = seq + 1
		tp.rcvWup = tp.rcvNxt
		tp.copiedSeq = tp.rcvNxt
		tp.sndWl1 = seq
		tp.sndWnd = uint32(th.Window())
		tp.maxWindow = tp.sndWnd
		reord := tp.sndUna
		acked, rtt := tp.cleanRtxQueue(ack, tp.sndUna, &reord)
		_ = acked
		tp.sndUnaUpdate(ack)
		if rtt > 0 {
			tp.rttEstimator(rtt)
			tp.updateRttMin(rtt)
		}
		tp.backoff, tp.retransmits, tp.retransStamp = 0, 0, 0
		tp.ecnRcvSynack(flags)
		tp.setState(TCPEstablished)
		tp.initTransfer()
		// tcp_finish_connect: the SYN-ACK's window is unscaled, so with
		// window scaling header prediction waits for the first window
		// update (ack's fastPathCheck).
		if tp.sndWscale == 0 {
			tp.fastPathOn()
		} else {
			tp.predOn = false
		}
		tp.enterQuickack()
		tp.sendAck()
		tp.pushPendingFrames(tp.nonagle())
		return false
	}
	if flags&tcpRst != 0 {
		tp.dropReason(b) // discard_and_undo: a RST without ACK
		return false
	}
	if flags&tcpSyn != 0 { // simultaneous open
		tp.applySynOptions(opts, true)
		tp.ecnRcvSyn(flags)
		tp.irs = seq
		tp.rcvNxt = seq + 1
		tp.rcvWup = tp.rcvNxt
		tp.copiedSeq = tp.rcvNxt
		tp.sndWl1 = seq
		tp.sndWnd = uint32(th.Window())
		tp.maxWindow = tp.sndWnd
		tp.setState(TCPSynRecv)
		tp.sendSynAckSimultaneous()
		tp.resetRetransTimer(timerRetrans, tp.rto)
		return false
	}
	tp.dropReason(b) // neither SYN nor RST: discard_and_undo
	return false
}

// applySynOptions records what the peer's SYN negotiated. Mirrors the
// option handling of tcp_rcv_synsent_state_process.
func (tp *TCPSock) applySynOptions(opts *header.TCPOptions, active bool) {
	tp.wscaleOK = opts.HasWS
	if tp.wscaleOK {
		tp.sndWscale = min(opts.WS, tcpMaxWscale)
	} else {
		tp.sndWscale, tp.rcvWscale = 0, 0
		tp.windowClamp = min(tp.windowClamp, 65535)
	}
	tp.sackOK = opts.SACKPermitted
	tp.tstampOK = opts.HasTimestamp
	if tp.tstampOK {
		tp.tsRecent = opts.TSVal
		tp.tsRecentStamp = max(tp.now(), 1)
		tp.advmss -= tcpOlenTstampAl
	}
	tp.mssClamp = tcpMssDefault
	if opts.HasMSS && opts.MSS > 0 {
		tp.mssClamp = int(opts.MSS)
	}
	tp.syncMss(tp.pathMTU())
}

// timeWaitRcv handles a segment for a TIME_WAIT socket. Mirrors the real
// TIME-WAIT part of tcp_timewait_state_process: an in-window bare ACK (seq
// == rcv_nxt) restarts the 2*MSL timer and a RST at rcv_nxt kills the
// socket (tcp_rfc1337 = 0); a new SYN beyond the old sequence space may
// reopen through a listener; any other segment that is not a RST (a
// retransmitted FIN, data, an old SYN, a PAWS reject) is answered with an
// ACK, restarting the timer if it carries ACK or failed PAWS; a RST not at
// rcv_nxt is ignored.
func (tp *TCPSock) timeWaitRcv(b *skb.SKB, th header.TCP, opts *header.TCPOptions) bool {
	flags := cbGetFlags(b)
	seq, end := cbGetSeq(b), cbGetEndSeq(b)
	pawsReject := tp.tstampOK && opts.HasTimestamp && flags&tcpRst == 0 && tp.tsRecentStamp != 0 &&
		int32(tp.tsRecent-opts.TSVal) > 1 && // TCP_PAWS_WINDOW (tcp_paws_reject)
		time.Duration(tp.now()-tp.tsRecentStamp) < 24*24*time.Hour
	if !pawsReject && seq == tp.rcvNxt && (seq == end || flags&tcpRst != 0) {
		if flags&tcpRst != 0 {
			if !tp.stack.net.Sysctls.TCPRfc1337() { // TIME_WAIT assassination
				tp.tcpDone()
				tp.destroyIfOrphan()
				return false
			}
			// RFC 1337: the RST is ignored and TIME_WAIT runs its course
			// again.
			tp.resetKeepTimer(tcpTimewaitLen)
			return false
		}
		tp.resetKeepTimer(tcpTimewaitLen)
		if opts.HasTimestamp && tp.tstampOK {
			tp.tsRecent, tp.tsRecentStamp = opts.TSVal, max(tp.now(), 1)
		}
		return false
	}
	if flags&tcpSyn != 0 && flags&(tcpRst|tcpAck) == 0 && !pawsReject &&
		(seqGT(seq, tp.rcvNxt) || (tp.tstampOK && opts.HasTimestamp && seqGT(opts.TSVal, tp.tsRecent))) {
		if l := tp.stack.tcp.lookupListener(tp.local.Addr(), tp.local.Port()); l != nil {
			isn := tp.sndNxt + 65535 + 2
			tu := tp.tuple()
			tp.tcpDone()
			tp.destroyIfOrphan()
			if tp.inBacklogRcv {
				// Owned (from the backlog): the listener's spinlock
				// never waits for this socket, so no lock is dropped.
				return l.listenRcvWithISN(b, th, opts, tu, isn)
			}
			// Softirq side: drop this socket's spinlock first, as
			// tcp_v4_rcv hands the segment to the listener outside it.
			tp.bhUnlockSock()
			keep := l.listenRcvWithISN(b, th, opts, tu, isn)
			tp.bhLockSock()
			return keep
		}
	}
	if pawsReject {
		tp.stack.mib.Inc(memctl.TcpExtPAWSTimewait)
	}
	if flags&tcpRst == 0 {
		if pawsReject || flags&tcpAck != 0 {
			tp.resetKeepTimer(tcpTimewaitLen)
		}
		if !tp.oowRateLimitedMib(b, memctl.TcpExtTCPACKSkippedTimeWait) { // tcp_timewait_check_oow_rate_limit
			tp.sendAck()
		}
	}
	return false
}

// timeWaitFin takes the peer's FIN, ending at rcv_nxt+1, at a FIN_WAIT2
// timewait sock: TIME_WAIT, with an ACK. Nothing is queued or charged: a
// timewait sock has no receive queue and no memory (dataQueue would have
// queued the FIN's skb and charged its truesize, r832 for 60 s). Mirrors
// the FIN_WAIT2 part of tcp_timewait_state_process (its TCP_TW_ACK).
// Deviation: sockfs keeps the full socket's TCPSock for the timewait sock,
// so rcv's checks of the full socket (PAWS, window, RST, SYN, ACK, new
// data) come first, where Linux repeats them on the timewait sock; what
// passes them and is not this FIN goes on to dataQueue, which queues
// nothing beyond rcv_nxt for it.
func (tp *TCPSock) timeWaitFin(b *skb.SKB) {
	tp.rcvNxtUpdate(cbGetEndSeq(b))
	tp.fin() // FIN_WAIT2 -> TIME_WAIT: the ACK, then tcp_time_wait (rescheduled)
}

// enterQuickack is tcp_enter_quickack_mode(sk, TCP_MAX_QUICKACKS).
func (tp *TCPSock) enterQuickack() { tp.enterQuickackMode(tcpMaxQuickacks) }

// enterQuickackMode mirrors tcp_enter_quickack_mode.
func (tp *TCPSock) enterQuickackMode(maxq int) {
	tp.incrQuickack(maxq)
	tp.ackPingpong = 0 // inet_csk_exit_pingpong_mode
	tp.ato = tcpAtoMin
}

// incrQuickack mirrors tcp_incr_quickack.
func (tp *TCPSock) incrQuickack(maxq int) {
	q := int(tp.rcvWnd) / (2 * max(tp.rcvMss, 1))
	if q == 0 {
		q = 2
	}
	q = min(q, maxq)
	if uint8(q) > tp.ackQuick {
		tp.ackQuick = uint8(q)
	}
}

func (tp *TCPSock) inQuickack() bool { return tp.ackQuick > 0 && !tp.inPingpong() }

// inPingpong reports interactive mode, in which ACKs wait for an answer to
// carry them. Mirrors inet_csk_in_pingpong_mode.
func (tp *TCPSock) inPingpong() bool {
	return int(tp.ackPingpong) >= tp.stack.net.Sysctls.TCPPingpongThresh()
}

// enterPingpong mirrors inet_csk_enter_pingpong_mode.
func (tp *TCPSock) enterPingpong() {
	tp.ackPingpong = uint8(tp.stack.net.Sysctls.TCPPingpongThresh())
}

// eventDataRecv updates the delayed-ACK estimator and the window on new
// data that was just queued (and charged): truesize is b's before the
// queueing, which a coalescing into the tail may have moved to the tail
// here, while Linux's skb keeps its own. Mirrors tcp_event_data_recv.
func (tp *TCPSock) eventDataRecv(b *skb.SKB, truesize int) {
	tp.ackPending |= icskAckSched
	tp.measureRcvMss(b, truesize)
	tp.rcvRttMeasure()
	now := tp.now()
	if tp.ato == 0 {
		tp.incrQuickack(tcpMaxQuickacks)
		tp.ato = tcpAtoMin
	} else {
		m := time.Duration(now - tp.lrcvtime)
		switch {
		case m <= tcpAtoMin/2:
			tp.ato = tp.ato/2 + tcpAtoMin/2
		case m < tp.ato:
			tp.ato = tp.ato/2 + m
			if tp.ato > tp.rto {
				tp.ato = tp.rto
			}
		case m > tp.rto:
			tp.incrQuickack(tcpMaxQuickacks)
		}
	}
	tp.lrcvtime = now
	tp.ecnCheckCE(b)
	if b.Len() >= 128 {
		tp.growWindow(b, truesize, true, tp.tcpSpace())
	}
}

// ackSndCheck sends the pending ACK now or arms the delayed-ACK timer.
// Mirrors __tcp_ack_snd_check, including its order of evaluation: the
// window test comes first, and __tcp_select_window leaves quickack mode
// when free space is short, so a segment that fills the buffer waits for
// the delayed ACK even if a quickack was left. With fewer than
// SO_RCVLOWAT bytes unread, more than a segment is acknowledged at once:
// the reader waits for more.
func (tp *TCPSock) ackSndCheck() {
	if tp.ackPending&icskAckSched == 0 {
		return
	}
	moreThanOne := tp.rcvNxt-tp.rcvWup > uint32(tp.rcvMss) &&
		(int(tp.rcvNxt-tp.copiedSeq) < tp.rcvlowat || tp.selectWindowRaw() >= tp.rcvWnd)
	if tp.inQuickack() || tp.ackPending&icskAckNow != 0 {
		tp.sendAck()
		return
	}
	if moreThanOne {
		// More than one full segment unacknowledged: ACK now, or, in
		// the middle of a device's receive batch, at its end (rxBatch).
		if tp.rxb != nil {
			tp.rxb.deferAck(tp)
			return
		}
		tp.sendAck()
		return
	}
	if !tp.ofo.Empty() {
		tp.sackCompress()
		return
	}
	tp.scheduleDelack()
}

// sackCompress decides the duplicate ACK for out-of-order data. The first
// three for a given rcv_nxt go at once (the sender's fast retransmit needs
// them); after that, with SACK, up to the sysctl tcp_comp_sack_nr (44; 0:
// none) are merged into
// one, each merge counted in TCPAckCompressed when the ACK goes. Mirrors
// the compression at the end of __tcp_ack_snd_check.
//
// Deviation: Linux sends the merged ACK from an hrtimer after 5% of the RTT
// (at most tcp_comp_sack_delay_ns, 1 ms); we send it at the end of the
// receive batch (rxBatch: a device's, or a pass over the backlog in
// release_sock), which is sooner, and at once when there is no batch.
func (tp *TCPSock) sackCompress() {
	if !tp.sackOK || int(tp.compressedAck) >= tp.stack.net.Sysctls.TCPCompSackNr() || tp.rxb == nil {
		tp.sendAck()
		return
	}
	if tp.compressedAckRcvNxt != tp.rcvNxt {
		tp.compressedAckRcvNxt = tp.rcvNxt
		tp.dupAckCounter = 0
	}
	if tp.dupAckCounter < tcpFastRetransThresh {
		tp.dupAckCounter++
		tp.sendAck()
		return
	}
	tp.compressedAck++
	tp.rxb.deferAck(tp)
}

// sendBatchAck sends the ACK deferred to the end of a receive batch, if one
// is still scheduled (nothing sent it since) and the socket lives. With
// duplicate ACKs merged into it (sackCompress) it is Linux's compressed ACK
// going out when its timer fires (tcp_compressed_ack_kick, or
// tcp_sack_compress_send_ack from the delayed-ACK handler when the socket
// was owned): TCPAckCompressed counts the merged ACKs but the one sent.
func (tp *TCPSock) sendBatchAck() {
	if tp.ackPending&icskAckSched == 0 || tp.destroyed {
		return
	}
	if tp.compressedAck > 0 {
		tp.compressedAck--
	}
	tp.sendAck()
}

// sackCompressSendAck sends the compressed ACK at once, counting the ACKs
// merged into it but itself. Mirrors tcp_sack_compress_send_ack.
func (tp *TCPSock) sackCompressSendAck() {
	if tp.compressedAck == 0 {
		return
	}
	tp.stack.mib.Add(memctl.TcpExtTCPAckCompressed, uint64(tp.compressedAck-1))
	tp.compressedAck = 0
	tp.sendAck()
}

// dataQueue queues the data of a segment: in order into the receive queue
// (then pulling what became in order from the out-of-order queue), out of
// order into the sorted out-of-order queue, with the memory admission of
// tcp_try_rmem_schedule. fast is rcv's fastPathVerdict. Returns true if b
// was kept. Mirrors tcp_data_queue (and the fast path's tcp_queue_rcv).
func (tp *TCPSock) dataQueue(b *skb.SKB, fast bool) bool {
	seq, end := cbGetSeq(b), cbGetEndSeq(b)
	flags := cbGetFlags(b)
	mib := tp.stack.mib
	if seq == end {
		return false
	}
	if seq == tp.rcvNxt || (seqLT(seq, tp.rcvNxt) && seqGT(end, tp.rcvNxt)) {
		if seqLT(seq, tp.rcvNxt) { // partial duplicate: D-SACK the old part
			tp.dsackSet(seq, tp.rcvNxt)
		}
		if tp.receiveWindow() == 0 && !(flags&tcpFin != 0 && end-seq == 1) {
			mib.Inc(memctl.TcpExtTCPZeroWindowDrop)
			tp.dropReason(b)
			tp.enterQuickack()
			tp.ackPending |= icskAckSched | icskAckNow
			return false
		}
		if fast && b.Len() > 0 {
			// Header prediction: queued with no rcvbuf check, charged from
			// forward_alloc (tcp_rcv_established's fast path).
			mib.Inc(memctl.TcpExtTCPHPHits)
			// Linux queues predicted data before tcp_ack, which may
			// reclaim forward_alloc below what the verdict saw; here
			// ack ran first, so charge what it gave back.
			tp.sk.ForcedMemSchedule(b.Truesize())
		} else if !tp.tryRmemSchedule(b, b.Truesize()) {
			tp.ackPending |= icskAckNoMem | icskAckNow | icskAckSched
			tp.sk.Wq.Wake()
			if !tp.rcvq.Empty() && b.Len() > 0 {
				mib.Inc(memctl.TcpExtTCPRcvQDrop)
				tp.dropReason(b)
				return false
			}
			tp.sk.ForcedMemSchedule(b.Truesize())
		}
		// Queue (and charge) first, then tcp_event_data_recv, as
		// tcp_data_queue does: the window grows into what is left of
		// rcvbuf with this segment in it.
		// A FIN without data is queued too, charged like any skb until
		// the reader reaches it (or merged into the tail skb), as
		// tcp_queue_rcv takes every in-order segment: ss shows r832 on
		// the live kernel for an unread FIN.
		tp.ackPending |= icskAckSched
		truesize := b.Truesize()
		keep := !tp.queueRcv(b, false)
		tp.rcvNxtUpdate(end)
		if b.Len() > 0 {
			tp.eventDataRecv(b, truesize)
		}
		if flags&tcpFin != 0 {
			tp.fin()
		}
		if !tp.ofo.Empty() {
			tp.ofoQueue()
			if tp.ofo.Empty() {
				tp.ackPending |= icskAckNow
			}
		}
		if tp.numSacks > 0 {
			tp.sackRemove()
		}
		tp.fastPathCheck()
		tp.dataReady() // tcp_data_ready
		return keep
	}
	if !seqGT(end, tp.rcvNxt) { // wholly old: a retransmission
		mib.Inc(memctl.TcpExtDelayedACKLost)
		tp.dsackSet(seq, end)
		tp.enterQuickack()
		tp.ackPending |= icskAckSched | icskAckNow
		tp.dropReason(b) // TCP_OLD_DATA
		return false
	}
	if !seqLT(seq, tp.rcvNxt+tp.receiveWindow()) { // beyond the window
		if tp.receiveWindow() == 0 {
			mib.Inc(memctl.TcpExtTCPZeroWindowDrop)
		}
		tp.enterQuickack()
		tp.ackPending |= icskAckSched | icskAckNow
		tp.dropReason(b) // TCP_OVERWINDOW
		return false
	}
	return tp.dataQueueOfo(b)
}

// fastPathVerdict reports whether tcp_rcv_established would take b
// through its fast path, decided as Linux decides it, before anything of
// the segment is processed: the header is predicted (headerPredicted), its
// timestamp is not older than ts_recent (else PAWS is checked on the slow
// path), and data fits in what forward_alloc holds (a larger skb goes to
// step 5, the slow path, with its admission against rcvbuf). Mirrors the
// tests at the top of tcp_rcv_established.
func (tp *TCPSock) fastPathVerdict(b *skb.SKB, th header.TCP, opts *header.TCPOptions) bool {
	if !tp.headerPredicted(b, th) {
		return false
	}
	if tp.tstampOK && (!opts.HasTimestamp || int32(opts.TSVal-tp.tsRecent) < 0) {
		return false
	}
	return b.Len() == 0 || b.Truesize() <= tp.sk.ForwardAlloc()
}

// headerPredicted reports whether Linux's header prediction takes b:
// pred_flags are on, the header is the expected length (timestamps only),
// only ACK (and PSH) is set, the window field is the one predicted, the
// segment is the next in order and acknowledges nothing unsent. Mirrors
// the test at the top of tcp_rcv_established.
func (tp *TCPSock) headerPredicted(b *skb.SKB, th header.TCP) bool {
	hlen := header.TCPMinSize
	if tp.tstampOK {
		hlen += tcpOlenTstampAl
	}
	return tp.predOn && th.DataOffset() == hlen &&
		cbGetFlags(b)&^tcpPsh == tcpAck && uint32(th.Window()) == tp.predWnd>>tp.sndWscale &&
		cbGetSeq(b) == tp.rcvNxt && !seqGT(cbGetAckSeq(b), tp.sndNxt)
}

// fastPathOn turns header prediction on for the current send window.
// Mirrors __tcp_fast_path_on (tcp_fast_path_on passes snd_wnd).
func (tp *TCPSock) fastPathOn() {
	tp.predOn, tp.predWnd = true, tp.sndWnd
}

// fastPathCheck turns header prediction on when nothing calls for the slow
// path: no out-of-order data, a window offered, receive memory below
// rcvbuf, no urgent data. Mirrors tcp_fast_path_check.
func (tp *TCPSock) fastPathCheck() {
	if tp.ofo.Empty() && tp.rcvWnd != 0 && tp.sk.RmemAlloc() < tp.sk.Rcvbuf() && !tp.urgData {
		tp.fastPathOn()
	}
}

// ofoQueue moves the segments that became in order to the receive queue.
// Mirrors tcp_ofo_queue.
func (tp *TCPSock) ofoQueue() {
	for b := tp.ofo.Peek(); b != nil && !seqGT(cbGetSeq(b), tp.rcvNxt); b = tp.ofo.Peek() {
		tp.ofo.Unlink(b)
		end := cbGetEndSeq(b)
		if !seqGT(end, tp.rcvNxt) {
			tp.dropReason(b) // TCP_OFO_DROP
			b.Free()
			continue
		}
		tp.rcvNxtUpdate(end)
		fin := cbGetFlags(b)&tcpFin != 0
		if tp.queueRcv(b, true) { // a FIN without data too (tcp_ofo_queue)
			b.Free()
		}
		if fin {
			tp.fin()
			break
		}
	}
}

// dataQueueOfo inserts an out-of-order segment in sequence order, dropping
// what is wholly covered. Mirrors tcp_data_queue_ofo.
func (tp *TCPSock) dataQueueOfo(b *skb.SKB) bool {
	mib := tp.stack.mib
	tp.ecnCheckCE(b)
	tp.measureRcvMss(b, b.Truesize()) // since 6.17, out-of-order data too
	if !tp.tryRmemSchedule(b, b.Truesize()) {
		mib.Inc(memctl.TcpExtTCPOFODrop)
		tp.dropReason(b)
		return false
	}
	tp.predOn = false // disable header prediction
	tp.ackPending |= icskAckSched
	seq, end := cbGetSeq(b), cbGetEndSeq(b)
	// The SACK blocks (tcp_data_queue_ofo's add_sack, which reads only the
	// blocks, so it may go first): the first out-of-order segment starts
	// them afresh.
	if tp.ofo.Empty() && tp.sackOK {
		tp.numSacks = 1
		tp.selectiveAcks[0] = header.SACKBlock{Start: seq, End: end}
	} else if tp.sackOK {
		tp.sackNewOfoSkb(seq, end)
	}
	// Find the last skb starting at or before seq.
	var p *skb.SKB
	for q := tp.ofo.PeekTail(); q != nil; q = q.Prev() {
		if !seqGT(cbGetSeq(q), seq) {
			p = q
			break
		}
	}
	if p != nil {
		if !seqGT(end, cbGetEndSeq(p)) { // wholly covered: a duplicate
			mib.Inc(memctl.TcpExtTCPOFOMerge)
			tp.dropReason(b) // TCP_OFOMERGE
			tp.dsackSet(seq, end)
			return false
		}
		if cbGetSeq(p) == seq { // the new one covers p
			prev := p.Prev()
			tp.ofo.Unlink(p)
			tp.dropReason(p) // TCP_OFOMERGE
			p.Free()
			mib.Inc(memctl.TcpExtTCPOFOMerge)
			p = prev
		}
	}
	mib.Inc(memctl.TcpExtTCPOFOQueue)
	memctl.SetOwnerR(b, tp.sk)
	if p == nil {
		tp.ofo.PushFront(b)
	} else {
		tp.ofo.InsertAfter(p, b)
	}
	// Drop the following skbs the new one covers.
	for n := b.Next(); n != nil && !seqGT(cbGetEndSeq(n), end); n = b.Next() {
		tp.ofo.Unlink(n)
		tp.dropReason(n) // TCP_OFOMERGE
		n.Free()
		mib.Inc(memctl.TcpExtTCPOFOMerge)
	}
	// Without SACK the window does not grow, to force dupacks. Linux
	// grows it before it charges b, at the end of tcp_data_queue_ofo, so
	// the free space counts b back. Deviation: b was charged before the
	// skbs it covers were freed, since freeing them may reclaim the
	// forward_alloc scheduled for b (Linux lets it go negative then).
	if tp.sackOK {
		ts := b.Truesize()
		tp.growWindow(b, ts, false, tp.winFromSpace(tp.sk.Rcvbuf()-tp.sk.BacklogLen()-tp.sk.RmemAlloc()+ts))
	}
	tp.rcvbufGrow(tp.rcvqSpace)
	return true
}

// fin processes an in-order FIN. Mirrors tcp_fin.
func (tp *TCPSock) fin() {
	tp.ackPending |= icskAckSched
	tp.finSeen = true
	tp.sk.Shutdown(memctl.RcvShutdown)
	switch tp.state {
	case TCPSynRecv, TCPEstablished:
		tp.setState(TCPCloseWait)
		tp.enterPingpong()
	case TCPFinWait1:
		tp.sendAck()
		tp.setState(TCPClosing)
	case TCPFinWait2:
		tp.sendAck()
		tp.enterTimeWait()
	}
	tp.ofo.Purge()
	tp.numSacks = 0
	tp.sk.Wq.Wake()
}
