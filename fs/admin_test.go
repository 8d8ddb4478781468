package fs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
	tr, _ := treePair(t)
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
	// iproute.linux as ip(8): a gateway without dev finds its interface,
	// one on no interface's network is ENETUNREACH, deleting a missing
	// route ESRCH ("No such process"), as RTNETLINK answers.
	if err := fileWrite(t, tr, "add 198.18.90.0/24 via 198.18.0.2", "iproute.linux"); err != nil {
		t.Fatalf("add via without dev: %v", err)
	}
	if l := sysRead(t, tr, "iproute.linux"); !strings.Contains(l, "198.18.90.0/24 via 198.18.0.2 dev pipe0\n") {
		t.Fatalf("iproute.linux after add via: %q", l)
	}
	if err := fileWrite(t, tr, "add 198.18.91.0/24 via 198.19.5.1", "iproute.linux"); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("add via an unreachable gateway: %v, want ENETUNREACH", err)
	}
	for _, c := range []struct {
		cmd  string
		want error
	}{{"del 198.18.90.0/24", nil}, {"del 198.18.90.0/24", syscall.ESRCH}} {
		if err := fileWrite(t, tr, c.cmd, "iproute.linux"); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%q: %v, want %v", c.cmd, err, c.want)
		}
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

// TestIpifcCtlPlan9: Plan 9's add (with mask, remote and mtu), remove, mtu and
// unbind change the stack's addresses, routes and MTU; bad input is
// EINVAL and changes nothing.
func TestIpifcCtlPlan9(t *testing.T) {
	tr, tb := treePair(t)
	a, b := tr.stack, tb.stack
	ctl := []string{"ipifc", "0", "ctl"}
	state := func() string {
		return sysRead(t, tr, "ipifc", "0", "status") + sysRead(t, tr, "iproute")
	}
	for _, c := range []string{"add 198.18.5.1 255.255.255.0", "add 198.18.6.1 /24 198.18.6.2 1400", "add 198.18.7.1/24"} {
		if err := fileWrite(t, tr, c, ctl...); err != nil {
			t.Fatalf("%q: %v", c, err)
		}
	}
	st := state()
	for _, w := range []string{"maxtu 1400 ", ifcLine("198.18.5.1", "/120", "198.18.5.0"), ifcLine("198.18.6.1", "/120", "198.18.6.0"),
		"198.18.5.0      /120 198.18.5.1      4i    ifc   0\n", "198.18.7.0      /120"} {
		if !strings.Contains(st, w) {
			t.Fatalf("status and iproute %q lack %q", st, w)
		}
	}
	for _, bad := range []string{
		"add 198.18.5.1 255.255.255.0",               // already there
		"add 198.18.8.1 255.0.255.0",                 // mask
		"add 198.18.8.1 255.255.255.0 198.18.8.1",    // remote is the address
		"add 198.18.8.1 255.255.255.0 198.18.5.7",    // the peer's route exists
		"add 198.18.8.1 255.255.255.0 198.18.8.2 40", // mtu
		"add 198.18.8.1 /24 198.18.8.2 1400 x",
		"add 198.18.8.1 0.0.0.0",
		"add x 255.255.255.0",
		"add",
		"remove 198.18.8.1 255.255.255.0", // not there
		"remove 198.18.5.1 255.255.0.0",   // other mask
		"mtu 67", "mtu 70000", "mtu x", "mtu",
		"unbind now",
		"frob",
	} {
		if err := fileWrite(t, tr, bad, ctl...); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%q: %v, want EINVAL", bad, err)
		}
		if s := state(); s != st {
			t.Fatalf("after %q:\n%s\nwas\n%s", bad, s, st)
		}
	}

	// Point-to-point (Plan 9's add local mask remote, remote off local's
	// network): each stack gets a /32 address whose only route is to the
	// other's, and a datagram goes both ways between them; Plan 9's
	// `remove remote 255.255.255.255` takes it away again.
	if err := fileWrite(t, tr, "add 198.18.8.1 255.255.255.255 198.18.9.2", ctl...); err != nil {
		t.Fatal(err)
	}
	if err := fileWrite(t, tb, "add 198.18.9.2 255.255.255.255 198.18.8.1", ctl...); err != nil {
		t.Fatal(err)
	}
	ptp := state()
	for _, w := range []string{ifcLine("198.18.8.1", "/128", "198.18.9.2"), "198.18.9.2      /128 198.18.8.1      4ip   ifc   0\n"} {
		if !strings.Contains(ptp, w) {
			t.Fatalf("status and iproute %q lack %q", ptp, w)
		}
	}
	if strings.Contains(ptp, "198.18.8.0") {
		t.Fatalf("a point-to-point address brought a route to its own network:\n%s", ptp)
	}
	prx, err := b.ListenUDP(netip.MustParseAddrPort("198.18.9.2:9"))
	if err != nil {
		t.Fatal(err)
	}
	ptx, err := a.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("198.18.9.2:9"))
	if err != nil {
		t.Fatal(err)
	}
	if ptx.LocalAddr().(*net.UDPAddr).IP.String() != "198.18.8.1" {
		t.Fatalf("datagrams to the peer leave from %v, want 198.18.8.1", ptx.LocalAddr())
	}
	if _, err := ptx.Write([]byte("ptp")); err != nil {
		t.Fatal(err)
	}
	pbuf := make([]byte, 16)
	n, from, err := prx.ReadFrom(pbuf)
	if err != nil || string(pbuf[:n]) != "ptp" {
		t.Fatalf("peer read %q, %v", pbuf[:n], err)
	}
	if _, err := prx.WriteTo([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	if n, err := ptx.Read(pbuf); err != nil || string(pbuf[:n]) != "back" {
		t.Fatalf("reply %q, %v", pbuf[:n], err)
	}
	prx.Close()
	ptx.Close()
	if err := fileWrite(t, tr, "remove 198.18.9.2 255.255.255.255", ctl...); err != nil {
		t.Fatal(err)
	}
	// The same addresses and routes as before (the packet counts moved).
	if s, was := state(), st; s[strings.Index(s, "\n"):] != was[strings.Index(was, "\n"):] {
		t.Fatalf("after removing the point-to-point address:\n%s\nwas\n%s", s, was)
	}
	if _, err := a.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("198.18.9.2:9")); err == nil {
		t.Fatal("198.18.9.2 still has a route after remove")
	}

	// The MTU is the stack's: at 576, a 1000-byte datagram leaves in two
	// fragments and arrives whole.
	if err := fileWrite(t, tr, "mtu 576\n", ctl...); err != nil {
		t.Fatal(err)
	}
	dev := a.Devices()[0]
	if dev.MTU() != 576 || !strings.Contains(sysRead(t, tr, "ipifc", "0", "status"), "maxtu 576 ") {
		t.Fatalf("mtu %d", dev.MTU())
	}
	rx, err := b.ListenUDP(netip.MustParseAddrPort("198.18.0.2:9"))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := a.DialUDP(netip.AddrPort{}, netip.MustParseAddrPort("198.18.0.2:9"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	before := dev.Device().Stats().Snapshot().TxPackets
	if _, err := tx.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	if n, err := rx.Read(buf); err != nil || n != 1000 {
		t.Fatalf("read %d, %v", n, err)
	}
	if sent := dev.Device().Stats().Snapshot().TxPackets - before; sent != 2 {
		t.Fatalf("1000 bytes at mtu 576 left in %d packets, want 2", sent)
	}

	if err := fileWrite(t, tr, "remove 198.18.5.1 255.255.255.0", ctl...); err != nil {
		t.Fatal(err)
	}
	if s := state(); strings.Contains(s, "198.18.5.") {
		t.Fatalf("after remove: %s", s)
	}
	if err := fileWrite(t, tr, "unbind", ctl...); err != nil {
		t.Fatal(err)
	}
	if s := sysRead(t, tr, "iproute"); s != "" || len(dev.Addrs()) != 0 {
		t.Fatalf("after unbind: iproute %q, addresses %v", s, dev.Addrs())
	}
	u := a.NewUDP()
	defer u.Close()
	if err := u.Connect(netip.MustParseAddrPort("198.18.0.2:9")); err == nil {
		t.Fatal("connect after unbind: no error")
	}
}

// TestUDPAnnounceListen: Plan 9's UDP calls. After `announce`, each open
// of listen gives a new conversation per remote, whose remote is the
// sender and whose data holds the sender's datagrams (the first one
// included), one per read; replies go to the sender; a second remote gets
// a conversation of its own; a sender whose call is closed makes a new
// call. listen before announce, or with headers on, is EINVAL.
func TestUDPAnnounceListen(t *testing.T) {
	ta, tb := treePair(t)
	srv := clone(t, tb, "udp")
	if _, err := open(t, tb, 0, syscall.O_RDWR, "udp", srv.n, "listen"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("listen before announce: %v, want EINVAL", err)
	}
	srv.must("announce 7000")
	send := func(c *conv, msg string) {
		t.Helper()
		if _, err := c.data().Write(context.Background(), []byte(msg), 0); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(h Handle) string {
		t.Helper()
		buf := make([]byte, 100)
		n, err := readTimeout(h, buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	a1 := clone(t, ta, "udp")
	a1.must("connect 198.18.0.2!7000 5001")
	a2 := clone(t, ta, "udp")
	a2.must("connect 198.18.0.2!7000 5002")
	send(a1, "one")
	send(a1, "two")
	send(a2, "other")
	c1 := srv.accept()
	if r := c1.read("remote"); r != "198.18.0.1!5001\n" {
		t.Fatalf("call remote %q", r)
	}
	if l := c1.read("local"); l != "198.18.0.2!7000\n" {
		t.Fatalf("call local %q", l)
	}
	d1 := c1.data()
	if m := recv(d1); m != "one" {
		t.Fatalf("first datagram %q", m)
	}
	if m := recv(d1); m != "two" {
		t.Fatalf("second datagram %q", m)
	}
	c2 := srv.accept()
	if r := c2.read("remote"); r != "198.18.0.1!5002\n" || c2.n == c1.n {
		t.Fatalf("second call %s remote %q", c2.n, r)
	}
	if m := recv(c2.data()); m != "other" {
		t.Fatalf("second remote's datagram %q", m)
	}
	send(a1, "three")
	if m := recv(d1); m != "three" {
		t.Fatalf("later datagram %q", m)
	}
	// Replies go to the sender.
	if _, err := d1.Write(context.Background(), []byte("reply"), 0); err != nil {
		t.Fatal(err)
	}
	if m := recv(a1.data()); m != "reply" {
		t.Fatalf("reply %q", m)
	}
	// Closing the call: the next datagram from the same sender is a new call.
	c1.ctl.Release()
	d1.Release()
	send(a1, "again")
	c3 := srv.accept()
	if r := c3.read("remote"); r != "198.18.0.1!5001\n" {
		t.Fatalf("new call remote %q", r)
	}
	if m := recv(c3.data()); m != "again" {
		t.Fatalf("new call datagram %q", m)
	}
	// Interrupted and non-blocking listens consume nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	lf := walk(t, tb.Root(), "udp", srv.n, "listen").(File)
	if _, err := lf.Open(ctx, OpenReq{Flags: syscall.O_RDWR}); !errors.Is(err, syscall.EINTR) && !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("interrupted listen: %v", err)
	}
	hs := clone(t, tb, "udp")
	hs.must("announce 7001")
	hs.must("headers")
	if _, err := open(t, tb, 0, syscall.O_RDWR, "udp", hs.n, "listen"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("listen with headers: %v, want EINVAL", err)
	}
}

// TestArpNdbFiles: ip(3)'s arp reads empty and takes flush, but refuses
// add and del (a TUN interface has no link layer); ndb keeps the text
// written to it as devip's ndbwrite does: a write at an offset replaces
// the text from there on, a write past its end or beyond 1023 bytes is EIO
// and changes nothing.
func TestArpNdbFiles(t *testing.T) {
	tr, _ := treePair(t)
	if s := sysRead(t, tr, "arp"); s != "" {
		t.Fatalf("arp reads %q", s)
	}
	if err := fileWrite(t, tr, "flush\n", "arp"); err != nil {
		t.Fatalf("arp flush: %v", err)
	}
	for _, bad := range []string{"add ether 198.18.0.1 0a0b0c0d0e0f", "del 198.18.0.1", "frob", ""} {
		if err := fileWrite(t, tr, bad, "arp"); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("arp %q: %v, want EINVAL", bad, err)
		}
	}

	const entry = "ip=198.18.0.2 ipmask=255.255.255.0 ipgw=198.18.0.1\n"
	if _, err := sysWrite(t, tr, entry, 0, "ndb"); err != nil {
		t.Fatal(err)
	}
	if _, err := sysWrite(t, tr, "\tdns=198.18.0.1\n", int64(len(entry)), "ndb"); err != nil {
		t.Fatal(err)
	}
	want := entry + "\tdns=198.18.0.1\n"
	if s := sysRead(t, tr, "ndb"); s != want {
		t.Fatalf("ndb %q, want %q", s, want)
	}
	for _, w := range []struct {
		text string
		off  int64
	}{{"x", int64(len(want)) + 1}, {strings.Repeat("x", 1000), 100}, {strings.Repeat("x", 1024), 0}} {
		if _, err := sysWrite(t, tr, w.text, w.off, "ndb"); !errors.Is(err, syscall.EIO) {
			t.Errorf("ndb write of %d bytes at %d: %v, want EIO", len(w.text), w.off, err)
		}
	}
	if s := sysRead(t, tr, "ndb"); s != want {
		t.Fatalf("refused writes changed ndb: %q", s)
	}
	if _, err := sysWrite(t, tr, "sys=sockfs\n", 0, "ndb"); err != nil {
		t.Fatal(err)
	}
	if s := sysRead(t, tr, "ndb"); s != "sys=sockfs\n" {
		t.Fatalf("ndb after a write at 0: %q", s)
	}
}

// ifcLine is an address line of ipifc/N/status as Plan 9's ipifcstate
// prints it ("\t%-40.40I %-10.10M %-40.40I %-12lud %-12lud\n"), with
// permanent lifetimes.
func ifcLine(local, mask, remote string) string {
	return fmt.Sprintf("\t%-40s %-10s %-40s %-12s %-12s\n", local, mask, remote, "4294967295", "4294967295")
}
