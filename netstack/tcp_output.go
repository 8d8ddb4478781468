package netstack

import (
	"math"
	"math/bits"
	"net/netip"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// skbChecksum sums the packet data of b from offset 0 (linear part, then the
// fragments), handling pieces that start at an odd offset (RFC 1071 2(B):
// a byte-swapped sum). Returns the uncomplemented sum.
func skbChecksum(b *skb.SKB, initial uint16) uint16 {
	sum := initial
	odd := false
	add := func(p []byte) {
		if len(p) == 0 {
			return
		}
		s := header.Checksum(p, 0)
		if odd {
			s = bits.ReverseBytes16(s)
		}
		sum = header.CombineChecksums(sum, s)
		if len(p)%2 == 1 {
			odd = !odd
		}
	}
	add(b.Data())
	for i := 0; i < b.NrFrags(); i++ {
		add(b.Frag(i).Bytes())
	}
	return sum
}

// Offsets of the checksum field in the TCP and UDP headers, for
// skb.PartialCsumSet (offsetof(struct tcphdr, check), ...udphdr...).
const (
	tcpCsumOffset = 16
	udpCsumOffset = 6
)

// hwCsum reports whether d completes transport checksums of
// skb.ChecksumPartial packets (NETIF_F_HW_CSUM), so TCP and UDP output
// leave them to it. A device whose outgoing packets may be corrupted by
// the impairment stage still gets them partial: the stage completes the
// checksum before it flips a bit, as netem does.
func (d *NetDevice) hwCsum() bool {
	return link.FeaturesOf(d.dev)&link.FeatureHWCsum != 0
}

// tso reports whether d cuts GSO packets itself (NETIF_F_TSO).
func (d *NetDevice) tso() bool {
	return link.FeaturesOf(d.dev)&link.FeatureTSO != 0
}

// maxTCPHeader is MAX_TCP_HEADER: the headroom of every TCP skb.
func maxTCPHeader() int { return skb.CurrentProfile().MaxTCPHeader }

// tcpOptionsSize is the size of the options a non-SYN segment carries now.
// Mirrors tcp_established_options.
func (tp *TCPSock) tcpOptionsSize() int {
	n := 0
	if tp.tstampOK {
		n += tcpOlenTstampAl
	}
	if k := tp.sackBlocksToSend(); k > 0 {
		n += tcpOlenSackBase + tcpOlenSackPerblock*k
	}
	return n
}

// TCPOLEN_SACK_BASE_ALIGNED and TCPOLEN_SACK_PERBLOCK: the SACK option's
// kind and length behind two NOPs, and each block's two sequence numbers.
const (
	tcpOlenSackBase     = 4
	tcpOlenSackPerblock = 8
)

// transmitSkb builds the TCP header of b (data at the payload) and hands it
// to IP. With cloneIt the original stays on the retransmit queue and a clone
// (or, if a previous clone is still alive, a private copy) is sent, charged
// to wmem_alloc. Mirrors __tcp_transmit_skb.
func (tp *TCPSock) transmitSkb(b *skb.SKB, cloneIt bool) {
	priorWstamp := tp.wstampRefresh()
	out := b
	if cloneIt {
		if b.Cloned() {
			out = b.Copy() // pskb_copy in Linux: the header is still in use
		} else {
			out = b.Clone()
		}
	}
	flags := cbGetFlags(b)
	var opts [40]byte
	optLen := 0
	tsval := tp.tsNow()
	if flags&tcpSyn != 0 {
		// An active open offers what the sysctls allow when the SYN
		// goes (tcp_syn_options); a SYN-ACK what was negotiated.
		sys := tp.stack.net.Sysctls
		syn := tp.state == TCPSynSent
		ws := -1
		if tp.wscaleOK || syn && sys.TCPWindowScaling() {
			ws = int(tp.rcvWscale)
		}
		optLen = header.EncodeSynOptions(opts[:], uint16(tp.advmss), ws, tp.sackOK || syn && sys.TCPSack(),
			tp.tstampOK || syn && sys.TCPTimestamps() != 0, tsval, tp.tsRecent)
	} else {
		var sack []header.SACKBlock
		if k := tp.sackBlocksToSend(); k > 0 {
			sack = tp.sackBlocksSlice(k)
		}
		optLen = header.EncodeOptions(opts[:], tp.tstampOK, tsval, tp.tsRecent, sack)
		tp.dsack = false
		flags |= tp.ecnSend(b, b.Len())
	}
	hlen := header.TCPMinSize + optLen
	th := header.TCP(out.Push(hlen))
	var win uint16
	if flags&tcpSyn != 0 {
		win = uint16(min(tp.rcvWnd, 65535)) // RFC 7323: a SYN's window is never scaled
	} else {
		win = tp.selectWindow()
	}
	ack := uint32(0)
	if flags&tcpAck != 0 {
		ack = tp.rcvNxt
		if tp.ackAtSet {
			ack = tp.ackAt
		}
	}
	th.Encode(&header.TCPFields{
		SrcPort: tp.local.Port(), DstPort: tp.remote.Port(),
		Seq: cbGetSeq(b), Ack: ack, DataOffset: hlen,
		Flags: header.TCPFlags(flags), Window: win,
	})
	copy(th[header.TCPMinSize:], opts[:optLen])
	out.SetTransportHeader()
	src, dst := tp.local.Addr(), tp.remote.Addr()
	pc := max(tcpSkbPcount(b), 1)
	if sh := out.Shared(); pc > 1 {
		sh.GSOSize, sh.GSOSegs, sh.GSOType = uint16(tcpSkbMss(b)), uint16(pc), gsoTypeTCP(dst)
		if flags&tcpCwr != 0 {
			sh.GSOType |= skb.GSOTCPECN // CWR on the first segment only
		}
	} else {
		sh.GSOSize, sh.GSOSegs, sh.GSOType = 0, 0, 0
	}
	csum := header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, src, dst, uint16(out.Len()))
	if pc > 1 || tp.route.Dev.hwCsum() {
		// The device (or software GSO, for each segment it cuts)
		// completes it: leave the pseudo-header sum and say where
		// (__tcp_v4_send_check's CHECKSUM_PARTIAL case).
		th.SetChecksum(csum)
		out.PartialCsumSet(0, tcpCsumOffset)
	} else {
		th.SetChecksum(^skbChecksum(out, csum))
	}
	memctl.SetOwnerW(out, tp.sk)
	if flags&tcpAck != 0 && !tp.ackAtSet { // not for DCTCP's special ACK
		tp.eventAckSent()
	}
	if out.Len() > hlen { // tcp_event_data_sent
		if tp.packetsInFlight() == 0 {
			tp.cc.cwndEvent(tp, caEventTxStart)
		}
		// An answer sent within ato of the last data received counts
		// toward interactive (ping-pong) mode.
		if now := tp.now(); time.Duration(now-tp.lrcvtime) < tp.ato && tp.ackPingpong < math.MaxUint8 {
			tp.ackPingpong++ // inet_csk_inc_pingpong_cnt
		}
		tp.dataSegsOut += uint32(pc)
	}
	if out.Len() > hlen || flags&(tcpSyn|tcpFin) != 0 {
		tp.lsndtime = tp.now()
	}
	// Tcp:OutSegs leaves out segments that carry only retransmitted
	// octets (RFC 1213's tcpOutSegs; those are Tcp:RetransSegs): new data,
	// or no sequence space at all. Mirrors the test in __tcp_transmit_skb.
	if seq, end := cbGetSeq(b), cbGetEndSeq(b); seqGT(end, tp.sndNxt) || seq == end {
		tp.stack.mib.Add(memctl.TcpOutSegs, uint64(pc))
	}
	if flags&tcpRst != 0 {
		tp.stack.mib.Inc(memctl.TcpOutRsts)
	}
	var q *xmitQueue
	if tp.txq.depth > 0 {
		q = &tp.txq
	}
	tp.stack.ipOutputQ(out, tp.route, src, dst, header.IPv4ProtocolTCP, tp.ipTTL(), tp.ipTOS(), nil, q)
	if cloneIt {
		tp.updateSkbAfterSend(b, priorWstamp)
	}
}

