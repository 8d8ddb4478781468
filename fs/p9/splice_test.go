package p9

import (
	"bytes"
	"context"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sfs "sockfs/fs"
	"sockfs/skb"
)

// TestSplicedRread: Treads of a TCP conversation's data (real stacks) of
// every size, from less than a segment to the whole msize, get Rreads
// whose size and count fields match what they carry, and together carry
// every byte B sent, in order.
func TestSplicedRread(t *testing.T) {
	e := newEnv(t)
	n, bdata := e.localPair(t, 7410)
	rc := dialMsize(t, e.addr, dialectL, 0, DefaultMsize)
	rc.walkOpen(t, 1, 2, "tcp", n, "data")
	sent := make([]byte, 600_000)
	for i := range sent {
		sent[i] = byte(i*7 + i>>11)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for off := 0; off < len(sent); {
			m, err := bdata.Write(ctx, sent[off:min(off+50_000, len(sent))], 0)
			if err != nil {
				return // the comparison below fails
			}
			off += m
		}
	}()
	var got []byte
	counts := []uint32{1, 777, 1448, 65536, 200_000, DefaultMsize - ioHdr}
	for i := 0; len(got) < len(sent); i++ {
		rc.send(t, tread(4, 2, 0, counts[i%len(counts)]))
		r := rc.recv(t)
		if r.typ() != msgRread {
			t.Fatalf("Tread: type %d", r.typ())
		}
		count, _ := r.u32(0)
		if int(r.size()) != len(r) || int(count) != len(r)-hdrLen-4 || count > counts[i%len(counts)] || count == 0 {
			t.Fatalf("Rread of %d bytes: size field %d, count %d for a Tread of %d", len(r), r.size(), count, counts[i%len(counts)])
		}
		got = append(got, r[hdrLen+4:]...)
	}
	if !bytes.Equal(got, sent) {
		i := 0
		for i < len(got) && got[i] == sent[i] {
			i++
		}
		t.Fatalf("received %d bytes, first difference at byte %d", len(got), i)
	}
}

// serveOneConn serves root over the first connection to a new loopback
// listener, handing the server's side of it to prep before it is served;
// it returns the address and a channel closed when ServeConn returns.
func serveOneConn(t testing.TB, root sfs.Dir, prep func(*net.TCPConn)) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		prep(nc.(*net.TCPConn))
		ServeConn(context.Background(), nc, root, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	return ln.Addr().String(), served
}

