package netstack

import (
	"net/netip"
	"time"
)

// Socket states of the user's handle, struct socket's state beside the
// protocol state (sock->state): whether connect has been called and how it
// ended decides what the next connect does (__inet_stream_connect).
const (
	ssUnconnected = iota // SS_UNCONNECTED: never connected, or disconnected after a failure
	ssConnecting         // SS_CONNECTING: a connect is under way or ended unseen (non-blocking)
	ssConnected          // SS_CONNECTED: connected once (an accepted socket too)
)

// disconnect returns a socket whose connection attempt failed to the state
// of a fresh one, so that connect can be called on it again: the queues
// and timers go, the connection's sequence, timing, congestion and option
// state start over, sk_shutdown is cleared; what the user set (buffer
// sizes, nodelay, keepalive, TCP_MAXSEG, the congestion control's name, a
// timeout) stays. The next connect starts its sequence numbers max_window
// + 2 past the old ones. Caller owns tp, which is in CLOSE. Mirrors
// tcp_disconnect as __inet_stream_connect's failure path calls it.
//
// Deviation: Linux keeps a port the user bound (SOCK_BINDPORT_LOCK); here
// tcp_done's unhash has already released it, and the next connect binds
// an ephemeral port.
func (tp *TCPSock) disconnect() {
	if tp.state != TCPClose {
		tp.setState(TCPClose)
	}
	tp.stopTimers()
	tp.purgeRecvQueues()
	tp.purgeWriteQueues()
	tp.remote = netip.AddrPortFrom(tp.remote.Addr(), 0) // inet_dport = 0

	tp.route = Route{}
	tp.sk.ClearShutdown()
	tp.finSeen, tp.urgData = false, false // SOCK_DONE

	// The next connect's ISS (tcp_v4_connect keeps a nonzero write_seq).
	seq := tp.writeSeq + tp.maxWindow + 2
	if seq == 0 {
		seq = 1
	}
	tp.writeSeq, tp.iss, tp.twReused = seq, seq, true
	tp.syncSeqs()

	tp.srttUs, tp.rttvarUs, tp.mdevMaxUs, tp.rttSeq = 0, 0, 0, 0
	tp.mdevUs = uint32(tcpTimeoutInit / time.Microsecond)
	tp.rcvRttLastTsecr, tp.rcvRttUs, tp.rcvRttSeq, tp.rcvRttTime = 0, 0, 0, 0
	tp.backoff, tp.retransmits, tp.probesOut, tp.probesTstamp = 0, 0, 0, 0
	tp.rto, tp.rtoMin = tcpTimeoutInit, tcpRtoMin // tcp_disconnect resets icsk_rto_min to TCP_RTO_MIN
	tp.rtoKind, tp.retransStamp = 0, 0

	// Congestion state: a new algorithm instance, initialised again when
	// the next connection is established (icsk_ca_initialized = 0).
	tp.ssthresh = 0x7fffffff
	tp.cwnd, tp.cwndCnt = tcpInitCwnd, 0
	tp.cwndLimited, tp.maxPacketsOut, tp.cwndUsageSeq = false, 0, 0
	tp.windowClamp = 0
	tp.delivered, tp.deliveredCE = 0, 0
	tp.setCC(newCongestionControl(tp.ccName), tp.ccName)
	tp.caState = tcpCAOpen
	tp.frto = false
	// tcp_clear_retrans and the recovery state.
	tp.retransOut, tp.lostOut, tp.sackedOut, tp.packetsOut = 0, 0, 0, 0
	tp.undoMarker, tp.undoRetrans, tp.undoEnd = 0, -1, 0
	tp.priorCwnd, tp.priorSsthr, tp.prrDelivered, tp.prrOut = 0, 0, 0, 0
	tp.highSeq, tp.dupAcks, tp.totalRetrans = 0, 0, 0
	tp.tlpHighSeq, tp.tlpRetrans = 0, false
	tp.rack = tcpRack{reoWndSteps: 1}
	tp.rate = tcpRateState{}
	tp.rttMin.reset(0, tcpRackNoMinRtt)
	tp.reordSeen, tp.dsackDups, tp.dataSegsOut = 0, 0, 0
	tp.bytesAcked, tp.bytesReceived = 0, 0
	tp.skPacingRate, tp.wstampNs = 0, 0

	// inet_csk_delack_init; rcv_mss starts at TCP_MIN_MSS.
	tp.ackPending, tp.ackQuick, tp.ackPingpong, tp.ato = 0, 0, 0, 0
	tp.lrcvtime, tp.lastOOWAck, tp.compressedAck = 0, 0, 0
	tp.compressedAckRcvNxt, tp.dupAckCounter, tp.deferred = 0, 0, 0
	tp.rcvMss, tp.lastSegSize = tcpMinMss, 0

	// The options the peer agreed to (rx_opt), and the window it offered.
	tp.wscaleOK, tp.sackOK, tp.tstampOK, tp.sawTstamp = false, false, false, false
	tp.sndWscale, tp.rcvWscale = 0, 0
	tp.tsRecent, tp.tsRecentStamp, tp.rcvTsval, tp.rcvTsecr = 0, 0, 0, 0
	tp.numSacks, tp.dsack = 0, false
	tp.mssClamp = 0xffff
	tp.sndWnd, tp.maxWindow, tp.rcvWnd, tp.rcvSsthresh = 0, 0, 0, 0
	tp.predOn = false
	tp.ecnFlags = 0
	tp.gsoSegs, tp.pmtuCookie = 0, 0
	tp.mtup = tcpMtup{}
	tp.errSoft = 0
	tp.rcvqSpace, tp.rcvqSeq, tp.rcvqTime = 0, 0, 0
	tp.sockState = ssUnconnected
	tp.stack.log.Debug("tcp disconnect", "local", tp.local)
}
