package skb

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// objCache is a bounded LIFO of free objects of one kind and size: the
// role of a kmem_cache (the skbuff_head_cache, skbuff_fclone_cache and the
// kmalloc caches that hold heads).
//
// Why not sync.Pool, which this package used before: the garbage collector
// empties a sync.Pool (one cycle in its victim cache, then gone), so every
// GC made the next few thousand packets allocate again, and those
// allocations paced the next GC. Bulk transfers over a TUN measured about
// 0.08 allocations per packet that way, nearly all of them heads, skbs and
// fclones the pools had lost. A free list the collector does not see keeps
// steady state at zero. It is bounded (max objects; an object freed into a
// full cache is left to the collector) and shrunk slowly: what sat in it
// unused for a whole ShrinkInterval goes to the collector (ShrinkCaches).
//
// A plain mutex costs some 10 ns more per get or put than sync.Pool's
// per-P fast path (BenchmarkAllocFree/1500B, an skb and its head out and
// back: 95 against 55 ns); BenchmarkTCPBulk did not move (1452 against
// 1458 MB/s), and the TUN benchmark's allocations per packet fell from
// 0.089 to 0.006 at MTU 1500.
type objCache[T any] struct {
	mu   sync.Mutex
	free []*T
	max  int
	// low is the fewest free objects the cache held since the last
	// shrink: that many sat in it unused through the whole interval.
	low int
}

// get returns a free object, or nil if the cache is empty.
func (c *objCache[T]) get() *T {
	c.mu.Lock()
	n := len(c.free)
	if n == 0 {
		c.mu.Unlock()
		return nil
	}
	x := c.free[n-1]
	c.free[n-1] = nil
	c.free = c.free[:n-1]
	c.low = min(c.low, n-1)
	c.mu.Unlock()
	return x
}

// put returns x to the cache; when the cache already holds max objects, x
// is dropped for the collector.
func (c *objCache[T]) put(x *T) {
	c.mu.Lock()
	if len(c.free) < c.max {
		if c.free == nil {
			c.free = make([]*T, 0, min(c.max, 1024))
		}
		c.free = append(c.free, x)
	}
	c.mu.Unlock()
	armShrinker()
}

// cacheLimit bounds the bytes one cache keeps: enough for the skbs of
// several busy connections' queues, small next to tcp_mem's defaults.
const cacheLimit = 16 << 20

// cacheMax is the number of objects of size bytes a cache keeps.
func cacheMax(size int) int { return max(64, cacheLimit/max(size, 1)) }

// drain empties the cache, leaving its objects to the collector.
func (c *objCache[T]) drain() {
	c.mu.Lock()
	clear(c.free)
	c.free = c.free[:0]
	c.low = 0
	c.mu.Unlock()
}

// shrink leaves to the collector the objects that no get reached since the
// last shrink (the low-water mark of the free list), and returns how many
// it keeps. They are the bottom of the LIFO: get takes from the top, so
// those are the ones put back longest ago.
func (c *objCache[T]) shrink() (kept int) {
	c.mu.Lock()
	if idle := c.low; idle > 0 {
		n := copy(c.free, c.free[idle:])
		clear(c.free[n:])
		c.free = c.free[:n]
		if n == 0 {
			c.free = nil // the backing array too: the cache was idle
		}
	}
	c.low = len(c.free)
	kept = c.low
	c.mu.Unlock()
	return kept
}

// cache is what the shrinker and the tests see of an objCache.
type cache interface {
	drain()
	shrink() (kept int)
	count() int
}

// count returns the free objects the cache holds.
func (c *objCache[T]) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.free)
}

// cacheVisit calls f with every cache and the bytes one of its objects
// stands for.
func cacheVisit(f func(c cache, size int)) {
	for i := range pow2Pools {
		f(&pow2Pools[i], 1<<i)
	}
	smallHeadPools.Range(func(k, v any) bool {
		f(v.(*objCache[Shared]), k.(int))
		return true
	})
	f(&skbPool, int(unsafe.Sizeof(SKB{})))
	f(&fclonePool, int(unsafe.Sizeof(fclones{})))
	f(&pagePool, PageFragSize)
}

// drainCaches empties every cache; tests use it to measure fresh
// allocations.
func drainCaches() {
	cacheVisit(func(c cache, _ int) { c.drain() })
}

// CacheCount returns the free objects the caches hold and the bytes they
// stand for (a head by its buffer's size, a page by PageFragSize).
func CacheCount() (objects, bytes int) { return cacheSum(cache.count) }

// cacheSum calls f on every cache and sums the objects it returns and the
// bytes they stand for.
func cacheSum(f func(cache) int) (objects, bytes int) {
	cacheVisit(func(c cache, size int) {
		n := f(c)
		objects += n
		bytes += n * size
	})
	return objects, bytes
}

// ShrinkCaches gives the collector every cached free object (skb, head,
// fclone, page) that sat unused since the previous call, and returns the
// objects and bytes the caches still hold. The shrinker calls it every
// ShrinkInterval while any cache holds something.
//
// It plays the part of Linux's periodic return of idle per-CPU free pages
// (decay_pcp_high, run by vmstat_update every second) and of the slab
// shrinkers: a cache keeps what its working set cycles through and lets go
// of what it did not touch for a whole interval. Linux decays a per-CPU
// list's high mark by an eighth a second; we free all of an interval's
// idle objects at once but wait far longer (a minute), because here an
// object freed too early is a Go allocation, and a bulk transfer whose
// receive queue refills after a pause (make bench's rows, one after the
// other on one peer) must not allocate its pages again.
func ShrinkCaches() (objects, bytes int) { return cacheSum(cache.shrink) }

// ShrinkInterval is how long a cached free object may sit unused before the
// shrinker leaves it to the collector (after one to two intervals). A
// variable for tests.
var ShrinkInterval = time.Minute

// shrinker runs ShrinkCaches on a timer while any cache holds objects: a
// put arms it, and it stops once every cache is empty, so an idle process
// is not woken for nothing.
var shrinker struct {
	armed atomic.Bool
	mu    sync.Mutex
	timer *time.Timer
}

// armShrinker starts the shrinker's timer if it is not running. On put's
// path it costs one atomic load.
func armShrinker() {
	if shrinker.armed.Load() || !shrinker.armed.CompareAndSwap(false, true) {
		return
	}
	shrinker.mu.Lock()
	if shrinker.timer == nil {
		shrinker.timer = time.AfterFunc(ShrinkInterval, shrinkTick)
	} else {
		shrinker.timer.Reset(ShrinkInterval)
	}
	shrinker.mu.Unlock()
}

func shrinkTick() {
	if n, _ := ShrinkCaches(); n > 0 {
		shrinker.mu.Lock()
		shrinker.timer.Reset(ShrinkInterval)
		shrinker.mu.Unlock()
		return
	}
	shrinker.armed.Store(false)
	// A put between ShrinkCaches and the Store saw the timer armed and did
	// not arm it: look again.
	if n, _ := CacheCount(); n > 0 {
		armShrinker()
	}
}
