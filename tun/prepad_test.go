package tun

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/skb"
)

// kernelUDPTruesize is the truesize Linux 6.18 (6.18.44, x86_64) gives a
// UDP datagram of IP length iplen written into a TUN: the rmem_alloc
// (SK_MEMINFO_RMEM_ALLOC) of the receiving kernel socket after one
// datagram, read back on this project's VM. plain is a write without a
// virtio_net_hdr (or with an all-zero one); partial is one with
// VIRTIO_NET_HDR_F_NEEDS_CSUM at the UDP checksum (csum_start 20,
// csum_offset 6), which is what the kernel sends us for its own UDP when
// offloads are on. The two differ only once the packet no longer fits a
// page with tun_get_user's 64 bytes of headroom.
var kernelUDPTruesize = []struct{ iplen, plain, partial int }{
	{128, 832, 832},
	{192, 832, 832},
	{193, 1280, 1280}, // 193..256: 832 without the headroom
	{208, 1280, 1280}, // 180 bytes of payload
	{256, 1280, 1280},
	{257, 1280, 1280},
	{640, 1280, 1280},
	{641, 2304, 2304}, // 641..704: 1280 without the headroom
	{668, 2304, 2304}, // 640 bytes of payload
	{704, 2304, 2304},
	{705, 2304, 2304},
	{1028, 2304, 2304},
	{1500, 2304, 2304},
	{1664, 2304, 2304},
	{1665, 4352, 4352}, // 1665..1728: 2304 without the headroom
	{1728, 4352, 4352},
	{3028, 4352, 4352},
	{3712, 4352, 4352},
	{3713, 8448, 8448},
	{3776, 8448, 8448},
	{3777, 8448, 8448},
	{4028, 8448, 8448},
	{4128, 8448, 9024}, // paged: good_linear (3712) or hdr_len (28) in the head
	{8028, 12544, 9024},
	{9000, 12544, 13120},
}

// TestBuildTruesizeMatchesKernel lays out UDP datagrams as the reader does
// and compares their truesize with the live kernel's (kernelUDPTruesize),
// with and without the partial checksum's hdr_len hint.
func TestBuildTruesizeMatchesKernel(t *testing.T) {
	r := &rxState{d: &Device{}}
	defer r.buf.release()
	src, dst := netip.AddrPortFrom(hostIP, 5000), netip.AddrPortFrom(peerIP, 7000)
	partial := vnetHdr{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 20, csumOffset: 6}
	for _, c := range kernelUDPTruesize {
		pkt := udpPacket(make([]byte, c.iplen), src, dst, pattern(c.iplen-28))
		for _, k := range []struct {
			name string
			vh   vnetHdr
			want int
		}{{"plain", vnetHdr{}, c.plain}, {"partial", partial, c.partial}} {
			b := r.build(pkt, &k.vh)
			if b == nil {
				t.Fatalf("%s %d: refused", k.name, c.iplen)
			}
			got := make([]byte, b.Len())
			b.CopyBits(0, got)
			if b.Truesize() != k.want || string(got) != string(pkt) || b.Headroom() != tunAlign {
				t.Errorf("%s IP length %d: truesize %d (want %d), headroom %d, data intact %v",
					k.name, c.iplen, b.Truesize(), k.want, b.Headroom(), string(got) == string(pkt))
			}
			b.Free()
		}
	}
}

// TestBuildTCPLayout: a TCP packet that does not fit a page keeps in its
// head what the kernel's hint asks for (at least its headers), the rest in
// page fragments, and is charged as tun_alloc_skb charges: the head's
// size class for 64 + linear bytes plus the rest rounded up to pages.
func TestBuildTCPLayout(t *testing.T) {
	r := &rxState{d: &Device{}}
	defer r.buf.release()
	prof := skb.CurrentProfile()
	tcp := func(total int) []byte {
		pkt := pattern(total)
		putIPv4(pkt, hostIP, peerIP, unix.IPPROTO_TCP, total)
		pkt[20+12] = 8 << 4 // 32 bytes of TCP header
		return pkt
	}
	csum := vnetHdr{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 20, csumOffset: 16}
	gso := csum
	gso.gsoType, gso.gsoSize, gso.hdrLen = unix.VIRTIO_NET_HDR_GSO_TCPV4, 1448, 52
	big := gso
	big.hdrLen = 300 // a hint beyond the headers: that much stays linear
	for _, c := range []struct {
		name          string
		total         int
		vh            vnetHdr
		head, linear  int // bytes in the head; Linux's linear part
		gsoSize       uint16
		wantTruesize  int
		wantNonlinear bool
	}{
		{"small", 1500, csum, 1500, 1500, 0, prof.AllocTruesize(64 + 1500), false},
		{"page-1", 4031, csum, 4031, 4031, 0, prof.AllocTruesize(64 + 4031), false},
		// hdr_len 0 raised to the checksum field's end (38); the
		// headers (52) are pulled into the same small head.
		{"csum-hint", 9000, csum, 52, 38, 0, prof.AllocTruesize(64+38) + pageAlign(9000-38), true},
		// No hint at all (offloads off): good_linear stays linear.
		{"no-hint", 9000, vnetHdr{}, 3712, 3712, 0, prof.AllocTruesize(64+3712) + pageAlign(9000-3712), true},
		{"gso", 65212, gso, 52, 52, 1448, prof.AllocTruesize(64+52) + pageAlign(65212-52), true},
		{"gso-hint-300", 65212, big, 300, 300, 1448, prof.AllocTruesize(64+300) + pageAlign(65212-300), true},
	} {
		pkt := tcp(c.total)
		b := r.build(pkt, &c.vh)
		if b == nil {
			t.Fatalf("%s: refused", c.name)
		}
		got := make([]byte, b.Len())
		b.CopyBits(0, got)
		if string(got) != string(pkt) || b.HeadLen() != c.head || b.IsNonlinear() != c.wantNonlinear ||
			b.Truesize() != c.wantTruesize || b.Shared().GSOSize != c.gsoSize {
			t.Errorf("%s: %v gso %d; want head %d (linear %d), truesize %d, gso %d, data intact %v",
				c.name, b, b.Shared().GSOSize, c.head, c.linear, c.wantTruesize, c.gsoSize, string(got) == string(pkt))
		}
		b.Free()
	}
}

