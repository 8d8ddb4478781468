package clock

import (
	"sync"
	"time"
)

// Real is a Clock on the runtime's time: Now is time.Now and Nanotime is
// monotonic time since NewReal. One goroutine sleeps (on a single reused
// time.Timer) until the earliest deadline and runs the due callbacks one at
// a time; Close stops it.
type Real struct {
	h     heap
	done  chan struct{}
	exit  chan struct{}
	close sync.Once
}

// NewReal returns a running real clock with its timer goroutine.
func NewReal() *Real {
	r := &Real{
		done: make(chan struct{}),
		exit: make(chan struct{}),
	}
	r.h.start = time.Now()
	r.h.wake = make(chan struct{}, 1)
	go r.loop()
	return r
}

// Now returns time.Now().
func (r *Real) Now() time.Time { return time.Now() }

// Nanotime returns monotonic nanoseconds since NewReal.
func (r *Real) Nanotime() int64 { return r.h.nanotime() }

// NewTimer returns an unarmed timer that runs f on r's timer goroutine.
func (r *Real) NewTimer(f func()) *Timer { return r.h.newTimer(f) }

// AfterFunc returns a timer armed to run f after d.
func (r *Real) AfterFunc(d time.Duration, f func()) *Timer {
	t := r.h.newTimer(f)
	t.Reset(d)
	return t
}

// Pending returns the number of armed timers.
func (r *Real) Pending() int { return r.h.pending() }

// Close stops the timer goroutine and waits for it to exit (so for a
// callback that is running to return). Timers stay armed but never fire
// afterwards; Reset and Stop remain safe to call. Close must not be called
// from inside one of r's callbacks (it would wait for itself). It is
// idempotent.
func (r *Real) Close() {
	r.close.Do(func() { close(r.done) })
	<-r.exit
}

func (r *Real) loop() {
	defer close(r.exit)
	sleep := time.NewTimer(time.Hour)
	defer sleep.Stop()
	h := &r.h
	for {
		h.mu.Lock()
		var wait time.Duration = -1
		for {
			select {
			case <-r.done:
				h.mu.Unlock()
				return
			default:
			}
			now := h.nanotime()
			if t := h.popDue(now); t != nil {
				h.mu.Unlock()
				t.f()
				h.mu.Lock()
				continue
			}
			if when, ok := h.next(); ok {
				wait = time.Duration(when - now)
			}
			break
		}
		h.mu.Unlock()
		if wait >= 0 {
			sleep.Reset(wait)
		} else {
			sleep.Stop()
		}
		select {
		case <-sleep.C:
		case <-h.wake:
		case <-r.done:
			return
		}
	}
}
