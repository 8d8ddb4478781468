package netstack

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
)

// Route is one entry of the IPv4 routing table.
type Route struct {
	Dst     netip.Prefix // destination network; 0.0.0.0/0 is the default route
	Gateway netip.Addr   // next hop; invalid (zero) for a connected route
	Dev     *NetDevice   // output device
	Src     netip.Addr   // preferred source address
	// Connected marks a route derived from an interface address (proto
	// kernel scope link in `ip route`); it goes away with the address.
	Connected bool
	// Tag is Plan 9's route tag (4 characters, "none" when unset): `flush
	// tag` removes the routes that carry it.
	Tag string
	// Broadcast is set by routeOutput on the route it returns for a
	// broadcast destination (RTCF_BROADCAST); a table entry never has it.
	Broadcast bool
}

// String formats a route like `ip route` does.
func (r Route) String() string {
	var b strings.Builder
	if r.Dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gateway.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Gateway)
	}
	fmt.Fprintf(&b, " dev %s", r.Dev.Name())
	if r.Connected {
		b.WriteString(" proto kernel scope link")
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", r.Src)
	}
	return b.String()
}

// routeTable is the FIB: longest-prefix match over a small slice, kept
// sorted by prefix length (longest first) so the first match wins. A stack
// has a handful of routes, so a linear scan beats a trie here.
type routeTable struct {
	mu     sync.RWMutex
	routes []Route
}

// lookup returns the route for dst. Mirrors fib_lookup for the main table.
func (t *routeTable) lookup(dst netip.Addr) (Route, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, r := range t.routes {
		if r.Dst.Contains(dst) {
			return r, true
		}
	}
	return Route{}, false
}

// add inserts r; an entry with the same destination is an error (EEXIST in
// `ip route add`).
func (t *routeTable) add(r Route) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Dst = r.Dst.Masked()
	for _, old := range t.routes {
		if old.Dst == r.Dst {
			return fmt.Errorf("route %s: %w", r.Dst, errExist)
		}
	}
	t.routes = append(t.routes, r)
	sort.SliceStable(t.routes, func(i, j int) bool { return t.routes[i].Dst.Bits() > t.routes[j].Dst.Bits() })
	return nil
}

// del removes the route to dst.
func (t *routeTable) del(dst netip.Prefix) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	dst = dst.Masked()
	for i, r := range t.routes {
		if r.Dst == dst {
			t.routes = append(t.routes[:i], t.routes[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no route %s: %w", dst, errNoRoute)
}

// delDev removes every route through dev (the device went away).
func (t *routeTable) delDev(dev *NetDevice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.routes[:0]
	for _, r := range t.routes {
		if r.Dev != dev {
			kept = append(kept, r)
		}
	}
	t.routes = kept
}

// checkFree reports EEXIST if a route to dst is in the table.
func (t *routeTable) checkFree(dst netip.Prefix) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, r := range t.routes {
		if r.Dst == dst.Masked() {
			return fmt.Errorf("route %s: %w", dst.Masked(), errExist)
		}
	}
	return nil
}

// delConnected removes the connected route to dst with source src that an
// address brought to dev, and reports whether there was one.
func (t *routeTable) delConnected(dev *NetDevice, dst netip.Prefix, src netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.routes {
		if r.Connected && r.Dev == dev && r.Dst == dst && r.Src == src {
			t.routes = append(t.routes[:i], t.routes[i+1:]...)
			return true
		}
	}
	return false
}

// flush removes the routes that are not connected ones (and carry tag, if
// tag is not empty).
func (t *routeTable) flush(tag string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.routes[:0]
	for _, r := range t.routes {
		if r.Connected || (tag != "" && r.Tag != tag) {
			kept = append(kept, r)
		}
	}
	clear(t.routes[len(kept):])
	t.routes = kept
}

// snapshot returns a copy of the table.
func (t *routeTable) snapshot() []Route {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]Route(nil), t.routes...)
}

// selfIfAny is the destination a connect or send to the unspecified
// address reaches: this host, on the loopback address of its family
// (0.0.0.0 is 127.0.0.1, :: is ::1). Mirrors ip_route_output's daddr 0
// and tcp_v6_connect / ip6_datagram_connect's "connect to self if
// INADDR_ANY".
func selfIfAny(a netip.Addr) netip.Addr {
	switch {
	case a == netip.IPv4Unspecified():
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case a == netip.IPv6Unspecified():
		return netip.IPv6Loopback()
	}
	return a
}
