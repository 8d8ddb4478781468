package netstack

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// takeRaw returns the next transmitted packet whole (IP header first).
func (c *script) takeRaw() []byte {
	c.t.Helper()
	c.dev.mu.Lock()
	defer c.dev.mu.Unlock()
	if len(c.dev.out) == 0 {
		c.t.Fatal("nothing transmitted")
	}
	b := c.dev.out[0]
	c.dev.out = c.dev.out[1:]
	buf := make([]byte, b.Len())
	b.CopyBits(0, buf)
	b.Free()
	return buf
}

// icmpFrom injects an ICMP error of type typ and code from the peer that
// quotes pkt (the offending packet's IP header and first 8 payload bytes,
// as a router quotes it), with rest as the 4 bytes after the checksum (the
// next-hop MTU of a fragmentation-needed).
func (c *script) icmpFrom(typ, code uint8, rest uint32, pkt []byte) {
	c.t.Helper()
	quote := pkt[:header.IPv4(pkt).HeaderLength()+8]
	total := header.IPv4MinSize + header.ICMPv4MinSize + len(quote)
	b := skb.Alloc(total + 64)
	b.Reserve(64)
	p := b.Put(total)
	header.IPv4(p).Encode(&header.IPv4Fields{TotalLength: uint16(total), TTL: 64, Protocol: header.IPv4ProtocolICMP,
		Src: scriptRemote, Dst: scriptLocal, ID: 9})
	m := header.ICMPv4(p[header.IPv4MinSize:])
	m.SetType(typ)
	m.SetCode(code)
	m.SetRestOfHeader(rest)
	copy(m[header.ICMPv4MinSize:], quote)
	m.SetChecksum(0)
	m.SetChecksum(^header.Checksum(m, 0))
	c.nd.NetifRx([]*skb.SKB{b})
}

// fragNeeded is icmpFrom for a fragmentation-needed with next-hop MTU mtu.
func (c *script) fragNeeded(mtu int, pkt []byte) {
	c.icmpFrom(header.ICMPv4DestUnreachable, header.ICMPv4FragmentationNeeded, uint32(mtu), pkt)
}

// sentSegments takes every transmitted packet and returns the TCP payload
// lengths, failing on any whose DF bit is not df.
func (c *script) sentSegments(df bool) []int {
	c.t.Helper()
	var lens []int
	for {
		c.dev.mu.Lock()
		n := len(c.dev.out)
		c.dev.mu.Unlock()
		if n == 0 {
			return lens
		}
		pkt := c.takeRaw()
		iph := header.IPv4(pkt)
		if iph.DontFragment() != df {
			c.t.Fatalf("DF %v, want %v", iph.DontFragment(), df)
		}
		th := header.TCP(pkt[iph.HeaderLength():])
		lens = append(lens, int(iph.TotalLength())-iph.HeaderLength()-th.DataOffset())
	}
}

