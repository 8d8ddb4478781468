package memctl

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestScenario23_AutotunedSndbuf(t *testing.T) {
	for _, c := range []struct {
		p                 *Profile
		mss, factor, want int
	}{
		{&Linux618Min, 1460, 2, 46080}, {&Linux618Min, 1460, 3, 69120},
		{&Linux618Min, 65495, 2, 2626560}, {&Linux618Min, 65495, 3, 3939840},
		{&Linux618Distro, 1460, 2, 87040}, {&Linux618Distro, 1460, 3, 130560},
	} {
		eq(t, c.p.Name+" sndmem", TCPSndbufExpandSize(c.p, c.mss, c.mss, 10, 3, c.factor), c.want)
		n := newTestNet(t, Options{Profile: c.p})
		sk := newTCPSock(n)
		sk.TCPSndbufExpand(c.mss, c.mss, 10, 3, c.factor)
		eq(t, c.p.Name+" sndbuf", sk.Sndbuf(), min(c.want, 4194304))
	}
}

func TestScenario24_ExpansionOnAck(t *testing.T) {
	n := newTestNet(t, Options{MemPcpuRsv: 1})
	sk := newTCPSock(n)
	sk.SetSndbuf(3939840)
	if !sk.TCPShouldExpandSndbuf(14, 15) {
		t.Fatal("should expand")
	}
	sk.TCPSndbufExpand(65495, 65495, 15, 3, 3)
	eq(t, "tb", sk.Sndbuf(), 4194304)
	eq(t, "in_flight >= cwnd", sk.TCPShouldExpandSndbuf(15, 15), false)
	// memory_allocated >= tcp_mem[0]
	mustWrite(t, n, "ipv4/tcp_mem", "2 1000 2000")
	sk.ForcedMemSchedule(2 * 4096)
	eq(t, "at tcp_mem[0]", sk.TCPShouldExpandSndbuf(0, 15), false)
	n.TCP.EnterMemoryPressure()
	mustWrite(t, n, "ipv4/tcp_mem", "100 1000 2000")
	eq(t, "under pressure", sk.TCPShouldExpandSndbuf(0, 15), false)
	n.TCP.LeaveMemoryPressure()
	eq(t, "all clear", sk.TCPShouldExpandSndbuf(0, 15), true)
}

func TestScenario25_OneThirdRule(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	_ = sk.SetSockoptSndbuf(32768, false, false)
	for _, c := range []struct {
		w    int
		want bool
	}{{52480, false}, {43692, false}, {43691, true}, {42624, true}} {
		sk.wmemQueued.Store(int64(c.w))
		eq(t, "writable", sk.StreamIsWriteable(1), c.want)
	}
}

// TestStreamWriterWokenAtOneThird is the seed case: a sender blocked on
// sndbuf is woken only when a third of the buffer is free.
func TestStreamWriterWokenAtOneThird(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	_ = sk.SetSockoptSndbuf(32768, false, false) // 65536
	var mu sync.Mutex                            // the socket lock
	const ts = 1000 + 832
	var queued []int
	mu.Lock()
	for sk.StreamMemoryFreeNow() {
		if !sk.WmemSchedule(ts) {
			t.Fatal("schedule failed")
		}
		sk.SkbEntail(ts)
		queued = append(queued, ts)
	}
	mu.Unlock()
	res := make(chan error, 1)
	go func() {
		mu.Lock()
		defer mu.Unlock()
		sk.flags.And(^uint32(0)) // no-op; vm_wait is skipped since memory is not free
		res <- sk.StreamWaitMemory(context.Background(), false, &mu)
	}()
	for !sk.Wq.HasSleepers() {
		time.Sleep(time.Millisecond)
	}
	woke := func() bool {
		select {
		case err := <-res:
			if err != nil {
				t.Fatal(err)
			}
			return true
		default:
			return false
		}
	}
	// ACK one skb at a time (under the socket lock) and call write_space
	// as TCP does; the sender must not run while wmem_queued > 2/3 sndbuf.
	for len(queued) > 0 {
		mu.Lock()
		sk.WmemFreeSkb(queued[0])
		queued = queued[1:]
		writable := sk.StreamIsWriteable(1)
		sk.WriteSpace(sk)
		mu.Unlock()
		if !writable {
			if woke() {
				t.Fatalf("woken at w=%d, more than 2/3 of %d", sk.WmemQueued(), sk.Sndbuf())
			}
			continue
		}
		select {
		case err := <-res:
			if err != nil {
				t.Fatal(err)
			}
			if w := sk.WmemQueued(); 3*w > 2*sk.Sndbuf()+2 {
				t.Fatalf("woken at w=%d", w)
			}
			return
		case <-time.After(5 * time.Second):
			t.Fatal("writer not woken once a third was free")
		}
	}
	t.Fatal("never writable")
}

