package fs

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"sockfs/memctl"
	"sockfs/netstack"
)

// nbctx turns a context marked WithNonblock into one whose deadline has
// passed, which the stack's blocking calls answer with EAGAIN without
// waiting (and without consuming anything). The cancel func must be called.
func nbctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if Nonblock(ctx) {
		return context.WithDeadline(ctx, time.Unix(1, 0))
	}
	return ctx, func() {}
}

type udpProto struct{ stack *netstack.Stack }

func (p udpProto) Name() string { return "udp" }
func (p udpProto) New() Conv    { return &udpConv{s: p.stack.NewUDP(), stack: p.stack} }

func (p udpProto) Stats() string {
	m := p.stack.Net().MIB
	return fmt.Sprintf("InDatagrams: %d\nNoPorts: %d\nInErrors: %d\nOutDatagrams: %d\nRcvbufErrors: %d\nSndbufErrors: %d\n",
		m.Get(memctl.UdpInDatagrams), m.Get(memctl.UdpNoPorts), m.Get(memctl.UdpInErrors),
		m.Get(memctl.UdpOutDatagrams), m.Get(memctl.UdpRcvbufErrors), m.Get(memctl.UdpSndbufErrors))
}

// udpHdrLen is the size of Plan 9's Udphdr (the `headers` mode prefix):
// raddr[16] laddr[16] ifcaddr[16] rport[2] lport[2].
const udpHdrLen = 52

// udpConv is a UDP conversation: one datagram per data read and write.
type udpConv struct {
	stack *netstack.Stack
	s     *netstack.UDPSock

	mu        sync.Mutex
	headers   bool
	hungup    bool
	released  bool
	announced bool
	// calls are the live conversations Accept made, by remote (on an
	// announced conversation); parent is the announcer of a call.
	calls  map[netip.AddrPort]*udpConv
	parent *udpConv
}

func (c *udpConv) Connect(_ context.Context, raddr, laddr netip.AddrPort) error {
	if laddr.Port() != 0 || laddr.Addr().IsValid() {
		if err := c.s.Bind(laddr); err != nil {
			return err
		}
	}
	return c.s.Connect(raddr)
}

func (c *udpConv) Announce(_ context.Context, laddr netip.AddrPort) error {
	if err := c.s.Bind(laddr); err != nil {
		return err
	}
	c.mu.Lock()
	c.announced = true
	c.mu.Unlock()
	return nil
}

func (c *udpConv) Bind(laddr netip.AddrPort) error { return c.s.Bind(laddr) }

func (c *udpConv) SetIgnoreAdvice() { c.s.SetIgnoreAdvice() }

// Queued is data's length: the bytes of every datagram queued, as Plan
// 9's qlen counts a message queue (Linux's SIOCINQ gives only the next
// datagram's).
func (c *udpConv) Queued() int { return c.s.Queued() }

// Accept is Plan 9's UDP listen with `headers` off: it waits for a
// datagram from a remote that has no conversation yet and returns a new
// conversation bound to the address it came to and connected to its
// sender (`remote`); the sender's datagrams queued so far move to it, and
// the stack delivers its later ones there. Datagrams wait in the
// announcer's queue, within its rcvbuf, until a listen is opened (Plan 9
// makes the calls at once, ten at most); reading the announcer's data
// directly still takes datagrams from anyone. An interrupted listen
// consumes nothing.
func (c *udpConv) Accept(ctx context.Context) (Conv, error) {
	c.mu.Lock()
	announced, headers := c.announced, c.headers
	c.mu.Unlock()
	if !announced {
		return nil, fmt.Errorf("not announced: %w", syscall.EINVAL)
	}
	if headers {
		return nil, fmt.Errorf("udp listen needs headers off: %w", syscall.EINVAL)
	}
	ctx, cancel := nbctx(ctx)
	defer cancel()
	for {
		from, to, err := c.s.PeekFrom(ctx)
		if err != nil {
			return nil, err
		}
		s, err := c.s.NewCall(to, from)
		if err == nil {
			call := &udpConv{stack: c.stack, s: s, parent: c}
			c.mu.Lock()
			if c.calls == nil {
				c.calls = map[netip.AddrPort]*udpConv{}
			}
			c.calls[from] = call
			c.mu.Unlock()
			return call, nil
		}
		// The sender's call exists: these datagrams were on their way to
		// the announcer while it was made. Move them, or, if that call is
		// gone too, drop the first.
		c.mu.Lock()
		old := c.calls[from]
		c.mu.Unlock()
		if old != nil {
			old.s.TakeQueued(c.s)
		}
		if f, _, err := c.s.PeekFrom(ctx); err == nil && f == from {
			c.s.RecvFrom(ctx, nil)
		}
	}
}

func (c *udpConv) isHungup() (hungup, headers bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungup, c.headers
}

