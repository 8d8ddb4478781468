package link

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"sockfs/netstack/clock"
	"sockfs/netstack/impair"
	"sockfs/skb"
)

// DefaultPipeMTU is the MTU of a pipe created with mtu <= 0 (veth's).
const DefaultPipeMTU = 1500

// PipeEnd is one end of an in-memory link, a Device of kind "pipe". What one
// end transmits arrives at the other end's Receiver, as with a Linux veth
// pair, after passing through that direction's impair.Impairer and always
// from a callback of the pipe's clock, never synchronously from Xmit.
//
// Xmit orphans each skb (veth_xmit does, through its skb_orphan path) so a
// sender's buffer is released at transmit. A packet is accepted only if
// both ends are open.
type PipeEnd struct {
	clk   clock.Clock
	mtu   int
	peer  *PipeEnd
	imp   *impair.Impairer // egress: this end -> peer
	stats Stats
	up    atomic.Bool

	rxMu sync.Mutex // held while delivering to rx; guards rx
	rx   Receiver
}

// NewPipe returns the two ends of a link delivering on clk. cfgAB impairs
// what a transmits to b, cfgBA the reverse; seed (and seed+1 for the second
// direction) makes the impairment reproducible. mtu <= 0 means
// DefaultPipeMTU. Both ends start stopped. NewPipe panics if a Config is
// invalid (see impair.Config.Validate).
func NewPipe(clk clock.Clock, mtu int, cfgAB, cfgBA impair.Config, seed int64) (a, b *PipeEnd) {
	if mtu <= 0 {
		mtu = DefaultPipeMTU
	}
	a = &PipeEnd{clk: clk, mtu: mtu}
	b = &PipeEnd{clk: clk, mtu: mtu}
	a.peer, b.peer = b, a
	a.imp = impair.New(clk, cfgAB, seed, b.netifRx)
	b.imp = impair.New(clk, cfgBA, seed+1, a.netifRx)
	return a, b
}

// Kind returns "pipe".
func (p *PipeEnd) Kind() string { return "pipe" }

// MTU returns the link MTU (both ends share it).
func (p *PipeEnd) MTU() int { return p.mtu }

// Stats returns this end's counters: Tx at Xmit, Rx at delivery to its
// Receiver.
func (p *PipeEnd) Stats() *Stats { return &p.stats }

// Peer returns the other end.
func (p *PipeEnd) Peer() *PipeEnd { return p.peer }

// Open starts delivering what the peer sends to rx. It fails with EBUSY if
// this end is open and EINVAL if rx is nil. It may wait for a delivery in
// progress.
func (p *PipeEnd) Open(rx Receiver) error {
	if rx == nil {
		return fmt.Errorf("link: pipe: open with a nil receiver: %w", syscall.EINVAL)
	}
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	if p.rx != nil {
		return fmt.Errorf("link: pipe: already open: %w", syscall.EBUSY)
	}
	p.rx = rx
	p.up.Store(true)
	return nil
}

// Stop stops delivery to this end and frees what is in flight in both
// directions (counted as Purged in the link counters: a link with one end
// down carries nothing). It waits for a NetifRx call in progress to return,
// so it must not be called from inside this end's Receiver. A packet whose
// Xmit races with Stop may still be delivered to the peer. Stopping a
// stopped end does nothing.
func (p *PipeEnd) Stop() error {
	p.up.Store(false)
	p.rxMu.Lock()
	p.rx = nil
	p.rxMu.Unlock()
	p.imp.Purge()
	p.peer.imp.Purge()
	return nil
}

// Xmit sends every skb of batch toward the peer through this direction's
// impairment, taking ownership. Packets longer than the MTU, or sent while
// either end is stopped, are freed and counted as TxDropped. It takes the
// impairer's lock briefly and never calls a Receiver; safe for concurrent
// use. Mirrors veth_xmit.
func (p *PipeEnd) Xmit(batch []*skb.SKB) {
	if !p.up.Load() || !p.peer.up.Load() {
		for _, b := range batch {
			b.Free()
		}
		p.stats.TxDropped.Add(uint64(len(batch)))
		return
	}
	var bytes uint64
	fits := true
	for _, b := range batch {
		n := b.Len()
		fits = fits && n <= p.mtu
		bytes += uint64(n)
	}
	if fits { // the common case: one lock for the whole batch
		p.imp.EnqueueBatch(batch) // orphans each
		p.stats.TxPackets.Add(uint64(len(batch)))
		p.stats.TxBytes.Add(bytes)
		return
	}
	for _, b := range batch {
		if n := b.Len(); n > p.mtu {
			b.Free()
			p.stats.TxDropped.Add(1)
		} else {
			p.imp.Enqueue(b)
			p.stats.TxPackets.Add(1)
			p.stats.TxBytes.Add(uint64(n))
		}
	}
}

// netifRx receives a batch from the peer's impairer (a clock callback).
func (p *PipeEnd) netifRx(batch []*skb.SKB) {
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	if p.rx == nil {
		p.stats.dropRx(batch)
		return
	}
	p.stats.countRx(batch)
	p.rx.NetifRx(batch)
}

// SetImpair changes the impairment of this end's egress direction for
// packets sent from now on. Safe on a live pipe, from any goroutine; the
// error wraps syscall.EINVAL if cfg is invalid.
func (p *PipeEnd) SetImpair(cfg impair.Config) error { return p.imp.SetConfig(cfg) }

// Impair returns the impairment of this end's egress direction.
func (p *PipeEnd) Impair() impair.Config { return p.imp.Config() }

// LinkCounters returns the counters of this end's egress direction: Sent
// (accepted by Xmit) = Delivered to the peer - Duplicated + Lost +
// QueueDrops + Purged + Queued.
func (p *PipeEnd) LinkCounters() impair.Counters { return p.imp.Counters() }

var _ Device = (*PipeEnd)(nil)
