package netstack

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
	"sockfs/skb"
)

func mustUDP(t testing.TB, s *Stack, addr netip.AddrPort) *UDPSock {
	t.Helper()
	u := s.NewUDP()
	if err := u.Bind(addr); err != nil {
		t.Fatal(err)
	}
	u.SetNonblock(true)
	t.Cleanup(func() { u.Close() })
	return u
}

func TestUDPSendReceive(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 1)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 7000))
	cli := mustUDP(t, n.a, netip.AddrPort{})
	dst := netip.AddrPortFrom(addrB, 7000)
	for _, msg := range []string{"one", "two", "three"} {
		if _, err := cli.SendTo(context.Background(), []byte(msg), dst); err != nil {
			t.Fatal(err)
		}
	}
	n.run(time.Millisecond)
	buf := make([]byte, 100)
	for _, want := range []string{"one", "two", "three"} {
		k, from, err := srv.RecvFrom(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:k]) != want { // datagram boundaries are kept
			t.Fatalf("got %q, want %q", buf[:k], want)
		}
		if from.Addr() != addrA || from.Port() != cli.LocalAddr().Port() {
			t.Fatalf("from %v, client is %v", from, cli.LocalAddr())
		}
	}
	if _, _, err := srv.RecvFrom(context.Background(), buf); err != syscall.EAGAIN {
		t.Fatalf("empty non-blocking read: %v, want EAGAIN", err)
	}
	if got := n.b.mib.Get(memctl.UdpInDatagrams); got != 3 {
		t.Fatalf("UdpInDatagrams %d, want 3", got)
	}
	if got := n.a.mib.Get(memctl.UdpOutDatagrams); got != 3 {
		t.Fatalf("UdpOutDatagrams %d, want 3", got)
	}
}

// A 60,000-byte datagram crosses a 1500-byte MTU as fragments and is
// reassembled byte-exact.
func TestUDPFragmentedDatagram(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 2)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 7001))
	srv.Mem().SetSockoptRcvbuf(1<<20, false, false)
	cli := mustUDP(t, n.a, netip.AddrPort{})
	msg := make([]byte, 60000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if _, err := cli.SendTo(context.Background(), msg, netip.AddrPortFrom(addrB, 7001)); err != nil {
		t.Fatal(err)
	}
	n.run(time.Millisecond)
	buf := make([]byte, 70000)
	k, _, err := srv.RecvFrom(context.Background(), buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:k], msg) {
		t.Fatalf("reassembled %d bytes, not equal to the 60000 sent", k)
	}
	// (60000 + 8) bytes of UDP in 1480-byte pieces: 41 fragments.
	if got := n.a.mib.Get(memctl.IpFragCreates); got != 41 {
		t.Fatalf("FragCreates %d, want 41", got)
	}
	if n.a.mib.Get(memctl.IpFragOKs) != 1 || n.b.mib.Get(memctl.IpReasmOKs) != 1 || n.b.mib.Get(memctl.IpReasmReqds) != 41 {
		t.Fatalf("FragOKs %d ReasmOKs %d ReasmReqds %d", n.a.mib.Get(memctl.IpFragOKs),
			n.b.mib.Get(memctl.IpReasmOKs), n.b.mib.Get(memctl.IpReasmReqds))
	}
	if n.b.frags.Mem() != 0 || n.b.frags.Queues() != 0 {
		t.Fatal("reassembly state left behind")
	}
}

// With 10% loss, what the sender sent equals what the receiver got plus
// what the link reports lost: nothing else is dropped or invented.
func TestUDPLossCountersAddUp(t *testing.T) {
	n := newTestNet(t, impair.Config{Loss: 0.10}, impair.Config{}, 3)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 7002))
	srv.Mem().SetSockoptRcvbuf(1<<22, false, false)
	cli := mustUDP(t, n.a, netip.AddrPort{})
	const sent = 2000
	for i := range sent {
		if _, err := cli.SendTo(context.Background(), []byte{byte(i)}, netip.AddrPortFrom(addrB, 7002)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			n.run(time.Millisecond)
		}
	}
	n.run(time.Millisecond)
	got := 0
	buf := make([]byte, 10)
	for {
		if _, _, err := srv.RecvFrom(context.Background(), buf); err != nil {
			break
		}
		got++
	}
	lost := n.pa.LinkCounters().Lost
	if uint64(got)+lost != sent {
		t.Fatalf("received %d + lost %d != sent %d", got, lost, sent)
	}
	if lost < sent/20 || lost > sent/5 {
		t.Fatalf("lost %d of %d at 10%% loss", lost, sent)
	}
	if in := n.b.mib.Get(memctl.UdpInDatagrams); in != uint64(got) {
		t.Fatalf("UdpInDatagrams %d, received %d", in, got)
	}
}

