package netstack

import (
	"context"
	"errors"
	"net/netip"
	"testing"

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
