package p9

import (
	"context"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// BenchmarkGetattr is one Tgetattr round trip over 127.0.0.1 (the shim's
// bookkeeping included).
func BenchmarkGetattr(b *testing.B) {
	e := newEnv(b)
	_, root := e.client(b, 0)
	f := walkTo(b, root, "sys/ipv4/tcp_rmem")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := f.GetAttr(p9.AttrMaskAll); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSysctlRead is one Tread of sys/ipv4/tcp_rmem.
func BenchmarkSysctlRead(b *testing.B) {
	e := newEnv(b)
	_, root := e.client(b, 0)
	f := walkTo(b, root, "sys/ipv4/tcp_rmem")
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := f.ReadAt(buf, 0); err != nil || n == 0 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkStreamRead reads a TCP stream (B writes as fast as it can)
// through 9P with 1 MiB reads.
func BenchmarkStreamRead(b *testing.B) {
	e := newEnv(b)
	_, root := e.client(b, 0)
	_, data, bdata := e.tcpPair(b, root, 7500)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		chunk := make([]byte, 64<<10)
		for ctx.Err() == nil {
			if _, err := bdata.Write(ctx, chunk, 0); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 1<<20)
	const total = 64 << 20
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for got := 0; got < total; {
			n, err := data.ReadAt(buf, 0)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
	b.StopTimer()
	cancel()
	time.Sleep(10 * time.Millisecond)
}

// BenchmarkStreamWrite writes a TCP stream (B reads as fast as it can)
// through 9P with writes of 1 MiB less 4 KiB, one Twrite each.
func BenchmarkStreamWrite(b *testing.B) {
	e := newEnv(b)
	_, root := e.client(b, 0)
	_, data, bdata := e.tcpPair(b, root, 7501)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		buf := make([]byte, 256<<10)
		for ctx.Err() == nil {
			if _, err := bdata.Read(ctx, buf, 0); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 1<<20-4<<10)
	const total = 64 << 20
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for done := 0; done < total; {
			n, err := data.WriteAt(buf, 0)
			if err != nil {
				b.Fatal(err)
			}
			done += n
		}
	}
	b.StopTimer()
	cancel()
	time.Sleep(10 * time.Millisecond)
}
