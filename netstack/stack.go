// Package netstack is sockfs's TCP/IP stack: devices and their naming,
// routing, IPv4 with fragmentation and reassembly, ICMP, UDP, TCP and the
// socket layer, with a Go API (net.PacketConn, net.Conn, net.Listener).
//
// Threading: there is no goroutine per connection. Received packets are
// processed in the goroutine of the device that delivered them (netif_rx);
// timers run on the stack's clock goroutine; user calls run in the caller's
// goroutine and block on per-socket wait queues, cancellable by a context.
package netstack

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// Options configure a Stack.
type Options struct {
	// Clock drives every timer in the stack. Nil means a real clock, which
	// the stack owns and closes.
	Clock clock.Clock
	// Net is the accounting domain (sysctls, protocol memory pools, MIB
	// counters), like a Linux network namespace. Nil means a new one.
	Net *memctl.Net
	// Seed seeds the stack's pseudo-random choices (ephemeral ports, IP IDs,
	// ISNs), so simulations are reproducible. 0 means a random seed.
	Seed uint64
	// Logger receives the stack's log; nil means slog.Default().
	Logger *slog.Logger
}

// Stack is one TCP/IP stack instance: one machine's worth of network state.
type Stack struct {
	clock     clock.Clock
	ownsClock bool
	net       *memctl.Net
	mib       *memctl.MIB
	log       *slog.Logger

	mu      sync.RWMutex
	devs    []*NetDevice // by index - 1
	devSeq  map[string]int
	lo      *NetDevice // the loopback device, if attached
	closing bool

	routes routeTable
	ipID   atomic.Uint32
	frags  ipfragTable
	frags6 ipfragTable // IPv6 reassembly (Linux: net->ipv6.fqdir)
	pmtu   pmtuTable
	icmp   icmpState
	udp    udpTable
	tcp    tcpTable

	rngMu sync.Mutex
	rng   rngState
}

// New returns a stack with no devices.
func New(opts Options) *Stack {
	s := &Stack{
		clock:  opts.Clock,
		net:    opts.Net,
		log:    opts.Logger,
		devSeq: make(map[string]int),
	}
	if s.clock == nil {
		s.clock = clock.NewReal()
		s.ownsClock = true
	}
	if s.net == nil {
		s.net = memctl.NewNet(memctl.Options{})
	}
	s.mib = s.net.MIB
	if s.log == nil {
		s.log = slog.Default()
	}
	s.rng.seed(opts.Seed)
	s.ipID.Store(uint32(s.rng.next()))
	s.frags.init(s, &ipv4Frag)
	s.frags6.init(s, &ipv6Frag)
	s.icmp.init(s)
	s.udp.init(s)
	s.tcp.init(s)
	return s
}

// Clock returns the stack's clock.
func (s *Stack) Clock() clock.Clock { return s.clock }

// Net returns the stack's accounting domain.
func (s *Stack) Net() *memctl.Net { return s.net }

// Close stops every device and releases the stack's resources.
func (s *Stack) Close() error {
	s.mu.Lock()
	s.closing = true
	devs := append([]*NetDevice(nil), s.devs...)
	s.mu.Unlock()
	s.udp.closeAll()
	s.tcp.closeAll()
	for _, d := range devs {
		if d != nil {
			d.dev.Stop()
			d.closeImpair()
		}
	}
	s.frags.destroy()
	s.frags6.destroy()
	if s.ownsClock {
		if c, ok := s.clock.(interface{ Close() }); ok {
			c.Close()
		}
	}
	return nil
}

// NetDevice is a device attached to the stack: the stack's half of
// struct net_device (name, index, addresses), around a link.Device that
// does the I/O. It is the device's Receiver: packets enter the stack through
// its NetifRx.
type NetDevice struct {
	stack *Stack
	dev   link.Device
	index int
	name  string

	mu    sync.RWMutex
	addrs []netip.Prefix
	// peers holds the remote network of each point-to-point address (an
	// address added with AddPeerAddress, kept as local/32 in addrs).
	peers map[netip.Addr]netip.Prefix
	mtu   atomic.Int32 // set by SetMTU (ipifc ctl `mtu`); 0 = the link's

	imp devImpair // ipifc/N/impair
	rx  rxBatch   // NetifRx's; calls for one device never overlap
	rxi rxBatch   // the In impairment stage's deliveries (clock goroutine)
	// gsoScratch holds NetifRx's segments of super-packets on their way
	// to the In impairment stage (gsoSegment).
	gsoScratch []*skb.SKB
}