func TestScenario26_NotsentLowat(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	var perSock uint32
	var notsent uint32
	sk.StreamMemoryFree = func(sk *Sock, wake int) bool {
		return TCPStreamMemoryFree(notsent, sk.Net().Sysctls.TCPNotsentLowatFor(perSock), wake)
	}
	eq(t, "default writable", sk.StreamMemoryFreeNow(), true)
	mustWrite(t, n, "ipv4/tcp_notsent_lowat", "0")
	eq(t, "sysctl 0: never writable", sk.StreamMemoryFreeNow(), false)
	if err := sk.StreamWaitMemory(context.Background(), true, nil); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("send: %v", err)
	}
	perSock = 1
	eq(t, "TCP_NOTSENT_LOWAT 1", sk.StreamMemoryFreeNow(), true)
	perSock = 16384
	notsent = 16384
	eq(t, "notsent 16384", sk.StreamMemoryFreeNow(), false)
	notsent = 16383
	eq(t, "notsent 16383", sk.StreamMemoryFreeNow(), true)
	eq(t, "poll at 16383", sk.StreamIsWriteable(1), false)
	notsent = 8191
	eq(t, "poll at 8191", sk.StreamIsWriteable(1), true)
	notsent = 8192
	eq(t, "poll at 8192", sk.StreamIsWriteable(1), false)
}

// presetGlobal puts pages into the TCP pool from another socket, as leftover
// usage on a busy host would.
func presetGlobal(n *Net, pages int) *Sock {
	o := newTCPSock(n)
	o.ForcedMemSchedule(pages * 4096)
	n.TCP.pcpuDrain()
	return o
}

func TestScenario27_ModerationUnderHardLimit(t *testing.T) {
	n := newTestNet(t, Options{})
	presetGlobal(n, 284)
	mustWrite(t, n, "ipv4/tcp_mem", "1 2 3")
	sk := newTCPSock(n)
	// First skb of an empty write queue: forced.
	sk.ForcedMemSchedule(832)
	sk.SkbEntail(832)
	eq(t, "f after entail", sk.ForwardAlloc(), 3264)
	// Its payload: the pool is over tcp_mem[2], so the schedule is suppressed,
	// sndbuf is moderated, and it is granted because the socket is over its
	// (new) sndbuf anyway.
	copy := sk.TCPWmemSchedule(32741)
	eq(t, "copy", copy, 32741)
	sk.WmemQueuedAdd(copy)
	sk.MemCharge(copy)
	eq(t, "tb", sk.Sndbuf(), 4608)
	eq(t, "w", sk.WmemQueued(), 33573)
	eq(t, "f", sk.ForwardAlloc(), 3291)
	eq(t, "TCPMemoryPressures", n.MIB.Get(TcpExtTCPMemoryPressures), uint64(1))
	eq(t, "memory free", sk.StreamMemoryFreeNow(), false)
	eq(t, "out of memory", sk.TCPOutOfMemory(), true)
	// A second socket under wmem_queued < tcp_wmem[0] but over the hard
	// limit: suppressed, and refused since 0 + 4096 < sndbuf.
	s2 := newTCPSock(n)
	eq(t, "small schedule refused", s2.WmemSchedule(4096), false)
	eq(t, "refused leaves fwd", s2.ForwardAlloc(), 0)
	eq(t, "moderated", s2.Sndbuf(), 4608)
}

