package netstack

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Path-MTU discovery (RFC 1191), the route's half. What the stack learns
// from an ICMP fragmentation-needed is kept per destination, as Linux keeps
// it in a next-hop exception (struct fib_nh_exception: fnhe_pmtu,
// fnhe_mtu_locked, fnhe_expires) next to the route rather than in it: the
// route stays what the administrator made, the exception lowers its MTU for
// one destination until net.ipv4.route.mtu_expires passes.

// fnhe is one destination's learned path MTU. Mirrors fib_nh_exception.
type fnhe struct {
	mtu     int
	locked  bool  // below route/min_pmtu: raised to it, and no DF (rt_mtu_locked)
	expires int64 // clock time, ns
}

// pmtuTable holds the exceptions. n counts them, so that a stack which has
// learned nothing (the usual case) pays one atomic load per lookup.
type pmtuTable struct {
	n  atomic.Int32
	mu sync.RWMutex // read on every packet to a destination with an entry
	m  map[netip.Addr]fnhe
}

// pathMTU returns the MTU of the path to dst through rt, and whether it is
// locked (then IP must not set DF: ip_dont_fragment). An expired exception
// is removed on the way. Mirrors ipv4_mtu.
func (s *Stack) pathMTU(rt Route, dst netip.Addr) (mtu int, locked bool) {
	mtu = rt.Dev.MTU()
	t := &s.pmtu
	if t.n.Load() == 0 {
		return mtu, false
	}
	t.mu.RLock()
	e, ok := t.m[dst]
	t.mu.RUnlock()
	if !ok {
		return mtu, false
	}
	if s.clock.Nanotime() >= e.expires {
		t.mu.Lock()
		if e2, ok := t.m[dst]; ok && e2.expires == e.expires {
			delete(t.m, dst)
			t.n.Add(-1)
		}
		t.mu.Unlock()
		return mtu, false
	}
	return min(mtu, e.mtu), e.locked
}

// updatePmtu records that the path to dst through rt carries at most mtu
// bytes. It never raises a path's MTU; a value below route/min_pmtu (an
// attack, or a broken router) is raised to it and locked; an unchanged
// value refreshes the expiry only once half of it has passed. Mirrors
// __ip_rt_update_pmtu + update_or_create_fnhe.
func (s *Stack) updatePmtu(rt Route, dst netip.Addr, mtu int) {
	old, locked := s.pathMTU(rt, dst)
	if locked || old < mtu {
		return
	}
	sc := s.net.Sysctls
	lock := false
	if minp := sc.RouteMinPmtu(); mtu < minp {
		lock = true
		mtu = min(old, minp)
	}
	now := s.clock.Nanotime()
	expires := int64(sc.RouteMtuExpires())
	t := &s.pmtu
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[dst]
	if ok && e.mtu == mtu && !lock && now < e.expires-expires/2 {
		return
	}
	if t.m == nil {
		t.m = make(map[netip.Addr]fnhe)
	}
	if !ok {
		t.n.Add(1)
	}
	t.m[dst] = fnhe{mtu: mtu, locked: lock, expires: now + expires}
}

// PMTUEntry is a learned path MTU, as `ip route show cache` lists it.
type PMTUEntry struct {
	Dst     netip.Addr
	Route   Route // the route the destination takes
	MTU     int
	Locked  bool
	Expires time.Duration // from now
}

// PMTUCache lists the path MTUs the stack has learned and not yet
// forgotten, by destination.
func (s *Stack) PMTUCache() []PMTUEntry {
	now := s.clock.Nanotime()
	t := &s.pmtu
	t.mu.RLock()
	var out []PMTUEntry
	for dst, e := range t.m {
		if now < e.expires {
			out = append(out, PMTUEntry{Dst: dst, MTU: e.mtu, Locked: e.locked, Expires: time.Duration(e.expires - now)})
		}
	}
	t.mu.RUnlock()
	for i := range out {
		out[i].Route, _ = s.routes.lookup(out[i].Dst)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst.Less(out[j].Dst) })
	return out
}
