package netstack

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// tcpRequest is a connection request in a listener's SYN queue. Mirrors
// struct tcp_request_sock.
type tcpRequest struct {
	l         *TCPSock
	ttl, tos  uint8 // the listener's IP_TTL and IP_TOS (with its ECN bits) when the SYN came
	ecnOK     bool  // ecn_ok: ECN accepted (tcp_ecn_create_request)
	tu        tcpTuple
	route     Route
	iss, irs  uint32
	mss       int // peer's MSS option
	sndWnd    uint32
	sndWscale uint8
	rcvWscale uint8
	wscaleOK  bool
	sackOK    bool
	tstampOK  bool
	tsRecent  uint32
	tsOffset  uint32
	rcvWnd    uint32
	clamp     uint32
	advmss    int
	retrans   int // num_timeout: SYN-ACKs the timer resent (its back-off)
	// numRetrans is num_retrans: every SYN-ACK resent, by the timer or
	// for a retransmitted SYN; any makes the handshake's RTT ambiguous.
	numRetrans int
	lastOOWAck int64 // last_oow_ack_time, as TCPSock.lastOOWAck
	sentAt     int64
	timer      *clock.Timer
	cookie     bool // a SYN cookie request: its SYN-ACK's TSval carries the options (cookieInitTimestamp)
}

// initialWindow computes rcv_wnd, the window scale and window_clamp for a
// SYN-ACK from the listener's buffer. Mirrors tcp_openreq_init_rwin ->
// tcp_select_initial_window.
func (l *TCPSock) initialWindow(mss int, wscaleOK bool) (rcvWnd uint32, ws uint8, clamp uint32) {
	sys := l.stack.net.Sysctls
	full := l.tcpFullSpace()
	clamp = l.windowClamp
	if l.sk.Userlocks()&memctl.SockRcvbufLock != 0 && (clamp == 0 || int(clamp) > full) {
		clamp = uint32(full)
	}
	space := max(0, full)
	if clamp == 0 {
		clamp = 65535 << tcpMaxWscale
	}
	space = min(space, int(clamp))
	if space > mss {
		space = space / mss * mss
	}
	rcvWnd = uint32(space)
	if sys.TCPWorkaroundSignedWindows() != 0 {
		rcvWnd = min(rcvWnd, 32767)
	}
	w := 0
	if wscaleOK {
		s := min(max(space, sys.TCPRmem()[2], sys.RmemMax()), int(clamp))
		if s > 0 {
			w = bits.Len(uint(s)) - 1 - 15
		}
		w = max(0, min(w, tcpMaxWscale))
	}
	clamp = min(uint32(65535)<<w, clamp)
	return rcvWnd, uint8(w), clamp
}

// listendrop counts a connection the listener could not take, in its
// sk_drops and in ListenDrops. Mirrors tcp_listendrop.
func (l *TCPSock) listendrop() {
	l.sk.DropsInc()
	l.stack.mib.Inc(memctl.TcpExtListenDrops)
}

// listenRcv handles a segment for a listening socket. It returns true if it
// kept b. Mirrors tcp_v4_rcv's listener path: tcp_check_req for a pending
// request, tcp_conn_request for a SYN, cookie_v4_check for a bare ACK.
func (l *TCPSock) listenRcv(b *skb.SKB, th header.TCP, opts *header.TCPOptions, tu tcpTuple) bool {
	return l.listenRcvWithISN(b, th, opts, tu, 0)
}

// listenRcvWithISN is listenRcv for softirq-side input, with the ISN of a
// TIME_WAIT reopen (0: none).
//
// Deviation: Linux's listener path is lockless (requests live in the
// established hash); here the requests and the accept queue are under the
// listener's lock, so a segment for a listener a user owns (Accept, Close)
// goes to its backlog as in Linux before 4.4.
func (l *TCPSock) listenRcvWithISN(b *skb.SKB, th header.TCP, opts *header.TCPOptions, tu tcpTuple, isn uint32) bool {
	owned := l.bhLockSock()
	defer l.bhUnlockSock()
	if owned {
		if isn != 0 {
			// The TIME_WAIT reopen ISN would be lost in the backlog;
			// drop the SYN, the peer's retransmission finds the listener.
			return false
		}
		return l.addBacklog(b, th, false)
	}
	return l.listenProcess(b, th, opts, tu, isn)
}

