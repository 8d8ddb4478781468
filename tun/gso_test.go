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

// Tests of transmit GSO (gso.go): the merge rules on hand-made batches, the
// super-packet's headers, and the stack sending to the kernel's TCP
// through a real TUN with and without offloads.

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

// fullRun is k contiguous MSS-sized segments from seq 1000, ack 7.
func fullRun(k int) []gsoTestSeg {
	segs := make([]gsoTestSeg, k)
	for i := range segs {
		segs[i] = gsoTestSeg{seq: 1000 + uint32(i*testMSS), ack: 7, n: testMSS}
	}
	return segs
}

// TestGSORunRules checks where gsoRun ends a run: the number of skbs, from
// the start of each batch, that one super-packet may carry.
func TestGSORunRules(t *testing.T) {
	edit := func(segs []gsoTestSeg, f func([]gsoTestSeg)) []gsoTestSeg { f(segs); return segs }
	cases := []struct {
		name string
		segs []gsoTestSeg
		want int
	}{
		{"four full segments", fullRun(4), 4},
		{"last one short", edit(fullRun(4), func(s []gsoTestSeg) { s[3].n = 100 }), 4},
		{"gap in seq before the third", edit(fullRun(4), func(s []gsoTestSeg) { s[2].seq += 1; s[3].seq += 1 }), 2},
		{"FIN on the third", edit(fullRun(4), func(s []gsoTestSeg) { s[2].flags = header.TCPFlagFin }), 2},
		{"FIN on the first", edit(fullRun(4), func(s []gsoTestSeg) { s[0].flags = header.TCPFlagFin }), 1},
		{"RST on the second", edit(fullRun(4), func(s []gsoTestSeg) {
			s[1].flags = header.TCPFlagRst
		}), 1},
		{"ack differs on the second", edit(fullRun(4), func(s []gsoTestSeg) { s[1].ack = 8 }), 1},
		{"short middle segment", edit(fullRun(4), func(s []gsoTestSeg) { s[1].n = 1000; s[2].seq, s[3].seq = 1000+testMSS+1000, 1000+2*testMSS+1000 }), 2},
		{"longer than the first", edit(fullRun(3), func(s []gsoTestSeg) { s[0].n = 1000; s[1].seq = 2000; s[2].seq = 2000 + testMSS }), 1},
		{"PSH in the middle merges", edit(fullRun(4), func(s []gsoTestSeg) { s[1].flags = header.TCPFlagPsh }), 4},
		{"complete checksum", edit(fullRun(3), func(s []gsoTestSeg) { s[1].full = true }), 1},
		{"pure ACK first", edit(fullRun(3), func(s []gsoTestSeg) { s[0].n = 0; s[1].seq = 1000; s[2].seq = 1000 + testMSS }), 1},
		{"one segment", fullRun(1), 1},
		{"64 KiB bound", fullRun(50), 45}, // 52 + 45*1448 = 65212 <= 65535 < 66660
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			batch := make([]*skb.SKB, len(c.segs))
			for i, s := range c.segs {
				batch[i] = gsoTestSkb(s)
			}
			defer func() {
				for _, b := range batch {
					b.Free()
				}
			}()
			n, total, _ := gsoRun(batch, 1500)
			if n != c.want {
				t.Fatalf("gsoRun = %d skbs, want %d", n, c.want)
			}
			if n > 1 {
				want := 52
				for _, s := range c.segs[:n] {
					want += s.n
				}
				if total != want {
					t.Errorf("total = %d, want %d", total, want)
				}
			}
		})
	}
	// Other flags, one at a time, on the second of three.
	for _, f := range []header.TCPFlags{header.TCPFlagSyn, header.TCPFlagUrg, header.TCPFlagCwr} {
		segs := fullRun(3)
		segs[1].flags = f
		batch := []*skb.SKB{gsoTestSkb(segs[0]), gsoTestSkb(segs[1]), gsoTestSkb(segs[2])}
		if n, _, _ := gsoRun(batch, 1500); n != 1 {
			t.Errorf("flag %#x on the second: run of %d", f, n)
		}
		for _, b := range batch {
			b.Free()
		}
	}
}

