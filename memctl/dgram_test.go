package memctl

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// fillUDP offers count datagrams of truesize ts and returns the accepted ones.
func fillUDP(t *testing.T, sk *Sock, count, ts int) []*testBuf {
	t.Helper()
	var q []*testBuf
	for i := 0; i < count; i++ {
		b := &testBuf{ts: ts}
		if err := UDPQueueRcvSkb(sk, b, false); err == nil {
			q = append(q, b)
		}
	}
	return q
}

func TestScenario14_RcvbufDropCount(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	_ = sk.SetSockoptRcvbuf(4096, false, false)
	q := fillUDP(t, sk, 200, 832)
	eq(t, "queued", len(q), 9)
	eq(t, "r", sk.RmemAlloc(), 7488)
	eq(t, "f", sk.ForwardAlloc(), 704)
	eq(t, "d", sk.Drops(), uint64(191))
	eq(t, "RcvbufErrors", n.MIB.Get(UdpRcvbufErrors), uint64(191))
	eq(t, "InErrors", n.MIB.Get(UdpInErrors), uint64(191))
	eq(t, "MemErrors", n.MIB.Get(UdpMemErrors), uint64(0))

	// Kernels up to 6.17 queue one more.
	n2 := newTestNet(t, Options{Profile: &Linux612Distro})
	sk2 := newUDPSock(n2)
	_ = sk2.SetSockoptRcvbuf(4096, false, false)
	eq(t, "legacy queued", len(fillUDP(t, sk2, 200, 832)), 10)
}

func TestScenario15_OversizedFirstDatagram(t *testing.T) {
	for _, c := range []struct{ so, ts, want, drops int }{{4096, 8448, 1, 199}, {10000, 8448, 2, 198}, {10000, 16640, 1, 199}} {
		n := newTestNet(t, Options{})
		sk := newUDPSock(n)
		_ = sk.SetSockoptRcvbuf(int32(c.so), false, false)
		q := fillUDP(t, sk, 200, c.ts)
		eq(t, "queued", len(q), c.want)
		eq(t, "d", sk.Drops(), uint64(c.drops))
		if c.so == 4096 {
			eq(t, "r", sk.RmemAlloc(), 8448)
			eq(t, "f", sk.ForwardAlloc(), 3840)
		}
	}
}

func TestScenario16_LargerBuffers(t *testing.T) {
	for _, c := range []struct{ so, ts, want, r, f int }{{10000, 832, 24, 19968, -1}, {65536, 832, 157, 130624, 448}, {65536, 2304, 56, 56 * 2304, -1}} {
		n := newTestNet(t, Options{})
		sk := newUDPSock(n)
		_ = sk.SetSockoptRcvbuf(int32(c.so), false, false)
		q := fillUDP(t, sk, 200, c.ts)
		eq(t, "queued", len(q), c.want)
		eq(t, "r", sk.RmemAlloc(), c.r)
		if c.f >= 0 {
			eq(t, "f", sk.ForwardAlloc(), c.f)
		}
	}
}

// readUDP dequeues the first datagram as udp_recvmsg does.
func readUDP(sk *Sock, q []*testBuf) []*testBuf {
	UDPRmemRelease(sk, q[0].ts, true, len(q) == 1)
	return q[1:]
}

func TestScenario17_DeferredReleaseOnRead(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	_ = sk.SetSockoptRcvbuf(4096, false, false)
	q := fillUDP(t, sk, 9, 832)
	eq(t, "r", sk.RmemAlloc(), 7488)
	eq(t, "f", sk.ForwardAlloc(), 704)
	want := []struct{ r, f, rq int }{
		{7488, 704, 6656}, {7488, 704, 5824}, {4992, 3200, 4992},
		{4992, 3200, 4160}, {4992, 3200, 3328}, {2496, 1600, 2496},
		{2496, 1600, 1664}, {2496, 1600, 832}, {0, 4096, 0},
	}
	for i, w := range want {
		q = readUDP(sk, q)
		if sk.RmemAlloc() != w.r || sk.ForwardAlloc() != w.f || UDPRqueueGet(sk) != w.rq {
			t.Errorf("after read %d: r%d f%d recvq %d, want r%d f%d recvq %d",
				i+1, sk.RmemAlloc(), sk.ForwardAlloc(), UDPRqueueGet(sk), w.r, w.f, w.rq)
		}
	}
	// Closing releases the last page (udp_destruct_common: partial = 0).
	UDPRmemRelease(sk, 0, false, true)
	eq(t, "f after close", sk.ForwardAlloc(), 0)
	eq(t, "pool total after close", n.UDP.MemoryAllocatedRaw()+n.UDP.PerCPUFwAlloc(), int64(0))

	// rcvbuf 131072, 20 datagrams: r stays until the queue empties.
	sk = newUDPSock(n)
	_ = sk.SetSockoptRcvbuf(65536, false, false)
	q = fillUDP(t, sk, 20, 832)
	for i := 1; i <= 20; i++ {
		q = readUDP(sk, q)
		if i < 20 && sk.RmemAlloc() != 16640 {
			t.Fatalf("after read %d: r%d, want 16640", i, sk.RmemAlloc())
		}
	}
	eq(t, "r", sk.RmemAlloc(), 0)
	eq(t, "f", sk.ForwardAlloc(), 4096)
}

