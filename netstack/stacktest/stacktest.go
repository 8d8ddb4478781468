// Package stacktest builds the small networks that tests of the layers
// above netstack (the file tree, its FUSE and 9P frontends, the tools)
// share: real stacks on the real clock, joined by an in-memory pipe.
package stacktest

import (
	"net/netip"
	"testing"

	"sockfs/netstack"
	"sockfs/netstack/clock"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
)

// Pair returns two stacks on one real clock joined by an unimpaired pipe:
// a at 198.18.0.1/24, b at 198.18.0.2/24. t.Cleanup closes them; cleanups
// registered after Pair (unmounts, servers) run before that.
func Pair(t testing.TB) (a, b *netstack.Stack) {
	t.Helper()
	return PairWrapped(t, nil)
}

// PairWrapped is Pair with a's end of the pipe passed through wrapA (if
// not nil) before a uses it, so that a test can stand a device of its own
// between a and the pipe.
func PairWrapped(t testing.TB, wrapA func(link.Device) link.Device) (a, b *netstack.Stack) {
	t.Helper()
	clk := clock.NewReal()
	a = netstack.New(netstack.Options{Clock: clk, Seed: 1})
	b = netstack.New(netstack.Options{Clock: clk, Seed: 2})
	t.Cleanup(func() {
		a.Close()
		b.Close()
		clk.Close()
	})
	var pa, pb link.Device
	pa, pb = link.NewPipe(clk, 0, impair.Config{}, impair.Config{}, 1)
	if wrapA != nil {
		pa = wrapA(pa)
	}
	for _, x := range []struct {
		s    *netstack.Stack
		dev  link.Device
		addr string
	}{{a, pa, "198.18.0.1/24"}, {b, pb, "198.18.0.2/24"}} {
		d, err := x.s.AddDevice(x.dev)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.s.AddAddress(d, netip.MustParsePrefix(x.addr)); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}