// A fragmentation-needed that quotes a segment in flight lowers the path's
// MTU: the MSS follows at once (tcp_v4_mtu_reduced -> tcp_sync_mss) and
// what was sent too large goes again in segments that fit
// (tcp_simple_retransmit), without waiting for an RTO; later data uses the
// smaller MSS. The route cache shows the learned MTU until
// route/mtu_expires, and then the MSS grows back (tcp_current_mss).
func TestPMTUFragNeededShrinksMSS(t *testing.T) {
	c := newEstablished(t)
	data := strings.Repeat("x", 4*1460)
	if _, err := c.tp.Send(context.Background(), []byte(data)); err != nil {
		t.Fatal(err)
	}
	first := c.takeRaw()
	if got := c.sentSegments(true); len(got) != 3 {
		t.Fatalf("first flight: %d more segments, want 3", len(got))
	}
	if c.tp.Info().SndMSS != 1460 || c.tp.Info().PMTU != 1500 {
		t.Fatalf("before: mss %d pmtu %d", c.tp.Info().SndMSS, c.tp.Info().PMTU)
	}
	c.fragNeeded(1200, first)
	if i := c.tp.Info(); i.SndMSS != 1160 || i.PMTU != 1200 {
		t.Fatalf("after fragmentation-needed: mss %d pmtu %d, want 1160 1200", i.SndMSS, i.PMTU)
	}
	// Retransmitted at once (no clock advance), cut to the new MSS: the
	// congestion window (10) lets all of it go.
	resent := c.sentSegments(true)
	sum := 0
	for _, n := range resent {
		if n > 1160 {
			t.Fatalf("retransmitted segment of %d bytes after the MTU fell to 1200", n)
		}
		sum += n
	}
	if sum != len(data) {
		t.Fatalf("retransmitted %d bytes (%v), want %d", sum, resent, len(data))
	}
	if c.tp.Info().CAState != tcpCALoss {
		t.Fatalf("ca_state %d, want Loss", c.tp.Info().CAState)
	}
	if got := c.s.PMTUCache(); len(got) != 1 || got[0].Dst != scriptRemote || got[0].MTU != 1200 || got[0].Locked {
		t.Fatalf("route cache %+v", got)
	}
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1 + uint32(len(data)), flags: fAck})
	c.sentSegments(true)
	c.tp.Send(context.Background(), []byte(strings.Repeat("y", 2000)))
	if got := c.sentSegments(true); len(got) != 2 || got[0] != 1160 || got[1] != 840 {
		t.Fatalf("new data after the MTU fell: %v, want [1160 840]", got)
	}
	// route/mtu_expires (600 s) later the exception is gone and the next
	// send finds the device's MTU again.
	c.clk.Advance(601 * time.Second)
	c.sentSegments(true) // whatever the timers sent meanwhile
	if got := c.s.PMTUCache(); len(got) != 0 {
		t.Fatalf("route cache after mtu_expires: %+v", got)
	}
	if mss := c.tp.sendMss(); mss != 1460 {
		t.Fatalf("mss %d after the path MTU expired, want 1460", mss)
	}
}

// The quoted sequence number must be one we have sent and not had
// acknowledged (RFC 5927): anything else is a blind or stale ICMP, counted
// in OutOfWindowIcmps and ignored.
func TestPMTUOutOfWindowICMPIgnored(t *testing.T) {
	c := newEstablished(t)
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 1460)))
	pkt := c.takeRaw()
	header.TCP(pkt[header.IPv4(pkt).HeaderLength():]).SetSeq(c.iss + 1 + 1461) // beyond snd_nxt
	c.fragNeeded(1200, pkt)
	if mss := c.tp.Info().SndMSS; mss != 1460 {
		t.Fatalf("mss %d after a blind fragmentation-needed", mss)
	}
	if n := c.s.mib.Get(memctl.TcpExtOutOfWindowIcmps); n != 1 {
		t.Fatalf("OutOfWindowIcmps %d, want 1", n)
	}
	if len(c.s.PMTUCache()) != 0 {
		t.Fatal("a blind ICMP changed the route cache")
	}
	c.expectNone()
}

// An MTU below route/min_pmtu is raised to it and locked: segments then
// leave without DF (ip_dont_fragment is false on a locked path), so
// routers may fragment them, and no further ICMP lowers it.
func TestPMTUBelowMinPmtuLocks(t *testing.T) {
	c := newEstablished(t)
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 1460)))
	pkt := c.takeRaw()
	c.fragNeeded(300, pkt)
	if i := c.tp.Info(); i.PMTU != 552 || i.SndMSS != 512 {
		t.Fatalf("pmtu %d mss %d, want 552 512", i.PMTU, i.SndMSS)
	}
	if got := c.sentSegments(false); len(got) != 3 {
		t.Fatalf("retransmission without DF: %v", got)
	}
	if got := c.s.PMTUCache(); len(got) != 1 || !got[0].Locked || got[0].MTU != 552 {
		t.Fatalf("route cache %+v", got)
	}
	c.fragNeeded(200, pkt)
	if i := c.tp.Info(); i.PMTU != 552 {
		t.Fatalf("a locked path MTU moved to %d", i.PMTU)
	}
}

