package netstack

import (
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
		n += 4 + 8*k
	}
	return n
}

// transmitSkb builds the TCP header of b (data at the payload) and hands it
// to IP. With cloneIt the original stays on the retransmit queue and a clone
// (or, if a previous clone is still alive, a private copy) is sent, charged
// to wmem_alloc. Mirrors __tcp_transmit_skb.
func (tp *TCPSock) transmitSkb(b *skb.SKB, cloneIt bool) {
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
		ws := -1
		if tp.wscaleOK || tp.state == TCPSynSent {
			ws = int(tp.rcvWscale)
		}
		optLen = header.EncodeSynOptions(opts[:], uint16(tp.advmss), ws, tp.sackOK || tp.state == TCPSynSent,
			tp.tstampOK || tp.state == TCPSynSent, tsval, tp.tsRecent)
	} else {
		var sack []header.SACKBlock
		if k := tp.sackBlocksToSend(); k > 0 {
			sack = tp.sackBlocksSlice(k)
		}
		optLen = header.EncodeOptions(opts[:], tp.tstampOK, tsval, tp.tsRecent, sack)
		tp.dsack = false
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
	}
	th.Encode(&header.TCPFields{
		SrcPort: tp.local.Port(), DstPort: tp.remote.Port(),
		Seq: cbGetSeq(b), Ack: ack, DataOffset: hlen,
		Flags: header.TCPFlags(flags), Window: win,
	})
	copy(th[header.TCPMinSize:], opts[:optLen])
	out.SetTransportHeader()
	src, dst := tp.local.Addr(), tp.remote.Addr()
	csum := header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, src, dst, uint16(out.Len()))
	if tp.route.Dev.hwCsum() {
		// The device completes it: leave the pseudo-header sum and say
		// where (__tcp_v4_send_check's CHECKSUM_PARTIAL case).
		th.SetChecksum(csum)
		out.PartialCsumSet(0, tcpCsumOffset)
	} else {
		th.SetChecksum(^skbChecksum(out, csum))
	}
	memctl.SetOwnerW(out, tp.sk)
	if flags&tcpAck != 0 {
		tp.eventAckSent()
	}
	if out.Len() > hlen || flags&(tcpSyn|tcpFin) != 0 {
		tp.lsndtime = tp.now()
	}
	tp.stack.mib.Inc(memctl.TcpOutSegs)
	if flags&tcpRst != 0 {
		tp.stack.mib.Inc(memctl.TcpOutRsts)
	}
	var q *xmitQueue
	if tp.txq.depth > 0 {
		q = &tp.txq
	}
	tp.stack.ipOutputQ(out, tp.route, src, dst, header.IPv4ProtocolTCP, tp.ipTTL(), tp.tos, nil, q)
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

// sendAck sends a pure ACK now. Mirrors __tcp_send_ack.
func (tp *TCPSock) sendAck() {
	if tp.state == TCPClose || tp.state == TCPListen {
		return
	}
	b := allocControlSkb()
	cbSetSeq(b, tp.sndNxt) // tcp_acceptable_seq
	cbSetEndSeq(b, tp.sndNxt)
	cbSetFlags(b, tcpAck)
	tp.transmitSkb(b, false)
}

// sendActiveReset sends RST|ACK at snd_nxt. Mirrors tcp_send_active_reset.
func (tp *TCPSock) sendActiveReset() {
	b := allocControlSkb()
	cbSetSeq(b, tp.sndNxt)
	cbSetFlags(b, tcpRst|tcpAck)
	tp.transmitSkb(b, false)
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
	s.ipOutput(b, rt, dst, src, header.IPv4ProtocolTCP, defaultTTL, 0, nil)
}

// packetsInFlight is tcp_packets_in_flight: packets_out - left_out + retrans_out.
func (tp *TCPSock) packetsInFlight() uint32 {
	left := tp.sackedOut + tp.lostOut
	if left > tp.packetsOut {
		left = tp.packetsOut
	}
	return tp.packetsOut - left + tp.retransOut
}

// sendMss is the current segment size. Mirrors tcp_current_mss.
func (tp *TCPSock) sendMss() int {
	mss := tp.mssCache
	if mss <= 0 {
		mss = tcpMssDefault
	}
	return mss
}