func TestScenario18_UdpMemAndPerCPUReserve(t *testing.T) {
	n := newTestNet(t, Options{})
	mustWrite(t, n, "ipv4/udp_mem", "1 2 3")
	sk := newUDPSock(n)
	_ = sk.SetSockoptRcvbufForceForTest(16 << 20)
	var pages []int64
	accepted := 0
	for i := 0; i < 100; i++ {
		before := n.UDP.PerCPUFwAlloc() + n.UDP.MemoryAllocatedRaw()
		if err := UDPQueueRcvSkb(sk, &testBuf{ts: 16640}, false); err != nil {
			if accepted != 62 {
				t.Fatalf("first drop at datagram %d, want 63", i+1)
			}
			break
		}
		accepted++
		pages = append(pages, n.UDP.PerCPUFwAlloc()+n.UDP.MemoryAllocatedRaw()-before)
		eq(t, "sockstat UDP mem before the flush", n.UDP.MemoryAllocated(), int64(0))
	}
	eq(t, "accepted", accepted, 62)
	sum := int64(0)
	for i, p := range pages {
		want := int64(4)
		if i%16 == 0 {
			want = 5
		}
		if p != want {
			t.Errorf("datagram %d charged %d pages, want %d", i+1, p, want)
		}
		sum += p
	}
	eq(t, "pages for 62", sum, int64(252))
	eq(t, "sockstat UDP mem after the flush", n.UDP.MemoryAllocated(), int64(256))
	for i := 0; i < 10; i++ {
		if err := UDPQueueRcvSkb(sk, &testBuf{ts: 16640}, false); !errors.Is(err, syscall.ENOBUFS) {
			t.Fatalf("later datagram: %v", err)
		}
	}
	eq(t, "d", sk.Drops(), uint64(11))
	for _, c := range []Counter{UdpRcvbufErrors, UdpInErrors, UdpMemErrors} {
		eq(t, c.String(), n.MIB.Get(c), uint64(0))
	}
}

// SetSockoptRcvbufForceForTest is SO_RCVBUFFORCE with the capability.
func (sk *Sock) SetSockoptRcvbufForceForTest(v int32) error {
	return sk.SetSockoptRcvbuf(v/2, true, true)
}

func TestScenario19_GenericDatagramRule(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := NewSock(n, SockRaw, nil) // raw: not accounted
	_ = sk.SetSockoptRcvbuf(4096, false, false)
	var q []*testBuf
	for i := 0; i < 200; i++ {
		b := &testBuf{ts: 832}
		if QueueRcvSkb(sk, b) == nil {
			q = append(q, b)
		}
	}
	eq(t, "queued", len(q), 10)
	eq(t, "rmem", sk.RmemAlloc(), 8320)
	eq(t, "d", sk.Drops(), uint64(190))
	eq(t, "fwd (no accounting)", sk.ForwardAlloc(), 0)
	for _, b := range q {
		b.Free()
	}
	eq(t, "rmem after free", sk.RmemAlloc(), 0)

	// The seed case on an accounted datagram socket: every 1-byte packet is
	// charged its truesize and the socket is full after rcvbuf/truesize.
	u := NewSock(n, SockDgram, n.UDP)
	_ = u.SetSockoptRcvbuf(4160, false, false) // rcvbuf 8320 = 10 * 832
	var got int
	for i := 0; i < 20; i++ {
		b := &testBuf{ts: 832}
		if QueueRcvSkb(u, b) == nil {
			got++
			eq(t, "rmem", u.RmemAlloc(), got*832)
		}
	}
	eq(t, "1-byte packets accepted", got, 8320/832)
}

