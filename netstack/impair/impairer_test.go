package impair

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sync"
	"testing"
	"time"

	"sockfs/netstack/clock"
	"sockfs/skb"
)

// pkt returns an skb of n bytes (n >= 4) whose first 4 bytes hold id and
// the rest a pattern, with Tstamp set to the enqueue time.
func pkt(clk clock.Clock, id uint32, n int) *skb.SKB {
	b := skb.Alloc(n)
	d := b.Put(n)
	binary.BigEndian.PutUint32(d, id)
	for k := 4; k < n; k++ {
		d[k] = byte(k)
	}
	b.Tstamp = clk.Nanotime()
	return b
}

type arrival struct {
	id       uint32
	sentAt   int64
	arriveAt int64
}

// sink records deliveries and frees the skbs.
type sink struct {
	clk   clock.Clock
	mu    sync.Mutex
	got   []arrival
	calls int
}

func (s *sink) deliver(batch []*skb.SKB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, b := range batch {
		s.got = append(s.got, arrival{binary.BigEndian.Uint32(b.Data()), b.Tstamp, s.clk.Nanotime()})
		b.Free()
	}
}

func newSim(t *testing.T, cfg Config, seed int64) (*clock.Sim, *Impairer, *sink) {
	t.Helper()
	s := clock.NewSim()
	k := &sink{clk: s}
	return s, New(s, cfg, seed, k.deliver), k
}

// checkBalance asserts the counter identity once the queue is empty.
func checkBalance(t *testing.T, c Counters) {
	t.Helper()
	if c.Queued != 0 {
		t.Fatalf("still queued: %+v", c)
	}
	if c.Sent+c.Duplicated != c.Delivered+c.Lost+c.QueueDrops+c.Purged {
		t.Fatalf("counters do not balance: %+v", c)
	}
}

// reorderings counts packets that arrived before some packet sent earlier.
func reorderings(got []arrival) uint64 {
	// got is in arrival order; id order is send order.
	var n uint64
	for k, a := range got {
		for _, later := range got[k+1:] {
			if later.id < a.id {
				n++
				break
			}
		}
	}
	return n
}

func TestImpairerNoImpairment(t *testing.T) {
	s, im, k := newSim(t, Config{}, 1)
	for id := range uint32(100) {
		im.Enqueue(pkt(s, id, 64))
	}
	if len(k.got) != 0 {
		t.Fatal("delivered synchronously from Enqueue")
	}
	s.Advance(0)
	if len(k.got) != 100 {
		t.Fatalf("delivered %d", len(k.got))
	}
	for n, a := range k.got {
		if a.id != uint32(n) || a.arriveAt != 0 {
			t.Fatalf("arrival %d: %+v", n, a)
		}
	}
	if k.calls != 2 { // 100 packets in batches of at most maxBatch (64)
		t.Fatalf("deliver called %d times", k.calls)
	}
	checkBalance(t, im.Counters())
}

func TestImpairerLoss(t *testing.T) {
	s, im, k := newSim(t, Config{Loss: 0.10}, 42)
	for id := range uint32(10000) {
		im.Enqueue(pkt(s, id, 100))
		s.Advance(time.Duration(id%2) * time.Microsecond)
	}
	s.Advance(time.Second)
	c := im.Counters()
	if c.Lost < 850 || c.Lost > 1150 {
		t.Fatalf("lost %d of 10000 at 10%%", c.Lost)
	}
	if c.Sent != 10000 || c.Sent != c.Delivered+c.Lost || uint64(len(k.got)) != c.Delivered {
		t.Fatalf("counters %+v, got %d", c, len(k.got))
	}
	checkBalance(t, c)
}

func TestImpairerDelayExact(t *testing.T) {
	s, im, k := newSim(t, Config{Delay: 50 * time.Millisecond}, 1)
	for id := range uint32(500) {
		im.Enqueue(pkt(s, id, 100))
		s.Advance(time.Duration(id%7) * time.Millisecond)
	}
	s.Advance(time.Second)
	if len(k.got) != 500 {
		t.Fatalf("delivered %d", len(k.got))
	}
	for n, a := range k.got {
		if a.id != uint32(n) || a.arriveAt-a.sentAt != int64(50*time.Millisecond) {
			t.Fatalf("packet %d: sent %d arrived %d", a.id, a.sentAt, a.arriveAt)
		}
	}
	if c := im.Counters(); c.Reordered != 0 {
		t.Fatalf("reordered %d without jitter", c.Reordered)
	}
}