// txBegin starts (or nests in) a run of segments transmitted together:
// until the matching txEnd, transmitSkb queues on tp.txq instead of
// calling the device per segment. Callers hold the socket lock and call
// txEnd before releasing it and before anything that may wait; nothing
// between the two may block. Mirrors the xmit_more hint tcp_write_xmit
// gives drivers, done here by deferring the device call.
func (tp *TCPSock) txBegin() { tp.txq.depth++ }

// txEnd ends a run started by txBegin; the outermost one flushes the queue
// to the device.
func (tp *TCPSock) txEnd() {
	tp.txq.depth--
	if tp.txq.depth == 0 {
		tp.txq.flush()
	}
}

// txSuspend flushes the queue and suspends the runs in progress, for a
// caller inside one that is about to wait (and so to release the socket
// lock, letting other paths transmit and flush on their own). It returns
// what txResume, called with the lock held again, restores.
func (tp *TCPSock) txSuspend() int {
	depth := tp.txq.depth
	tp.txq.depth = 0
	tp.txq.flush()
	return depth
}

// txResume resumes the runs txSuspend suspended.
func (tp *TCPSock) txResume(depth int) { tp.txq.depth = depth }

// allocControlSkb returns an empty skb for a control segment. Mirrors the
// alloc_skb(MAX_TCP_HEADER) of tcp_send_ack and friends.
func allocControlSkb() *skb.SKB {
	b := skb.Alloc(maxTCPHeader())
	b.Reserve(maxTCPHeader())
	return b
}