// net.ipv4.ip_no_pmtu_disc = 2 ignores fragmentation-needed altogether
// (icmp_unreach).
func TestPMTUNoPmtuDisc2Ignores(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/ip_no_pmtu_disc", "2")
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 1460)))
	c.fragNeeded(1200, c.takeRaw())
	if i := c.tp.Info(); i.SndMSS != 1460 || len(c.s.PMTUCache()) != 0 {
		t.Fatalf("mss %d cache %v with ip_no_pmtu_disc=2", i.SndMSS, c.s.PMTUCache())
	}
}

// A port unreachable during the handshake ends the attempt with
// ECONNREFUSED at once (tcp_v4_err -> tcp_done_with_error), where without
// it connect would retry the SYN for two minutes.
func TestICMPPortUnreachableFailsConnect(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	syn := c.synPacket()
	c.icmpFrom(header.ICMPv4DestUnreachable, header.ICMPv4PortUnreachable, 0, syn)
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v after a port unreachable in SYN-SENT", c.tp.State())
	}
	if err := c.tp.sk.SockError(); err != syscall.ECONNREFUSED {
		t.Fatalf("error %v, want ECONNREFUSED", err)
	}
	if c.s.mib.Get(memctl.TcpAttemptFails) != 1 {
		t.Fatal("TcpAttemptFails not counted")
	}
}

// After the handshake an ICMP error is soft: the connection goes on, and
// only if it then times out does it report the ICMP's error instead of
// ETIMEDOUT (tcp_write_err's sk_err_soft).
func TestICMPSoftErrorReportedOnTimeout(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_retries2", "1")
	c.tp.Send(context.Background(), []byte("lost"))
	pkt := c.takeRaw()
	c.icmpFrom(header.ICMPv4DestUnreachable, header.ICMPv4HostUnreachable, 0, pkt)
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v after a soft error", c.tp.State())
	}
	for i := 0; i < 1000 && c.tp.State() != TCPClose; i++ {
		c.clk.Advance(100 * time.Millisecond)
		c.sentSegments(true)
	}
	if err := c.tp.sk.SockError(); err != syscall.EHOSTUNREACH {
		t.Fatalf("timed out with %v, want EHOSTUNREACH", err)
	}
}

// synPacket rebuilds the SYN the stack sent in activeOpen as IP + TCP
// header bytes (enough for a quote: the ports and the sequence number).
func (c *script) synPacket() []byte {
	pkt := make([]byte, header.IPv4MinSize+header.TCPMinSize)
	header.IPv4(pkt).Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64, Protocol: header.IPv4ProtocolTCP,
		Src: scriptLocal, Dst: scriptRemote})
	header.TCP(pkt[header.IPv4MinSize:]).Encode(&header.TCPFields{SrcPort: c.lport, DstPort: c.rport, Seq: c.iss,
		Flags: fSyn, DataOffset: header.TCPMinSize})
	return pkt
}

// mtupScript is an established connection (MSS 1460 from the peer, no
// options) made with tcp_mtu_probing 2, whose cwnd has grown past 11 by a
// first acknowledged flight.
func mtupScript(t *testing.T) (*script, uint32) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_mtu_probing", "2")
	c.establishAfter()
	if mss := c.tp.Info().SndMSS; mss != 1024 {
		t.Fatalf("mss %d with tcp_mtu_probing 2, want tcp_base_mss 1024", mss)
	}
	first := 10 * 1024
	c.tp.Send(context.Background(), []byte(strings.Repeat("a", first)))
	for _, n := range c.sentSegments(true) {
		if n != 1024 {
			t.Fatalf("first flight segment of %d bytes, want 1024 (no probe below cwnd 11)", n)
		}
	}
	una := c.iss + 1 + uint32(first)
	c.send(seg{seq: c.peerIS + 1, ack: una, flags: fAck})
	c.sentSegments(true)
	if c.tp.Info().SndCwnd < 11 {
		t.Fatalf("cwnd %d", c.tp.Info().SndCwnd)
	}
	return c, una
}