func allocN(t *testing.T, sk *Sock, ts, count int) ([]*testBuf, int) {
	var held []*testBuf
	eagain := 0
	for i := 0; i < count; i++ {
		b, err := AllocSendSkb(context.Background(), sk, true, func() *testBuf { return &testBuf{ts: ts} })
		if errors.Is(err, syscall.EAGAIN) {
			eagain++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	return held, eagain
}

func TestScenario20_SndbufExhaustion(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	_ = sk.SetSockoptSndbuf(4096, false, false)
	held, eagain := allocN(t, sk, 832, 50)
	eq(t, "held", len(held), 10)
	eq(t, "t", sk.WmemAllocGet(), 8320)
	eq(t, "EAGAINs", eagain, 40)
	eq(t, "NOSPACE set", sk.HasFlag(FlagNoSpace), true)
	eq(t, "refs held by skbs", sk.Refcnt(), 11)
	released := false
	sk.OnRelease = func(*Sock) { released = true }
	for _, b := range held {
		b.Free()
	}
	eq(t, "t after free", sk.WmemAllocGet(), 0)
	eq(t, "refs", sk.Refcnt(), 1)
	sk.Put()
	eq(t, "released on last put", released, true)
}

func TestScenario21_DatagramWritability(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	_ = sk.SetSockoptSndbuf(4096, false, false) // 8192
	held, _ := allocN(t, sk, 832, 4)
	eq(t, "writable with 4 held", sk.SockWriteable(), true)
	more, _ := allocN(t, sk, 832, 6)
	held = append(held, more...)
	eq(t, "held", len(held), 10)
	// A blocked sender.
	res := make(chan error, 1)
	go func() {
		_, err := AllocSendSkb(context.Background(), sk, false, func() *testBuf { return &testBuf{ts: 832} })
		res <- err
	}()
	for !sk.Wq.HasSleepers() {
		time.Sleep(time.Millisecond)
	}
	// Freeing 5 leaves 5 held: t 4160, raw 4161 >= 4096, not writable, so
	// sock_def_write_space does not wake the sender even though t < sndbuf.
	for i := 0; i < 5; i++ {
		held[i].Free()
	}
	eq(t, "writable with 5 held", sk.SockWriteable(), false)
	select {
	case err := <-res:
		t.Fatalf("sender woke before half of sndbuf was free: %v", err)
	default:
	}
	held[5].Free() // 4 held: raw 3329 < 4096: wake
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sender not woken")
	}
	eq(t, "t", sk.WmemAllocGet(), 5*832)
}

func TestScenario22_SndTimeo(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	_ = sk.SetSockoptSndbuf(4096, false, false)
	allocN(t, sk, 832, 10)
	start := time.Now() // before the context's timer starts, so the bound holds
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := sk.WaitForWmem(ctx, false)
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("err %v, want EAGAIN", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("returned after %v", d)
	}
}

func TestAllocSendSkbCancelled(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	_ = sk.SetSockoptSndbuf(4096, false, false)
	allocN(t, sk, 832, 10)
	wmem, refs := sk.WmemAlloc(), sk.Refcnt()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	allocated := false
	go func() {
		_, err := AllocSendSkb(ctx, sk, false, func() *testBuf { allocated = true; return &testBuf{ts: 832} })
		res <- err
	}()
	for !sk.Wq.HasSleepers() {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, syscall.EINTR) {
			t.Fatalf("err %v, want EINTR", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("took %v", d)
		}
	case <-time.After(time.Second):
		t.Fatal("not cancelled")
	}
	eq(t, "allocated", allocated, false)
	eq(t, "wmem unchanged", sk.WmemAlloc(), wmem)
	eq(t, "refs unchanged", sk.Refcnt(), refs)
}

func TestAllocSendSkbErrorAndShutdown(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	sk.SetErr(syscall.ECONNREFUSED)
	if err := sk.WaitForWmem(context.Background(), true); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v", err)
	}
	eq(t, "sk_err consumed", sk.Err(), syscall.Errno(0))
	sk.Shutdown(SendShutdown)
	if err := sk.WaitForWmem(context.Background(), true); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("err %v", err)
	}
	// A blocked sender is woken by shutdown.
	sk2 := newUDPSock(n)
	_ = sk2.SetSockoptSndbuf(4096, false, false)
	allocN(t, sk2, 832, 10)
	res := make(chan error, 1)
	go func() { res <- sk2.WaitForWmem(context.Background(), false) }()
	for !sk2.Wq.HasSleepers() {
		time.Sleep(time.Millisecond)
	}
	sk2.Shutdown(SendShutdown)
	if err := <-res; !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("err %v", err)
	}
}
