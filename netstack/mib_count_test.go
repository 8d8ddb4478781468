package netstack

import (
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
)

// TestCountersOfABulkTransfer: the counters Linux moves on every
// connection move here too: the sender's ACKs are predicted (TCPHPAcks)
// or pure (TCPPureAcks), every segment is delivered once (TCPDelivered),
// and IP counts octets and transmissions both ways and packets by ECN
// codepoint.
func TestCountersOfABulkTransfer(t *testing.T) {
	n := newTestNet(t, impair.Config{Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond}, 41)
	cli, srv := tcpPair(t, n, 80)
	const size = 1 << 20
	p := newBulkPump(cli, srv, size)
	n.drive(p.step, 60*time.Second)
	n.clk.Advance(time.Second) // the last ACKs
	a, b := n.a.mib, n.b.mib
	get := func(m *memctl.MIB, c memctl.Counter) uint64 { return m.Get(c) }
	if get(a, memctl.TcpExtTCPHPAcks) == 0 || get(a, memctl.TcpExtTCPPureAcks) == 0 {
		t.Errorf("sender: TCPHPAcks %d TCPPureAcks %d", get(a, memctl.TcpExtTCPHPAcks), get(a, memctl.TcpExtTCPPureAcks))
	}
	if d, o := get(a, memctl.TcpExtTCPDelivered), get(a, memctl.TcpExtTCPOrigDataSent); d < o || d > o+2 {
		t.Errorf("TCPDelivered %d for %d data segments sent (plus SYN)", d, o)
	}
	for _, m := range []*memctl.MIB{a, b} {
		if get(m, memctl.IpExtInOctets) == 0 || get(m, memctl.IpExtOutOctets) == 0 || get(m, memctl.IpOutTransmits) == 0 {
			t.Errorf("IP octets in %d out %d, transmits %d", get(m, memctl.IpExtInOctets), get(m, memctl.IpExtOutOctets), get(m, memctl.IpOutTransmits))
		}
	}
	// Every octet a sent reaches b over the lossless pipe; b counts more,
	// as Linux would: a counts a GSO packet's one IP header, b the headers
	// of the wire packets it was cut into.
	if get(a, memctl.IpExtOutOctets) > get(b, memctl.IpExtInOctets) {
		t.Errorf("a sent %d octets, b received %d", get(a, memctl.IpExtOutOctets), get(b, memctl.IpExtInOctets))
	}
	if get(b, memctl.IpExtInNoECTPkts) < get(b, memctl.IpInReceives) {
		t.Errorf("InNoECTPkts %d < InReceives %d", get(b, memctl.IpExtInNoECTPkts), get(b, memctl.IpInReceives))
	}
}
