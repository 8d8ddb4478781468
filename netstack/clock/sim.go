package clock

import (
	"sync"
	"time"
)

// Sim is a simulated Clock: time stands still until the owner calls Advance,
// Step, RunFor or RunUntil, which run the due callbacks on the calling
// goroutine, in order, setting the clock to each deadline as it fires. A run
// is therefore a deterministic function of the calls made.
//
// Reset and Stop may be called from any goroutine; the driving methods
// (Advance, Step, RunFor, RunUntil) serialise with each other, so callbacks
// never run concurrently even if several goroutines drive the clock, and must
// not be called from inside a callback (they would deadlock).
type Sim struct {
	h    heap
	fire sync.Mutex // held while driving: one callback at a time
}

// NewSim returns a simulated clock at Epoch (Nanotime 0) with no timers.
func NewSim() *Sim {
	s := &Sim{}
	s.h.sim = true
	return s
}

// Now returns Epoch plus the simulated time elapsed.
func (s *Sim) Now() time.Time { return Epoch.Add(time.Duration(s.h.nanotime())) }

// Nanotime returns the simulated nanoseconds elapsed since NewSim.
func (s *Sim) Nanotime() int64 { return s.h.nanotime() }

// NewTimer returns an unarmed timer that runs f when simulated time reaches
// its deadline.
func (s *Sim) NewTimer(f func()) *Timer { return s.h.newTimer(f) }

// AfterFunc returns a timer armed to run f after d of simulated time.
func (s *Sim) AfterFunc(d time.Duration, f func()) *Timer {
	t := s.h.newTimer(f)
	t.Reset(d)
	return t
}

// Pending returns the number of armed timers.
func (s *Sim) Pending() int { return s.h.pending() }

// Next returns the earliest deadline armed, in Nanotime's units, and
// whether any is.
func (s *Sim) Next() (int64, bool) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.h.next()
}

// Advance moves simulated time forward by d, running every timer due up to
// the new time in deadline order and setting the clock to each deadline as
// it fires; timers armed by callbacks for times within the window fire too.
// Then the clock reads old now + d. Advance(0) runs what is due now (the
// timers armed with Reset(0)). d < 0 is treated as 0.
func (s *Sim) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.fire.Lock()
	defer s.fire.Unlock()
	target := s.h.nanotime() + int64(d)
	s.runUntil(target)
	s.h.mu.Lock()
	if s.h.simNow.Load() < target {
		s.h.simNow.Store(target)
	}
	s.h.mu.Unlock()
}

// Step jumps to the earliest deadline and runs every timer due at that
// instant (including ones callbacks arm for that same instant). It returns
// false, changing nothing, if no timer is armed.
func (s *Sim) Step() bool {
	s.fire.Lock()
	defer s.fire.Unlock()
	return s.step()
}

func (s *Sim) step() bool {
	s.h.mu.Lock()
	when, ok := s.h.next()
	if ok && when > s.h.simNow.Load() {
		s.h.simNow.Store(when)
	}
	now := s.h.simNow.Load()
	s.h.mu.Unlock()
	if ok {
		s.runUntil(now)
	}
	return ok
}

// runUntil fires timers with deadlines <= limit. The caller holds s.fire.
func (s *Sim) runUntil(limit int64) {
	h := &s.h
	for {
		h.mu.Lock()
		t := h.popDue(limit)
		if t == nil {
			h.mu.Unlock()
			return
		}
		if t.when > h.simNow.Load() {
			h.simNow.Store(t.when)
		}
		h.mu.Unlock()
		t.f()
	}
}

// RunFor is Advance(d), named for symmetry with RunUntil.
func (s *Sim) RunFor(d time.Duration) { s.Advance(d) }

// RunUntil steps from deadline to deadline until cond() holds or limit of
// simulated time has passed (the clock then reads start + limit), and
// returns cond(). cond is evaluated before the first step and after each
// instant's callbacks, on the calling goroutine.
func (s *Sim) RunUntil(cond func() bool, limit time.Duration) bool {
	s.fire.Lock()
	defer s.fire.Unlock()
	end := s.h.nanotime() + int64(limit)
	for !cond() {
		s.h.mu.Lock()
		when, ok := s.h.next()
		s.h.mu.Unlock()
		if !ok || when > end {
			s.h.mu.Lock()
			if s.h.simNow.Load() < end {
				s.h.simNow.Store(end)
			}
			s.h.mu.Unlock()
			return cond()
		}
		s.step()
	}
	return true
}

var (
	_ Clock = (*Real)(nil)
	_ Clock = (*Sim)(nil)
)