func TestImpairerJitterReorders(t *testing.T) {
	s, im, k := newSim(t, Config{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}, 7)
	for id := range uint32(1000) {
		im.Enqueue(pkt(s, id, 100))
		s.Advance(time.Millisecond)
	}
	s.Advance(time.Second)
	if len(k.got) != 1000 {
		t.Fatalf("delivered %d", len(k.got))
	}
	for _, a := range k.got {
		if d := time.Duration(a.arriveAt - a.sentAt); d < 40*time.Millisecond || d > 60*time.Millisecond {
			t.Fatalf("delay %v outside 50ms +/- 10ms", d)
		}
	}
	c := im.Counters()
	want := reorderings(k.got)
	if want == 0 || c.Reordered != want {
		t.Fatalf("Reordered = %d, trace shows %d", c.Reordered, want)
	}
	for n := 1; n < len(k.got); n++ {
		if k.got[n].arriveAt < k.got[n-1].arriveAt {
			t.Fatal("deliveries out of time order")
		}
	}
}

func TestImpairerRate(t *testing.T) {
	s, im, k := newSim(t, Config{Rate: 8e6}, 1) // 1000 bytes take 1 ms
	for id := range uint32(1000) {
		im.Enqueue(pkt(s, id, 1000))
	}
	s.Advance(10 * time.Second)
	if len(k.got) != 1000 {
		t.Fatalf("delivered %d", len(k.got))
	}
	last := time.Duration(k.got[999].arriveAt)
	if last < time.Second-time.Millisecond || last > time.Second+time.Millisecond {
		t.Fatalf("1000 x 1000 bytes at 8 Mbit/s took %v", last)
	}
	for n, a := range k.got {
		if a.id != uint32(n) || a.arriveAt != int64(n+1)*int64(time.Millisecond) {
			t.Fatalf("packet %d arrived at %v", a.id, time.Duration(a.arriveAt))
		}
	}
}

func TestImpairerRateWithJitterStaysFIFO(t *testing.T) {
	s, im, k := newSim(t, Config{Rate: 8e6, Delay: 20 * time.Millisecond, Jitter: 15 * time.Millisecond}, 3)
	for id := range uint32(300) {
		im.Enqueue(pkt(s, id, 500))
		s.Advance(300 * time.Microsecond)
	}
	s.Advance(10 * time.Second)
	if len(k.got) != 300 || reorderings(k.got) != 0 || im.Counters().Reordered != 0 {
		t.Fatalf("rate-limited link reordered: %d delivered, %d reorderings", len(k.got), reorderings(k.got))
	}
}

func TestImpairerDuplicate(t *testing.T) {
	s, im, k := newSim(t, Config{Duplicate: 0.01, Loss: 0.05}, 11)
	for id := range uint32(10000) {
		im.Enqueue(pkt(s, id, 100))
		s.Advance(time.Duration(id%2) * time.Microsecond)
	}
	s.Advance(time.Second)
	c := im.Counters()
	if c.Duplicated < 50 || c.Duplicated > 150 {
		t.Fatalf("duplicated %d of ~9500 at 1%%", c.Duplicated)
	}
	if c.Delivered != c.Sent-c.Lost+c.Duplicated || uint64(len(k.got)) != c.Delivered {
		t.Fatalf("counters %+v", c)
	}
	seen := map[uint32]int{}
	for _, a := range k.got {
		seen[a.id]++
	}
	dups := 0
	for _, n := range seen {
		if n == 2 {
			dups++
		}
	}
	if uint64(dups) != c.Duplicated {
		t.Fatalf("%d ids seen twice, Duplicated %d", dups, c.Duplicated)
	}
	checkBalance(t, c)
}

func bitDiff(a, b []byte) int {
	n := 0
	for k := range a {
		n += bits.OnesCount8(a[k] ^ b[k])
	}
	return n
}

func TestImpairerCorrupt(t *testing.T) {
	s := clock.NewSim()
	var got [][]byte
	im := New(s, Config{Corrupt: 1}, 5, func(batch []*skb.SKB) {
		for _, b := range batch {
			got = append(got, slices.Clone(b.Data()))
			b.Free()
		}
	})
	want := make([][]byte, 200)
	for id := range want {
		b := pkt(s, uint32(id), 64+id)
		want[id] = slices.Clone(b.Data())
		im.Enqueue(b)
	}
	s.Advance(0)
	for id := range want {
		if len(got[id]) != len(want[id]) || bitDiff(got[id], want[id]) != 1 {
			t.Fatalf("packet %d: %d bits differ", id, bitDiff(got[id], want[id]))
		}
	}
	if c := im.Counters(); c.Corrupted != 200 {
		t.Fatalf("Corrupted = %d", c.Corrupted)
	}
}

