package netstack

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/skb"
)

// Shutdown directions for TCPSock.Shutdown (SHUT_RD, SHUT_WR, SHUT_RDWR as bits).
const (
	ShutRd   = memctl.RcvShutdown
	ShutWr   = memctl.SendShutdown
	ShutRdWr = memctl.RcvShutdown | memctl.SendShutdown
)

// Connect performs an active open to raddr, binding an ephemeral port if
// the socket is unbound. It blocks until the handshake completes unless the
// socket is non-blocking (then EINPROGRESS); ctx cancels the wait (EINTR, or
// EAGAIN at its deadline) but not the connection attempt. Takes the socket
// lock. Mirrors tcp_v4_connect + inet_wait_for_connect.
//
// An IPv6 raddr makes an IPv6 connection (tcp_v6_connect); an IPv4-mapped
// one an IPv4 connection, as Linux's tcp_v6_connect hands it to
// tcp_v4_connect, reported mapped by LocalAddr and RemoteAddr.
func (tp *TCPSock) Connect(ctx context.Context, raddr netip.AddrPort) error {
	mapped := raddr.Addr().Is4In6()
	raddr = netip.AddrPortFrom(selfIfAny(raddr.Addr().Unmap()), raddr.Port())
	if !raddr.Addr().IsValid() || raddr.Port() == 0 || mapped && tp.v6only {
		return errInval
	}
	rt, ok := tp.stack.routeOutput(raddr.Addr())
	if !ok {
		tp.stack.mib.Inc(ipMIBOutNoRoutes(raddr.Addr().Is6()))
		return errNetUnreach
	}
	tp.lockSock()
	defer tp.releaseSock()
	switch {
	case tp.released:
		return errBadF
	case tp.sockState == ssConnected:
		return errIsConn
	case tp.sockState == ssConnecting:
		// An earlier connect that did not wait for its end
		// (non-blocking, or interrupted): report how it ended.
		switch tp.state {
		case TCPSynSent, TCPSynRecv:
			return syscall.EALREADY
		case TCPClose:
			return tp.connectFailed()
		}
		tp.sockState = ssConnected
		return nil
	case tp.state != TCPClose:
		return errIsConn
	case tp.destroyed:
		return errBadF
	}
	if tp.bound && !familyOK(tp.local.Addr(), tp.v6only, raddr.Addr()) {
		return errAFNoSupport
	}
	t := &tp.stack.tcp
	tp.remote = raddr
	if !tp.bound {
		// An unbound socket that dials a v4-mapped address is an IPv6
		// socket making an IPv4 connection (tcp_v6_connect ->
		// tcp_v4_connect).
		tp.mapped = mapped
		if err := tp.hashConnect(rt.Src); err != nil {
			tp.remote, tp.mapped = netip.AddrPort{}, false
			return err
		}
	} else {
		tp.mapped = tp.local.Addr().Is6() && raddr.Addr().Is4()
		if tp.local.Addr().IsUnspecified() {
			tp.local = netip.AddrPortFrom(rt.Src, tp.local.Port())
		}
		// __inet_hash_connect for a bound socket: check_established
		// without twp, so a TIME_WAIT socket with timestamps always
		// gives its tuple up.
		if tw := t.lookupEstab(tp.tuple()); tw != nil && tw != tp {
			tp.twReuse(tw, false)
		}
		t.mu.Lock()
		if !tp.hashEstabLocked() {
			t.mu.Unlock()
			return errAddrNotAvail
		}
		t.mu.Unlock()
	}
	tp.route = rt
	if !tp.twReused {
		tp.iss = t.secureSeq(tp.tuple())
	}
	tp.tsOffset = t.secureTSOff(tp.tuple())
	tp.setState(TCPSynSent)
	tp.sockState = ssConnecting
	tp.connectInit()
	tp.sendSyn()
	if tp.nonblock.Load() {
		return syscall.EINPROGRESS
	}
	return tp.waitConnect(ctx)
}

// connectFailed ends a connect that failed: its error (the socket's, else
// ECONNREFUSED), and the socket disconnected so that it may connect again.
// Caller owns tp, which is in CLOSE. Mirrors __inet_stream_connect's
// sock_error path (which defaults to ECONNABORTED; every way sockfs ends a
// handshake sets the error, so the default is not reached there).
func (tp *TCPSock) connectFailed() error {
	err := error(errConnRefused)
	if e := tp.sk.SockError(); e != 0 {
		err = e
	}
	tp.disconnect()
	return err
}

// hashConnect picks the local port of a connect from an unbound socket:
// walking ip_local_port_range from a random offset, it skips the ports a
// bind() holds and takes the first where the 4-tuple is free, or held by
// a TIME_WAIT socket that tcp_tw_reuse lets go (twReuse); a port other
// connects use is shared when the remote differs. No port: EADDRNOTAVAIL.
// Caller owns tp; takes the table lock. Mirrors __inet_hash_connect with
// __inet_check_established (without its odd/even split of the range).
func (tp *TCPSock) hashConnect(src netip.Addr) error {
	s := tp.stack
	t := &s.tcp
	low, high := s.net.Sysctls.IPLocalPortRange()
	n := uint64(high - low + 1)
	off := s.rand() % n
	for i := uint64(0); i < n; i++ {
		p := uint16(uint64(low) + (off+i)%n)
		tp.local = netip.AddrPortFrom(src, p)
		for try := 0; try < 2; try++ {
			t.mu.Lock()
			if !t.connectPortUsable(p) {
				t.mu.Unlock()
				break
			}
			if o := t.estab[tp.tuple()]; o != nil {
				t.mu.Unlock()
				if try > 0 || !tp.twReuse(o, true) {
					break
				}
				continue // the TIME_WAIT socket is gone: hash in its place
			}
			tp.bound, tp.connectBound = true, true
			t.bound[p] = append(t.bound[p], tp)
			tp.hashEstabLocked()
			t.mu.Unlock()
			return nil
		}
	}
	tp.local = netip.AddrPortFrom(src, 0)
	return errAddrNotAvail
}

// connectPortUsable reports whether connect may use port p: no socket
// bound it with bind() or listens on it (the bind bucket's fastreuse is
// -1, as inet_hash_connect leaves it). Caller holds t.mu.
func (t *tcpTable) connectPortUsable(p uint16) bool {
	for _, o := range t.bound[p] {
		if !o.connectBound {
			return false
		}
	}
	return true
}

// twReuse lets a connect take over the tuple of a TIME_WAIT socket tw, if
// the old connection had timestamps (so PAWS tells old segments apart)
// and either the connecting socket was bound by the user (Linux's
// check_established without twp) or the sysctl tcp_tw_reuse allows it
// (1, or 2 for loopback) and tw has been in TIME_WAIT longer than
// tcp_tw_reuse_delay: the old socket goes, the new one starts above its
// sequence space with its ts_recent. It reports whether it did. Caller
// owns tp; the table lock is not held (tw's lock is taken). Mirrors
// tcp_twsk_unique.
func (tp *TCPSock) twReuse(tw *TCPSock, hashConnect bool) bool {
	reuse := tp.stack.net.Sysctls.TCPTwReuse()
	if reuse == 2 && !tp.remote.Addr().IsLoopback() && !tp.local.Addr().IsLoopback() {
		reuse = 0
	}
	tw.lockSock()
	defer tw.releaseSock()
	if tw.state != TCPTimeWait || tw.tsRecentStamp == 0 ||
		hashConnect && (reuse == 0 || time.Duration(tw.now()-tw.twEntry) <= tp.stack.net.Sysctls.TCPTwReuseDelay()) {
		return false
	}
	tp.iss = tw.sndNxt + 65535 + 2
	if tp.iss == 0 {
		tp.iss = 1
	}
	tp.tsRecent, tp.tsRecentStamp = tw.tsRecent, tw.tsRecentStamp
	tp.twReused = true
	tp.stack.mib.Inc(memctl.TcpExtTWRecycled) // __inet_check_established
	tw.tcpDone()
	tw.destroyIfOrphan()
	return true
}