// listenProcess is listenRcv with the listener's spinlock held (not owned)
// or the listener owned. Mirrors tcp_v4_do_rcv for TCP_LISTEN.
func (l *TCPSock) listenProcess(b *skb.SKB, th header.TCP, opts *header.TCPOptions, tu tcpTuple, isn uint32) bool {
	s := l.stack
	if l.state != TCPListen {
		s.tcpSendReset(th, tu.raddr, tu.laddr, b.Len())
		return false
	}
	flags := cbGetFlags(b)
	if r := l.reqs[tu]; r != nil {
		return l.checkReq(r, b, th, opts)
	}
	// The segment may belong to a connection whose child was hashed after
	// tcpRcv looked the established table up: an earlier segment of the
	// listener's backlog completed it (the data behind a handshake's ACK),
	// or the owner's backlog pass did so between that lookup and this
	// segment taking the listener's lock (the owner then released it, so
	// the segment is processed here, not queued). Look the table up again,
	// as tcp_v4_hnd_req did in Linux before 4.4; without it the segment
	// drew a RST (a failed cookie check) and reset a live connection: 1
	// run in 6-10 of TestKernel200ConcurrentEcho under -race. Linux 4.4+
	// keeps requests in the established hash, so one lookup sees either.
	if s.tcpRcvEstab(b, th, opts, tu, nil) {
		return true // delivered or freed there
	}
	if flags&tcpRst != 0 {
		l.dropReason(b) // tcp_rcv_state_process, TCP_LISTEN: TCP_RESET
		return false
	}
	if flags&tcpAck != 0 {
		if flags&tcpSyn == 0 {
			if ok, keep := l.cookieCheck(b, th, opts, tu); ok {
				return keep
			}
		}
		s.tcpSendReset(th, tu.raddr, tu.laddr, b.Len())
		return false
	}
	if flags&tcpSyn == 0 || flags&tcpFin != 0 {
		l.dropReason(b) // tcp_rcv_state_process, TCP_LISTEN: TCP_FLAGS
		return false
	}
	// tcp_conn_request: SYN cookies always (tcp_syncookies 2) or when the
	// SYN queue is full (1); without them (0) a full queue drops the SYN
	// (tcp_syn_flood_action).
	sys := s.net.Sysctls
	syncookies := sys.TCPSyncookies()
	wantCookie := false
	if syncookies == 2 || len(l.reqs) >= l.backlog { // inet_csk_reqsk_queue_is_full
		if syncookies == 0 {
			s.mib.Inc(memctl.TcpExtTCPReqQFullDrop)
			s.mib.Inc(memctl.TcpExtListenDrops)
			return false
		}
		wantCookie = true
		s.mib.Inc(memctl.TcpExtTCPReqQFullDoCookies)
	}
	if len(l.acceptQ) > l.backlog { // sk_acceptq_is_full
		s.mib.Inc(memctl.TcpExtListenOverflows)
		l.listendrop()
		return false
	}
	// Without SYN cookies, the last quarter of tcp_max_syn_backlog is kept
	// for peers proven alive, which sockfs (no tcp_metrics) never has.
	if maxSyn := sys.TCPMaxSynBacklog(); !wantCookie && syncookies == 0 && maxSyn-len(l.reqs) < maxSyn>>2 {
		s.log.Info("drop open request", "from", netip.AddrPortFrom(tu.raddr, tu.rport), "tcp_max_syn_backlog", maxSyn)
		s.mib.Inc(memctl.TcpExtListenDrops)
		return false
	}
	s.synOptionsAllowed(opts)
	rt, ok := s.routeOutput(tu.raddr)
	if !ok {
		l.listendrop()
		return false
	}
	r := &tcpRequest{l: l, tu: tu, route: rt, irs: cbGetSeq(b), ttl: l.ipTTLFor(tu.raddr), tos: l.ipTOS()}
	r.advmss = rt.Dev.MTU() - netHeaderLen(tu.raddr) - header.TCPMinSize
	if l.userMss > 0 && l.userMss < r.advmss {
		r.advmss = l.userMss
	}
	r.mss = tcpMssDefault
	if opts.HasMSS && opts.MSS > 0 {
		r.mss = int(opts.MSS)
	}
	r.sndWnd = uint32(th.Window())
	// A cookie can keep the SYN's options only in the timestamp it sends
	// (cookieInitTimestamp): without one they are cleared, ECN with them
	// (tcp_conn_request: tcp_clear_options, ecn_ok = 0).
	if !wantCookie || opts.HasTimestamp {
		r.wscaleOK = opts.HasWS
		r.sndWscale = min(opts.WS, tcpMaxWscale)
		r.sackOK = opts.SACKPermitted
		r.tstampOK = opts.HasTimestamp
		r.tsRecent = opts.TSVal
		r.ecnOK = l.ecnCreateRequest(flags, cbGetDsfield(b))
	}
	r.tsOffset = s.tcp.secureTSOff(tu)
	winMss := r.advmss
	if r.tstampOK {
		winMss -= tcpOlenTstampAl
	}
	r.rcvWnd, r.rcvWscale, r.clamp = l.initialWindow(winMss, r.wscaleOK)
	if wantCookie {
		mssIdx := cookieMssIndex(min(r.mss, r.advmss))
		r.mss = cookieMss[mssIdx]
		r.iss = s.tcp.cookieSeq(tu, r.irs, cookieCount(s.clock), uint32(mssIdx))
		r.cookie = true
		s.mib.Inc(memctl.TcpExtSyncookiesSent)
		r.sendSynAck(s)
		return false
	}
	if isn != 0 {
		r.iss = isn
	} else {
		r.iss = s.tcp.secureSeq(tu)
	}
	r.timer = s.clock.NewTimer(func() { l.synackTimerFired(r) })
	l.reqs[tu] = r
	r.sendSynAck(s)
	r.timer.Reset(tcpTimeoutInit)
	return false
}

