package netstack

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// BenchmarkUDPPipe sends 1400-byte datagrams from one stack to another over
// the in-memory pipe under the simulated clock, and reads them. It reports
// throughput and allocations per datagram (the goal is 0 in steady state).
func BenchmarkUDPPipe(b *testing.B) {
	n := newTestNet(b, impair.Config{}, impair.Config{}, 99)
	srv := mustUDP(b, n.b, netip.AddrPortFrom(addrB, 9000))
	srv.Mem().SetSockoptRcvbuf(1<<22, false, false)
	cli := mustUDP(b, n.a, netip.AddrPort{})
	dst := netip.AddrPortFrom(addrB, 9000)
	msg := make([]byte, 1400)
	buf := make([]byte, 2048)
	ctx := context.Background()
	const burst = 64
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		k := min(burst, b.N-i)
		for range k {
			if _, err := cli.SendTo(ctx, msg, dst); err != nil {
				b.Fatal(err)
			}
		}
		n.run(time.Microsecond)
		for range k {
			if _, _, err := srv.RecvFrom(ctx, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
