package fs

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"sockfs/netstack"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
)

// pipeTree is a tree whose stack has a pipe device (ipifc/0) with
// 198.18.0.1/24; the pipe's far end is returned so tests can stop it.
func pipeTree(t *testing.T) (*Tree, *netstack.NetDevice) {
	t.Helper()
	tr := newTestTree(t)
	pa, pb := link.NewPipe(tr.stack.Clock(), link.DefaultPipeMTU, impair.Config{}, impair.Config{}, 1)
	t.Cleanup(func() { pb.Stop() })
	dev, err := tr.stack.AddDevice(pa)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.stack.AddAddress(dev, netip.MustParsePrefix("198.18.0.1/24")); err != nil {
		t.Fatal(err)
	}
	return tr, dev
}

// fileWrite is one write to the file at path (sysWrite's, offset 0).
func fileWrite(t *testing.T, tr *Tree, cmd string, path ...string) error {
	t.Helper()
	_, err := sysWrite(t, tr, cmd, 0, path...)
	return err
}

// TestIprouteFile: Plan 9's add/remove/flush on iproute, the table in
// Plan 9's six columns, the route used by the stack, and bad input
// refused with EINVAL, changing nothing.
func TestIprouteFile(t *testing.T) {
	tr, _ := pipeTree(t)
	dst := netip.MustParseAddrPort("198.18.77.5:9")
	udp := func() error {
		s := tr.stack.NewUDP()
		defer s.Close()
		return s.Connect(dst)
	}
	if err := udp(); err == nil {
		t.Fatal("connect to 198.18.77.5 before the route: no error")
	}
	if err := fileWrite(t, tr, "add 198.18.77.0 255.255.255.0 198.18.0.2\n", "iproute"); err != nil {
		t.Fatal(err)
	}
	got := sysRead(t, tr, "iproute")
	want := "198.18.0.0      /120 198.18.0.1      4i    ifc   0\n" +
		"198.18.77.0     /120 198.18.0.2      4    none   0\n"
	if got != want {
		t.Fatalf("iproute:\n%q\nwant\n%q", got, want)
	}
	if err := udp(); err != nil {
		t.Fatalf("connect through the new route: %v", err)
	}
	if l := sysRead(t, tr, "iproute.linux"); !strings.Contains(l, "198.18.77.0/24 via 198.18.0.2 dev pipe0\n") {
		t.Fatalf("iproute.linux: %q", l)
	}
	for _, bad := range []string{
		"add 198.18.78.0 255.255.255.0",                    // no nexthop
		"add 198.18.78.0 255.0.255.0 198.18.0.2",           // non-contiguous mask
		"add 198.18.78.1 255.255.255.0 198.18.0.2",         // bits outside the mask
		"add 198.18.78.0 255.255.255.0 203.0.113.1",        // nexthop on no network
		"add 198.18.77.0 255.255.255.0 198.18.0.3",         // exists
		"add 198.18.78.0 255.255.255.0 198.18.0.2 toolong", // tag
		"add x 255.255.255.0 198.18.0.2",
		"remove 198.18.79.0 255.255.255.0",            // no such route
		"remove 198.18.0.0 255.255.255.0",             // the interface's own
		"remove 198.18.77.0 255.255.255.0 198.18.0.9", // other nexthop
		"flush a b",
		"frob",
		"",
	} {
		if err := fileWrite(t, tr, bad, "iproute"); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%q: %v, want EINVAL", bad, err)
		}
		if g := sysRead(t, tr, "iproute"); g != want {
			t.Fatalf("after %q: iproute %q", bad, g)
		}
	}
	// /len masks as read back, a tag, flush by tag, remove, flush.
	for _, c := range []string{"add 198.18.78.0 /120 198.18.0.2 t1", "add 198.18.80.0 /22 198.18.0.3", "flush t1"} {
		if err := fileWrite(t, tr, c, "iproute"); err != nil {
			t.Fatalf("%q: %v", c, err)
		}
	}
	got = sysRead(t, tr, "iproute")
	if strings.Contains(got, "198.18.78.0") || !strings.Contains(got, "198.18.80.0     /118 198.18.0.3") {
		t.Fatalf("after flush t1: %q", got)
	}
	if err := fileWrite(t, tr, "remove 198.18.77.0 255.255.255.0 198.18.0.2", "iproute"); err != nil {
		t.Fatal(err)
	}
	if err := udp(); err == nil {
		t.Fatal("route still used after remove")
	}
	if err := fileWrite(t, tr, "flush", "iproute"); err != nil {
		t.Fatal(err)
	}
	if got := sysRead(t, tr, "iproute"); got != "198.18.0.0      /120 198.18.0.1      4i    ifc   0\n" {
		t.Fatalf("after flush: %q", got)
	}
}
