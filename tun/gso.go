package tun

// Transmit GSO: TCP builds GSO skbs itself (netstack's tcp_tso.go: one skb
// of up to 64 KiB stands for gso_segs MSS-sized segments, with gso_size,
// gso_type TCPv4 and a partial checksum set), as tcp_write_xmit does in
// Linux. With offloads in force the device reports link.FeatureTSO and
// writes each such skb as one packet behind a virtio_net_hdr with gso_type
// VIRTIO_NET_HDR_GSO_TCPV4 and gso_size the MSS (tx.go, txState.load), as
// virtio_net_hdr_from_skb describes a GSO skb. The kernel takes it with
// virtio_net_hdr_to_skb (tun_get_user) whatever TUNSETOFFLOAD says: that
// ioctl only sets what the kernel may send us; a writer needs nothing but
// IFF_VNET_HDR. The kernel then delivers it to its TCP as one skb (as if
// GRO had merged the segments) or cuts it with tcp_gso_segment if it is
// forwarded. We report TSO only when TUNSETOFFLOAD succeeded all the same,
// so DisableOffload (or a kernel that refuses offloads) turns both
// directions off together; without TSO the stack cuts GSO skbs in software
// before Xmit. (An earlier version merged runs of MSS-sized skbs here, in
// the driver; TCP no longer makes such runs.)

// gsoMaxSize is the largest GSO packet we write: its IPv4 total length is
// 16 bits (the kernel's gso_ipv4_max_size for a TUN is 64 KiB too).
const gsoMaxSize = 0xffff

// tcpCsumOffset is offsetof(struct tcphdr, check).
const tcpCsumOffset = 16
