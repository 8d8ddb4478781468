package skb

import "sync"

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
// steady state at zero, like a slab that is never shrunk; the bound (max
// objects) is what a shrinker would otherwise enforce, and an object freed
// into a full cache is left to the collector.
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
	c.mu.Unlock()
}

// drainCaches empties every cache, as a shrinker under memory pressure
// would; tests use it to measure fresh allocations.
func drainCaches() {
	for i := range pow2Pools {
		pow2Pools[i].drain()
	}
	smallHeadPools.Range(func(_, v any) bool {
		v.(*objCache[Shared]).drain()
		return true
	})
	skbPool.drain()
	fclonePool.drain()
	pagePool.drain()
}
