package skb

import "testing"

// A receive queue may hold tcp_rmem[2] (32 MiB) of payload in pages. Once
// they all came back (the reader drained the queue), filling it again
// takes every page from the cache: a bulk receiver whose queue swings
// between empty and full allocates nothing in steady state. With the cache
// bounded at 16 MiB, as all caches were, each refill allocated half its
// pages again (512 pages, 1024 allocations, per fill here).
func TestPageCacheRefillOfFullQueueAllocatesNothing(t *testing.T) {
	if debug {
		t.Skip("debug builds (-race, skbdebug) poison freed pages instead of pooling them")
	}
	const rmemMax = 32 << 20 // tcp_rmem[2]'s default
	fill := queueFill(rmemMax)
	drainCaches()
	fill()
	if a := testing.AllocsPerRun(3, fill); a != 0 {
		t.Fatalf("%v allocations per refill of a %d MiB queue's pages, want 0", a, rmemMax>>20)
	}
}

// queueFill returns a function that takes the pages of a receive queue of
// size bytes and gives them all back, as a reader draining it does.
func queueFill(size int) func() {
	pages := make([]*Page, size/PageFragSize)
	return func() {
		for i := range pages {
			pages[i] = NewPage()
		}
		for i, p := range pages {
			p.Put()
			pages[i] = nil
		}
	}
}
