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

const qIfcCtl = qIfcImpair + 1

// ipifcCtl is ipifc/N/ctl: read gives N; write takes Plan 9's ipifc
// commands, one per write:
//
//	add addr mask [remote [mtu]]   an address (mask dotted or /len; also
//	                               add addr/bits), its connected route; a
//	                               remote off addr's network makes the
//	                               address point-to-point, as in Plan 9's
//	                               ipifcadd: the route is remote's network
//	                               (remote/32 with mask 255.255.255.255),
//	                               with addr as its source; mtu as the mtu
//	                               command
//	remove addr mask               (9front: del) the address and its route;
//	                               for a point-to-point address, Plan 9's
//	                               form `remove remote 255.255.255.255`
//	                               works too
//	mtu n                          the MTU the stack sends with, 68 up to
//	                               the link's own
//	unbind                         every address and route of the
//	                               interface goes; the device stays, so
//	                               add works again
//
// Bad input is EINVAL with the reason in the daemon log, and changes
// nothing (add checks everything before it changes anything).
func (t *Tree) ipifcCtl(n int, dev func() *netstack.NetDevice) Node {
	return newText(qpath(protoIpifc, n, qIfcCtl), "ctl", 0644,
		func() string { return strconv.Itoa(n) },
		func(_ context.Context, text string) error {
			err := t.ifcCmd(dev(), strings.Fields(text))
			if err != nil {
				t.log.Warn("ipifc ctl write refused", "ifc", n, "cmd", trimCmd(text), "err", err)
			}
			return err
		})
}

// ifcAddr parses `addr mask` or `addr/bits` (f holds one or two words).
func ifcAddr(f []string) (netip.Prefix, error) {
	if len(f) == 1 {
		p, err := netip.ParsePrefix(f[0])
		if err != nil || !p.Addr().Is4() {
			return netip.Prefix{}, fmt.Errorf("bad address %q: %w", f[0], syscall.EINVAL)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil || !a.Unmap().Is4() {
		return netip.Prefix{}, fmt.Errorf("bad address %q: %w", f[0], syscall.EINVAL)
	}
	bits, err := parseMask(f[1])
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), bits), nil
}

func (t *Tree) ifcCmd(d *netstack.NetDevice, f []string) error {
	if d == nil {
		return fmt.Errorf("no such interface: %w", syscall.ENODEV)
	}
	if len(f) == 0 {
		return fmt.Errorf("short control request: %w", syscall.EINVAL)
	}
	switch f[0] {
	case "add", "try":
		if len(f) < 2 || len(f) > 5 || (len(f) > 2 && strings.Contains(f[1], "/")) {
			return fmt.Errorf("bad args to add (want add addr mask [remote [mtu]]): %w", syscall.EINVAL)
		}
		words := f[1:min(len(f), 3)]
		p, err := ifcAddr(words)
		if err != nil {
			return err
		}
		if p.Bits() == 0 {
			return fmt.Errorf("mask /0 for address %s: %w", p.Addr(), syscall.EINVAL)
		}
		var peer netip.Prefix // point-to-point: remote's network
		if len(f) >= 4 {
			r, err := netip.ParseAddr(f[3])
			if err != nil || !r.Unmap().Is4() {
				return fmt.Errorf("bad remote %q: %w", f[3], syscall.EINVAL)
			}
			if r = r.Unmap(); r == p.Addr() {
				return fmt.Errorf("remote %s is the address itself: %w", f[3], syscall.EINVAL)
			}
			if !p.Contains(r) || p.Bits() == 32 {
				peer = netip.PrefixFrom(r, p.Bits()).Masked()
			}
		}
		mtu := 0
		if len(f) == 5 {
			if mtu, err = parseMTU(d, f[4]); err != nil {
				return err
			}
		}
		for _, a := range d.Addrs() {
			if a.Addr() == p.Addr() {
				return fmt.Errorf("address %s already on %s: %w", p.Addr(), d.Name(), syscall.EINVAL)
			}
		}
		if peer.IsValid() {
			err = t.stack.AddPeerAddress(d, p.Addr(), peer)
		} else {
			err = t.stack.AddAddress(d, p)
		}
		if err != nil {
			return fmt.Errorf("add %s: %w (%w)", p, syscall.EINVAL, err)
		}
		if mtu > 0 {
			return d.SetMTU(mtu)
		}
		return nil
	case "remove", "del":
		if len(f) < 2 || len(f) > 3 {
			return fmt.Errorf("bad args to %s (want %s addr mask): %w", f[0], f[0], syscall.EINVAL)
		}
		p, err := ifcAddr(f[1:])
		if err != nil {
			return err
		}
		p = ptpAddr(d, p)
		if err := t.stack.RemoveAddress(d, p); err != nil {
			return fmt.Errorf("%s %s: %w (%w)", f[0], p, syscall.EINVAL, err)
		}
		return nil
	case "mtu":
		if len(f) != 2 {
			return fmt.Errorf("bad args to mtu (want mtu n): %w", syscall.EINVAL)
		}
		mtu, err := parseMTU(d, f[1])
		if err != nil {
			return err
		}
		return d.SetMTU(mtu)
	case "unbind":
		if len(f) != 1 {
			return fmt.Errorf("bad args to unbind: %w", syscall.EINVAL)
		}
		for _, a := range d.Addrs() {
			if err := t.stack.RemoveAddress(d, a); err != nil {
				return err
			}
		}
		return nil
	}
	return errUnknownCtl
}

// ptpAddr maps what `remove` names to the address as the stack keeps it:
// a point-to-point address is local/32, named either by its local address
// and its peer's mask or, as Plan 9's ipifcrem does for an all-ones mask,
// by the remote.
func ptpAddr(d *netstack.NetDevice, p netip.Prefix) netip.Prefix {
	for _, a := range d.Addrs() {
		peer, ok := d.Peer(a.Addr())
		if !ok {
			continue
		}
		if (a.Addr() == p.Addr() && peer.Bits() == p.Bits()) || (p.Bits() == 32 && peer == p) {
			return a
		}
	}
	return p
}

// parseMTU parses an MTU for d: a decimal in 68..the link's MTU.
func parseMTU(d *netstack.NetDevice, s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < netstack.MinMTU || v > d.Device().MTU() {
		return 0, fmt.Errorf("bad mtu %q (want %d..%d): %w", s, netstack.MinMTU, d.Device().MTU(), syscall.EINVAL)
	}
	return v, nil
}

// maskPrefix turns addr and a dotted mask (255.255.255.0) into a prefix.
func maskPrefix(a, m netip.Addr) (netip.Prefix, error) {
	if !m.Is4() {
		return netip.Prefix{}, syscall.EINVAL
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for v&(1<<31) != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return netip.Prefix{}, fmt.Errorf("non-contiguous mask %s: %w", m, syscall.EINVAL)
	}
	return netip.PrefixFrom(a, bits), nil
}
