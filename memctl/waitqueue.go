package memctl

import (
	"sync"
	"sync/atomic"
)

// WaitQueue is a wait queue in the manner of Linux's wait_queue_head_t for
// goroutines: a waiter registers, re-checks its condition, and then blocks on
// a channel that the next Wake closes. Because it is a channel, a waiter can
// select on it together with ctx.Done() or a timer, which is how blocking
// socket calls are cancelled.
//
// The usage pattern, which avoids lost wake-ups, is:
//
//	for !cond() {
//		ch := q.Prepare()   // prepare_to_wait
//		if cond() {         // re-check after registering
//			q.Finish()
//			break
//		}
//		select {
//		case <-ch:
//		case <-ctx.Done():
//		}
//		q.Finish()          // finish_wait
//	}
//
// The waker changes the state that cond reads and then calls Wake. Wake is
// cheap and allocation-free when nobody waits (one atomic load, like
// skwq_has_sleeper); a channel is allocated only when the first waiter of a
// generation registers. Wake wakes every waiter (wake_up_all semantics):
// waiters re-check their own conditions, so one queue can serve readers,
// writers and pollers of a socket.
//
// The zero value is ready to use. A WaitQueue must not be copied after first
// use. All methods are safe for concurrent use and never block for long (they
// take an internal mutex only around the channel swap).
type WaitQueue struct {
	sleepers atomic.Int32 // registered waiters (Prepare without Finish), plus poll hooks
	mu       sync.Mutex
	ch       chan struct{} // closed by the next Wake; nil when none allocated
	polls    *PollHook     // poll subscriptions, a doubly linked list
}

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

// Prepare registers the caller as a waiter and returns the channel the next
// Wake will close. The caller must re-check its condition after Prepare and
// call Finish exactly once when it stops waiting. Mirrors prepare_to_wait.
func (q *WaitQueue) Prepare() <-chan struct{} {
	q.sleepers.Add(1)
	q.mu.Lock()
	if q.ch == nil {
		q.ch = make(chan struct{})
	}
	ch := q.ch
	q.mu.Unlock()
	return ch
}

// Finish deregisters a waiter registered by Prepare. Mirrors finish_wait.
func (q *WaitQueue) Finish() { q.sleepers.Add(-1) }

// HasSleepers reports whether a waiter is registered. Mirrors
// skwq_has_sleeper (the atomic operations order it after the waker's state
// change, which is the barrier Linux needs there).
func (q *WaitQueue) HasSleepers() bool { return q.sleepers.Load() != 0 }

// Wake wakes every registered waiter. It does nothing, and allocates nothing,
// when nobody waits. Mirrors wake_up_interruptible_all.
func (q *WaitQueue) Wake() {
	if q.sleepers.Load() == 0 {
		return
	}
	q.mu.Lock()
	if q.ch != nil {
		close(q.ch)
		q.ch = nil
	}
	for h := q.polls; h != nil; h = h.next {
		h.fn()
	}
	q.mu.Unlock()
}
