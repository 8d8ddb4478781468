package netstack

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// Sizes of the UDP send path: __ip_append_data allocates
// payload + IP and UDP headers + LL_RESERVED_SPACE (16 for a device with no
// link header) + 15 bytes of slack.
const (
	udpHeaderLen  = 8
	llReserved    = 16
	udpAllocSlack = 15
)

// maxUDPPayload is the largest payload of a datagram to dst: 65507 for
// IPv4, whose 16-bit total length counts the IP header (ip_append_data's
// 0xFFFF - fragheaderlen), 65527 for IPv6, whose payload length leaves
// the fixed header out (ip6_append_data's IPV6_MAXPLEN).
func maxUDPPayload(dst netip.Addr) int {
	if dst.Is6() {
		return 0xffff - udpHeaderLen
	}
	return 0xffff - header.IPv4MinSize - udpHeaderLen
}

// defaultTTL is the TTL of packets from sockets without IP_TTL: the live
// sysctl ip_default_ttl. Mirrors ip_select_ttl.
func (s *Stack) defaultTTL() uint8 { return s.net.Sysctls.IPDefaultTTL() }

// defaultTTLFor is the default TTL of a packet to dst: ip_default_ttl, or
// for IPv6 the hop limit conf/all/hop_limit (ip6_dst_hoplimit).
func (s *Stack) defaultTTLFor(dst netip.Addr) uint8 {
	if dst.Is6() {
		return s.net.Sysctls.IP6HopLimit()
	}
	return s.defaultTTL()
}

// netHeaderLen is the size of the network header of a packet to a: 20
// bytes for IPv4, 40 for IPv6. Mirrors icsk_af_ops->net_header_len, the
// one thing (with the pseudo-header) tcp_v6's shims change for TCP.
func netHeaderLen(a netip.Addr) int {
	if a.Is6() {
		return header.IPv6MinSize
	}
	return header.IPv4MinSize
}

// UDPSock is a UDP socket. Its methods are safe for concurrent use.
type UDPSock struct {
	stack *Stack
	sk    *memctl.Sock

	// mu is the socket lock; it also guards the receive queue and UDP's
	// forward_alloc (Linux uses the receive queue's spinlock for that).
	mu       sync.Mutex
	rcvq     skb.Queue
	local    netip.AddrPort // bound address (unspecified addr = any)
	remote   netip.AddrPort // connected peer, or invalid
	bound    bool
	closed   bool
	nonblock atomic.Bool
	// ignoreAdvice is Plan 9's ignoreadvice: ICMP errors are not
	// reported to the socket (SetIgnoreAdvice).
	ignoreAdvice atomic.Bool
	ttl          uint8
	tos          uint8
	v6only       bool // IPV6_V6ONLY: a :: binding takes IPv6 only
	// madeCalls: NewCall has made calls from this socket, so a datagram
	// looked up to it may belong to a call made since (see queueRcvAt).
	madeCalls bool
}

// udpMIB is the Udp counter c, or its Udp6 twin for an IPv6 datagram:
// Linux counts each family in its own group (UDP_INC_STATS /
// UDP6_INC_STATS) from the same code.
func udpMIB(c memctl.Counter, v6 bool) memctl.Counter {
	if v6 {
		return c + memctl.Udp6InDatagrams - memctl.UdpInDatagrams
	}
	return c
}

// udpTable maps local ports to the sockets bound to them. Mirrors
// udp_table (hashed by port only; this stack has few sockets per port).
type udpTable struct {
	stack *Stack
	mu    sync.RWMutex
	ports map[uint16][]*UDPSock
}

func (t *udpTable) init(s *Stack) {
	t.stack = s
	t.ports = make(map[uint16][]*UDPSock)
}

func (t *udpTable) closeAll() {
	t.mu.RLock()
	var all []*UDPSock
	for _, l := range t.ports {
		all = append(all, l...)
	}
	t.mu.RUnlock()
	for _, u := range all {
		u.Close()
	}
}

// NewUDP returns an unbound UDP socket. Mirrors socket(AF_INET, SOCK_DGRAM).
func (s *Stack) NewUDP() *UDPSock {
	sk := memctl.NewSock(s.net, memctl.SockDgram, s.net.UDP)
	sk.InitUDPSock()
	u := &UDPSock{stack: s, sk: sk}
	return u
}

