package main

import (
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// wireCounter sits between the NIC and the link endpoint and counts wire
// packets (what the harness divides allocations by), so that a GSO or GRO
// super-packet counts as the segments it stands for, as sockfs's count
// does (tun.OffloadStats' gso_segs) and as a NIC's counters would:
//
//   - sent: one per packet, or ceil(payload / MSS) for a GSO packet (the
//     segments the kernel will cut it into; gso_segs);
//   - received: ceil(TCP payload / (MTU - IP header - TCP header)) per TCP
//     packet, at least 1 (one for any other packet). fdbased drops the
//     virtio-net header's gso_size and runs GRO before the NIC, so the
//     segment size is not known here; the kernel's TCP cuts at exactly
//     this size (its MSS less the options in the header), so for the
//     kernel's TSO packets and their GRO merges this is the wire count, and
//     for MTU-sized packets (tun mode) it is 1.
//
// The NIC's own counters (stack.NICStats) count the super-packets.
type wireCounter struct {
	nested.Endpoint
	rx, tx atomic.Uint64
}

func newWireCounter(child stack.LinkEndpoint) *wireCounter {
	w := &wireCounter{}
	w.Endpoint.Init(child, w)
	return w
}

func (w *wireCounter) wirePackets() uint64 { return w.rx.Load() + w.tx.Load() }

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (w *wireCounter) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	w.rx.Add(rxSegments(proto, pkt, int(w.MTU())))
	w.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// WritePackets implements stack.LinkEndpoint.
func (w *wireCounter) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n, err := w.Endpoint.WritePackets(pkts)
	var segs uint64
	for _, pkt := range pkts.AsSlice()[:n] {
		segs++
		if pkt.GSOOptions.Type != stack.GSONone && pkt.GSOOptions.MSS > 0 {
			segs += uint64(max(0, (pkt.Data().Size()-1)/int(pkt.GSOOptions.MSS)))
		}
	}
	w.tx.Add(segs)
	return n, err
}

// rxSegments is the number of wire segments a received packet stands for
// (see wireCounter). It reads the IPv4 and TCP headers in place.
func rxSegments(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer, mtu int) uint64 {
	if proto != header.IPv4ProtocolNumber {
		return 1
	}
	b, ok := pkt.Data().PullUp(header.IPv4MinimumSize)
	if !ok {
		return 1
	}
	ip := header.IPv4(b)
	ihl := int(ip.HeaderLength())
	if ip.Protocol() != uint8(header.TCPProtocolNumber) || ihl < header.IPv4MinimumSize {
		return 1
	}
	if b, ok = pkt.Data().PullUp(ihl + header.TCPMinimumSize); !ok {
		return 1
	}
	thl := int(header.TCP(b[ihl:]).DataOffset())
	size := min(int(header.IPv4(b).TotalLength()), pkt.Data().Size())
	payload, seg := size-ihl-thl, mtu-ihl-thl
	if payload <= 0 || seg <= 0 {
		return 1
	}
	return uint64((payload + seg - 1) / seg)
}