// waitConnect sleeps until the handshake ends. Caller holds tp.mu.
func (tp *TCPSock) waitConnect(ctx context.Context) error {
	err := waitFor(ctx, tp.sk, tp.lockSock, tp.releaseSock, func() bool {
		return tp.state != TCPSynSent && tp.state != TCPSynRecv
	})
	if err != nil {
		return err // interrupted: the attempt goes on (ssConnecting)
	}
	if tp.state == TCPClose {
		return tp.connectFailed()
	}
	tp.sockState = ssConnected
	return nil
}

// Listen makes the socket a listener with the given accept backlog, capped
// by the sysctl somaxconn. Mirrors __sys_listen + inet_listen +
// inet_csk_listen_start.
func (tp *TCPSock) Listen(backlog int) error {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.released || (tp.state != TCPClose && tp.state != TCPListen) {
		return errInval
	}
	// __sys_listen: at most net.core.somaxconn (read at every listen).
	if somax := tp.stack.net.Sysctls.Somaxconn(); uint32(backlog) > uint32(somax) {
		backlog = somax
	}
	backlog = max(backlog, 0)
	tp.backlog = backlog
	if tp.state == TCPListen {
		return nil
	}
	if !tp.bound {
		if err := tp.bindLocked(netip.AddrPortFrom(netip.IPv4Unspecified(), 0)); err != nil {
			return err
		}
	}
	t := &tp.stack.tcp
	t.mu.Lock()
	for _, o := range t.listen[tp.local.Port()] {
		if bindConflict(o.local.Addr(), o.v6only, tp.local.Addr(), tp.v6only) {
			t.mu.Unlock()
			return errAddrInUse
		}
	}
	t.listen[tp.local.Port()] = append(t.listen[tp.local.Port()], tp)
	tp.listened = true
	tp.setInuse(true)
	t.mu.Unlock()
	tp.reqs = make(map[tcpTuple]*tcpRequest)
	tp.setState(TCPListen)
	return nil
}

// Accept returns the next established connection. It blocks unless the
// socket is non-blocking (EAGAIN); ctx cancels it (EINTR / EAGAIN). Takes
// the listener's lock. Mirrors inet_csk_accept.
func (tp *TCPSock) Accept(ctx context.Context) (*TCPSock, error) {
	tp.lockSock()
	defer tp.releaseSock()
	for {
		if tp.state != TCPListen {
			return nil, errInval
		}
		for i, c := range tp.acceptQ {
			c.lockSock()
			st := c.state
			c.releaseSock()
			if st == TCPSynRecv {
				continue
			}
			tp.acceptQ = append(tp.acceptQ[:i:i], tp.acceptQ[i+1:]...)
			c.lockSock()
			c.parent = nil
			c.sockState = ssConnected // inet_accept: newsock->state = SS_CONNECTED
			c.releaseSock()
			return c, nil
		}
		if tp.nonblock.Load() {
			return nil, errAgain
		}
		n := len(tp.acceptQ)
		if err := waitFor(ctx, tp.sk, tp.lockSock, tp.releaseSock, func() bool {
			return tp.state != TCPListen || len(tp.acceptQ) != n || tp.acceptReady()
		}); err != nil {
			return nil, err
		}
	}
}

// acceptReady reports whether a queued child finished its handshake.
func (tp *TCPSock) acceptReady() bool {
	for _, c := range tp.acceptQ {
		c.lockSock()
		st := c.state
		c.releaseSock()
		if st != TCPSynRecv {
			return true
		}
	}
	return false
}

// Send queues p for transmission, blocking while the send buffer is full
// (StreamWaitMemory) unless non-blocking; it returns the bytes queued, or
// the error if none was. ctx cancels a blocked send (EINTR, EAGAIN at the
// deadline). Takes the socket lock (released while sleeping). Mirrors
// tcp_sendmsg_locked.
func (tp *TCPSock) Send(ctx context.Context, p []byte) (int, error) {
	return tp.sendmsg(ctx, sendSrc{p: p}, true)
}

// SendNoPush is Send without its pushes: p is copied into the write queue,
// charged, and waited for exactly as Send does, but no segment goes to the
// device unless the call has to wait for space (tcp_sendmsg_locked pushes
// what is queued before sk_stream_wait_memory, and so does this). The last
// queued segment is marked PSH (tcp_mark_push). The caller sends the data
// with Push once it has answered whoever wrote it; until then, an ACK that
// opens the window or anything else that transmits sends it too.
//
// Deviation, for the file servers (fs.PushAfterReply): a FUSE WRITE or 9P
// Twrite is answered as soon as its data is queued, and pushed after.
// Linux's tcp_sendmsg pushes inline (tcp_push_one, forced_push, tcp_push)
// because handing a segment to a driver costs little there; on a TUN the
// device transmit is a write(2) in which the kernel runs its own TCP
// receive for the segment, and with the pushes inline the writer of a
// 1 MiB request waited for sixteen of them before it could send the next
// request, whose copy into the server can instead run beside them.
func (tp *TCPSock) SendNoPush(ctx context.Context, p []byte) (int, error) {
	return tp.sendmsg(ctx, sendSrc{p: p}, false)
}

// SendPages is Send for data already in pages, which the write queue's
// skbs reference instead of copying: n bytes starting at byte off of the
// run of pages (page i holds bytes i*skb.PageFragSize onwards, every page
// but the last full). Each skb fragment takes a page reference of its own
// (get_page); the caller keeps its references, and must not write to a
// page while anything else references it (Page.Refs). With push false it
// queues as SendNoPush does. Charging and waiting are Send's: the bytes
// are charged to truesize, sk_wmem_queued and forward_alloc as copied
// bytes would be, not the pages' size. Mirrors tcp_sendmsg_locked with
// MSG_SPLICE_PAGES (skb_splice_from_iter), as splice(2) and sendfile(2)
// reach it.
//
// The pages are the caller's and stay unchanged, so SKBFL_SHARED_FRAG's
// concern (a checksum over data the user may still change) does not
// arise: a frontend gives up a page it handed here (fs/fuse takes a fresh
// one for its next request).
func (tp *TCPSock) SendPages(ctx context.Context, pages []*skb.Page, off, n int, push bool) (int, error) {
	if off < 0 || n < 0 || off+n > len(pages)*skb.PageFragSize {
		return 0, errInval
	}
	return tp.sendmsg(ctx, sendSrc{pages: pages, off: off, n: n}, push)
}

// Push sends what the write queue holds, as far as the windows, Nagle and
// the congestion window allow: the tcp_push that ends tcp_sendmsg, for
// data SendNoPush queued.
func (tp *TCPSock) Push() {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.released || tp.state != TCPEstablished && tp.state != TCPCloseWait {
		return // a closing socket's FIN pushed the queue (tcp_send_fin)
	}
	tp.txBegin()
	defer tp.txEnd()
	tp.pushPendingFrames(tp.nonagle())
}

// sendSrc is what one sendmsg queues: bytes to copy into the socket's page
// fragment (p), or data already in pages, to be referenced from the write
// queue's skbs without a copy (pages, n bytes from byte off of the run of
// whole pages: tcp_sendmsg_locked's MSG_SPLICE_PAGES).
type sendSrc struct {
	p     []byte
	pages []*skb.Page
	off   int
	n     int
}

func (s sendSrc) len() int {
	if s.pages != nil {
		return s.n
	}
	return len(s.p)
}