// With tcp_mtu_probing 2 a connection starts at tcp_base_mss and probes
// upwards: the first probe is one segment of the MSS halfway between
// search_low (1064) and search_high (1500), 1242 bytes, and once it is
// acknowledged the MSS is 1242 (tcp_mtu_probe, tcp_mtup_probe_success).
func TestMTUProbeSuccessRaisesMSS(t *testing.T) {
	c, una := mtupScript(t)
	c.tp.Send(context.Background(), []byte(strings.Repeat("b", 16*1024)))
	segs := c.sentSegments(true)
	if len(segs) < 2 || segs[0] != 1242 || segs[1] != 1024 {
		t.Fatalf("segments %v, want a 1242-byte probe, then 1024s", segs)
	}
	c.send(seg{seq: c.peerIS + 1, ack: una + 1242, flags: fAck})
	if n := c.s.mib.Get(memctl.TcpExtTCPMTUPSuccess); n != 1 {
		t.Fatalf("TCPMTUPSuccess %d", n)
	}
	if mss := c.tp.Info().SndMSS; mss != 1242 {
		t.Fatalf("mss %d after the probe was acknowledged, want 1242", mss)
	}
}

// A probe lost (three duplicate ACKs at its start) lowers search_high below
// it and is sent again cut to the MSS, with no cwnd reduction and no fast
// recovery (tcp_mtup_probe_failed, tcp_simple_retransmit).
func TestMTUProbeLossLowersSearchHigh(t *testing.T) {
	c, una := mtupScript(t)
	c.tp.Send(context.Background(), []byte(strings.Repeat("b", 16*1024)))
	c.sentSegments(true)
	cwnd := c.tp.Info().SndCwnd
	for range 3 {
		c.send(seg{seq: c.peerIS + 1, ack: una, flags: fAck})
	}
	if n := c.s.mib.Get(memctl.TcpExtTCPMTUPFail); n != 1 {
		t.Fatalf("TCPMTUPFail %d", n)
	}
	if c.tp.mtup.searchHigh != 1281 || c.tp.mtup.probeSize != 0 {
		t.Fatalf("search_high %d probe %d, want 1281 0", c.tp.mtup.searchHigh, c.tp.mtup.probeSize)
	}
	if got := c.tp.Info().SndCwnd; got != cwnd+1 {
		t.Fatalf("cwnd %d, want %d (the probe's unit back, no reduction)", got, cwnd+1)
	}
	segs := c.sentSegments(true)
	if len(segs) < 2 || segs[0] != 1024 || segs[1] != 218 {
		t.Fatalf("retransmission %v, want the probe again as 1024 + 218", segs)
	}
	if c.s.mib.Get(memctl.TcpExtTCPRenoRecovery) != 0 {
		t.Fatal("entered fast recovery for a lost probe")
	}
}

