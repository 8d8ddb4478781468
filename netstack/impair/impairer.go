package impair

import (
	"math/rand/v2"
	"sync"
	"time"

	"sockfs/netstack/clock"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// maxBatch bounds the packets handed to deliver in one call.
const maxBatch = 64

// Counters are an Impairer's packet counts. When nothing is queued,
// Sent + Duplicated == Delivered + Lost + QueueDrops + Purged; in general
// Queued (the packets waiting) closes the balance.
type Counters struct {
	Sent       uint64 // packets given to Enqueue
	Delivered  uint64 // packets handed to deliver (duplicates included)
	Lost       uint64 // dropped by Loss
	Duplicated uint64 // extra copies made by Duplicate
	Corrupted  uint64 // packets with a bit flipped by Corrupt
	Reordered  uint64 // packets scheduled to arrive before one sent earlier
	QueueDrops uint64 // dropped because Limit packets were waiting
	Marked     uint64 // marked CE (ECN with Loss, or CELimit) instead of dropped
	Purged     uint64 // freed undelivered by Purge or Close, or sent after Close
	Queued     uint64 // waiting now (a gauge, not a counter)
}

type entry struct {
	at  int64  // delivery time, clock Nanotime units
	seq uint64 // tie-break: scheduling order
	b   *skb.SKB
}

// Impairer applies a Config to the packets enqueued on it and hands the
// survivors to a deliver function at their computed times, from the clock's
// callback path. Mirrors one netem qdisc instance.
//
// Concurrency: Enqueue, EnqueueBatch, SetConfig, Config, Counters, Purge and
// Close may be called from any goroutine, including from inside deliver;
// they take the Impairer's mutex briefly and never block otherwise. deliver
// is called without that mutex, one call at a time (the clock runs its
// callbacks serially).
type Impairer struct {
	clk     clock.Clock
	deliver func(batch []*skb.SKB)
	timer   *clock.Timer

	mu      sync.Mutex
	cfg     Config
	rng     *rand.Rand
	q       []entry // min-heap by (at, seq)
	seq     uint64
	busy    int64 // the rate-limited link is busy until then
	maxAt   int64 // latest delivery time scheduled so far
	held    *skb.SKB
	heldAt  int64 // when a held packet is sent regardless
	armed   bool  // timer armed, for armedAt
	armedAt int64
	cnt     Counters
	closed  bool

	batch []*skb.SKB // fire's, reused; only the timer callback touches it
}

// New returns an Impairer applying cfg, with randomness from a PCG seeded by
// seed, that calls deliver with batches of packets when their time comes.
// deliver takes ownership of the skbs but not of the slice, which is reused
// after it returns. New panics if cfg is invalid (see Config.Validate).
func New(clk clock.Clock, cfg Config, seed int64, deliver func(batch []*skb.SKB)) *Impairer {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	i := &Impairer{
		clk:     clk,
		deliver: deliver,
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		q:       make([]entry, 0, 64),
		batch:   make([]*skb.SKB, 0, maxBatch),
	}
	i.timer = clk.NewTimer(i.fire)
	return i
}

// SetConfig changes the impairment for packets enqueued from now on;
// packets already scheduled keep their times. It fails, changing nothing,
// if cfg is invalid (the error wraps syscall.EINVAL).
func (i *Impairer) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	i.mu.Lock()
	i.cfg = cfg
	i.mu.Unlock()
	return nil
}

// Config returns the configuration in force.
func (i *Impairer) Config() Config {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cfg
}

// Counters returns a snapshot of the counters.
func (i *Impairer) Counters() Counters {
	i.mu.Lock()
	defer i.mu.Unlock()
	c := i.cnt
	c.Queued = uint64(len(i.q))
	if i.held != nil {
		c.Queued++
	}
	return c
}

// Enqueue takes ownership of b, orphans it (as netem does with
// skb_orphan_partial, so a delayed packet does not hold its sender's send
// buffer), applies loss, duplication and corruption at once and schedules
// what remains for delivery. It never calls deliver synchronously.
func (i *Impairer) Enqueue(b *skb.SKB) {
	b.Orphan()
	i.mu.Lock()
	i.enqueueLocked(b)
	i.mu.Unlock()
}