// controlSkb returns a control segment at seq with flags: its end_seq is
// seq, plus one for a SYN or FIN. Mirrors alloc_skb + tcp_init_nondata_skb.
// (Without end_seq, a probe or a reset looked to transmitSkb like a
// segment of old data and was left out of Tcp:OutSegs, or not, by the
// connection's initial sequence number.)
func controlSkb(seq uint32, flags uint8) *skb.SKB {
	b := allocControlSkb()
	end := seq
	if flags&(tcpSyn|tcpFin) != 0 {
		end++
	}
	cbSetSeq(b, seq)
	cbSetEndSeq(b, end)
	cbSetFlags(b, flags)
	return b
}

// sendAck sends a pure ACK now. Mirrors __tcp_send_ack.
func (tp *TCPSock) sendAck() {
	if tp.state == TCPClose || tp.state == TCPListen {
		return
	}
	tp.transmitSkb(controlSkb(tp.sndNxt, tcpAck), false) // tcp_acceptable_seq
}

// sendAckAt sends a pure ACK for rcvNxt, an earlier point than rcv_nxt,
// leaving the delayed-ACK state alone: DCTCP's echo of the CE state of
// the data before the last packet. Mirrors __tcp_send_ack(sk, rcv_nxt)
// with tcp_event_ack_sent's special case.
func (tp *TCPSock) sendAckAt(rcvNxt uint32) {
	tp.ackAt, tp.ackAtSet = rcvNxt, true
	tp.sendAck()
	tp.ackAtSet = false
}

// sendActiveReset sends RST|ACK at snd_nxt. Mirrors tcp_send_active_reset.
func (tp *TCPSock) sendActiveReset() {
	tp.transmitSkb(controlSkb(tp.sndNxt, tcpRst|tcpAck), false)
}

