package skb

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// Steady state: allocate and free reuses pooled structs and heads, 0 allocs.
func BenchmarkAllocFree(b *testing.B) {
	for _, size := range []int{1, 1500, 9000, 65536} {
		b.Run(sizeName(size), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				s := Alloc(size)
				s.Put(size)
				s.Free()
			}
		})
	}
}

func BenchmarkCloneFree(b *testing.B) {
	b.ReportAllocs()
	s := Alloc(1500)
	s.Put(1500)
	for range b.N {
		c := s.Clone()
		c.Free()
	}
	s.Free()
}

// TCP's pattern: fclone allocation, header release, one clone transmitted
// and freed by the device, then the original freed on ACK.
func BenchmarkFcloneTransmitAck(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		s := AllocFclone(192)
		s.Reserve(192)
		s.HeaderRelease()
		c := s.Clone()
		c.Push(40)
		c.Free()
		s.Free()
	}
}

func sizeName(n int) string { return strconv.Itoa(n) + "B" }

// BenchmarkTruesizeVsHeap holds many skbs of one payload size and reports the
// truesize charged per skb next to the Go heap actually retained per skb, so
// that the accounting can be checked for honesty (charged/op vs heap/op).
func BenchmarkTruesizeVsHeap(b *testing.B) {
	const n = 4096
	for _, payload := range []int{1, 100, 1000, 1400, 4000, 9000} {
		b.Run(sizeName(payload), func(b *testing.B) {
			held := make([]*SKB, n)
			var charged, heap float64
			for range b.N {
				// Emptying the caches makes every skb below a fresh
				// allocation.
				drainCaches()
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				total := 0
				for i := range held {
					held[i] = Alloc(payload + 59)
					held[i].Put(payload + 59)
					total += held[i].Truesize()
				}
				runtime.ReadMemStats(&after)
				for _, s := range held {
					s.Free()
				}
				charged = float64(total) / n
				heap = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			}
			b.ReportMetric(charged, "charged-B/skb")
			b.ReportMetric(heap, "heap-B/skb")
		})
	}
}

// Clones of one buffer freed from different goroutines release it exactly
// once (run under -race).
func TestConcurrentCloneFree(t *testing.T) {
	before := LiveHeads()
	const rounds, clones = 200, 8
	for range rounds {
		s := AllocFclone(1500)
		s.Put(100)
		s.HeaderRelease()
		cs := make([]*SKB, clones)
		for i := range cs {
			cs[i] = s.Clone()
		}
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() { defer wg.Done(); c.Free() }()
		}
		s.Free()
		wg.Wait()
	}
	if LiveHeads() != before {
		t.Fatalf("live heads %d, want %d", LiveHeads(), before)
	}
}