// sendSynAck builds and sends the request's SYN-ACK. Mirrors tcp_make_synack
// + tcp_v4_send_synack.
func (r *tcpRequest) sendSynAck(s *Stack) {
	b := allocControlSkb()
	var opts [40]byte
	ws := -1
	if r.wscaleOK {
		ws = int(r.rcvWscale)
	}
	tsval := uint32(s.clock.Nanotime() / int64(time.Millisecond))
	if r.cookie && r.tstampOK { // tcp_make_synack, TCP_SYNACK_COOKIE
		tsval = r.cookieInitTimestamp(tsval)
	}
	tsval += r.tsOffset
	n := header.EncodeSynOptions(opts[:], uint16(r.advmss), ws, r.sackOK, r.tstampOK, tsval, r.tsRecent)
	hlen := header.TCPMinSize + n
	th := header.TCP(b.Push(hlen))
	flags := header.TCPFlagSyn | header.TCPFlagAck
	if r.ecnOK { // tcp_ecn_make_synack
		flags |= header.TCPFlagEce
	}
	th.Encode(&header.TCPFields{SrcPort: r.tu.lport, DstPort: r.tu.rport, Seq: r.iss, Ack: r.irs + 1,
		DataOffset: hlen, Flags: flags, Window: uint16(min(r.rcvWnd, 65535))})
	copy(th[header.TCPMinSize:], opts[:n])
	th.SetChecksum(th.CalculateChecksum(r.tu.laddr, r.tu.raddr))
	b.SetTransportHeader()
	r.sentAt = s.clock.Nanotime()
	s.mib.Inc(memctl.TcpOutSegs)
	// The listener's IP_TTL and IP_TOS, as ip_build_and_send_pkt uses.
	s.ipOutput(b, r.route, r.tu.laddr, r.tu.raddr, header.IPv4ProtocolTCP, r.ttl, r.tos, nil)
}