// syncMss recomputes mss_cache from the peer's MSS and our header options.
// Mirrors tcp_sync_mss (without path-MTU discovery).
func (tp *TCPSock) syncMss() {
	mtu := 1500
	if tp.route.Dev != nil {
		mtu = tp.route.Dev.MTU()
	}
	mss := mtu - header.IPv4MinSize - header.TCPMinSize
	if tp.mssClamp > 0 && mss > tp.mssClamp {
		mss = tp.mssClamp
	}
	if tp.tstampOK {
		mss -= tcpOlenTstampAl
	}
	mss = max(mss, tcpMinMss)
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
	tp.packetsOut++
	if tp.caState == tcpCARecovery {
		tp.prrOut++
	}
	if b.Len() > 0 {
		tp.stack.mib.Inc(memctl.TcpExtTCPOrigDataSent)
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

// nagleTest says whether a partial segment may go now. Mirrors tcp_nagle_test
// with tcp_nagle_check and tcp_minshall_check.
func (tp *TCPSock) nagleTest(b *skb.SKB, mss, nonagle int) bool {
	if nonagle&naglePush != 0 || cbGetFlags(b)&tcpFin != 0 {
		return true
	}
	partial := b.Len() < mss
	if !partial {
		return true
	}
	if nonagle&nagleCork != 0 {
		return false
	}
	if nonagle == nagleOn && tp.packetsOut > 0 && seqGT(tp.sndSml, tp.sndUna) && seqLEQ(tp.sndSml, tp.sndNxt) {
		return false
	}
	return true
}

// writeXmit sends what the congestion and receive windows and Nagle allow
// from the write queue. Mirrors tcp_write_xmit.
func (tp *TCPSock) writeXmit(nonagle int) bool {
	if tp.state == TCPClose || tp.state == TCPListen || tp.state == TCPSynSent && tp.packetsOut > 0 {
		return false
	}
	mss := tp.sendMss()
	sent := false
	limited := false
	tp.txBegin()
	for b := tp.writeQueue.Peek(); b != nil; b = tp.writeQueue.Peek() {
		fl := cbGetFlags(b)
		if tp.packetsInFlight() >= tp.cwnd && !(fl&tcpFin != 0 && b.Len() == 0) {
			limited = true
			break
		}
		end := cbGetEndSeq(b)
		if fl&tcpSyn == 0 && seqGT(end, tp.sndUna+tp.sndWnd) {
			break
		}
		nm := naglePush
		if b.Next() == nil {
			nm = nonagle
		}
		if !tp.nagleTest(b, mss, nm) {
			break
		}
		if b.Len() < mss {
			tp.sndSml = end // tcp_minshall_update
		}
		tp.eventNewDataSent(b)
		b.HeaderRelease()
		tp.rateSkbSent(b)
		tp.transmitSkb(b, true)
		sent = true
	}
	tp.txEnd()
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

// retransmitSkb retransmits one segment from the retransmit queue. Mirrors
// tcp_retransmit_skb.
func (tp *TCPSock) retransmitSkb(b *skb.SKB) {
	s := cbGetSacked(b)
	if s&tcpcbSackedRetrans == 0 {
		tp.retransOut++
	}
	cbSetSacked(b, s|tcpcbSackedRetrans|tcpcbEverRetrans)
	if tp.retransStamp == 0 {
		tp.retransStamp = max(tp.now(), 1) // zero means none (a clock may start at 0)
	}
	tp.stack.mib.Inc(memctl.TcpRetransSegs)
	tp.undoRetrans = max(tp.undoRetrans, 0) + 1 // -1 (initUndo): none sent yet
	if tp.caState == tcpCARecovery {
		tp.prrOut++
	}
	if cbGetFlags(b)&tcpSyn != 0 {
		tp.stack.mib.Inc(memctl.TcpExtTCPSynRetrans)
	}
	tp.totalRetrans++
	tp.rateSkbSent(b)
	tp.transmitSkb(b, true)
}

// xmitRetransmitQueue retransmits the segments marked lost while the
// congestion window allows. Mirrors tcp_xmit_retransmit_queue.
func (tp *TCPSock) xmitRetransmitQueue() {
	if tp.lostOut == 0 {
		return
	}
	tp.txBegin()
	defer tp.txEnd()
	for b := tp.rtxQueue.Peek(); b != nil; b = b.Next() {
		if tp.packetsInFlight() >= tp.cwnd {
			return
		}
		s := cbGetSacked(b)
		if s&tcpcbLost == 0 || s&(tcpcbSackedAcked|tcpcbSackedRetrans) != 0 {
			continue
		}
		// Linux counts by state on resend (TCPLostRetransmit is counted
		// when a retransmission is found lost: markSkbLost).
		if tp.caState != tcpCALoss {
			tp.stack.mib.Inc(memctl.TcpExtTCPFastRetrans)
		} else {
			tp.stack.mib.Inc(memctl.TcpExtTCPSlowStartRetrans)
		}
		tp.retransmitSkb(b)
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

// syncMssFromRoute sets advmss from the route's MTU. Mirrors
// dst_metric_advmss + tcp_mss_clamp.
func (tp *TCPSock) syncMssFromRoute() {
	mtu := tp.route.Dev.MTU()
	tp.advmss = mtu - header.IPv4MinSize - header.TCPMinSize
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
	tp.writeSeq = tp.iss + 1
	tp.writeQueue.PushBack(b)
	tp.eventNewDataSent(b)
	b.HeaderRelease()
	tp.rateSkbSent(b)
	tp.transmitSkb(b, true)
	tp.stack.mib.Inc(memctl.TcpActiveOpens)
	tp.resetRetransTimer(timerRetrans, tp.rto)
}

// sendSynAck (re)sends our SYN-ACK during a simultaneous open.
func (tp *TCPSock) sendSynAckSimultaneous() {
	b := tp.rtxQueue.Peek()
	if b == nil || cbGetFlags(b)&tcpSyn == 0 {
		return
	}
	cbSetFlags(b, tcpSyn|tcpAck)
	tp.retransmitSkb(b)
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
// the next segment if the window has room, else a zero-window probe with an
// old sequence number. Mirrors tcp_write_wakeup / tcp_xmit_probe_skb.
func (tp *TCPSock) writeWakeup() {
	b := tp.writeQueue.Peek()
	wndEnd := tp.sndUna + tp.sndWnd
	if b != nil && seqLT(cbGetSeq(b), wndEnd) {
		if seqGT(cbGetEndSeq(b), wndEnd) {
			tp.fragment(b, int(wndEnd-cbGetSeq(b)))
		}
		tp.eventNewDataSent(b)
		b.HeaderRelease()
		tp.rateSkbSent(b)
		tp.transmitSkb(b, true)
		return
	}
	p := allocControlSkb()
	cbSetSeq(p, tp.sndUna-1)
	cbSetFlags(p, tcpAck)
	tp.transmitSkb(p, false)
	tp.stack.mib.Inc(memctl.TcpExtTCPWinProbe)
}

// fragment splits the unsent skb b after n payload bytes, the tail going to
// a new skb queued right after it. The new skb's overhead is charged as a
// new send skb. Mirrors tcp_fragment for the write queue.
func (tp *TCPSock) fragment(b *skb.SKB, n int) {
	if n <= 0 || n >= b.Len() {
		return
	}
	nb := skb.AllocFclone(maxTCPHeader())
	nb.Reserve(maxTCPHeader())
	tp.sk.ForcedMemSchedule(nb.Truesize())
	tp.sk.SkbEntail(nb.Truesize())
	moved := 0
	off := 0
	lin := b.HeadLen()
	if n < lin { // linear payload: copy what goes
		nb.PutData(b.Data()[n:])
		moved += lin - n
	}
	off = lin
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
	tp.writeQueue.Resized(n+moved, n)
	b.AddTruesize(-moved)
	nb.AddTruesize(moved)
	cbSetSeq(nb, cbGetSeq(b)+uint32(n))
	cbSetEndSeq(nb, end)
	cbSetFlags(nb, flags)
	cbSetEndSeq(b, cbGetSeq(b)+uint32(n))
	cbSetFlags(b, flags&^(tcpFin|tcpPsh))
	cbSetSacked(nb, 0)
	tp.writeQueue.InsertAfter(b, nb)
}

// rtoBackoff is the current RTO with exponential back-off, capped.
// Mirrors inet_csk_rto_backoff.
func (tp *TCPSock) rtoBackoff() time.Duration {
	d := tp.rto << tp.backoff
	if d > tcpRtoMax || d <= 0 {
		d = tcpRtoMax
	}
	return d
}
