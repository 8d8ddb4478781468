package clock

import (
	"sync"
	"sync/atomic"
	"time"
)

// heap is the timer store shared by Real and Sim: a binary min-heap of armed
// timers ordered by (when, seq). Each Timer records its index so that Reset
// and Stop can fix or remove it in place.
type heap struct {
	mu  sync.Mutex
	ts  []*Timer
	seq uint64

	// Time source: Sim keeps simNow; Real measures from start.
	sim    bool
	simNow atomic.Int64
	start  time.Time

	// wake, when non-nil, is signalled (without blocking) whenever an arm
	// puts a timer at the root, so Real's goroutine re-plans its sleep.
	wake chan struct{}
}

func (h *heap) nanotime() int64 {
	if h.sim {
		return h.simNow.Load()
	}
	return int64(time.Since(h.start))
}

func (h *heap) newTimer(f func()) *Timer {
	if f == nil {
		panic("clock: NewTimer with a nil callback")
	}
	return &Timer{h: h, f: f, idx: -1}
}

// arm sets t's deadline (absolute when abs, else now+d) and places it.
func (h *heap) arm(t *Timer, d time.Duration, abs bool) bool {
	h.mu.Lock()
	when := int64(d)
	if !abs {
		when += h.nanotime()
	}
	h.seq++
	t.when, t.seq = when, h.seq
	was := t.idx >= 0
	if was {
		h.fix(t.idx)
	} else {
		t.idx = len(h.ts)
		h.ts = append(h.ts, t)
		h.up(t.idx)
	}
	root := t.idx == 0
	h.mu.Unlock()
	if root && h.wake != nil {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return was
}

func (h *heap) disarm(t *Timer) bool {
	h.mu.Lock()
	was := t.idx >= 0
	if was {
		h.remove(t.idx)
	}
	h.mu.Unlock()
	return was
}

// popDue removes and returns the root if its deadline is <= limit, else nil.
// The caller holds mu.
func (h *heap) popDue(limit int64) *Timer {
	if len(h.ts) == 0 || h.ts[0].when > limit {
		return nil
	}
	t := h.ts[0]
	h.remove(0)
	return t
}

// next returns the earliest deadline. The caller holds mu.
func (h *heap) next() (int64, bool) {
	if len(h.ts) == 0 {
		return 0, false
	}
	return h.ts[0].when, true
}

func (h *heap) pending() int {
	h.mu.Lock()
	n := len(h.ts)
	h.mu.Unlock()
	return n
}

func (h *heap) less(i, j int) bool {
	a, b := h.ts[i], h.ts[j]
	if a.when != b.when {
		return a.when < b.when
	}
	return a.seq < b.seq
}

func (h *heap) swap(i, j int) {
	h.ts[i], h.ts[j] = h.ts[j], h.ts[i]
	h.ts[i].idx = i
	h.ts[j].idx = j
}

func (h *heap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *heap) down(i int) bool {
	start := i
	n := len(h.ts)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

func (h *heap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *heap) remove(i int) {
	last := len(h.ts) - 1
	t := h.ts[i]
	if i != last {
		h.swap(i, last)
	}
	h.ts[last] = nil
	h.ts = h.ts[:last]
	if i != last {
		h.fix(i)
	}
	t.idx = -1
}
