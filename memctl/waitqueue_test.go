package memctl

import "testing"

func TestWaitQueuePollHooks(t *testing.T) {
	var q WaitQueue
	n1, n2 := 0, 0
	h1 := q.AddPoll(func() { n1++ })
	h2 := q.AddPoll(func() { n2++ })
	if !q.HasSleepers() {
		t.Fatal("a poll hook counts as a sleeper, so wakers do not skip it")
	}
	q.Wake()
	if n1 != 1 || n2 != 1 {
		t.Fatalf("hooks called %d, %d times", n1, n2)
	}
	q.RemovePoll(h1)
	q.RemovePoll(h1)
	q.Wake()
	if n1 != 1 || n2 != 2 {
		t.Fatalf("after removal: %d, %d", n1, n2)
	}
	q.RemovePoll(h2)
	if q.HasSleepers() {
		t.Fatal("no sleepers after removing every hook")
	}
	q.Wake()
	if n2 != 2 {
		t.Fatal("removed hook called")
	}
}

// Sleeping and being woken over and over allocates nothing: Waiters are
// recycled. (The wake comes from the same goroutine so that the count is
// exact; AllocsPerRun counts every goroutine's allocations anyway.)
func TestWaitQueueSleepWakeAllocs(t *testing.T) {
	var q WaitQueue
	allocs := testing.AllocsPerRun(1000, func() {
		w := q.Prepare()
		q.Wake()
		<-w.C()
		q.Finish(w)
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per sleep and wake-up", allocs)
	}
	if q.HasSleepers() {
		t.Fatal("sleepers left behind")
	}
}

// A wake-up that arrives after the waiter stopped listening (its context
// ended first) does not leak into the Waiter's next use.
func TestWaitQueueLateWakeNotCarriedOver(t *testing.T) {
	var q WaitQueue
	w := q.Prepare()
	q.Wake() // signalled, but the caller took the ctx.Done branch
	q.Finish(w)
	for i := 0; i < 100; i++ {
		w := q.Prepare()
		select {
		case <-w.C():
			t.Fatal("a stale wake-up was delivered to a new waiter")
		default:
		}
		q.Finish(w)
	}
}