// A receiver with rcvbuf R takes datagrams until rmem_alloc would pass R
// (by truesize: 832 per 1-byte datagram), then drops each one, counting
// RcvbufErrors; reading frees the charge and receiving resumes.
func TestUDPRcvbufLimit(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 4)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 7003))
	srv.Mem().SetSockoptRcvbuf(4096, false, false) // rcvbuf 8192
	cli := mustUDP(t, n.a, netip.AddrPort{})
	dst := netip.AddrPortFrom(addrB, 7003)
	send := func(k int) {
		for range k {
			if _, err := cli.SendTo(context.Background(), []byte{1}, dst); err != nil {
				t.Fatal(err)
			}
		}
		n.run(time.Millisecond)
	}
	send(20)
	// 6.18: max(1, floor(8192 / 832)) = 9 queued, 11 dropped.
	if r := srv.Mem().RmemAlloc(); r != 9*832 {
		t.Fatalf("rmem_alloc %d, want %d", r, 9*832)
	}
	if e := n.b.mib.Get(memctl.UdpRcvbufErrors); e != 11 {
		t.Fatalf("RcvbufErrors %d, want 11", e)
	}
	if e := n.b.mib.Get(memctl.UdpInErrors); e != 11 {
		t.Fatalf("InErrors %d, want 11", e)
	}
	if d := srv.Mem().Drops(); d != 11 {
		t.Fatalf("drops %d, want 11", d)
	}
	buf := make([]byte, 10)
	for range 9 {
		if _, _, err := srv.RecvFrom(context.Background(), buf); err != nil {
			t.Fatal(err)
		}
	}
	if r := srv.Mem().RmemAlloc(); r != 0 {
		t.Fatalf("rmem_alloc %d after draining", r)
	}
	send(5)
	if r := srv.Mem().RmemAlloc(); r != 5*832 {
		t.Fatalf("receiving did not resume: rmem_alloc %d", r)
	}
}

// A blocked receive returns promptly when its context is cancelled, and a
// datagram that arrives afterwards is still there for the next reader.
func TestUDPRecvCancelConsumesNothing(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 5)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 7004))
	srv.SetNonblock(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := srv.RecvFrom(ctx, make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EINTR) {
			t.Fatalf("cancelled receive: %v, want EINTR", err)
		}
		if el := time.Since(start); el > 100*time.Millisecond {
			t.Fatalf("cancelled receive took %v", el)
		}
	case <-time.After(time.Second):
		t.Fatal("cancelled receive did not return")
	}
	cli := mustUDP(t, n.a, netip.AddrPort{})
	cli.SendTo(context.Background(), []byte("late"), netip.AddrPortFrom(addrB, 7004))
	n.run(time.Millisecond)
	buf := make([]byte, 10)
	k, _, err := srv.RecvFrom(context.Background(), buf)
	if err != nil || string(buf[:k]) != "late" {
		t.Fatalf("next reader got %q, %v", buf[:k], err)
	}
}

// A blocked receive is woken by a datagram.
func TestUDPBlockingRecvWakes(t *testing.T) {
	n := newTestNet(t, impair.Config{Delay: 10 * time.Millisecond}, impair.Config{}, 6)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 7005))
	srv.SetNonblock(false)
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 10)
		k, _, err := srv.RecvFrom(context.Background(), buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:k])
	}()
	cli := mustUDP(t, n.a, netip.AddrPort{})
	cli.SendTo(context.Background(), []byte("wake"), netip.AddrPortFrom(addrB, 7005))
	if msg := await(n, got); msg != "wake" {
		t.Fatalf("got %q", msg)
	}
}