// Mem returns the socket's accounting.
func (u *UDPSock) Mem() *memctl.Sock { return u.sk }

// SetV6Only sets IPV6_V6ONLY (see TCPSock.SetV6Only); EINVAL once bound.
func (u *UDPSock) SetV6Only(on bool) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bound {
		return errInval
	}
	u.v6only = on
	return nil
}

// SetNonblock sets O_NONBLOCK.
func (u *UDPSock) SetNonblock(nb bool) { u.nonblock.Store(nb) }

// SetIgnoreAdvice is Plan 9's `ignoreadvice` ctl: ICMP errors (a port
// unreachable to a connected socket) no longer set the socket's error.
// Linux has no such option; path MTU updates still apply.
func (u *UDPSock) SetIgnoreAdvice() { u.ignoreAdvice.Store(true) }

// Queued is the payload bytes of all the datagrams in the receive queue.
func (u *UDPSock) Queued() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.rcvq.Bytes()
}

// LocalAddr returns the bound address.
func (u *UDPSock) LocalAddr() netip.AddrPort {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.local
}

// RemoteAddr returns the connected peer, or the zero AddrPort.
func (u *UDPSock) RemoteAddr() netip.AddrPort {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.remote
}

// Bind binds the socket to addr; port 0 picks an ephemeral port and an
// invalid or unspecified address means any local address. Mirrors
// inet_bind + udp_v4_get_port.
func (u *UDPSock) Bind(addr netip.AddrPort) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errBadF
	}
	if u.bound {
		return errInval
	}
	return u.bindLocked(addr)
}

func (u *UDPSock) bindLocked(addr netip.AddrPort) error {
	a, err := bindableAddr(addr.Addr(), u.v6only)
	if err != nil {
		return err
	}
	if !a.IsUnspecified() && !u.stack.isLocalAddr(a) {
		return errAddrNotAvail
	}
	t := &u.stack.udp
	t.mu.Lock()
	defer t.mu.Unlock()
	free := func(p uint16) bool {
		for _, o := range t.ports[p] {
			if bindConflict(a, u.v6only, o.local.Addr(), o.v6only) {
				return false
			}
		}
		return true
	}
	port := addr.Port()
	if port == 0 {
		if port = u.stack.pickEphemeral(free); port == 0 {
			return errAddrInUse
		}
	} else if !free(port) {
		return errAddrInUse
	}
	u.local = netip.AddrPortFrom(a, port)
	u.bound = true
	t.ports[port] = append(t.ports[port], u)
	u.sk.Proto().InuseAdd(1) // udp_lib_get_port: sock_prot_inuse_add
	return nil
}

// Connect sets the default destination and filters received datagrams to
// those from it; it binds an ephemeral port (and picks the source address
// from the route) if the socket is unbound. Mirrors ip4_datagram_connect.
func (u *UDPSock) Connect(raddr netip.AddrPort) error {
	raddr = netip.AddrPortFrom(selfIfAny(raddr.Addr().Unmap()), raddr.Port())
	if !raddr.Addr().IsValid() || raddr.Port() == 0 {
		return errInval
	}
	rt, ok := u.stack.routeOutput(raddr.Addr())
	if !ok {
		return errNetUnreach
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errBadF
	}
	if u.bound && !familyOK(u.local.Addr(), u.v6only, raddr.Addr()) {
		return errAFNoSupport
	}
	if !u.bound {
		if err := u.bindLocked(netip.AddrPortFrom(unspecFor(raddr.Addr()), 0)); err != nil {
			return err
		}
	}
	if u.local.Addr().IsUnspecified() {
		u.stack.udp.mu.Lock()
		u.local = netip.AddrPortFrom(rt.Src, u.local.Port())
		u.stack.udp.mu.Unlock()
	}
	u.remote = raddr
	return nil
}

