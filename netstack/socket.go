package netstack

import (
	"context"
	"errors"
	"syscall"

	"sockfs/memctl"
)

// Event is a readiness mask, with poll(2)'s bits.
type Event uint32

// Readiness bits, as in poll(2).
const (
	EventIn    Event = 0x001  // EPOLLIN: data (or EOF, or a queued connection) to read
	EventOut   Event = 0x004  // EPOLLOUT: room to write
	EventErr   Event = 0x008  // EPOLLERR: a pending error
	EventHup   Event = 0x010  // EPOLLHUP: both directions shut down
	EventRdHup Event = 0x2000 // EPOLLRDHUP: the peer closed its sending side
)

// waitFor blocks until cond (evaluated with the socket's lock held by the
// caller's lock/unlock pair) is true, the context ends, or the socket's
// wait queue is woken and cond holds. It is the one blocking primitive of the
// socket layer: readers, writers and listeners all sleep here.
//
// The caller holds lock on entry and on return. A cancelled ctx returns EINTR
// (FUSE INTERRUPT and 9P Tflush cancel contexts); an expired deadline
// returns EAGAIN, as SO_RCVTIMEO does. Mirrors sk_wait_event.
func waitFor(ctx context.Context, sk *memctl.Sock, lock, unlock func(), cond func() bool) error {
	for !cond() {
		w := sk.Wq.Prepare()
		if cond() {
			sk.Wq.Finish(w)
			return nil
		}
		unlock()
		select {
		case <-w.C():
			sk.Wq.Finish(w)
			lock()
		case <-ctx.Done():
			sk.Wq.Finish(w)
			lock()
			return ctxErr(ctx)
		}
	}
	return nil
}

// ctxErr maps the end of a context to the errno a blocking call returns.
func ctxErr(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return syscall.EAGAIN
	}
	return syscall.EINTR
}
