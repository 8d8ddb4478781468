package netstack

import "net/netip"

// bindConflict reports whether binding a to port would clash with an
// existing binding b on the same port: two sockets clash when they can take
// packets of one family and do not both name different specific addresses.
// An IPv6 wildcard (::) takes IPv4 too unless its socket is v6only
// (IPV6_V6ONLY), so it clashes with any IPv4 binding then. Mirrors
// inet_rcv_saddr_equal / ipv6_rcv_saddr_equal without
// SO_REUSEADDR/SO_REUSEPORT.
func bindConflict(a netip.Addr, aOnly bool, b netip.Addr, bOnly bool) bool {
	if !a.IsValid() || !b.IsValid() {
		return true
	}
	if a.Is4() && b.Is4() || a.Is6() && b.Is6() {
		return a.IsUnspecified() || b.IsUnspecified() || a == b
	}
	if a.Is6() { // a is IPv6, b IPv4
		return a.IsUnspecified() && !aOnly
	}
	return b.IsUnspecified() && !bOnly
}

// localMatch scores a socket bound to la (v6only: IPV6_V6ONLY) for a packet
// to daddr: -1 if it does not take it, 2 for its own address, 1 for the
// wildcard of the packet's family, 0 for the IPv6 wildcard taking an IPv4
// packet (an AF_INET socket wins over a dual-stack one, as compute_score
// adds one for sk_family == PF_INET).
func localMatch(la netip.Addr, v6only bool, daddr netip.Addr) int {
	switch {
	case la == daddr:
		return 2
	case !la.IsUnspecified():
		return -1
	case la.Is4() == daddr.Is4():
		return 1
	case la.Is6() && !v6only:
		return 0
	}
	return -1
}

// familyOK reports whether a socket bound to la (v6only: IPV6_V6ONLY)
// may talk to dst: an IPv4 binding to IPv4, an IPv6 one to IPv6, and the
// IPv6 wildcard to IPv4 too unless v6only.
func familyOK(la netip.Addr, v6only bool, dst netip.Addr) bool {
	switch {
	case la.Is4():
		return dst.Is4()
	case la.IsUnspecified():
		return dst.Is6() || !v6only
	}
	return dst.Is6()
}

// unspecFor is the wildcard address a socket binds to when it connects or
// sends to dst unbound: 0.0.0.0 or ::.
func unspecFor(dst netip.Addr) netip.Addr {
	if dst.Is6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// mapTo returns a as a socket bound to local reports it: an IPv4 address
// seen by an IPv6 socket is IPv4-mapped (::ffff:a.b.c.d), as Linux's
// dual-stack sockets report their IPv4 peers.
func mapTo(local netip.Addr, a netip.AddrPort) netip.AddrPort {
	if local.Is6() && a.Addr().Is4() {
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	}
	return a
}

// bindableAddr normalizes an address to bind: invalid is 0.0.0.0, an
// IPv4-mapped one is its IPv4 address (a dual-stack socket binding
// ::ffff:a.b.c.d binds a.b.c.d; with v6only it is EINVAL).
func bindableAddr(a netip.Addr, v6only bool) (netip.Addr, error) {
	if !a.IsValid() {
		return netip.IPv4Unspecified(), nil
	}
	if a.Is4In6() {
		if v6only {
			return a, errInval
		}
		return a.Unmap(), nil
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	return a, nil
}

// pickEphemeral walks the ephemeral range (the live sysctl
// ip_local_port_range) from a random offset and returns the first port for
// which free reports true, or 0. Mirrors the search in udp_lib_get_port /
// inet_csk_find_open_port (without the odd/even split TCP uses for connect
// versus bind).
func (s *Stack) pickEphemeral(free func(port uint16) bool) uint16 {
	low, high := s.net.Sysctls.IPLocalPortRange() // inet_sk_get_local_port_range
	n := uint64(high - low + 1)
	off := s.rand() % n
	for i := uint64(0); i < n; i++ {
		p := uint16(uint64(low) + (off+i)%n)
		if free(p) {
			return p
		}
	}
	return 0
}
