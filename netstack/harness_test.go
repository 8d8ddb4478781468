package netstack

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"sockfs/netstack/clock"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// testNet is two stacks joined by an in-memory pipe under a simulated clock:
// a = 198.18.0.1/24, b = 198.18.0.2/24 (the benchmark range of RFC 2544).
type testNet struct {
	t      testing.TB
	clk    *clock.Sim
	a, b   *Stack
	pa, pb *link.PipeEnd
	da, db *NetDevice
}

var (
	addrA = netip.MustParseAddr("198.18.0.1")
	addrB = netip.MustParseAddr("198.18.0.2")
)

func newTestNet(t testing.TB, ab, ba impair.Config, seed int64) *testNet {
	t.Helper()
	return newTestNetDev(t, ab, ba, seed, nil)
}

// newTestNetDev is newTestNet with b's end of the pipe wrapped by wrapB
// (nil: as it is) before b's stack attaches it.
func newTestNetDev(t testing.TB, ab, ba impair.Config, seed int64, wrapB func(*link.PipeEnd) link.Device) *testNet {
	t.Helper()
	heads := skb.LiveHeads()
	n := &testNet{t: t, clk: clock.NewSim()}
	n.a = New(Options{Clock: n.clk, Seed: uint64(seed) + 1})
	n.b = New(Options{Clock: n.clk, Seed: uint64(seed) + 2})
	n.pa, n.pb = link.NewPipe(n.clk, link.DefaultPipeMTU, ab, ba, seed)
	var devB link.Device = n.pb
	if wrapB != nil {
		devB = wrapB(n.pb)
	}
	var err error
	if n.da, err = n.a.AddDevice(n.pa); err != nil {
		t.Fatal(err)
	}
	if n.db, err = n.b.AddDevice(devB); err != nil {
		t.Fatal(err)
	}
	if err := n.a.AddAddress(n.da, netip.PrefixFrom(addrA, 24)); err != nil {
		t.Fatal(err)
	}
	if err := n.b.AddAddress(n.db, netip.PrefixFrom(addrB, 24)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.a.Close()
		n.b.Close()
		if d := skb.LiveHeads() - heads; d != 0 && !t.Failed() {
			t.Errorf("%d skb heads leaked", d)
		}
	})
	return n
}

// run advances simulated time by d, delivering whatever is in flight.
func (n *testNet) run(d time.Duration) { n.clk.Advance(d) }

// drive steps the simulated clock until cond holds, yielding to goroutines
// that are about to arm timers (a blocked call in another goroutine). It
// fails the test after limit of simulated time or 10 s of real time.
func (n *testNet) drive(cond func() bool, limit time.Duration) {
	n.t.Helper()
	start := n.clk.Nanotime()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Duration(n.clk.Nanotime()-start) > limit || time.Now().After(deadline) {
			n.t.Fatalf("condition not reached after %v simulated", time.Duration(n.clk.Nanotime()-start))
		}
		// A goroutine woken by a step (a blocked reader or writer, its
		// deadline passed) must get to run before time moves on, or
		// the clock races through backed-off timers while it waits for a
		// CPU. So pace the clock: at most 1000x the wall clock per jump.
		// Nor may it run ahead of a user call that owns a socket: its
		// segments wait on the backlog, not for the lock, so nothing
		// else would hold the clock back (user work takes no simulated
		// time).
		for (n.a.tcpOwnedForTest() || n.b.tcpOwnedForTest()) && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		// Nor may it jump far ahead (to a blocked call's own deadline)
		// while a goroutine just woken has not yet run: on a loaded
		// machine one Gosched is not enough, and the call then saw its
		// deadline pass with its condition met (TestTCPWaitOutqEmpty
		// took 10 s). Before a jump of over 100 ms, let the wall clock
		// give woken goroutines time and look again.
		if next, ok := n.clk.Next(); ok && next-n.clk.Nanotime() > int64(100*time.Millisecond) {
			time.Sleep(2 * time.Millisecond)
			if cond() {
				break
			}
		}
		before := n.clk.Nanotime()
		if !n.clk.Step() {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if pause := time.Duration(n.clk.Nanotime()-before) / 1000; pause > 10*time.Microsecond {
			time.Sleep(min(pause, time.Millisecond))
		} else {
			runtime.Gosched()
		}
	}
}

// await drives the simulated clock until ch yields a value, and returns it:
// the way to wait for a call blocked in another goroutine.
func await[T any](n *testNet, ch <-chan T) T {
	n.t.Helper()
	var v T
	n.drive(func() bool {
		select {
		case v = <-ch:
			return true
		default:
			return false
		}
	}, 10*time.Second)
	return v
}