// TestSplicedRreadUnwritableKeepsData: a spliced Rread that cannot be
// written consumes nothing. The data stays in the conversation's receive
// queue, and a reader of the same conversation gets it (when the reply
// was a copy, the data was consumed and then lost with the reply). The
// server's side of the 9P connection is shut for writing (CloseWrite)
// before the Tread, so its writev fails with EPIPE.
func TestSplicedRreadUnwritableKeepsData(t *testing.T) {
	e := newEnv(t)
	n, bdata := e.localPair(t, 7411)
	srv := make(chan *net.TCPConn, 1)
	addr, served := serveOneConn(t, e.ta.Root(), func(sc *net.TCPConn) { srv <- sc })
	rc := dialMsize(t, addr, dialectL, 0, 65536)
	rc.walkOpen(t, 1, 2, "tcp", n, "data")
	adata := local(t, e.ta, "tcp/"+n+"/data") // the same conversation's data, read here
	write(t, bdata, "precious")
	deadline := time.Now().Add(5 * time.Second)
	for adata.Poll(sfs.PollIn, nil)&sfs.PollIn == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	(<-srv).CloseWrite()
	rc.send(t, tread(4, 2, 0, 8192))
	select {
	case <-served: // the failed write ended the connection
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived its failed write")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	buf := make([]byte, 64)
	m, err := adata.Read(ctx, buf, 0)
	if err != nil || string(buf[:m]) != "precious" {
		t.Fatalf("after the failed Rread the queue gave %q, %v; want all of %q kept", buf[:m], err, "precious")
	}
}

// TestSplicedRreadSlowClient: a client that does not read its Rread does
// not hold the conversation: the Rread's writev runs with the socket
// owned, so what the 9P connection does not take at once is copied and
// written after the socket is let go. Meanwhile another reader of the
// same conversation reads what follows, and the client, once it reads,
// gets its whole Rread: the bytes before the other reader's.
func TestSplicedRreadSlowClient(t *testing.T) {
	e := newEnv(t)
	n, bdata := e.localPair(t, 7414)
	addr, _ := serveOneConn(t, e.ta.Root(), func(sc *net.TCPConn) {
		sc.SetWriteBuffer(4096) // a connection that fills at once
	})
	// A small receive buffer, set before the handshake so that the
	// window the client offers is small too.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{nc: nc, d: dialectL}
	rc.send(t, tversion(DefaultMsize, dialectL.String()))
	rc.recv(t)
	rc.send(t, rc.tattach(1, 1, 0))
	rc.recv(t)
	rc.walkOpen(t, 1, 2, "tcp", n, "data")
	adata := local(t, e.ta, "tcp/"+n+"/data")
	const size = 300_000
	sent := make([]byte, size)
	for i := range sent {
		sent[i] = byte(i*11 + i>>9)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for off := 0; off < size; {
			m, err := bdata.Write(ctx, sent[off:], 0)
			if err != nil {
				return
			}
			off += m
		}
	}()
	// Wait until more than the Tread will take is queued at A.
	want := 60_000
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if qin(readFile(t, e.ta, "tcp/"+n+"/status")) > want+20_000 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	rests := restWrites.Load()
	rc.send(t, tread(4, 2, 0, uint32(want)))
	// Until the server has taken the Rread's data (its rest is waiting
	// for the client) or a while has passed: a server that holds the
	// conversation while it waits fails the read below.
	for deadline := time.Now().Add(3 * time.Second); restWrites.Load() == rests && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	// The client does not read. Another reader of the conversation is
	// served meanwhile, from the bytes after the Rread's.
	other := make([]byte, 10_000)
	read := make(chan int, 1)
	start := time.Now()
	go func() {
		m, err := adata.Read(context.Background(), other, 0)
		if err != nil {
			m = -1
		}
		read <- m
	}()
	var m int
	select {
	case m = <-read:
	case <-time.After(2 * time.Second):
		// (The test's cleanup closes the client, which lets it go.)
		t.Fatal("another reader of the conversation waited over 2 s for the slow client")
	}
	if m < 0 {
		t.Fatal("the other reader's read failed")
	}
	t.Logf("the other reader waited %v", time.Since(start))
	if restWrites.Load() == rests {
		t.Fatal("the Rread went out whole at once: the test did not cover a client that does not read")
	}
	// The client reads now: its Rread holds the first want bytes.
	r := rc.recv(t)
	if count, _ := r.u32(0); r.typ() != msgRread || int(count) != want || !bytes.Equal(r[hdrLen+4:], sent[:want]) {
		t.Fatalf("Rread type %d count %d; its data equal to the first %d bytes sent: %v", r.typ(), count, want, bytes.Equal(r[hdrLen+4:], sent[:want]))
	}
	if !bytes.Equal(other[:m], sent[want:want+m]) {
		t.Fatalf("the other reader got %d bytes not those after the Rread's", m)
	}
}

// readFile reads what a read-only file of tr says.
func readFile(t testing.TB, tr *sfs.Tree, path string) string {
	t.Helper()
	h := openPath(t, tr.Root(), path, syscall.O_RDONLY)
	defer h.Release()
	buf := make([]byte, 4096)
	m, _ := h.Read(context.Background(), buf, 0)
	return string(buf[:m])
}

// qin returns the receive queue's byte count of a conversation's status
// line ("... qin N ..."), 0 if there is none.
func qin(status string) int {
	f := strings.Fields(status)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "qin" {
			n, _ := strconv.Atoi(f[i+1])
			return n
		}
	}
	return 0
}

// spliceDir is a one-file tree whose data splices (fs.Splicer) from a
// queue of pieces that every read refills: a stand-in for a TCP
// conversation's receive queue, whose Read must not be called.
type spliceDir struct{ q *spliceQueue }

func (spliceDir) Qid() sfs.Qid   { return sfs.Qid{Path: 1, Type: sfs.QTDir} }
func (spliceDir) Stat() sfs.Stat { return sfs.Stat{Name: "/", Mode: iofs.ModeDir | 0o555} }
func (d spliceDir) List() []sfs.Node {
	return []sfs.Node{spliceFile(d)}
}

func (d spliceDir) Lookup(name string) (sfs.Node, error) {
	if name != "data" {
		return nil, syscall.ENOENT
	}
	return spliceFile(d), nil
}

type spliceFile spliceDir

