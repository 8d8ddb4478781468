package tun

import (
	"bytes"

	"golang.org/x/sys/unix"

	"sockfs/netstack/header"
	"sockfs/skb"
)

// Transmit GSO: Xmit coalesces a run of consecutive MSS-sized TCP segments
// of one flow from its batch into one write of a super-packet, described by
// a virtio_net_hdr with gso_type VIRTIO_NET_HDR_GSO_TCPV4 and gso_size the
// MSS, as virtio_net_hdr_from_skb describes a GSO skb. The kernel takes it
// with virtio_net_hdr_to_skb (tun_get_user) whatever TUNSETOFFLOAD says:
// that ioctl only sets what the kernel may send us; a writer needs nothing
// but IFF_VNET_HDR. The kernel then delivers it to its TCP as one skb (as
// if GRO had merged the segments) or cuts it with tcp_gso_segment if it is
// forwarded. We coalesce only when TUNSETOFFLOAD succeeded all the same, so
// DisableOffload (or a kernel that refuses offloads) turns both directions
// off together.
//
// Deviation from Linux: there, TCP builds the super-packet itself
// (tcp_write_xmit with tso_segs > 1) and GSO or the NIC cuts it; here TCP
// keeps one skb per MSS (its accounting, SACK and RACK are per skb) and the
// driver merges a batch (see netstack's xmitQueue), which is tcp_gro_receive
// done on the sending side: the merge rules below are the ones under which
// the segments are exactly what cutting the super-packet would produce.

// gsoMaxSize is the largest super-packet we write: its IPv4 total length
// is 16 bits (the kernel's gso_ipv4_max_size for a TUN is 64 KiB too).
const gsoMaxSize = 0xffff

// uioMaxIov is UIO_MAXIOV, the most iovecs one writev(2) takes.
const uioMaxIov = 1024

// gsoFlagsOff are the TCP flags that stop a segment from being merged:
// SYN/FIN/RST end or start a flow, URG points into one segment, and CWR
// would need VIRTIO_NET_HDR_GSO_ECN (tcp_gso_segment sends it only on the
// first segment, which we would have to undo).
const gsoFlagsOff = header.TCPFlagSyn | header.TCPFlagFin | header.TCPFlagRst | header.TCPFlagUrg | header.TCPFlagCwr

// gsoSeg is the view of a segment that the merge rules need.
type gsoSeg struct {
	ip      header.IPv4
	th      header.TCP
	hdrLen  int // IP + TCP headers (in the linear part)
	payload int // TCP payload length
	iovs    int // iovecs its payload needs
}

// parse fills s from b, reporting whether b may be part of a super-packet
// at all: an unfragmented IPv4/TCP packet with DF, its headers in the
// linear part, no padding, a partial checksum located at the TCP checksum
// field, and none of gsoFlagsOff.
func (s *gsoSeg) parse(b *skb.SKB) bool {
	if b.IPSummed != skb.ChecksumPartial {
		return false
	}
	d := b.Data()
	if len(d) < header.IPv4MinSize {
		return false
	}
	ip := header.IPv4(d)
	ihl := ip.HeaderLength()
	if ip.Version() != 4 || ihl < header.IPv4MinSize || len(d) < ihl+header.TCPMinSize ||
		ip.Protocol() != unix.IPPROTO_TCP || int(ip.TotalLength()) != b.Len() ||
		!ip.DontFragment() || ip.MoreFragments() || ip.FragmentOffset() != 0 {
		return false
	}
	th := header.TCP(d[ihl:])
	doff := th.DataOffset()
	if doff < header.TCPMinSize || len(d) < ihl+doff || th.Flags()&gsoFlagsOff != 0 {
		return false
	}
	if b.ChecksumStartOffset() != ihl || int(b.CsumOffset) != tcpCsumOffset {
		return false
	}
	s.ip = ip[:ihl]
	s.th = th[:doff]
	s.hdrLen = ihl + doff
	s.payload = b.Len() - s.hdrLen
	s.iovs = b.NrFrags()
	if len(d) > s.hdrLen {
		s.iovs++
	}
	return true
}

// tcpCsumOffset is offsetof(struct tcphdr, check).
const tcpCsumOffset = 16