// sendReset answers a segment that has no connection (or is unacceptable
// in a way RFC 9293 answers with RST): seq from its ACK, or ack covering it.
// The reply is not charged to any socket. Mirrors tcp_v4_send_reset.
func (s *Stack) tcpSendReset(th header.TCP, src, dst netip.Addr, payloadLen int) {
	if th.Flags()&header.TCPFlagRst != 0 {
		return
	}
	b := allocControlSkb()
	th2 := header.TCP(b.Push(header.TCPMinSize))
	f := header.TCPFields{SrcPort: th.DstPort(), DstPort: th.SrcPort(), DataOffset: header.TCPMinSize}
	if th.Flags()&header.TCPFlagAck != 0 {
		f.Seq = th.Ack()
		f.Flags = header.TCPFlagRst
	} else {
		l := uint32(payloadLen)
		if th.Flags()&header.TCPFlagSyn != 0 {
			l++
		}
		if th.Flags()&header.TCPFlagFin != 0 {
			l++
		}
		f.Ack = th.Seq() + l
		f.Flags = header.TCPFlagRst | header.TCPFlagAck
	}
	th2.Encode(&f)
	th2.SetChecksum(th2.CalculateChecksum(dst, src))
	b.SetTransportHeader()
	rt, ok := s.routeOutput(src)
	if !ok {
		b.Free()
		return
	}
	s.mib.Inc(memctl.TcpOutSegs)
	s.mib.Inc(memctl.TcpOutRsts)
	s.ipOutput(b, rt, dst, src, header.IPv4ProtocolTCP, s.defaultTTLFor(src), 0, nil)
}

// packetsInFlight is tcp_packets_in_flight: packets_out - left_out + retrans_out.
func (tp *TCPSock) packetsInFlight() uint32 {
	left := tp.sackedOut + tp.lostOut
	if left > tp.packetsOut {
		left = tp.packetsOut
	}
	return tp.packetsOut - left + tp.retransOut
}

// sendMss is the current segment size; a path MTU that changed since the
// MSS was computed (learned lower, or expired) recomputes it. mss_cache
// assumes the header every segment carries (the timestamp option, if
// negotiated: tcp_header_len); SACK blocks waiting to go out make the next
// segments' header longer, and their payload shorter by as much, so that
// header and payload still fit the MTU. Mirrors tcp_current_mss.
func (tp *TCPSock) sendMss() int {
	if tp.pmtuCookie != 0 {
		if mtu := tp.pathMTU(); mtu != tp.pmtuCookie {
			tp.syncMss(mtu)
		}
	}
	mss := tp.mssCache
	if mss <= 0 {
		mss = tcpMssDefault
	}
	if k := tp.sackBlocksToSend(); k > 0 {
		mss -= tcpOlenSackBase + tcpOlenSackPerblock*k
	}
	return mss
}

// syncMss recomputes mss_cache for path MTU pmtu from the peer's MSS and
// our header options, at most half the largest window the peer has offered
// (tcp_bound_to_half_wnd), and remembers pmtu; while MTU probing is on, the
// MSS is at most what its search_low allows, and the search never looks
// above the path MTU. Mirrors tcp_sync_mss.
func (tp *TCPSock) syncMss(pmtu int) {
	m := &tp.mtup
	if m.searchHigh > pmtu {
		m.searchHigh = pmtu
	}
	mss := tp.boundToHalfWnd(tp.mtuToMss(pmtu))
	if m.enabled {
		mss = min(mss, tp.mtuToMss(m.searchLow))
	}
	tp.pmtuCookie = pmtu
	tp.mssCache = mss
}

// eventNewDataSent moves b to the retransmit queue and updates snd_nxt.
// Mirrors tcp_event_new_data_sent.
func (tp *TCPSock) eventNewDataSent(b *skb.SKB) {
	prior := tp.packetsOut
	tp.writeQueue.Unlink(b)
	tp.rtxQueue.PushBack(b)
	tp.sndNxt = cbGetEndSeq(b)
	tp.syncSeqs()
	pc := uint32(max(tcpSkbPcount(b), 1))
	tp.packetsOut += pc
	if tp.inCwndReduction() {
		tp.prrOut += pc
	}
	// Every skb leaving the write queue counts, a FIN alone included, as
	// the live kernel counts it (TestLinuxDiffConnectRequestClose: two per
	// connection that sends one byte and closes); a SYN does not, which
	// Linux sends from tcp_connect, not through here.
	if cbGetFlags(b)&tcpSyn == 0 {
		tp.stack.mib.Add(memctl.TcpExtTCPOrigDataSent, uint64(pc))
	}
	if prior == 0 || tp.rtoKind == timerProbe0 || tp.rtoKind == 0 {
		tp.resetRetransTimer(timerRetrans, tp.rto)
	}
}