// Name is the device's name: lo, tun0, pipe1, ...
func (d *NetDevice) Name() string { return d.name }

// Index is the interface index (1 for the first device).
func (d *NetDevice) Index() int { return d.index }

// Device returns the underlying link device.
func (d *NetDevice) Device() link.Device { return d.dev }

// MTU returns the device's MTU: the one SetMTU set, else the link's.
func (d *NetDevice) MTU() int {
	if m := d.mtu.Load(); m > 0 {
		return int(m)
	}
	return d.dev.MTU()
}

// MinMTU is the smallest MTU SetMTU takes: IPv4's minimum (RFC 791).
const MinMTU = 68

// SetMTU sets the MTU the stack sends with on d (dev->mtu, as `ip link set
// mtu`): between MinMTU and the link's own MTU, which the device cannot
// exceed; anything else is EINVAL and changes nothing. Connections already
// open keep the MSS they negotiated; what they send is fragmented or cut
// to the new MTU from then on.
func (d *NetDevice) SetMTU(mtu int) error {
	if mtu < MinMTU || mtu > d.dev.MTU() {
		return fmt.Errorf("mtu %d out of range %d..%d: %w", mtu, MinMTU, d.dev.MTU(), errInval)
	}
	d.mtu.Store(int32(mtu))
	return nil
}

// Addrs returns the device's addresses.
func (d *NetDevice) Addrs() []netip.Prefix {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]netip.Prefix(nil), d.addrs...)
}

// NetifRx takes a batch of received IPv4 packets from the device. It runs
// in the device's goroutine and processes each packet to completion.
// Mirrors netif_receive_skb (the stack has no backlog queue of its own: the
// device already hands it packets outside any socket lock).
func (d *NetDevice) NetifRx(batch []*skb.SKB) {
	if st := d.impairStage(In); st != nil {
		// An impaired link impairs wire-sized packets (gsoSegment).
		segs := d.gsoScratch[:0]
		for i, b := range batch {
			segs = gsoSegment(b, segs)
			batch[i] = nil
		}
		st.EnqueueBatch(segs)
		clear(segs)
		d.gsoScratch = segs[:0]
		return
	}
	rx := &d.rx
	for i, b := range batch {
		b.Dev = d.index
		d.stack.ipRcv(d, b, rx)
		batch[i] = nil
	}
	rx.flush()
}

// AddDevice attaches dev, names it by kind and number as Linux does
// (dev_alloc_name: "tun%d" takes the lowest free number; a loopback device
// is "lo"), and opens it.
func (s *Stack) AddDevice(dev link.Device) (*NetDevice, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, errBadF
	}
	kind := dev.Kind()
	name := kind
	if kind != "lo" {
		name = fmt.Sprintf("%s%d", kind, s.devSeq[kind])
		s.devSeq[kind]++
	}
	nd := &NetDevice{stack: s, dev: dev, index: len(s.devs) + 1, name: name}
	s.devs = append(s.devs, nd)
	s.mu.Unlock()
	if err := dev.Open(nd); err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if kind == "lo" {
		s.mu.Lock()
		s.lo = nd
		s.mu.Unlock()
		if err := s.AddAddress(nd, netip.MustParsePrefix("127.0.0.1/8")); err != nil {
			return nil, err
		}
		if err := s.AddAddress(nd, netip.MustParsePrefix("::1/128")); err != nil {
			return nil, err
		}
	}
	return nd, nil
}

// Devices returns the attached devices in index order.
func (s *Stack) Devices() []*NetDevice {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*NetDevice(nil), s.devs...)
}

// DeviceByIndex returns the device with the given index, or nil.
func (s *Stack) DeviceByIndex(i int) *NetDevice {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i < 1 || i > len(s.devs) {
		return nil
	}
	return s.devs[i-1]
}

