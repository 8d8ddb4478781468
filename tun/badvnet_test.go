package tun

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/netstack/link"
)

// fakeTun is a Device whose descriptor is one end of a SOCK_SEQPACKET
// socketpair (one message per read, as a TUN gives one packet per read),
// opened as with offloads on; the test writes raw frames, virtio_net_hdr
// included, into the other end.
//
// Why not a real TUN: what a TUN's reader gets is written by the kernel
// (tun_put_user builds the virtio_net_hdr from its own skb), and the
// kernel refuses a malformed header before it makes an skb of it
// (virtio_net_hdr_to_skb on AF_PACKET and vhost input), so a real device
// cannot be made to hand us one. The reader path is the same.
func fakeTun(t *testing.T) (*Device, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[1], false); err != nil { // the writer waits for the reader
		t.Fatal(err)
	}
	d := &Device{cfg: Config{Name: "fake0", MTU: 1500}, rxBatch: defaultRxBatch, vnetHdr: true, rxOffload: true}
	d.file = os.NewFile(uintptr(fds[0]), "socketpair")
	if d.raw, err = d.file.SyscallConn(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		unix.Close(fds[1])
	})
	return d, fds[1]
}

// tcpTestPacket is an IPv4/TCP packet of total bytes with a 32-byte TCP
// header (the timestamp option's size); only the lengths matter here.
func tcpTestPacket(total int) []byte {
	pkt := pattern(total)
	putIPv4(pkt, hostIP, peerIP, unix.IPPROTO_TCP, total)
	pkt[20+12] = 8 << 4
	return pkt
}

// TestRxMalformedVnetHdrDropped writes super-packets with headers the
// kernel would refuse from a writer (gso_size 0, a hdr_len or a checksum
// past the packet, a checksum start inside the IP header, a TCP
// super-packet's checksum elsewhere than the TCP checksum, GSO_BY_FRAGS, a
// gso_type we never asked for, TCPV4 on a UDP packet): each is dropped and
// counted in rx_frame_errors, and nothing reaches the receiver but the
// good packets, byte for byte. A gso_size larger than the payload is not
// an error: as in virtio_net_hdr_to_skb, such a packet is a plain one.
func TestRxMalformedVnetHdrDropped(t *testing.T) {
	d, w := fakeTun(t)
	c := newCollector()
	if err := d.Open(c); err != nil {
		t.Fatal(err)
	}
	const tcpv4 = unix.VIRTIO_NET_HDR_GSO_TCPV4
	const csum = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	super := tcpTestPacket(20000)
	small := tcpTestPacket(1000)
	udp := udpPacket(make([]byte, 20000), netip.AddrPortFrom(hostIP, 5000), netip.AddrPortFrom(peerIP, 7000), pattern(20000-28))
	good := vnetHdr{flags: csum, gsoType: tcpv4, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16}
	with := func(f func(h *vnetHdr)) vnetHdr { h := good; f(&h); return h }
	frames := []struct {
		name string
		vh   vnetHdr
		pkt  []byte
		ok   bool
		gso  uint16 // gso_size delivered
	}{
		{"good", good, super, true, 1448},
		{"gso_size 0", with(func(h *vnetHdr) { h.gsoSize = 0 }), super, false, 0},
		{"gso_size 0 no csum", vnetHdr{gsoType: tcpv4}, super, false, 0},
		{"hdr_len past the packet", with(func(h *vnetHdr) { h.hdrLen = 20001 }), super, false, 0},
		{"csum field past the packet", with(func(h *vnetHdr) { h.csumStart = 19990 }), super, false, 0},
		{"csum_offset past the packet", vnetHdr{flags: csum, csumStart: 20, csumOffset: 990}, small, false, 0},
		{"csum_start in the IP header", vnetHdr{flags: csum, csumStart: 10, csumOffset: 16}, small, false, 0},
		{"TSO csum not at the TCP checksum", with(func(h *vnetHdr) { h.csumOffset = 6 }), super, false, 0},
		{"GSO_BY_FRAGS", with(func(h *vnetHdr) { h.gsoSize = 0xffff }), super, false, 0},
		{"UFO", with(func(h *vnetHdr) { h.gsoType = unix.VIRTIO_NET_HDR_GSO_UDP }), super, false, 0},
		{"TSO6", with(func(h *vnetHdr) { h.gsoType = unix.VIRTIO_NET_HDR_GSO_TCPV6 }), super, false, 0},
		{"unknown gso_type", with(func(h *vnetHdr) { h.gsoType = 7 }), super, false, 0},
		{"TSO4 on UDP", vnetHdr{gsoType: tcpv4, gsoSize: 1448}, udp, false, 0},
		{"gso_size beyond the payload", with(func(h *vnetHdr) { h.gsoSize = 30000 }), super, true, 0},
		{"good again", good, super, true, 1448},
	}
	var wantOK int
	var buf [vnetHdrLen + maxPacket]byte
	for _, f := range frames {
		f.vh.encode(buf[:])
		n := copy(buf[vnetHdrLen:], f.pkt)
		if _, err := unix.Write(w, buf[:vnetHdrLen+n]); err != nil {
			t.Fatalf("%s: write: %v", f.name, err)
		}
		if f.ok {
			wantOK++
		}
	}
	bad := uint64(len(frames) - wantOK)
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats().RxFrameErrors.Load() < bad && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	pkts := c.wait(t, wantOK)
	time.Sleep(50 * time.Millisecond) // anything more would be a bug
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(pkts) != wantOK {
		t.Fatalf("receiver got %d packets, want %d", len(c.pkts), wantOK)
	}
	i := 0
	for _, f := range frames {
		if !f.ok {
			continue
		}
		if string(c.pkts[i]) != string(f.pkt) || c.gso[i] != f.gso {
			t.Errorf("%s: delivered %d bytes, gso_size %d; want the %d bytes written, gso_size %d", f.name, len(c.pkts[i]), c.gso[i], len(f.pkt), f.gso)
		}
		i++
	}
	want := link.StatsSnapshot{RxPackets: uint64(wantOK), RxBytes: uint64(wantOK * len(super)), RxFrameErrors: bad}
	if got := d.Stats().Snapshot(); got != want {
		t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}
}