// synackTimerFired retransmits a SYN-ACK with back-off, dropping the
// request after tcp_synack_retries. Mirrors reqsk_timer_handler.
//
// Deviation: the requests are under the listener's lock here (see
// listenRcvWithISN), so a listener owned by a user makes the timer retry.
func (l *TCPSock) synackTimerFired(r *tcpRequest) {
	if l.bhLockSock() {
		l.bhUnlockSock()
		r.timer.Reset(tcpTimerRetry)
		return
	}
	defer l.bhUnlockSock()
	if l.reqs[r.tu] != r {
		return
	}
	l.stack.mib.Inc(memctl.TcpExtTCPTimeouts) // tcp_syn_ack_timeout, at every expiry, the last too
	if r.retrans >= l.stack.net.Sysctls.TCPSynackRetries() { // reqsk_timer_handler: max_syn_ack_retries
		delete(l.reqs, r.tu)
		return
	}
	r.retrans++
	r.rtxSynAck(l.stack)
	r.timer.Reset(r.timeout())
}

// timeout is the request's current SYN-ACK timeout, backed off by the
// timer's resends. Mirrors reqsk_timeout(req, TCP_RTO_MAX).
func (r *tcpRequest) timeout() time.Duration {
	return min(tcpTimeoutInit<<r.retrans, tcpRtoMax)
}

// rtxSynAck resends the SYN-ACK and counts it. Mirrors tcp_rtx_synack.
func (r *tcpRequest) rtxSynAck(s *Stack) {
	r.numRetrans++
	s.mib.Inc(memctl.TcpRetransSegs)
	s.mib.Inc(memctl.TcpExtTCPSynRetrans)
	r.sendSynAck(s)
}

// sendAck answers a segment for the request with <SEQ=ISS+1><ACK=RCV.NXT>
// and the SYN-ACK's window, unscaled by the window scale. Mirrors
// tcp_v4_reqsk_send_ack for a listener's request.
func (r *tcpRequest) sendAck(s *Stack) {
	b := allocControlSkb()
	var opts [12]byte
	n := 0
	if r.tstampOK {
		tsval := uint32(s.clock.Nanotime()/int64(time.Millisecond)) + r.tsOffset
		n = header.EncodeOptions(opts[:], true, tsval, r.tsRecent, nil)
	}
	hlen := header.TCPMinSize + n
	th := header.TCP(b.Push(hlen))
	th.Encode(&header.TCPFields{SrcPort: r.tu.lport, DstPort: r.tu.rport, Seq: r.iss + 1, Ack: r.irs + 1,
		DataOffset: hlen, Flags: header.TCPFlagAck, Window: uint16(r.synackWindow() >> r.wscale())})
	copy(th[header.TCPMinSize:], opts[:n])
	th.SetChecksum(th.CalculateChecksum(r.tu.laddr, r.tu.raddr))
	b.SetTransportHeader()
	s.mib.Inc(memctl.TcpOutSegs)
	s.ipOutput(b, r.route, r.tu.laddr, r.tu.raddr, header.IPv4ProtocolTCP, r.ttl, r.tos, nil)
}

// wscale is the request's receive window scale, 0 without the option.
func (r *tcpRequest) wscale() uint8 {
	if !r.wscaleOK {
		return 0
	}
	return r.rcvWscale
}

// synackWindow is the window the SYN-ACK offered: rcv_wnd, at most 65535
// (a SYN's window is never scaled). Mirrors tcp_synack_window.
func (r *tcpRequest) synackWindow() uint32 { return min(r.rcvWnd, 65535) }