// sameFlow reports whether s may follow first in one super-packet as far
// as its headers go: every field equal except the IP ID, total length and
// checksum and the TCP sequence number, PSH and checksum (the fields
// tcp_gso_segment rewrites per segment, and the ones tcp_gro_receive lets
// differ when it merges).
func (s *gsoSeg) sameFlow(first *gsoSeg) bool {
	a, b := first.ip, s.ip
	t, u := first.th, s.th
	return len(a) == len(b) && len(t) == len(u) &&
		a.TOS() == b.TOS() && a.TTL() == b.TTL() && a.Flags() == b.Flags() &&
		a.SrcAddr() == b.SrcAddr() && a.DstAddr() == b.DstAddr() &&
		bytes.Equal(a.Options(), b.Options()) &&
		t.SrcPort() == u.SrcPort() && t.DstPort() == u.DstPort() &&
		t.Ack() == u.Ack() && t.Window() == u.Window() &&
		t.Flags()&^header.TCPFlagPsh == u.Flags()&^header.TCPFlagPsh &&
		t.UrgentPointer() == u.UrgentPointer() &&
		bytes.Equal(t.Options(), u.Options())
}

// gsoRun returns how many skbs at the start of batch (at least 1) can be
// written as one super-packet, with its total length and the iovecs its
// payload needs. A run of one is an ordinary packet. Rules: each skb
// parses (gsoSeg.parse) and fits mtu, has the first's headers (sameFlow),
// starts where the previous ended (contiguous sequence numbers); every
// segment but the last carries exactly gso_size (the first's payload)
// bytes and the last at most that, as tcp_gso_segment would cut them; the
// whole is at most gsoMaxSize bytes and uioMaxIov iovecs.
func gsoRun(batch []*skb.SKB, mtu int) (n, total, payloadIovs int) {
	var first, s gsoSeg
	if len(batch) < 2 || batch[0].Len() > mtu || !first.parse(batch[0]) || first.payload == 0 {
		return 1, 0, 0
	}
	gsoSize := first.payload
	total = batch[0].Len()
	payloadIovs = first.iovs
	next := first.th.Seq() + uint32(gsoSize)
	prev := gsoSize
	n = 1
	for _, b := range batch[1:] {
		if prev != gsoSize || b.Len() > mtu || !s.parse(b) || !s.sameFlow(&first) ||
			s.payload == 0 || s.payload > gsoSize || s.th.Seq() != next ||
			total+s.payload > gsoMaxSize || 2+payloadIovs+s.iovs > uioMaxIov {
			break
		}
		total += s.payload
		payloadIovs += s.iovs
		next += uint32(s.payload)
		prev = s.payload
		n++
	}
	if n == 1 {
		return 1, 0, 0
	}
	return n, total, payloadIovs
}

// loadGSO points t's iovecs at the super-packet made of run (as gsoRun
// found it, total bytes long): a virtio_net_hdr as virtio_net_hdr_from_skb
// fills it for a CHECKSUM_PARTIAL TCPv4 GSO skb, then a copy of the first
// segment's headers fixed up for the whole (the IP total length and
// checksum; PSH from the last segment, as tcp_gso_segment leaves PSH only
// on the last; the TCP checksum field holding the pseudo-header sum over
// the whole TCP length, as tcp_v4_send_check leaves it for
// CHECKSUM_PARTIAL), then every segment's payload in order.
func (t *txState) loadGSO(run []*skb.SKB, total, payloadIovs int) {
	var first, last gsoSeg
	first.parse(run[0])
	last.parse(run[len(run)-1])
	hlen := first.hdrLen
	ihl := len(first.ip)

	hdrs := t.gsoHdrs[:hlen]
	copy(hdrs, run[0].Data()[:hlen])
	ip := header.IPv4(hdrs[:ihl])
	ip.SetTotalLength(uint16(total))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	th := header.TCP(hdrs[ihl:])
	th.SetFlags(th.Flags()&^header.TCPFlagPsh | last.th.Flags()&header.TCPFlagPsh)
	th.SetChecksum(header.PseudoHeaderChecksum(unix.IPPROTO_TCP, ip.SrcAddr(), ip.DstAddr(), uint16(total-ihl)))

	h := vnetHdr{
		flags:      unix.VIRTIO_NET_HDR_F_NEEDS_CSUM,
		gsoType:    unix.VIRTIO_NET_HDR_GSO_TCPV4,
		hdrLen:     uint16(hlen),
		gsoSize:    uint16(first.payload),
		csumStart:  uint16(ihl),
		csumOffset: tcpCsumOffset,
	}
	h.encode(t.hdr[:])

	if need := 2 + payloadIovs; need > len(t.iov) {
		t.iov = make([]unix.Iovec, uioMaxIov) // once per pooled txState
	}
	t.iov[0].Base = &t.hdr[0]
	t.iov[0].SetLen(vnetHdrLen)
	t.iov[1].Base = &hdrs[0]
	t.iov[1].SetLen(hlen)
	t.niov = 2
	for _, b := range run {
		t.addIov(b.Data()[hlen:])
		t.addFrags(b)
	}
	t.used = max(t.used, t.niov)
}
