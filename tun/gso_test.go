package tun

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// Tests of transmit GSO (gso.go): a GSO skb's virtio_net_hdr, and the
// stack sending to the kernel's TCP through a real TUN with and without
// offloads.

const testMSS = 1448 // MTU 1500 with timestamps

// gsoTestSeg is one segment of a hand-made batch.
type gsoTestSeg struct {
	seq, ack uint32
	n        int             // payload bytes
	flags    header.TCPFlags // besides ACK
	full     bool            // complete checksum instead of partial
}

// gsoTestSkb builds the skb TCP output would hand the device for s: IPv4
// with DF, TCP with timestamps, payload in the linear part, a partial
// checksum (the pseudo-header sum in the field).
func gsoTestSkb(s gsoTestSeg) *skb.SKB {
	const hlen = 20 + 32
	b := skb.Alloc(64 + hlen + s.n)
	b.Reserve(64)
	p := b.Put(hlen + s.n)
	ip := header.IPv4(p)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(p)), ID: uint16(s.seq), DontFragment: true,
		TTL: 64, Protocol: header.IPv4ProtocolTCP, Src: peerIP, Dst: hostIP})
	var opts [12]byte
	header.EncodeOptions(opts[:], true, 1000, 2000, nil)
	th := header.TCP(p[20:])
	th.Encode(&header.TCPFields{SrcPort: 5001, DstPort: 40000, Seq: s.seq, Ack: s.ack,
		Flags: header.TCPFlagAck | s.flags, Window: 512, Options: opts[:]})
	for i := range s.n {
		p[hlen+i] = byte(s.seq + uint32(i))
	}
	if s.full {
		th.SetChecksum(th.CalculateChecksum(peerIP, hostIP))
	} else {
		th.SetChecksum(header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, peerIP, hostIP, uint16(32+s.n)))
		b.PartialCsumSet(20, tcpCsumOffset)
	}
	return b
}

// TestGSOLoadHeader: a GSO skb as TCP builds it (headers in the linear
// part, payload in a page fragment, gso_size and gso_segs set, partial
// checksum) goes out as one writev: a virtio_net_hdr that asks the kernel
// to cut it (GSO_TCPV4, gso_size, hdr_len up to the end of the TCP header,
// csum_start at the TCP header), the headers, the payload; and the whole,
// checksummed as the kernel will complete it, is valid TCP. No allocation.
func TestGSOLoadHeader(t *testing.T) {
	const n = 3*testMSS + 500
	b := gsoTestSkb(gsoTestSeg{seq: 1000, ack: 7, n: 0, flags: header.TCPFlagPsh})
	defer b.Free()
	pg := skb.NewPage()
	for i := range n {
		pg.Buf[i] = byte(1000 + i)
	}
	b.AddFrag(pg, 0, n)
	b.AddTruesize(n)
	ip := header.IPv4(b.Data())
	ip.SetTotalLength(uint16(b.Len()))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	th := header.TCP(b.Data()[20:])
	th.SetChecksum(header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, peerIP, hostIP, uint16(32+n)))
	sh := b.Shared()
	sh.GSOSize, sh.GSOSegs, sh.GSOType = testMSS, 4, skb.GSOTCPv4

	tx := txPool.Get().(*txState)
	defer txPool.Put(tx)
	if !tx.load(b, true) {
		t.Fatal("load: checksum not offloaded")
	}
	var h vnetHdr
	h.decode(tx.hdr[:])
	want := vnetHdr{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV4,
		hdrLen: 52, gsoSize: testMSS, csumStart: 20, csumOffset: 16}
	if h != want {
		t.Errorf("virtio_net_hdr = %+v, want %+v", h, want)
	}
	if tx.niov != 3 || tx.iov[1].Len != 52 || tx.iov[2].Len != n {
		t.Fatalf("%d iovecs: %d + %d bytes", tx.niov, tx.iov[1].Len, tx.iov[2].Len)
	}
	var whole []byte
	for _, v := range tx.iov[1:tx.niov] {
		whole = append(whole, unsafe.Slice(v.Base, v.Len)...)
	}
	wt := header.TCP(whole[20:])
	wt.SetChecksum(^header.Checksum(whole[20:], 0)) // the field holds the pseudo-header sum
	if !wt.IsChecksumValid(peerIP, hostIP) {
		t.Error("the completed checksum of the GSO packet is not valid")
	}
	if binary.BigEndian.Uint16(whole[2:4]) != uint16(len(whole)) {
		t.Errorf("IP total length %d, packet %d", binary.BigEndian.Uint16(whole[2:4]), len(whole))
	}
	if a := testing.AllocsPerRun(100, func() { tx.load(b, true) }); a != 0 {
		t.Errorf("%v allocations per GSO packet", a)
	}
	clear(tx.iov[:tx.used])
	tx.used = 0
}

// TestOffloadStackTCPToKernel: the stack sends 16 MiB to the kernel's TCP;
// with offloads TCP's GSO skbs leave whole (several segments each on
// average), without them software GSO cuts them and the device sends none;
// the data arrives byte for byte either way.
func TestOffloadStackTCPToKernel(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := map[bool]string{false: "offload", true: "no-offload"}[off]
		t.Run(name, func(t *testing.T) {
			ns := newNetns(t)
			st, _, d := stackOnTun(t, ns, "sfsgso0", off, nil)
			transfer(t, ns, st, 5002, pattern(64<<10), pattern(16<<20))
			o := d.OffloadStats()
			pk, segs := o.TxGSOPackets.Load(), o.TxGSOSegs.Load()
			t.Logf("%s: TxGSOPackets %d TxGSOSegs %d (%.1f segments each); %+v", name, pk, segs,
				float64(segs)/float64(max(pk, 1)), d.Stats().Snapshot())
			if e := st.Net().MIB.Get(memctl.TcpInCsumErrors); e != 0 {
				t.Errorf("TcpInCsumErrors = %d", e)
			}
			if off {
				if pk != 0 || segs != 0 {
					t.Errorf("offloads off, yet TxGSOPackets %d TxGSOSegs %d", pk, segs)
				}
				return
			}
			if pk == 0 || segs <= pk {
				t.Errorf("TxGSOPackets %d TxGSOSegs %d: want super-packets of more than one segment", pk, segs)
			}
		})
	}
}

// A GSO packet whose first segment carries CWR (SKB_GSO_TCP_ECN) goes to
// the kernel with VIRTIO_NET_HDR_GSO_ECN, as virtio_net_hdr_from_skb
// writes it, so the kernel keeps CWR on the first segment only.
func TestGSOLoadHeaderECN(t *testing.T) {
	b := gsoTestSkb(gsoTestSeg{seq: 1000, ack: 7, n: 0, flags: header.TCPFlagCwr})
	defer b.Free()
	pg := skb.NewPage()
	b.AddFrag(pg, 0, 2*testMSS)
	b.AddTruesize(2 * testMSS)
	sh := b.Shared()
	sh.GSOSize, sh.GSOSegs, sh.GSOType = testMSS, 2, skb.GSOTCPv4|skb.GSOTCPECN
	tx := txPool.Get().(*txState)
	defer txPool.Put(tx)
	if !tx.load(b, true) {
		t.Fatal("load: checksum not offloaded")
	}
	var h vnetHdr
	h.decode(tx.hdr[:])
	if h.gsoType != unix.VIRTIO_NET_HDR_GSO_TCPV4|unix.VIRTIO_NET_HDR_GSO_ECN {
		t.Fatalf("gso_type %#x, want TCPV4|ECN", h.gsoType)
	}
}
