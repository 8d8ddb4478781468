package p9

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"

	sfs "sockfs/fs"
)

// nullDir is a one-file tree whose file, data, reads zeros and discards
// writes without blocking: the server core's own cost, with no stack
// behind it (bench/peers/nullfs serves the same tree for `make bench`).
type nullDir struct{}

func (nullDir) Qid() sfs.Qid   { return sfs.Qid{Path: 1, Type: sfs.QTDir} }
func (nullDir) Stat() sfs.Stat { return sfs.Stat{Name: "/", Mode: fs.ModeDir | 0o555} }
func (nullDir) List() []sfs.Node {
	return []sfs.Node{nullData{}}
}

func (nullDir) Lookup(name string) (sfs.Node, error) {
	if name != "data" {
		return nil, syscall.ENOENT
	}
	return nullData{}, nil
}

type nullData struct{}

func (nullData) Qid() sfs.Qid   { return sfs.Qid{Path: 2} }
func (nullData) Stat() sfs.Stat { return sfs.Stat{Name: "data", Mode: 0o666, Stream: true} }
func (d nullData) Open(context.Context, sfs.OpenReq) (sfs.Handle, error) {
	return d, nil
}
func (nullData) Read(_ context.Context, p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}
func (nullData) Write(_ context.Context, p []byte, _ int64) (int, error) { return len(p), nil }
func (nullData) Poll(ev sfs.Event, _ func()) sfs.Event                   { return ev }
func (nullData) Release()                                                {}
func (nullData) Tryable() bool                                           { return true }

// serveNull serves nullDir on a loopback port and returns its address.
func serveNull(t testing.TB) string {
	t.Helper()
	return serveRoot(t, nullDir{})
}

// serveRoot serves root on a loopback port until the test ends and returns
// its address.
func serveRoot(t testing.TB, root sfs.Dir) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- Serve(ctx, ln, root, Options{Logger: log}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return")
		}
	})
	return ln.Addr().String()
}

// roundTrip sends the prepared message req and reads the reply into buf
// (which must hold it), without allocating; it returns the reply.
func roundTrip(t testing.TB, nc net.Conn, req, buf []byte) []byte {
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(nc, buf[:4]); err != nil {
		t.Fatal(err)
	}
	n := int(le.Uint32(buf))
	if n < hdrLen || n > len(buf) {
		t.Fatalf("reply of %d bytes", n)
	}
	if _, err := io.ReadFull(nc, buf[4:n]); err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// TestServerReadWriteAllocatesNothing checks that the server's steady-state
// Tread and Twrite path (frame in, handle call, reply out) allocates
// nothing: frames, requests and replies are recycled. The client side of
// the measurement (prepared frames, one reply buffer) allocates nothing
// either, so every allocation counted is the server's. (Run by `make
// test`'s non-race pass: the race detector allocates.)
func TestServerReadWriteAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, size := range []int{4 << 10, 128 << 10, DefaultMsize - ioHdr} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			addr := serveNull(t)
			c := dialMsize(t, addr, dialectL, 0, uint32(size)+4096)
			c.walkOpen(t, 1, 2, "data")
			c.nc.SetDeadline(time.Time{})
			rd := tread(7, 2, 0, uint32(size))
			wr := twrite(8, 2, make([]byte, size))
			buf := make([]byte, size+64)
			for _, tc := range []struct {
				name string
				req  []byte
				typ  uint8
			}{{"Tread", rd, msgRread}, {"Twrite", wr, msgRwrite}} {
				for range 50 { // warm the pools
					roundTrip(t, c.nc, tc.req, buf)
				}
				allocs := testing.AllocsPerRun(500, func() {
					if r := roundTrip(t, c.nc, tc.req, buf); r[4] != tc.typ {
						t.Fatalf("%s: reply type %d", tc.name, r[4])
					}
				})
				if allocs != 0 {
					t.Errorf("%s of %d bytes: %v allocations per request, want 0", tc.name, size, allocs)
				}
			}
		})
	}
}

