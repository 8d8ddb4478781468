package link

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sockfs/netstack/clock"
	"sockfs/netstack/impair"
	"sockfs/skb"
)

func pkt(id uint32, n int) *skb.SKB {
	b := skb.Alloc(n)
	d := b.Put(n)
	binary.BigEndian.PutUint32(d, id)
	return b
}

func id(b *skb.SKB) uint32 { return binary.BigEndian.Uint32(b.Data()) }

// recorder is a Receiver that records ids and frees the skbs.
type recorder struct {
	mu    sync.Mutex
	ids   []uint32
	calls int
	hook  func(batch []*skb.SKB) // runs before the skbs are freed
}

func (r *recorder) NetifRx(batch []*skb.SKB) {
	r.mu.Lock()
	r.calls++
	for _, b := range batch {
		r.ids = append(r.ids, id(b))
	}
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(batch)
	}
	for _, b := range batch {
		b.Free()
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

// owner is a test Destructor counting the truesize returned to it.
type owner struct{ calls, bytes atomic.Int64 }

func (o *owner) SkbDestruct(truesize int) {
	o.calls.Add(1)
	o.bytes.Add(int64(truesize))
}

func TestLoopbackDeliversAsynchronously(t *testing.T) {
	base := skb.LiveHeads()
	s := clock.NewSim()
	lo := NewLoopback(s, 0)
	if lo.Kind() != "lo" || lo.MTU() != DefaultLoopbackMTU {
		t.Fatalf("Kind %q MTU %d", lo.Kind(), lo.MTU())
	}
	var inXmit atomic.Bool
	rec := &recorder{hook: func([]*skb.SKB) {
		if inXmit.Load() {
			t.Error("NetifRx called synchronously from Xmit")
		}
	}}
	if err := lo.Open(rec); err != nil {
		t.Fatal(err)
	}
	if err := lo.Open(rec); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("second Open: %v", err)
	}
	var o owner
	batch := make([]*skb.SKB, 100)
	want := 0
	for k := range batch {
		batch[k] = pkt(uint32(k), 100)
		batch[k].SetDestructor(&o)
		want += batch[k].Truesize()
	}
	inXmit.Store(true)
	lo.Xmit(batch)
	inXmit.Store(false)
	// Orphaned at transmit, as loopback_xmit's skb_orphan does.
	if o.calls.Load() != 100 || o.bytes.Load() != int64(want) {
		t.Fatalf("destructor ran %d times for %d bytes, want 100 for %d", o.calls.Load(), o.bytes.Load(), want)
	}
	if rec.count() != 0 {
		t.Fatal("delivered before the clock ran")
	}
	s.Advance(0)
	if rec.count() != 100 || rec.calls != 2 {
		t.Fatalf("delivered %d in %d calls", rec.count(), rec.calls)
	}
	for k, v := range rec.ids {
		if v != uint32(k) {
			t.Fatalf("out of order at %d: %d", k, v)
		}
	}
	st := lo.Stats().Snapshot()
	if st.TxPackets != 100 || st.RxPackets != 100 || st.TxBytes != 10000 || st.RxBytes != 10000 {
		t.Fatalf("stats %+v", st)
	}
	lo.Stop()
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
}

func TestLoopbackMTUAndStop(t *testing.T) {
	base := skb.LiveHeads()
	s := clock.NewSim()
	lo := NewLoopback(s, 1000)
	rec := &recorder{}
	lo.Xmit([]*skb.SKB{pkt(0, 100)}) // stopped: dropped
	if err := lo.Open(rec); err != nil {
		t.Fatal(err)
	}
	lo.Xmit([]*skb.SKB{pkt(1, 1000), pkt(2, 1001), pkt(3, 10)})
	lo.Xmit([]*skb.SKB{pkt(4, 10)})
	lo.Stop() // frees 1, 3, 4
	s.Advance(time.Second)
	st := lo.Stats().Snapshot()
	if rec.count() != 0 || st.TxDropped != 2 || st.TxPackets != 3 || st.RxDropped != 3 || st.RxPackets != 0 {
		t.Fatalf("delivered %d, stats %+v", rec.count(), st)
	}
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
	if err := lo.Open(nil); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Open(nil): %v", err)
	}
	if err := lo.Open(rec); err != nil { // reopen after Stop
		t.Fatal(err)
	}
	lo.Xmit([]*skb.SKB{pkt(5, 10)})
	s.Advance(0)
	if rec.count() != 1 {
		t.Fatal("not delivered after reopening")
	}
	lo.Stop()
}

