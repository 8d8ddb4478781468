package netstack

import (
	"sockfs/memctl"
	"sockfs/netstack/header"
)

// Packetization-layer path-MTU discovery (RFC 4821), for paths where the
// ICMP that path-MTU discovery needs never arrives (a "black hole": a
// router or firewall drops both the large packet and the message). With
// net.ipv4.tcp_mtu_probing 1 it starts once tcp_retries1 RTOs suggest a
// black hole, with 2 on every connection: the MSS drops to what
// search_low allows, and single probe segments of a binary search between
// search_low and search_high find how large a packet the path carries.
// Mirrors icsk_mtup and tcp_mtup_init, tcp_mtu_probing (tcp_timer.c),
// tcp_mtu_probe and tcp_mtu_check_reprobe (tcp_output.c),
// tcp_mtup_probe_success and tcp_mtup_probe_failed (tcp_input.c).

// tcpMtup is a connection's probing state. Mirrors struct icsk_mtup and
// tp->mtu_probe.
type tcpMtup struct {
	enabled        bool
	searchHigh     int // largest MTU not known to fail
	searchLow      int // largest MTU known to work
	probeSize      int // MTU of the probe in flight; 0 when none
	probeTimestamp int64
	probeSeqStart  uint32
	probeSeqEnd    uint32
}

// mtuToMss is the MSS for a packet of pmtu bytes: the IP and TCP headers
// off, at most the peer's MSS, at least tcp_min_snd_mss, then the options
// a data segment carries off. Mirrors tcp_mtu_to_mss.
func (tp *TCPSock) mtuToMss(pmtu int) int {
	mss := pmtu - header.IPv4MinSize - header.TCPMinSize
	if tp.mssClamp > 0 && mss > tp.mssClamp {
		mss = tp.mssClamp
	}
	mss = max(mss, tp.stack.net.Sysctls.TCPMinSndMss())
	if tp.tstampOK {
		mss -= tcpOlenTstampAl
	}
	return mss
}

// mssToMtu is the inverse of mtuToMss. Mirrors tcp_mss_to_mtu.
func (tp *TCPSock) mssToMtu(mss int) int {
	mtu := mss + header.IPv4MinSize + header.TCPMinSize
	if tp.tstampOK {
		mtu += tcpOlenTstampAl
	}
	return mtu
}

// mtupInit sets the search range when a connection starts: from
// tcp_base_mss up to what the peer's MSS allows; probing is on from the
// start only with tcp_mtu_probing 2. Mirrors tcp_mtup_init.
func (tp *TCPSock) mtupInit() {
	sc := tp.stack.net.Sysctls
	m := &tp.mtup
	m.enabled = sc.TCPMtuProbing() > 1
	m.searchHigh = tp.mssClamp + header.TCPMinSize + header.IPv4MinSize
	m.searchLow = tp.mssToMtu(sc.TCPBaseMss())
	m.probeSize = 0
	if m.enabled {
		m.probeTimestamp = tp.now()
	}
}

// mtuProbing is black-hole detection, run when tcp_retries1 RTOs have
// passed: with tcp_mtu_probing on, the first time it turns probing on (the
// MSS falls to search_low's), each later time it halves search_low's MSS,
// down to tcp_base_mss at most and tcp_mtu_probe_floor at least. Mirrors
// tcp_mtu_probing.
func (tp *TCPSock) mtuProbing() {
	sc := tp.stack.net.Sysctls
	if sc.TCPMtuProbing() == 0 {
		return
	}
	m := &tp.mtup
	if !m.enabled {
		m.enabled = true
		m.probeTimestamp = tp.now()
	} else {
		mss := tp.mtuToMss(m.searchLow) >> 1
		mss = min(sc.TCPBaseMss(), mss)
		mss = max(mss, sc.TCPMtuProbeFloor(), sc.TCPMinSndMss())
		m.searchLow = tp.mssToMtu(mss)
	}
	tp.syncMss(tp.pmtuCookie)
}

// mtuCheckReprobe starts the search over, from the current MSS up to the
// peer's, once tcp_probe_interval has passed since the last one began: a
// path may have grown. Mirrors tcp_mtu_check_reprobe.
func (tp *TCPSock) mtuCheckReprobe() {
	m := &tp.mtup
	if tp.now()-m.probeTimestamp < int64(tp.stack.net.Sysctls.TCPProbeInterval()) {
		return
	}
	mss := tp.sendMss()
	m.probeSize = 0
	m.searchHigh = tp.mssClamp + header.TCPMinSize + header.IPv4MinSize
	m.searchLow = tp.mssToMtu(mss)
	m.probeTimestamp = tp.now()
}

