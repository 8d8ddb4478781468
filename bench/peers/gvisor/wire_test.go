package main

import (
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tcpPacket is an IPv4 packet with a TCP header of thl bytes and payload
// bytes of data.
func tcpPacket(thl, payload int) *stack.PacketBuffer {
	b := make([]byte, header.IPv4MinimumSize+thl+payload)
	header.IPv4(b).Encode(&header.IPv4Fields{
		TotalLength: uint16(min(len(b), 0xffff)),
		Protocol:    uint8(header.TCPProtocolNumber),
		TTL:         64,
		SrcAddr:     tcpip.AddrFrom4([4]byte{198, 18, 0, 1}),
		DstAddr:     tcpip.AddrFrom4([4]byte{198, 18, 0, 2}),
	})
	header.TCP(b[header.IPv4MinimumSize:]).Encode(&header.TCPFields{DataOffset: uint8(thl)})
	return stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
}

func TestRxSegments(t *testing.T) {
	for _, tc := range []struct {
		mtu, thl, payload int
		want              uint64
	}{
		{1500, 32, 1448, 1},       // one MTU-sized segment with timestamps
		{1500, 32, 0, 1},          // a pure ACK
		{1500, 32, 44 * 1448, 44}, // a TSO packet of 44 segments
		{1500, 32, 44*1448 + 1, 45},
		{1500, 20, 1460 * 3, 3},
		{65000, 32, 65000 - 52, 1},
	} {
		pkt := tcpPacket(tc.thl, tc.payload)
		if got := rxSegments(header.IPv4ProtocolNumber, pkt, tc.mtu); got != tc.want {
			t.Errorf("MTU %d, TCP header %d, payload %d: %d segments, want %d", tc.mtu, tc.thl, tc.payload, got, tc.want)
		}
		pkt.DecRef()
	}
	arp := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(make([]byte, header.ARPSize))})
	defer arp.DecRef()
	if got := rxSegments(header.ARPProtocolNumber, arp, 1500); got != 1 {
		t.Errorf("ARP: %d", got)
	}
}