// NewCall returns a new socket for the calls from remote to local on u's
// port: bound to local!port (sharing the port with u, which must be
// bound) and connected to remote, so that the stack delivers remote's
// datagrams to it rather than to u (a connected socket wins the lookup).
// It is how Plan 9's UDP turns a datagram from a new remote on an
// announced conversation into a conversation of its own (Fsnewcall). A
// socket already connected to remote on that port and address is
// EADDRINUSE. The new socket has u's ttl and tos.
func (u *UDPSock) NewCall(local netip.Addr, remote netip.AddrPort) (*UDPSock, error) {
	local, remote = local.Unmap(), netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if !local.IsValid() || local.Is4() != remote.Addr().Is4() || remote.Port() == 0 {
		return nil, errInval
	}
	u.mu.Lock()
	closed, bound, port, ttl, tos := u.closed, u.bound, u.local.Port(), u.ttl, u.tos
	u.madeCalls = bound && !closed
	u.mu.Unlock()
	if closed {
		return nil, errBadF
	}
	if !bound {
		return nil, errInval
	}
	n := u.stack.NewUDP()
	n.ttl, n.tos = ttl, tos
	t := &u.stack.udp
	t.mu.Lock()
	for _, o := range t.ports[port] {
		if o.remote == remote && (o.local.Addr() == local || o.local.Addr().IsUnspecified()) {
			t.mu.Unlock()
			n.Close()
			return nil, errAddrInUse
		}
	}
	n.local, n.remote, n.bound = netip.AddrPortFrom(local, port), remote, true
	t.ports[port] = append(t.ports[port], n)
	n.sk.Proto().InuseAdd(1)
	t.mu.Unlock()
	n.TakeQueued(u)
	return n, nil
}

// TakeQueued moves the datagrams from n's remote to its local address
// that are queued on u (they arrived before n existed) to n, uncharged
// from u as a read would, charged to n as a delivery, and ahead of any
// that reached n directly (those arrived later). NewCall does it; with
// queueRcvAt's second lookup, nothing from n's remote can be left on u
// after it, but a caller may do it again.
func (n *UDPSock) TakeQueued(u *UDPSock) {
	var moved skb.Queue
	u.mu.Lock()
	for b := u.rcvq.Peek(); b != nil; {
		next := b.Next()
		if from, to := skbAddrs(b); from == n.remote && to == n.local.Addr() {
			u.rcvq.Unlink(b)
			memctl.UDPRmemRelease(u.sk, b.Truesize(), true, u.rcvq.Empty())
			moved.PushBack(b)
		}
		b = next
	}
	u.mu.Unlock()
	if moved.Empty() {
		return
	}
	n.mu.Lock()
	var at *skb.SKB // the last one moved so far: the next goes after it
	for b := moved.PopFront(); b != nil; b = moved.PopFront() {
		if n.closed || memctl.UDPQueueRcvSkb(n.sk, b, skbIsV6(b)) != nil {
			b.Free()
			continue
		}
		if at == nil {
			n.rcvq.PushFront(b)
		} else {
			n.rcvq.InsertAfter(at, b)
		}
		at = b
	}
	n.mu.Unlock()
	n.sk.Wq.Wake() // sk_data_ready
}

// Close releases the socket: it leaves the port table, drops queued
// datagrams (releasing their charge) and drops its reference. Mirrors
// udp_lib_close / udp_destroy_sock.
func (u *UDPSock) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	if u.bound {
		t := &u.stack.udp
		t.mu.Lock()
		l := t.ports[u.local.Port()]
		for i, o := range l {
			if o == u {
				l = append(l[:i], l[i+1:]...)
				break
			}
		}
		if len(l) == 0 {
			delete(t.ports, u.local.Port())
		} else {
			t.ports[u.local.Port()] = l
		}
		t.mu.Unlock()
		u.sk.Proto().InuseAdd(-1) // udp_lib_unhash
	}
	total := 0
	for b := u.rcvq.PopFront(); b != nil; b = u.rcvq.PopFront() {
		total += b.Truesize()
		b.Free()
	}
	memctl.UDPRmemRelease(u.sk, total, false, true)
	u.sk.Shutdown(memctl.RcvShutdown | memctl.SendShutdown)
	u.mu.Unlock()
	u.sk.Wq.Wake()
	u.sk.Put()
	return nil
}