// EnqueueBatch is Enqueue for each skb of batch, under one lock acquisition.
// It takes ownership of the skbs, not of the slice.
func (i *Impairer) EnqueueBatch(batch []*skb.SKB) {
	for _, b := range batch {
		b.Orphan()
	}
	i.mu.Lock()
	for _, b := range batch {
		i.enqueueLocked(b)
	}
	i.mu.Unlock()
}

func (i *Impairer) enqueueLocked(b *skb.SKB) {
	i.cnt.Sent++
	if i.closed {
		i.cnt.Purged++
		b.Free()
		return
	}
	c := &i.cfg
	if c.Loss > 0 && i.rng.Float64() < c.Loss {
		// netem_enqueue: with ecn, an ECN-capable packet is marked
		// instead (INET_ECN_set_ce); the others are still dropped.
		var ok bool
		if c.ECN {
			b, ok = i.markCE(b)
		}
		if !ok {
			i.cnt.Lost++
			b.Free()
			return
		}
	}
	var dup *skb.SKB
	if c.Duplicate > 0 && i.rng.Float64() < c.Duplicate {
		dup = b.Copy()
		i.cnt.Duplicated++
	}
	if c.Corrupt > 0 && i.rng.Float64() < c.Corrupt {
		b = i.corrupt(b)
	}
	i.schedule(b)
	if dup != nil {
		i.schedule(dup)
	}
	i.rearm()
}

// corrupt flips one random bit of b, first replacing a shared or paged skb
// by a private linear copy so no other holder of the data sees the change.
// A packet whose checksum a device would complete (skb.ChecksumPartial) has
// it completed first, and one marked verified loses the mark, so the
// receiver's check catches the flip, as netem_enqueue does with
// skb_checksum_help. A super-packet (offloads) is corrupted as one packet:
// its one flipped bit costs all the segments it stands for.
func (i *Impairer) corrupt(b *skb.SKB) *skb.SKB {
	n := b.Len()
	if n == 0 {
		return b
	}
	if b.Cloned() || b.IsNonlinear() {
		p := b.Copy()
		b.Free()
		b = p
	}
	b.ChecksumHelp()
	b.IPSummed = skb.ChecksumNone
	bit := i.rng.IntN(n * 8)
	b.Data()[bit>>3] ^= 1 << (bit & 7)
	i.cnt.Corrupted++
	return b
}

// markCE sets CE in the IPv4 header of an ECN-capable b, first replacing
// b by a private copy if another skb may write its header, and reports
// whether it did (false: Not-ECT, or not IPv4). Mirrors INET_ECN_set_ce.
func (i *Impairer) markCE(b *skb.SKB) (*skb.SKB, bool) {
	d := b.Data()
	if len(d) < header.IPv4MinSize || d[0]>>4 != 4 || d[1]&header.ECNMask == header.ECNNotECT {
		return b, false
	}
	if b.HeaderCloned() {
		p := b.Copy()
		b.Free()
		b = p
	}
	header.IPv4(b.Data()).SetCE()
	i.cnt.Marked++
	return b, true
}

// schedule computes b's delivery time and queues it (or holds it back for
// reordering, or drops it at the queue limit).
func (i *Impairer) schedule(b *skb.SKB) {
	c := &i.cfg
	queued := len(i.q)
	if i.held != nil {
		queued++
	}
	if queued >= c.limit() {
		i.cnt.QueueDrops++
		b.Free()
		return
	}
	if c.CELimit > 0 && queued >= c.CELimit {
		b, _ = i.markCE(b)
	}
	now := i.clk.Nanotime()
	at := now
	if c.Rate > 0 {
		// Serialisation: the link sends one packet at a time.
		start := max(now, i.busy)
		i.busy = start + int64(uint64(b.Len())*8*uint64(time.Second)/c.Rate)
		at = i.busy
	}
	if c.Delay == 0 && c.Reorder > 0 && i.held == nil && i.rng.Float64() < c.Reorder {
		// Nothing is delayed, so hold this one until the next is queued.
		i.held, i.heldAt = b, at+int64(ReorderHold)
		return
	}
	delay := c.Delay
	if c.Jitter > 0 {
		delay += time.Duration(i.rng.Int64N(2*int64(c.Jitter)+1)) - c.Jitter
		delay = max(delay, 0)
	}
	if c.Delay > 0 && c.Reorder > 0 && i.rng.Float64() < c.Reorder {
		at = now // sent at once, ahead of the delayed ones
	} else {
		at += int64(delay)
		if c.Rate > 0 {
			at = max(at, i.maxAt) // a rate-limited link stays FIFO
		}
	}
	i.push(b, at)
	if h := i.held; h != nil {
		// The held packet goes right behind this one: one reordering.
		i.held = nil
		i.cnt.Reordered++
		i.push(h, at)
	}
}