func (spliceFile) Qid() sfs.Qid   { return sfs.Qid{Path: 2} }
func (spliceFile) Stat() sfs.Stat { return sfs.Stat{Name: "data", Mode: 0o666, Stream: true} }
func (f spliceFile) Open(context.Context, sfs.OpenReq) (sfs.Handle, error) {
	return f.q, nil
}

// spliceQueue hands pieces, a 64 KiB one and a 1000-byte one, to every
// ReadTo, whole or cut at the limit, and takes every WritePages whole.
type spliceQueue struct {
	mu    sync.Mutex
	piece []byte
	iov   [2][]byte
}

func (q *spliceQueue) Read(context.Context, []byte, int64) (int, error) {
	panic("a splicing handle's Read was called")
}
func (q *spliceQueue) Write(context.Context, []byte, int64) (int, error) { return 0, syscall.EBADF }
func (q *spliceQueue) Poll(ev sfs.Event, _ func()) sfs.Event             { return ev }
func (q *spliceQueue) Release()                                          {}
func (q *spliceQueue) Tryable() bool                                     { return true }
func (q *spliceQueue) Splices() bool                                     { return true }

// WritePages takes the pages' bytes and keeps no reference.
func (q *spliceQueue) WritePages(_ context.Context, pages []*skb.Page, off, n int) (int, error) {
	if off+n > len(pages)*skb.PageFragSize {
		return 0, syscall.EFAULT
	}
	return n, nil
}

func (q *spliceQueue) ReadTo(_ context.Context, limit int, iov [][]byte, a sfs.RecvActor) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.iov[0], q.iov[1] = q.piece, q.piece[:1000]
	n := 0
	for _, p := range q.iov {
		p = p[:min(len(p), limit-n)]
		if len(p) > 0 {
			iov = append(iov, p)
			n += len(p)
		}
	}
	return a.TakeRecv(iov, n)
}

// TestSplicedIOAllocatesNothing: a spliced Tread, and a Twrite whose
// data is read into pages and handed over as pages, cost the server no
// allocation in steady state (requests keep their slice and vector
// storage, runs and pages are recycled), and the handle's Read is never
// called (it panics). (Run by `make test`'s non-race pass: the race
// detector allocates.)
func TestSplicedIOAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	q := &spliceQueue{piece: bytes.Repeat([]byte{'s'}, 64<<10)}
	c := dialMsize(t, serveRoot(t, spliceDir{q}), dialectL, 0, DefaultMsize)
	c.walkOpen(t, 1, 2, "data")
	c.nc.SetDeadline(time.Time{})
	want := 64<<10 + 1000
	rd := tread(7, 2, 0, uint32(want))
	buf := make([]byte, want+64)
	step := func() {
		if r := roundTrip(t, c.nc, rd, buf); r[4] != msgRread || len(r) != hdrLen+4+want {
			t.Fatalf("reply type %d of %d bytes, want an Rread of %d", r[4], len(r), hdrLen+4+want)
		}
	}
	for range 50 { // warm the pools
		step()
	}
	if a := testing.AllocsPerRun(500, step); a != 0 {
		t.Fatalf("%v allocations per spliced Tread, want 0", a)
	}
	wr := twrite(8, 2, make([]byte, DefaultMsize-4096))
	paged := pagedWrites.Load()
	wstep := func() {
		if r := roundTrip(t, c.nc, wr, buf); r[4] != msgRwrite || le.Uint32(r[hdrLen:]) != DefaultMsize-4096 {
			t.Fatalf("reply type %d, % x", r[4], []byte(r))
		}
	}
	for range 50 {
		wstep()
	}
	if a := testing.AllocsPerRun(500, wstep); a != 0 {
		t.Fatalf("%v allocations per paged Twrite, want 0", a)
	}
	if pagedWrites.Load()-paged < 550 {
		t.Fatalf("%d of 550 Twrites handed their pages over", pagedWrites.Load()-paged)
	}
}