// inWindow mirrors tcp_in_window (tcp_minisocks.c): the segment starts at
// sWin, or overlaps [sWin, eWin), or is empty at eWin.
func inWindow(seq, end, sWin, eWin uint32) bool {
	if seq == sWin {
		return true
	}
	if seqGT(end, sWin) && seqLT(seq, eWin) {
		return true
	}
	return seq == eWin && seq == end
}

// checkReq processes a segment for a pending request in tcp_check_req's
// order: a retransmitted SYN gets the SYN-ACK again; a wrong ACK is left to
// the listener (a RST answers it); an out-of-window segment gets an ACK; a
// RST at rcv_nxt or a SYN in the window drops the request (a RST answers
// the SYN); the ACK of our SYN-ACK creates the child. Mirrors
// tcp_check_req; every segment it does not turn into a child (tcp_check_req
// returning NULL) is counted in the listener's sk_drops, as tcp_v4_rcv's
// discard_and_relse does, apart from one with a wrong ACK.
//
// A RST in the window but not at rcv_nxt draws a challenge ACK under the
// request's rate limit and the host-wide one, and leaves the request: what
// the live 6.18.44 kernel does (TCPChallengeACK, TCPACKSkippedChallenge
// sharing last_oow_ack_time with the out-of-window ACKs; no
// TcpAttemptFails), where the tcp_check_req read for this code dropped the
// request for any RST in the window.
func (l *TCPSock) checkReq(r *tcpRequest, b *skb.SKB, th header.TCP, opts *header.TCPOptions) bool {
	s := l.stack
	flags := cbGetFlags(b)
	seq := cbGetSeq(b)
	if seq == r.irs && flags&(tcpRst|tcpSyn|tcpAck) == tcpSyn {
		// A retransmitted SYN: resend the SYN-ACK, rate-limited, and
		// restart the timer from now with its current timeout, "similar
		// to the idea of fast retransmit in recovery"
		// (mod_timer_pending).
		if !s.oowRateLimitedAt(&r.lastOOWAck, memctl.TcpExtTCPACKSkippedSynRecv) {
			r.rtxSynAck(s)
			r.timer.Reset(r.timeout())
		}
		l.dropReason(b)
		return false
	}
	if flags&tcpAck != 0 && cbGetAckSeq(b) != r.iss+1 {
		// tcp_check_req returns the listener, whose
		// tcp_rcv_state_process drops a RST and answers the rest.
		if flags&tcpRst != 0 {
			l.dropReason(b)
			return false
		}
		s.tcpSendReset(th, r.tu.raddr, r.tu.laddr, b.Len())
		return false
	}
	rcvNxt := r.irs + 1
	if !inWindow(seq, cbGetEndSeq(b), rcvNxt, rcvNxt+r.synackWindow()) {
		// tcp_oow_rate_limited: data (not a SYN) is always answered.
		if flags&tcpRst == 0 && (seq != cbGetEndSeq(b) && flags&tcpSyn == 0 ||
			!s.oowRateLimitedAt(&r.lastOOWAck, memctl.TcpExtTCPACKSkippedSynRecv)) {
			r.sendAck(s)
		}
		l.dropReason(b)
		return false
	}
	if seq == r.irs {
		flags &^= tcpSyn // the SYN is before the window: truncated
	}
	if flags&tcpRst != 0 && seq != rcvNxt {
		if !s.oowRateLimitedAt(&r.lastOOWAck, memctl.TcpExtTCPACKSkippedChallenge) && s.challengeAckAllowed() {
			r.sendAck(s)
		}
		l.dropReason(b)
		return false
	}
	if flags&(tcpRst|tcpSyn) != 0 { // embryonic_reset
		s.mib.Inc(memctl.TcpAttemptFails)
		if flags&tcpRst == 0 {
			s.tcpSendReset(th, r.tu.raddr, r.tu.laddr, b.Len())
		}
		r.timer.Stop()
		delete(l.reqs, r.tu)
		s.mib.Inc(memctl.TcpExtEmbryonicRsts)
		l.dropReason(b)
		return false
	}
	if flags&tcpAck == 0 {
		l.dropReason(b)
		return false
	}
	if len(l.acceptQ) > l.backlog {
		// tcp_v4_syn_recv_sock's tcp_listendrop, then tcp_check_req's
		// NULL: two in sk_drops.
		s.mib.Inc(memctl.TcpExtListenOverflows)
		l.listendrop()
		l.dropReason(b)
		if s.net.Sysctls.TCPAbortOnOverflow() { // tcp_check_req: embryonic_reset
			s.tcpSendReset(th, r.tu.raddr, r.tu.laddr, b.Len())
			r.timer.Stop()
			delete(l.reqs, r.tu)
			s.mib.Inc(memctl.TcpExtEmbryonicRsts)
		}
		return false // else the request stays for the peer's retransmission (req->acked)
	}
	r.timer.Stop()
	delete(l.reqs, r.tu)
	if opts.HasTimestamp && r.tstampOK {
		r.tsRecent = opts.TSVal
	}
	return l.createChild(r, b, th, opts, true)
}