// benchNull reads or writes the null file through hugelgupf/p9's client
// (the files peer's) at msize iosize+4 KiB (1 MiB at most), in iosize
// requests.
func benchNull(b *testing.B, write bool, iosize int) {
	addr := serveNull(b)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c, err := p9.NewClient(nc, p9.WithMessageSize(min(uint32(iosize+4096), DefaultMsize)))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	root, err := c.Attach("")
	if err != nil {
		b.Fatal(err)
	}
	_, f, err := root.Walk([]string{"data"})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := f.Open(p9.ReadWrite); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, iosize)
	b.SetBytes(int64(iosize))
	b.ResetTimer()
	for range b.N {
		var n int
		if write {
			n, err = f.WriteAt(buf, 0)
		} else {
			n, err = f.ReadAt(buf, 0)
		}
		if err != nil || n != iosize {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkNullRead and BenchmarkNullWrite move the null file's data in
// 128 KiB (make bench's request size) and 1 MiB requests: the server
// core's ceiling with hugelgupf/p9's client.
func BenchmarkNullRead(b *testing.B) {
	b.Run("128K", func(b *testing.B) { benchNull(b, false, 128<<10) })
	b.Run("1M", func(b *testing.B) { benchNull(b, false, DefaultMsize-4096) })
}

func BenchmarkNullWrite(b *testing.B) {
	b.Run("128K", func(b *testing.B) { benchNull(b, true, 128<<10) })
	b.Run("1M", func(b *testing.B) { benchNull(b, true, DefaultMsize-4096) })
}

// TestDataIOInline: on a TCP conversation's data, a Tread of bytes already
// queued and a Twrite that fits the send buffer are answered by the
// connection's reading goroutine, without a hand-off to a worker; a Tread
// with nothing queued, or a Twrite the peer's window cannot take, goes to
// a worker and is answered once the peer writes (reads) — with every byte
// in order.
func TestDataIOInline(t *testing.T) {
	e := newEnv(t)
	n, bdata := e.localPair(t, 7400)
	rc := dialIn(t, e.addr, dialectL, 0)
	rc.walkOpen(t, 1, 2, "tcp", n, "data")
	rc.nc.SetDeadline(time.Time{})
	// A's data, opened locally only to see when the bytes have arrived.
	adata := local(t, e.ta, "tcp/"+n+"/data")
	start := handoffs.Load()
	for i := range 50 {
		msg := "queued " + strconv.Itoa(i)
		write(t, bdata, msg)
		deadline := time.Now().Add(5 * time.Second)
		for adata.Poll(sfs.PollIn, nil)&sfs.PollIn == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		got := ""
		for got != msg && time.Now().Before(deadline) {
			got += rc.read(t, 2, 8192)
		}
		if got != msg {
			t.Fatalf("read %q, want %q", got, msg)
		}
		rc.write(t, 2, "fits "+strconv.Itoa(i))
	}
	if n := handoffs.Load() - start; n != 0 {
		t.Fatalf("%d of 100 reads and writes that need not block went to a worker", n)
	}
	want := ""
	for i := range 50 {
		want += "fits " + strconv.Itoa(i)
	}
	if got := drainString(t, bdata, len(want)); got != want {
		t.Fatalf("peer got %q, want %q", got, want)
	}

	// Nothing queued: handed off, answered once B writes.
	start = handoffs.Load()
	rc.send(t, tread(10, 2, 0, 8192))
	rc.expectNothing(t, 100*time.Millisecond)
	if handoffs.Load() == start {
		t.Fatal("a Tread with nothing queued was not handed to a worker")
	}
	write(t, bdata, "late")
	if r := rc.recv(t); r.typ() != msgRread || string(r[hdrLen+4:]) != "late" {
		t.Fatalf("blocked Tread answered type %d %q", r.typ(), r[hdrLen+4:])
	}
}

// drainString reads n bytes from h.
func drainString(t testing.TB, h sfs.Handle, n int) string {
	t.Helper()
	buf := make([]byte, n)
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for got < n {
		m, err := h.Read(ctx, buf[got:], 0)
		if err != nil {
			t.Fatalf("peer read after %d bytes: %v", got, err)
		}
		got += m
	}
	return string(buf)
}
