package netstack

import (
	"math"

	"sockfs/memctl"
)

// SetRcvlowat is SO_RCVLOWAT: a blocked read returns, and poll reports
// the socket readable, only once that many bytes are queued (or the FIN,
// an error, a timeout; or the receive buffer or the window is nearly
// full, tcp_epollin_ready). A negative value means INT_MAX; the value is
// capped at half of tcp_rmem[2] (half of rcvbuf when SO_RCVBUF locked it);
// 0 means 1. Unless rcvbuf is locked, rcvbuf grows to hold a window of
// that many bytes (tcp_space_from_win: twice the value at the default
// scaling ratio) and window_clamp, if set lower, is raised to it; a later
// smaller value shrinks nothing. Takes the socket lock. Mirrors
// sock_setsockopt(SO_RCVLOWAT) -> tcp_set_rcvlowat.
func (tp *TCPSock) SetRcvlowat(val int) {
	tp.lockSock()
	defer tp.releaseSock()
	if val < 0 {
		val = math.MaxInt32
	}
	locked := tp.sk.Userlocks()&memctl.SockRcvbufLock != 0
	lim := tp.stack.net.Sysctls.TCPRmem()[2] >> 1
	if locked {
		lim = tp.sk.Rcvbuf() >> 1
	}
	val = min(val, lim)
	tp.rcvlowat = max(val, 1)
	tp.dataReady() // a reader may be satisfied now
	if locked {
		return
	}
	if space := tp.spaceFromWin(val); space > tp.sk.Rcvbuf() {
		tp.sk.SetRcvbuf(space)
		if tp.windowClamp != 0 && tp.windowClamp < uint32(val) {
			tp.windowClamp = uint32(val)
		}
	}
}

// Rcvlowat returns SO_RCVLOWAT (sk_rcvlowat).
func (tp *TCPSock) Rcvlowat() int {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.rcvlowat
}

// recvTarget is how many bytes a read of n bytes waits for: SO_RCVLOWAT,
// at most n, at least 1. Mirrors sock_rcvlowat (without MSG_WAITALL).
func (tp *TCPSock) recvTarget(n int) int { return max(min(tp.rcvlowat, n), 1) }

// epollinReady reports whether a reader waiting for target bytes is to be
// woken: that many are unread, or the receive buffer is under pressure, or
// the window left is no more than a segment (the peer cannot send what
// the reader waits for). Mirrors tcp_epollin_ready.
func (tp *TCPSock) epollinReady(target int) bool {
	avail := int(int32(tp.rcvNxt - tp.copiedSeq))
	if avail <= 0 {
		return false
	}
	return avail >= target || tp.rmemPressure() || tp.receiveWindow() <= uint32(tp.rcvMss)
}

// rmemPressure reports whether the protocol is under memory pressure or
// rmem_alloc is above 7/8 of rcvbuf. Mirrors tcp_rmem_pressure.
func (tp *TCPSock) rmemPressure() bool {
	if tp.underPressure() {
		return true
	}
	rcvbuf := tp.sk.Rcvbuf()
	return tp.sk.RmemAlloc() > rcvbuf-rcvbuf>>3
}

// dataReady wakes readers when SO_RCVLOWAT is met, or after the FIN.
// Mirrors tcp_data_ready (sk_data_ready).
func (tp *TCPSock) dataReady() {
	if tp.epollinReady(tp.rcvlowat) || tp.finSeen {
		tp.sk.Wq.Wake()
	}
}