// udpRcv delivers a datagram from src to dst whose data starts at the UDP
// header, of either family. It takes ownership of b. Mirrors
// __udp4_lib_rcv and __udp6_lib_rcv, which differ in the pseudo-header, in
// the counters' group, and in IPv6's checksum being mandatory (RFC 8200
// 8.1: a zero checksum is an error, udp6_csum_init). mcast says the
// datagram was sent to a broadcast (or multicast) address: one no socket
// takes is counted in IgnoredMulti, before its checksum is verified, and
// draws no port unreachable, as in __udp4_lib_mcast_deliver.
// Deviation: it goes to the one socket the unicast lookup picks, not to
// every matching socket: sockfs's bind rules let only one unconnected
// socket per port take a broadcast, and Plan 9's calls take their remote's
// datagrams from their announcer as for unicast.
func (s *Stack) udpRcv(b *skb.SKB, src, dst netip.Addr, mcast bool) {
	v6 := dst.Is6()
	uh := header.UDP(b.Data())
	if len(uh) < udpHeaderLen {
		s.mib.Inc(udpMIB(memctl.UdpInErrors, v6))
		b.Free()
		return
	}
	ulen := int(uh.Length())
	if ulen < udpHeaderLen || ulen > b.Len() {
		s.mib.Inc(udpMIB(memctl.UdpInErrors, v6))
		b.Free()
		return
	}
	if ulen < b.Len() {
		b.Trim(ulen)
		uh = header.UDP(b.Data())
	}
	if mcast && s.udp.lookup(dst, uh.DstPort(), src, uh.SrcPort()) == nil {
		s.mib.Inc(udpMIB(memctl.UdpIgnoredMulti, v6))
		b.Free()
		return
	}
	// Verified by the device, or partial from the local host: trusted, as
	// udp4_csum_init's skb_checksum_init_zero_check does.
	if v6 && uh.Checksum() == 0 ||
		uh.Checksum() != 0 && !b.CsumUnnecessary() && !uh.IsChecksumValid(src, dst) {
		s.mib.Inc(udpMIB(memctl.UdpInCsumErrors, v6))
		s.mib.Inc(udpMIB(memctl.UdpInErrors, v6))
		b.Free()
		return
	}
	u := s.udp.lookup(dst, uh.DstPort(), src, uh.SrcPort())
	if u == nil {
		s.mib.Inc(udpMIB(memctl.UdpNoPorts, v6))
		s.icmpPortUnreach(b)
		b.Free()
		return
	}
	b.SetTransportHeader()
	b.Pull(udpHeaderLen)
	u.queueRcvAt(b, func() *UDPSock { return s.udp.lookup(dst, uh.DstPort(), src, uh.SrcPort()) })
}

// queueRcvAt is queueRcv for a datagram that lookup found u for. If u has
// made calls (NewCall), the lookup is done again with u's lock held: a
// call for the datagram's sender made between the first lookup and now
// takes it, and one made after will find it on u when it takes u's
// queued datagrams, so that nothing from a call's remote is left on the
// announcer. (Linux has no calls; this serves Plan 9's UDP listen.)
func (u *UDPSock) queueRcvAt(b *skb.SKB, lookup func() *UDPSock) {
	u.mu.Lock()
	if u.madeCalls {
		if n := lookup(); n != nil && n != u {
			u.mu.Unlock()
			n.queueRcv(b)
			return
		}
	}
	u.queueRcvLocked(b)
}

// lookup finds the socket for a datagram, preferring a connected socket that
// matches the source, then a specific local address over a wildcard. Mirrors
// the scoring of __udp4_lib_lookup.
func (t *udpTable) lookup(daddr netip.Addr, dport uint16, saddr netip.Addr, sport uint16) *UDPSock {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var best *UDPSock
	bestScore := -1
	for _, u := range t.ports[dport] {
		score := localMatch(u.local.Addr(), u.v6only, daddr)
		if score < 0 {
			continue
		}
		if u.remote.IsValid() {
			if u.remote.Addr() != saddr || u.remote.Port() != sport {
				continue
			}
			score += 8
		}
		if score > bestScore {
			best, bestScore = u, score
		}
	}
	return best
}

// queueRcv charges and queues a datagram (data at the payload). Mirrors
// udp_queue_rcv_skb -> __udp_queue_rcv_skb.
func (u *UDPSock) queueRcv(b *skb.SKB) {
	u.mu.Lock()
	u.queueRcvLocked(b)
}

// queueRcvLocked is queueRcv with u.mu held; it unlocks it.
func (u *UDPSock) queueRcvLocked(b *skb.SKB) {
	if u.closed {
		u.mu.Unlock()
		b.Free()
		return
	}
	if memctl.UDPQueueRcvSkb(u.sk, b, skbIsV6(b)) != nil {
		u.mu.Unlock()
		b.Free()
		return
	}
	u.rcvq.PushBack(b)
	u.mu.Unlock()
	u.sk.Wq.Wake() // sk_data_ready
}