// sendmsg is tcp_sendmsg_locked; with push false it only queues (SendNoPush).
func (tp *TCPSock) sendmsg(ctx context.Context, src sendSrc, push bool) (int, error) {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.released {
		return 0, errBadF
	}
	if tp.state == TCPSynSent || tp.state == TCPSynRecv {
		if tp.nonblock.Load() {
			return 0, errAgain
		}
		if err := tp.waitConnect(ctx); err != nil {
			return 0, err
		}
	}
	tp.rateCheckAppLimited() // tcp_sendmsg_locked: is sending application-limited?
	copied := 0
	nonblock := tp.nonblock.Load()
	sk := tp.sk
	// The skbs this call sends go to the device in one batch (xmitQueue,
	// Linux's xmit_more). It is flushed before every wait (waitForSpace)
	// and, deferred after releaseSock's defer, before the lock is
	// released.
	tp.txBegin()
	defer tp.txEnd()
	total := src.len()
	for copied < total {
		if sk.Err() != 0 {
			// sk_stream_error takes the error only if nothing was
			// copied; else it stays for the next call.
			return tp.sendResult(copied, errPipe, push)
		}
		if sk.ShutdownState()&memctl.SendShutdown != 0 || (tp.state != TCPEstablished && tp.state != TCPCloseWait) {
			// A socket never connected gets EPIPE too, as from
			// sk_stream_wait_connect (the live kernel's send() on a
			// fresh TCP socket: EPIPE; its recv(): ENOTCONN).
			return tp.sendResult(copied, errPipe, push)
		}
		sizeGoal := tp.sizeGoal(tp.sendMss())
		b := tp.writeQueue.PeekTail()
		room := 0
		if b != nil && cbGetFlags(b)&tcpFin == 0 {
			room = sizeGoal - b.Len()
			if b.NrFrags() >= skb.MaxFrags {
				room = 0
			}
		}
		if room <= 0 {
			if !sk.StreamMemoryFreeNow() {
				if err := tp.waitForSpace(ctx, nonblock, copied); err != nil {
					return tp.sendResult(copied, err, push)
				}
				continue
			}
			nb := tp.streamAllocSkb(tp.writeQueue.Empty() && tp.rtxQueue.Empty())
			if nb == nil {
				if err := tp.waitForSpace(ctx, nonblock, copied); err != nil {
					return tp.sendResult(copied, err, push)
				}
				continue
			}
			b = nb
			room = sizeGoal
		}
		var pg *skb.Page
		var free []byte
		var off, n int
		if src.pages != nil {
			// MSG_SPLICE_PAGES (skb_splice_from_iter): the next piece of
			// the caller's pages, up to its page's end, with a page
			// reference of the skb's own.
			at := src.off + copied
			pg, off = src.pages[at/skb.PageFragSize], at%skb.PageFragSize
			n = min(room, total-copied, skb.PageFragSize-off)
		} else {
			_, free = tp.pf.Refill()
			n = min(room, total-copied, len(free))
		}
		n = sk.TCPWmemSchedule(n)
		if n <= 0 {
			if err := tp.waitForSpace(ctx, nonblock, copied); err != nil {
				return tp.sendResult(copied, err, push)
			}
			continue
		}
		if copied == 0 {
			cbSetFlags(b, cbGetFlags(b)&^tcpPsh) // a new write: PSH goes to its end
		}
		if src.pages != nil {
			pg.Get()
		} else {
			copy(free, src.p[copied:copied+n])
			pg, off = tp.pf.Commit(n)
		}
		old := b.Len()
		if !b.AddFrag(pg, off, n) {
			pg.Put()
			continue
		}
		tp.writeQueue.Resized(old, old+n)
		b.AddTruesize(n)
		sk.WmemQueuedAdd(n)
		sk.MemCharge(n)
		cbSetEndSeq(b, cbGetEndSeq(b)+uint32(n))
		cbSetPcount(b, 0) // counted again when it is sent
		tp.writeSeq += uint32(n)
		tp.syncSeqs()
		copied += n
		if b.Len() < sizeGoal || copied == total || !push {
			continue
		}
		// A full skb: push everything if half a window went unpushed
		// (forced_push), else send it if it is the next to go
		// (tcp_push_one).
		if seqGT(tp.writeSeq, tp.pushedSeq+tp.maxWindow>>1) {
			cbSetFlags(b, cbGetFlags(b)|tcpPsh)
			tp.pushedSeq = tp.writeSeq
			tp.pushPendingFrames(naglePush)
		} else if b == tp.writeQueue.Peek() {
			tp.writeXmitOne(naglePush, 1)
		}
	}
	tp.endWrite(push)
	return copied, nil
}

// push marks the last queued segment PSH and sends what may go. Mirrors
// tcp_push with tcp_mark_push.
func (tp *TCPSock) push() {
	tp.markPush()
	tp.pushPendingFrames(tp.nonagle())
}

// markPush marks the last queued segment PSH. Mirrors tcp_mark_push.
func (tp *TCPSock) markPush() {
	if b := tp.writeQueue.PeekTail(); b != nil {
		cbSetFlags(b, cbGetFlags(b)|tcpPsh)
		tp.pushedSeq = tp.writeSeq
	}
}

// endWrite ends a write that queued data: tcp_push, or for SendNoPush
// only tcp_mark_push.
func (tp *TCPSock) endWrite(push bool) {
	if push {
		tp.push()
	} else {
		tp.markPush()
	}
}

func (tp *TCPSock) sendResult(copied int, err error, push bool) (int, error) {
	if copied > 0 {
		tp.endWrite(push)
		return copied, nil
	}
	if err == errPipe {
		// The wait ended on an error or a shutdown: the socket's own
		// error, if it has one, says which (a reset, a timeout).
		// Mirrors sk_stream_error.
		if e := tp.sk.SockError(); e != 0 {
			return 0, e
		}
	}
	return 0, err
}

// waitForSpace sets SOCK_NOSPACE, pushes what is queued and sleeps in
// sk_stream_wait_memory. Mirrors the wait_for_space path of tcp_sendmsg_locked.
func (tp *TCPSock) waitForSpace(ctx context.Context, nonblock bool, copied int) error {
	tp.sk.SetFlag(memctl.FlagNoSpace)
	tp.pushPendingFrames(tp.nonagle())
	depth := tp.txSuspend()
	defer tp.txResume(depth)
	return tp.sk.StreamWaitMemory(ctx, nonblock, (*ownerLocker)(tp))
}

// streamAllocSkb allocates and charges a new send skb and queues it at the
// tail of the write queue; nil when memory is refused (sndbuf moderated).
// Mirrors tcp_stream_alloc_skb + tcp_skb_entail.
func (tp *TCPSock) streamAllocSkb(force bool) *skb.SKB {
	b := skb.AllocFclone(maxTCPHeader())
	t := b.Truesize()
	if force {
		tp.sk.ForcedMemSchedule(t)
	} else if !tp.sk.WmemSchedule(t) {
		b.Free()
		tp.stack.net.TCP.EnterMemoryPressure()
		tp.sk.StreamModerateSndbuf()
		return nil
	}
	b.Reserve(maxTCPHeader())
	cbSetSeq(b, tp.writeSeq)
	cbSetEndSeq(b, tp.writeSeq)
	cbSetFlags(b, tcpAck)
	cbSetSacked(b, 0)
	tp.sk.SkbEntail(t)
	tp.writeQueue.PushBack(b)
	tp.slowStartAfterIdleCheck() // tcp_skb_entail
	return b
}

// slowStartAfterIdleCheck restarts the congestion window when nothing is in
// flight and the connection sent nothing for an RTO, if the live sysctl
// tcp_slow_start_after_idle says so. Mirrors
// tcp_slow_start_after_idle_check.
func (tp *TCPSock) slowStartAfterIdleCheck() {
	if !tp.stack.net.Sysctls.TCPSlowStartAfterIdle() || tp.packetsOut != 0 || tp.lsndtime == 0 {
		return
	}
	if delta := time.Duration(tp.now() - tp.lsndtime); delta > tp.rto {
		tp.cwndRestart(delta)
	}
}

// cwndRestart halves cwnd once per RTO of idleness, down to the initial
// window (RFC 5681 section 4.1), keeping ssthresh at the current one.
// Mirrors tcp_cwnd_restart.
func (tp *TCPSock) cwndRestart(delta time.Duration) {
	restart := min(uint32(tcpInitCwnd), tp.cwnd)
	tp.ssthresh = tp.currentSsthresh()
	cwnd := tp.cwnd
	for delta -= tp.rto; delta > 0 && cwnd > restart; delta -= tp.rto {
		cwnd >>= 1
	}
	tp.cwnd = max(cwnd, restart)
}

// Recv reads up to len(p) bytes of in-order data. It blocks until some data
// (or EOF, returned as 0, nil) is available unless non-blocking (EAGAIN);
// ctx cancels it (EINTR, EAGAIN at its deadline). Takes the socket lock.
// Mirrors tcp_recvmsg_locked with its tcp_rcv_space_adjust and
// tcp_cleanup_rbuf.
func (tp *TCPSock) Recv(ctx context.Context, p []byte) (int, error) {
	return tp.recvmsg(ctx, p, len(p), nil, nil)
}