// Datagrams to a closed port get ICMP port unreachable, rate limited per
// destination to a burst of six; a connected socket learns ECONNREFUSED.
func TestUDPClosedPortUnreachable(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 7)
	cli := n.a.NewUDP()
	defer cli.Close()
	cli.SetNonblock(true)
	if err := cli.Connect(netip.AddrPortFrom(addrB, 9)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		cli.SendTo(context.Background(), []byte("x"), netip.AddrPort{})
	}
	n.run(time.Millisecond)
	if got := n.b.mib.Get(memctl.UdpNoPorts); got != 20 {
		t.Fatalf("NoPorts %d, want 20", got)
	}
	if got := n.b.mib.Get(memctl.IcmpOutDestUnreachs); got != 6 {
		t.Fatalf("OutDestUnreachs %d, want 6 (the per-destination burst)", got)
	}
	if got := n.a.mib.Get(memctl.IcmpInDestUnreachs); got != 6 {
		t.Fatalf("InDestUnreachs %d, want 6", got)
	}
	// The pending error is reported once, by the next call.
	if _, _, err := cli.RecvFrom(context.Background(), make([]byte, 10)); err != syscall.ECONNREFUSED {
		t.Fatalf("connected socket read: %v, want ECONNREFUSED", err)
	}
	if _, _, err := cli.RecvFrom(context.Background(), make([]byte, 10)); err != syscall.EAGAIN {
		t.Fatalf("second read: %v, want EAGAIN", err)
	}
	n.run(time.Second) // one more token per second
	for range 3 {
		cli.SendTo(context.Background(), []byte("x"), netip.AddrPort{})
	}
	n.run(time.Millisecond)
	if got := n.b.mib.Get(memctl.IcmpOutDestUnreachs); got != 7 {
		t.Fatalf("OutDestUnreachs after 1 s: %d, want 7", got)
	}
}

func TestUDPBindConflicts(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 8)
	a := mustUDP(t, n.a, netip.AddrPortFrom(netip.IPv4Unspecified(), 5000))
	_ = a
	b := n.a.NewUDP()
	defer b.Close()
	if err := b.Bind(netip.AddrPortFrom(addrA, 5000)); err != syscall.EADDRINUSE {
		t.Fatalf("bind over a wildcard: %v, want EADDRINUSE", err)
	}
	if err := b.Bind(netip.AddrPortFrom(addrB, 5001)); err != syscall.EADDRNOTAVAIL {
		t.Fatalf("bind to a foreign address: %v, want EADDRNOTAVAIL", err)
	}
	if err := b.Bind(netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if lo, hi := n.a.net.Sysctls.IPLocalPortRange(); int(b.LocalAddr().Port()) < lo || int(b.LocalAddr().Port()) > hi {
		t.Fatalf("ephemeral port %d outside %d-%d", b.LocalAddr().Port(), lo, hi)
	}
}

