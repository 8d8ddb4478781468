package netstack

import "net/netip"

// bindConflict reports whether binding a to port would clash with an
// existing binding b on the same port: two sockets clash unless both name
// different specific addresses. Mirrors inet_rcv_saddr_equal for IPv4
// without SO_REUSEADDR/SO_REUSEPORT.
func bindConflict(a, b netip.Addr) bool {
	return !a.IsValid() || !b.IsValid() || a.IsUnspecified() || b.IsUnspecified() || a == b
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