// A RecvActor takes received data without a copy into a buffer of the
// caller's: RecvTo hands it slices of the receive queue's skbs, and it
// returns how many bytes, from the start, it took (wrote to a descriptor,
// say). Only what it took is consumed; the rest stays queued for the next
// read. The slices are valid only during the call. Mirrors the
// sk_read_actor_t of tcp_read_sock (skb_splice_bits is splice's).
type RecvActor interface {
	TakeRecv(data [][]byte, n int) (int, error)
}

// RecvTo is Recv with the data handed to a instead of copied into a
// buffer: it waits as Recv does (SO_RCVLOWAT, EOF as 0, nil, EAGAIN when
// non-blocking, ctx's EINTR), then calls a once, with the queued data up
// to limit bytes as at most cap(iov) slices (iov is the storage for them;
// a vector that runs out of room gives a shorter read). a runs with the
// socket lock held, as tcp_recvmsg's copy to the user runs with the
// socket owned: segments that arrive meanwhile wait in the backlog, and
// the bytes a took are consumed and their memory uncharged only after it
// returns, as tcp_read_sock's are. It returns the bytes taken and a's
// error. Mirrors tcp_recvmsg_locked (its waits) with tcp_read_sock's
// actor in place of the copy.
func (tp *TCPSock) RecvTo(ctx context.Context, limit int, iov [][]byte, a RecvActor) (int, error) {
	return tp.recvmsg(ctx, nil, limit, iov[:0], a)
}

// recvmsg reads up to limit bytes into p, or, if a is set, hands them to a
// as slices in iov (Recv, RecvTo).
func (tp *TCPSock) recvmsg(ctx context.Context, p []byte, limit int, iov [][]byte, a RecvActor) (int, error) {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.released {
		return 0, errBadF
	}
	if tp.state == TCPListen {
		return 0, errNotConn
	}
	copied := 0
	target := tp.recvTarget(limit) // SO_RCVLOWAT
	for {
		have := 0
		finHit := false
		if a == nil {
			for b := tp.rcvq.Peek(); b != nil && !finHit; b = tp.rcvq.Peek() {
				off := int(tp.copiedSeq - cbGetSeq(b))
				avail := b.Len() - off
				if avail > 0 {
					if copied == len(p) {
						break
					}
					n := b.CopyBits(off, p[copied:copied+min(avail, len(p)-copied)])
					copied += n
					tp.copiedSeq += uint32(n)
					if n < avail {
						break
					}
				}
				finHit = tp.eatRecvSkb(b)
			}
			have = copied
		} else {
			finHit = tp.eatFin()
			if !finHit {
				iov, have = tp.gatherRecv(iov[:0], limit)
			}
		}
		if have >= target || limit == 0 || finHit {
			break
		}
		if have > 0 {
			// Short of SO_RCVLOWAT: return what there is rather than
			// wait at an error, the end of the stream or when not
			// blocking (tcp_recvmsg_locked).
			if tp.nonblock.Load() || tp.sk.Err() != 0 || tp.state == TCPClose ||
				tp.sk.ShutdownState()&memctl.RcvShutdown != 0 {
				break
			}
		} else {
			if tp.finSeen && tp.rcvq.Empty() {
				return 0, nil
			}
			if e := tp.sk.SockError(); e != 0 {
				return 0, e
			}
			if tp.state == TCPClose || tp.sk.ShutdownState()&memctl.RcvShutdown != 0 {
				if tp.state == TCPClose && tp.iss == 0 && tp.rcvNxt == 0 {
					return 0, errNotConn
				}
				return 0, nil
			}
			if tp.nonblock.Load() {
				return 0, errAgain
			}
		}
		// Woken as tcp_data_ready wakes: SO_RCVLOWAT bytes unread (or
		// memory or the window running short), or the FIN.
		if err := waitFor(ctx, tp.sk, tp.lockSock, tp.releaseSock, func() bool {
			return tp.epollinReady(tp.rcvlowat) || tp.finSeen || tp.sk.Err() != 0 || tp.state == TCPClose ||
				tp.sk.ShutdownState()&memctl.RcvShutdown != 0
		}); err != nil {
			if have > 0 { // a signal or the timeout: what was read
				if a != nil {
					// The slices gathered before the wait may be
					// stale: with the lock released, the receive path
					// may have collapsed the queue (tcp_collapse).
					iov, _ = tp.gatherRecv(iov[:0], limit)
				}
				break
			}
			return 0, err
		}
	}
	var err error
	if a != nil {
		n := 0
		for _, v := range iov {
			n += len(v)
		}
		if n > 0 {
			copied, err = a.TakeRecv(iov, n)
			copied = min(max(copied, 0), n)
			tp.consumeRecv(copied)
		}
	}
	tp.rcvSpaceAdjust()
	tp.cleanupRbuf(copied)
	return copied, err
}

// eatRecvSkb frees b, the head of the receive queue, whose data the
// reader has taken; if it carries the FIN, the reader has reached the end
// of the stream: copied_seq passes the FIN and eatRecvSkb reports true.
// Mirrors tcp_eat_recv_skb with tcp_recvmsg_locked's found_fin_ok.
func (tp *TCPSock) eatRecvSkb(b *skb.SKB) (fin bool) {
	fin = cbGetFlags(b)&tcpFin != 0
	if fin {
		tp.copiedSeq++
	}
	tp.rcvq.Unlink(b)
	b.Free()
	return fin
}

// eatFin eats the head of the receive queue if all that is left of it is
// the FIN, and reports whether it did. Mirrors found_fin_ok reached with
// nothing to copy.
func (tp *TCPSock) eatFin() bool {
	b := tp.rcvq.Peek()
	if b == nil || cbGetFlags(b)&tcpFin == 0 || int(tp.copiedSeq-cbGetSeq(b)) < b.Len() {
		return false
	}
	return tp.eatRecvSkb(b)
}

// gatherRecv appends to iov the unread data of the receive queue, up to
// limit bytes and cap(iov) slices, and returns it with its length. It
// stops at the FIN.
func (tp *TCPSock) gatherRecv(iov [][]byte, limit int) ([][]byte, int) {
	n := 0
	for b := tp.rcvq.Peek(); b != nil && n < limit && len(iov) < cap(iov); b = b.Next() {
		off := max(int(int32(tp.copiedSeq-cbGetSeq(b))), 0)
		if off < b.Len() {
			var k int
			iov, k = b.AppendSlices(iov, off, limit-n)
			n += k
		}
		if cbGetFlags(b)&tcpFin != 0 {
			break
		}
	}
	return iov, n
}

// consumeRecv consumes the first n unread bytes of the receive queue (a
// RecvActor took them), freeing the skbs that are done, as the copy loop of
// tcp_recvmsg_locked does.
func (tp *TCPSock) consumeRecv(n int) {
	for b := tp.rcvq.Peek(); b != nil; b = tp.rcvq.Peek() {
		avail := b.Len() - int(tp.copiedSeq-cbGetSeq(b))
		if avail > n {
			tp.copiedSeq += uint32(n)
			return
		}
		tp.copiedSeq += uint32(max(avail, 0))
		n -= max(avail, 0)
		if tp.eatRecvSkb(b) || n == 0 {
			return
		}
	}
}

// cleanupRbuf sends an ACK after a read when one is due or the window can
// grow a lot. Mirrors __tcp_cleanup_rbuf.
func (tp *TCPSock) cleanupRbuf(copied int) {
	if tp.state == TCPClose || tp.state == TCPListen || tp.state == TCPSynSent {
		return
	}
	timeToAck := false
	if p := tp.ackPending; p&icskAckSched != 0 {
		// The once-per-two-segments ACK not sent on input; or this read
		// emptied the receive queue that held pushed data, and the
		// connection is not interactive (or two small pushes came).
		timeToAck = tp.rcvNxt-tp.rcvWup > uint32(tp.rcvMss) ||
			(copied > 0 && (p&icskAckPushed2 != 0 || (p&icskAckPushed != 0 && !tp.inPingpong())) &&
				tp.sk.RmemAlloc() == 0)
	}
	if copied > 0 && !timeToAck && tp.sk.ShutdownState()&memctl.RcvShutdown == 0 {
		now := tp.receiveWindow()
		if 2*now <= tp.windowClamp {
			if nw := tp.selectWindowRaw(); nw != 0 && nw >= 2*now {
				timeToAck = true
			}
		}
	}
	if timeToAck {
		tp.sendAck()
	}
	tp.sk.MemReclaim()
}

