package p9

import (
	"context"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"

	"sockfs/fs"
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
	chunk := make([]byte, 64<<10)
	streamBench(b, 7500, func(ctx context.Context, bdata fs.Handle) error {
		_, err := bdata.Write(ctx, chunk, 0)
		return err
	}, func(data p9.File, buf []byte) (int, error) { return data.ReadAt(buf, 0) }, 1<<20)
}

// BenchmarkStreamWrite writes a TCP stream (B reads as fast as it can)
// through 9P with writes of 1 MiB less 4 KiB, one Twrite each.
func BenchmarkStreamWrite(b *testing.B) {
	sink := make([]byte, 256<<10)
	streamBench(b, 7501, func(ctx context.Context, bdata fs.Handle) error {
		_, err := bdata.Read(ctx, sink, 0)
		return err
	}, func(data p9.File, buf []byte) (int, error) { return data.WriteAt(buf, 0) }, 1<<20-4<<10)
}

// streamBench moves 64 MiB per op through data with op and a buffer of
// size bytes, while peer keeps B's end of the connection busy (until it
// fails or the benchmark ends).
func streamBench(b *testing.B, port int, peer func(context.Context, fs.Handle) error,
	op func(p9.File, []byte) (int, error), size int) {
	e := newEnv(b)
	_, root := e.client(b, 0)
	_, data, bdata := e.tcpPair(b, root, port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if peer(ctx, bdata) != nil {
				return
			}
		}
	}()
	buf := make([]byte, size)
	const total = 64 << 20
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for done := 0; done < total; {
			n, err := op(data, buf)
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
