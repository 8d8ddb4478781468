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

// ipifcCtl is ipifc/N/ctl: read gives N; write takes Plan 9's
// `add addr mask` (or `add addr/bits`), which adds an address to the
// interface with its connected route. The netstack has no way to remove an
// address or change the MTU yet, so `remove` and `mtu` are refused
// (EOPNOTSUPP), and anything else is EINVAL; refusals go to the daemon log.
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

func (t *Tree) ifcCmd(d *netstack.NetDevice, f []string) error {
	if d == nil {
		return fmt.Errorf("no such interface: %w", syscall.ENODEV)
	}
	if len(f) == 0 {
		return fmt.Errorf("short control request: %w", syscall.EINVAL)
	}
	switch f[0] {
	case "add":
		var p netip.Prefix
		var err error
		switch len(f) {
		case 2:
			p, err = netip.ParsePrefix(f[1])
		case 3:
			var a, m netip.Addr
			if a, err = netip.ParseAddr(f[1]); err == nil {
				if m, err = netip.ParseAddr(f[2]); err == nil {
					p, err = maskPrefix(a, m)
				}
			}
		default:
			return fmt.Errorf("bad args to add: %w", syscall.EINVAL)
		}
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("bad address %q: %w", strings.Join(f[1:], " "), syscall.EINVAL)
		}
		if err := t.stack.AddAddress(d, p); err != nil {
			return fmt.Errorf("add %s: %w", p, syscall.EINVAL)
		}
		return nil
	case "remove", "mtu":
		return fmt.Errorf("%s not supported by the stack: %w", f[0], syscall.EOPNOTSUPP)
	}
	return errUnknownCtl
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
