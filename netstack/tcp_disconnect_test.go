package netstack

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// A socket whose connect was refused connects again and carries data both
// ways (tcp_disconnect on connect's failure path); before, the second
// connect completed the handshake on a socket still shut down both ways by
// tcp_done, so its first send failed with EPIPE while the peer held an
// established connection.
func TestTCPConnectAgainAfterRefused(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 47)
	tp := n.a.NewTCP()
	defer tp.Close()
	errc := make(chan error, 1)
	go func() { errc <- tp.Connect(context.Background(), netip.AddrPortFrom(addrB, 81)) }()
	if err := await(n, errc); !errors.Is(err, errConnRefused) {
		t.Fatalf("connect to a closed port: %v", err)
	}
	if tp.sk.ShutdownState() != 0 {
		t.Fatalf("sk_shutdown %#x after the failed connect, want 0", tp.sk.ShutdownState())
	}
	l, err := n.b.ListenTCP(netip.AddrPortFrom(addrB, 80), 8)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { errc <- tp.Connect(context.Background(), netip.AddrPortFrom(addrB, 80)) }()
	if err := await(n, errc); err != nil {
		t.Fatalf("second connect: %v", err)
	}
	peerc := make(chan *TCPSock, 1)
	go func() { c, _ := l.Socket().Accept(context.Background()); peerc <- c }()
	peer := await(n, peerc)
	defer peer.Close()

	sent := make(chan error, 1)
	go func() { _, err := tp.Send(context.Background(), []byte("ping")); sent <- err }()
	if err := await(n, sent); err != nil {
		t.Fatalf("send after reconnecting: %v", err)
	}
	if s := recvString(n, peer); s != "ping" {
		t.Fatalf("peer read %q", s)
	}
	go func() { _, err := peer.Send(context.Background(), []byte("pong")); sent <- err }()
	if err := await(n, sent); err != nil {
		t.Fatal(err)
	}
	if s := recvString(n, tp); s != "pong" {
		t.Fatalf("read %q", s)
	}
	// A connected socket does not connect again, even once reset
	// (__inet_stream_connect: SS_CONNECTED gives EISCONN).
	peer.Abort()
	go func() { errc <- tp.Connect(context.Background(), netip.AddrPortFrom(addrB, 80)) }()
	if err := await(n, errc); !errors.Is(err, errIsConn) {
		t.Fatalf("connect on a connected socket: %v, want EISCONN", err)
	}
}

// recvString drives n until one Recv of up to 16 bytes on tp returns.
func recvString(n *testNet, tp *TCPSock) string {
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 16)
		k, _ := tp.Recv(context.Background(), buf)
		got <- string(buf[:k])
	}()
	return await(n, got)
}

// A send blocked for memory when the peer resets the connection fails
// with ECONNRESET, the socket's error, as sk_stream_error makes of the
// wait's EPIPE; it failed with EPIPE, and the files said "i/o on hungup
// channel" instead of "connection reset".
func TestBlockedSendGetsTheReset(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 48)
	l, err := n.b.ListenTCP(netip.AddrPortFrom(addrB, 80), 8)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tp := n.a.NewTCP()
	defer tp.Close()
	errc := make(chan error, 1)
	go func() { errc <- tp.Connect(context.Background(), netip.AddrPortFrom(addrB, 80)) }()
	if err := await(n, errc); err != nil {
		t.Fatal(err)
	}
	peerc := make(chan *TCPSock, 1)
	go func() { c, _ := l.Socket().Accept(context.Background()); peerc <- c }()
	peer := await(n, peerc)
	// Fill the peer's receive window and then our send buffer: the peer
	// never reads, so once its window is closed nothing we queue leaves,
	// and a send of a byte blocks.
	tp.SetNonblock(true)
	buf := make([]byte, 64<<10)
	for full := 0; full < 2; {
		if _, err := tp.Send(context.Background(), buf); errors.Is(err, errAgain) {
			full++
			n.run(200 * time.Millisecond) // what was queued goes, until the window is 0
		} else {
			full = 0
		}
	}
	tp.SetNonblock(false)
	sent := make(chan error, 1)
	go func() { _, err := tp.Send(context.Background(), []byte("x")); sent <- err }()
	time.Sleep(10 * time.Millisecond) // let it block
	peer.Abort()
	if err := await(n, sent); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("blocked send after the peer's reset: %v, want ECONNRESET", err)
	}
}