// NewCall: a socket for one remote on an announced socket's port takes
// the remote's datagrams already queued (charge moved with them, order
// kept, others' left) and the later ones; PeekFrom consumes nothing; a
// second call for the same remote is EADDRINUSE; the announcer gets the
// remote's datagrams again once the call is closed.
func TestUDPNewCall(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 1)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(netip.IPv4Unspecified(), 7000))
	c1 := mustUDP(t, n.a, netip.AddrPortFrom(addrA, 5001))
	c2 := mustUDP(t, n.a, netip.AddrPortFrom(addrA, 5002))
	dst := netip.AddrPortFrom(addrB, 7000)
	send := func(c *UDPSock, msg string) {
		t.Helper()
		if _, err := c.SendTo(context.Background(), []byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		n.run(time.Millisecond)
	}
	send(c1, "a1")
	send(c2, "b1")
	send(c1, "a2")
	from, to, err := srv.PeekFrom(context.Background())
	if err != nil || from != c1.LocalAddr() || to != addrB {
		t.Fatalf("peek: %v %v %v", from, to, err)
	}
	rq := memctl.UDPRqueueGet(srv.Mem())
	call, err := srv.NewCall(to, from)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	if _, err := srv.NewCall(to, from); err != syscall.EADDRINUSE {
		t.Fatalf("second call for the same remote: %v", err)
	}
	if got := memctl.UDPRqueueGet(srv.Mem()); got == 0 || call.Mem().RmemAlloc() != rq-got {
		t.Fatalf("queued bytes: announcer %d (was %d), call %d", got, rq, call.Mem().RmemAlloc())
	}
	send(c1, "a3")
	call.SetNonblock(true)
	buf := make([]byte, 10)
	for _, want := range []string{"a1", "a2", "a3"} {
		k, f, err := call.RecvFrom(context.Background(), buf)
		if err != nil || string(buf[:k]) != want || f != c1.LocalAddr() {
			t.Fatalf("call read %q from %v, %v; want %q", buf[:k], f, err, want)
		}
	}
	if call.LocalAddr() != dst || call.RemoteAddr() != c1.LocalAddr() {
		t.Fatalf("call %v -> %v", call.LocalAddr(), call.RemoteAddr())
	}
	k, f, err := srv.RecvFrom(context.Background(), buf)
	if err != nil || string(buf[:k]) != "b1" || f != c2.LocalAddr() {
		t.Fatalf("announcer read %q from %v, %v", buf[:k], f, err)
	}
	call.Close()
	send(c1, "a4")
	if k, _, err := srv.RecvFrom(context.Background(), buf); err != nil || string(buf[:k]) != "a4" {
		t.Fatalf("after the call's close the announcer reads %q, %v", buf[:k], err)
	}
}

// A call made while its remote's datagrams are on their way keeps them
// all, in order: one the stack looked up to the announcer before the call
// existed, queued only after NewCall took the announcer's queue, goes to
// the call (queueRcvAt's second lookup); and datagrams taken from the
// announcer go ahead of those that reached the call directly.
func TestUDPNewCallInFlight(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 1)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(netip.IPv4Unspecified(), 7000))
	c1 := mustUDP(t, n.a, netip.AddrPortFrom(addrA, 5001))
	dst := netip.AddrPortFrom(addrB, 7000)
	send := func(msg string) {
		t.Helper()
		if _, err := c1.SendTo(context.Background(), []byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		n.run(time.Millisecond)
	}
	// take unlinks the newest (or oldest) datagram from u's queue, as if
	// it had not reached u yet.
	take := func(u *UDPSock, newest bool) *skb.SKB {
		u.mu.Lock()
		defer u.mu.Unlock()
		b := u.rcvq.PopFront()
		if newest {
			u.rcvq.PushFront(b)
			b = u.rcvq.PopBack()
		}
		memctl.UDPRmemRelease(u.sk, b.Truesize(), true, u.rcvq.Empty())
		return b
	}
	send("a1")
	send("a2")
	a2 := take(srv, true)
	from, to, err := srv.PeekFrom(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	call, err := srv.NewCall(to, from)
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	srv.queueRcvAt(a2, func() *UDPSock { return n.b.udp.lookup(to, 7000, from.Addr(), from.Port()) })

	send("a3")
	send("a4")
	srv.queueRcv(take(call, false)) // a1, as if it were still on the announcer
	call.TakeQueued(srv)

	call.SetNonblock(true)
	srv.SetNonblock(true)
	buf := make([]byte, 10)
	for _, want := range []string{"a1", "a2", "a3", "a4"} {
		k, _, err := call.RecvFrom(context.Background(), buf)
		if err != nil || string(buf[:k]) != want {
			t.Fatalf("call read %q, %v; want %q", buf[:k], err, want)
		}
	}
	if k, _, err := srv.RecvFrom(context.Background(), buf); err != syscall.EAGAIN {
		t.Fatalf("the announcer kept %q (%v)", buf[:k], err)
	}
	if r := srv.Mem().RmemAlloc(); r != 0 {
		t.Fatalf("announcer rmem_alloc %d after all moved", r)
	}
}