// RecvFrom reads one datagram into p and returns its length (truncated to
// len(p); the rest of the datagram is discarded, as with MSG_TRUNC unset) and
// its source. It blocks until a datagram arrives unless the socket is
// non-blocking (EAGAIN); ctx cancels it (EINTR) or times it out (EAGAIN)
// without consuming anything. Mirrors udp_recvmsg.
func (u *UDPSock) RecvFrom(ctx context.Context, p []byte) (int, netip.AddrPort, error) {
	n, from, _, err := u.RecvFromTo(ctx, p)
	return n, from, err
}

// RecvFromTo is RecvFrom that also returns the address the datagram was
// sent to: a socket bound to the unspecified address learns which of the
// host's addresses (and which family) it arrived on. Mirrors udp_recvmsg
// with IP_PKTINFO / IPV6_RECVPKTINFO.
func (u *UDPSock) RecvFromTo(ctx context.Context, p []byte) (int, netip.AddrPort, netip.Addr, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.waitQueuedLocked(ctx); err != nil {
		return 0, netip.AddrPort{}, netip.Addr{}, err
	}
	b := u.rcvq.PopFront()
	n := b.CopyBits(0, p[:min(len(p), b.Len())])
	from, to := skbAddrs(b)
	memctl.UDPRmemRelease(u.sk, b.Truesize(), true, u.rcvq.Empty())
	b.Free()
	u.stack.mib.Inc(udpMIB(memctl.UdpInDatagrams, from.Addr().Is6()))
	return n, mapTo(u.local.Addr(), from), to, nil
}

// PeekFrom waits as RecvFrom does and returns the source of the first
// queued datagram and the address it was sent to, leaving it queued
// (recvmsg with MSG_PEEK and IP_PKTINFO).
func (u *UDPSock) PeekFrom(ctx context.Context) (netip.AddrPort, netip.Addr, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.waitQueuedLocked(ctx); err != nil {
		return netip.AddrPort{}, netip.Addr{}, err
	}
	from, to := skbAddrs(u.rcvq.Peek())
	return from, to, nil
}

// skbAddrs returns a received datagram's source and destination.
func skbAddrs(b *skb.SKB) (netip.AddrPort, netip.Addr) {
	src, dst := skbNetAddrs(b)
	uh := header.UDP(b.Head()[b.TransportHeader:])
	return netip.AddrPortFrom(src, uh.SrcPort()), dst
}

// waitQueuedLocked waits, with u.mu held, until a datagram is queued: nil,
// or the error RecvFrom returns.
func (u *UDPSock) waitQueuedLocked(ctx context.Context) error {
	if u.closed {
		return errBadF
	}
	if !u.rcvq.Empty() {
		return nil
	}
	if e := u.sk.SockError(); e != 0 { // sock_error: reported once
		return e
	}
	if u.nonblock.Load() {
		return errAgain
	}
	err := waitFor(ctx, u.sk, u.mu.Lock, u.mu.Unlock, func() bool {
		return !u.rcvq.Empty() || u.closed || u.sk.Err() != 0
	})
	if err != nil {
		return err
	}
	if u.closed {
		return errBadF
	}
	if u.rcvq.Empty() {
		return u.sk.SockError()
	}
	return nil
}

// Readiness reports what a poll would: readable when a datagram is queued,
// writable when sock_writeable (wmem_alloc < sndbuf/2). Mirrors
// datagram_poll.
func (u *UDPSock) Readiness() Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	var ev Event
	if !u.rcvq.Empty() || u.closed {
		ev |= EventIn
	}
	if u.sk.SockWriteable() {
		ev |= EventOut
	}
	return ev
}

// SendTo sends p as one datagram to dst (or to the connected peer when dst
// is invalid). It blocks while the send buffer is full unless non-blocking
// (EAGAIN, counted as SndbufErrors); ctx cancels it (EINTR). Mirrors
// udp_sendmsg.
func (u *UDPSock) SendTo(ctx context.Context, p []byte, dst netip.AddrPort) (int, error) {
	return u.SendFromTo(ctx, p, netip.Addr{}, dst)
}

