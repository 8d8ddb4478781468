package tun

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Every test runs in a network namespace of its own, named
// sockfs-tuntest-PID-N, and removes it afterwards; the TUN device is
// stopped (removed) before its namespace.

var (
	hostAddr = netip.MustParsePrefix("198.18.0.1/24")
	hostIP   = netip.MustParseAddr("198.18.0.1")
	peerIP   = netip.MustParseAddr("198.18.0.2") // "our" side: the TUN's far end
	nsSeq    atomic.Int32
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip(8)")
	}
}

type netns struct {
	t    testing.TB
	name string
}

func newNetns(t testing.TB) *netns {
	t.Helper()
	needRoot(t)
	name := fmt.Sprintf("sockfs-tuntest-%d-%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns := &netns{t: t, name: name}
	// No IPv6 on links created from now on: no router solicitations, so
	// the tests can count every packet the kernel sends into the TUN.
	if err := ns.do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0)
	}); err != nil {
		t.Logf("disable IPv6 in %s: %v", name, err)
	}
	return ns
}

// do runs f on an OS thread that has entered the namespace. The thread is
// never unlocked, so it exits with its goroutine and the namespace change
// cannot leak into other goroutines. Sockets and devices f creates stay in
// the namespace and may be used from any goroutine afterwards.
func (ns *netns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// run runs a command in the namespace and returns its combined output.
func (ns *netns) run(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).CombinedOutput()
	return string(out), err
}

// newDevice creates a TUN named name in ns with the host address
// 198.18.0.1/24 and MTU 1500, stopped at the end of the test.
func newDevice(t testing.TB, ns *netns, name string) *Device {
	t.Helper()
	var d *Device
	err := ns.do(func() (err error) {
		d, err = New(Config{Name: name, MTU: 1500, HostAddr: hostAddr})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return d
}

// linkExists reports whether ns has an interface called name.
func (ns *netns) linkExists(name string) (bool, error) {
	var exists bool
	err := ns.do(func() error {
		nl, err := dialRtnl()
		if err != nil {
			return err
		}
		defer nl.Close()
		_, err = nl.linkByName(name)
		if err == unix.ENODEV {
			return nil
		}
		exists = err == nil
		return err
	})
	return exists, err
}

// udpSocket opens a UDP socket in ns bound to addr, with a receive timeout.
func (ns *netns) udpSocket(t testing.TB, addr netip.AddrPort) int {
	t.Helper()
	var fd int
	err := ns.do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		tv := unix.Timeval{Sec: 2}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// Hand-built packets: just enough IPv4, ICMP and UDP for the tests.

// checksum is the Internet checksum (RFC 1071) of b, seeded with sum.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// putIPv4 writes a 20-byte IPv4 header for a datagram of total bytes.
func putIPv4(h []byte, src, dst netip.Addr, proto byte, total int) {
	h[0] = 0x45
	h[1] = 0
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint16(h[4:], 0)      // id
	binary.BigEndian.PutUint16(h[6:], 0x4000) // DF
	h[8] = 64
	h[9] = proto
	h[10], h[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	binary.BigEndian.PutUint16(h[10:], checksum(h[:20], 0))
}

// udpPacket builds an IPv4/UDP datagram into b (which must hold 28+len(payload)).
func udpPacket(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	n := 28 + len(payload)
	b = b[:n]
	putIPv4(b, src.Addr(), dst.Addr(), unix.IPPROTO_UDP, n)
	u := b[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	u[6], u[7] = 0, 0
	copy(u[8:], payload)
	binary.BigEndian.PutUint16(u[6:], udpChecksum(b[12:20], u))
	return b
}

// udpChecksum computes the UDP checksum of u over the pseudo-header made of
// addrs (source and destination, 8 bytes).
func udpChecksum(addrs, u []byte) uint16 {
	var sum uint32
	for i := 0; i < 8; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(addrs[i:]))
	}
	sum += unix.IPPROTO_UDP + uint32(len(u))
	c := checksum(u, sum)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// echoReply turns an ICMP echo request (a whole IPv4 packet) into the reply
// in place: addresses swapped, type 0, both checksums recomputed.
func echoReply(p []byte) bool {
	ihl := int(p[0]&0xf) * 4
	if len(p) < ihl+8 || p[9] != unix.IPPROTO_ICMP || p[ihl] != 8 {
		return false
	}
	var a [4]byte
	copy(a[:], p[12:16])
	copy(p[12:16], p[16:20])
	copy(p[16:20], a[:])
	p[8] = 64
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], checksum(p[:ihl], 0))
	icmp := p[ihl:]
	icmp[0] = 0
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp, 0))
	return true
}

// Fixed packets checked both ways, so the builders above can be trusted.
func TestHelpersChecksum(t *testing.T) {
	// RFC 1071's example words sum to 0xddf2, checksum 0x220d.
	if c := checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0); c != 0x220d {
		t.Fatalf("checksum = %#x, want 0x220d", c)
	}
	b := udpPacket(make([]byte, 64), netip.AddrPortFrom(peerIP, 1000), netip.AddrPortFrom(hostIP, 2000), []byte("hi"))
	if checksum(b[:20], 0) != 0 {
		t.Fatal("IPv4 header checksum does not verify")
	}
	var sum uint32
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	sum += unix.IPPROTO_UDP + uint32(len(b)-20)
	if checksum(b[20:], sum) != 0 {
		t.Fatal("UDP checksum does not verify")
	}
}