// Shutdown closes one or both directions: ShutWr sends FIN after the
// queued data. Takes the socket lock. Mirrors inet_shutdown + tcp_shutdown.
func (tp *TCPSock) Shutdown(how uint32) error {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.released {
		return errBadF
	}
	switch tp.state {
	case TCPClose, TCPListen, TCPSynSent:
		if tp.state == TCPListen && how&ShutRd != 0 {
			tp.closeListenerLocked(true)
			return nil
		}
		return errNotConn
	}
	tp.sk.Shutdown(how)
	if how&ShutWr != 0 {
		tp.closeStateAndFin()
	}
	return nil
}

// closeStateAndFin moves to the next state of a close and sends FIN when
// the state calls for it. Mirrors tcp_close_state + tcp_send_fin.
func (tp *TCPSock) closeStateAndFin() {
	switch tp.state {
	case TCPEstablished, TCPSynRecv:
		tp.setState(TCPFinWait1)
		tp.sendFin()
	case TCPCloseWait:
		tp.setState(TCPLastAck)
		tp.sendFin()
	case TCPSynSent:
		tp.tcpDone()
	}
}

// closeListenerLocked stops listening: pending requests are dropped and
// connections not yet accepted are reset. Mirrors inet_csk_listen_stop.
func (tp *TCPSock) closeListenerLocked(sendRst bool) {
	for k, r := range tp.reqs {
		if r.timer != nil {
			r.timer.Stop()
		}
		delete(tp.reqs, k)
	}
	q := tp.acceptQ
	tp.acceptQ = nil
	for _, c := range q {
		c.lockSock()
		c.parent = nil
		c.released = true
		if sendRst && c.state != TCPClose {
			c.sendActiveReset()
		}
		c.dead = true
		c.setOrphan(true)
		c.tcpDone()
		c.destroyLocked()
		c.releaseSock()
	}
	tp.setState(TCPClose)
}

// Close closes the socket: a listener stops; a connection with unread data
// is reset (TCPAbortOnClose); otherwise FIN is sent after the queued data
// and the socket lives on as an orphan until the close completes. Takes the
// socket lock; does not block. Mirrors tcp_close.
func (tp *TCPSock) Close() error { return tp.close(nil, 0) }

// CloseLinger is Close on a socket with SO_LINGER on and a positive
// timeout: once the FIN is queued it waits, up to timeout on the stack's
// clock or until ctx is done, for the connection to leave FIN_WAIT1,
// CLOSING and LAST_ACK, that is for the peer to acknowledge everything
// and the FIN (sk_stream_wait_close in __tcp_close). As close(2) does,
// it reports neither the timeout nor the interruption: the close goes on
// as an orphan's. Linger 0 is Abort.
func (tp *TCPSock) CloseLinger(ctx context.Context, timeout time.Duration) error {
	return tp.close(ctx, timeout)
}

// closeTimewaitLocked is the user's close (with a linger or a zero one)
// of a socket in TIME_WAIT: Linux's full socket is in TCP_CLOSE beside its
// timewait sock (tcp_time_wait ends with tcp_done), so __tcp_close goes
// straight to adjudge_to_death: unread data draws no RST and no
// TCPAbortOnClose, a zero linger no RST and no TCPAbortOnData,
// tcp_check_oom is not asked, and the timewait sock runs its course. The
// full socket goes (its memory with the receive queues' purge, which the
// caller has done); sockfs's TCPSock stays as the timewait sock.
func (tp *TCPSock) closeTimewaitLocked() {
	tp.dead = true
	tp.sk.SetFlag(memctl.FlagDead)
	tp.twUncount()
}

// close is tcp_close with the linger timeout of __tcp_close (0: none).
func (tp *TCPSock) close(ctx context.Context, linger time.Duration) error {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.released {
		return nil
	}
	tp.released = true
	if tp.state == TCPListen {
		tp.closeListenerLocked(true)
		tp.destroyLocked()
		return nil
	}
	tp.sk.Shutdown(ShutRdWr)
	unread := int(tp.rcvNxt - tp.copiedSeq)
	if tp.finSeen {
		unread--
	}
	tp.purgeRecvQueues()
	if tp.state == TCPClose {
		tp.destroyLocked()
		return nil
	}
	if tp.state == TCPTimeWait {
		tp.closeTimewaitLocked()
		return nil
	}
	mib := tp.stack.mib
	if unread > 0 {
		mib.Inc(memctl.TcpExtTCPAbortOnClose)
		tp.setState(TCPClose)
		tp.sendActiveReset()
		tp.tcpDone()
		tp.destroyLocked()
		return nil
	}
	tp.closeStateAndFin()
	if linger > 0 {
		tp.streamWaitClose(ctx, linger)
	}
	tp.dead = true
	tp.sk.SetFlag(memctl.FlagDead)
	if tp.state != TCPTimeWait {
		tp.setOrphan(true)
	} else {
		tp.twUncount() // a lingering close that ended in TIME_WAIT: the full socket goes
	}
	if tp.state == TCPFinWait2 {
		tp.finWait2Timer(false)
	}
	if tp.state != TCPClose && tp.state != TCPTimeWait && !tp.fw2tw && tp.checkOOM(0) { // tcp_close: tcp_check_oom(sk, 0)
		mib.Inc(memctl.TcpExtTCPAbortOnMemory)
		tp.setState(TCPClose)
		tp.sendActiveReset()
		tp.tcpDone()
	}
	if tp.state == TCPClose {
		tp.destroyLocked()
	}
	return nil
}

// streamWaitClose sleeps, the socket lock released, while the connection
// is in FIN_WAIT1, CLOSING or LAST_ACK, for at most timeout on the
// stack's clock and until ctx is done. Mirrors sk_stream_wait_close
// (sk_stream_closing); setState's wake-up (sk_state_change) ends it.
func (tp *TCPSock) streamWaitClose(ctx context.Context, timeout time.Duration) {
	if ctx == nil {
		ctx = context.Background()
	}
	clk := tp.stack.clock
	ctx, cancel := clock.ContextWithDeadline(ctx, clk, clk.Now().Add(timeout))
	defer cancel()
	waitFor(ctx, tp.sk, tp.lockSock, tp.releaseSock, func() bool {
		return tp.state != TCPFinWait1 && tp.state != TCPClosing && tp.state != TCPLastAck
	})
}

// WaitOutqEmpty sleeps until every byte written has been acknowledged
// (SIOCOUTQ, write_seq - snd_una, would read 0), the connection is not
// synchronized any more (closed, reset) or reports an error, for at most
// timeout on the stack's clock and until ctx is done (EINTR, EAGAIN at
// the timeout). It sleeps as a writer waiting for memory does
// (SOCK_NOSPACE set, so that tcp_check_space's wake-up comes as the acks
// free the queue). Not a Linux call (a Linux program polls SIOCOUTQ):
// fs uses it where a close that lingers cannot send its FIN yet (the
// FUSE FLUSH of a conversation's last open file). Takes the socket lock.
func (tp *TCPSock) WaitOutqEmpty(ctx context.Context, timeout time.Duration) error {
	clk := tp.stack.clock
	ctx, cancel := clock.ContextWithDeadline(ctx, clk, clk.Now().Add(timeout))
	defer cancel()
	tp.lockSock()
	defer tp.releaseSock()
	done := func() bool {
		switch tp.state {
		case TCPClose, TCPListen, TCPSynSent, TCPSynRecv:
			return true
		}
		return tp.writeSeq == tp.sndUna || tp.sk.Err() != 0
	}
	for !done() {
		tp.sk.SetFlag(memctl.FlagNoSpace)
		w := tp.sk.Wq.Prepare()
		if done() {
			tp.sk.Wq.Finish(w)
			break
		}
		tp.releaseSock()
		select {
		case <-w.C():
		case <-ctx.Done():
		}
		tp.sk.Wq.Finish(w)
		tp.lockSock()
		if ctx.Err() != nil && !done() {
			return ctxErr(ctx)
		}
	}
	return nil
}

