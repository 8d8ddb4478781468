package netstack

import (
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// wireRx is a pipe end that hands its receiver each packet as a linear skb
// of its own size class, as a TUN read without offloads (tun_alloc_skb)
// builds them, instead of the sender's clone.
type wireRx struct{ *link.PipeEnd }

func (w wireRx) Open(rx link.Receiver) error {
	return w.PipeEnd.Open(link.ReceiverFunc(func(batch []*skb.SKB) {
		for i, b := range batch {
			c := skb.Alloc(b.Len())
			b.CopyBits(0, c.Put(b.Len()))
			b.Free()
			batch[i] = c
		}
		rx.NetifRx(batch)
	}))
}

// groRmemRun is the receiver scenario over the pipe: the receiver
// has "in delay 1ms" and never reads, the sender writes until the window
// closes; it returns the receiver's rmem_alloc, the bytes it has queued
// and PruneCalled.
func groRmemRun(t *testing.T, gro, linear bool) (rmem, queued int, prunes, segs uint64) {
	var wrap func(*link.PipeEnd) link.Device
	if linear {
		wrap = func(p *link.PipeEnd) link.Device { return wireRx{p} }
	}
	n := newTestNetDev(t, impair.Config{}, impair.Config{}, 71, wrap)
	setLinuxDefaults(t, n.a.net)
	setLinuxDefaults(t, n.b.net)
	n.db.imp.gro.off = !gro
	if err := n.db.SetImpair(In, impair.Config{Delay: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	cli, srv := tcpPair(t, n, 80)
	data := make([]byte, 1<<20)
	sent := 0
	n.drive(func() bool {
		sent = sendMore(cli, data, sent)
		return cli.Info().SndWnd == 0
	}, 30*time.Second)
	n.run(2 * time.Second)
	return srv.Mem().RmemAlloc(), srv.Info().Qin, n.b.mib.Get(memctl.TcpExtPruneCalled), n.b.mib.Get(memctl.TcpInSegs)
}

// TestGROReceiverBehindDelayedLink is the receiver row over the
// pipe: "in delay 1ms", a receiver that never reads, a sender that writes
// until the window closes; with and without GRO (NETIF_F_GRO off), for
// two kinds of wire packet.
//
// Linear packets (what a TUN read without offloads gives: one kmalloc
// head per packet, 2304 bytes of truesize for 1448 of data) are what
// Linux chains on frag_list, each part keeping its truesize, so the
// charge per byte stays at 1.6, as Linux's would for such skbs; what GRO
// changes is the number of skbs (one per poll and flow instead of one per
// MSS) and so the prunes (4 without GRO, 1 with; without it these are the
// issue's figures, r140544 for 87904 B).
//
// Paged packets (the sender's skbs, payload in page fragments) give GRO
// their fragments, so a super-packet costs one head plus its data: about
// 1.02 per byte (TCP's receive-queue coalescing gets 1.07 without GRO).
func TestGROReceiverBehindDelayedLink(t *testing.T) {
	type run struct {
		r, q      int
		prunes, n uint64
	}
	var res [2][2]run
	for li, linear := range []bool{false, true} {
		for gi, gro := range []bool{false, true} {
			r, q, p, in := groRmemRun(t, gro, linear)
			res[li][gi] = run{r, q, p, in}
			t.Logf("linear %v gro %v: r%d for %d B queued (%.3f per byte), PruneCalled %d, InSegs %d",
				linear, gro, r, q, float64(r)/float64(q), p, in)
		}
	}
	per := func(x run) float64 { return float64(x.r) / float64(x.q) }
	paged, lin := res[0], res[1]
	if per(paged[1]) > 1.05 || paged[1].prunes != 0 {
		t.Errorf("paged with GRO: %.3f per byte, PruneCalled %d; want at most 1.05 and none", per(paged[1]), paged[1].prunes)
	}
	if lin[0].prunes == 0 || lin[1].prunes >= lin[0].prunes {
		t.Errorf("linear: PruneCalled %d without GRO, %d with; want fewer with", lin[0].prunes, lin[1].prunes)
	}
	if d := per(lin[1]) - per(lin[0]); d > 0.02 || d < -0.02 {
		t.Errorf("linear: %.3f per byte with GRO, %.3f without: frag_list keeps each part's truesize", per(lin[1]), per(lin[0]))
	}
	for li := range res {
		if res[li][1].n*3 > res[li][0].n {
			t.Errorf("TCP saw %d skbs with GRO, %d without", res[li][1].n, res[li][0].n)
		}
	}
}

// TestGROImpairedInTransfer moves data both ways with every impairment on
// both devices' In stages, so GRO sees losses, reordering, duplicates and
// corrupted packets: the data must arrive intact, and every corrupted
// packet must still be dropped and counted by IP or TCP.
func TestGROImpairedInTransfer(t *testing.T) {
	groImpairedInTransfer(t, false)
}

// TestGROImpairedInTransfer6 is TestGROImpairedInTransfer over IPv6
// (ipv6_gro_receive, tcp6_gro_receive). IPv6 has no header checksum, so a
// bit flipped in the traffic class, flow label or hop limit goes unseen
// (as on a real wire); the dropped packets are at most the corrupted ones.
func TestGROImpairedInTransfer6(t *testing.T) {
	groImpairedInTransfer(t, true)
}

func groImpairedInTransfer(t *testing.T, v6 bool) {
	n := newTestNet6(t, impair.Config{}, impair.Config{}, 75)
	cfg := impair.Config{Loss: 0.02, Reorder: 0.02, Duplicate: 0.01, Corrupt: 0.01,
		Delay: 2 * time.Millisecond}
	for _, d := range []*NetDevice{n.da, n.db} {
		if err := d.SetImpair(In, cfg); err != nil {
			t.Fatal(err)
		}
	}
	dst := addrB
	if v6 {
		dst = addr6B
	}
	cli, srv := tcpPairAt(t, n, dst, 80)
	transfer(t, n, cli, srv, 1<<20, 5, 300*time.Second)
	transfer(t, n, srv, cli, 1<<20, 6, 300*time.Second)
	for _, side := range []struct {
		st *Stack
		d  *NetDevice
	}{{n.a, n.da}, {n.b, n.db}} {
		_, c := side.d.Impair(In)
		mib := side.st.mib
		bad := mib.Get(memctl.IpInHdrErrors) + mib.Get(memctl.TcpInErrs)
		if v6 {
			bad = mib.Get(memctl.Ip6InHdrErrors) + mib.Get(memctl.Ip6InAddrErrors) + mib.Get(memctl.Ip6InTruncatedPkts) +
				mib.Get(memctl.Ip6InUnknownProtos) + mib.Get(memctl.Ip6InDiscards) + mib.Get(memctl.TcpInErrs)
		}
		t.Logf("corrupted %d; IpInHdrErrors %d TcpInErrs %d (TcpInCsumErrors %d); InSegs %d of %d delivered",
			c.Corrupted, mib.Get(memctl.IpInHdrErrors), mib.Get(memctl.TcpInErrs), mib.Get(memctl.TcpInCsumErrors),
			mib.Get(memctl.TcpInSegs), c.Delivered)
		if c.Corrupted == 0 || bad != c.Corrupted && (!v6 || bad > c.Corrupted || bad == 0) {
			t.Errorf("%d packets corrupted, %d dropped as bad", c.Corrupted, bad)
		}
		if mib.Get(memctl.TcpInSegs) >= c.Delivered {
			t.Errorf("GRO merged nothing: TCP saw %d skbs of %d packets", mib.Get(memctl.TcpInSegs), c.Delivered)
		}
	}
}