func (c *udpConv) Read(ctx context.Context, p []byte) (int, error) {
	ctx, cancel := nbctx(ctx)
	defer cancel()
	hungup, headers := c.isHungup()
	if hungup {
		return 0, nil
	}
	if !headers {
		n, _, err := c.s.RecvFrom(ctx, p)
		if err == syscall.EBADF && c.hungupNow() {
			return 0, nil
		}
		return n, err
	}
	if len(p) < udpHdrLen {
		return 0, fmt.Errorf("read buffer too small for headers: %w", syscall.EINVAL)
	}
	n, from, to, err := c.s.RecvFromTo(ctx, p[udpHdrLen:])
	if err != nil {
		if err == syscall.EBADF && c.hungupNow() {
			return 0, nil
		}
		return 0, err
	}
	// laddr and ifcaddr: the address the datagram was sent to (Plan 9's
	// Udphdr), which for a wildcard announce says the family too.
	local := c.localAddr()
	if to.IsValid() && !to.IsMulticast() {
		local = netip.AddrPortFrom(to, local.Port())
	}
	clear(p[:udpHdrLen])
	a16 := netip.AddrFrom16(from.Addr().As16()).As16()
	if from.Addr().Is4() {
		a16 = netip.AddrFrom16(v4mapped(from.Addr())).As16()
	}
	copy(p[0:16], a16[:])
	l16 := v4mapped(local.Addr())
	copy(p[16:32], l16[:])
	copy(p[32:48], l16[:])
	binary.BigEndian.PutUint16(p[48:50], from.Port())
	binary.BigEndian.PutUint16(p[50:52], local.Port())
	return udpHdrLen + n, nil
}

func v4mapped(a netip.Addr) [16]byte {
	if !a.IsValid() {
		return [16]byte{}
	}
	if a.Is4() {
		return netip.AddrFrom16(a.As16()).As16()
	}
	return a.As16()
}

// localAddr is the bound address, with an unspecified address replaced by
// the first device address (Plan 9 reports the address the datagram came
// in on; the stack does not say).
func (c *udpConv) localAddr() netip.AddrPort {
	l := c.s.LocalAddr()
	if !l.Addr().IsValid() || l.Addr().IsUnspecified() {
		for _, d := range c.stack.Devices() {
			if as := d.Addrs(); len(as) > 0 && d.Name() != "lo" {
				return netip.AddrPortFrom(as[0].Addr(), l.Port())
			}
		}
	}
	return l
}

func (c *udpConv) hungupNow() bool { h, _ := c.isHungup(); return h }

func (c *udpConv) Write(ctx context.Context, p []byte) (int, error) {
	ctx, cancel := nbctx(ctx)
	defer cancel()
	hungup, headers := c.isHungup()
	if hungup {
		return 0, syscall.EPIPE
	}
	if !headers {
		return c.s.SendTo(ctx, p, netip.AddrPort{})
	}
	if len(p) < udpHdrLen {
		return 0, fmt.Errorf("short udp header: %w", syscall.EINVAL)
	}
	// raddr and rport say where to; laddr, if it is one of this host's
	// addresses, where from (Plan 9's udpkick; else the route picks it).
	dst := netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[0:16])).Unmap(), binary.BigEndian.Uint16(p[48:50]))
	laddr := netip.AddrFrom16([16]byte(p[16:32]))
	n, err := c.s.SendFromTo(ctx, p[udpHdrLen:], laddr, dst)
	if err != nil {
		return 0, err
	}
	return n + udpHdrLen, nil
}

func (c *udpConv) Readiness() Event             { return Event(c.s.Readiness()) }
func (c *udpConv) WaitQueue() *memctl.WaitQueue { return &c.s.Mem().Wq }
func (c *udpConv) Local() netip.AddrPort        { return c.s.LocalAddr() }
func (c *udpConv) Remote() netip.AddrPort       { return c.s.RemoteAddr() }
func (c *udpConv) Mem() *memctl.Sock            { return c.s.Mem() }

// Status is Plan 9's UDP status: Open or Closed, then the queues.
func (c *udpConv) Status() string {
	c.mu.Lock()
	state := "Open"
	if c.released || c.hungup {
		state = "Closed"
	}
	c.mu.Unlock()
	m := c.s.Mem()
	return fmt.Sprintf("%s qin %d qout %d\n", state, memctl.UDPRqueueGet(m), m.WmemAllocGet())
}

func (c *udpConv) Ctl(_ context.Context, f []string) error {
	switch f[0] {
	case "v6only":
		on, err := onOff(f)
		if err != nil {
			return err
		}
		return c.s.SetV6Only(on)
	case "headers":
		if len(f) != 1 {
			return fmt.Errorf("bad args to headers: %w", syscall.EINVAL)
		}
		c.mu.Lock()
		c.headers = true
		c.mu.Unlock()
		return nil
	case "ttl", "tos":
		if len(f) != 2 {
			return fmt.Errorf("bad args to %s: %w", f[0], syscall.EINVAL)
		}
		v, err := strconv.Atoi(f[1])
		if err != nil || v < 0 || v > 255 || (f[0] == "ttl" && v == 0) {
			return fmt.Errorf("bad %s value %q: %w", f[0], f[1], syscall.EINVAL)
		}
		if f[0] == "ttl" {
			c.s.SetTTL(uint8(v))
		} else {
			c.s.SetTOS(uint8(v))
		}
		return nil
	}
	return errUnknownCtl
}

func (c *udpConv) Hangup() error {
	c.mu.Lock()
	c.hungup = true
	c.mu.Unlock()
	return c.s.Close()
}

func (c *udpConv) Close() error { return c.Hangup() }

func (c *udpConv) Release() {
	c.mu.Lock()
	c.released = true
	parent := c.parent
	c.mu.Unlock()
	if parent != nil {
		remote := c.s.RemoteAddr()
		parent.mu.Lock()
		if parent.calls[remote] == c {
			delete(parent.calls, remote)
		}
		parent.mu.Unlock()
	}
	c.s.Close()
}

func (c *udpConv) Free() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released
}
