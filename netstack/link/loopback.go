package link

import (
	"fmt"
	"sync"
	"syscall"

	"sockfs/netstack/clock"
	"sockfs/skb"
)

// DefaultLoopbackMTU is Linux's loopback MTU.
const DefaultLoopbackMTU = 65536

// Loopback is the "lo" device: what it transmits it receives. Xmit orphans
// each skb, as Linux's loopback_xmit does with skb_orphan (the sender's send
// buffer is released at once), and queues it; a timer on the device's clock,
// armed with Reset(0), drains the queue into the Receiver in batches. The
// Linux counterpart defers through the per-CPU backlog and NET_RX softirq;
// here the clock's callback path plays that part, so no goroutine is added.
type Loopback struct {
	clk   clock.Clock
	mtu   int
	stats Stats
	timer *clock.Timer

	mu        sync.Mutex // guards q, up, scheduled
	q         skb.Queue
	up        bool
	scheduled bool

	rxMu    sync.Mutex // held while delivering; guards rx, pending, batch
	rx      Receiver
	pending skb.Queue
	batch   []*skb.SKB
}

// NewLoopback returns a stopped loopback device delivering on clk. mtu <= 0
// means DefaultLoopbackMTU.
func NewLoopback(clk clock.Clock, mtu int) *Loopback {
	if mtu <= 0 {
		mtu = DefaultLoopbackMTU
	}
	l := &Loopback{clk: clk, mtu: mtu, batch: make([]*skb.SKB, 0, maxBatch)}
	l.timer = clk.NewTimer(l.deliver)
	return l
}

// Kind returns "lo".
func (l *Loopback) Kind() string { return "lo" }

// MTU returns the device MTU.
func (l *Loopback) MTU() int { return l.mtu }

// Stats returns the device counters: Tx at Xmit, Rx at delivery.
func (l *Loopback) Stats() *Stats { return &l.stats }

// Open starts delivering to rx. It fails with EBUSY if the device is open
// and EINVAL if rx is nil. It may wait for a delivery in progress.
func (l *Loopback) Open(rx Receiver) error {
	if rx == nil {
		return fmt.Errorf("link: lo: open with a nil receiver: %w", syscall.EINVAL)
	}
	l.rxMu.Lock()
	defer l.rxMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up {
		return fmt.Errorf("link: lo: already open: %w", syscall.EBUSY)
	}
	l.up, l.rx = true, rx
	return nil
}

// Stop stops delivery and frees the packets queued (counted as RxDropped).
// It waits for a NetifRx call in progress to return, so it must not be
// called from inside the Receiver. Stopping a stopped device does nothing.
func (l *Loopback) Stop() error {
	l.rxMu.Lock()
	defer l.rxMu.Unlock()
	l.mu.Lock()
	l.up, l.rx, l.scheduled = false, nil, false
	n := l.q.Len()
	l.q.Purge()
	l.mu.Unlock()
	l.timer.Stop()
	l.stats.RxDropped.Add(uint64(n))
	return nil
}

// Xmit orphans and queues every skb of batch for delivery to this device's
// Receiver from the clock's callback path, never synchronously. Packets
// longer than the MTU, or sent while the device is stopped, are freed and
// counted as TxDropped. It takes the device's queue lock briefly; safe for
// concurrent use. Mirrors loopback_xmit.
func (l *Loopback) Xmit(batch []*skb.SKB) {
	var pkts, bytes, dropped uint64
	for _, b := range batch {
		b.Orphan() // the destructor (sock_wfree) runs outside our lock
	}
	l.mu.Lock()
	for _, b := range batch {
		if n := b.Len(); n <= l.mtu && l.up {
			l.q.PushBack(b)
			pkts++
			bytes += uint64(n)
		} else {
			b.Free() // orphaned: no destructor runs under the lock
			dropped++
		}
	}
	if pkts > 0 && !l.scheduled {
		l.scheduled = true
		l.timer.Reset(0)
	}
	l.mu.Unlock()
	l.stats.TxPackets.Add(pkts)
	l.stats.TxBytes.Add(bytes)
	l.stats.TxDropped.Add(dropped)
}

// deliver is the timer callback: it takes what is queued now and hands it to
// the Receiver in batches. Packets the Receiver transmits meanwhile re-arm
// the timer and wait for the next run, so one run always ends.
func (l *Loopback) deliver() {
	l.rxMu.Lock()
	defer l.rxMu.Unlock()
	l.mu.Lock()
	l.scheduled = false
	l.pending.Splice(&l.q)
	l.mu.Unlock()
	if l.rx == nil {
		n := l.pending.Len()
		l.pending.Purge()
		l.stats.RxDropped.Add(uint64(n))
		return
	}
	for !l.pending.Empty() {
		for len(l.batch) < maxBatch && !l.pending.Empty() {
			l.batch = append(l.batch, l.pending.PopFront())
		}
		l.stats.countRx(l.batch)
		l.rx.NetifRx(l.batch)
		clear(l.batch)
		l.batch = l.batch[:0]
	}
}

var _ Device = (*Loopback)(nil)
