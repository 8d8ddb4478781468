package memctl

import (
	"sync"
	"sync/atomic"
)

// WaitQueue is a wait queue in the manner of Linux's wait_queue_head_t for
// goroutines: a waiter registers, re-checks its condition, and then blocks on
// its Waiter's channel, which the next Wake signals. Because it is a channel,
// a waiter can select on it together with ctx.Done() or a timer, which is how
// blocking socket calls are cancelled.
//
// The usage pattern, which avoids lost wake-ups, is:
//
//	for !cond() {
//		w := q.Prepare()    // prepare_to_wait
//		if cond() {         // re-check after registering
//			q.Finish(w)
//			break
//		}
//		select {
//		case <-w.C():
//		case <-ctx.Done():
//		}
//		q.Finish(w)         // finish_wait
//	}
//
// The waker changes the state that cond reads and then calls Wake. Wake is
// cheap when nobody waits (one atomic load, like skwq_has_sleeper). Wake
// wakes every waiter (wake_up_all semantics) and unlinks it, as Linux's
// autoremove_wake_function does: waiters re-check their own conditions, so
// one queue can serve readers, writers and pollers of a socket.
//
// Nothing allocates in steady state: a Waiter (an entry with a one-slot
// channel, the wait_queue_entry of the sleeping task) comes from a pool and
// goes back to it in Finish, on the same goroutine, so a reader that sleeps
// and wakes once per packet costs no garbage.
//
// The zero value is ready to use. A WaitQueue must not be copied after first
// use. All methods are safe for concurrent use and never block for long (they
// take an internal mutex only around the list operations).
type WaitQueue struct {
	sleepers atomic.Int32 // registered waiters (Prepare without Finish), plus poll hooks
	mu       sync.Mutex
	waiters  *Waiter   // Prepared and not yet woken, a doubly linked list
	polls    *PollHook // poll subscriptions, a doubly linked list
}

// Waiter is one goroutine's registration on a WaitQueue, from Prepare to
// Finish. Mirrors struct wait_queue_entry.
type Waiter struct {
	c          chan struct{} // one slot: Wake's signal never blocks
	prev, next *Waiter
	linked     bool
}

// C returns the channel that receives the wake-up.
func (w *Waiter) C() <-chan struct{} { return w.c }

var waiterPool = sync.Pool{New: func() any { return &Waiter{c: make(chan struct{}, 1)} }}

// PollHook is a poll subscription: its function is called on every Wake
// until it is removed. It lets an event-driven poller (a FUSE POLL request,
// a 9P client waiting for readiness) be notified without a goroutine
// blocked per socket. Mirrors a poll_table entry on sk_wq.
type PollHook struct {
	fn         func()
	prev, next *PollHook
	q          *WaitQueue
}

// AddPoll registers fn to be called on every Wake, from the waker's
// goroutine, with no socket lock held by the queue (the waker may hold its
// own). fn must not block and must not call AddPoll or RemovePoll on this
// queue. Mirrors poll_wait.
func (q *WaitQueue) AddPoll(fn func()) *PollHook {
	h := &PollHook{fn: fn, q: q}
	q.mu.Lock()
	h.next = q.polls
	if q.polls != nil {
		q.polls.prev = h
	}
	q.polls = h
	q.mu.Unlock()
	q.sleepers.Add(1)
	return h
}

// RemovePoll unregisters h; removing twice is harmless.
func (q *WaitQueue) RemovePoll(h *PollHook) {
	q.mu.Lock()
	if h.q != q {
		q.mu.Unlock()
		return
	}
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		q.polls = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	}
	h.q, h.prev, h.next = nil, nil, nil
	q.mu.Unlock()
	q.sleepers.Add(-1)
}

// Prepare registers the caller as a waiter and returns its Waiter, whose
// channel the next Wake signals. The caller must re-check its condition
// after Prepare and call Finish exactly once when it stops waiting. Mirrors
// prepare_to_wait.
func (q *WaitQueue) Prepare() *Waiter {
	w := waiterPool.Get().(*Waiter)
	q.sleepers.Add(1)
	q.mu.Lock()
	w.next, w.linked = q.waiters, true
	if q.waiters != nil {
		q.waiters.prev = w
	}
	q.waiters = w
	q.mu.Unlock()
	return w
}

// Finish deregisters w (if no Wake has yet) and recycles it; w must not be
// used afterwards. Mirrors finish_wait.
func (q *WaitQueue) Finish(w *Waiter) {
	q.mu.Lock()
	if w.linked {
		q.unlink(w)
	}
	q.mu.Unlock()
	q.sleepers.Add(-1)
	select { // a wake-up that came after the caller stopped listening
	case <-w.c:
	default:
	}
	waiterPool.Put(w)
}

func (q *WaitQueue) unlink(w *Waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.waiters = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.prev, w.next, w.linked = nil, nil, false
}

// HasSleepers reports whether a waiter is registered. Mirrors
// skwq_has_sleeper (the atomic operations order it after the waker's state
// change, which is the barrier Linux needs there).
func (q *WaitQueue) HasSleepers() bool { return q.sleepers.Load() != 0 }

// Wake wakes every registered waiter and unlinks it. It does nothing, and
// allocates nothing, when nobody waits. Mirrors wake_up_interruptible_all.
func (q *WaitQueue) Wake() {
	if q.sleepers.Load() == 0 {
		return
	}
	q.mu.Lock()
	for w := q.waiters; w != nil; {
		next := w.next
		select {
		case w.c <- struct{}{}:
		default: // already signalled
		}
		q.unlink(w)
		w = next
	}
	for h := q.polls; h != nil; h = h.next {
		h.fn()
	}
	q.mu.Unlock()
}
