package fs

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"sockfs/netstack"
)

// qIprouteLinux is iproute.linux's type among the top-level files.
const qIprouteLinux = 26

// qIprouteCache is iproute.cache's type among the top-level files.
const qIprouteCache = 28

// iprouteFile is `iproute` as Plan 9's ip(3) defines it. Read: one route a
// line in Plan 9's six columns, target, mask, next hop, flags, tag and
// interface number:
//
//	198.18.0.0      /120 198.18.0.2      4i    ifc   1
//	198.18.77.0     /120 198.18.0.1      4    none   1
//
// Addresses and masks are Plan 9's v4-in-v6 ones, so a /24 prints as /120;
// an IPv6 route prints its own address and length:
//
//	fd00:5f::       /64  fd00:5f::2      6i    ifc   1
//
// Flags: 4 (IPv4) or 6 (IPv6), then i for a route an interface address
// brought. The
// interface is the ipifc number (N of ipifc/N). Write, one command a write:
//
//	add target mask nexthop [tag]
//	remove target mask [nexthop]     (9front's del is the same)
//	flush [tag]                      every route but the interfaces' own
//
// The next hop must be on a network an interface is on (the stack picks
// the interface from it), or an interface address itself for a route out
// of that interface. Bad input is EINVAL with the reason in the daemon
// log, and changes nothing.
func (t *Tree) iprouteFile() Node {
	return newText(qpath(protoTop, 0, qIproute), "iproute", 0664, t.readPlan9Routes, func(_ context.Context, text string) error {
		err := t.plan9RouteCmd(strings.Fields(text))
		if err != nil {
			t.log.Warn("iproute write refused", "cmd", trimCmd(text), "err", err)
		}
		return err
	})
}

// iprouteLinuxFile is `iproute.linux` [ext]: the same table as `ip route`
// prints it, written with Linux's verbs (`add CIDR [via GW] dev NAME`,
// `del CIDR`).
func (t *Tree) iprouteLinuxFile() Node {
	return newText(qpath(protoTop, 0, qIprouteLinux), "iproute.linux", 0664, t.readRoutes, t.writeRoutes)
}

// iprouteCacheFile is `iproute.cache` [ext]: the path MTUs the stack has
// learned from ICMP (next-hop exceptions), as `ip route show cache` lists
// them. Read-only: they come and go with fragmentation-needed messages and
// net.ipv4.route.mtu_expires.
func (t *Tree) iprouteCacheFile() Node {
	return newText(qpath(protoTop, 0, qIprouteCache), "iproute.cache", 0444, t.readRouteCache, nil)
}

func (t *Tree) readRouteCache() string {
	var b strings.Builder
	for _, e := range t.stack.PMTUCache() {
		b.WriteString(e.Dst.String())
		if e.Route.Gateway.IsValid() {
			fmt.Fprintf(&b, " via %s", e.Route.Gateway)
		}
		if e.Route.Dev != nil {
			fmt.Fprintf(&b, " dev %s", e.Route.Dev.Name())
		}
		lock := ""
		if e.Locked {
			lock = "lock "
		}
		fmt.Fprintf(&b, " \n    cache expires %dsec mtu %s%d \n", int(e.Expires.Seconds()), lock, e.MTU)
	}
	return b.String()
}

// plan9Mask prints a v4 prefix length as Plan 9's %M prints the v4-in-v6
// mask a v4 route carries: /96+bits.
func plan9Mask(bits int) string { return "/" + strconv.Itoa(96+bits) }

func (t *Tree) readPlan9Routes() string {
	devs := t.stack.Devices()
	ifcNum := func(d *netstack.NetDevice) string {
		for i, x := range devs {
			if x == d {
				return strconv.Itoa(i)
			}
		}
		return "-"
	}
	var b strings.Builder
	for _, r := range t.stack.Routes() {
		v6 := r.Dst.Addr().Is6()
		fam, mask := "4", plan9Mask(r.Dst.Bits())
		if v6 {
			fam, mask = "6", "/"+strconv.Itoa(r.Dst.Bits())
		}
		gate, flags, tag := r.Gateway, fam, r.Tag
		if r.Connected {
			gate, flags, tag = r.Src, fam+"i", "ifc"
			if r.Dst.Bits() == 32 && r.Dst.Addr() != r.Src {
				flags = fam + "ip" // Rptpt: a point-to-point address's peer
			}
		}
		if !gate.IsValid() {
			gate = netip.IPv4Unspecified()
			if v6 {
				gate = netip.IPv6Unspecified()
			}
		}
		if tag == "" {
			tag = "none"
		}
		fmt.Fprintf(&b, "%-15s %-4s %-15s %-4.4s %4.4s %3s\n",
			r.Dst.Addr(), mask, gate, flags, tag, ifcNum(r.Dev))
	}
	return b.String()
}

// parseMask parses a Plan 9 mask: dotted (255.255.255.0) or /len (v4:
// /0../32; v4-in-v6: /96../128, as iproute prints it), into a v4 prefix
// length.
func parseMask(mask string) (int, error) {
	if l, ok := strings.CutPrefix(mask, "/"); ok {
		bits, err := strconv.Atoi(l)
		switch {
		case err != nil:
		case bits >= 96 && bits <= 128:
			return bits - 96, nil
		case bits >= 0 && bits <= 32:
			return bits, nil
		}
		return 0, fmt.Errorf("bad mask %q: %w", mask, syscall.EINVAL)
	}
	m, err := netip.ParseAddr(mask)
	if err != nil {
		return 0, fmt.Errorf("bad mask %q: %w", mask, syscall.EINVAL)
	}
	p, err := maskPrefix(netip.IPv4Unspecified(), m.Unmap())
	if err != nil {
		return 0, fmt.Errorf("bad mask %q: %w", mask, err)
	}
	return p.Bits(), nil
}

