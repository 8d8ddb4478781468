package tun

import (
	"net/netip"
	"strings"
	"testing"
)

// HostAddr6 is added to the kernel's side without DAD; in a namespace with
// IPv6 disabled the device comes up IPv4 only and says so.
func TestHostAddr6(t *testing.T) {
	h6 := netip.MustParsePrefix("fd00:5f::1/64")
	for _, disabled := range []bool{false, true} {
		ns := newNetns(t) // IPv6 off for new links; on again for the first case
		if !disabled {
			if out, err := ns.run("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=0"); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
		var d *Device
		if err := ns.do(func() (err error) {
			d, err = New(Config{Name: "sfsv6", MTU: 1500, HostAddr: hostAddr, HostAddr6: h6})
			return err
		}); err != nil {
			t.Fatalf("disable_ipv6 %v: %v", disabled, err)
		}
		out, _ := ns.run("ip", "-6", "addr", "show", "dev", "sfsv6")
		d.Stop()
		if d.IPv6Disabled() != disabled || strings.Contains(out, "fd00:5f::1/64") == disabled {
			t.Fatalf("disable_ipv6 %v: IPv6Disabled %v, addresses:\n%s", disabled, d.IPv6Disabled(), out)
		}
	}
	if _, err := (Config{HostAddr6: netip.MustParsePrefix("198.18.0.1/24")}).withDefaults(); err == nil {
		t.Fatal("an IPv4 HostAddr6 accepted")
	}
}