// Nagle modes (tp->nonagle).
const (
	nagleOn   = 0
	nagleOff  = 1 // TCP_NAGLE_OFF (TCP_NODELAY)
	nagleCork = 2 // TCP_NAGLE_CORK
	naglePush = 4 // TCP_NAGLE_PUSH
)

func (tp *TCPSock) nonagle() int {
	n := nagleOn
	if tp.nodelay {
		n |= nagleOff
	}
	if tp.cork {
		n |= nagleCork
	}
	return n
}

// nagleTest says whether a one-segment skb may go now. Mirrors
// tcp_nagle_test.
func (tp *TCPSock) nagleTest(b *skb.SKB, mss, nonagle int) bool {
	if nonagle&naglePush != 0 || cbGetFlags(b)&tcpFin != 0 {
		return true
	}
	return !tp.nagleCheck(b.Len() < mss, nonagle)
}

// nagleCheck says whether Nagle (or cork) holds back a partial segment:
// corked, or Nagle on with a small segment still unacknowledged. Mirrors
// tcp_nagle_check with tcp_minshall_check.
func (tp *TCPSock) nagleCheck(partial bool, nonagle int) bool {
	return partial && (nonagle&nagleCork != 0 ||
		(nonagle == nagleOn && tp.packetsOut > 0 && seqGT(tp.sndSml, tp.sndUna) && seqLEQ(tp.sndSml, tp.sndNxt)))
}

// writeXmit sends what the congestion and receive windows and Nagle allow
// from the write queue, each skb as one GSO packet of at most tsoSegs
// segments, cut (tso_fragment) where a window ends, unless it waits for an
// ACK that lets a larger one go (tsoShouldDefer). Mirrors tcp_write_xmit
// (without TSQ: sockfs's devices complete a transmission before Xmit
// returns, so there is never a queue below TCP for it to wait on).
func (tp *TCPSock) writeXmit(nonagle int) bool { return tp.writeXmitOne(nonagle, 0) }

// writeXmitOne is writeXmit; with pushOne 1 it sends at most one skb
// (tcp_push_one), with 2 one skb of one segment's quota even when the
// congestion window is full (a loss probe's new data).
func (tp *TCPSock) writeXmitOne(nonagle int, pushOne int) bool {
	if tp.state == TCPClose || tp.state == TCPListen || tp.state == TCPSynSent && tp.packetsOut > 0 {
		return false
	}
	mss := tp.sendMss()
	maxSegs := tp.tsoSegs(mss)
	sent := false
	limited := false
	tp.txBegin()
	if pushOne == 0 && tp.mtup.enabled {
		switch tp.mtuProbe() {
		case 0:
			tp.txEnd()
			return false
		case 1:
			sent = true
		}
	}
	for b := tp.writeQueue.Peek(); b != nil; b = tp.writeQueue.Peek() {
		if tp.pacingCheck() {
			break
		}
		segs := initTsoSegs(b, mss)
		quota := tp.cwndTest(b)
		if quota == 0 {
			if pushOne != 2 {
				limited = true
				break
			}
			quota = 1
		}
		if cbGetFlags(b)&tcpSyn == 0 && !tp.sndWndTest(b, mss) {
			break
		}
		limit := mss
		if segs == 1 {
			nm := naglePush
			if b.Next() == nil {
				nm = nonagle
			}
			if !tp.nagleTest(b, mss, nm) {
				break
			}
		} else {
			if pushOne == 0 {
				if deferred, cwndLimited, _ := tp.tsoShouldDefer(b, maxSegs); deferred {
					limited = limited || cwndLimited
					break
				}
			}
			limit = tp.mssSplitPoint(b, mss, min(quota, maxSegs), nonagle)
		}
		if b.Len() > limit {
			tp.fragment(&tp.writeQueue, b, limit, mss)
		}
		if b.Len() < tcpSkbPcount(b)*mss {
			tp.sndSml = cbGetEndSeq(b) // tcp_minshall_update
		}
		// Sent before it counts in packets_out, as tcp_write_xmit does
		// (tcp_rate_skb_sent and CA_EVENT_TX_START look at the flight).
		b.HeaderRelease()
		tp.rateSkbSent(b)
		tp.transmitSkb(b, true)
		tp.eventNewDataSent(b)
		sent = true
		if pushOne != 0 {
			break
		}
	}
	tp.txEnd()
	// Linux 6.x decides after the loop: the flight fills the window.
	limited = limited || tp.packetsInFlight() >= tp.cwnd
	if sent || limited {
		tp.cwndValidate(limited)
	}
	if sent {
		tp.scheduleLossProbe()
	} else if tp.packetsOut == 0 && !tp.writeQueue.Empty() {
		tp.checkProbeTimer()
	}
	return sent
}