// AddAddress assigns addr (with its prefix length; IPv4 or IPv6) to d and
// adds the connected route for its network, as `ip addr add` does.
func (s *Stack) AddAddress(d *NetDevice, addr netip.Prefix) error {
	if !addr.IsValid() || addr.Addr().Is4In6() || addr.Addr().Zone() != "" ||
		addr.Addr().IsMulticast() || addr.Addr().IsUnspecified() {
		return fmt.Errorf("%s: not a unicast address: %w", addr, errInval)
	}
	d.mu.Lock()
	for _, a := range d.addrs {
		if a.Addr() == addr.Addr() {
			d.mu.Unlock()
			return fmt.Errorf("address %s: %w", addr, errExist)
		}
	}
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	if addr.Bits() == addr.Addr().BitLen() {
		return nil
	}
	// An existing route to the same network keeps working; like Linux we do
	// not add a second one.
	_ = s.routes.add(Route{Dst: addr.Masked(), Dev: d, Src: addr.Addr(), Connected: true})
	return nil
}

// AddPeerAddress assigns local to d as the near end of a point-to-point
// link to peer (a host, /32, or a network reached directly through d), as
// `ip addr add LOCAL peer PEER` does: local itself has no network (it is
// kept as local/32), and the connected route goes to peer, with local as
// its source. Mirrors __inet_insert_ifa with an ifa_address different
// from ifa_local (fib_add_ifaddr then adds the prefix route of the peer).
func (s *Stack) AddPeerAddress(d *NetDevice, local netip.Addr, peer netip.Prefix) error {
	if !local.Is4() || !peer.Addr().Is4() {
		return fmt.Errorf("%s peer %s: only IPv4 is supported: %w", local, peer, errInval)
	}
	if err := s.routes.checkFree(peer); err != nil {
		return err
	}
	if err := s.AddAddress(d, netip.PrefixFrom(local, 32)); err != nil {
		return err
	}
	d.mu.Lock()
	if d.peers == nil {
		d.peers = make(map[netip.Addr]netip.Prefix)
	}
	d.peers[local] = peer.Masked()
	d.mu.Unlock()
	if err := s.routes.add(Route{Dst: peer.Masked(), Dev: d, Src: local, Connected: true}); err != nil {
		s.RemoveAddress(d, netip.PrefixFrom(local, 32))
		return err
	}
	return nil
}

// Peer returns the remote network of local if it is a point-to-point
// address of d (AddPeerAddress).
func (d *NetDevice) Peer(local netip.Addr) (netip.Prefix, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.peers[local]
	return p, ok
}

// RemoveAddress takes addr (address and prefix length, as added; local/32
// for a point-to-point address) off d, with the connected route it
// brought (`ip addr del`). An address d does not have is EADDRNOTAVAIL and
// changes nothing.
func (s *Stack) RemoveAddress(d *NetDevice, addr netip.Prefix) error {
	d.mu.Lock()
	i := slices.Index(d.addrs, addr)
	if i < 0 {
		d.mu.Unlock()
		return fmt.Errorf("address %s not on %s: %w", addr, d.name, syscall.EADDRNOTAVAIL)
	}
	d.addrs = slices.Delete(d.addrs, i, i+1)
	rest := slices.Clone(d.addrs)
	peer, ptp := d.peers[addr.Addr()]
	if ptp && addr.Bits() == addr.Addr().BitLen() {
		delete(d.peers, addr.Addr())
	}
	d.mu.Unlock()
	if ptp && addr.Bits() == addr.Addr().BitLen() {
		s.routes.delConnected(d, peer, addr.Addr())
		return nil
	}
	if addr.Bits() == addr.Addr().BitLen() {
		return nil
	}
	if s.routes.delConnected(d, addr.Masked(), addr.Addr()) {
		// Another address on the same network takes the route over.
		for _, a := range rest {
			if a.Masked() == addr.Masked() {
				_ = s.routes.add(Route{Dst: a.Masked(), Dev: d, Src: a.Addr(), Connected: true})
				break
			}
		}
	}
	return nil
}