func TestScenario28_SndbufLockSurvivesModeration(t *testing.T) {
	n := newTestNet(t, Options{})
	presetGlobal(n, 284)
	mustWrite(t, n, "ipv4/tcp_mem", "1 2 3")
	sk := newTCPSock(n)
	_ = sk.SetSockoptSndbuf(100000, false, false)
	sk.ForcedMemSchedule(832)
	sk.SkbEntail(832)
	sk.TCPWmemSchedule(32741)
	eq(t, "tb", sk.Sndbuf(), 200000)
}

func TestScenario31_PressureEnterAndLeave(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	n := newTestNet(t, Options{MemPcpuRsv: 1, Now: clk.now})
	mustWrite(t, n, "ipv4/tcp_mem", "300 600 900")
	sk := newTCPSock(n)
	for i := 0; i < 600; i++ {
		if !sk.RmemSchedule(4096 + sk.ForwardAlloc()) {
			t.Fatal("refused below the hard limit")
		}
	}
	eq(t, "no pressure at 600", n.TCP.UnderMemoryPressure(), false)
	sk.RmemSchedule(4096 + sk.ForwardAlloc())
	eq(t, "pressure at 601", n.TCP.UnderMemoryPressure(), true)
	eq(t, "TCPMemoryPressures", n.MIB.Get(TcpExtTCPMemoryPressures), uint64(1))
	sk.RmemSchedule(4096 + sk.ForwardAlloc())
	eq(t, "counted once", n.MIB.Get(TcpExtTCPMemoryPressures), uint64(1))
	clk.advance(1500 * time.Millisecond)
	// Reclaim down to exactly 300: the reduce path needs < 300.
	sk.MemCharge(sk.ForwardAlloc())
	sk.MemUncharge(int(n.TCP.MemoryAllocated()-300) * 4096)
	eq(t, "global", n.TCP.MemoryAllocated(), int64(300))
	eq(t, "still under pressure at 300 (reclaim path)", n.TCP.UnderMemoryPressure(), true)
	sk.MemUncharge(4096)
	eq(t, "left below 300", n.TCP.UnderMemoryPressure(), false)
	eq(t, "TCPMemoryPressuresChrono", n.MIB.Get(TcpExtTCPMemoryPressuresChrono), uint64(1500))
	// The raise path leaves at <= tcp_mem[0].
	n.TCP.EnterMemoryPressure()
	sk.RmemSchedule(sk.ForwardAlloc() + 4096) // 300 pages again
	eq(t, "global", n.TCP.MemoryAllocated(), int64(300))
	eq(t, "raise path left at 300", n.TCP.UnderMemoryPressure(), false)
}

func TestScenario38_ReclaimGranularity(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	b := &testBuf{ts: 833}
	if !sk.RmemSchedule(833) {
		t.Fatal("refused")
	}
	SetOwnerR(b, sk)
	eq(t, "r", sk.RmemAlloc(), 833)
	eq(t, "f", sk.ForwardAlloc(), 3263)
	b.Free()
	eq(t, "r after free", sk.RmemAlloc(), 0)
	eq(t, "f after free", sk.ForwardAlloc(), 0)
	// Any sequence of charges and uncharges leaves f < 4096.
	for _, sz := range []int{100, 5000, 12345, 1, 4096, 70000} {
		sk.RmemSchedule(sz)
		sk.MemCharge(sz)
		sk.MemUncharge(sz)
		if f := sk.ForwardAlloc(); f < 0 || f >= 4096 {
			t.Fatalf("f = %d after %d", f, sz)
		}
	}
}