// With tcp_mtu_probing 1 nothing changes until tcp_retries1 (3) RTOs
// suggest a black hole: then the MSS falls to tcp_base_mss, and each
// further RTO halves it (tcp_write_timeout -> tcp_mtu_probing), so the
// retransmissions get through a hole of any size. With 0 they stay
// full-size forever.
func TestMTUBlackHoleDetection(t *testing.T) {
	for _, tc := range []struct {
		probing string
		want    []int // sizes of the head segment's transmissions
	}{
		// The handshake gave no RTT sample, so the RTO starts at 1 s:
		// retransmissions at 1, 3, 7, 15, 31 s; at 7 s, 6 s have passed
		// since the first, beyond tcp_retries1's 3 s (15 * TCP_RTO_MIN).
		{"0", []int{1460, 1460, 1460, 1460, 1460, 1460}},
		{"1", []int{1460, 1460, 1460, 1024, 512, 256}},
	} {
		t.Run("tcp_mtu_probing="+tc.probing, func(t *testing.T) {
			c := newScript(t)
			setSysctl(t, c.s, "ipv4/tcp_mtu_probing", tc.probing)
			c.establishAfter()
			head := c.blackHoleHeads(len(tc.want))
			if fmt.Sprint(head) != fmt.Sprint(tc.want) {
				t.Fatalf("head segment sent as %v, want %v", head, tc.want)
			}
		})
	}
}

// blackHoleHeads runs a connection whose data is never acknowledged for
// up to 40 s and returns the sizes of the head segment's transmissions.
func (c *script) blackHoleHeads(n int) []int {
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 4*1460)))
	var head []int
	for i := 0; i < 400 && len(head) < n; i++ {
		for {
			c.dev.mu.Lock()
			k := len(c.dev.out)
			c.dev.mu.Unlock()
			if k == 0 {
				break
			}
			pkt := c.takeRaw()
			iph := header.IPv4(pkt)
			th := header.TCP(pkt[iph.HeaderLength():])
			if th.Seq() == c.iss+1 {
				head = append(head, int(iph.TotalLength())-iph.HeaderLength()-th.DataOffset())
			}
		}
		c.clk.Advance(100 * time.Millisecond)
	}
	return head
}

// Each knob of black-hole detection, by its effect on the head segment's
// retransmissions (RTOs at 1, 3, 7, 15 s; see TestMTUBlackHoleDetection):
// tcp_retries1 1 detects the hole one RTO earlier (1 s of RTO_MIN back-off
// passed at 3 s), tcp_base_mss sets the first size, and
// tcp_mtu_probe_floor stops the halving.
func TestMTUBlackHoleKnobs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		knobs map[string]string
		want  []int
	}{
		{"tcp_retries1=1", map[string]string{"tcp_retries1": "1"}, []int{1460, 1460, 1024, 512, 256}},
		{"tcp_base_mss=700", map[string]string{"tcp_base_mss": "700"}, []int{1460, 1460, 1460, 700, 350}},
		{"tcp_mtu_probe_floor=600", map[string]string{"tcp_mtu_probe_floor": "600"}, []int{1460, 1460, 1460, 1024, 600, 600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newScript(t)
			setSysctl(t, c.s, "ipv4/tcp_mtu_probing", "1")
			for k, v := range tc.knobs {
				setSysctl(t, c.s, "ipv4/"+k, v)
			}
			c.establishAfter()
			if got := c.blackHoleHeads(len(tc.want)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("head segment sent as %v, want %v", got, tc.want)
			}
		})
	}
}

// tcp_probe_threshold: a search range narrower than it is not probed, so
// with 500 (more than 1500 - 1064) a tcp_mtu_probing 2 connection stays at
// tcp_base_mss; tcp_probe_interval: once the search is over, it starts
// again (from the current MSS) only after that many seconds.
func TestMTUProbeThresholdAndInterval(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_mtu_probing", "2")
	setSysctl(t, c.s, "ipv4/tcp_probe_threshold", "500")
	setSysctl(t, c.s, "ipv4/tcp_probe_interval", "30")
	c.establishAfter()
	c.tp.Send(context.Background(), []byte(strings.Repeat("a", 10*1024)))
	c.sentSegments(true)
	una := c.iss + 1 + 10*1024
	c.send(seg{seq: c.peerIS + 1, ack: una, flags: fAck})
	c.sentSegments(true)
	c.tp.Send(context.Background(), []byte(strings.Repeat("b", 16*1024)))
	for _, n := range c.sentSegments(true) {
		if n != 1024 {
			t.Fatalf("a %d-byte segment: probed a range narrower than tcp_probe_threshold", n)
		}
	}
	if c.tp.mtup.searchLow != 1064 {
		t.Fatalf("search_low %d", c.tp.mtup.searchLow)
	}
	una += 16 * 1024
	c.send(seg{seq: c.peerIS + 1, ack: una, flags: fAck})
	c.sentSegments(true)
	// 31 s later a send looks again: the search restarts from the MSS in
	// use (search_low 1064) up to the peer's (search_high 1500).
	c.clk.Advance(31 * time.Second)
	c.sentSegments(true)
	c.tp.Send(context.Background(), []byte(strings.Repeat("c", 16*1024)))
	c.sentSegments(true)
	if m := c.tp.mtup; m.probeTimestamp < int64(31*time.Second) || m.searchHigh != 1500 {
		t.Fatalf("after tcp_probe_interval: probe_timestamp %d search_high %d", m.probeTimestamp, m.searchHigh)
	}
}

