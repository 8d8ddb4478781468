package netstack

// An armed recv is a read that would wait, left with the socket instead
// of in a sleeping goroutine, and completed by whoever makes it possible:
// the receive path that queues its data, most of the time, which copies
// the data out and hands the result on without waking anyone. This is
// io_uring's treatment of a recv that would block (io_arm_poll_handler:
// the socket's wake-up retries the recv, io_poll_wake), with the retry run
// in the waker itself, the way in-kernel readers that replace
// sk_data_ready read the socket from it (strparser's strp_data_ready
// calling tcp_read_sock). fs/fuse answers a READ of a data file this way:
// a blocking read there costs a goroutine wake-up on another thread per
// request on this machine, where thread wake-ups are the dearest thing.

// armedRecv is the socket's one armed recv (done nil: none).
type armedRecv struct {
	p    []byte
	done func(n int, err error)
}

// ArmRecv arms a recv into p: it returns false, arming nothing, if a Recv
// would not wait now (data, the end of the stream or an error is there,
// or the socket is non-blocking) or a recv is armed already; the caller
// then reads with Recv. Otherwise done is called exactly once, unless
// DisarmRecv stops it first, with what Recv would have returned had it
// waited: (0, nil) at the end of the stream, the socket's error, and
// (0, nil) if the user closes the socket. done runs in the goroutine that
// made the read possible (the receive path, a timer, a call that closed
// or shut the socket down), once that goroutine has let go of the socket
// (recvDone), so it must not block. p must stay untouched until then.
// Takes the socket lock; does not block.
func (tp *TCPSock) ArmRecv(p []byte, done func(n int, err error)) bool {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.armed.done != nil || len(p) == 0 || tp.nonblock.Load() || tp.released ||
		tp.state == TCPListen || tp.recvWakeable() {
		return false
	}
	tp.armed = armedRecv{p: p, done: done}
	return true
}

// DisarmRecv removes the armed recv into p; false if none is armed into
// p (its done has been called, or is being called). Takes the socket
// lock.
func (tp *TCPSock) DisarmRecv(p []byte) bool {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.armed.done == nil || len(p) == 0 || len(tp.armed.p) == 0 || &tp.armed.p[0] != &p[0] {
		return false
	}
	tp.armed = armedRecv{}
	return true
}

// recvDone is a completed armed recv's result, kept until the goroutine
// that completed it lets go of the socket (bhUnlockSock, releaseSock):
// a done that wakes a thread (fs/fuse's reply wakes the reading process,
// which may write to the socket at once) must not have that thread find
// the socket locked and sleep again.
type recvDone struct {
	done func(n int, err error)
	n    int
	err  error
}

func (c recvDone) run() {
	if c.done != nil {
		c.done(c.n, c.err)
	}
}

// takeRecvDone returns and clears the pending recvDone. Caller holds the
// spinlock.
func (tp *TCPSock) takeRecvDone() recvDone {
	c := tp.recvDone
	if c.done != nil {
		tp.recvDone = recvDone{}
	}
	return c
}

// recvArmed completes the armed recv if it need not wait any more: the
// data is copied out here, and done is called once the spinlock is
// dropped (recvDone). Called where Linux calls sk_data_ready
// (tcp_data_ready), sk_state_change and sk_error_report, with the socket
// held (the spinlock with no user owning the socket, or the ownership). A
// user's close ends the recv as it ends a reader sleeping in Recv: with
// end of file.
func (tp *TCPSock) recvArmed() {
	a := tp.armed
	if a.done == nil || !tp.released && !tp.recvWakeable() {
		return
	}
	tp.armed = armedRecv{}
	c := recvDone{done: a.done}
	if !tp.released {
		c.n, c.err = tp.recvmsgLocked(nil, a.p, true)
	}
	tp.recvDone = c
}
