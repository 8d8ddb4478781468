package netstack

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
)

// tcp_tw_reuse: with ip_local_port_range down to 4 ports and every one
// in TIME_WAIT (a closed first), connect finds no port (EADDRNOTAVAIL)
// with tcp_tw_reuse 0, and with 2 (loopback only) on these addresses; a
// connect to another remote port shares a port, as inet_hash_connect
// allows; with 1 it takes a TIME_WAIT socket's tuple once that has lasted
// tcp_tw_reuse_delay (set to 2 s here), counting TWRecycled, and the new connection
// works. Without timestamps on the old connections nothing is reused.
func TestTimeWaitReuseConnect(t *testing.T) {
	for _, ts := range []bool{true, false} {
		n := newTestNet(t, impair.Config{}, impair.Config{}, 31)
		setSysctl(t, n.a, "ipv4/ip_local_port_range", "40000 40003")
		if !ts {
			setSysctl(t, n.a, "ipv4/tcp_timestamps", "0")
		}
		var l *TCPSock
		for _, port := range []uint16{81, 80} { // l: the listener on 80
			l = n.b.NewTCP()
			if err := l.Bind(netip.AddrPortFrom(addrB, port)); err != nil {
				t.Fatal(err)
			}
			if err := l.Listen(16); err != nil {
				t.Fatal(err)
			}
			l.SetNonblock(true)
		}
		connect := func(port uint16) (*TCPSock, error) {
			c := n.a.NewTCP()
			c.SetNonblock(true)
			err := c.Connect(context.Background(), netip.AddrPortFrom(addrB, port))
			if err != syscall.EINPROGRESS {
				return c, err
			}
			n.drive(func() bool { return c.State() == TCPEstablished }, 10*time.Second)
			return c, nil
		}
		for i := 0; i < 4; i++ {
			c, err := connect(80)
			if err != nil {
				t.Fatalf("connect %d: %v", i, err)
			}
			s, err := l.Accept(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			s.Close()
			n.drive(func() bool { return c.State() == TCPTimeWait }, 10*time.Second)
		}
		if tw := n.a.net.TCP.TwCount(); tw != 4 {
			t.Fatalf("%d sockets in TIME_WAIT, want 4", tw)
		}
		try := func(reuse string, port uint16) error {
			t.Helper()
			setSysctl(t, n.a, "ipv4/tcp_tw_reuse", reuse)
			c, err := connect(port)
			if err == nil {
				c.Abort()
			} else {
				c.Close()
			}
			return err
		}
		setSysctl(t, n.a, "ipv4/tcp_tw_reuse_delay", "2000")
		for _, wait := range []time.Duration{0, 1100 * time.Millisecond} {
			n.run(wait)
			if err := try("1", 80); !errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Fatalf("timestamps %v: tcp_tw_reuse 1 before tcp_tw_reuse_delay 2 s: %v, want EADDRNOTAVAIL", ts, err)
			}
		}
		n.run(time.Second)
		for _, reuse := range []string{"0", "2"} {
			if err := try(reuse, 80); !errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Fatalf("timestamps %v: tcp_tw_reuse %s: %v, want EADDRNOTAVAIL", ts, reuse, err)
			}
		}
		if err := try("0", 81); err != nil {
			t.Fatalf("another remote port: %v, want a shared port", err)
		}
		err := try("1", 80)
		recycled := n.a.mib.Get(memctl.TcpExtTWRecycled)
		if ts && (err != nil || recycled != 1) {
			t.Fatalf("tcp_tw_reuse 1: %v, TWRecycled %d, want a connection and 1", err, recycled)
		}
		if !ts && (!errors.Is(err, syscall.EADDRNOTAVAIL) || recycled != 0) {
			t.Fatalf("tcp_tw_reuse 1 without timestamps: %v, TWRecycled %d, want EADDRNOTAVAIL and 0", err, recycled)
		}
	}
}