// push adds b at delivery time at, counting it as reordered if it will
// arrive before a packet scheduled earlier.
func (i *Impairer) push(b *skb.SKB, at int64) {
	if at < i.maxAt {
		i.cnt.Reordered++
	}
	i.maxAt = max(i.maxAt, at)
	i.seq++
	i.q = append(i.q, entry{at: at, seq: i.seq, b: b})
	i.up(len(i.q) - 1)
}

// rearm makes sure the timer fires by the earliest deadline.
func (i *Impairer) rearm() {
	var next int64
	switch {
	case len(i.q) > 0 && i.held != nil:
		next = min(i.q[0].at, i.heldAt)
	case len(i.q) > 0:
		next = i.q[0].at
	case i.held != nil:
		next = i.heldAt
	default:
		return
	}
	if i.armed && i.armedAt <= next {
		return
	}
	i.armed, i.armedAt = true, next
	i.timer.ResetAt(next)
}

// fire is the timer callback: it hands every due packet to deliver, in
// batches, then re-arms for the next.
func (i *Impairer) fire() {
	i.mu.Lock()
	i.armed = false
	for !i.closed {
		now := i.clk.Nanotime()
		if i.held != nil && i.heldAt <= now {
			h := i.held
			i.held = nil
			i.push(h, now)
		}
		for len(i.q) > 0 && i.q[0].at <= now && len(i.batch) < maxBatch {
			i.batch = append(i.batch, i.pop())
		}
		if len(i.batch) == 0 {
			break
		}
		i.cnt.Delivered += uint64(len(i.batch))
		i.mu.Unlock()
		i.deliver(i.batch)
		clear(i.batch)
		i.batch = i.batch[:0]
		i.mu.Lock()
	}
	if !i.closed {
		i.rearm()
	}
	i.mu.Unlock()
}

// Purge frees every packet waiting (counted as Purged) and disarms the
// timer; the Impairer stays usable. Mirrors a qdisc reset.
func (i *Impairer) Purge() {
	i.mu.Lock()
	i.purgeLocked()
	i.mu.Unlock()
}

func (i *Impairer) purgeLocked() {
	for k := range i.q {
		i.q[k].b.Free()
		i.q[k].b = nil
	}
	i.cnt.Purged += uint64(len(i.q))
	i.q = i.q[:0]
	if i.held != nil {
		i.held.Free()
		i.held = nil
		i.cnt.Purged++
	}
	i.busy, i.maxAt = 0, 0
	i.timer.Stop()
	i.armed = false
}

// Close purges the queue and stops the Impairer: packets enqueued later are
// freed at once (counted as Purged) and deliver is not called again, except
// for a batch already being delivered when Close is called.
func (i *Impairer) Close() {
	i.mu.Lock()
	i.closed = true
	i.purgeLocked()
	i.mu.Unlock()
}

func (i *Impairer) less(a, b int) bool {
	x, y := &i.q[a], &i.q[b]
	return x.at < y.at || x.at == y.at && x.seq < y.seq
}

func (i *Impairer) up(k int) {
	for k > 0 {
		p := (k - 1) / 2
		if !i.less(k, p) {
			return
		}
		i.q[k], i.q[p] = i.q[p], i.q[k]
		k = p
	}
}

func (i *Impairer) pop() *skb.SKB {
	q := i.q
	b := q[0].b
	last := len(q) - 1
	q[0] = q[last]
	q[last] = entry{}
	i.q = q[:last]
	n := last
	k := 0
	for {
		l := 2*k + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && i.less(r, l) {
			m = r
		}
		if !i.less(m, k) {
			break
		}
		i.q[k], i.q[m] = i.q[m], i.q[k]
		k = m
	}
	return b
}
