package netstack

import (
	"sync"
	"sync/atomic"

	"sockfs/netstack/impair"
	"sockfs/skb"
)

// Direction names one side of a device: packets it receives (In) or sends
// (Out).
type Direction int

// The two directions of a device.
const (
	In Direction = iota
	Out
)

func (d Direction) String() string {
	if d == In {
		return "in"
	}
	return "out"
}

// devImpair is a device's optional impairment, one netem-like stage per
// direction (Linux would put a netem qdisc on egress and an ifb device with
// netem for ingress; here both are a stage in front of the stack). A stage
// is created the first time a direction is configured and stays: setting
// "off" bypasses it for new packets while packets it already holds still
// arrive at their time. The fast path is one atomic load per packet.
type devImpair struct {
	mu     sync.Mutex // serialises SetImpair
	stages [2]atomic.Pointer[impair.Impairer]
	active [2]atomic.Bool
	gro    groNode // after the In stage; only rxDeliver touches it
}

// SetImpair sets the impairment of packets d receives (In) or sends (Out).
// The zero Config turns it off. An invalid cfg fails with an error wrapping
// EINVAL and changes nothing.
func (d *NetDevice) SetImpair(dir Direction, cfg impair.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	im := &d.imp
	im.mu.Lock()
	defer im.mu.Unlock()
	st := im.stages[dir].Load()
	if st == nil {
		if cfg == (impair.Config{}) {
			return nil
		}
		deliver := d.rxDeliver
		if dir == Out {
			deliver = d.txDeliver
		} else {
			im.gro.deliver = func(b *skb.SKB) { d.stack.ipRcv(d, b, &d.rxi) }
		}
		seed := int64(d.stack.rand())
		st = impair.New(d.stack.clock, cfg, seed, deliver)
		im.stages[dir].Store(st)
	} else if err := st.SetConfig(cfg); err != nil {
		return err
	}
	im.active[dir].Store(cfg != (impair.Config{}))
	return nil
}

// Impair returns the impairment in force in direction dir and the stage's
// counters (zero if the direction was never impaired).
func (d *NetDevice) Impair(dir Direction) (impair.Config, impair.Counters) {
	st := d.imp.stages[dir].Load()
	if st == nil || !d.imp.active[dir].Load() {
		var c impair.Counters
		if st != nil {
			c = st.Counters()
		}
		return impair.Config{}, c
	}
	return st.Config(), st.Counters()
}

// impairStage returns the active stage for dir, or nil.
func (d *NetDevice) impairStage(dir Direction) *impair.Impairer {
	if !d.imp.active[dir].Load() {
		return nil
	}
	return d.imp.stages[dir].Load()
}

// rxDeliver hands packets released by the In stage to IP through GRO, from
// the clock's goroutine.
//
// This is where the wire ends and the receiving NIC's NAPI poll begins, so
// it is where GRO runs (napi_gro_receive), and each call is one poll: the
// stage's timer callback (Impairer.fire) hands over every packet due, in
// calls of at most 64 (impair's maxBatch, NAPI's default weight), one call
// at a time. A call is therefore the natural batch boundary: GRO merges
// within it and completes whatever it holds at its end, as
// napi_complete_done's napi_gro_flush does when a poll ends, before the
// batch's deferred ACKs go out (they must acknowledge the merged data).
// Linux keeps a held packet across a poll that used its whole budget when
// it is younger than a jiffy; here nothing outlives a call, so no packet
// waits for a timer that may not come.
func (d *NetDevice) rxDeliver(batch []*skb.SKB) {
	g := &d.imp.gro
	for i, b := range batch {
		b.Dev = d.index
		g.receive(b)
		batch[i] = nil
	}
	g.flush()
	d.rxi.flush()
}

// txDeliver hands packets released by the Out stage to the device.
func (d *NetDevice) txDeliver(batch []*skb.SKB) { d.dev.Xmit(batch) }

// closeImpair frees whatever the stages still hold.
func (d *NetDevice) closeImpair() {
	for i := range d.imp.stages {
		if st := d.imp.stages[i].Load(); st != nil {
			st.Close()
		}
	}
}