// createChild makes the socket of an accepted connection, queues it for
// accept and lets it process the segment that completed the handshake.
// Mirrors tcp_v4_syn_recv_sock + tcp_create_openreq_child + tcp_child_process.
func (l *TCPSock) createChild(r *tcpRequest, b *skb.SKB, th header.TCP, opts *header.TCPOptions, rttOK bool) bool {
	s := l.stack
	sk := l.sk.Clone()
	sk.Proto().SocketsAllocatedInc()
	c := s.newTCPSock(sk)
	c.local = netip.AddrPortFrom(r.tu.laddr, r.tu.lport)
	c.remote = netip.AddrPortFrom(r.tu.raddr, r.tu.rport)
	c.route = r.route
	c.iss, c.sndUna, c.sndNxt, c.writeSeq = r.iss, r.iss, r.iss+1, r.iss+1
	c.pushedSeq = c.writeSeq
	c.irs, c.rcvNxt, c.rcvWup, c.copiedSeq = r.irs, r.irs+1, r.irs+1, r.irs+1
	c.sndWl1 = r.irs
	c.sndWnd = r.sndWnd
	c.maxWindow = r.sndWnd
	c.wscaleOK, c.sndWscale, c.rcvWscale = r.wscaleOK, r.sndWscale, r.rcvWscale
	if !c.wscaleOK {
		c.sndWscale, c.rcvWscale = 0, 0
	}
	c.sackOK, c.tstampOK = r.sackOK, r.tstampOK
	c.tsRecent, c.tsOffset = r.tsRecent, r.tsOffset
	if c.tstampOK {
		c.tsRecentStamp = max(c.now(), 1)
	}
	c.mssClamp = r.mss
	c.advmss = r.advmss
	if c.tstampOK {
		c.advmss -= tcpOlenTstampAl
	}
	c.rcvWnd, c.windowClamp, c.rcvSsthresh = r.rcvWnd, r.clamp, r.rcvWnd
	c.rcvMss = min(c.advmss, tcpMssDefault)
	c.nodelay, c.keepalive, c.notsentLowat = l.nodelay, l.keepalive, l.notsentLowat
	c.kaTime, c.kaIntvl, c.kaProbes = l.kaTime, l.kaIntvl, l.kaProbes
	c.userMss = l.userMss
	c.rcvlowat = l.rcvlowat     // sk_clone_lock
	c.ttl, c.tos = l.ttl, l.tos // inet_sk copied by sk_clone_lock
	c.v6only = l.v6only
	c.mapped = l.local.Addr().Is6() && r.tu.laddr.Is4() // tcp_v6_syn_recv_sock's v4-mapped child
	if cc := newCongestionControl(l.ccName); cc != nil {
		c.setCC(cc, l.ccName)
	}
	c.ecnTos = l.ecnTos
	if r.ecnOK { // tcp_ecn_openreq_child
		c.ecnFlags = tcpECNOK
	}
	c.syncMss(c.pathMTU())
	c.syncSeqs()
	c.lockSock()
	defer c.releaseSock()
	t := &s.tcp
	t.mu.Lock()
	if !c.hashEstabLocked() {
		t.mu.Unlock()
		c.destroyLocked()
		return false
	}
	c.bound = true
	t.bound[r.tu.lport] = append(t.bound[r.tu.lport], c)
	t.mu.Unlock()
	c.state = TCPSynRecv
	s.mib.Inc(memctl.TcpPassiveOpens)
	if rttOK && r.numRetrans == 0 && r.sentAt != 0 {
		c.rttEstimator(time.Duration(c.now() - r.sentAt))
		c.updateRttMin(time.Duration(c.now() - r.sentAt)) // tcp_synack_rtt_meas feeds min_rtt too
	}
	c.parent = l
	l.acceptQ = append(l.acceptQ, c)
	keep := c.rcv(b, th, opts)
	l.sk.Wq.Wake()
	return keep
}

