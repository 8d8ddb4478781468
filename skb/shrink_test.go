package skb

import (
	"runtime"
	"testing"
	"time"
)

// The shrinker's rule on a cache of its own (it runs under -race too: no
// skb is involved): what no get reached between two shrinks goes, what the
// working set cycled through stays.
func TestObjCacheShrinkKeepsTheWorkingSet(t *testing.T) {
	c := objCache[int]{max: 100}
	objs := make([]*int, 10)
	for i := range objs {
		objs[i] = new(int)
		c.put(objs[i])
	}
	if kept := c.shrink(); kept != 10 {
		t.Fatalf("first shrink kept %d, want all 10: they were put in this interval", kept)
	}
	// Four go out and come back; six are never reached.
	var cycled []*int
	for range 4 {
		cycled = append(cycled, c.get())
	}
	for _, x := range cycled {
		c.put(x)
	}
	if kept := c.shrink(); kept != 4 {
		t.Fatalf("second shrink kept %d, want the 4 the working set used", kept)
	}
	for range 4 {
		x := c.get()
		found := false
		for _, y := range cycled {
			found = found || x == y
		}
		if !found {
			t.Fatal("the shrink kept an idle object and dropped one of the working set")
		}
	}
	if c.get() != nil {
		t.Fatal("cache not empty after taking the kept objects")
	}
	for _, x := range cycled {
		c.put(x)
	}
	c.shrink()
	if kept := c.shrink(); kept != 0 {
		t.Fatalf("after an idle interval %d objects kept, want 0", kept)
	}
}

// setShrinkInterval sets ShrinkInterval and moves a running timer to it.
func setShrinkInterval(d time.Duration) {
	shrinker.mu.Lock()
	ShrinkInterval = d
	if shrinker.armed.Load() && shrinker.timer != nil {
		shrinker.timer.Reset(d)
	}
	shrinker.mu.Unlock()
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A process whose receive queues once held 32 MiB keeps those pages while
// a transfer cycles through them (refilling allocates nothing, even across
// a shrink), and gives them to the collector once they sat idle for an
// interval: the Go heap falls by their size. Without the shrinker it kept
// them (up to pageCacheLimit) for the life of the process.
func TestCacheShrinkerFreesIdlePages(t *testing.T) {
	if debug {
		t.Skip("debug builds (-race, skbdebug) poison freed pages instead of pooling them")
	}
	const queue = 32 << 20
	fill := queueFill(queue)
	drainCaches()
	fill()
	if a := testing.AllocsPerRun(3, func() { fill(); ShrinkCaches() }); a != 0 {
		t.Fatalf("%v allocations per refill with a shrink between refills, want 0: the shrinker took the working set", a)
	}
	fill()
	before := heapAlloc()
	ShrinkCaches() // the pages were reached since the last shrink: kept
	if _, b := CacheCount(); b < queue {
		t.Fatalf("caches hold %d bytes after one shrink, want the queue's %d kept", b, queue)
	}
	ShrinkCaches() // idle for a whole interval: freed
	after := heapAlloc()
	if _, b := CacheCount(); b != 0 {
		t.Fatalf("caches hold %d bytes after an idle interval, want 0", b)
	}
	if before < after || before-after < queue*9/10 {
		t.Fatalf("Go heap %d MiB before the idle shrink, %d MiB after: want %d MiB freed",
			before>>20, after>>20, queue>>20)
	}
	t.Logf("heap %d MiB -> %d MiB", before>>20, after>>20)
}

// The shrinker runs on its own: cached pages left idle are gone within a
// few intervals, and the timer stops once the caches are empty, so an idle
// daemon is not woken for them.
func TestCacheShrinkerTimerEmptiesIdleCachesAndStops(t *testing.T) {
	if debug {
		t.Skip("debug builds (-race, skbdebug) poison freed pages instead of pooling them")
	}
	old := ShrinkInterval
	setShrinkInterval(20 * time.Millisecond)
	defer setShrinkInterval(old)
	drainCaches()
	for range 64 {
		NewPage().Put()
	}
	if n, _ := CacheCount(); n == 0 {
		t.Fatal("nothing cached")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := CacheCount()
		if n == 0 && !shrinker.armed.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s later the caches hold %d objects, shrinker armed %v", n, shrinker.armed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