// TestLoopbackReplyFromReceiver transmits from inside NetifRx, as a stack
// answering a ping on lo does: no deadlock, and the reply comes in a later
// run of the timer.
func TestLoopbackReplyFromReceiver(t *testing.T) {
	s := clock.NewSim()
	lo := NewLoopback(s, 0)
	rec := &recorder{}
	rec.hook = func(batch []*skb.SKB) {
		for _, b := range batch {
			if v := id(b); v < 10 {
				lo.Xmit([]*skb.SKB{pkt(v+1, 64)})
			}
		}
	}
	lo.Open(rec)
	lo.Xmit([]*skb.SKB{pkt(0, 64)})
	s.Advance(0) // every reply is due at the same instant
	if rec.count() != 11 || rec.calls != 11 {
		t.Fatalf("delivered %d in %d runs", rec.count(), rec.calls)
	}
	lo.Stop()
}

func TestLoopbackConcurrentReal(t *testing.T) {
	base := skb.LiveHeads()
	r := clock.NewReal()
	defer r.Close()
	lo := NewLoopback(r, 0)
	rec := &recorder{}
	lo.Open(rec)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 250 {
				lo.Xmit([]*skb.SKB{pkt(uint32(g<<16|n), 64), pkt(uint32(g<<16|n), 64)})
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for rec.count() < 4000 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if rec.count() != 4000 {
		t.Fatalf("delivered %d of 4000", rec.count())
	}
	// Each sender's packets arrive in its order.
	last := map[uint32]uint32{}
	for _, v := range rec.ids {
		g, n := v>>16, v&0xffff
		if n < last[g] {
			t.Fatalf("sender %d reordered", g)
		}
		last[g] = n
	}
	lo.Stop()
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
}

func openPipe(t *testing.T, s clock.Clock, mtu int, ab, ba impair.Config) (a, b *PipeEnd, ra, rb *recorder) {
	t.Helper()
	a, b = NewPipe(s, mtu, ab, ba, 1)
	ra, rb = &recorder{}, &recorder{}
	if err := a.Open(ra); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(rb); err != nil {
		t.Fatal(err)
	}
	return a, b, ra, rb
}

func TestPipeBothWaysInOrder(t *testing.T) {
	base := skb.LiveHeads()
	s := clock.NewSim()
	a, b, ra, rb := openPipe(t, s, 0, impair.Config{}, impair.Config{})
	if a.Kind() != "pipe" || a.MTU() != DefaultPipeMTU || a.Peer() != b || b.Peer() != a {
		t.Fatal("identity")
	}
	var o owner
	for k := range uint32(200) {
		p := pkt(k, 100+int(k))
		p.SetDestructor(&o)
		a.Xmit([]*skb.SKB{p})
		b.Xmit([]*skb.SKB{pkt(1000+k, 60), pkt(2000+k, 60)})
		if k%16 == 0 {
			s.Advance(0)
		}
	}
	if o.calls.Load() != 200 {
		t.Fatalf("orphaned %d of 200 at transmit", o.calls.Load())
	}
	s.Advance(0)
	if rb.count() != 200 || ra.count() != 400 {
		t.Fatalf("b got %d, a got %d", rb.count(), ra.count())
	}
	for k, v := range rb.ids {
		if v != uint32(k) {
			t.Fatalf("a->b out of order at %d: %d", k, v)
		}
	}
	for k := 0; k < 400; k += 2 {
		if ra.ids[k] != 1000+uint32(k/2) || ra.ids[k+1] != 2000+uint32(k/2) {
			t.Fatalf("b->a out of order at %d", k)
		}
	}
	sa, sb := a.Stats().Snapshot(), b.Stats().Snapshot()
	if sa.TxPackets != sb.RxPackets || sb.TxPackets != sa.RxPackets || sa.TxBytes != sb.RxBytes || sb.TxBytes != sa.RxBytes {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
	a.Stop()
	b.Stop()
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
}

func TestPipeXmitNeverCallsReceiver(t *testing.T) {
	s := clock.NewSim()
	a, b := NewPipe(s, 0, impair.Config{}, impair.Config{}, 1)
	var inXmit atomic.Bool
	calls := 0
	check := ReceiverFunc(func(batch []*skb.SKB) {
		calls++
		if inXmit.Load() {
			t.Error("receiver called synchronously from Xmit")
		}
		for _, p := range batch {
			p.Free()
		}
	})
	a.Open(check)
	b.Open(check)
	// A receiver that answers from NetifRx makes the two ends ping-pong.
	inXmit.Store(true)
	a.Xmit([]*skb.SKB{pkt(1, 64)})
	b.Xmit([]*skb.SKB{pkt(2, 64)})
	inXmit.Store(false)
	s.Advance(0)
	if calls != 2 {
		t.Fatalf("calls %d", calls)
	}
	a.Stop()
	b.Stop()
}

func TestPipePingPong(t *testing.T) {
	s := clock.NewSim()
	a, b := NewPipe(s, 0, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: 2 * time.Millisecond}, 1)
	var hops []int64
	var ea, eb *PipeEnd = a, b
	bounce := func(out **PipeEnd) Receiver {
		return ReceiverFunc(func(batch []*skb.SKB) {
			for _, p := range batch {
				hops = append(hops, s.Nanotime())
				if len(hops) < 10 {
					(*out).Xmit([]*skb.SKB{p}) // reuse the skb: ownership passed to us
				} else {
					p.Free()
				}
			}
		})
	}
	a.Open(bounce(&ea))
	b.Open(bounce(&eb))
	a.Xmit([]*skb.SKB{pkt(0, 64)})
	s.Advance(time.Second)
	if len(hops) != 10 {
		t.Fatalf("hops %d", len(hops))
	}
	for k, at := range hops {
		// a->b takes 1ms, b->a 2ms: arrivals at 1, 3, 4, 6, 7, ...
		want := int64(k/2*3+1+k%2*2) * int64(time.Millisecond)
		if at != want {
			t.Fatalf("hop %d at %v, want %v", k, time.Duration(at), time.Duration(want))
		}
	}
	a.Stop()
	b.Stop()
}

func TestPipeMTUAndDown(t *testing.T) {
	base := skb.LiveHeads()
	s := clock.NewSim()
	a, b := NewPipe(s, 576, impair.Config{}, impair.Config{}, 1)
	ra := &recorder{}
	a.Open(ra)
	a.Xmit([]*skb.SKB{pkt(1, 100)}) // peer down
	if st := a.Stats().Snapshot(); st.TxDropped != 1 || st.TxPackets != 0 {
		t.Fatalf("peer down: %+v", st)
	}
	rb := &recorder{}
	b.Open(rb)
	a.Xmit([]*skb.SKB{pkt(2, 576), pkt(3, 577), pkt(4, 100)})
	s.Advance(0)
	st := a.Stats().Snapshot()
	if st.TxDropped != 2 || st.TxPackets != 2 || rb.count() != 2 {
		t.Fatalf("stats %+v, delivered %d", st, rb.count())
	}
	lc := a.LinkCounters()
	if lc.Sent != 2 || lc.Delivered != 2 || b.Stats().RxPackets.Load() != 2 {
		t.Fatalf("link %+v", lc)
	}
	a.Stop()
	b.Stop()
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
}

func TestPipeLossAccounting(t *testing.T) {
	s := clock.NewSim()
	a, b, _, rb := openPipe(t, s, 0,
		impair.Config{Loss: 0.2, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond}, impair.Config{})
	for k := range uint32(5000) {
		a.Xmit([]*skb.SKB{pkt(k, 200)})
		s.Advance(50 * time.Microsecond)
	}
	s.Advance(time.Second)
	lc := a.LinkCounters()
	sa, sb := a.Stats().Snapshot(), b.Stats().Snapshot()
	if sa.TxPackets != lc.Sent || sb.RxPackets != lc.Delivered || uint64(rb.count()) != lc.Delivered {
		t.Fatalf("link %+v a %+v b %+v", lc, sa, sb)
	}
	if sa.TxPackets != sb.RxPackets+lc.Lost || lc.Lost < 800 || lc.Lost > 1200 {
		t.Fatalf("sent %d != received %d + lost %d", sa.TxPackets, sb.RxPackets, lc.Lost)
	}
	if lc.Reordered == 0 {
		t.Fatal("jitter produced no reordering")
	}
	a.Stop()
	b.Stop()
}

func TestPipeStopFreesInFlight(t *testing.T) {
	base := skb.LiveHeads()
	s := clock.NewSim()
	a, b, ra, rb := openPipe(t, s, 0, impair.Config{Delay: time.Second}, impair.Config{Delay: time.Second})
	for k := range uint32(100) {
		a.Xmit([]*skb.SKB{pkt(k, 1000)})
		b.Xmit([]*skb.SKB{pkt(k, 1000)})
	}
	s.Advance(500 * time.Millisecond)
	if skb.LiveHeads() == base {
		t.Fatal("nothing in flight")
	}
	a.Stop()
	if skb.LiveHeads() != base {
		t.Fatalf("after Stop: %d heads live", skb.LiveHeads()-base)
	}
	if s.Pending() != 0 {
		t.Fatalf("%d timers armed after Stop", s.Pending())
	}
	s.Advance(time.Second)
	if ra.count() != 0 || rb.count() != 0 {
		t.Fatal("delivered after Stop")
	}
	if lc := a.LinkCounters(); lc.Purged != 100 {
		t.Fatalf("link %+v", lc)
	}
	b.Stop()
}

func TestPipeSetImpairLive(t *testing.T) {
	s := clock.NewSim()
	a, b, _, rb := openPipe(t, s, 0, impair.Config{}, impair.Config{})
	a.Xmit([]*skb.SKB{pkt(0, 64)})
	s.Advance(0)
	if err := a.SetImpair(impair.Config{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetImpair(impair.Config{Loss: -1}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("bad config: %v", err)
	}
	if a.Impair() != (impair.Config{Loss: 1}) || b.Impair() != (impair.Config{}) {
		t.Fatal("Impair() does not reflect SetImpair")
	}
	a.Xmit([]*skb.SKB{pkt(1, 64)})
	s.Advance(0)
	if rb.count() != 1 || a.LinkCounters().Lost != 1 {
		t.Fatalf("delivered %d, link %+v", rb.count(), a.LinkCounters())
	}
	a.Stop()
	b.Stop()
}

// TestPipeConcurrentReal runs many transmitters on both ends over a Real
// clock with impairment changed on the fly, for the race detector.
func TestPipeConcurrentReal(t *testing.T) {
	base := skb.LiveHeads()
	r := clock.NewReal()
	defer r.Close()
	a, b, ra, rb := openPipe(t, r, 0, impair.Config{Delay: 100 * time.Microsecond, Loss: 0.1},
		impair.Config{Duplicate: 0.1, Reorder: 0.1})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			end := a
			if g%2 == 1 {
				end = b
			}
			for n := range 300 {
				end.Xmit([]*skb.SKB{pkt(uint32(n), 100), pkt(uint32(n), 100)})
				if n == 150 {
					end.SetImpair(impair.Config{Jitter: 50 * time.Microsecond})
				}
				_ = end.Stats().Snapshot()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for (a.LinkCounters().Queued != 0 || b.LinkCounters().Queued != 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for _, e := range []*PipeEnd{a, b} {
		lc := e.LinkCounters()
		if lc.Sent != 1800 || lc.Sent+lc.Duplicated != lc.Delivered+lc.Lost+lc.QueueDrops+lc.Purged+lc.Queued {
			t.Fatalf("link %+v", lc)
		}
	}
	if uint64(rb.count()) != a.LinkCounters().Delivered || uint64(ra.count()) != b.LinkCounters().Delivered {
		t.Fatal("receivers disagree with link counters")
	}
	a.Stop()
	b.Stop()
	if skb.LiveHeads() != base {
		t.Fatalf("leaked %d heads", skb.LiveHeads()-base)
	}
}

func TestPipeSteadyStateAllocs(t *testing.T) {
	if !skbRecycles {
		t.Skip("skb debugging (race or skbdebug) disables buffer recycling")
	}
	s := clock.NewSim()
	a, b := NewPipe(s, 0, impair.Config{Delay: time.Millisecond}, impair.Config{}, 1)
	free := ReceiverFunc(func(batch []*skb.SKB) {
		for _, p := range batch {
			p.Free()
		}
	})
	a.Open(free)
	b.Open(free)
	batch := make([]*skb.SKB, 32)
	step := func() {
		for k := range batch {
			batch[k] = skb.Alloc(1500)
			batch[k].Put(1500)
		}
		a.Xmit(batch)
		s.Advance(time.Millisecond)
	}
	for range 100 {
		step()
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Fatalf("%v allocations per 32-packet batch", n)
	}
	lo := NewLoopback(s, 0)
	lo.Open(free)
	lstep := func() {
		for k := range batch {
			batch[k] = skb.Alloc(1500)
			batch[k].Put(1500)
		}
		lo.Xmit(batch)
		s.Advance(0)
	}
	for range 100 {
		lstep()
	}
	if n := testing.AllocsPerRun(200, lstep); n != 0 {
		t.Fatalf("loopback: %v allocations per 32-packet batch", n)
	}
}

// BenchmarkPipe measures a 1500-byte-packet stream across a pipe with a
// delay under the Sim clock, in batches of 32: ns/op and allocs/op are per
// packet.
func BenchmarkPipe(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  impair.Config
	}{
		{"plain", impair.Config{}},
		{"delay1ms", impair.Config{Delay: time.Millisecond}},
		{"netem", impair.Config{Delay: time.Millisecond, Jitter: 200 * time.Microsecond, Loss: 0.01, Rate: 10e9}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := clock.NewSim()
			x, y := NewPipe(s, 0, bc.cfg, impair.Config{}, 1)
			var got int
			free := ReceiverFunc(func(batch []*skb.SKB) {
				got += len(batch)
				for _, p := range batch {
					p.Free()
				}
			})
			x.Open(free)
			y.Open(free)
			batch := make([]*skb.SKB, 0, 32)
			b.ReportAllocs()
			b.SetBytes(1500)
			start := time.Now()
			n := 0
			for b.Loop() {
				p := skb.Alloc(1500)
				p.Put(1500)
				batch = append(batch, p)
				if len(batch) == cap(batch) {
					x.Xmit(batch)
					batch = batch[:0]
					s.Advance(100 * time.Microsecond)
				}
				n++
			}
			x.Xmit(batch)
			s.Advance(time.Second)
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "pkts/s")
			x.Stop()
			y.Stop()
		})
	}
}

func BenchmarkLoopback(b *testing.B) {
	s := clock.NewSim()
	lo := NewLoopback(s, 0)
	lo.Open(ReceiverFunc(func(batch []*skb.SKB) {
		for _, p := range batch {
			p.Free()
		}
	}))
	batch := make([]*skb.SKB, 0, 32)
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		p := skb.Alloc(1500)
		p.Put(1500)
		batch = append(batch, p)
		if len(batch) == cap(batch) {
			lo.Xmit(batch)
			batch = batch[:0]
			s.Advance(0)
		}
		n++
	}
	lo.Xmit(batch)
	s.Advance(0)
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "pkts/s")
	lo.Stop()
}