// SYN cookies (RFC 4987 section 3.6), when the SYN queue is full. The cookie
// encodes a minute counter and an MSS index in the ISN, as Linux's
// __cookie_v4_init_sequence does. A SYN with timestamps keeps its window
// scale, SACK and ECN in the low bits of the SYN-ACK's TSval, which the
// ACK echoes (cookieInitTimestamp, cookieTimestampDecode); without
// timestamps the connection has none of them, as in Linux.

var cookieMss = [...]int{536, 1300, 1440, 1460} // msstab

const cookieBits = 24

func cookieMssIndex(mss int) int {
	for i := len(cookieMss) - 1; i > 0; i-- {
		if mss >= cookieMss[i] {
			return i
		}
	}
	return 0
}

// cookieCount is the minute counter (tcp_cookie_time).
func cookieCount(c clock.Clock) uint32 { return uint32(c.Nanotime() / int64(time.Minute)) }

func (t *tcpTable) cookieHash(tu tcpTuple, count uint32, c byte) uint32 {
	if tu.laddr.Is6() {
		var extra [5]byte
		binary.BigEndian.PutUint32(extra[:], count)
		extra[4] = c
		return t.hashTuple6(&t.isnKey, tu, extra[:])
	}
	var buf [50]byte
	copy(buf[:32], t.isnKey[:])
	l, r := tu.laddr.As4(), tu.raddr.As4()
	copy(buf[32:], l[:])
	copy(buf[36:], r[:])
	binary.BigEndian.PutUint16(buf[40:], tu.lport)
	binary.BigEndian.PutUint16(buf[42:], tu.rport)
	binary.BigEndian.PutUint32(buf[44:], count)
	buf[48] = c
	sum := sha256.Sum256(buf[:])
	return binary.LittleEndian.Uint32(sum[:4])
}

// cookieSeq mirrors secure_tcp_syn_cookie.
func (t *tcpTable) cookieSeq(tu tcpTuple, sseq, count, data uint32) uint32 {
	return t.cookieHash(tu, 0, 0) + sseq + count<<cookieBits +
		((t.cookieHash(tu, count, 1) + data) & (1<<cookieBits - 1))
}