// pushPendingFrames is __tcp_push_pending_frames.
func (tp *TCPSock) pushPendingFrames(nonagle int) {
	if tp.writeQueue.Empty() {
		return
	}
	tp.writeXmit(nonagle)
}

// retransmitSkb retransmits b, or its first segs segments (as many as
// the peer's window holds, at least one at snd_una), cutting it there. It
// reports false, sending nothing, when the window leaves no room for it
// or it could not be cut. Mirrors tcp_retransmit_skb with
// __tcp_retransmit_skb.
func (tp *TCPSock) retransmitSkb(b *skb.SKB, segs int) bool {
	if b.Len() > 0 {
		if seqLT(cbGetSeq(b), tp.sndUna) { // acknowledged in part
			if !seqGT(cbGetEndSeq(b), tp.sndUna) {
				return false
			}
			old := tcpSkbPcount(b)
			tp.trimHead(b, int(tp.sndUna-cbGetSeq(b)))
			tp.adjustPcount(b, old-tcpSkbPcount(b))
		}
		mss := tp.sendMss()
		avail := int(int32(tp.sndUna + tp.sndWnd - cbGetSeq(b)))
		if avail <= 0 {
			if cbGetSeq(b) != tp.sndUna {
				return false
			}
			avail = mss
		}
		n := mss * max(segs, 1)
		if n > avail {
			if n = avail / mss * mss; n == 0 {
				n = avail
			}
		}
		if b.Len() > n {
			if !tp.fragment(&tp.rtxQueue, b, n, mss) {
				return false
			}
		} else if diff := tcpSkbPcount(b); true {
			setSkbTsoSegs(b, mss)
			if diff -= tcpSkbPcount(b); diff != 0 {
				tp.adjustPcount(b, diff)
			}
		}
	}
	pc := uint32(max(tcpSkbPcount(b), 1))
	s := cbGetSacked(b)
	if s&tcpcbSackedRetrans == 0 {
		tp.retransOut += pc
	}
	cbSetSacked(b, s|tcpcbSackedRetrans|tcpcbEverRetrans)
	if tp.retransStamp == 0 {
		tp.retransStamp = max(tp.now(), 1) // zero means none (a clock may start at 0)
	}
	tp.stack.mib.Add(memctl.TcpRetransSegs, uint64(pc))
	tp.undoRetrans = max(tp.undoRetrans, 0) + int(pc) // -1 (initUndo): none sent yet
	if tp.inCwndReduction() {
		tp.prrOut += pc
	}
	if cbGetFlags(b)&tcpSyn != 0 {
		tp.stack.mib.Inc(memctl.TcpExtTCPSynRetrans)
		tp.ecnClearSyn(b)
	}
	tp.totalRetrans += pc
	tp.rateSkbSent(b)
	tp.transmitSkb(b, true)
	return true
}

