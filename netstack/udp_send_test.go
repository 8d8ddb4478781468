package netstack

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// holdDev is a device that keeps what it transmits until released, like a
// qdisc holding packets behind a slow link. It is a test double because no
// real device here holds packets: the pipe and the TUN device release (or
// orphan) every skb at transmit, so a send buffer could never fill.
type holdDev struct {
	mu    sync.Mutex
	held  []*skb.SKB
	stats link.Stats
}

func (d *holdDev) Kind() string             { return "hold" }
func (d *holdDev) MTU() int                 { return 1500 }
func (d *holdDev) Open(link.Receiver) error { return nil }
func (d *holdDev) Stats() *link.Stats       { return &d.stats }
func (d *holdDev) Stop() error              { d.release(); return nil }
func (d *holdDev) Xmit(batch []*skb.SKB) {
	d.mu.Lock()
	d.held = append(d.held, batch...)
	d.mu.Unlock()
}

// release frees everything held: TX completion, which runs sock_wfree.
func (d *holdDev) release() {
	d.mu.Lock()
	held := d.held
	d.held = nil
	d.mu.Unlock()
	for _, b := range held {
		b.Free()
	}
}

// A full send buffer blocks a sender (or gives EAGAIN, counted as
// SndbufErrors, when non-blocking); a cancelled blocked send returns
// promptly with EINTR and charges nothing; TX completion lets sending
// resume.
func TestUDPSendBlocksOnSndbufAndCancels(t *testing.T) {
	s := New(Options{Clock: clock.NewSim(), Seed: 1})
	defer s.Close()
	dev := &holdDev{}
	nd, err := s.AddDevice(dev)
	if err != nil {
		t.Fatal(err)
	}
	s.AddAddress(nd, netip.MustParsePrefix("198.18.1.1/24"))
	u := s.NewUDP()
	defer u.Close()
	u.Mem().SetSockoptSndbuf(4096, false, false) // sndbuf 8192
	u.SetNonblock(true)
	dst := netip.MustParseAddrPort("198.18.1.2:9")
	sent, eagain := 0, 0
	for range 50 {
		if _, err := u.SendTo(context.Background(), make([]byte, 100), dst); err == nil {
			sent++
		} else if err == syscall.EAGAIN {
			eagain++
		} else {
			t.Fatal(err)
		}
	}
	// Scenario D20: ceil(8192 / 832) = 10 skbs fit, the rest get EAGAIN.
	if sent != 10 || eagain != 40 {
		t.Fatalf("sent %d, EAGAIN %d; want 10 and 40", sent, eagain)
	}
	if got := s.mib.Get(memctl.UdpSndbufErrors); got != 40 {
		t.Fatalf("SndbufErrors %d, want 40", got)
	}
	wmem := u.Mem().WmemAlloc()

	u.SetNonblock(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := u.SendTo(ctx, make([]byte, 100), dst)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EINTR) {
			t.Fatalf("cancelled send: %v, want EINTR", err)
		}
		if el := time.Since(start); el > 100*time.Millisecond {
			t.Fatalf("cancelled send took %v", el)
		}
	case <-time.After(time.Second):
		t.Fatal("cancelled send did not return")
	}
	if u.Mem().WmemAlloc() != wmem {
		t.Fatalf("a cancelled send charged memory: wmem_alloc %d, was %d", u.Mem().WmemAlloc(), wmem)
	}

	// A blocked sender is woken by TX completion.
	go func() {
		_, err := u.SendTo(context.Background(), make([]byte, 100), dst)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	dev.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("TX completion did not wake the sender")
	}
	dev.release()
	if u.Mem().WmemAllocGet() != 0 {
		t.Fatalf("wmem_alloc %d after every skb was freed", u.Mem().WmemAllocGet())
	}
}

// A datagram without a destination on a socket not connected is
// EDESTADDRREQ, as udp_sendmsg answers (the live kernel's send() on a
// bound UDP socket); it was ENOTCONN.
func TestUDPSendWithoutDestination(t *testing.T) {
	s := New(Options{Seed: 1})
	defer s.Close()
	u := s.NewUDP()
	defer u.Close()
	if _, err := u.SendTo(context.Background(), []byte("x"), netip.AddrPort{}); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Fatalf("send without a destination: %v, want EDESTADDRREQ", err)
	}
}

// The largest datagram is 65507 bytes over IPv4 and 65527 over IPv6, whose
// payload length leaves the fixed header out (ip_append_data,
// ip6_append_data); one byte more is EMSGSIZE, as on the live kernel. The
// largest crosses the link in fragments and is reassembled whole.
func TestUDPSendMaxPayloadPerFamily(t *testing.T) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 96)
	for _, c := range []struct {
		dst netip.Addr
		max int
	}{{addrB, 65507}, {addr6B, 65527}} {
		srv := mustUDP(t, n.b, netip.AddrPortFrom(c.dst, 7310))
		srv.Mem().SetRcvbuf(1 << 20)
		cli := mustUDP(t, n.a, netip.AddrPortFrom(unspecFor(c.dst), 0))
		dst := netip.AddrPortFrom(c.dst, 7310)
		if _, err := cli.SendTo(context.Background(), make([]byte, c.max+1), dst); err != syscall.EMSGSIZE {
			t.Errorf("%v: %d bytes: %v, want EMSGSIZE", c.dst, c.max+1, err)
		}
		if k, err := cli.SendTo(context.Background(), make([]byte, c.max), dst); err != nil || k != c.max {
			t.Errorf("%v: %d bytes: %d, %v", c.dst, c.max, k, err)
		}
		n.run(time.Millisecond)
		if k, _, err := srv.RecvFrom(context.Background(), make([]byte, 70000)); err != nil || k != c.max {
			t.Errorf("%v: received %d, %v, want %d", c.dst, k, err, c.max)
		}
	}
}
