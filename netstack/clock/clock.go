package clock

import (
	"time"
)

// Epoch is the wall-clock time at which every Sim starts: Sim.Now returns
// Epoch plus the simulated time elapsed.
var Epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Clock is a source of time and timers. Real and Sim implement it; the stack
// takes one at construction and never calls time.Now or time.AfterFunc
// itself.
type Clock interface {
	// Now returns the current wall-clock time: time.Now() for Real, Epoch
	// plus the elapsed simulated time for Sim.
	Now() time.Time
	// Nanotime returns monotonic nanoseconds since the clock was created.
	// It is cheap (no lock) and is the unit of Timer.When.
	Nanotime() int64
	// NewTimer returns an unarmed timer that runs f each time it fires.
	// This is the only call that allocates; re-arm the timer with Reset.
	NewTimer(f func()) *Timer
	// AfterFunc is NewTimer(f) followed by Reset(d).
	AfterFunc(d time.Duration, f func()) *Timer
}

// Timer runs a fixed callback once per arming, on its clock's callback path
// (see the package comment for the contract). The zero Timer is not usable;
// get one from Clock.NewTimer or Clock.AfterFunc.
//
// All methods are safe to call from any goroutine, including from inside any
// timer callback of the same clock (its own included). They take the clock's
// heap lock briefly, never block otherwise and never allocate in steady state
// (the heap's slice grows only when more timers are armed at once than ever
// before).
type Timer struct {
	h    *heap
	f    func()
	when int64  // deadline in Nanotime units; meaningful only when idx >= 0
	seq  uint64 // arm order, to break deadline ties first-armed-first
	idx  int    // position in h.ts, -1 when unarmed
}

// Reset arms the timer to fire once after d, replacing any earlier arming
// (it is then ordered as if newly armed). d <= 0 means as soon as possible:
// the callback never runs synchronously inside Reset, but on the clock's
// callback path (a Sim runs it on the next Advance or Step, even Advance(0)).
// It reports whether the timer was armed before. Mirrors mod_timer.
func (t *Timer) Reset(d time.Duration) bool {
	if d < 0 {
		d = 0
	}
	return t.h.arm(t, d, false)
}

// ResetAt arms the timer to fire at the absolute deadline when, in Nanotime
// units; a deadline in the past means as soon as possible. It reports whether
// the timer was armed before. It saves a caller that computes deadlines
// itself from re-reading the clock (useful with Real, where time moves
// between the two reads).
func (t *Timer) ResetAt(when int64) bool {
	return t.h.arm(t, time.Duration(when), true)
}

// Stop disarms the timer and reports whether it was armed. If the callback
// has already been taken off the heap to run (or is running), Stop returns
// false and does not wait for it, as time.Timer.Stop. Mirrors del_timer.
func (t *Timer) Stop() bool {
	return t.h.disarm(t)
}

// Armed reports whether the timer is waiting to fire. Mirrors timer_pending.
func (t *Timer) Armed() bool {
	t.h.mu.Lock()
	a := t.idx >= 0
	t.h.mu.Unlock()
	return a
}

// When returns the deadline in Nanotime units, or 0 if the timer is
// unarmed. (A Sim timer armed at simulated time 0 also reports 0; use Armed
// to tell the two apart.)
func (t *Timer) When() int64 {
	t.h.mu.Lock()
	var w int64
	if t.idx >= 0 {
		w = t.when
	}
	t.h.mu.Unlock()
	return w
}
