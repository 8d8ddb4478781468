package netstack

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
	"sockfs/skb"
)

// csum is an independent, plain RFC 1071 checksum for building test packets.
func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ipPacket builds an IPv4 packet by hand from a to b with the given
// protocol, fragment field and payload.
func ipPacket(proto byte, id uint16, frag uint16, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], id)
	binary.BigEndian.PutUint16(p[6:], frag)
	p[8] = 64
	p[9] = proto
	copy(p[12:16], addrA.AsSlice())
	copy(p[16:20], addrB.AsSlice())
	binary.BigEndian.PutUint16(p[10:], csum(p[:20]))
	copy(p[20:], payload)
	return p
}

// inject hands raw bytes to b's device as if they came off the wire.
func (n *testNet) inject(pkt []byte) {
	s := skb.Alloc(len(pkt))
	s.PutData(pkt)
	n.db.NetifRx([]*skb.SKB{s})
}

func echoRequest(id, seq uint16, data string) []byte {
	m := make([]byte, 8+len(data))
	m[0] = 8
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], csum(m))
	return m
}

func TestPingOverPipe(t *testing.T) {
	n := newTestNet(t, impair.Config{Delay: 5 * time.Millisecond}, impair.Config{Delay: 5 * time.Millisecond}, 10)
	for seq := range uint16(3) {
		done := make(chan error, 1)
		go func() { done <- n.a.Ping(context.Background(), addrB, seq, []byte("hello")) }()
		if err := await(n, done); err != nil {
			t.Fatal(err)
		}
	}
	if n.b.mib.Get(memctl.IcmpInEchos) != 3 || n.b.mib.Get(memctl.IcmpOutEchoReps) != 3 || n.a.mib.Get(memctl.IcmpInEchoReps) != 3 {
		t.Fatalf("echo counters: InEchos %d OutEchoReps %d InEchoReps %d", n.b.mib.Get(memctl.IcmpInEchos),
			n.b.mib.Get(memctl.IcmpOutEchoReps), n.a.mib.Get(memctl.IcmpInEchoReps))
	}
}

// A hand-built echo request gets a reply that mirrors it.
func TestEchoReplyMirrorsRequest(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 11)
	var reply []byte
	n.pa.Stop()
	n.pa.Open(receiverFunc(func(b *skb.SKB) { reply = append([]byte(nil), b.Data()...); b.Free() }))
	n.inject(ipPacket(1, 77, 0, echoRequest(0x1234, 9, "payload")))
	n.run(time.Millisecond)
	if len(reply) != 20+8+7 {
		t.Fatalf("reply of %d bytes", len(reply))
	}
	if csum(reply[:20]) != 0 || csum(reply[20:]) != 0 {
		t.Fatal("reply checksums are wrong")
	}
	if reply[20] != 0 || binary.BigEndian.Uint16(reply[24:]) != 0x1234 || binary.BigEndian.Uint16(reply[26:]) != 9 || string(reply[28:]) != "payload" {
		t.Fatalf("reply %x", reply[20:])
	}
	if netip.AddrFrom4([4]byte(reply[12:16])) != addrB || netip.AddrFrom4([4]byte(reply[16:20])) != addrA {
		t.Fatal("reply addresses not swapped")
	}
}

type receiverFunc func(b *skb.SKB)

func (f receiverFunc) NetifRx(batch []*skb.SKB) {
	for _, b := range batch {
		f(b)
	}
}

