package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"sockfs/netstack/clock"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// newRealNet is two stacks on a pipe driven by a real clock, for code that
// runs its own goroutines and timers (net/http).
func newRealNet(t testing.TB, cfg impair.Config) (a, b *Stack) {
	t.Helper()
	heads := skb.LiveHeads()
	clk := clock.NewReal()
	a = New(Options{Clock: clk, Seed: 1})
	b = New(Options{Clock: clk, Seed: 2})
	pa, pb := link.NewPipe(clk, link.DefaultPipeMTU, cfg, cfg, 5)
	da, _ := a.AddDevice(pa)
	db, _ := b.AddDevice(pb)
	a.AddAddress(da, netip.PrefixFrom(addrA, 24))
	b.AddAddress(db, netip.PrefixFrom(addrB, 24))
	t.Cleanup(func() {
		a.Close()
		b.Close()
		clk.Close()
		if d := skb.LiveHeads() - heads; d != 0 && !t.Failed() {
			t.Logf("%d skb heads still live (held by closed sockets' in-flight clones)", d)
		}
	})
	return a, b
}

func TestTCPHTTP(t *testing.T) {
	a, b := newRealNet(t, impair.Config{Delay: 200 * time.Microsecond})
	l, err := b.ListenTCP(netip.AddrPortFrom(addrB, 8080), 128)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("sockfs "), 150000) // ~1 MiB
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/echo" {
			io.Copy(w, r.Body)
			return
		}
		w.Write(body)
	})}
	go srv.Serve(l)
	defer srv.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, err
		}
		return a.DialTCP(ctx, netip.AddrPort{}, ap)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for i := 0; i < 3; i++ {
		resp, err := cl.Get(fmt.Sprintf("http://%s:8080/big", addrB))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GET %d: %d bytes, err %v", i, len(got), err)
		}
	}
	up := bytes.Repeat([]byte("0123456789"), 30000)
	resp, err := cl.Post(fmt.Sprintf("http://%s:8080/echo", addrB), "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, up) {
		t.Fatalf("echo: %d bytes back of %d", len(got), len(up))
	}
}

func TestTCPConnDeadline(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 41)
	l, _ := n.b.ListenTCP(netip.AddrPortFrom(addrB, 80), 8)
	defer l.Close()
	dial := make(chan *TCPConn, 1)
	go func() {
		c, err := n.a.DialTCP(context.Background(), netip.AddrPort{}, netip.AddrPortFrom(addrB, 80))
		if err != nil {
			t.Error(err)
		}
		dial <- c
	}()
	c := await(n, dial)
	defer c.Close()
	c.SetReadDeadline(n.clk.Now().Add(500 * time.Millisecond))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		errc <- err
	}()
	err := await(n, errc)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("not a timeout: %v", err)
	}
}

func TestTCPConnCloseWrite(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 42)
	l, _ := n.b.ListenTCP(netip.AddrPortFrom(addrB, 80), 8)
	defer l.Close()
	dial := make(chan *TCPConn, 1)
	go func() {
		c, _ := n.a.DialTCP(context.Background(), netip.AddrPort{}, netip.AddrPortFrom(addrB, 80))
		dial <- c
	}()
	c := await(n, dial)
	acc := make(chan *TCPConn, 1)
	go func() { s, _ := l.AcceptTCP(); acc <- s }()
	s := await(n, acc)
	// Server: read to EOF, then answer and close.
	done := make(chan []byte, 1)
	go func() {
		got, _ := io.ReadAll(s)
		s.Write(append([]byte("got:"), got...))
		s.Close()
		done <- got
	}()
	c.Write([]byte("request"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := await(n, done); string(got) != "request" {
		t.Fatalf("server read %q", got)
	}
	// Read the reply on this goroutine: a blocked reader in another one
	// would race with await stepping the clock to the TIME_WAIT expiry.
	n.run(time.Second)
	c.tp.SetNonblock(true)
	r, err := io.ReadAll(c)
	if err != nil || string(r) != "got:request" {
		t.Fatalf("client read %q, %v", r, err)
	}
	if st := c.tp.State(); st != TCPTimeWait {
		t.Fatalf("client state %v, want TIME_WAIT", st)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write after CloseWrite succeeded")
	}
	c.Close()
}

func TestTCPDialRefused(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 43)
	errc := make(chan error, 1)
	go func() {
		_, err := n.a.DialTCP(context.Background(), netip.AddrPort{}, netip.AddrPortFrom(addrB, 81))
		errc <- err
	}()
	if err := await(n, errc); !errors.Is(err, errConnRefused) {
		t.Fatalf("dial to a closed port: %v", err)
	}
}

func TestTCPAcceptCancel(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 44)
	l, _ := n.b.ListenTCP(netip.AddrPortFrom(addrB, 80), 8)
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := l.Socket().Accept(ctx); errc <- err }()
	time.Sleep(time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, errIntr) {
		t.Fatalf("cancelled accept: %v", err)
	}
}

func TestTCPConnWriteDeadline(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 47)
	l, _ := n.b.ListenTCP(netip.AddrPortFrom(addrB, 80), 8)
	defer l.Close()
	dial := make(chan *TCPConn, 1)
	go func() {
		c, _ := n.a.DialTCP(context.Background(), netip.AddrPort{}, netip.AddrPortFrom(addrB, 80))
		dial <- c
	}()
	c := await(n, dial)
	defer c.Close()
	c.SetWriteDeadline(n.clk.Now().Add(2 * time.Second))
	type res struct {
		n   int
		err error
	}
	rc := make(chan res, 1)
	go func() {
		k, err := c.Write(make([]byte, 4<<20)) // the peer never reads
		rc <- res{k, err}
	}()
	// Let the writer fill the send buffer and go to sleep before simulated
	// time moves: otherwise the clock can run past the deadline before the
	// writer's goroutine is first scheduled, and it writes nothing.
	for start := time.Now(); !c.tp.Mem().Wq.HasSleepers(); time.Sleep(100 * time.Microsecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("writer never blocked on a full send buffer")
		}
	}
	r := await(n, rc)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || r.n == 0 || r.n >= 4<<20 {
		t.Fatalf("write past deadline: %d bytes, %v", r.n, r.err)
	}
}