// Abort resets the connection at once (SO_LINGER with a zero timeout):
// RST to the peer, queues freed. Takes the socket lock. Mirrors __tcp_close
// with linger 0 / tcp_disconnect (TCPAbortOnData, or TCPAbortOnClose with
// unread data).
func (tp *TCPSock) Abort() error {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.released {
		return nil
	}
	tp.released = true
	if tp.state == TCPListen {
		tp.closeListenerLocked(true)
		tp.destroyLocked()
		return nil
	}
	if tp.state == TCPTimeWait {
		tp.sk.Shutdown(ShutRdWr)
		tp.purgeRecvQueues()
		tp.closeTimewaitLocked()
		return nil
	}
	// __tcp_close: unread data is TCPAbortOnClose; otherwise the zero
	// linger disconnects, counted as TCPAbortOnData, and tcp_disconnect
	// resets the peer in tcp_need_reset's states, or in CLOSING/LAST_ACK
	// when data was never sent.
	unread := int(tp.rcvNxt - tp.copiedSeq)
	if tp.finSeen {
		unread--
	}
	mib := tp.stack.mib
	switch {
	case unread > 0 && tp.state != TCPClose && tp.state != TCPSynSent:
		mib.Inc(memctl.TcpExtTCPAbortOnClose)
		tp.sendActiveReset()
	case tp.state == TCPEstablished || tp.state == TCPCloseWait || tp.state == TCPFinWait1 ||
		tp.state == TCPFinWait2 || tp.state == TCPSynRecv ||
		(tp.sndNxt != tp.writeSeq && (tp.state == TCPClosing || tp.state == TCPLastAck)):
		mib.Inc(memctl.TcpExtTCPAbortOnData)
		tp.sendActiveReset()
	default:
		mib.Inc(memctl.TcpExtTCPAbortOnData)
	}
	tp.tcpDone()
	tp.destroyLocked()
	return nil
}

// Readiness reports what poll would. Mirrors tcp_poll.
func (tp *TCPSock) Readiness() Event {
	tp.lockSock()
	defer tp.releaseSock()
	var ev Event
	if tp.state == TCPListen {
		if tp.acceptReady() {
			ev |= EventIn
		}
		return ev
	}
	shut := tp.sk.ShutdownState()
	if shut == ShutRdWr || tp.state == TCPClose {
		ev |= EventHup
	}
	if shut&memctl.RcvShutdown != 0 || tp.finSeen {
		ev |= EventIn | EventRdHup
	}
	if tp.state != TCPSynSent && tp.state != TCPSynRecv {
		if tp.epollinReady(tp.rcvlowat) { // tcp_stream_is_readable
			ev |= EventIn
		}
		if shut&memctl.SendShutdown == 0 {
			if tp.sk.StreamIsWriteable(1) {
				ev |= EventOut
			} else {
				tp.sk.SetFlag(memctl.FlagNoSpace)
				if tp.sk.StreamIsWriteable(1) {
					ev |= EventOut
				}
			}
		} else {
			ev |= EventOut
		}
	}
	if tp.sk.Err() != 0 {
		ev |= EventErr
	}
	return ev
}

// TCPInfo is the connection's state for status files, named after Linux's
// struct tcp_info (tcpi_*). Durations are what Linux reports in
// microseconds; window and buffer values are in bytes.
type TCPInfo struct {
	State        TCPState
	CAState      uint8
	Retransmits  uint8
	Probes       uint8
	Backoff      uint8
	RTO          time.Duration
	ATO          time.Duration
	SndMSS       int
	RcvMSS       int
	PMTU         int // the path MTU the MSS is computed for (tcpi_pmtu)
	Unacked      uint32
	Sacked       uint32
	Lost         uint32
	Retrans      uint32
	RTT          time.Duration
	RTTVar       time.Duration
	SndSsthresh  uint32
	SndCwnd      uint32
	AdvMSS       int
	Reordering   uint32
	RcvRTT       time.Duration
	RcvSpace     int
	TotalRetrans uint32
	SndWnd       uint32
	RcvWnd       uint32
	RcvSsthresh  uint32
	WindowClamp  uint32
	SndWscale    uint8
	RcvWscale    uint8
	Qin          int // Recv-Q: rcv_nxt - copied_seq
	Qout         int // Send-Q: write_seq - snd_una
	// BytesAcked and BytesReceived are tcpi_bytes_acked and
	// tcpi_bytes_received: how far snd_una and rcv_nxt have advanced.
	BytesAcked, BytesReceived uint64
	Congestion                string
	// PacingRate and DeliveryRate are tcpi_pacing_rate (^0: unlimited)
	// and tcpi_delivery_rate, in bytes per second.
	PacingRate, DeliveryRate uint64
	// BBR is BBR's model (INET_DIAG_BBRINFO), when BBR is the algorithm.
	BBR *BBRInfo
	// MinRTT is tcpi_min_rtt, the windowed minimum RTT (tcp_min_rtt); 0
	// before the first sample.
	MinRTT time.Duration
	// ECN and ECNSeen are tcpi_options' TCPI_OPT_ECN (negotiated) and
	// TCPI_OPT_ECN_SEEN (an ECT or CE packet arrived).
	ECN, ECNSeen bool
	// DCTCP is DCTCP's state (INET_DIAG_DCTCPINFO), when DCTCP is the
	// algorithm.
	DCTCP *DCTCPInfo
	// Delivered and DeliveredCE are tcpi_delivered and tcpi_delivered_ce
	// (segments delivered, and of them those acked with ECE); Notsent is
	// tcpi_notsent_bytes (write_seq - snd_nxt); DataSegsOut is
	// tcpi_data_segs_out; AppLimited is tcpi_delivery_rate_app_limited.
	Delivered, DeliveredCE uint32
	Notsent                int
	DataSegsOut            uint32
	AppLimited             bool
}

// CAStateName names a tcp_ca_state as the kernel's enum does, without the
// TCP_CA_ prefix: Open, Disorder, CWR, Recovery, Loss.
func CAStateName(s uint8) string {
	switch s {
	case tcpCAOpen:
		return "Open"
	case tcpCADisorder:
		return "Disorder"
	case tcpCACWR:
		return "CWR"
	case tcpCARecovery:
		return "Recovery"
	case tcpCALoss:
		return "Loss"
	}
	return strconv.Itoa(int(s))
}

// Inq is SIOCINQ: the bytes a read would get now, the FIN left out;
// none for a listener or a freed socket. Mirrors tcp_inq.
func (tp *TCPSock) Inq() int {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.state == TCPListen || tp.destroyed {
		return 0
	}
	return tp.inqLocked()
}

// inqLocked is Inq's count with the socket held, whatever the state.
func (tp *TCPSock) inqLocked() int {
	qin := int(tp.rcvNxt - tp.copiedSeq)
	if tp.finSeen && qin > 0 {
		qin--
	}
	return qin
}

