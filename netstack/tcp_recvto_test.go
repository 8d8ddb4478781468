package netstack

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"sockfs/memctl"
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

// A RecvTo that waits short of SO_RCVLOWAT and is interrupted hands the
// actor what is queued when it wakes, not the slices it gathered before
// it slept: while the socket lock was released the receive path may have
// collapsed the queue (tcp_collapse), freeing the skbs those slices
// pointed into. Here the queue (twelve 250-byte segments, in skbs bloated
// for what they hold) is collapsed during the wait and the old skbs' bytes
// scribbled over, as a pool reusing their buffers would; before the fix
// the actor was given the scribbled bytes.
func TestTCPRecvToAfterInterruptedWaitRegathers(t *testing.T) {
	c := newEstablished(t)
	const segs, size = 12, 250
	data := patterned(segs * size)
	seq := c.peerIS + 1
	for i := range segs {
		c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: string(data[i*size : (i+1)*size])})
		seq += size
	}
	tp := c.tp
	tp.SetNonblock(false)
	tp.SetRcvlowat(len(data) + 1) // the read waits for more
	tp.lockSock()
	old, _ := tp.gatherRecv(make([][]byte, 0, 2*segs), len(data))
	tp.releaseSock()
	if len(old) < 2 {
		t.Fatalf("%d skbs queued, want several", len(old))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &takeActor{limit: -1}
	done := make(chan error, 1)
	var k int
	go func() {
		var err error
		k, err = tp.RecvTo(ctx, len(data)+1, make([][]byte, 0, 2*segs), a)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // RecvTo gathers and sleeps
	select {
	case err := <-done:
		t.Fatalf("RecvTo returned (%d, %v) without waiting for SO_RCVLOWAT", k, err)
	default:
	}
	tp.lockSock()
	tp.collapse(&tp.rcvq, tp.copiedSeq, tp.rcvNxt)
	tp.releaseSock()
	if c.s.mib.Get(memctl.TcpExtTCPRcvCollapsed) == 0 {
		t.Fatal("nothing collapsed")
	}
	for _, v := range old {
		clear(v)
	}
	cancel()
	if err := <-done; err != nil || k != len(data) || !bytes.Equal(a.got, data) {
		t.Fatalf("interrupted RecvTo: %d, %v; the actor got the queued bytes: %v", k, err, bytes.Equal(a.got, data))
	}
}
