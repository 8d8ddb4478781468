//go:build !race && !skbdebug

package netstack

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// Allocation checks for the steady state, run by `make test` without the
// race detector (which turns on skb's debug mode: freed buffers are
// poisoned, never recycled, so every packet allocates). The goal is no
// allocation per packet; the tests allow 0.01 per wire packet so that a
// cache refill now and then does not fail them, while one allocation per
// packet on any hot path does.

const allocsPerPacketMax = 0.01

// TestAllocsTCPBulk moves 64 KiB per run between two stacks over the pipe:
// TSO-sized skbs, software GSO into 45 wire segments (the pipe has no
// TSO), receive, ACKs, reads.
func TestAllocsTCPBulk(t *testing.T) {
	for _, cc := range []string{"cubic", "bbr"} { // bbr: the rate sampler, pacing and its model per ACK
		t.Run(cc, func(t *testing.T) { allocsTCPBulk(t, cc, addrB) })
	}
	t.Run("ipv6", func(t *testing.T) { allocsTCPBulk(t, "cubic", addr6B) })
}

func allocsTCPBulk(t *testing.T, cc string, dst netip.Addr) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 51)
	cli, srv := tcpPairAt(t, n, dst, 80)
	if err := cli.SetCongestion(cc, true); err != nil {
		t.Fatal(err)
	}
	srv.SetRcvbuf(4 << 20)
	cli.SetSndbuf(4 << 20)
	chunk := make([]byte, 64<<10)
	buf := make([]byte, 256<<10)
	ctx := context.Background()
	step := func() {
		for sent := 0; sent < len(chunk); {
			k, _ := cli.Send(ctx, chunk[sent:])
			sent += k
			n.run(50 * time.Microsecond)
			for {
				if r, err := srv.Recv(ctx, buf); err != nil || r == 0 {
					break
				}
			}
		}
	}
	for range 64 { // warm the caches and the windows
		step()
	}
	segs := float64(len(chunk)) / 1448
	if a := testing.AllocsPerRun(200, step); a/segs > allocsPerPacketMax {
		t.Fatalf("%.2f allocations per 64 KiB (%.4f per wire segment), want at most %v per segment", a, a/segs, allocsPerPacketMax)
	}
}

// TestAllocsUDPPipe sends and reads bursts of 64 datagrams of 1400 bytes.
func TestAllocsUDPPipe(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { allocsUDPPipe(t, addrB) })
	t.Run("ipv6", func(t *testing.T) { allocsUDPPipe(t, addr6B) })
}

func allocsUDPPipe(t *testing.T, to netip.Addr) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 99)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(to, 9000))
	srv.Mem().SetSockoptRcvbuf(1<<22, false, false)
	cli := mustUDP(t, n.a, netip.AddrPortFrom(unspecFor(to), 0))
	dst := netip.AddrPortFrom(to, 9000)
	msg := make([]byte, 1400)
	buf := make([]byte, 2048)
	ctx := context.Background()
	const burst = 64
	step := func() {
		for range burst {
			if _, err := cli.SendTo(ctx, msg, dst); err != nil {
				t.Fatal(err)
			}
		}
		n.run(time.Microsecond)
		for range burst {
			if _, _, err := srv.RecvFrom(ctx, buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 16 {
		step()
	}
	if a := testing.AllocsPerRun(200, step); a/burst > allocsPerPacketMax {
		t.Fatalf("%.2f allocations per %d datagrams, want at most %v per datagram", a, burst, allocsPerPacketMax)
	}
}