// TestPagedTwrite: large Twrites to a TCP conversation's data (real
// stacks) hand their pages to the send queue (pagedWrites), also when the
// send buffer is full and a write is queued in parts by a worker, and B
// receives every byte in order; small ones go through their frame.
func TestPagedTwrite(t *testing.T) {
	e := newEnv(t)
	n, bdata := e.localPair(t, 7412)
	rc := dialMsize(t, e.addr, dialectL, 0, DefaultMsize)
	rc.walkOpen(t, 1, 2, "tcp", n, "data")
	sizes := []int{DefaultMsize - ioHdr, 1000, pagedWriteMin, 300_000, DefaultMsize - ioHdr, 5}
	var sent []byte
	for i, size := range sizes {
		for j := range size {
			sent = append(sent, byte(i*31+j*7+j>>13))
		}
	}
	got := make(chan []byte, 1)
	go func() {
		// B reads slowly at first, so that the send buffer fills and
		// writes wait for room.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var b []byte
		buf := make([]byte, 16<<10)
		for len(b) < len(sent) {
			if len(b) < 200_000 {
				time.Sleep(2 * time.Millisecond)
			}
			m, err := bdata.Read(ctx, buf, 0)
			if err != nil {
				break
			}
			b = append(b, buf[:m]...)
		}
		got <- b
	}()
	start, startHandoffs := pagedWrites.Load(), handoffs.Load()
	large := 0
	off := 0
	for _, size := range sizes {
		rc.send(t, twrite(5, 2, sent[off:off+size]))
		r := rc.recv(t)
		if c, _ := r.u32(0); r.typ() != msgRwrite || int(c) != size {
			t.Fatalf("Twrite of %d: type %d, count %d", size, r.typ(), c)
		}
		off += size
		if size >= pagedWriteMin {
			large++
		}
	}
	b := <-got
	if !bytes.Equal(b, sent) {
		t.Fatalf("B received %d of %d bytes, or not in order", len(b), len(sent))
	}
	if paged := pagedWrites.Load() - start; paged < int64(large) {
		t.Fatalf("%d page hand-overs for %d large Twrites, want one or more each", paged, large)
	}
	if handoffs.Load() == startHandoffs {
		t.Fatal("no Twrite waited for room in the send buffer: the test did not cover the rest of a run queued by a worker")
	}
}

// recordFile is a handle that keeps what is written to it and takes no
// pages.
type recordFile struct {
	nullData
	got []byte
}

func (f *recordFile) Write(_ context.Context, p []byte, _ int64) (int, error) {
	f.got = append(f.got, p...)
	return len(p), nil
}

// TestPagedTwriteToFileWithoutPages: a Twrite whose data was read into
// pages for a fid that then turns out to take none (it was reopened on
// another file between the read and the request) is written from one
// piece, whole.
func TestPagedTwriteToFileWithoutPages(t *testing.T) {
	data := make([]byte, 3*pagedWriteMin+123)
	for i := range data {
		data[i] = byte(i * 13)
	}
	run, err := readRun(bytes.NewReader(data), len(data))
	if err != nil {
		t.Fatal(err)
	}
	h := &recordFile{}
	f := &fid{state: fidOpen, h: h, written: true}
	fp := getFrame(twriteHeadLen)
	copy(*fp, twrite(5, 2, data)[:twriteHeadLen])
	r := newRequest(fp)
	r.run = run
	c := &conn{}
	dc := dec{b: r.body[4:]} // after the fid
	reply, err := c.writeFid(r, f, &dc)
	if err != nil {
		t.Fatal(err)
	}
	if cnt := le.Uint32(reply[hdrLen:]); int(cnt) != len(data) || !bytes.Equal(h.got, data) {
		t.Fatalf("Rwrite count %d; the file got %d bytes (equal: %v), want %d", cnt, len(h.got), bytes.Equal(h.got, data), len(data))
	}
	r.free()
}

// TestPagedTwriteBadCount: a large Twrite to a file that takes pages whose
// count field does not match the data it carries is refused in every
// dialect, nothing of it reaches the peer, and the connection goes on.
func TestPagedTwriteBadCount(t *testing.T) {
	e := newEnv(t)
	n, bdata := e.localPair(t, 7413)
	for _, d := range dialects {
		rc := dialMsize(t, e.addr, d, 0, DefaultMsize)
		rc.walkOpen(t, 1, 2, "tcp", n, "data")
		bad := twrite(6, 2, make([]byte, 2*pagedWriteMin))
		le.PutUint32(bad[hdrLen+12:], 2*pagedWriteMin-1)
		rc.send(t, bad)
		rc.expectErr(t, 6, "write count does not match data", syscall.EINVAL)
		rc.write(t, 2, d.String())
	}
	want := dialect9P.String() + dialectU.String() + dialectL.String()
	if got := drainString(t, bdata, len(want)); got != want {
		t.Fatalf("peer got %q, want %q", got, want)
	}
}
