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