// TestImpairerCorruptClone checks that corrupting a transmitted clone leaves
// the original (think: TCP's retransmit queue) untouched.
func TestImpairerCorruptClone(t *testing.T) {
	base := skb.LiveHeads()
	s := clock.NewSim()
	var got []byte
	im := New(s, Config{Corrupt: 1}, 9, func(batch []*skb.SKB) {
		got = slices.Clone(batch[0].Data())
		batch[0].Free()
	})
	orig := pkt(s, 1, 1000)
	want := slices.Clone(orig.Data())
	im.Enqueue(orig.Clone())
	s.Advance(0)
	if !slices.Equal(orig.Data(), want) {
		t.Fatal("original of a corrupted clone was modified")
	}
	if bitDiff(got, want) != 1 {
		t.Fatalf("%d bits differ in the delivered copy", bitDiff(got, want))
	}
	if orig.Cloned() {
		t.Fatal("original still marked shared after the clone was replaced and freed")
	}
	orig.Free()
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
}

func TestImpairerLimit(t *testing.T) {
	s, im, k := newSim(t, Config{Delay: time.Second, Limit: 10}, 1)
	for id := range uint32(25) {
		im.Enqueue(pkt(s, id, 100))
	}
	if c := im.Counters(); c.QueueDrops != 15 || c.Queued != 10 {
		t.Fatalf("counters %+v", c)
	}
	s.Advance(2 * time.Second)
	if len(k.got) != 10 {
		t.Fatalf("delivered %d", len(k.got))
	}
	checkBalance(t, im.Counters())
	// The default limit is netem's 1000.
	s, im, _ = newSim(t, Config{Delay: time.Second}, 1)
	for id := range uint32(1200) {
		im.Enqueue(pkt(s, id, 100))
	}
	if c := im.Counters(); c.QueueDrops != 200 {
		t.Fatalf("default limit: %+v", c)
	}
	s.Advance(2 * time.Second)
}

func TestImpairerReorderWithDelay(t *testing.T) {
	s, im, k := newSim(t, Config{Delay: 10 * time.Millisecond, Reorder: 0.25}, 13)
	for id := range uint32(1000) {
		im.Enqueue(pkt(s, id, 100))
		s.Advance(time.Millisecond)
	}
	s.Advance(time.Second)
	c := im.Counters()
	if c.Reordered == 0 || c.Reordered != reorderings(k.got) {
		t.Fatalf("Reordered %d, trace %d", c.Reordered, reorderings(k.got))
	}
	for _, a := range k.got {
		if d := a.arriveAt - a.sentAt; d != 0 && d != int64(10*time.Millisecond) {
			t.Fatalf("delay %v", time.Duration(d))
		}
	}
}

func TestImpairerReorderWithoutDelay(t *testing.T) {
	s, im, k := newSim(t, Config{Reorder: 0.3}, 17)
	for id := range uint32(1000) {
		im.Enqueue(pkt(s, id, 100))
		if id%10 == 9 {
			s.Advance(0)
		}
	}
	s.Advance(time.Second)
	if len(k.got) != 1000 {
		t.Fatalf("delivered %d", len(k.got))
	}
	c := im.Counters()
	if c.Reordered < 100 || c.Reordered != reorderings(k.got) {
		t.Fatalf("Reordered %d, trace %d", c.Reordered, reorderings(k.got))
	}
	// A held packet with no successor goes out after ReorderHold.
	s, im, k = newSim(t, Config{Reorder: 1}, 1)
	im.Enqueue(pkt(s, 7, 100))
	s.Advance(ReorderHold - 1)
	if len(k.got) != 0 {
		t.Fatal("held packet sent before ReorderHold")
	}
	s.Advance(1)
	if len(k.got) != 1 || k.got[0].arriveAt != int64(ReorderHold) || im.Counters().Reordered != 0 {
		t.Fatalf("got %+v, %+v", k.got, im.Counters())
	}
}

func trace(seed int64) []arrival {
	s := clock.NewSim()
	k := &sink{clk: s}
	cfg, _ := Parse("delay 20ms 8ms loss 3% reorder 5% duplicate 2% corrupt 1% limit 200")
	im := New(s, cfg, seed, k.deliver)
	for id := range uint32(3000) {
		im.Enqueue(pkt(s, id, 60+int(id%1400)))
		s.Advance(time.Duration(id%3) * 100 * time.Microsecond)
	}
	s.Advance(time.Second)
	return k.got
}

func TestImpairerDeterminism(t *testing.T) {
	a, b := trace(99), trace(99)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different delivery sequences")
	}
	if slices.Equal(a, trace(100)) {
		t.Fatal("different seeds, same delivery sequence")
	}
}