// cookieCheck validates the ACK of a cookie SYN-ACK and creates the child.
// Mirrors cookie_v4_check / check_tcp_syn_cookie.
func (l *TCPSock) cookieCheck(b *skb.SKB, th header.TCP, opts *header.TCPOptions, tu tcpTuple) (ok, keep bool) {
	s := l.stack
	seq := cbGetSeq(b) - 1
	cookie := cbGetAckSeq(b) - 1
	count := cookieCount(s.clock)
	c := cookie - s.tcp.cookieHash(tu, 0, 0) - seq
	diff := (count - c>>cookieBits) & (0xffffffff >> cookieBits)
	if diff >= 2 { // MAX_SYNCOOKIE_AGE
		s.mib.Inc(memctl.TcpExtSyncookiesFailed)
		return false, false
	}
	idx := (c - s.tcp.cookieHash(tu, count-diff, 1)) & (1<<cookieBits - 1)
	if idx >= uint32(len(cookieMss)) {
		s.mib.Inc(memctl.TcpExtSyncookiesFailed)
		return false, false
	}
	if len(l.acceptQ) > l.backlog {
		s.mib.Inc(memctl.TcpExtListenOverflows)
		l.listendrop()
		return false, false
	}
	rt, found := s.routeOutput(tu.raddr)
	if !found {
		return false, false
	}
	r := &tcpRequest{l: l, tu: tu, route: rt, irs: seq, iss: cookie, mss: cookieMss[idx], sndWnd: uint32(th.Window()),
		ttl: l.ipTTLFor(tu.raddr), tos: l.tos}
	// The options the SYN-ACK's TSval carried, echoed back (the offset
	// taken off first, as cookie_v4_check does).
	if opts.HasTimestamp && opts.TSEcr != 0 {
		r.tsOffset = s.tcp.secureTSOff(tu)
		if !r.cookieTimestampDecode(opts.TSEcr-r.tsOffset, opts.TSVal) {
			return false, false
		}
		r.ecnOK = r.ecnOK && s.net.Sysctls.TCPECN() != 0 // cookie_ecn_ok
	}
	s.mib.Inc(memctl.TcpExtSyncookiesRecv)
	r.advmss = rt.Dev.MTU() - netHeaderLen(tu.raddr) - header.TCPMinSize
	r.rcvWnd, r.rcvWscale, r.clamp = l.initialWindow(r.advmss, r.wscaleOK)
	return true, l.createChild(r, b, th, opts, false)
}

// The options a SYN cookie keeps in the low bits of its SYN-ACK's TSval
// (net/ipv4/syncookies.c): the peer's window scale (all ones: none), SACK
// and ECN.
const (
	cookieTSBits     = 6
	cookieTSWscale   = 0xf    // TS_OPT_WSCALE_MASK
	cookieTSSack     = 1 << 4 // TS_OPT_SACK
	cookieTSECN      = 1 << 5 // TS_OPT_ECN
	cookieTSOptsMask = 1<<cookieTSBits - 1
)

// cookieInitTimestamp is the TSval (before the offset) of a cookie
// SYN-ACK sent at now (ms): now with its low bits replaced by the
// request's options, and never later than now, since the connection's
// later timestamps start from now. Mirrors cookie_init_timestamp.
func (r *tcpRequest) cookieInitTimestamp(now uint32) uint32 {
	options := uint32(cookieTSWscale)
	if r.wscaleOK {
		options = uint32(r.sndWscale)
	}
	if r.sackOK {
		options |= cookieTSSack
	}
	if r.ecnOK {
		options |= cookieTSECN
	}
	ts := now&^cookieTSOptsMask | options
	if ts > now {
		ts -= 1 << cookieTSBits
	}
	return ts
}

// cookieTimestampDecode restores the options of a cookie request from
// the echoed TSval tsecr (its offset taken off): SACK, window scale and
// ECN (the caller checks tcp_ecn), timestamps on; false if the sysctls no
// longer allow what it carries. Mirrors cookie_timestamp_decode.
func (r *tcpRequest) cookieTimestampDecode(tsecr, tsval uint32) bool {
	sys := r.l.stack.net.Sysctls
	if sys.TCPTimestamps() == 0 {
		return false
	}
	r.tstampOK, r.tsRecent = true, tsval
	r.sackOK = tsecr&cookieTSSack != 0
	if r.sackOK && !sys.TCPSack() {
		return false
	}
	r.ecnOK = tsecr&cookieTSECN != 0
	if tsecr&cookieTSWscale == cookieTSWscale {
		return true // no window scaling
	}
	r.wscaleOK, r.sndWscale = true, uint8(tsecr&cookieTSWscale)
	return sys.TCPWindowScaling()
}
