package memctl

import (
	"context"
	"syscall"
)

// Destructor is the skb destructor contract shared with package skb (an alias
// of the same unnamed interface type, so the two packages need not import
// each other): Free or Orphan calls SkbDestruct(truesize) once.
type Destructor = interface{ SkbDestruct(truesize int) }

// Buffer is what memctl needs of a packet buffer. *skb.SKB satisfies it.
type Buffer interface {
	Truesize() int
	SetDestructor(d Destructor)
}

// rfree is the sock_rfree destructor of a Sock. It is the Sock itself under
// another method set, so installing it allocates nothing.
type rfree Sock

// SkbDestruct un-charges a received skb. Mirrors sock_rfree.
func (r *rfree) SkbDestruct(truesize int) { (*Sock)(r).sockRfree(truesize) }

// wfree is the sock_wfree destructor of a Sock.
type wfree Sock

// SkbDestruct un-charges a sent skb. Mirrors sock_wfree.
func (w *wfree) SkbDestruct(truesize int) { (*Sock)(w).sockWfree(truesize) }

// SetOwnerR charges b to sk's receive side: rmem_alloc += T, forward_alloc
// -= T, and installs the sock_rfree destructor that undoes both when b is
// freed. No socket reference is taken: a socket purges its receive queue
// before it goes away. b must have no destructor (orphan it first). Mirrors
// skb_set_owner_r (include/net/sock.h). Caller holds the socket lock (or, for
// UDP-like protocols, the lock that protects forward_alloc); whoever frees b
// must hold the same lock, since sock_rfree un-charges forward_alloc.
func SetOwnerR(b Buffer, sk *Sock) {
	t := b.Truesize()
	b.SetDestructor((*rfree)(sk))
	sk.rmemAlloc.Add(int64(t))
	sk.MemCharge(t)
}

// sockRfree mirrors sock_rfree: rmem_alloc -= T; sk_mem_uncharge(T).
func (sk *Sock) sockRfree(truesize int) {
	sk.rmemAlloc.Add(-int64(truesize))
	sk.MemUncharge(truesize)
}

// SetOwnerW charges b to sk's send side: takes a socket reference (a sent
// skb can outlive its socket in a device queue), wmem_alloc += T, and
// installs the sock_wfree destructor. b must have no destructor. Mirrors
// skb_set_owner_w as the seed notes describe it (sock_hold + sock_put);
// deviation: Linux 6.x makes sk_wmem_alloc itself the reference, with the
// same effect. Lock-free; does not block.
func SetOwnerW(b Buffer, sk *Sock) {
	t := b.Truesize()
	sk.Hold()
	b.SetDestructor((*wfree)(sk))
	sk.wmemAlloc.Add(int64(t))
}

// WOwner returns the socket whose send side d (an skb's destructor, as
// SetOwnerW installs it) charges, or nil. The software GSO path uses it to
// charge the segments of a packet to its sender, as tcp_gso_segment moves
// the destructor to them.
func WOwner(d any) *Sock {
	if w, ok := d.(*wfree); ok {
		return (*Sock)(w)
	}
	return nil
}

// sockWfree mirrors sock_wfree: wmem_alloc -= T, then sk_write_space unless
// SOCK_USE_WRITE_QUEUE (TCP), then sock_put.
func (sk *Sock) sockWfree(truesize int) {
	sk.wmemAlloc.Add(-int64(truesize))
	if sk.flags.Load()&FlagUseWriteQueue == 0 && sk.WriteSpace != nil {
		sk.WriteSpace(sk)
	}
	sk.Put()
}

// QueueRcvSkb performs the accounting of the generic datagram receive path:
// it refuses b (ENOMEM, sk_drops++) when rmem_alloc >= rcvbuf, so a socket
// accepts skbs while rmem_alloc < rcvbuf and can go past rcvbuf by one; it
// refuses (ENOBUFS, sk_drops++) when the pool refuses receive memory;
// otherwise it charges b with SetOwnerR. The caller then queues b and wakes
// readers, or on error frees b. Mirrors __sock_queue_rcv_skb
// (net/core/sock.c) up to the enqueue. Caller holds the receive queue lock.
func QueueRcvSkb(sk *Sock, b Buffer) error {
	if sk.rmemAlloc.Load() >= sk.rcvbuf.Load() {
		sk.DropsInc()
		return syscall.ENOMEM
	}
	if !sk.RmemSchedule(b.Truesize()) {
		sk.DropsInc()
		return syscall.ENOBUFS
	}
	SetOwnerR(b, sk)
	return nil
}

// WaitForWmem is the waiting part of sock_alloc_send_pskb: it returns nil as
// soon as the socket may allocate a send skb (wmem_alloc - 1 < sndbuf; the
// size of the skb about to be allocated is not counted). A pending socket
// error is returned (and cleared, as sock_error does); SEND_SHUTDOWN gives
// EPIPE. With no room it sets SOCK_NOSPACE; nonblock gives EAGAIN,
// cancellation of ctx EINTR and an expired ctx deadline (SO_SNDTIMEO)
// EAGAIN. A blocked caller is woken by the write-space callback, which for
// datagram sockets fires only once half of sndbuf is free, and then
// re-checks. Mirrors sock_alloc_send_pskb and sock_wait_for_wmem
// (net/core/sock.c). Takes no socket lock; may block; ctx cancels it.
// Charges nothing.
func (sk *Sock) WaitForWmem(ctx context.Context, nonblock bool) error {
	for {
		if e := sk.SockError(); e != 0 {
			return e
		}
		if sk.shutdown.Load()&SendShutdown != 0 {
			return syscall.EPIPE
		}
		if sk.wmemAlloc.Load()-1 < sk.sndbuf.Load() {
			return nil
		}
		sk.SetFlag(FlagAsyncNoSpace | FlagNoSpace)
		if nonblock {
			return syscall.EAGAIN
		}
		if ctx.Err() != nil {
			return errFromCtx(ctx)
		}
		// sock_wait_for_wmem: sleep until raw wmem_alloc < sndbuf, shutdown,
		// error, or the end of ctx.
		sk.ClearFlag(FlagAsyncNoSpace)
		for {
			sk.SetFlag(FlagNoSpace)
			w := sk.Wq.Prepare()
			if sk.wmemAlloc.Load() < sk.sndbuf.Load() ||
				sk.shutdown.Load()&SendShutdown != 0 || sk.err.Load() != 0 {
				sk.Wq.Finish(w)
				break
			}
			select {
			case <-w.C():
				sk.Wq.Finish(w)
				continue
			case <-ctx.Done():
				sk.Wq.Finish(w)
			}
			break
		}
	}
}

// AllocSendSkb waits for send room (WaitForWmem), allocates a buffer with
// alloc and charges it to sk with SetOwnerW. Mirrors sock_alloc_send_pskb.
// May block; ctx cancels it; nothing is allocated or charged on error.
func AllocSendSkb[B Buffer](ctx context.Context, sk *Sock, nonblock bool, alloc func() B) (B, error) {
	var zero B
	if err := sk.WaitForWmem(ctx, nonblock); err != nil {
		return zero, err
	}
	b := alloc()
	SetOwnerW(b, sk)
	return b, nil
}