// xmitRetransmitQueue retransmits the segments marked lost while the
// congestion window allows, cutting skbs to what it allows. Mirrors
// tcp_xmit_retransmit_queue.
func (tp *TCPSock) xmitRetransmitQueue() {
	if tp.lostOut == 0 {
		return
	}
	maxSegs := tp.tsoSegs(tp.sendMss())
	tp.txBegin()
	defer tp.txEnd()
	for b := tp.rtxQueue.Peek(); b != nil; b = b.Next() {
		inflight := tp.packetsInFlight()
		if inflight >= tp.cwnd {
			return
		}
		s := cbGetSacked(b)
		if s&tcpcbLost == 0 || s&(tcpcbSackedAcked|tcpcbSackedRetrans) != 0 {
			continue
		}
		if tp.pacingCheck() {
			return
		}
		if !tp.retransmitSkb(b, min(int(tp.cwnd-inflight), maxSegs)) {
			return
		}
		// Linux counts by state on resend (TCPLostRetransmit is counted
		// when a retransmission is found lost: markSkbLost).
		pc := uint64(tcpSkbPcount(b))
		if tp.caState != tcpCALoss {
			tp.stack.mib.Add(memctl.TcpExtTCPFastRetrans, pc)
		} else {
			tp.stack.mib.Add(memctl.TcpExtTCPSlowStartRetrans, pc)
		}
		if b == tp.rtxQueue.Peek() && tp.rtoKind != timerReoTimeout {
			tp.resetRetransTimer(timerRetrans, tp.rtoBackoff())
		}
	}
}

// connectInit prepares an active open. Mirrors tcp_connect_init.
func (tp *TCPSock) connectInit() {
	tp.syncMssFromRoute()
	tp.selectInitialWindow(tp.advmss)
	tp.sndUna = tp.iss
	tp.sndNxt = tp.iss
	tp.writeSeq = tp.iss
	tp.rcvNxt = 0
	tp.rcvWup = 0
	tp.copiedSeq = 0
	tp.syncSeqs()
}

// syncMssFromRoute sets advmss from the path's MTU. Mirrors
// dst_metric_advmss + tcp_mss_clamp.
func (tp *TCPSock) syncMssFromRoute() {
	mtu := tp.pathMTU() // ipv4_default_advmss reads ipv4_mtu
	tp.advmss = mtu - netHeaderLen(tp.remote.Addr()) - header.TCPMinSize
	if tp.userMss > 0 && tp.userMss < tp.advmss {
		tp.advmss = tp.userMss
	}
	tp.mssCache = tp.advmss
	tp.rcvMss = min(tp.advmss, tcpMssDefault) // tcp_initialize_rcv_mss
}

// sendSyn queues and sends the SYN of an active open. The SYN skb is
// force-charged like any first skb. Mirrors tcp_connect.
func (tp *TCPSock) sendSyn() {
	b := skb.AllocFclone(maxTCPHeader())
	b.Reserve(maxTCPHeader())
	tp.sk.ForcedMemSchedule(b.Truesize())
	tp.sk.SkbEntail(b.Truesize())
	cbSetSeq(b, tp.iss)
	cbSetEndSeq(b, tp.iss+1)
	cbSetFlags(b, tcpSyn)
	cbSetSacked(b, 0)
	tp.ecnSendSyn(b)
	tp.writeSeq = tp.iss + 1
	// tcp_write_timeout's model time runs from the first SYN, not from
	// its first retransmission.
	tp.retransStamp = max(tp.now(), 1)
	tp.writeQueue.PushBack(b)
	b.HeaderRelease()
	tp.rateSkbSent(b)
	tp.transmitSkb(b, true)
	tp.eventNewDataSent(b)
	tp.stack.mib.Inc(memctl.TcpActiveOpens)
	tp.resetRetransTimer(timerRetrans, tp.rto)
}

