package tun

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// DefaultName is the interface name used when Config.Name is empty.
const DefaultName = "sockfs0"

// DefaultMTU is the MTU used when Config.MTU is 0 (Ethernet's).
const DefaultMTU = 1500

// Config describes the device to create.
type Config struct {
	// Name is the kernel's name for the interface; "" means DefaultName.
	Name string
	// MTU of the link in bytes of IP datagram, 68..65535; 0 means DefaultMTU.
	MTU int
	// HostAddr is the kernel side's IPv4 address and prefix, e.g.
	// 198.18.0.1/24; the kernel adds the prefix route through the device.
	// The zero Prefix leaves the kernel side without an address.
	HostAddr netip.Prefix
	// HostAddr6 is the kernel side's IPv6 address and prefix, e.g.
	// fd00:5f::1/64, added without duplicate address detection (a TUN is
	// point-to-point); the zero Prefix adds none. The kernel gives the
	// device a link-local address of its own either way.
	HostAddr6 netip.Prefix
	// DisableOffload opens the device without IFF_VNET_HDR: no
	// super-packets or partial checksums from the kernel, no checksum
	// offload to it; one packet of at most the MTU per read(2) and every
	// checksum computed and verified by the stack. The zero value keeps
	// offloads on (see the package comment).
	DisableOffload bool
}

// withDefaults fills in the defaults and checks cfg.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if len(cfg.Name) >= unix.IFNAMSIZ {
		return cfg, fmt.Errorf("tun: interface name %q longer than %d bytes: %w", cfg.Name, unix.IFNAMSIZ-1, unix.EINVAL)
	}
	for _, c := range cfg.Name {
		if c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return cfg, fmt.Errorf("tun: bad interface name %q: %w", cfg.Name, unix.EINVAL)
		}
	}
	if cfg.MTU < 68 || cfg.MTU > maxPacket {
		return cfg, fmt.Errorf("tun: MTU %d outside 68..%d: %w", cfg.MTU, maxPacket, unix.EINVAL)
	}
	if cfg.HostAddr.IsValid() && !cfg.HostAddr.Addr().Is4() {
		return cfg, fmt.Errorf("tun: host address %v is not IPv4: %w", cfg.HostAddr, unix.EINVAL)
	}
	if cfg.HostAddr6.IsValid() && (!cfg.HostAddr6.Addr().Is6() || cfg.HostAddr6.Addr().Is4In6()) {
		return cfg, fmt.Errorf("tun: host address %v is not IPv6: %w", cfg.HostAddr6, unix.EINVAL)
	}
	return cfg, nil
}

// configure sets the kernel side of the new device through rtnetlink:
// MTU and IFF_UP in one RTM_NEWLINK, then the address with RTM_NEWADDR.
// It runs on the thread that created the device (see dialRtnl).
//
// A namespace with IPv6 disabled (net.ipv6.conf.*.disable_ipv6 = 1) refuses
// HostAddr6 with EACCES; that is not an error: configure reports it in
// v6off, and the device runs IPv4 only.
func configure(nl *rtnl, cfg Config) (v6off bool, err error) {
	li, err := nl.linkByName(cfg.Name)
	if err != nil {
		return false, fmt.Errorf("tun: %s: look up the new link: %w", cfg.Name, err)
	}
	if err := nl.setLink(li.Index, cfg.MTU); err != nil {
		return false, fmt.Errorf("tun: %s: set MTU %d and up: %w", cfg.Name, cfg.MTU, err)
	}
	if cfg.HostAddr.IsValid() {
		if err := nl.addAddr(li.Index, cfg.HostAddr); err != nil {
			return false, fmt.Errorf("tun: %s: add address %v: %w", cfg.Name, cfg.HostAddr, err)
		}
	}
	if cfg.HostAddr6.IsValid() {
		if err := nl.addAddr6(li.Index, cfg.HostAddr6); errors.Is(err, unix.EACCES) {
			return true, nil // "IPv6 is disabled on this device"
		} else if err != nil {
			return false, fmt.Errorf("tun: %s: add address %v: %w", cfg.Name, cfg.HostAddr6, err)
		}
	}
	return false, nil
}
