package linuxdiff

import (
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// keepaliver is a TCP socket whose keepalive can be turned on:
// SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL (seconds) and TCP_KEEPCNT.
type keepaliver interface {
	keepalive(idle, intvl, cnt int) error
}

func (s *kernelSock) keepalive(idle, intvl, cnt int) error {
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, idle},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, intvl},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, cnt},
	} {
		if err := unix.SetsockoptInt(s.fd, o.level, o.opt, o.v); err != nil {
			return err
		}
	}
	return nil
}

func (c *conv) keepalive(idle, intvl, cnt int) error {
	for _, req := range []string{"keepalive", fmt.Sprintf("keepidle %d", idle),
		fmt.Sprintf("keepintvl %d", intvl), fmt.Sprintf("keepcnt %d", cnt)} {
		if err := c.cmd(req); err != nil {
			return err
		}
	}
	return nil
}

// An idle connection with keepalive (idle 1 s, interval 1 s) for 3.5 s:
// the system probes once a second and the peer answers each probe
// (tcp_keepalive_timer; TCPKeepAlive counts the probes), on the kernel
// and on sockfs.
func TestLinuxDiffKeepalive(t *testing.T) {
	k, s := startBoth(t, nil)
	compareRoles(t, k, s, []counterRole{
		{"idle", keepaliveIdle, "an idle connection with keepalive (idle 1 s, interval 1 s) for 3.5 s"},
	}, nil, nil)
}

func keepaliveIdle(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	port, peerDone := peerServe(t, side, 10*time.Second, func(c net.Conn) error {
		_, err := c.Read(make([]byte, 1)) // until the system closes
		return err
	})
	c, before := dialCounted(t, side, port)
	defer c.Close()
	if err := c.(keepaliver).keepalive(1, 1, 5); err != nil {
		t.Fatalf("%s: keepalive: %v", side.name(), err)
	}
	time.Sleep(3500 * time.Millisecond)
	d := mibDeltas(t, side, before, append([]string{"TcpExt:TCPKeepAlive"}, diffCounters...))
	c.Close()
	<-peerDone
	if d["TcpExt:TCPKeepAlive"] != 3 {
		t.Errorf("%s: %d keepalive probes in 3.5 s at 1 s intervals, want 3", side.name(), d["TcpExt:TCPKeepAlive"])
	}
	t.Logf("%s: TCPKeepAlive %d, Tcp:OutSegs %d, Tcp:InSegs %d", side.name(), d["TcpExt:TCPKeepAlive"], d["Tcp:OutSegs"], d["Tcp:InSegs"])
	return d
}

// lingerZero is a TCP socket that can be set to reset on close
// (SO_LINGER on with a zero timeout).
type lingerZero interface {
	lingerZero() error
}

func (s *kernelSock) lingerZero() error {
	return unix.SetsockoptLinger(s.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

func (c *conv) lingerZero() error { return c.cmd("linger 0") }

// A close with SO_LINGER 0 after the data was acknowledged: a RST instead
// of a FIN, counted as TCPAbortOnData (tcp_close's zero-linger
// disconnect), on the kernel and on sockfs.
func TestLinuxDiffLingerZero(t *testing.T) {
	k, s := startBoth(t, nil)
	compareRoles(t, k, s, []counterRole{
		{"abort", lingerZeroClose, "the system sends 100 bytes on each of 10 connections and closes them with SO_LINGER 0"},
	}, nil, nil)
}

func lingerZeroClose(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	const conns = 10
	port, peerDone := peerServeN(t, side, conns, 10*time.Second, func(c net.Conn) error {
		buf := make([]byte, 200)
		for got := 0; ; { // until the reset (or an end)
			k, err := c.Read(buf)
			got += k
			if err != nil {
				if got != 100 {
					return fmt.Errorf("the peer read %d bytes before %v, want 100", got, err)
				}
				return nil
			}
		}
	})
	before, err := side.mib()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < conns; i++ {
		c, err := side.tcpDial(port)
		if err != nil {
			t.Fatalf("%s: connect %d: %v", side.name(), i, err)
		}
		writeAll(t, side, c, make([]byte, 100))
		time.Sleep(50 * time.Millisecond) // acknowledged by now
		if err := c.(lingerZero).lingerZero(); err != nil {
			t.Fatalf("%s: SO_LINGER 0: %v", side.name(), err)
		}
		c.Close()
	}
	if err := <-peerDone; err != nil {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	return rrSettled(t, side, before)
}