// sendSynAck (re)sends our SYN-ACK during a simultaneous open.
func (tp *TCPSock) sendSynAckSimultaneous() {
	b := tp.rtxQueue.Peek()
	if b == nil || cbGetFlags(b)&tcpSyn == 0 {
		return
	}
	cbSetFlags(b, tcpSyn|tcpAck|tp.ecnSynackFlags())
	tp.retransmitSkb(b, 1)
}

// sendFin queues a FIN: on the last unsent skb if there is one; under
// memory pressure with nothing unsent, on the last sent skb (as if it had
// carried the FIN); else on a new force-charged skb; then pushes. Mirrors
// tcp_send_fin.
func (tp *TCPSock) sendFin() {
	tail := tp.writeQueue.PeekTail()
	tskb := tail
	if tskb == nil && tp.underPressure() {
		tskb = tp.rtxQueue.PeekTail()
	}
	if tskb != nil {
		cbSetFlags(tskb, cbGetFlags(tskb)|tcpFin)
		cbSetEndSeq(tskb, cbGetEndSeq(tskb)+1)
		tp.writeSeq++
		if tail == nil {
			// Already sent: the FIN goes out with its retransmission.
			tp.sndNxt++
			tp.syncSeqs()
			return
		}
	} else {
		b := skb.AllocFclone(maxTCPHeader())
		b.Reserve(maxTCPHeader())
		tp.sk.ForcedMemSchedule(b.Truesize())
		tp.sk.SkbEntail(b.Truesize())
		cbSetSeq(b, tp.writeSeq)
		cbSetEndSeq(b, tp.writeSeq+1)
		cbSetFlags(b, tcpFin|tcpAck)
		cbSetSacked(b, 0)
		tp.writeQueue.PushBack(b)
		tp.writeSeq++
	}
	tp.syncSeqs()
	tp.pushPendingFrames(nagleOff)
}

// writeWakeup sends something into a (nearly) closed window: a piece of
// the next segment, as much as the window holds up to the MSS, if the
// window has room, else a zero-window probe with an old sequence number.
// The piece sent carries PSH, and so does the rest (tcp_fragment gives
// the tail the head's flags). Mirrors tcp_write_wakeup / tcp_xmit_probe_skb.
func (tp *TCPSock) writeWakeup() {
	b := tp.writeQueue.Peek()
	wndEnd := tp.sndUna + tp.sndWnd
	if b != nil && seqLT(cbGetSeq(b), wndEnd) {
		mss := tp.sendMss()
		seg := min(int(wndEnd-cbGetSeq(b)), mss)
		if seqLT(tp.pushedSeq, cbGetEndSeq(b)) {
			tp.pushedSeq = cbGetEndSeq(b)
		}
		if seg < int(cbGetEndSeq(b)-cbGetSeq(b)) || b.Len() > mss {
			cbSetFlags(b, cbGetFlags(b)|tcpPsh)
			tp.fragment(&tp.writeQueue, b, seg, mss)
		}
		cbSetFlags(b, cbGetFlags(b)|tcpPsh)
		initTsoSegs(b, mss)
		b.HeaderRelease()
		tp.rateSkbSent(b)
		tp.transmitSkb(b, true)
		tp.eventNewDataSent(b)
		return
	}
	tp.transmitSkb(controlSkb(tp.sndUna-1, tcpAck), false)
	tp.stack.mib.Inc(memctl.TcpExtTCPWinProbe)
}

// rtoBackoff is the current RTO with exponential back-off, capped.
// Mirrors inet_csk_rto_backoff with tcp_rto_max(sk).
func (tp *TCPSock) rtoBackoff() time.Duration {
	d := tp.rto << tp.backoff
	if d > tp.rtoMax || d <= 0 {
		d = tp.rtoMax
	}
	return d
}