// parseMaskFor parses the mask of address a: parseMask's for IPv4, for
// IPv6 a length /0../128 or a contiguous IPv6 mask (ffff:ffff::).
func parseMaskFor(a netip.Addr, mask string) (int, error) {
	if a.Is4() {
		return parseMask(mask)
	}
	if l, ok := strings.CutPrefix(mask, "/"); ok {
		if bits, err := strconv.Atoi(l); err == nil && bits >= 0 && bits <= 128 {
			return bits, nil
		}
		return 0, fmt.Errorf("bad mask %q: %w", mask, syscall.EINVAL)
	}
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is6() || m.Is4In6() {
		return 0, fmt.Errorf("bad mask %q: %w", mask, syscall.EINVAL)
	}
	b := m.As16()
	bits := 0
	for bits < 128 && b[bits/8]&(0x80>>(bits%8)) != 0 {
		bits++
	}
	if p, _ := m.Prefix(bits); p.Addr() != m {
		return 0, fmt.Errorf("non-contiguous mask %s: %w", m, syscall.EINVAL)
	}
	return bits, nil
}

// parseTargetMask parses Plan 9's `target mask` pair, IPv4 or IPv6; the
// target must have no bits outside the mask.
func parseTargetMask(target, mask string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(target)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad target %q (want an IP address): %w", target, syscall.EINVAL)
	}
	a = a.Unmap()
	bits, err := parseMaskFor(a, mask)
	if err != nil {
		return netip.Prefix{}, err
	}
	p := netip.PrefixFrom(a, bits)
	if p.Masked().Addr() != a {
		return netip.Prefix{}, fmt.Errorf("target %s has bits outside mask %s: %w", a, mask, syscall.EINVAL)
	}
	return p, nil
}

func (t *Tree) plan9RouteCmd(f []string) error {
	if len(f) == 0 {
		return fmt.Errorf("short control request: %w", syscall.EINVAL)
	}
	switch f[0] {
	case "flush":
		if len(f) > 2 {
			return fmt.Errorf("bad args to flush (want flush [tag]): %w", syscall.EINVAL)
		}
		tag := ""
		if len(f) == 2 {
			tag = f[1]
		}
		t.stack.FlushRoutes(tag)
		return nil
	case "add":
		if len(f) < 4 || len(f) > 5 {
			return fmt.Errorf("bad args to add (want add target mask nexthop [tag]): %w", syscall.EINVAL)
		}
		dst, err := parseTargetMask(f[1], f[2])
		if err != nil {
			return err
		}
		gw, err := netip.ParseAddr(f[3])
		if err != nil || gw.Unmap().Is4() != dst.Addr().Is4() {
			return fmt.Errorf("bad nexthop %q: %w", f[3], syscall.EINVAL)
		}
		gw = gw.Unmap()
		r := netstack.Route{Dst: dst, Gateway: gw, Tag: "none"}
		if len(f) == 5 {
			if len(f[4]) > 4 {
				return fmt.Errorf("tag %q longer than 4 characters: %w", f[4], syscall.EINVAL)
			}
			r.Tag = f[4]
		}
		// The interface: one whose address is the next hop (a route out
		// of it, no gateway), else one on the next hop's network.
		for _, d := range t.stack.Devices() {
			for _, a := range d.Addrs() {
				if a.Addr() == gw {
					r.Dev, r.Gateway, r.Src = d, netip.Addr{}, gw
				}
			}
		}
		if r.Dev == nil {
			r.Dev = t.devOnNetwork(gw)
		}
		if r.Dev == nil {
			return fmt.Errorf("nexthop %s is on no interface's network: %w", gw, syscall.EINVAL)
		}
		if err := t.stack.AddRoute(r); err != nil {
			return fmt.Errorf("add %s: %w (%w)", dst, syscall.EINVAL, err)
		}
		return nil
	case "remove", "del":
		if len(f) < 3 || len(f) > 4 {
			return fmt.Errorf("bad args to %s (want %s target mask [nexthop]): %w", f[0], f[0], syscall.EINVAL)
		}
		dst, err := parseTargetMask(f[1], f[2])
		if err != nil {
			return err
		}
		var found *netstack.Route
		for _, r := range t.stack.Routes() {
			if r.Dst == dst {
				found = &r
				break
			}
		}
		if found == nil {
			return fmt.Errorf("no route to %s: %w", dst, syscall.EINVAL)
		}
		if found.Connected {
			return fmt.Errorf("route to %s belongs to an interface address (remove the address in ipifc/N/ctl): %w", dst, syscall.EINVAL)
		}
		if len(f) == 4 {
			gw, err := netip.ParseAddr(f[3])
			if err != nil || (gw.Unmap() != found.Gateway && gw.Unmap() != found.Src) {
				return fmt.Errorf("route to %s does not go through %q: %w", dst, f[3], syscall.EINVAL)
			}
		}
		if err := t.stack.DelRoute(dst); err != nil {
			return fmt.Errorf("remove %s: %w (%w)", dst, syscall.EINVAL, err)
		}
		return nil
	}
	return fmt.Errorf("unknown control request %q: %w", f[0], syscall.EINVAL)
}