func TestImpairerSetConfig(t *testing.T) {
	s, im, k := newSim(t, Config{Delay: 10 * time.Millisecond}, 1)
	im.Enqueue(pkt(s, 0, 100))
	if err := im.SetConfig(Config{Loss: 2}); err == nil {
		t.Fatal("invalid config accepted")
	}
	if err := im.SetConfig(Config{Delay: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	im.Enqueue(pkt(s, 1, 100))
	s.Advance(time.Second)
	// Packet 0 keeps its 10ms; packet 1 takes 1ms and overtakes it.
	if len(k.got) != 2 || k.got[0].id != 1 || k.got[1].arriveAt != int64(10*time.Millisecond) {
		t.Fatalf("got %+v", k.got)
	}
	if im.Config() != (Config{Delay: time.Millisecond}) {
		t.Fatalf("Config = %v", im.Config())
	}
}

func TestImpairerPurgeClose(t *testing.T) {
	base := skb.LiveHeads()
	s, im, k := newSim(t, Config{Delay: time.Second, Reorder: 0}, 1)
	for id := range uint32(50) {
		im.Enqueue(pkt(s, id, 100))
	}
	im.Purge()
	if s.Pending() != 0 || skb.LiveHeads() != base {
		t.Fatalf("after Purge: pending %d, live %d", s.Pending(), skb.LiveHeads()-base)
	}
	im.Enqueue(pkt(s, 50, 100)) // still usable
	s.Advance(2 * time.Second)
	if len(k.got) != 1 {
		t.Fatalf("delivered %d after Purge", len(k.got))
	}
	im.Enqueue(pkt(s, 51, 100))
	im.Close()
	im.Enqueue(pkt(s, 52, 100))
	s.Advance(2 * time.Second)
	c := im.Counters()
	if len(k.got) != 1 || c.Purged != 52 || skb.LiveHeads() != base {
		t.Fatalf("after Close: got %d, %+v, live %d", len(k.got), c, skb.LiveHeads()-base)
	}
	checkBalance(t, c)
}

// TestImpairerConcurrent enqueues from several goroutines on a Real clock,
// with deliver re-entering Enqueue, for the race detector.
func TestImpairerConcurrent(t *testing.T) {
	base := skb.LiveHeads()
	r := clock.NewReal()
	defer r.Close()
	var mu sync.Mutex
	delivered := 0
	var im *Impairer
	im = New(r, Config{Delay: 100 * time.Microsecond, Jitter: 50 * time.Microsecond, Loss: 0.05, Duplicate: 0.05}, 1,
		func(batch []*skb.SKB) {
			for _, b := range batch {
				b.Free()
			}
			mu.Lock()
			delivered += len(batch)
			mu.Unlock()
			_ = im.Counters()
		})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]*skb.SKB, 8)
			for n := range 200 {
				for k := range batch {
					batch[k] = pkt(r, uint32(g<<16|n), 100)
				}
				im.EnqueueBatch(batch)
				if n%50 == 0 {
					_ = im.SetConfig(Config{Delay: time.Duration(n) * time.Microsecond})
				}
			}
		}()
	}
	wg.Wait()
	// Delivered is counted just before the callback runs, so wait for the
	// callback of the last batch too, not only for the queue to empty.
	settled := func() bool {
		c := im.Counters()
		mu.Lock()
		defer mu.Unlock()
		return c.Queued == 0 && uint64(delivered) == c.Delivered
	}
	for deadline := time.Now().Add(10 * time.Second); !settled() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	c := im.Counters()
	checkBalance(t, c)
	mu.Lock()
	defer mu.Unlock()
	if uint64(delivered) != c.Delivered || c.Sent != 6400 {
		t.Fatalf("delivered %d, %+v", delivered, c)
	}
	im.Close()
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
}

func TestImpairerSteadyStateAllocs(t *testing.T) {
	if !skbRecycles {
		t.Skip("skb debugging (race or skbdebug) disables buffer recycling")
	}
	s := clock.NewSim()
	im := New(s, Config{Delay: time.Millisecond, Jitter: 500 * time.Microsecond, Loss: 0.01, Rate: 1e9}, 1,
		func(batch []*skb.SKB) {
			for _, b := range batch {
				b.Free()
			}
		})
	step := func() {
		for range 32 {
			b := skb.Alloc(1500)
			b.Put(1500)
			im.Enqueue(b)
		}
		s.Advance(2 * time.Millisecond)
	}
	for range 100 {
		step() // warm pools and the heap
	}
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Fatalf("%v allocations per 32 packets in steady state", a)
	}
}

func BenchmarkImpairer(b *testing.B) {
	s := clock.NewSim()
	im := New(s, Config{Delay: time.Millisecond, Jitter: 100 * time.Microsecond}, 1, func(batch []*skb.SKB) {
		for _, p := range batch {
			p.Free()
		}
	})
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		p := skb.Alloc(1500)
		p.Put(1500)
		im.Enqueue(p)
		if n%64 == 63 {
			s.Advance(time.Millisecond)
		}
	}
	s.Advance(time.Second)
}