// routeOutput picks the route for a packet to dst: the loopback device for
// one of the stack's own addresses (Linux's local table), else the FIB,
// marked Broadcast for a broadcast destination.
// Mirrors ip_route_output_key.
func (s *Stack) routeOutput(dst netip.Addr) (Route, bool) {
	s.mu.RLock()
	lo := s.lo
	s.mu.RUnlock()
	typ := s.inetAddrType(dst)
	if lo != nil && (dst.IsLoopback() || typ == rtnLocal) {
		return Route{Dst: netip.PrefixFrom(dst, dst.BitLen()), Dev: lo, Src: dst}, true
	}
	rt, ok := s.routes.lookup(dst)
	rt.Broadcast = ok && typ == rtnBroadcast // __mkroute_output: RTCF_BROADCAST
	return rt, ok
}

// AddRoute adds a static route; a zero Dst prefix (0.0.0.0/0) is the default.
func (s *Stack) AddRoute(r Route) error { return s.routes.add(r) }

// DelRoute removes the route to dst.
func (s *Stack) DelRoute(dst netip.Prefix) error { return s.routes.del(dst) }

// FlushRoutes removes every route that is not a connected one; with a
// non-empty tag, only the routes carrying that tag (Plan 9's `flush`).
func (s *Stack) FlushRoutes(tag string) { s.routes.flush(tag) }

// Routes returns the routing table, longest prefixes first.
func (s *Stack) Routes() []Route { return s.routes.snapshot() }

// isLocalAddr reports whether a is one of the stack's addresses (not a
// broadcast: see inetAddrType). Mirrors the RTN_LOCAL lookup.
func (s *Stack) isLocalAddr(a netip.Addr) bool {
	return s.inetAddrType(a) == rtnLocal
}

// rtnType is what the local table says of an address. Mirrors the
// RTN_LOCAL / RTN_BROADCAST route types (rt_type).
type rtnType uint8

const (
	rtnUnicast   rtnType = iota // not the host's: routed elsewhere
	rtnLocal                    // one of the host's addresses
	rtnBroadcast                // the limited broadcast, or a network's
)

// limitedBroadcast is 255.255.255.255.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// inetAddrType classifies a in one pass over the addresses: rtnLocal for
// an address of the stack's, rtnBroadcast for the limited broadcast or the
// directed broadcast of an IPv4 address's network, else rtnUnicast. The
// directed broadcasts are the RTN_BROADCAST routes fib_add_ifaddr puts in
// the local table: prefix|~mask for a prefix shorter than /31 outside
// 0.0.0.0/8 (the peer's prefix for a point-to-point address); a /31 or /32
// has none (RFC 3021). Mirrors inet_addr_type, and ip_route_input_slow's
// ipv4_is_lbcast test for the limited broadcast.
func (s *Stack) inetAddrType(a netip.Addr) rtnType {
	if a == limitedBroadcast {
		return rtnBroadcast
	}
	typ := rtnUnicast
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, d := range s.devs {
		d.mu.RLock()
		for _, p := range d.addrs {
			if p.Addr() == a {
				d.mu.RUnlock()
				return rtnLocal
			}
			if a.Is4() && p.Addr().Is4() && typ == rtnUnicast {
				net := p
				if peer, ok := d.peers[p.Addr()]; ok {
					net = peer
				}
				if subnetBroadcast(net) == a {
					typ = rtnBroadcast
				}
			}
		}
		d.mu.RUnlock()
	}
	return typ
}

// subnetBroadcast is the directed broadcast address of the IPv4 network p
// (prefix|~mask), or the zero Addr if fib_add_ifaddr adds none for it: a
// prefix of /31 or longer, or one in 0.0.0.0/8 (ipv4_is_zeronet).
func subnetBroadcast(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() || p.Bits() >= 31 || p.Masked().Addr().As4()[0] == 0 {
		return netip.Addr{}
	}
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | ^uint32(0)>>p.Bits()
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// rngState is a small deterministic generator (SplitMix64) for port, ID and
// sequence-number choices; seeded so simulations repeat.
type rngState struct{ x uint64 }

func (r *rngState) seed(s uint64) {
	if s == 0 {
		s = uint64(nanotimeSeed())
	}
	r.x = s
}

func (r *rngState) next() uint64 {
	r.x += 0x9e3779b97f4a7c15
	z := r.x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rand returns a pseudo-random uint64 from the stack's generator.
func (s *Stack) rand() uint64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.next()
}
