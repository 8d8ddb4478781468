package fuse

import (
	"bytes"
	"context"
	"sync"
	"syscall"
	"testing"

	netfs "sockfs/fs"
	"sockfs/skb"
)

// queueHandle is a Splicer over a byte queue held in pieces, as a
// socket's receive queue holds skbs: ReadTo hands the pieces to the
// actor and drops from the front only what it took (RecvTo's contract).
type queueHandle struct {
	pieces [][]byte
}

func (q *queueHandle) Read(context.Context, []byte, int64) (int, error) {
	panic("a splicing handle's Read was called")
}
func (q *queueHandle) Write(context.Context, []byte, int64) (int, error) { return 0, syscall.EBADF }
func (q *queueHandle) Poll(ev netfs.Event, _ func()) netfs.Event         { return ev }
func (q *queueHandle) Release()                                          {}
func (q *queueHandle) Splices() bool                                     { return true }
func (q *queueHandle) WritePages(context.Context, []*skb.Page, int, int) (int, error) {
	return 0, syscall.EBADF
}

func (q *queueHandle) ReadTo(_ context.Context, limit int, iov [][]byte, a netfs.RecvActor) (int, error) {
	n := 0
	for _, p := range q.pieces {
		if n+len(p) > limit || len(iov) == cap(iov) {
			break
		}
		iov = append(iov, p)
		n += len(p)
	}
	if n == 0 {
		return 0, nil
	}
	took, err := a.TakeRecv(iov, n)
	for took > 0 {
		k := min(took, len(q.pieces[0]))
		q.pieces[0] = q.pieces[0][k:]
		if len(q.pieces[0]) == 0 {
			q.pieces = q.pieces[1:]
		}
		took -= k
	}
	return n, err
}

func (q *queueHandle) queued() int {
	n := 0
	for _, p := range q.pieces {
		n += len(p)
	}
	return n
}

// TestReadSpliced: a READ of a splicing handle (a TCP conversation's data)
// is answered with one reply whose payload is the queue's pieces in
// order, and what a reply that cannot be written would have carried stays
// queued (the kernel gave the request up: an interrupted read loses
// nothing). The device is a socket pair in place of /dev/fuse (a mock):
// the kernel cannot be made to give up a request on demand; a closed peer
// makes the writev fail as a gone request does.
func TestReadSpliced(t *testing.T) {
	q := &queueHandle{pieces: [][]byte{[]byte("hello, "), bytes.Repeat([]byte("x"), 5000), []byte("world")}}
	w, peer, closePeer, read := spliceDevice(t, q)
	read(1, 5010) // "hello, " and the x's fit, "world" does not
	var b [8192]byte
	n, err := syscall.Read(peer, b[:])
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("hello, "), bytes.Repeat([]byte("x"), 5000)...)
	if int(ne.Uint32(b[0:])) != n || ne.Uint64(b[8:]) != 1 || ne.Uint32(b[4:]) != 0 || !bytes.Equal(b[outHeaderLen:n], want) {
		t.Fatalf("reply: len field %d of %d read, unique %d, errno %d, %d payload bytes; want %d bytes of payload for unique 1",
			ne.Uint32(b[0:]), n, ne.Uint64(b[8:]), int32(ne.Uint32(b[4:])), n-outHeaderLen, len(want))
	}
	if q.queued() != len("world") {
		t.Fatalf("%d bytes left queued after the reply; want 5", q.queued())
	}

	closePeer()
	read(2, 5010)
	if q.queued() != len("world") {
		t.Fatalf("%d bytes left queued after a reply that could not be written; want all 5 kept", q.queued())
	}
	if w.rv.err == nil {
		t.Fatal("the failed writev was not recorded")
	}
}

// spliceDevice serves q as handle 7 of a server whose device is one end of
// a socket pair (a mock of /dev/fuse); it returns the server's worker, the
// other end (where replies arrive), a function that closes that end (else
// it is closed at cleanup) and one that has the worker serve a READ of
// size bytes of handle 7 as request unique.
func spliceDevice(t *testing.T, q *queueHandle) (w *worker, peer int, closePeer func(), read func(unique uint64, size int)) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closePeer = func() { once.Do(func() { syscall.Close(fds[1]) }) }
	t.Cleanup(func() { syscall.Close(fds[0]); closePeer() })
	s := newServer(fds[0], nil)
	s.handles[7] = &handle{s: s, h: q, stream: true}
	w = s.takeWorker()
	req := make([]byte, inHeaderLen+readInLen)
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint32(req[4:], opRead)
	ne.PutUint64(req[inHeaderLen:], 7)
	return w, fds[1], closePeer, func(unique uint64, size int) {
		ne.PutUint64(req[8:], unique)
		ne.PutUint32(req[inHeaderLen+16:], uint32(size))
		w.serve(req)
	}
}
