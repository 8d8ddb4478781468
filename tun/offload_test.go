package tun

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/memctl"
	"sockfs/netstack"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// Tests of the offloads (IFF_VNET_HDR): a sockfs stack on a real TUN in a
// namespace of the test's own, the kernel's TCP and UDP on the other side.

// tapDev is a Device whose received packets pass through tap (on the
// reader goroutine) before the stack sees them.
type tapDev struct {
	*Device
	tap func(b *skb.SKB)
}

func (t *tapDev) Open(rx link.Receiver) error {
	return t.Device.Open(link.ReceiverFunc(func(batch []*skb.SKB) {
		for _, b := range batch {
			t.tap(b)
		}
		rx.NetifRx(batch)
	}))
}

// stackOnTun puts a stack at 198.18.0.2/24 on a new TUN in ns (offloads as
// off says), with tap (if not nil) watching what the device receives.
func stackOnTun(t *testing.T, ns *netns, name string, off bool, tap func(*skb.SKB)) (*netstack.Stack, *netstack.NetDevice, *Device) {
	t.Helper()
	return stackOnTunMTU(t, ns, name, off, 1500, tap)
}

// stackOnTunMTU is stackOnTun with a device of the given MTU.
func stackOnTunMTU(t *testing.T, ns *netns, name string, off bool, mtu int, tap func(*skb.SKB)) (*netstack.Stack, *netstack.NetDevice, *Device) {
	t.Helper()
	var d *Device
	err := ns.do(func() (err error) {
		d, err = New(Config{Name: name, MTU: mtu, HostAddr: hostAddr, DisableOffload: off})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	st := netstack.New(netstack.Options{})
	t.Cleanup(func() {
		st.Close()
		d.Stop()
	})
	var ld link.Device = d
	if tap != nil {
		ld = &tapDev{Device: d, tap: tap}
	}
	nd, err := st.AddDevice(ld)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddAddress(nd, netip.PrefixFrom(peerIP, 24)); err != nil {
		t.Fatal(err)
	}
	return st, nd, d
}

// udpOnTun is stackOnTun in a new namespace with a UDP socket of the stack
// on port and a kernel UDP socket on port+1 (its descriptor, fd).
func udpOnTun(t *testing.T, name string, off bool, port uint16) (st *netstack.Stack, d *Device, uc *netstack.UDPConn, fd int) {
	t.Helper()
	ns := newNetns(t)
	st, _, d = stackOnTun(t, ns, name, off, nil)
	uc, err := st.ListenUDP(netip.AddrPortFrom(peerIP, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return st, d, uc, ns.udpSocket(t, netip.AddrPortFrom(hostIP, port+1))
}

// pattern is n bytes no two nearby windows of which are alike.
func pattern(n int) []byte {
	p := make([]byte, n)
	x := uint32(2463534242)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
}

// kernelConn connects a kernel socket in ns to a stack listener on port
// and returns both ends, for the caller to close.
func kernelConn(t *testing.T, ns *netns, st *netstack.Stack, port uint16) (net.Conn, *netstack.TCPConn) {
	t.Helper()
	ln, err := st.ListenTCP(netip.AddrPortFrom(peerIP, port), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var kc net.Conn
	if err := ns.do(func() (err error) {
		kc, err = net.DialTimeout("tcp", netip.AddrPortFrom(peerIP, port).String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c, err := ln.AcceptTCP()
	if err != nil {
		kc.Close()
		t.Fatal(err)
	}
	return kc, c
}

// transfer has the kernel send up to the stack (a listener on port) and
// the stack send down back to the kernel over one connection, and checks
// both byte for byte.
func transfer(t *testing.T, ns *netns, st *netstack.Stack, port uint16, up, down []byte) {
	t.Helper()
	kc, c := kernelConn(t, ns, st, port)
	defer kc.Close()
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	kc.SetDeadline(deadline)
	c.SetDeadline(deadline)

	var wg sync.WaitGroup
	var kerr, serr error
	var gotDown []byte
	wg.Add(2)
	go func() { // kernel: send up, then read down until EOF
		defer wg.Done()
		if _, err := kc.Write(up); err != nil {
			kerr = fmt.Errorf("kernel write: %w", err)
			return
		}
		kc.(*net.TCPConn).CloseWrite()
		gotDown, kerr = io.ReadAll(kc)
	}()
	go func() { // stack: send down, then close the write side
		defer wg.Done()
		if _, err := c.Write(down); err != nil {
			serr = fmt.Errorf("stack write: %w", err)
			return
		}
		serr = c.CloseWrite()
	}()
	gotUp, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("stack read: %v (after %d bytes)", err, len(gotUp))
	}
	wg.Wait()
	if kerr != nil || serr != nil {
		t.Fatalf("kernel: %v; stack: %v", kerr, serr)
	}
	if !bytes.Equal(gotUp, up) {
		t.Errorf("kernel->stack: got %d bytes, want %d, equal prefix %d", len(gotUp), len(up), commonPrefix(gotUp, up))
	}
	if !bytes.Equal(gotDown, down) {
		t.Errorf("stack->kernel: got %d bytes, want %d, equal prefix %d", len(gotDown), len(down), commonPrefix(gotDown, down))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// gsoWatch records what the stack was given: super-packets and how they
// were charged.
type gsoWatch struct {
	mu         sync.Mutex
	gso        int    // skbs with gso_size
	maxLen     int    // longest skb
	bad        string // first layout/charge problem seen
	partial    int    // skbs marked skb.ChecksumPartial
	overMTU    int    // skbs longer than the MTU
	checkedBig int    // super-packets of 16 KiB or more whose truesize was checked
}

func (w *gsoWatch) tap(b *skb.SKB) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := b.Len()
	w.maxLen = max(w.maxLen, n)
	if n > 1500 {
		w.overMTU++
	}
	if b.IPSummed == skb.ChecksumPartial {
		w.partial++
	}
	sh := b.Shared()
	if sh.GSOSize == 0 {
		return
	}
	w.gso++
	// gso_segs stays 0, as virtio_net_hdr_to_skb leaves it (SKB_GSO_DODGY).
	if hl := tcpHeadersLen(b.Data()); sh.GSOSegs != 0 || sh.GSOType != skb.GSOTCPv4|skb.GSODodgy || n-hl <= int(sh.GSOSize) {
		w.note(fmt.Sprintf("gso_segs %d type %#x, gso_size %d for %d bytes of payload", sh.GSOSegs, sh.GSOType, sh.GSOSize, n-hl))
	}
	if n >= 16384 {
		w.checkedBig++
		// Honest: the payload rounded up to pages plus a small head (the
		// headers' size class and the skb), nowhere near the 2x of a
		// power-of-two head.
		limit := (n+skb.PageSize-1)&^(skb.PageSize-1) + b.NrFrags()*skb.PageSize + 1024
		if ts := b.Truesize(); ts > limit || ts < n || !b.IsNonlinear() {
			w.note(fmt.Sprintf("super-packet of %d bytes (head %d, %d frags) has truesize %d (limit %d)", n, b.HeadLen(), b.NrFrags(), ts, limit))
		}
	}
}

func (w *gsoWatch) note(s string) {
	if w.bad == "" {
		w.bad = s
	}
}

// TestOffloadKernelTCPToStack moves 16 MiB up and 4 MiB down over one
// connection between the kernel's TCP and the stack, with offloads on
// (the kernel sends super-packets with partial checksums, which the stack
// trusts, and the stack leaves its checksums to the kernel) and off (one
// MTU-sized packet per read, every checksum in software): byte-exact both
// ways, and the device sees what each mode promises.
func TestOffloadKernelTCPToStack(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := map[bool]string{false: "offload", true: "no-offload"}[off]
		t.Run(name, func(t *testing.T) {
			ns := newNetns(t)
			w := &gsoWatch{}
			st, _, d := stackOnTun(t, ns, "sfsoff0", off, w.tap)
			vnet, rx, why := d.Offloads()
			if vnet != !off || rx != !off || why != nil {
				t.Fatalf("Offloads() = %v, %v, %v", vnet, rx, why)
			}
			transfer(t, ns, st, 5001, pattern(16<<20), pattern(4<<20))
			o := d.OffloadStats()
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Logf("%s: %d skbs with gso (%d big checked), longest %d, %d over the MTU, %d partial; RxGSOPackets %d RxGSOSegs %d RxCsumPartial %d TxCsumOffloaded %d; %+v",
				name, w.gso, w.checkedBig, w.maxLen, w.overMTU, w.partial, o.RxGSOPackets.Load(), o.RxGSOSegs.Load(),
				o.RxCsumPartial.Load(), o.TxCsumOffloaded.Load(), d.Stats().Snapshot())
			if w.bad != "" {
				t.Error(w.bad)
			}
			mib := st.Net().MIB
			if e := mib.Get(memctl.TcpInCsumErrors); e != 0 {
				t.Errorf("TcpInCsumErrors = %d", e)
			}
			if off {
				if w.gso != 0 || w.overMTU != 0 || w.partial != 0 || o.RxGSOPackets.Load() != 0 || o.TxCsumOffloaded.Load() != 0 {
					t.Errorf("offloads off, yet gso %d, over MTU %d, partial %d, TxCsumOffloaded %d", w.gso, w.overMTU, w.partial, o.TxCsumOffloaded.Load())
				}
				return
			}
			if o.RxGSOPackets.Load() == 0 || w.gso == 0 || w.maxLen <= 1500 {
				t.Errorf("no super-packets: RxGSOPackets %d, longest skb %d", o.RxGSOPackets.Load(), w.maxLen)
			}
			if w.checkedBig == 0 {
				t.Errorf("no super-packet of 16 KiB or more to check the truesize of")
			}
			if o.RxCsumPartial.Load() == 0 || w.partial == 0 {
				t.Errorf("no partial checksums received")
			}
			// The stack's data and ACKs went with checksum offload.
			if tx := d.Stats().TxPackets.Load(); o.TxCsumOffloaded.Load() == 0 || o.TxCsumOffloaded.Load() > tx {
				t.Errorf("TxCsumOffloaded %d of %d packets", o.TxCsumOffloaded.Load(), tx)
			}
		})
	}
}

// TestOffloadCorruptedPacketDropped flips a payload bit of one data packet
// before the stack sees it, having first made it a packet with a complete
// checksum and no offload mark (with offloads on, everything the kernel's
// TCP sends is partial). The stack must drop it and count it
// (TcpInCsumErrors), and the kernel's retransmission must leave the data
// intact; the other packets, partial, are still trusted.
func TestOffloadCorruptedPacketDropped(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := map[bool]string{false: "offload", true: "no-offload"}[off]
		t.Run(name, func(t *testing.T) {
			ns := newNetns(t)
			var seen, corrupted atomic.Int32
			tap := func(b *skb.SKB) {
				if corrupted.Load() >= 2 || b.Len() < 1000 {
					return
				}
				if seen.Add(1) < 20 {
					return // let the connection get going
				}
				if !b.ChecksumHelp() {
					t.Errorf("ChecksumHelp refused %v", b)
					return
				}
				b.IPSummed = skb.ChecksumNone
				if b.IsNonlinear() {
					b.Frag(0).Bytes()[0] ^= 0x10
				} else {
					d := b.Data()
					d[len(d)-1] ^= 0x10
				}
				corrupted.Add(1)
			}
			st, _, _ := stackOnTun(t, ns, "sfscor0", off, tap)
			transfer(t, ns, st, 5002, pattern(4<<20), nil)
			mib := st.Net().MIB
			if c, e := corrupted.Load(), mib.Get(memctl.TcpInCsumErrors); c == 0 || e != uint64(c) {
				t.Errorf("corrupted %d packets, TcpInCsumErrors %d", c, e)
			}
		})
	}
}

// TestOffloadImpairCorrupt corrupts 2% of what the device receives with
// the In impairment while offloads are on: the stage must complete a
// partial checksum before it flips a bit (netem's skb_checksum_help), so
// the stack drops every corrupted super-packet instead of trusting it,
// and the data still arrives intact. Both directions are impaired, so the
// stack's own partial packets are completed before corruption too (the
// kernel trusts partial packets, and would otherwise take the flipped bit).
func TestOffloadImpairCorrupt(t *testing.T) {
	ns := newNetns(t)
	st, nd, d := stackOnTun(t, ns, "sfsimp0", false, nil)
	for _, dir := range []netstack.Direction{netstack.In, netstack.Out} {
		if err := nd.SetImpair(dir, impair.Config{Corrupt: 0.02}); err != nil {
			t.Fatal(err)
		}
	}
	transfer(t, ns, st, 5003, pattern(8<<20), pattern(2<<20))
	_, in := nd.Impair(netstack.In)
	_, out := nd.Impair(netstack.Out)
	mib := st.Net().MIB
	t.Logf("corrupted in %d out %d; TcpInCsumErrors %d; RxGSOPackets %d", in.Corrupted, out.Corrupted,
		mib.Get(memctl.TcpInCsumErrors), d.OffloadStats().RxGSOPackets.Load())
	if in.Corrupted == 0 || mib.Get(memctl.TcpInCsumErrors) == 0 {
		t.Errorf("corrupted %d, TcpInCsumErrors %d", in.Corrupted, mib.Get(memctl.TcpInCsumErrors))
	}
	if out.Corrupted == 0 {
		t.Errorf("nothing corrupted on the way out")
	}
}

// TestOffloadUDPBothWays: a kernel UDP datagram arrives with a partial
// checksum (only the pseudo-header sum in the field), which the stack must
// accept; a datagram from the stack leaves with checksum offload and the
// kernel completes (here: trusts) it.
func TestOffloadUDPBothWays(t *testing.T) {
	st, d, uc, fd := udpOnTun(t, "sfsudo0", false, 6000)
	kaddr := netip.AddrPortFrom(hostIP, 6001)
	msg := pattern(1200)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: peerIP.As4(), Port: 6000}); err != nil {
		t.Fatal(err)
	}
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := uc.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("stack read: %v (UdpInCsumErrors %d)", err, st.Net().MIB.Get(memctl.UdpInCsumErrors))
	}
	if from != kaddr || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("got %d bytes from %v", n, from)
	}
	if d.OffloadStats().RxCsumPartial.Load() == 0 {
		t.Errorf("the kernel's datagram was not partial")
	}
	if _, err := uc.WriteToUDPAddrPort(msg[:700], kaddr); err != nil {
		t.Fatal(err)
	}
	expectDatagram(t, fd, netip.AddrPortFrom(peerIP, 6000), msg[:700])
	if d.OffloadStats().TxCsumOffloaded.Load() == 0 {
		t.Errorf("the stack's datagram went without checksum offload")
	}
}

// TestXmitVnetHeader writes, through Xmit, a UDP datagram whose checksum
// field holds only the pseudo-header sum, marked skb.ChecksumPartial: the
// virtio_net_hdr must ask the kernel to complete it (or it would drop the
// datagram as UdpInCsumErrors); the same datagram unmarked is dropped.
func TestXmitVnetHeader(t *testing.T) {
	ns := newNetns(t)
	d := newDevice(t, ns, "sfsvh0")
	dst := netip.AddrPortFrom(hostIP, 9100)
	src := netip.AddrPortFrom(peerIP, 4100)
	fd := ns.udpSocket(t, dst)
	payload := []byte("partial checksum, completed by the kernel")
	build := func(partial bool) *skb.SKB {
		b := skb.Alloc(256)
		b.Reserve(64)
		p := udpPacket(b.Put(28+len(payload)), src, dst, payload)
		// Replace the checksum by the pseudo-header sum (uncomplemented).
		var sum uint32
		for i := 12; i < 20; i += 2 {
			sum += uint32(p[i])<<8 | uint32(p[i+1])
		}
		sum += unix.IPPROTO_UDP + uint32(8+len(payload))
		for sum>>16 != 0 {
			sum = sum&0xffff + sum>>16
		}
		p[26], p[27] = byte(sum>>8), byte(sum)
		if partial && !b.PartialCsumSet(20, 6) {
			t.Fatal("PartialCsumSet refused")
		}
		return b
	}
	d.Xmit([]*skb.SKB{build(true)})
	expectDatagram(t, fd, src, payload)
	if d.OffloadStats().TxCsumOffloaded.Load() != 1 {
		t.Errorf("TxCsumOffloaded = %d", d.OffloadStats().TxCsumOffloaded.Load())
	}
	// Unmarked, the same bytes are a bad checksum: the kernel drops them.
	d.Xmit([]*skb.SKB{build(false)})
	tv := unix.Timeval{Usec: 300000}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if n, _, err := unix.Recvfrom(fd, make([]byte, 2048), 0); err == nil {
		t.Errorf("the kernel accepted a %d-byte datagram with a pseudo-header-only checksum", n)
	}
}

// TestOffloadDisabledFeatures: with offloads off the device has neither
// the header nor the features, and New says nothing is wrong.
func TestOffloadDisabledFeatures(t *testing.T) {
	ns := newNetns(t)
	var d *Device
	if err := ns.do(func() (err error) {
		d, err = New(Config{Name: "sfsnof0", HostAddr: hostAddr, DisableOffload: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	if vnet, rx, why := d.Offloads(); vnet || rx || why != nil || d.Features() != 0 {
		t.Errorf("Offloads() = %v %v %v, Features %v", vnet, rx, why, d.Features())
	}
	d2 := newDevice(t, ns, "sfsyof0")
	if d2.Features()&link.FeatureHWCsum == 0 {
		t.Errorf("offloads on: Features() = %v", d2.Features())
	}
}

// TestBuildSuperPacket builds the skb of a 64 KiB super-packet as the
// reader does, without a device: headers in the head, payload in page
// fragments, truesize about the payload rounded to pages (not the 128 KiB
// head class a linear copy takes), gso fields and partial checksum set,
// and, in steady state, no allocation.
func TestBuildSuperPacket(t *testing.T) {
	r := &rxState{d: &Device{}}
	defer r.buf.release()
	const total = 65212 // what the kernel sends at MTU 1500: 20 + 32 + 45*1448
	pkt := pattern(total)
	putIPv4(pkt, hostIP, peerIP, unix.IPPROTO_TCP, total)
	pkt[20+12] = 8 << 4 // TCP data offset: 32 bytes
	vh := vnetHdr{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448, csumStart: 20, csumOffset: 16}
	b := r.build(pkt, &vh)
	if b == nil {
		t.Fatal("build refused the packet")
	}
	got := make([]byte, b.Len())
	b.CopyBits(0, got)
	sh := b.Shared()
	t.Logf("%v, %d frags, gso %d/%d/%#x", b, b.NrFrags(), sh.GSOSize, sh.GSOSegs, sh.GSOType)
	switch {
	case !bytes.Equal(got, pkt):
		t.Error("data differs")
	case b.HeadLen() != 52 || !b.IsNonlinear():
		t.Errorf("head %d bytes, want the 52 of the headers", b.HeadLen())
	case sh.GSOSize != 1448 || sh.GSOSegs != 0 || sh.GSOType != skb.GSOTCPv4|skb.GSODodgy:
		t.Errorf("gso %d/%d/%#x", sh.GSOSize, sh.GSOSegs, sh.GSOType)
	case b.IPSummed != skb.ChecksumPartial || b.ChecksumStartOffset() != 20 || b.CsumOffset != 16:
		t.Errorf("checksum state %d start %d off %d", b.IPSummed, b.ChecksumStartOffset(), b.CsumOffset)
	}
	// 65160 payload bytes in 4 KiB pages: 16 pages; the head is a small
	// class (52 bytes: the 576-byte small-head cache) plus the skb.
	pages := (total - 52 + skb.PageSize - 1) &^ (skb.PageSize - 1)
	if want := pages + skb.CurrentProfile().AllocTruesize(52); b.Truesize() != want {
		t.Errorf("truesize %d, want %d (the linear copy would be %d)", b.Truesize(), want, skb.CurrentProfile().AllocTruesize(total))
	}
	b.Free()
	if raceEnabled {
		return // skb's debug mode (on with -race) never recycles
	}
	if n := testing.AllocsPerRun(200, func() { r.build(pkt, &vh).Free() }); n != 0 {
		t.Errorf("%v allocations per super-packet", n)
	}
}

// TestBuildRejects: headers we did not ask for are dropped, not guessed at.
func TestBuildRejects(t *testing.T) {
	r := &rxState{d: &Device{}}
	defer r.buf.release()
	pkt := pattern(3000)
	putIPv4(pkt, hostIP, peerIP, unix.IPPROTO_TCP, len(pkt))
	pkt[20+12] = 5 << 4
	for _, vh := range []vnetHdr{
		{gsoType: unix.VIRTIO_NET_HDR_GSO_UDP, gsoSize: 1400},                      // UFO: not asked for
		{gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV4},                                   // no gso_size
		{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 2990, csumOffset: 16}, // field past the end
		{gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV6, gsoSize: 1400},                    // IPv6 TSO
	} {
		if b := r.build(pkt, &vh); b != nil {
			t.Errorf("build accepted %+v", vh)
			b.Free()
		}
	}
}

// TestOffloadImpairSegments: with an In impairment the kernel's
// super-packets are cut into wire-sized packets before the impairment
// stage (netstack's gsoSegment), so "in loss 1%" means one packet in a
// hundred, not one 64 KiB burst in a hundred. The stage must see at least
// one packet per MSS of data, and the data must still arrive exact.
func TestOffloadImpairSegments(t *testing.T) {
	ns := newNetns(t)
	st, nd, d := stackOnTun(t, ns, "sfsseg0", false, nil)
	if err := nd.SetImpair(netstack.In, impair.Config{Delay: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	const up = 8 << 20
	transfer(t, ns, st, 5004, pattern(up), pattern(64<<10))
	_, in := nd.Impair(netstack.In)
	gso := d.OffloadStats().RxGSOPackets.Load()
	t.Logf("RxGSOPackets %d; packets into the In stage %d", gso, in.Sent)
	if gso == 0 {
		t.Skip("the kernel sent no super-packets; nothing to segment")
	}
	if min := uint64(up / 1460); in.Sent < min {
		t.Errorf("the In stage saw %d packets for %d bytes, want at least %d (super-packets went in whole)", in.Sent, up, min)
	}
}

// TestOffloadJumboTCP moves data both ways at MTU 9000. Packets over a page
// are laid out as tun_get_user lays them out: with offloads off (no
// hdr_len hint) good_linear bytes stay in the head, payload included, and
// the rest goes into page fragments; with offloads on the partial
// checksum's hdr_len keeps only the headers there. The stack must read
// both layouts byte-exact.
func TestOffloadJumboTCP(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := map[bool]string{false: "offload", true: "no-offload"}[off]
		t.Run(name, func(t *testing.T) {
			ns := newNetns(t)
			var mu sync.Mutex
			mixed, paged := 0, 0 // skbs with payload in the head and in fragments; paged ones
			tap := func(b *skb.SKB) {
				if !b.IsNonlinear() {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				paged++
				if b.HeadLen() > tcpHeadersLen(b.Data()) {
					mixed++
				}
			}
			st, _, _ := stackOnTunMTU(t, ns, "sfsjmb0", off, 9000, tap)
			transfer(t, ns, st, 5005, pattern(4<<20), pattern(1<<20))
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d paged skbs, %d with payload in the head too", paged, mixed)
			if paged == 0 || (off && mixed == 0) || (!off && mixed != 0) {
				t.Errorf("%d paged skbs, %d with payload in the head: want paged ones, mixed exactly when offloads are off", paged, mixed)
			}
		})
	}
}
