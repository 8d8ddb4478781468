package clock

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestSimOrder(t *testing.T) {
	s := NewSim()
	var got []int
	for i, d := range []time.Duration{30, 10, 20, 10, 0, 5} {
		s.AfterFunc(d*time.Millisecond, func() { got = append(got, i) })
	}
	if s.Pending() != 6 {
		t.Fatalf("Pending = %d, want 6", s.Pending())
	}
	s.Advance(100 * time.Millisecond)
	// Ties (the two 10 ms timers) fire in arm order: 1 before 3.
	if want := []int{4, 5, 1, 3, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if s.Nanotime() != int64(100*time.Millisecond) {
		t.Fatalf("Nanotime = %d", s.Nanotime())
	}
	if !s.Now().Equal(Epoch.Add(100 * time.Millisecond)) {
		t.Fatalf("Now = %v", s.Now())
	}
}

func TestSimNowAtEachDeadline(t *testing.T) {
	s := NewSim()
	var at []int64
	for _, d := range []time.Duration{7, 3, 5} {
		s.AfterFunc(d, func() { at = append(at, s.Nanotime()) })
	}
	s.Advance(10)
	if want := []int64{3, 5, 7}; !slices.Equal(at, want) {
		t.Fatalf("fired at %v, want %v", at, want)
	}
	if s.Nanotime() != 10 {
		t.Fatalf("Nanotime = %d, want 10", s.Nanotime())
	}
}

func TestSimResetReordersTie(t *testing.T) {
	s := NewSim()
	var got []string
	a := s.AfterFunc(10, func() { got = append(got, "a") })
	s.AfterFunc(10, func() { got = append(got, "b") })
	a.Reset(10) // re-armed: now after b
	s.Advance(10)
	if want := []string{"b", "a"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSimResetFromCallback(t *testing.T) {
	s := NewSim()
	n := 0
	var tm *Timer
	tm = s.NewTimer(func() {
		n++
		if n < 5 {
			if tm.Reset(10 * time.Millisecond) {
				t.Error("Reset inside own callback reported armed")
			}
		}
	})
	tm.Reset(10 * time.Millisecond)
	s.Advance(45 * time.Millisecond) // fires at 10, 20, 30, 40
	if n != 4 {
		t.Fatalf("fired %d times by 45ms, want 4", n)
	}
	s.Advance(time.Second)
	if n != 5 || tm.Armed() || s.Pending() != 0 {
		t.Fatalf("n=%d armed=%v pending=%d", n, tm.Armed(), s.Pending())
	}
}

func TestSimCallbackArmsWithinWindow(t *testing.T) {
	s := NewSim()
	var got []int64
	s.AfterFunc(10, func() {
		got = append(got, s.Nanotime())
		s.AfterFunc(5, func() { got = append(got, s.Nanotime()) })  // 15: inside
		s.AfterFunc(0, func() { got = append(got, s.Nanotime()) })  // 10: now
		s.AfterFunc(50, func() { got = append(got, s.Nanotime()) }) // 60: outside
	})
	s.Advance(20)
	if want := []int64{10, 10, 15}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s.Pending() != 1 {
		t.Fatalf("Pending = %d, want 1", s.Pending())
	}
}

func TestSimStopFromCallback(t *testing.T) {
	s := NewSim()
	fired := false
	b := s.AfterFunc(20, func() { fired = true })
	s.AfterFunc(10, func() {
		if !b.Stop() {
			t.Error("Stop of an armed timer reported false")
		}
	})
	s.Advance(time.Second)
	if fired {
		t.Fatal("stopped timer fired")
	}
	if b.Stop() {
		t.Fatal("second Stop reported armed")
	}
}

func TestSimResetZeroNotSynchronous(t *testing.T) {
	s := NewSim()
	fired := false
	tm := s.NewTimer(func() { fired = true })
	tm.Reset(0)
	if fired {
		t.Fatal("Reset(0) ran the callback synchronously")
	}
	if !tm.Armed() || tm.When() != 0 {
		t.Fatalf("Armed=%v When=%d", tm.Armed(), tm.When())
	}
	s.Advance(0)
	if !fired || s.Nanotime() != 0 {
		t.Fatalf("fired=%v now=%d", fired, s.Nanotime())
	}
}

func TestSimStep(t *testing.T) {
	s := NewSim()
	if s.Step() {
		t.Fatal("Step with nothing armed returned true")
	}
	var got []int64
	s.AfterFunc(5, func() { got = append(got, s.Nanotime()) })
	s.AfterFunc(5, func() { got = append(got, s.Nanotime()) })
	s.AfterFunc(9, func() { got = append(got, s.Nanotime()) })
	if !s.Step() || !slices.Equal(got, []int64{5, 5}) || s.Nanotime() != 5 {
		t.Fatalf("after first Step: got %v now %d", got, s.Nanotime())
	}
	if !s.Step() || !slices.Equal(got, []int64{5, 5, 9}) {
		t.Fatalf("after second Step: got %v", got)
	}
	if s.Step() {
		t.Fatal("Step after all fired returned true")
	}
}

func TestSimRunUntil(t *testing.T) {
	s := NewSim()
	n := 0
	var tm *Timer
	tm = s.AfterFunc(time.Millisecond, func() { n++; tm.Reset(time.Millisecond) })
	if !s.RunUntil(func() bool { return n == 7 }, time.Second) {
		t.Fatal("RunUntil returned false")
	}
	if s.Nanotime() != int64(7*time.Millisecond) {
		t.Fatalf("stopped at %d, want 7ms", s.Nanotime())
	}
	start := s.Nanotime()
	if s.RunUntil(func() bool { return n == 1000 }, 10*time.Millisecond) {
		t.Fatal("RunUntil met an impossible condition")
	}
	if s.Nanotime() != start+int64(10*time.Millisecond) || n != 17 {
		t.Fatalf("now=%d n=%d", s.Nanotime()-start, n)
	}
	tm.Stop()
	s.RunFor(time.Second)
	if n != 17 {
		t.Fatalf("n = %d after Stop", n)
	}
}

// TestSimDeterminism drives two simulations with the same seeded workload and
// compares the full firing trace.
func TestSimDeterminism(t *testing.T) {
	run := func(seed uint64) []int64 {
		s := NewSim()
		rng := rand.New(rand.NewPCG(seed, 1))
		var trace []int64
		timers := make([]*Timer, 50)
		for i := range timers {
			timers[i] = s.NewTimer(func() {
				trace = append(trace, int64(i), s.Nanotime())
				if rng.IntN(3) > 0 {
					timers[rng.IntN(len(timers))].Reset(time.Duration(rng.IntN(1000)))
				}
				if rng.IntN(4) == 0 {
					timers[rng.IntN(len(timers))].Stop()
				}
			})
			timers[i].Reset(time.Duration(rng.IntN(1000)))
		}
		s.Advance(100000)
		return trace
	}
	a, b := run(42), run(42)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different traces")
	}
	if len(a) < 100 {
		t.Fatalf("trace too short: %d", len(a))
	}
	for i := 3; i < len(a); i += 2 {
		if a[i] < a[i-2] {
			t.Fatalf("time went backwards at %d", i)
		}
	}
}

func TestHeapRandomized(t *testing.T) {
	s := NewSim()
	rng := rand.New(rand.NewPCG(7, 7))
	var fired []int64
	ts := make([]*Timer, 200)
	for i := range ts {
		ts[i] = s.NewTimer(func() { fired = append(fired, s.Nanotime()) })
	}
	want := 0
	for range 5000 {
		tm := ts[rng.IntN(len(ts))]
		if rng.IntN(3) == 0 {
			tm.Stop()
		} else {
			tm.Reset(time.Duration(1 + rng.IntN(10000)))
		}
	}
	for _, tm := range ts {
		if tm.Armed() {
			want++
		}
	}
	if s.Pending() != want {
		t.Fatalf("Pending %d, counted %d", s.Pending(), want)
	}
	s.Advance(20000)
	if len(fired) != want || !slices.IsSorted(fired) {
		t.Fatalf("fired %d (sorted %v), want %d", len(fired), slices.IsSorted(fired), want)
	}
}

func TestResetStopAllocs(t *testing.T) {
	s := NewSim()
	ts := make([]*Timer, 64)
	for i := range ts {
		ts[i] = s.NewTimer(func() {})
		ts[i].Reset(time.Duration(i))
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		tm := ts[i%len(ts)]
		tm.Reset(time.Duration(i % 97))
		tm.Stop()
		tm.Reset(time.Duration(i % 13))
		tm.ResetAt(int64(i % 31))
		i++
	})
	if allocs != 0 {
		t.Fatalf("Reset/Stop allocate %v per run", allocs)
	}
	r := NewReal()
	defer r.Close()
	rt := r.NewTimer(func() {})
	allocs = testing.AllocsPerRun(1000, func() {
		rt.Reset(time.Hour)
		rt.Stop()
	})
	if allocs != 0 {
		t.Fatalf("Real Reset/Stop allocate %v per run", allocs)
	}
}

// TestStopFromOtherGoroutine races Reset/Stop from several goroutines against
// a Sim being advanced and a Real firing, for the race detector.
func TestStopFromOtherGoroutine(t *testing.T) {
	for _, name := range []string{"sim", "real"} {
		t.Run(name, func(t *testing.T) {
			var c Clock
			var drive func()
			var done func()
			switch name {
			case "sim":
				s := NewSim()
				c, drive, done = s, func() { s.Advance(time.Microsecond) }, func() {}
			default:
				r := NewReal()
				c, drive, done = r, func() { time.Sleep(10 * time.Microsecond) }, r.Close
			}
			defer done()
			var mu sync.Mutex
			count := 0 // guarded by mu
			var inCallback sync.Mutex
			ts := make([]*Timer, 16)
			for i := range ts {
				ts[i] = c.NewTimer(func() {
					if !inCallback.TryLock() {
						t.Error("callbacks ran concurrently")
						return
					}
					mu.Lock()
					count++
					mu.Unlock()
					ts[(i+1)%len(ts)].Reset(time.Duration(i) * 100) // from a callback
					inCallback.Unlock()
				})
			}
			for i, tm := range ts {
				tm.Reset(time.Duration(i) * 100)
			}
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 0))
					for range 3000 {
						tm := ts[rng.IntN(len(ts))]
						if rng.IntN(2) == 0 {
							tm.Stop()
						} else {
							tm.Reset(time.Duration(rng.IntN(2000)))
						}
						_ = tm.Armed()
						_ = tm.When()
					}
				}()
			}
			for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
				drive() // time-bounded: on one CPU a busy Real clock delays sleepers
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if count == 0 {
				t.Fatal("no callback ran")
			}
		})
	}
}

