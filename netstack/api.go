package netstack

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"sockfs/netstack/clock"
)

// deadline is a net.Conn read or write deadline, kept as nanoseconds of the
// wall clock (0 = none), and turned into a context per call.
type deadline struct{ t atomic.Int64 }

func (d *deadline) set(t time.Time) {
	if t.IsZero() {
		d.t.Store(0)
		return
	}
	d.t.Store(t.UnixNano())
}

// context returns a context that ends at the deadline, measured on clk.
func (d *deadline) context(clk clock.Clock) (context.Context, context.CancelFunc) {
	ns := d.t.Load()
	if ns == 0 {
		return context.Background(), func() {}
	}
	return clock.ContextWithDeadline(context.Background(), clk, time.Unix(0, ns))
}

// opError wraps a socket errno for the Go API: a passed deadline reads as
// os.ErrDeadlineExceeded (whose Timeout() is true), as net.Conn requires.
func opError(op, network string, src, dst net.Addr, err error, timedOut bool) error {
	if err == nil {
		return nil
	}
	if timedOut && err == errAgain {
		err = os.ErrDeadlineExceeded
	} else if err == errBadF {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: network, Source: src, Addr: dst, Err: err}
}

// UDPConn is a UDP socket as a net.PacketConn (and, once connected, a
// net.Conn). Safe for concurrent use.
type UDPConn struct {
	u      *UDPSock
	rd, wd deadline
}

// ListenUDP returns a UDP socket bound to laddr (port 0: ephemeral).
func (s *Stack) ListenUDP(laddr netip.AddrPort) (*UDPConn, error) {
	u := s.NewUDP()
	if err := u.Bind(laddr); err != nil {
		u.Close()
		return nil, opError("listen", "udp", nil, net.UDPAddrFromAddrPort(laddr), err, false)
	}
	return &UDPConn{u: u}, nil
}

// DialUDP returns a UDP socket connected to raddr, bound to laddr (which may
// be the zero AddrPort).
func (s *Stack) DialUDP(laddr, raddr netip.AddrPort) (*UDPConn, error) {
	u := s.NewUDP()
	if laddr.IsValid() {
		if err := u.Bind(laddr); err != nil {
			u.Close()
			return nil, opError("dial", "udp", net.UDPAddrFromAddrPort(laddr), net.UDPAddrFromAddrPort(raddr), err, false)
		}
	}
	if err := u.Connect(raddr); err != nil {
		u.Close()
		return nil, opError("dial", "udp", nil, net.UDPAddrFromAddrPort(raddr), err, false)
	}
	return &UDPConn{u: u}, nil
}

// Socket returns the underlying socket.
func (c *UDPConn) Socket() *UDPSock { return c.u }

// ReadFromUDPAddrPort reads one datagram.
func (c *UDPConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	ctx, cancel := c.rd.context(c.u.stack.clock)
	defer cancel()
	n, from, err := c.u.RecvFrom(ctx, p)
	if err != nil {
		return 0, from, opError("read", "udp", c.LocalAddr(), nil, err, ctx.Err() != nil)
	}
	return n, from, nil
}

// ReadFrom implements net.PacketConn.
func (c *UDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(p)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// Read implements net.Conn for a connected socket.
func (c *UDPConn) Read(p []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(p)
	return n, err
}

// WriteToUDPAddrPort sends one datagram to dst.
func (c *UDPConn) WriteToUDPAddrPort(p []byte, dst netip.AddrPort) (int, error) {
	ctx, cancel := c.wd.context(c.u.stack.clock)
	defer cancel()
	n, err := c.u.SendTo(ctx, p, dst)
	if err != nil {
		return 0, opError("write", "udp", c.LocalAddr(), net.UDPAddrFromAddrPort(dst), err, ctx.Err() != nil)
	}
	return n, nil
}

// WriteTo implements net.PacketConn.
func (c *UDPConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errInval}
	}
	return c.WriteToUDPAddrPort(p, ua.AddrPort())
}

// Write implements net.Conn for a connected socket.
func (c *UDPConn) Write(p []byte) (int, error) {
	return c.WriteToUDPAddrPort(p, netip.AddrPort{})
}

// Close closes the socket; blocked calls return net.ErrClosed.
func (c *UDPConn) Close() error { return c.u.Close() }

// LocalAddr returns the bound address.
func (c *UDPConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.u.LocalAddr()) }

// RemoteAddr returns the connected peer, or nil.
func (c *UDPConn) RemoteAddr() net.Addr {
	if r := c.u.RemoteAddr(); r.IsValid() {
		return net.UDPAddrFromAddrPort(r)
	}
	return nil
}

// SetDeadline sets both deadlines. A deadline applies to calls that start
// after it is set.
func (c *UDPConn) SetDeadline(t time.Time) error { c.rd.set(t); c.wd.set(t); return nil }

// SetReadDeadline sets the read deadline.
func (c *UDPConn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline sets the write deadline.
func (c *UDPConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)