// SendFromTo is SendTo with the datagram's source address chosen by the
// caller, as sendmsg with IP_PKTINFO's ipi_spec_dst (IPV6_PKTINFO's
// ipi6_addr) chooses it in udp_sendmsg: src, if it is one of the stack's
// addresses of dst's family, else the socket's bound address or the
// route's. Plan 9's `headers` mode sends from the header's laddr the same
// way (udpkick).
func (u *UDPSock) SendFromTo(ctx context.Context, p []byte, from netip.Addr, dst netip.AddrPort) (int, error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return 0, errBadF
	}
	if !dst.IsValid() {
		if !u.remote.IsValid() {
			u.mu.Unlock()
			return 0, errDestAddrReq // udp_sendmsg without a destination
		}
		dst = u.remote
	}
	dst = netip.AddrPortFrom(selfIfAny(dst.Addr().Unmap()), dst.Port())
	if !dst.Addr().IsValid() || dst.Port() == 0 {
		u.mu.Unlock()
		return 0, errInval
	}
	if len(p) > maxUDPPayload(dst.Addr()) {
		u.mu.Unlock()
		return 0, errMsgSize
	}
	if u.bound && !familyOK(u.local.Addr(), u.v6only, dst.Addr()) {
		u.mu.Unlock()
		return 0, errAFNoSupport // the other family: AF_INET to IPv6, or v6only to IPv4
	}
	if !u.bound {
		if err := u.bindLocked(netip.AddrPortFrom(unspecFor(dst.Addr()), 0)); err != nil {
			u.mu.Unlock()
			return 0, err
		}
	}
	local := u.local
	ttl, tos := u.ttl, u.tos
	u.mu.Unlock()
	if ttl == 0 {
		ttl = u.stack.defaultTTLFor(dst.Addr()) // uc_ttl -1: ip_select_ttl
	}
	v6 := dst.Addr().Is6()

	rt, ok := u.stack.routeOutput(dst.Addr())
	if !ok {
		u.stack.mib.Inc(ipMIBOutNoRoutes(v6))
		return 0, errNetUnreach
	}
	src := local.Addr()
	if src.IsUnspecified() {
		src = rt.Src
	}
	if from = from.Unmap(); from.IsValid() && from.Is4() == dst.Addr().Is4() && u.stack.isLocalAddr(from) {
		src = from
	}
	nhl := netHeaderLen(dst.Addr())
	size := len(p) + nhl + udpHeaderLen
	b, err := memctl.AllocSendSkb(ctx, u.sk, u.nonblock.Load(), func() *skb.SKB {
		return skb.Alloc(size + llReserved + udpAllocSlack)
	})
	if err != nil {
		if err == errAgain {
			u.stack.mib.Inc(udpMIB(memctl.UdpSndbufErrors, v6))
		}
		return 0, err
	}
	b.Reserve(llReserved + nhl)
	uh := header.UDP(b.Put(udpHeaderLen + len(p)))
	copy(uh[udpHeaderLen:], p)
	uh.Encode(&header.UDPFields{SrcPort: local.Port(), DstPort: dst.Port(), Length: uint16(udpHeaderLen + len(p))})
	if size <= rt.Dev.MTU() && rt.Dev.hwCsum() {
		// Checksum offload (udp4_hwcsum's CHECKSUM_PARTIAL case): only the
		// pseudo-header sum; the device sums the rest. A datagram that
		// will be fragmented is summed here, as ip_fragment would first.
		uh.SetChecksum(header.PseudoHeaderChecksum(header.IPv4ProtocolUDP, src, dst.Addr(), uint16(udpHeaderLen+len(p))))
		b.PartialCsumSet(0, udpCsumOffset)
	} else {
		uh.SetChecksum(0)
		uh.SetChecksum(uh.CalculateChecksum(src, dst.Addr()))
	}
	if err := u.stack.ipOutput(b, rt, src, dst.Addr(), header.IPv4ProtocolUDP, ttl, tos, u.sk); err != nil {
		return 0, err
	}
	u.stack.mib.Inc(udpMIB(memctl.UdpOutDatagrams, v6))
	return len(p), nil
}

// SetTTL sets the TTL of the datagrams the socket sends (IP_TTL); 0
// restores the default, the live ip_default_ttl.
func (u *UDPSock) SetTTL(ttl uint8) {
	u.mu.Lock()
	u.ttl = ttl
	u.mu.Unlock()
}

// SetTOS sets the TOS byte of the datagrams the socket sends (IP_TOS).
func (u *UDPSock) SetTOS(tos uint8) {
	u.mu.Lock()
	u.tos = tos
	u.mu.Unlock()
}