// TestTunRxTruesizeMatchesKernel has the kernel send UDP datagrams of the
// sizes of kernelUDPTruesize into a TUN of MTU 9000 and checks the
// truesize of what the device delivers against the kernel's own figures:
// the partial column with offloads on (the kernel's UDP leaves its
// checksum to the device), the plain one with offloads off.
func TestTunRxTruesizeMatchesKernel(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := map[bool]string{false: "offload", true: "no-offload"}[off]
		t.Run(name, func(t *testing.T) {
			ns := newNetns(t)
			var d *Device
			if err := ns.do(func() (err error) {
				d, err = New(Config{Name: "sfspad0", MTU: 9000, HostAddr: hostAddr, DisableOffload: off})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer d.Stop()
			c := newCollector()
			if err := d.Open(c); err != nil {
				t.Fatal(err)
			}
			fd := ns.udpSocket(t, netip.AddrPortFrom(hostIP, 9002))
			for _, k := range kernelUDPTruesize {
				if err := unix.Sendto(fd, make([]byte, k.iplen-28), 0, &unix.SockaddrInet4{Addr: peerIP.As4(), Port: 9}); err != nil {
					t.Fatalf("sendto %d: %v", k.iplen-28, err)
				}
			}
			pkts := c.wait(t, len(kernelUDPTruesize))
			c.mu.Lock()
			defer c.mu.Unlock()
			for i, k := range kernelUDPTruesize {
				want := k.partial
				if off {
					want = k.plain
				}
				if len(pkts[i]) != k.iplen || c.ts[i] != want {
					t.Errorf("IP length %d (got %d): truesize %d, the kernel's %d", k.iplen, len(pkts[i]), c.ts[i], want)
				}
			}
		})
	}
}

// TestTunRxUDPQueueMatchesKernel is the scenario end to end: 300
// datagrams from the kernel into a stack's UDP socket that never reads
// (rcvbuf 212992). The kernel queues 166 of 180 bytes (r212480) and 92 of
// 640 bytes, through a TUN; sockfs queued 256 and 166 before the TUN
// headroom was charged.
func TestTunRxUDPQueueMatchesKernel(t *testing.T) {
	for _, off := range []bool{false, true} {
		for _, c := range []struct{ payload, queued, truesize int }{{180, 166, 1280}, {640, 92, 2304}} {
			name := fmt.Sprintf("%s-%d", map[bool]string{false: "offload", true: "no-offload"}[off], c.payload)
			t.Run(name, func(t *testing.T) {
				_, d, uc, fd := udpOnTun(t, "sfsudq0", off, 6100)
				const sent = 300
				for range sent {
					if err := unix.Sendto(fd, make([]byte, c.payload), 0, &unix.SockaddrInet4{Addr: peerIP.As4(), Port: 6100}); err != nil {
						t.Fatal(err)
					}
				}
				deadline := time.Now().Add(5 * time.Second)
				for d.Stats().RxPackets.Load() < sent && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				sk := uc.Socket().Mem()
				for sk.RmemAlloc()/c.truesize+int(sk.Drops()) < sent && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if r, dr := sk.RmemAlloc(), sk.Drops(); r != c.queued*c.truesize || dr != uint64(sent-c.queued) {
					t.Errorf("r%d d%d; the kernel queues %d (r%d d%d)", r, dr, c.queued, c.queued*c.truesize, sent-c.queued)
				}
			})
		}
	}
}