// Info returns tcp_info. Takes the socket lock. Mirrors tcp_get_info.
func (tp *TCPSock) Info() TCPInfo {
	tp.lockSock()
	defer tp.releaseSock()
	qin := tp.inqLocked()
	if tp.state == TCPListen {
		qin = len(tp.acceptQ)
	}
	qout := int(tp.writeSeq - tp.sndUna)
	if tp.destroyed {
		// Freed with its queues (the user closed it, or it was
		// aborted): nothing is queued. The sequence numbers that said
		// otherwise belong to a socket Linux no longer has.
		qin, qout = 0, 0
	}
	var minRTT time.Duration
	if m := tp.minRttUs(); m != tcpRackNoMinRtt {
		minRTT = time.Duration(m) * time.Microsecond
	}
	var bbr *BBRInfo
	if b, ok := tp.cc.(*bbrCC); ok {
		i := b.info(tp)
		bbr = &i
	}
	var dctcp *DCTCPInfo
	if d, ok := tp.cc.(*dctcpCC); ok {
		i := d.info(tp)
		dctcp = &i
	}
	return TCPInfo{
		PacingRate: tp.pacingRate(), DeliveryRate: tp.deliveryRate(), BBR: bbr, MinRTT: minRTT,
		State: tp.state, CAState: tp.caState, Retransmits: tp.retransmits, Probes: tp.probesOut,
		Backoff: tp.backoff, RTO: tp.rto, ATO: tp.ato, SndMSS: tp.mssCache, RcvMSS: tp.rcvMss, PMTU: tp.pmtuCookie,
		Unacked: tp.packetsOut, Sacked: tp.sackedOut, Lost: tp.lostOut, Retrans: tp.retransOut,
		RTT: time.Duration(tp.srttUs>>3) * time.Microsecond, RTTVar: time.Duration(tp.mdevUs>>2) * time.Microsecond,
		SndSsthresh: tp.ssthresh, SndCwnd: tp.cwnd, AdvMSS: tp.advmss, Reordering: tp.reordering,
		RcvRTT: time.Duration(tp.rcvRttUs>>3) * time.Microsecond, RcvSpace: tp.rcvqSpace,
		TotalRetrans: tp.totalRetrans, SndWnd: tp.sndWnd, RcvWnd: tp.rcvWnd, RcvSsthresh: tp.rcvSsthresh,
		WindowClamp: tp.windowClamp, SndWscale: tp.sndWscale, RcvWscale: tp.rcvWscale,
		Qin: qin, Qout: qout, Congestion: tp.cc.name(),
		BytesAcked: tp.bytesAcked, BytesReceived: tp.bytesReceived,
		ECN: tp.ecnOK(), ECNSeen: tp.ecnFlags&tcpECNSeen != 0, DCTCP: dctcp,
		Delivered: tp.delivered, DeliveredCE: tp.deliveredCE, Notsent: max(int(tp.writeSeq-tp.sndNxt), 0),
		DataSegsOut: tp.dataSegsOut, AppLimited: tp.rate.appLimited != 0,
	}
}

// SetTTL sets IP_TTL for the segments the socket sends; 0 restores the
// default (sysctl ip_default_ttl, 64). Accepted connections inherit a
// listener's. Mirrors do_ip_setsockopt(IP_TTL).
func (tp *TCPSock) SetTTL(ttl uint8) {
	tp.lockSock()
	tp.ttl = ttl
	tp.releaseSock()
}

// SetTOS sets IP_TOS for the segments the socket sends. Mirrors
// do_ip_setsockopt(IP_TOS) (without the ECN bits' special case).
func (tp *TCPSock) SetTOS(tos uint8) {
	tp.lockSock()
	tp.tos = tos
	tp.releaseSock()
}

// ipTTL is the TTL (IPv6: hop limit) to send with. Caller holds the
// socket. Mirrors ip_select_ttl and ip6_sk_dst_hoplimit.
func (tp *TCPSock) ipTTL() uint8 { return tp.ipTTLFor(tp.remote.Addr()) }

// ipTTLFor is ipTTL for a packet to dst: IP_TTL if set, else the default
// of dst's family.
func (tp *TCPSock) ipTTLFor(dst netip.Addr) uint8 {
	if tp.ttl != 0 {
		return tp.ttl
	}
	return tp.stack.defaultTTLFor(dst)
}

// SetNoDelay sets TCP_NODELAY and pushes what Nagle held. Mirrors
// __tcp_sock_set_nodelay.
func (tp *TCPSock) SetNoDelay(on bool) {
	tp.lockSock()
	defer tp.releaseSock()
	tp.nodelay = on
	if on {
		tp.pushPendingFrames(naglePush)
	}
}

// SetCork sets TCP_CORK; uncorking pushes. Mirrors __tcp_sock_set_cork.
func (tp *TCPSock) SetCork(on bool) {
	tp.lockSock()
	defer tp.releaseSock()
	tp.cork = on
	if !on {
		tp.pushPendingFrames(naglePush)
	}
}

// SetKeepAlive turns SO_KEEPALIVE on or off; idle, interval and count set
// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT when non-zero. Mirrors
// tcp_set_keepalive.
func (tp *TCPSock) SetKeepAlive(on bool, idle, intvl time.Duration, count int) {
	tp.lockSock()
	defer tp.releaseSock()
	tp.keepalive = on
	if idle > 0 {
		tp.kaTime = idle
	}
	if intvl > 0 {
		tp.kaIntvl = intvl
	}
	if count > 0 {
		tp.kaProbes = count
	}
	if on && (tp.state == TCPEstablished || tp.state == TCPCloseWait) {
		tp.resetKeepTimer(tp.keepaliveTime())
	} else if !on && tp.state != TCPTimeWait && tp.state != TCPFinWait2 {
		tp.keepTimer.Stop()
		tp.kaDeadline = 0
	}
}

// SetCongestion selects the congestion control ("cubic", "reno", "bbr"
// or "dctcp"; DCTCP on a connection without ECN becomes dctcp-reno), at any time, starting it at once on a connection (init): ENOENT for an unknown name, EPERM for one outside
// tcp_allowed_congestion_control unless privileged (CAP_NET_ADMIN). A
// connection keeps its cwnd and ssthresh. Mirrors TCP_CONGESTION
// (tcp_set_congestion_control with tcp_reinit_congestion_control).
func (tp *TCPSock) SetCongestion(name string, privileged bool) error {
	cc := newCongestionControl(name)
	if cc == nil || name == "newreno" {
		return syscall.ENOENT
	}
	if !privileged && !tp.stack.net.Sysctls.TCPCongestionAllowed(name) {
		return syscall.EPERM
	}
	tp.lockSock()
	defer tp.releaseSock()
	tp.setCC(cc, name)
	if tp.state != TCPClose && tp.state != TCPListen {
		tp.initCongestionControl()
	}
	return nil
}

// SetWindowClamp is TCP_WINDOW_CLAMP: the advertised window's bound, at
// least SOCK_MIN_RCVBUF/2; 0 (only on a closed socket) removes it. A
// smaller clamp lowers rcv_ssthresh at once, a larger one lets it grow to
// the current window. Mirrors tcp_set_window_clamp.
func (tp *TCPSock) SetWindowClamp(val int) error {
	tp.lockSock()
	defer tp.releaseSock()
	if val == 0 {
		if tp.state != TCPClose {
			return errInval
		}
		tp.windowClamp = 0
		return nil
	}
	old := tp.windowClamp
	clamp := uint32(max(tp.stack.net.Profile.SockMinRcvbuf()/2, val))
	if clamp == old {
		return nil
	}
	tp.windowClamp = clamp
	if clamp < old {
		tp.rcvSsthresh = min(tp.rcvSsthresh, clamp) // __tcp_adjust_rcv_ssthresh
	} else {
		tp.rcvSsthresh = max(min(tp.rcvWnd, clamp), tp.rcvSsthresh)
	}
	return nil
}

// SetUserTimeout is TCP_USER_TIMEOUT: how long transmitted data may stay
// unacknowledged (or zero-window probes unanswered) before the connection
// fails with ETIMEDOUT, instead of tcp_retries2; 0 restores the default.
// Negative: EINVAL. Mirrors tcp_sock_set_user_timeout.
func (tp *TCPSock) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return errInval
	}
	tp.lockSock()
	defer tp.releaseSock()
	tp.userTimeout = d
	return nil
}

// SetQuickAck is TCP_QUICKACK: on leaves the interactive (pingpong) mode,
// so ACKs go at once while quick ACKs remain, and sends a pending ACK now;
// off enters it, so ACKs are delayed. Mirrors __tcp_sock_set_quickack.
func (tp *TCPSock) SetQuickAck(on bool) {
	tp.lockSock()
	defer tp.releaseSock()
	if !on {
		tp.enterPingpong()
		return
	}
	tp.ackPingpong = 0 // inet_csk_exit_pingpong_mode
	if (tp.state == TCPEstablished || tp.state == TCPCloseWait) && tp.ackPending&icskAckSched != 0 {
		tp.ackPending |= icskAckPushed
		tp.sendAck() // tcp_cleanup_rbuf(sk, 1) finds the ACK due
	}
}