// Malformed packets are dropped and counted, never trusted or panicked on.
func TestMalformedIPv4Dropped(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 12)
	good := ipPacket(1, 1, 0, echoRequest(1, 1, "x"))
	badSum := append([]byte(nil), good...)
	badSum[10] ^= 0xff
	badVersion := append([]byte(nil), good...)
	badVersion[0] = 0x55 // 6 would be IPv6
	badIHL := append([]byte(nil), good...)
	badIHL[0] = 0x44
	longTotal := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(longTotal[2:], 500)
	binary.BigEndian.PutUint16(longTotal[10:], 0)
	binary.BigEndian.PutUint16(longTotal[10:], csum(longTotal[:20]))
	badICMPSum := ipPacket(1, 2, 0, echoRequest(1, 1, "x"))
	badICMPSum[22] ^= 0xff
	for _, c := range []struct {
		name    string
		pkt     []byte
		counter memctl.Counter
	}{
		{"bad header checksum", badSum, memctl.IpExtInCsumErrors},
		{"bad version", badVersion, memctl.IpInHdrErrors},
		{"IHL below 5", badIHL, memctl.IpInHdrErrors},
		{"truncated header", good[:12], memctl.IpInHdrErrors},
		{"total length past the data", longTotal, memctl.IpExtInTruncatedPkts},
		{"empty", nil, memctl.IpInHdrErrors},
		{"bad ICMP checksum", badICMPSum, memctl.IcmpInCsumErrors},
	} {
		before := n.b.mib.Get(c.counter)
		n.inject(c.pkt)
		if n.b.mib.Get(c.counter) != before+1 {
			t.Errorf("%s: %v not counted", c.name, c.counter)
		}
	}
	n.run(time.Millisecond)
	if n.b.mib.Get(memctl.IcmpOutMsgs) != 0 {
		t.Fatal("a malformed packet was answered")
	}
	// Not for us: a host does not forward.
	other := ipPacket(17, 3, 0, make([]byte, 8))
	copy(other[16:20], []byte{198, 18, 0, 99})
	binary.BigEndian.PutUint16(other[10:], 0)
	binary.BigEndian.PutUint16(other[10:], csum(other[:20]))
	n.inject(other)
	if n.b.mib.Get(memctl.IpInAddrErrors) != 1 {
		t.Fatal("packet for another host not counted as InAddrErrors")
	}
	// An unknown protocol gets protocol unreachable.
	n.inject(ipPacket(99, 4, 0, []byte("????")))
	if n.b.mib.Get(memctl.IpInUnknownProtos) != 1 || n.b.mib.Get(memctl.IcmpOutDestUnreachs) != 1 {
		t.Fatal("unknown protocol not counted or not answered")
	}
}

// An incomplete datagram is dropped after ipfrag_time, and the sender of
// its first fragment is told (time exceeded, reassembly).
func TestFragmentReassemblyTimeout(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 13)
	udp := make([]byte, 16)
	n.inject(ipPacket(17, 42, 0x2000, udp)) // MF, offset 0
	if n.b.frags.Queues() != 1 || n.b.frags.Mem() == 0 {
		t.Fatal("fragment not held")
	}
	n.run(29 * time.Second)
	if n.b.frags.Queues() != 1 {
		t.Fatal("dropped before ipfrag_time")
	}
	n.run(2 * time.Second)
	if n.b.frags.Queues() != 0 || n.b.frags.Mem() != 0 {
		t.Fatal("not dropped after ipfrag_time")
	}
	if n.b.mib.Get(memctl.IpReasmTimeout) != 1 || n.b.mib.Get(memctl.IpReasmFails) != 1 {
		t.Fatal("timeout not counted")
	}
	if n.b.mib.Get(memctl.IcmpOutTimeExcds) != 1 {
		t.Fatal("no time exceeded sent")
	}
}

// Overlapping fragments kill the datagram (Linux since 4.19); an exact
// duplicate is ignored.
func TestFragmentOverlapAndDuplicate(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 14)
	srv := mustUDP(t, n.b, netip.AddrPortFrom(addrB, 7100))
	payload := make([]byte, 24) // UDP header + 16 bytes
	binary.BigEndian.PutUint16(payload[0:], 1234)
	binary.BigEndian.PutUint16(payload[2:], 7100)
	binary.BigEndian.PutUint16(payload[4:], 24)
	copy(payload[8:], "0123456789abcdef")
	first, second := payload[:16], payload[16:]
	n.inject(ipPacket(17, 50, 0x2000, first))
	n.inject(ipPacket(17, 50, 0x2000, first)) // duplicate
	n.inject(ipPacket(17, 50, 2, second))     // offset 16, last
	buf := make([]byte, 100)
	k, _, err := srv.RecvFrom(context.Background(), buf)
	if err != nil || string(buf[:k]) != "0123456789abcdef" {
		t.Fatalf("reassembled %q, %v", buf[:k], err)
	}
	n.inject(ipPacket(17, 51, 0x2000, first))
	n.inject(ipPacket(17, 51, 0x2001, second)) // offset 8 overlaps 0..16
	if n.b.frags.Queues() != 0 || n.b.mib.Get(memctl.IpReasmFails) != 1 {
		t.Fatalf("overlap: queues %d fails %d", n.b.frags.Queues(), n.b.mib.Get(memctl.IpReasmFails))
	}
}