// TestGSOLoadHeaders checks the write loadGSO prepares for three segments
// (the last short, with PSH): the virtio_net_hdr, the fixed-up IP and TCP
// headers, the payload iovecs; and that preparing it does not allocate.
func TestGSOLoadHeaders(t *testing.T) {
	segs := fullRun(3)
	segs[2].n = 500
	segs[2].flags = header.TCPFlagPsh
	batch := []*skb.SKB{gsoTestSkb(segs[0]), gsoTestSkb(segs[1]), gsoTestSkb(segs[2])}
	defer func() {
		for _, b := range batch {
			b.Free()
		}
	}()
	n, total, iovs := gsoRun(batch, 1500)
	if n != 3 || total != 52+2*testMSS+500 || iovs != 3 {
		t.Fatalf("gsoRun = %d, %d, %d", n, total, iovs)
	}
	tx := txPool.Get().(*txState)
	tx.loadGSO(batch, total, iovs)

	var h vnetHdr
	h.decode(tx.hdr[:])
	want := vnetHdr{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV4,
		hdrLen: 52, gsoSize: testMSS, csumStart: 20, csumOffset: 16}
	if h != want {
		t.Errorf("virtio_net_hdr = %+v, want %+v", h, want)
	}
	hdrs := tx.gsoHdrs[:52]
	ip := header.IPv4(hdrs)
	th := header.TCP(hdrs[20:])
	if int(ip.TotalLength()) != total || !ip.IsChecksumValid() || ip.ID() != uint16(segs[0].seq) {
		t.Errorf("IP total length %d (want %d), checksum valid %v, ID %d", ip.TotalLength(), total, ip.IsChecksumValid(), ip.ID())
	}
	if th.Seq() != segs[0].seq || th.Flags() != header.TCPFlagAck|header.TCPFlagPsh {
		t.Errorf("TCP seq %d flags %#x", th.Seq(), th.Flags())
	}
	if want := header.PseudoHeaderChecksum(header.IPv4ProtocolTCP, peerIP, hostIP, uint16(total-20)); th.Checksum() != want {
		t.Errorf("TCP checksum field %#x, want the pseudo-header sum %#x", th.Checksum(), want)
	}
	if tx.niov != 2+3 || tx.iov[1].Len != 52 {
		t.Fatalf("%d iovecs, headers %d bytes", tx.niov, tx.iov[1].Len)
	}
	// The payloads, in order, are the segments' own bytes.
	for i := range 3 {
		v := tx.iov[2+i]
		p := unsafe.Slice(v.Base, v.Len)
		if len(p) != segs[i].n || p[0] != byte(segs[i].seq) {
			t.Errorf("iovec %d: %d bytes starting %#x", i, len(p), p[0])
		}
	}
	// The whole, checksummed as the kernel will complete it, is valid TCP.
	whole := append([]byte(nil), hdrs...)
	for i := range 3 {
		whole = append(whole, unsafe.Slice(tx.iov[2+i].Base, tx.iov[2+i].Len)...)
	}
	wt := header.TCP(whole[20:])
	wt.SetChecksum(^header.Checksum(whole[20:], 0)) // the field holds the pseudo-header sum
	if !wt.IsChecksumValid(peerIP, hostIP) {
		t.Error("the completed checksum of the super-packet is not valid")
	}
	if binary.BigEndian.Uint16(whole[2:4]) != uint16(len(whole)) {
		t.Errorf("IP total length %d, packet %d", binary.BigEndian.Uint16(whole[2:4]), len(whole))
	}
	if a := testing.AllocsPerRun(100, func() {
		n, total, iovs := gsoRun(batch, 1500)
		tx.loadGSO(batch[:n], total, iovs)
	}); a != 0 {
		t.Errorf("%v allocations per super-packet", a)
	}
	clear(tx.iov[:tx.used])
	tx.used = 0
	txPool.Put(tx)
}

// TestOffloadStackTCPToKernel: the stack sends 16 MiB to the kernel's TCP;
// with offloads the device coalesces it into super-packets (several
// segments each on average), without them it sends none; the data arrives
// byte for byte either way.
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
