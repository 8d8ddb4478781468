package netstack

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// The Go API: a net.PacketConn pair over the pipe, deadlines measured on
// the stack's clock, and Close unblocking a reader.
func TestUDPConnAPI(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 20)
	srv, err := n.b.ListenUDP(netip.AddrPortFrom(addrB, 5353))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := n.a.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(addrB, 5353))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var pc net.PacketConn = srv
	if _, err := cli.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		pc.WriteTo(buf[:k], from) // echo
		got <- string(buf[:k])
	}()
	if msg := await(n, got); msg != "query" {
		t.Fatalf("server read %q", msg)
	}
	n.run(time.Millisecond)
	buf := make([]byte, 64)
	k, err := cli.Read(buf)
	if err != nil || string(buf[:k]) != "query" {
		t.Fatalf("client read %q, %v", buf[:k], err)
	}

	// A read deadline on the simulated clock: the read times out when
	// simulated time passes it, with an error whose Timeout() is true.
	cli.SetReadDeadline(n.clk.Now().Add(50 * time.Millisecond))
	errc := make(chan error, 1)
	go func() { _, err := cli.Read(buf); errc <- err }()
	n.drive(func() bool { return len(errc) > 0 }, time.Second)
	err = <-errc
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v", err)
	}

	// Close unblocks a blocked reader with net.ErrClosed.
	cli.SetReadDeadline(time.Time{})
	go func() { _, err := cli.Read(buf); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	cli.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Close did not unblock the reader")
	}
}

// Readiness can be asked for, and a poll hook on the socket's wait queue is
// told when it changes: no goroutine has to block per socket.
func TestUDPReadinessAndPollHook(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 21)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 6000))
	if ev := srv.Readiness(); ev&EventIn != 0 || ev&EventOut == 0 {
		t.Fatalf("empty socket readiness %#x: want writable, not readable", ev)
	}
	woken := 0
	h := srv.Mem().Wq.AddPoll(func() { woken++ })
	defer srv.Mem().Wq.RemovePoll(h)
	cli := mustUDP(t, n.a, netip.AddrPort{})
	cli.SendTo(t.Context(), []byte("x"), netip.AddrPortFrom(addrB, 6000))
	n.run(time.Millisecond)
	if woken == 0 {
		t.Fatal("poll hook not called when a datagram arrived")
	}
	if srv.Readiness()&EventIn == 0 {
		t.Fatal("socket with a datagram queued is not readable")
	}
	srv.RecvFrom(t.Context(), make([]byte, 4))
	if srv.Readiness()&EventIn != 0 {
		t.Fatal("drained socket still readable")
	}
}