// ip_no_pmtu_disc 1 keeps fragmentation-needed but ignores its MTU field
// (info 0): the path MTU falls to route/min_pmtu and locks; route/min_pmtu
// itself sets that floor.
func TestPMTUNoPmtuDisc1AndMinPmtu(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/ip_no_pmtu_disc", "1")
	setSysctl(t, c.s, "ipv4/route/min_pmtu", "900")
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 1460)))
	c.fragNeeded(1200, c.takeRaw())
	if i := c.tp.Info(); i.PMTU != 900 || i.SndMSS != 860 {
		t.Fatalf("pmtu %d mss %d, want 900 860 (the MTU field ignored, min_pmtu used)", i.PMTU, i.SndMSS)
	}
	if got := c.s.PMTUCache(); len(got) != 1 || !got[0].Locked {
		t.Fatalf("route cache %+v, want a locked entry", got)
	}
}

// A fragmentation-needed for a socket a user owns waits for release_sock
// (TCP_MTU_REDUCED_DEFERRED), which checks the quoted sequence then; other
// errors meanwhile are dropped and counted (LockDroppedIcmps).
func TestPMTUDeferredWhileOwned(t *testing.T) {
	c := newEstablished(t)
	c.tp.Send(context.Background(), []byte(strings.Repeat("x", 1460)))
	pkt := c.takeRaw()
	c.tp.lockSock()
	c.fragNeeded(1200, pkt)
	c.icmpFrom(header.ICMPv4DestUnreachable, header.ICMPv4HostUnreachable, 0, pkt)
	if mss := c.tp.mssCache; mss != 1460 {
		c.tp.releaseSock()
		t.Fatalf("mss %d while owned", mss)
	}
	c.tp.releaseSock()
	if i := c.tp.Info(); i.SndMSS != 1160 || i.PMTU != 1200 {
		t.Fatalf("after release_sock: mss %d pmtu %d, want 1160 1200", i.SndMSS, i.PMTU)
	}
	if n := c.s.mib.Get(memctl.TcpExtLockDroppedIcmps); n != 1 {
		t.Fatalf("LockDroppedIcmps %d, want 1", n)
	}
}

// With Plan 9's ignoreadvice (SetIgnoreAdvice) a port unreachable during
// the handshake neither ends the attempt nor leaves an error: the SYN is
// retried, as TestICMPPortUnreachableFailsConnect's socket would not be.
func TestICMPIgnoreAdviceKeepsConnect(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.tp.SetIgnoreAdvice()
	syn := c.synPacket()
	c.icmpFrom(header.ICMPv4DestUnreachable, header.ICMPv4PortUnreachable, 0, syn)
	if st := c.tp.State(); st != TCPSynSent {
		t.Fatalf("state %v after a port unreachable with ignoreadvice, want SYN-SENT", st)
	}
	if err := c.tp.sk.SockError(); err != 0 {
		t.Fatalf("error %v left by ignored advice", err)
	}
}