func TestScenario39_StaleGlobal(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	g := n.TCP.MemoryAllocated()
	sk.RmemSchedule(10 * 4096)
	eq(t, "global after charge", n.TCP.MemoryAllocated(), g)
	sk.MemReclaim()
	eq(t, "global after release", n.TCP.MemoryAllocated(), g)
	if v := n.TCP.PerCPUFwAlloc(); v <= -256 || v >= 256 {
		t.Fatalf("per-cpu %d", v)
	}
	// Crossing the reserve flushes to the global; releasing less than the
	// reserve leaves the global stale (sockstat keeps reporting it).
	sk.RmemSchedule(260 * 4096)
	eq(t, "flushed", n.TCP.MemoryAllocated(), int64(260))
	sk.MemCharge(250 * 4096)
	sk.MemUncharge(0) // reclaims the 10 unused pages
	eq(t, "stale after release", n.TCP.MemoryAllocated(), int64(260))
	eq(t, "per-cpu credit", n.TCP.PerCPUFwAlloc(), int64(-10))
	sk.MemUncharge(250 * 4096) // -260 <= -256: drained
	eq(t, "drained", n.TCP.MemoryAllocated(), int64(0))
	eq(t, "true total", n.TCP.MemoryAllocatedRaw()+n.TCP.PerCPUFwAlloc(), int64(0))
}

func TestScenario40_FairShare(t *testing.T) {
	n := newTestNet(t, Options{MemPcpuRsv: 1})
	mustWrite(t, n, "ipv4/tcp_mem", "100 200 1000")
	presetGlobal(n, 500) // pressure set by the next raise
	for i := 0; i < 3; i++ {
		newTCPSock(n)
	}
	eq(t, "sockets", n.TCP.SocketsAllocated(), int64(4))
	a := newTCPSock(n)
	n.TCP.SocketsAllocatedDec() // keep the count at 4
	a.wmemQueued.Store(25 * 4096)
	a.sndbuf.Store(1 << 30)
	if !a.WmemSchedule(4096) {
		t.Fatal("25 pages + 1: 1000 > 4*26, want granted")
	}
	eq(t, "pressure", n.TCP.UnderMemoryPressure(), true)
	// 300 pages held: 1000 > 4*301 is false and wmem_queued >= tcp_wmem[0],
	// so the allocation is suppressed. With SO_SNDBUF (8 MiB, locked) the
	// sndbuf is not moderated and the socket is under it: refused.
	b := newTCPSock(n)
	n.TCP.SocketsAllocatedDec()
	_ = b.SetSockoptSndbuf(1<<30, false, false)
	b.wmemQueued.Store(300 * 4096)
	if b.WmemSchedule(4096) {
		t.Fatal("300 pages + 1, locked sndbuf: want refused")
	}
	eq(t, "locked sndbuf kept", b.Sndbuf(), 8<<20)
	eq(t, "fwd after refusal", b.ForwardAlloc(), 0)
	// Unlocked, sndbuf is moderated to wmem_queued/2, and since the socket is
	// now over its own sndbuf the allocation goes through.
	c := newTCPSock(n)
	n.TCP.SocketsAllocatedDec()
	c.sndbuf.Store(1 << 30)
	c.wmemQueued.Store(300 * 4096)
	if !c.WmemSchedule(4096) {
		t.Fatal("want granted: wmem_queued + size >= sndbuf after moderation")
	}
	eq(t, "moderated to wmem_queued/2", c.Sndbuf(), 150*4096)
	// A receive schedule of the same socket (over tcp_rmem[0]) has no such
	// allowance.
	c.rmemAlloc.Store(4096)
	if c.RmemSchedule(c.ForwardAlloc() + 4096) {
		t.Fatal("receive over the fair share: want refused")
	}
}

