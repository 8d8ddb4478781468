package netstack

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// takeActor takes at most limit bytes of what it is given (all if limit
// < 0), appending them to got, then returns err.
type takeActor struct {
	limit int
	err   error
	got   []byte
	calls int
	iovs  int
}

func (a *takeActor) TakeRecv(data [][]byte, n int) (int, error) {
	a.calls++
	a.iovs = len(data)
	want := n
	if a.limit >= 0 {
		want = min(n, a.limit)
	}
	took := 0
	for _, v := range data {
		k := min(len(v), want-took)
		a.got = append(a.got, v[:k]...)
		took += k
	}
	return took, a.err
}

// queuedPair is a connection whose receiver srv has size bytes of data
// queued (none read), and that data.
func queuedPair(t *testing.T, size int) (*testNet, *TCPSock, []byte) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 1)
	cli, srv := tcpPair(t, n, 80)
	data := patterned(size)
	sent := 0
	n.drive(func() bool {
		sent = sendMore(cli, data, sent)
		return sent == size && srv.rcvNxt-srv.copiedSeq == uint32(size)
	}, 10*time.Second)
	return n, srv, data
}

// RecvTo hands the actor the queued bytes in order and consumes only what
// it took: after a short take (a short writev) the rest is still queued
// and the next read starts at the first byte not taken; an actor that
// fails having taken nothing consumes nothing. Memory is uncharged as
// Recv's is: once all is taken, rmem_alloc and forward_alloc equal those
// of a socket read with Recv.
func TestTCPRecvToKeepsWhatWasNotTaken(t *testing.T) {
	const size = 50000
	_, srv, data := queuedPair(t, size)
	iov := make([][]byte, 0, 64)
	fail := &takeActor{limit: 0, err: errors.New("EPIPE")}
	if k, err := srv.RecvTo(context.Background(), size, iov, fail); k != 0 || err == nil || fail.calls != 1 {
		t.Fatalf("failing actor: %d, %v after %d calls", k, err, fail.calls)
	}
	if q := srv.rcvNxt - srv.copiedSeq; q != size {
		t.Fatalf("%d bytes unread after a failed take, want %d", q, size)
	}
	var got []byte
	short := &takeActor{limit: 7001}
	k, err := srv.RecvTo(context.Background(), size, iov, short)
	if k != 7001 || err != nil || short.iovs < 2 {
		t.Fatalf("short take: %d, %v (%d slices), want 7001 of several skbs", k, err, short.iovs)
	}
	got = append(got, short.got...)
	rest := make([]byte, 1000)
	k, _ = srv.Recv(context.Background(), rest)
	got = append(got, rest[:k]...)
	for len(got) < size {
		all := &takeActor{limit: -1}
		k, err := srv.RecvTo(context.Background(), size, iov, all)
		if err != nil || k == 0 {
			t.Fatalf("RecvTo after %d bytes: %d, %v", len(got), k, err)
		}
		got = append(got, all.got...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes read through RecvTo and Recv differ from those sent")
	}
	_, ref, _ := queuedPair(t, size)
	buf := make([]byte, size)
	for m := 0; m < size; {
		k, err := ref.Recv(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		m += k
	}
	if srv.Mem().RmemAlloc() != 0 || srv.Mem().RmemAlloc() != ref.Mem().RmemAlloc() ||
		srv.Mem().ForwardAlloc() != ref.Mem().ForwardAlloc() {
		t.Fatalf("after all was taken: r%d f%d; read with Recv: r%d f%d", srv.Mem().RmemAlloc(),
			srv.Mem().ForwardAlloc(), ref.Mem().RmemAlloc(), ref.Mem().ForwardAlloc())
	}
}

// RecvTo gives no more slices than iov has room for, nor more bytes than
// asked: the read is shorter, the rest stays.
func TestTCPRecvToLimits(t *testing.T) {
	const size = 50000
	_, srv, data := queuedPair(t, size)
	a := &takeActor{limit: -1}
	k, err := srv.RecvTo(context.Background(), size, make([][]byte, 0, 1), a)
	if err != nil || a.iovs != 1 || k == 0 || k >= size || !bytes.Equal(a.got, data[:k]) {
		t.Fatalf("1 slice: %d, %v in %d slices", k, err, a.iovs)
	}
	b := &takeActor{limit: -1}
	k2, err := srv.RecvTo(context.Background(), 100, make([][]byte, 0, 64), b)
	if err != nil || k2 != 100 || !bytes.Equal(b.got, data[k:k+100]) {
		t.Fatalf("100 bytes: %d, %v", k2, err)
	}
}

// patterned returns n bytes of a pattern that repeats only every 1792
// bytes, so a byte out of place shows.
func patterned(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}
