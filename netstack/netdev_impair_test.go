package netstack

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
)

// pingRTT pings b from a once and returns the simulated round-trip time, or
// the error (a lost ping times out through ctx). With timeout 0 there is no
// timeout, and the time is exact: no other timer can move the simulated
// clock past the reply before the pinging goroutine reports it.
func pingRTT(n *testNet, seq uint16, timeout time.Duration) (time.Duration, error) {
	start := n.clk.Nanotime()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	sent := n.da.Device().Stats().Snapshot().TxPackets
	go func() { done <- n.a.Ping(ctx, addrB, seq, []byte("impair")) }()
	// Arm the timeout only once the echo is on the wire, so the simulated
	// clock cannot reach it before the pinging goroutine has run.
	for n.da.Device().Stats().Snapshot().TxPackets == sent {
		time.Sleep(20 * time.Microsecond)
	}
	if timeout > 0 {
		tm := n.clk.AfterFunc(timeout, cancel)
		defer tm.Stop()
	}
	err := await(n, done)
	return time.Duration(n.clk.Nanotime() - start), err
}

// Delay on b's outbound side adds to every round trip; on its inbound
// side too; "off" takes it away again.
func TestDeviceImpairDelay(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 61)
	base, err := pingRTT(n, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.db.SetImpair(Out, impair.Config{Delay: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rtt, err := pingRTT(n, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := rtt - base; d < 50*time.Millisecond || d > 51*time.Millisecond {
		t.Fatalf("out delay 50ms: rtt %v, was %v", rtt, base)
	}
	if err := n.db.SetImpair(In, impair.Config{Delay: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if rtt, err = pingRTT(n, 3, 0); err != nil || rtt-base < 70*time.Millisecond || rtt-base > 71*time.Millisecond {
		t.Fatalf("in 20ms + out 50ms: rtt %v (base %v), %v", rtt, base, err)
	}
	if cfg, cnt := n.db.Impair(In); cfg.Delay != 20*time.Millisecond || cnt.Delivered == 0 {
		t.Fatalf("Impair(In) = %v, %+v", cfg, cnt)
	}
	n.db.SetImpair(In, impair.Config{})
	n.db.SetImpair(Out, impair.Config{})
	if rtt, err = pingRTT(n, 4, 0); err != nil || rtt != base {
		t.Fatalf("after off: rtt %v, want %v (%v)", rtt, base, err)
	}
	if cfg, _ := n.db.Impair(Out); cfg != (impair.Config{}) {
		t.Fatalf("Impair(Out) after off = %v", cfg)
	}
}

// With 10% loss inbound, about a tenth of 1000 pings go unanswered.
func TestDeviceImpairLoss(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 62)
	if err := n.db.SetImpair(In, impair.Config{Loss: 0.10}); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for seq := range uint16(1000) {
		if _, err := pingRTT(n, seq, 100*time.Millisecond); err != nil {
			lost++
		}
	}
	if lost < 70 || lost > 130 {
		t.Fatalf("%d of 1000 pings lost at 10%% loss", lost)
	}
	_, cnt := n.db.Impair(In)
	if int(cnt.Lost) != lost || n.b.mib.Get(memctl.IcmpInEchos) != uint64(1000-lost) {
		t.Fatalf("lost %d, stage counted %d, b saw %d echoes", lost, cnt.Lost, n.b.mib.Get(memctl.IcmpInEchos))
	}
}

// A bad configuration is refused and changes nothing.
func TestDeviceImpairInvalid(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 63)
	if err := n.db.SetImpair(Out, impair.Config{Delay: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	err := n.db.SetImpair(Out, impair.Config{Loss: 1.5})
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("loss 150%%: %v", err)
	}
	if cfg, _ := n.db.Impair(Out); cfg != (impair.Config{Delay: 10 * time.Millisecond}) {
		t.Fatalf("config changed by a bad write: %v", cfg)
	}
}
