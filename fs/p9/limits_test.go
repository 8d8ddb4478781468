package p9

import (
	"math/rand"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// memInUse is the heap and goroutine stacks in use, after a GC.
func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// pipeline sends n messages made by mk from a goroutine (so the replies
// can be read meanwhile) and returns once all are written.
func pipeline(t *testing.T, rc *rawConn, n int, mk func(i int) frame) chan error {
	done := make(chan error, 1)
	go func() {
		var buf []byte
		for i := range n {
			buf = append(buf, mk(i)...)
			if len(buf) > 32<<10 || i == n-1 {
				if _, err := rc.nc.Write(buf); err != nil {
					done <- err
					return
				}
				buf = buf[:0]
			}
		}
		done <- nil
	}()
	return done
}

// expectServed checks that a new client of the server at addr still
// attaches and reads a file.
func expectServed(t *testing.T, addr string) {
	t.Helper()
	rc := dialIn(t, addr, dialect9P, 0)
	rc.walkOpenMode(t, 1, 2, syscall.O_RDONLY, "sys", "ipv4", "tcp_rmem")
	if got := rc.read(t, 2, 100); !strings.HasPrefix(got, "4096\t") {
		t.Fatalf("next client read tcp_rmem %q", got)
	}
}

// settle waits until the goroutine count is back within slack of base.
func settle(t *testing.T, base, slack int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+slack {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// udpReader announces a UDP conversation of A on port and returns a
// client of dialect d with its data open for reading as fid 2.
func (e *env) udpReader(t *testing.T, port int, d dialect) *rawConn {
	t.Helper()
	actl := local(t, e.ta, "udp/clone")
	n := readNum(t, actl)
	write(t, actl, "announce "+strconv.Itoa(port))
	rc := dialIn(t, e.addr, d, 0)
	rc.walkOpenMode(t, 1, 2, syscall.O_RDONLY, "udp", n, "data")
	return rc
}

// TestTooManyFids: a client making 10,000 fids gets MaxFids (the attach's
// included) and "too many fids" for the rest; memory stays bounded and
// the connection keeps working.
func TestTooManyFids(t *testing.T) {
	e := newEnv(t)
	rc := dialIn(t, e.addr, dialectU, 0)
	base := memInUse()
	const n = 10000
	sent := pipeline(t, rc, n, func(i int) frame { return twalk(uint16(i), 1, uint32(100+i), "tcp") })
	var ok, refused int
	for range n {
		r := rc.recv(t)
		if r.typ() == msgRwalk {
			ok++
			continue
		}
		if e, isErr := rc.errOf(r); !isErr || e.text != "too many fids" || e.errno != syscall.EMFILE {
			t.Fatalf("walk answered type %d %+v", r.typ(), e)
		}
		refused++
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	grew := memInUse() - base
	t.Logf("%d fids made, %d refused; memory grew by %d KiB", ok, refused, grew>>10)
	if ok != DefaultMaxFids-1 || refused != n-ok {
		t.Fatalf("%d walks made fids, %d refused; want %d made", ok, refused, DefaultMaxFids-1)
	}
	if grew > 16<<20 {
		t.Fatalf("memory grew by %d MiB for %d fids", grew>>20, ok)
	}
	rc.send(t, newFrame(msgTclunk, 1, le.AppendUint32(nil, 100)...))
	if r := rc.recv(t); r.typ() != msgRclunk {
		t.Fatalf("clunk: type %d", r.typ())
	}
	if r := rc.walk(t, 1, 100, "udp"); r.typ() != msgRwalk {
		t.Fatalf("walk after a clunk freed a fid: type %d", r.typ())
	}
	expectServed(t, e.addr)
}

// TestTooManyRequests: 10,000 reads blocked at once on one connection: the
// server takes MaxRequests of them and answers the rest "too many
// requests in flight" at once; memory stays bounded; when the client goes
// away every request ends, and the next client is served.
func TestTooManyRequests(t *testing.T) {
	e := newEnv(t)
	goroutines := runtime.NumGoroutine()
	rc := e.udpReader(t, 7500, dialectL)
	base := memInUse()
	const total = 10000
	sent := pipeline(t, rc, total, func(i int) frame { return tread(uint16(1+i), 2, 0, 100) })
	for i := range total - DefaultMaxRequests {
		r := rc.recv(t)
		if e, ok := rc.errOf(r); !ok || e.errno != syscall.ENOBUFS {
			t.Fatalf("reply %d: type %d %+v, want ENOBUFS", i, r.typ(), e)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	rc.expectNothing(t, 200*time.Millisecond) // the rest are blocked
	grew := memInUse() - base
	t.Logf("%d reads blocked; memory grew by %d KiB", DefaultMaxRequests, grew>>10)
	if grew > 64<<20 {
		t.Fatalf("memory grew by %d MiB for %d blocked reads", grew>>20, DefaultMaxRequests)
	}
	rc.nc.Close()
	settle(t, goroutines, 20)
	expectServed(t, e.addr)
}

// TestTooManyBytes: reads asking for msize each are admitted while the
// buffers they hold stay within MaxBytes; the next is answered "too many
// bytes in flight" at once.
func TestTooManyBytes(t *testing.T) {
	e := newEnv(t)
	rc := e.udpReader(t, 7501, dialectU)
	base := memInUse()
	const total = 1100
	msize := uint32(65536)
	fit := int(DefaultMaxBytes / (int64(msize) + 23)) // Tread is 23 bytes
	sent := pipeline(t, rc, total, func(i int) frame { return tread(uint16(1+i), 2, 0, msize) })
	for i := range total - fit {
		r := rc.recv(t)
		if e, ok := rc.errOf(r); !ok || e.text != "too many bytes in flight" {
			t.Fatalf("reply %d: type %d %+v, want too many bytes in flight", i, r.typ(), e)
		}
		if r.tag() != uint16(1+fit+i) {
			t.Fatalf("refused tag %d, want %d", r.tag(), 1+fit+i)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	grew := memInUse() - base
	t.Logf("%d reads of %d bytes blocked; memory grew by %d MiB", fit, msize, grew>>20)
	if grew > DefaultMaxBytes+32<<20 {
		t.Fatalf("memory grew by %d MiB, over MaxBytes", grew>>20)
	}
	rc.nc.Close()
	expectServed(t, e.addr)
}

// TestGarbage: malformed input ends only its own connection (or gets an
// error), and the next client is served: a size field of 4 GiB, one below
// the header's size, a message type nobody knows, an R-message, a
// truncated body, and random bytes.
func TestGarbage(t *testing.T) {
	e := newEnv(t)
	goroutines := runtime.NumGoroutine()
	closes := map[string][]byte{
		"huge size":  {0xff, 0xff, 0xff, 0xff, msgTread, 1, 0},
		"tiny size":  {3, 0, 0, 0, msgTread, 1, 0},
		"over msize": append(le.AppendUint32(nil, 70000), make([]byte, 70000)...),
	}
	for name, in := range closes {
		for _, d := range dialects {
			rc := dialIn(t, e.addr, d, 0)
			rc.send(t, in)
			if r, err := rc.tryRecv(5 * time.Second); err == nil {
				t.Fatalf("%v %s: answered type %d, want the connection closed", d, name, r.typ())
			}
		}
	}
	errs := map[string]frame{
		"unknown type": newFrame(200, 7),
		"R-message":    newFrame(msgRread, 7, 0, 0, 0, 0),
		"short walk":   newFrame(msgTwalk, 7, 1, 0, 0, 0, 2, 0, 0, 0, 1),
		"short write":  newFrame(msgTwrite, 7, 1, 0, 0, 0),
	}
	for name, m := range errs {
		for _, d := range dialects {
			rc := dialIn(t, e.addr, d, 0)
			rc.send(t, m)
			if r := rc.recv(t); r.tag() != 7 {
				t.Fatalf("%v %s: reply tag %d", d, name, r.tag())
			} else if _, ok := rc.errOf(r); !ok {
				t.Fatalf("%v %s: reply type %d, want an error", d, name, r.typ())
			}
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := range 30 {
		rc := dialIn(t, e.addr, dialects[i%3], 0)
		junk := make([]byte, rng.Intn(4096))
		rng.Read(junk)
		rc.nc.Write(junk)
		rc.nc.Close()
	}
	settle(t, goroutines, 20)
	expectServed(t, e.addr)
}