func TestStreamWaitMemoryErrors(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	sk.wmemQueued.Store(1 << 20)
	if err := sk.StreamWaitMemory(context.Background(), true, nil); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("nonblock: %v", err)
	}
	eq(t, "NOSPACE", sk.HasFlag(FlagNoSpace), true)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	res := make(chan error, 1)
	go func() {
		mu.Lock()
		res <- sk.StreamWaitMemory(ctx, false, &mu)
		mu.Unlock()
	}()
	for !sk.Wq.HasSleepers() {
		time.Sleep(time.Millisecond)
	}
	mu.Lock() // the sleeper released the socket lock
	mu.Unlock()
	start := time.Now()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, syscall.EINTR) {
			t.Fatalf("cancel: %v", err)
		}
		if time.Since(start) > 100*time.Millisecond {
			t.Fatal("slow cancel")
		}
	case <-time.After(time.Second):
		t.Fatal("not cancelled")
	}
	eq(t, "write_pending", sk.WritePending(), 0)
	eq(t, "fwd untouched", sk.ForwardAlloc(), 0)
	go func() { res <- sk.StreamWaitMemory(context.Background(), false, nil) }()
	for !sk.Wq.HasSleepers() {
		time.Sleep(time.Millisecond)
	}
	sk.SetErr(syscall.ECONNRESET)
	if err := <-res; !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("error: %v", err)
	}
	// Memory free on entry: a short vm_wait, then success.
	s2 := newTCPSock(n)
	if err := s2.StreamWaitMemory(context.Background(), false, nil); err != nil {
		t.Fatalf("vm_wait: %v", err)
	}
}

func TestScenario37_BacklogLimit(t *testing.T) { // scenario 37, memctl part
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	limit := sk.TCPBacklogLimit()
	eq(t, "limit", limit, uint32(335872))
	accepted := 0
	for sk.AddBacklog(2304, limit) == nil {
		accepted++
	}
	eq(t, "accepted", accepted, 335872/2304+1)
	sk.ResetBacklog()
	eq(t, "reset", sk.BacklogLen(), 0)
}

func TestConcurrentChargeUncharge(t *testing.T) {
	n := newTestNet(t, Options{MemPcpuRsv: 3})
	var wg sync.WaitGroup
	shared := newTCPSock(n)
	var sharedMu sync.Mutex
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			own := newTCPSock(n)
			u := newUDPSock(n)
			for i := 0; i < 2000; i++ {
				sz := 100 + (i*7919+g)%20000
				own.RmemSchedule(sz)
				b := &testBuf{ts: sz}
				SetOwnerR(b, own)
				w := &testBuf{ts: sz}
				SetOwnerW(w, own)
				sharedMu.Lock()
				if shared.WmemSchedule(sz) {
					shared.SkbEntail(sz)
					shared.WmemFreeSkb(sz)
				}
				sharedMu.Unlock()
				if UDPEnqueueScheduleSkb(u, &testBuf{ts: 832}) == nil {
					UDPRmemRelease(u, 832, true, i%3 == 0)
				}
				w.Free()
				b.Free()
			}
			UDPRmemRelease(u, 0, false, true)
			if own.RmemAlloc() != 0 || own.ForwardAlloc() != 0 || own.WmemAlloc() != 1 || u.RmemAlloc() != 0 || u.ForwardAlloc() != 0 {
				t.Errorf("goroutine %d: r%d f%d wraw%d udp r%d f%d", g, own.RmemAlloc(), own.ForwardAlloc(), own.WmemAlloc(), u.RmemAlloc(), u.ForwardAlloc())
			}
		}(g)
	}
	wg.Wait()
	eq(t, "shared fwd", shared.ForwardAlloc(), 0)
	eq(t, "shared w", shared.WmemQueued(), 0)
	for _, p := range []*Proto{n.TCP, n.UDP} {
		eq(t, p.Name+" total pages", p.MemoryAllocatedRaw()+p.PerCPUFwAlloc(), int64(0))
	}
}