// mtuProbe sends one probe segment of the size halfway between search_low
// and search_high, if probing is on and none is in flight, the connection
// is in Open with a congestion window of at least 11 and no SACK blocks to
// send, and enough data is queued to detect the probe's loss by duplicate
// ACKs. It returns 1 when it sent the probe, 0 when the caller should wait
// (the window or cwnd will open), -1 when it should send normally.
// Mirrors tcp_mtu_probe. Deviation: Linux copies the probe out of the
// first skbs of the write queue; sockfs's are TSO-sized, so it cuts the
// probe off the head skb instead, and does not probe when that skb is
// shorter than the probe (a small write at the head).
func (tp *TCPSock) mtuProbe() int {
	m := &tp.mtup
	if !m.enabled || m.probeSize != 0 || tp.caState != tcpCAOpen || tp.cwnd < 11 ||
		tp.numSacks != 0 || tp.dsack {
		return -1
	}
	probeSize := tp.mtuToMss((m.searchHigh + m.searchLow) >> 1)
	sizeNeeded := probeSize + int(tp.reordering+1)*tp.mssCache
	if probeSize > tp.mtuToMss(m.searchHigh) || m.searchHigh-m.searchLow < tp.stack.net.Sysctls.TCPProbeThreshold() {
		tp.mtuCheckReprobe()
		return -1
	}
	if int(tp.writeSeq-tp.sndNxt) < sizeNeeded || int(tp.sndWnd) < sizeNeeded {
		return -1
	}
	if seqGT(tp.sndNxt+uint32(sizeNeeded), tp.sndUna+tp.sndWnd) {
		return 0
	}
	if inflight := tp.packetsInFlight(); inflight+2 > tp.cwnd {
		if inflight == 0 {
			return -1
		}
		return 0
	}
	b := tp.writeQueue.Peek()
	if b == nil || b.Len() < probeSize || cbGetFlags(b)&(tcpSyn|tcpFin) != 0 {
		return -1
	}
	if b.Len() > probeSize && !tp.fragment(&tp.writeQueue, b, probeSize, probeSize) {
		return -1
	}
	setSkbTsoSegs(b, probeSize) // one segment, larger than the MSS
	b.HeaderRelease()
	tp.rateSkbSent(b)
	tp.transmitSkb(b, true)
	tp.cwnd-- // the probe is two segments' worth
	tp.eventNewDataSent(b)
	m.probeSize = tp.mssToMtu(b.Len())
	m.probeSeqStart, m.probeSeqEnd = cbGetSeq(b), cbGetEndSeq(b)
	return 1
}

// mtupProbeSuccess takes an acknowledged probe's size as the new
// search_low and MSS, scaling cwnd so the bytes in flight stay the same.
// Mirrors tcp_mtup_probe_success.
func (tp *TCPSock) mtupProbeSuccess() {
	m := &tp.mtup
	tp.priorSsthr = tp.currentSsthresh()
	tp.cwnd = max(uint32(uint64(tp.cwnd)*uint64(tp.mssToMtu(tp.mssCache))/uint64(m.probeSize)), 1)
	tp.cwndCnt = 0
	tp.ssthresh = tp.currentSsthresh()
	m.searchLow = m.probeSize
	m.probeSize = 0
	tp.syncMss(tp.pmtuCookie)
	tp.stack.mib.Inc(memctl.TcpExtTCPMTUPSuccess)
}

// mtupProbeLost handles a loss that starts at the probe: the path does not
// carry it, so search_high falls below it, and the probe goes again cut to
// the MSS without a cwnd reduction (the probe cost one cwnd unit, given
// back). It reports whether it did; the caller then enters no recovery.
// Mirrors the probe-failure case of tcp_fastretrans_alert and
// tcp_mtup_probe_failed.
func (tp *TCPSock) mtupProbeLost() bool {
	m := &tp.mtup
	if tp.caState > tcpCADisorder || m.probeSize == 0 || tp.sndUna != m.probeSeqStart {
		return false
	}
	m.searchHigh = m.probeSize - 1
	m.probeSize = 0
	tp.stack.mib.Inc(memctl.TcpExtTCPMTUPFail)
	tp.cwnd++
	tp.simpleRetransmit()
	return true
}
