package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/netstack/link"
	"sockfs/skb"
)

// collector is a Receiver that keeps a copy of every packet, its truesize
// and its gso_size.
type collector struct {
	mu   sync.Mutex
	pkts [][]byte
	ts   []int
	gso  []uint16
	more chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) NetifRx(batch []*skb.SKB) {
	c.mu.Lock()
	for _, b := range batch {
		p := make([]byte, b.Len())
		b.CopyBits(0, p)
		c.pkts = append(c.pkts, p)
		c.ts = append(c.ts, b.Truesize())
		c.gso = append(c.gso, b.Shared().GSOSize)
		b.Free()
	}
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// wait waits until n packets have arrived.
func (c *collector) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.pkts)
		pkts := c.pkts
		c.mu.Unlock()
		if got >= n {
			return pkts
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("received %d packets, want %d", got, n)
		}
	}
}

func TestNewConfiguresLink(t *testing.T) {
	ns := newNetns(t)
	d := newDevice(t, ns, "sfstest0")
	if d.Kind() != "tun" || d.MTU() != 1500 || d.Name() != "sfstest0" {
		t.Fatalf("Kind %q MTU %d Name %q", d.Kind(), d.MTU(), d.Name())
	}
	out, err := ns.run("ip", "-o", "link", "show", "dev", "sfstest0")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, "mtu 1500") || !strings.Contains(out, ",UP") {
		t.Fatalf("link not up with MTU 1500: %s", out)
	}
	out, err = ns.run("ip", "-o", "-4", "addr", "show", "dev", "sfstest0")
	if err != nil || !strings.Contains(out, "inet 198.18.0.1/24 brd 198.18.0.255") {
		t.Fatalf("address 198.18.0.1/24 missing: %v: %s", err, out)
	}
	out, err = ns.run("ip", "-o", "-4", "route", "show", "dev", "sfstest0")
	if err != nil || !strings.Contains(out, "198.18.0.0/24") {
		t.Fatalf("prefix route missing: %v: %s", err, out)
	}
	// The same through our netlink helper.
	err = ns.do(func() error {
		nl, err := dialRtnl()
		if err != nil {
			return err
		}
		defer nl.Close()
		li, err := nl.linkByName("sfstest0")
		if err != nil {
			return err
		}
		if li.Flags&unix.IFF_UP == 0 || li.MTU != 1500 {
			return fmt.Errorf("link %+v: not up with MTU 1500", li)
		}
		addrs, err := nl.ipv4Addrs(li.Index)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0] != hostAddr {
			return fmt.Errorf("addresses %v, want [%v]", addrs, hostAddr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewMTUAndDefaults(t *testing.T) {
	ns := newNetns(t)
	var d *Device
	err := ns.do(func() (err error) {
		d, err = New(Config{MTU: 9000}) // default name, no address
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	if d.Name() != DefaultName {
		t.Fatalf("name %q, want %q", d.Name(), DefaultName)
	}
	out, _ := ns.run("ip", "-o", "link", "show", "dev", DefaultName)
	if !strings.Contains(out, "mtu 9000") {
		t.Fatalf("MTU not 9000: %s", out)
	}
	for _, cfg := range []Config{
		{Name: "a-very-long-interface-name"},
		{Name: "bad/name"},
		{Name: "sfsmtu0", MTU: 67},
		{Name: "sfsmtu0", HostAddr: netip.MustParsePrefix("2001:db8::1/64")},
	} {
		if _, err := New(cfg); !errors.Is(err, unix.EINVAL) {
			t.Errorf("New(%+v) = %v, want EINVAL", cfg, err)
		}
	}
}

// The kernel pings the device's far end; the test's receiver answers each
// echo request by hand and transmits the reply: both directions end to end.
func TestKernelPingEndToEnd(t *testing.T) {
	if _, err := lookPing(); err != nil {
		t.Skip(err)
	}
	ns := newNetns(t)
	d := newDevice(t, ns, "sfsping0")
	ref := skb.Alloc(60) // ping -s 32: 60-byte IPv4 packets
	wantTruesize := ref.Truesize()
	ref.Free()
	var mu sync.Mutex
	var requests, smallTruesize int
	err := d.Open(link.ReceiverFunc(func(batch []*skb.SKB) {
		for i, b := range batch {
			batch[i] = nil
			p := b.Data()
			if len(p) >= 20 && p[9] == unix.IPPROTO_ICMP && netip.AddrFrom4([4]byte(p[16:20])) == peerIP && echoReply(p) {
				mu.Lock()
				requests++
				if b.Truesize() == wantTruesize && b.Truesize() < 1024 {
					smallTruesize++
				}
				mu.Unlock()
				d.Xmit([]*skb.SKB{b})
				continue
			}
			b.Free()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := ns.run("ping", "-c", "3", "-i", "0.2", "-W", "1", "-s", "32", "198.18.0.2")
	if err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 3 {
		t.Errorf("receiver saw %d echo requests, want 3", requests)
	}
	// A 60-byte packet is charged its own small size class, not 64 KiB.
	if smallTruesize != 3 {
		t.Errorf("%d of 3 requests had the truesize of their own size class", smallTruesize)
	}
	// The third reply reaches ping inside its write(2), a moment before
	// Xmit counts it: give the counters that moment.
	s := d.Stats().Snapshot()
	for end := time.Now().Add(2 * time.Second); s.TxPackets < 3 && time.Now().Before(end); s = d.Stats().Snapshot() {
		time.Sleep(time.Millisecond)
	}
	if s.RxPackets != 3 || s.TxPackets != 3 || s.RxBytes != 3*60 || s.TxBytes != 3*60 {
		t.Errorf("stats %+v, want 3 packets of 60 bytes each way", s)
	}
}

func lookPing() (string, error) {
	p, err := exec.LookPath("ping")
	if err != nil {
		return "", errors.New("ping not installed (apt-get install -y iputils-ping)")
	}
	return p, nil
}

// A datagram transmitted on the device reaches a kernel UDP socket, both
// from a linear skb and from one whose payload is in a page fragment.
func TestXmitReachesKernelSocket(t *testing.T) {
	ns := newNetns(t)
	d := newDevice(t, ns, "sfsudp0")
	dst := netip.AddrPortFrom(hostIP, 9000)
	src := netip.AddrPortFrom(peerIP, 4000)
	fd := ns.udpSocket(t, dst)

	payload := []byte("hello from sockfs over tun")
	b := skb.Alloc(1500)
	udpPacket(b.Put(28+len(payload)), src, dst, payload)
	d.Xmit([]*skb.SKB{b})
	expectDatagram(t, fd, src, payload)

	// Nonlinear: headers in the head, payload in a page fragment (TCP's
	// clones look like this); written with one writev.
	payload2 := make([]byte, 1000)
	for i := range payload2 {
		payload2[i] = byte(i * 7)
	}
	whole := udpPacket(make([]byte, 1500), src, dst, payload2)
	b = skb.Alloc(64)
	b.PutData(whole[:28])
	pg := skb.NewPage()
	copy(pg.Buf[100:], whole[28:])
	if !b.AddFrag(pg, 100, len(payload2)) {
		t.Fatal("AddFrag failed")
	}
	if !b.IsNonlinear() || b.Len() != len(whole) {
		t.Fatalf("skb %v", b)
	}
	d.Xmit([]*skb.SKB{b})
	expectDatagram(t, fd, src, payload2)

	s := d.Stats().Snapshot()
	if s.TxPackets != 2 || s.TxBytes != uint64(28+len(payload)+len(whole)) || s.TxErrors != 0 || s.TxDropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

func expectDatagram(t *testing.T, fd int, from netip.AddrPort, want []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	n, sa, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatalf("recvfrom: %v", err)
	}
	sin, _ := sa.(*unix.SockaddrInet4)
	if sin == nil || netip.AddrPortFrom(netip.AddrFrom4(sin.Addr), uint16(sin.Port)) != from {
		t.Errorf("datagram from %v, want %v", sa, from)
	}
	if string(buf[:n]) != string(want) {
		t.Errorf("payload %q, want %q", buf[:n], want)
	}
}

func TestNameInUse(t *testing.T) {
	ns := newNetns(t)
	var d *Device
	if err := ns.do(func() (err error) {
		d, err = New(Config{Name: "sfsname0", HostAddr: hostAddr})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sfsname0", "lo"} {
		err := ns.do(func() error {
			d2, err := New(Config{Name: name, HostAddr: hostAddr})
			if err == nil {
				d2.Stop()
			}
			return err
		})
		if !errors.Is(err, ErrNameInUse) || errors.Is(err, ErrNotPermitted) || errors.Is(err, ErrNoTun) {
			t.Fatalf("second New(%q) = %v, want ErrNameInUse", name, err)
		}
		if want := fmt.Sprintf("tun: interface %q already exists", name); err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	if err := d.Open(newCollector()); err != nil {
		t.Fatal(err)
	}
	if err := d.Open(newCollector()); !errors.Is(err, unix.EBUSY) {
		t.Errorf("second Open = %v, want EBUSY", err)
	}
	if ok, err := ns.linkExists("sfsname0"); err != nil || !ok {
		t.Fatalf("before Stop: exists %v, %v", ok, err)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	// Close removed the interface: gone at once, and the name is free.
	if ok, err := ns.linkExists("sfsname0"); err != nil || ok {
		t.Fatalf("after Stop: exists %v, %v", ok, err)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := d.Open(newCollector()); !errors.Is(err, unix.EBADF) {
		t.Errorf("Open after Stop = %v, want EBADF", err)
	}
	b := skb.Alloc(100)
	b.Put(100)[0] = 0x45
	d.Xmit([]*skb.SKB{b})
	if got := d.Stats().TxDropped.Load(); got != 1 {
		t.Errorf("Xmit after Stop: TxDropped %d, want 1", got)
	}
	newDevice(t, ns, "sfsname0") // the name can be used again
}

// The counters match what crossed the device, and packets that are neither
// IPv4 nor IPv6 are dropped and counted, never passed to the Receiver.
func TestStatsAndNonIPDropped(t *testing.T) {
	ns := newNetns(t)
	d := newDevice(t, ns, "sfsstat0")
	c := newCollector()
	if err := d.Open(c); err != nil {
		t.Fatal(err)
	}

	// Kernel -> TUN: 3 version-5 packets and one junk byte through an
	// AF_PACKET socket on the device (no addresses needed), then 5 UDP
	// datagrams from a kernel socket routed into the TUN.
	var index int
	err := ns.do(func() error {
		nl, err := dialRtnl()
		if err != nil {
			return err
		}
		defer nl.Close()
		li, err := nl.linkByName("sfsstat0")
		index = li.Index
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var pfd int
	if err := ns.do(func() (err error) {
		pfd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	v6 := make([]byte, 48)
	v6[0] = 0x50 // IP version 5: neither 4 nor 6
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: index}
	for range 3 {
		if err := unix.Sendto(pfd, v6, 0, to); err != nil {
			t.Fatalf("packet sendto: %v", err)
		}
	}
	if err := unix.Sendto(pfd, []byte{0}, 0, to); err != nil {
		t.Fatalf("packet sendto: %v", err)
	}

	kfd := ns.udpSocket(t, netip.AddrPortFrom(hostIP, 9001))
	payload := make([]byte, 100)
	for range 5 {
		if err := unix.Sendto(kfd, payload, 0, &unix.SockaddrInet4{Addr: peerIP.As4(), Port: 9}); err != nil {
			t.Fatal(err)
		}
	}
	pkts := c.wait(t, 5)
	for _, p := range pkts {
		if p[0]>>4 != 4 || p[9] != unix.IPPROTO_UDP || len(p) != 128 {
			t.Errorf("unexpected packet % x", p[:20])
		}
	}

	// TUN -> kernel: 4 datagrams, one too long for the MTU.
	var sent uint64
	for i := range 4 {
		b := skb.Alloc(1500)
		n := 28 + 10*i
		udpPacket(b.Put(n), netip.AddrPortFrom(peerIP, 4000), netip.AddrPortFrom(hostIP, 9001), payload[:n-28])
		sent += uint64(n)
		d.Xmit([]*skb.SKB{b})
	}
	big := skb.Alloc(2000)
	big.Put(1501)[0] = 0x45
	d.Xmit([]*skb.SKB{big})
	for range 4 {
		buf := make([]byte, 2000)
		if _, _, err := unix.Recvfrom(kfd, buf, 0); err != nil {
			t.Fatalf("recvfrom: %v", err)
		}
	}

	time.Sleep(50 * time.Millisecond) // let any stray packet arrive
	want := link.StatsSnapshot{
		RxPackets: 5, RxBytes: 5 * 128, RxDropped: 4,
		TxPackets: 4, TxBytes: sent, TxDropped: 1,
	}
	if got := d.Stats().Snapshot(); got != want {
		t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}
	if n := len(c.pkts); n != 5 {
		t.Errorf("receiver got %d packets, want 5", n)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Deleting the interface under a running device ends the reader with one
// RxError; Stop still works.
func TestLinkDeletedUnderDevice(t *testing.T) {
	ns := newNetns(t)
	d := newDevice(t, ns, "sfsdel0")
	if err := d.Open(newCollector()); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.run("ip", "link", "del", "sfsdel0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	deadline := time.Now().Add(3 * time.Second)
	for d.Stats().RxErrors.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := d.Stats().RxErrors.Load(); got != 1 {
		t.Errorf("RxErrors %d, want 1", got)
	}
	select {
	case <-d.done:
	case <-time.After(time.Second):
		t.Error("reader still running")
	}
}

// Concurrent transmitters and a Stop in the middle: nothing lost from the
// books (every packet is counted once), no race.
func TestConcurrentXmitAndStop(t *testing.T) {
	ns := newNetns(t)
	d := newDevice(t, ns, "sfsconc0")
	ns.udpSocket(t, netip.AddrPortFrom(hostIP, 9002))
	if err := d.Open(newCollector()); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]*skb.SKB, 0, 4)
			for i := range each {
				b := skb.Alloc(64)
				udpPacket(b.Put(36), netip.AddrPortFrom(peerIP, uint16(4000+w)), netip.AddrPortFrom(hostIP, 9002), []byte("01234567"))
				batch = append(batch, b)
				if len(batch) == cap(batch) || i == each-1 {
					d.Xmit(batch)
					batch = batch[:0]
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	d.Stop()
	wg.Wait()
	s := d.Stats().Snapshot()
	if s.TxPackets+s.TxDropped+s.TxErrors != writers*each {
		t.Errorf("stats %+v: %d packets accounted, want %d", s, s.TxPackets+s.TxDropped+s.TxErrors, writers*each)
	}
	if s.TxErrors != 0 {
		t.Errorf("TxErrors %d", s.TxErrors)
	}
}
