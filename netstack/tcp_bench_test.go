package netstack

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// BenchmarkTCPBulk moves data from one stack to another over the pipe
// under the simulated clock: 64 KiB written, the clock run, read back.
// MB/s is the CPU cost of the whole path (both stacks, one goroutine).
func BenchmarkTCPBulk(b *testing.B) { benchTCPBulk(b, addrB) }

// BenchmarkTCPBulk6 is BenchmarkTCPBulk over IPv6.
func BenchmarkTCPBulk6(b *testing.B) { benchTCPBulk(b, addr6B) }

func benchTCPBulk(b *testing.B, dst netip.Addr) {
	n := newTestNet6(b, impair.Config{}, impair.Config{}, 51)
	cli, srv := tcpPairAt(b, n, dst, 80)
	srv.SetRcvbuf(4 << 20)
	cli.SetSndbuf(4 << 20)
	chunk := make([]byte, 64<<10)
	buf := make([]byte, 256<<10)
	ctx := context.Background()
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sent := 0
		for sent < len(chunk) {
			k, _ := cli.Send(ctx, chunk[sent:])
			sent += k
			n.run(50 * time.Microsecond)
			for {
				r, err := srv.Recv(ctx, buf)
				if err != nil || r == 0 {
					break
				}
			}
		}
	}
	b.StopTimer()
	segs := float64(len(chunk)) / 1448 * float64(b.N)
	b.ReportMetric(segs/float64(b.N), "segs/op")
}

// BenchmarkTCPConnect measures connection setup and teardown: connect,
// handshake, accept, close from both sides.
func BenchmarkTCPConnect(b *testing.B) {
	n := newTestNet(b, impair.Config{}, impair.Config{}, 52)
	l := n.b.NewTCP()
	l.Bind(netip.AddrPortFrom(addrB, 80))
	l.Listen(1024)
	l.SetNonblock(true)
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := n.a.NewTCP()
		c.SetNonblock(true)
		c.Connect(ctx, netip.AddrPortFrom(addrB, 80))
		n.run(10 * time.Microsecond)
		s, err := l.Accept(ctx)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		s.Close()
		n.run(10 * time.Microsecond)
		if i%1000 == 999 {
			n.run(61 * time.Second) // let TIME_WAIT expire
		}
	}
}

// BenchmarkTCPIdleHeap reports the Go heap held per idle established
// connection (both of its sockets, on the two stacks).
func BenchmarkTCPIdleHeap(b *testing.B) {
	const conns = 500
	for i := 0; i < b.N; i++ {
		n := newTestNet(b, impair.Config{}, impair.Config{}, 53)
		l := n.b.NewTCP()
		l.Bind(netip.AddrPortFrom(addrB, 80))
		l.Listen(conns)
		l.SetNonblock(true)
		ctx := context.Background()
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		keep := make([]*TCPSock, 0, 2*conns)
		for j := 0; j < conns; j++ {
			c := n.a.NewTCP()
			c.SetNonblock(true)
			c.Connect(ctx, netip.AddrPortFrom(addrB, 80))
			n.run(10 * time.Microsecond)
			s, err := l.Accept(ctx)
			if err != nil {
				b.Fatal(err)
			}
			keep = append(keep, c, s)
		}
		n.run(time.Second)
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/conns, "heapB/conn")
		runtime.KeepAlive(keep)
		for _, tp := range keep {
			tp.Abort()
		}
		l.Close()
	}
}