// SetKeepIdle, SetKeepIntvl and SetKeepCnt are TCP_KEEPIDLE (seconds,
// 1..32767), TCP_KEEPINTVL (likewise) and TCP_KEEPCNT (1..127); out of
// range: EINVAL. A new idle time re-arms a running keepalive timer for
// what is left of it. Mirrors tcp_sock_set_keepidle_locked,
// tcp_sock_set_keepintvl and tcp_sock_set_keepcnt.
func (tp *TCPSock) SetKeepIdle(d time.Duration) error {
	if d < time.Second || d > tcpMaxKeepIdle {
		return errInval
	}
	tp.lockSock()
	defer tp.releaseSock()
	tp.kaTime = d
	if tp.keepalive && tp.state != TCPClose && tp.state != TCPListen {
		left := max(d-time.Duration(tp.now()-tp.rcvTstamp), 0) // keepalive_time_elapsed
		tp.resetKeepTimer(left)
	}
	return nil
}

// SetKeepIntvl is TCP_KEEPINTVL; see SetKeepIdle.
func (tp *TCPSock) SetKeepIntvl(d time.Duration) error {
	if d < time.Second || d > tcpMaxKeepIdle {
		return errInval
	}
	tp.lockSock()
	defer tp.releaseSock()
	tp.kaIntvl = d
	return nil
}

// SetKeepCnt is TCP_KEEPCNT; see SetKeepIdle.
func (tp *TCPSock) SetKeepCnt(n int) error {
	if n < 1 || n > tcpMaxKeepCnt {
		return errInval
	}
	tp.lockSock()
	defer tp.releaseSock()
	tp.kaProbes = n
	return nil
}

// SetNotsentLowat sets TCP_NOTSENT_LOWAT (0: use the sysctl).
func (tp *TCPSock) SetNotsentLowat(v uint32) {
	tp.lockSock()
	defer tp.releaseSock()
	atomic.StoreUint32(&tp.notsentLowat, v)
	memctl.StreamWriteSpace(tp.sk)
}

// SetMaxSeg sets TCP_MAXSEG, the MSS a SYN or SYN-ACK advertises (and the
// send MSS's bound): 0 or TCP_MIN_MSS (88) to MAX_TCP_WINDOW (32767),
// else EINVAL. Only the handshake reads it. Mirrors the TCP_MAXSEG case of
// do_tcp_setsockopt.
func (tp *TCPSock) SetMaxSeg(mss int) error {
	if mss != 0 && (mss < tcpMinMss || mss > 32767) {
		return errInval
	}
	tp.lockSock()
	defer tp.releaseSock()
	tp.userMss = mss
	return nil
}

// SetRcvbuf is SO_RCVBUF (locks receive autotuning).
func (tp *TCPSock) SetRcvbuf(v int) error {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.sk.SetSockoptRcvbuf(int32(v), false, false)
}

// SetSndbuf is SO_SNDBUF (locks send autotuning).
func (tp *TCPSock) SetSndbuf(v int) error {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.sk.SetSockoptSndbuf(int32(v), false, false)
}

// DialTCP connects to raddr from laddr (the zero AddrPort: any address,
// ephemeral port). ctx bounds the handshake.
func (s *Stack) DialTCP(ctx context.Context, laddr, raddr netip.AddrPort) (*TCPConn, error) {
	tp := s.NewTCP()
	if laddr.IsValid() {
		if err := tp.Bind(laddr); err != nil {
			tp.Close()
			return nil, opError("dial", "tcp", net.TCPAddrFromAddrPort(laddr), net.TCPAddrFromAddrPort(raddr), err, false)
		}
	}
	if err := tp.Connect(ctx, raddr); err != nil {
		tp.Abort()
		return nil, opError("dial", "tcp", nil, net.TCPAddrFromAddrPort(raddr), err, ctx.Err() != nil)
	}
	return &TCPConn{tp: tp}, nil
}

// ListenTCP returns a listener bound to laddr.
func (s *Stack) ListenTCP(laddr netip.AddrPort, backlog int) (*TCPListener, error) {
	tp := s.NewTCP()
	if err := tp.Bind(laddr); err != nil {
		tp.Close()
		return nil, opError("listen", "tcp", nil, net.TCPAddrFromAddrPort(laddr), err, false)
	}
	if err := tp.Listen(backlog); err != nil {
		tp.Close()
		return nil, opError("listen", "tcp", nil, net.TCPAddrFromAddrPort(laddr), err, false)
	}
	return &TCPListener{tp: tp}, nil
}

// TCPConn is a TCP connection as a net.Conn. Safe for concurrent use.
type TCPConn struct {
	tp     *TCPSock
	rd, wd deadline
}

// Socket returns the underlying socket.
func (c *TCPConn) Socket() *TCPSock { return c.tp }

// Read implements net.Conn; io.EOF after the peer's FIN.
func (c *TCPConn) Read(p []byte) (int, error) {
	ctx, cancel := c.rd.context(c.tp.stack.clock)
	defer cancel()
	n, err := c.tp.Recv(ctx, p)
	if err != nil {
		return n, opError("read", "tcp", c.LocalAddr(), c.RemoteAddr(), err, ctx.Err() != nil)
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write implements net.Conn.
func (c *TCPConn) Write(p []byte) (int, error) {
	ctx, cancel := c.wd.context(c.tp.stack.clock)
	defer cancel()
	// send(2) may return a short count (a timeout or signal after some
	// bytes); net.Conn wants all of p or an error, so keep going.
	n := 0
	for n < len(p) {
		k, err := c.tp.Send(ctx, p[n:])
		n += k
		if err != nil {
			return n, opError("write", "tcp", c.LocalAddr(), c.RemoteAddr(), err, ctx.Err() != nil)
		}
	}
	return n, nil
}

// Close implements net.Conn (a graceful close).
func (c *TCPConn) Close() error { return c.tp.Close() }

// CloseWrite shuts down the sending side (FIN).
func (c *TCPConn) CloseWrite() error { return c.tp.Shutdown(ShutWr) }

// CloseRead shuts down the receiving side.
func (c *TCPConn) CloseRead() error { return c.tp.Shutdown(ShutRd) }

// LocalAddr implements net.Conn.
func (c *TCPConn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.tp.LocalAddr()) }

// RemoteAddr implements net.Conn.
func (c *TCPConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.tp.RemoteAddr()) }

// SetDeadline implements net.Conn.
func (c *TCPConn) SetDeadline(t time.Time) error { c.rd.set(t); c.wd.set(t); return nil }

// SetReadDeadline implements net.Conn.
func (c *TCPConn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline implements net.Conn.
func (c *TCPConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// SetNoDelay sets TCP_NODELAY.
func (c *TCPConn) SetNoDelay(on bool) error { c.tp.SetNoDelay(on); return nil }

// SetReadBuffer is SO_RCVBUF.
func (c *TCPConn) SetReadBuffer(n int) error { return c.tp.SetRcvbuf(n) }

// SetWriteBuffer is SO_SNDBUF.
func (c *TCPConn) SetWriteBuffer(n int) error { return c.tp.SetSndbuf(n) }

// SetKeepAlive turns keepalive on or off.
func (c *TCPConn) SetKeepAlive(on bool) error { c.tp.SetKeepAlive(on, 0, 0, 0); return nil }

// TCPListener is a listening socket as a net.Listener.
type TCPListener struct {
	tp *TCPSock
	dl deadline
}

// Socket returns the underlying socket.
func (l *TCPListener) Socket() *TCPSock { return l.tp }

// Accept implements net.Listener.
func (l *TCPListener) Accept() (net.Conn, error) { return l.AcceptTCP() }

// AcceptTCP accepts the next connection.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	ctx, cancel := l.dl.context(l.tp.stack.clock)
	defer cancel()
	c, err := l.tp.Accept(ctx)
	if err != nil {
		if err == errInval {
			err = errBadF
		}
		return nil, opError("accept", "tcp", l.Addr(), nil, err, ctx.Err() != nil)
	}
	return &TCPConn{tp: c}, nil
}

// SetDeadline sets the accept deadline.
func (l *TCPListener) SetDeadline(t time.Time) error { l.dl.set(t); return nil }

// Close implements net.Listener.
func (l *TCPListener) Close() error { return l.tp.Close() }

// Addr implements net.Listener.
func (l *TCPListener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.tp.LocalAddr()) }

var (
	_ net.Conn     = (*TCPConn)(nil)
	_ net.Listener = (*TCPListener)(nil)
)