func TestRealFires(t *testing.T) {
	r := NewReal()
	defer r.Close()
	got := make(chan int, 3)
	start := time.Now() // before the 30 ms timer is armed: it may not fire sooner
	// Armed out of order; must fire in deadline order.
	r.AfterFunc(30*time.Millisecond, func() { got <- 3 })
	r.AfterFunc(10*time.Millisecond, func() { got <- 1 })
	r.AfterFunc(20*time.Millisecond, func() { got <- 2 })
	for want := 1; want <= 3; want++ {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("fired %d, want %d", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timer %d did not fire within 5s", want)
		}
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("fired after %v, before the 30ms deadline", el)
	}
	if r.Pending() != 0 {
		t.Fatalf("Pending = %d", r.Pending())
	}
}

func TestRealEarlierTimerWakes(t *testing.T) {
	r := NewReal()
	defer r.Close()
	r.AfterFunc(time.Hour, func() {})
	got := make(chan struct{})
	r.AfterFunc(time.Millisecond, func() { close(got) }) // must interrupt the hour-long sleep
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("earlier timer did not wake the sleeping goroutine")
	}
}

func TestRealResetZeroAndStop(t *testing.T) {
	r := NewReal()
	defer r.Close()
	got := make(chan struct{}, 1)
	tm := r.NewTimer(func() { got <- struct{}{} })
	tm.Reset(0)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("Reset(0) did not fire")
	}
	tm.Reset(50 * time.Millisecond)
	if !tm.Stop() {
		t.Fatal("Stop of armed timer returned false")
	}
	select {
	case <-got:
		t.Fatal("stopped timer fired")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRealClose(t *testing.T) {
	r := NewReal()
	fired := make(chan struct{}, 1)
	tm := r.AfterFunc(20*time.Millisecond, func() { fired <- struct{}{} })
	r.Close()
	r.Close() // idempotent
	tm.Reset(time.Millisecond)
	select {
	case <-fired:
		t.Fatal("timer fired after Close")
	case <-time.After(60 * time.Millisecond):
	}
}

func TestContextWithDeadlineSim(t *testing.T) {
	s := NewSim()
	d := s.Now().Add(time.Second)
	ctx, cancel := ContextWithDeadline(context.Background(), s, d)
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || !dl.Equal(d) {
		t.Fatalf("Deadline = %v %v", dl, ok)
	}
	s.Advance(999 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("cancelled early: %v", ctx.Err())
	}
	s.Advance(time.Millisecond)
	select {
	case <-ctx.Done():
	default:
		t.Fatal("not cancelled at the deadline")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", ctx.Err())
	}
}

func TestContextWithDeadlineCancel(t *testing.T) {
	s := NewSim()
	ctx, cancel := ContextWithDeadline(context.Background(), s, s.Now().Add(time.Second))
	cancel()
	if ctx.Err() != context.Canceled {
		t.Fatalf("Err = %v, want Canceled", ctx.Err())
	}
	if s.Pending() != 0 {
		t.Fatalf("timer left armed after cancel: %d", s.Pending())
	}
	// Parent cancellation stops the timer too (asynchronously).
	parent, pcancel := context.WithCancel(context.Background())
	ctx, cancel = ContextWithDeadline(parent, s, s.Now().Add(time.Second))
	defer cancel()
	pcancel()
	<-ctx.Done()
	if ctx.Err() != context.Canceled {
		t.Fatalf("Err = %v, want Canceled", ctx.Err())
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Pending() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.Pending() != 0 {
		t.Fatal("timer left armed after parent cancel")
	}
	// A deadline in the past expires at once.
	ctx, cancel = ContextWithDeadline(context.Background(), s, s.Now().Add(-time.Second))
	defer cancel()
	if ctx.Err() != context.DeadlineExceeded {
		t.Fatalf("past deadline: Err = %v", ctx.Err())
	}
}

func TestContextWithDeadlineReal(t *testing.T) {
	r := NewReal()
	defer r.Close()
	ctx, cancel := ContextWithDeadline(context.Background(), r, time.Now().Add(10*time.Millisecond))
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("real deadline did not expire")
	}
	if ctx.Err() != context.DeadlineExceeded {
		t.Fatalf("Err = %v", ctx.Err())
	}
}
