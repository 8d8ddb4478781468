package netstack

import (
	"context"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/netstack/impair"
)

// Each test here shows a sysctl's effect on what the stack does; without
// the sysctl read where Linux reads it, the test fails.

func setSysctl(t *testing.T, s *Stack, name, val string) {
	t.Helper()
	c, ok := s.net.Sysctls.Lookup(name)
	if !ok {
		t.Fatalf("no sysctl %s", name)
	}
	if err := c.Write(val); err != nil {
		t.Fatalf("%s <- %s: %v", name, val, err)
	}
}

// untilRetransmit runs the clock until the first retransmission.
func (c *script) untilRetransmit() {
	for c.s.mib.Get(memctl.TcpRetransSegs) == 0 {
		c.clk.Advance(10 * time.Millisecond)
	}
}

// expectKeepaliveDeath expects a keepalive probe after 10 s and the end of
// the connection 2 s later (idle 10 s, interval 2 s, one probe).
func (c *script) expectKeepaliveDeath() {
	c.t.Helper()
	c.clk.Advance(10 * time.Second)
	c.expect(seg{seq: c.iss, ack: 1001, flags: fAck})
	aborts := c.s.mib.Get(memctl.TcpExtTCPAbortOnTimeout)
	c.clk.Advance(2 * time.Second)
	if c.tp.State() != TCPClose {
		c.t.Fatalf("state %v after one unanswered probe", c.tp.State())
	}
	// tcp_keepalive_timer resets the peer and tcp_write_err counts it.
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fRst | fAck})
	if d := c.s.mib.Get(memctl.TcpExtTCPAbortOnTimeout) - aborts; d != 1 {
		c.t.Fatalf("TCPAbortOnTimeout +%d, want +1", d)
	}
}

// peekTTL is the TTL of the next transmitted packet.
func (c *script) peekTTL() uint8 {
	c.dev.mu.Lock()
	defer c.dev.mu.Unlock()
	if len(c.dev.out) == 0 {
		c.t.Fatal("nothing sent")
	}
	var h [20]byte
	c.dev.out[0].CopyBits(0, h[:])
	return header.IPv4(h[:]).TTL()
}

// tcp_sack, tcp_timestamps, tcp_window_scaling at 0: the SYN offers none
// of the options and a SYN-ACK accepts none of the peer's.
func TestSysctlSynOptionsOff(t *testing.T) {
	c := newScript(t)
	for _, n := range []string{"tcp_sack", "tcp_timestamps", "tcp_window_scaling"} {
		setSysctl(t, c.s, "ipv4/"+n, "0")
	}
	if _, o := c.activeOpen(); o.HasWS || o.SACKPermitted || o.HasTimestamp || !o.HasMSS {
		t.Fatalf("SYN options %+v, want MSS only", o)
	}
	c.tp.Abort()
	c.take()
	c2 := newScript(t)
	setSysctl(t, c2.s, "ipv4/tcp_sack", "0")
	setSysctl(t, c2.s, "ipv4/tcp_timestamps", "0")
	setSysctl(t, c2.s, "ipv4/tcp_window_scaling", "0")
	c2.listen(8)
	opts := make([]byte, 20)
	n := header.EncodeSynOptions(opts, 1460, 7, true, true, 12345, 0)
	c2.send(seg{seq: 1000, flags: fSyn, opts: opts[:n]})
	if _, o, _ := c2.take(); o.HasWS || o.SACKPermitted || o.HasTimestamp {
		t.Fatalf("SYN-ACK options %+v, want MSS only", o)
	}
}

// tcp_timestamps 2: timestamps without the per-connection random offset,
// so TSval is the clock in ms.
func TestSysctlTimestampsNoOffset(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_timestamps", "2")
	c.clk.Advance(5 * time.Second)
	if _, o := c.activeOpen(); !o.HasTimestamp || o.TSVal != 5000 {
		t.Fatalf("SYN TSval %d (timestamp %v), want 5000", o.TSVal, o.HasTimestamp)
	}
}

// tcp_syn_retries 2: connect gives up with ETIMEDOUT 7 s after the SYN
// (tcp_write_timeout's model time for two backed-off retransmissions). With
// tcp_syn_linear_timeouts 4 (Linux's default since 6.5) the SYN is resent
// every second five times first; with 0 twice, after 1 and 3 s. The live
// kernel (6.18, a namespace whose route leads nowhere) gave the same: 5
// and 2 RetransSegs, ETIMEDOUT after 7.1 s both times.
func TestSysctlSynRetries(t *testing.T) {
	for _, tc := range []struct {
		linear string
		at     []time.Duration // when the SYN goes again
	}{
		{"4", []time.Duration{1, 2, 3, 4, 5}},
		{"0", []time.Duration{1, 3}},
	} {
		c := newScript(t)
		setSysctl(t, c.s, "ipv4/tcp_syn_retries", "2")
		setSysctl(t, c.s, "ipv4/tcp_syn_linear_timeouts", tc.linear)
		c.clk.Advance(time.Second) // off the simulated clock's 0, which stamps read as "none"
		c.activeOpen()
		now := time.Duration(0)
		for _, at := range tc.at {
			c.clk.Advance(at*time.Second - now - time.Millisecond)
			c.expectNone()
			c.clk.Advance(time.Millisecond)
			c.expect(seg{seq: c.iss, flags: fSyn})
			now = at * time.Second
		}
		c.clk.Advance(7*time.Second - now - time.Millisecond)
		c.expectNone()
		if c.tp.State() != TCPSynSent {
			t.Fatalf("linear %s: state %v just before 7 s", tc.linear, c.tp.State())
		}
		c.clk.Advance(time.Millisecond)
		c.expectNone()
		if c.tp.State() != TCPClose || c.tp.sk.SockError() != syscall.ETIMEDOUT {
			t.Fatalf("linear %s: state %v err %v at 7 s, want CLOSE with ETIMEDOUT", tc.linear, c.tp.State(), c.tp.sk.SockError())
		}
	}
}

// tcp_synack_retries 1: one SYN-ACK retransmission, then the request goes.
func TestSysctlSynackRetries(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_synack_retries", "1")
	iss := c.synRecv()
	c.clk.Advance(tcpTimeoutInit)
	c.expect(seg{seq: iss, ack: c.peerIS + 1, flags: fSyn | fAck})
	c.clk.Advance(tcpTimeoutInit << 1)
	c.expectNone()
	c.send(seg{seq: c.peerIS + 1, ack: iss + 1, flags: fAck})
	c.expect(seg{seq: iss + 1, flags: fRst}) // the request is gone
}

// tcp_retries2 3: an established connection gives up 15 * 200 ms after
// its first retransmission (tcp_model_timeout), not after 924.6 s.
func TestSysctlRetries2(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_retries2", "3")
	c.tp.Send(context.Background(), []byte("lost"))
	c.take()
	c.untilRetransmit()
	c.clk.Advance(3*time.Second - 20*time.Millisecond)
	if c.tp.State() == TCPClose {
		t.Fatal("gave up before 3 s")
	}
	c.clk.Advance(10 * time.Second)
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v 13 s after the first retransmission", c.tp.State())
	}
}

// tcp_fin_timeout 5: an orphan in FIN_WAIT2 is gone after 5 s.
func TestSysctlFinTimeout(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_fin_timeout", "5")
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.clk.Advance(5 * time.Second)
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v 5 s into FIN_WAIT2", st)
	}
}

// The keepalive sysctls apply to a socket that set none of its own, read
// when the timer runs.
func TestSysctlKeepalive(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_keepalive_time", "10")
	setSysctl(t, c.s, "ipv4/tcp_keepalive_intvl", "2")
	setSysctl(t, c.s, "ipv4/tcp_keepalive_probes", "1")
	c.tp.SetKeepAlive(true, 0, 0, 0)
	c.expectKeepaliveDeath()
}

// somaxconn 1 caps listen(8): the third SYN finds the accept queue full.
func TestSysctlSomaxconn(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "core/somaxconn", "1")
	c.listen(8)
	for i := uint32(0); i < 3; i++ {
		c.rport = uint16(5000 + i)
		c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
		if sa, _, ok := c.take(); ok {
			c.send(seg{seq: 1001, ack: sa.seq + 1, flags: fAck})
		}
	}
	if got := c.s.mib.Get(memctl.TcpExtListenOverflows); got == 0 {
		t.Fatal("no ListenOverflows with somaxconn 1")
	}
}

// tcp_syncookies 2 answers every SYN with a cookie; 0 drops SYNs when the
// SYN queue is full.
func TestSysctlSyncookies(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_syncookies", "2")
	c.listen(8)
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	if sa, _, _ := c.take(); sa.flags != fSyn|fAck || c.s.mib.Get(memctl.TcpExtSyncookiesSent) != 1 {
		t.Fatal("no cookie with tcp_syncookies 2")
	}
	c2 := newScript(t)
	setSysctl(t, c2.s, "ipv4/tcp_syncookies", "0")
	c2.listen(1)
	for i := 0; i < 2; i++ {
		c2.rport = uint16(5000 + i)
		c2.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	}
	if sa, _, _ := c2.take(); sa.flags != fSyn|fAck {
		t.Fatalf("no SYN-ACK: %v", sa)
	}
	c2.expectNone()
	if c2.s.mib.Get(memctl.TcpExtTCPReqQFullDrop) != 1 || c2.s.mib.Get(memctl.TcpExtSyncookiesSent) != 0 {
		t.Fatal("with tcp_syncookies 0 a full SYN queue must drop (TCPReqQFullDrop)")
	}
}

// tcp_abort_on_overflow 1: the handshake's ACK that finds the accept
// queue full (more than backlog+1 waiting) is answered with a RST.
func TestSysctlAbortOnOverflow(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_abort_on_overflow", "1")
	c.listen(2)
	isn := map[uint16]uint32{}
	syn := func(port uint16) {
		c.rport = port
		c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
		sa, _, _ := c.take()
		isn[port] = sa.seq
	}
	ack := func(port uint16) {
		c.rport = port
		c.send(seg{seq: 1001, ack: isn[port] + 1, flags: fAck})
	}
	syn(1)
	syn(2)
	ack(1)
	syn(3)
	ack(2)
	syn(4)
	ack(3)
	c.expectNone()
	ack(4) // the accept queue holds 3 > backlog 2
	c.expect(seg{seq: isn[4] + 1, flags: fRst})
	if c.s.mib.Get(memctl.TcpExtEmbryonicRsts) != 1 || c.s.mib.Get(memctl.TcpExtListenOverflows) != 1 {
		t.Fatal("EmbryonicRsts, ListenOverflows")
	}
}

// ip_default_ttl is the TTL of what sockets without IP_TTL send.
func TestSysctlIPDefaultTTL(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/ip_default_ttl", "33")
	c.lport, c.rport = 5000, 80
	tp := c.s.NewTCP()
	tp.SetNonblock(true)
	tp.Connect(context.Background(), netip.AddrPortFrom(scriptRemote, 80))
	if ttl := c.peekTTL(); ttl != 33 {
		t.Fatalf("TTL %d, want 33", ttl)
	}
	tp.Abort()
}

// ip_local_port_range bounds the ephemeral ports.
func TestSysctlLocalPortRange(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/ip_local_port_range", "40000 40000")
	u := c.s.NewUDP()
	defer u.Close()
	if err := u.Bind(netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if p := u.LocalAddr().Port(); p != 40000 {
		t.Fatalf("ephemeral port %d, want 40000", p)
	}
	u2 := c.s.NewUDP()
	defer u2.Close()
	if err := u2.Bind(netip.AddrPort{}); err != syscall.EADDRINUSE {
		t.Fatalf("second bind in a one-port range: %v", err)
	}
}

// tcp_rfc1337 1: a RST does not end TIME_WAIT.
func TestSysctlRfc1337(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_rfc1337", "1")
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	c.send(seg{seq: 1002, flags: fRst})
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v after a RST, want TIME_WAIT", st)
	}
}

// tcp_max_tw_buckets 0: no TIME_WAIT at all (TCPTimeWaitOverflow); and
// sockstat counts TIME_WAIT sockets as tw, not as orphans.
func TestSysctlMaxTwBucketsAndSockstat(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if ss := c.s.net.Sockstat(memctl.SockstatInfo{}); !strings.Contains(ss, "orphan 0 tw 1 ") {
		t.Fatalf("sockstat with one orphan in TIME_WAIT:\n%s", ss)
	}
	c2 := newEstablished(t)
	setSysctl(t, c2.s, "ipv4/tcp_max_tw_buckets", "0")
	c2.closeActive()
	c2.send(seg{seq: 1001, ack: c2.iss + 2, flags: fAck | fFin})
	if st := c2.tp.state; st != TCPClose || c2.s.mib.Get(memctl.TcpExtTCPTimeWaitOverflow) != 1 {
		t.Fatalf("state %v, TCPTimeWaitOverflow %d", st, c2.s.mib.Get(memctl.TcpExtTCPTimeWaitOverflow))
	}
}

// tcp_min_snd_mss: a peer's MSS of 20 is raised to 48.
func TestSysctlMinSndMss(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_min_snd_mss", "64")
	c.listen(8)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(20)})
	sa, _, _ := c.take()
	c.iss = sa.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, win: 65535, flags: fAck})
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tp.SetNoDelay(true)
	tp.Send(context.Background(), make([]byte, 100))
	if got, _, _ := c.take(); len(got.payload) != 64 {
		t.Fatalf("first segment %d bytes, want 64 (tcp_min_snd_mss)", len(got.payload))
	}
	tp.Abort()
}

// tcp_rto_min_us and tcp_congestion_control and tcp_reordering are copied
// into a socket when it is made.
func TestSysctlNewSocketDefaults(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_rto_min_us", "1000000")
	setSysctl(t, c.s, "ipv4/tcp_congestion_control", "reno")
	setSysctl(t, c.s, "ipv4/tcp_reordering", "10")
	c.activeOpen()
	c.send(seg{seq: 3000, ack: c.iss + 1, flags: fSyn | fAck, opts: mssOpt(1460)})
	c.take()
	if i := c.tp.Info(); i.Congestion != "reno" || i.Reordering != 10 || i.RTO < time.Second {
		t.Fatalf("congestion %s reordering %d rto %v", i.Congestion, i.Reordering, i.RTO)
	}
	c.tp.Send(context.Background(), []byte("x"))
	c.take()
	c.clk.Advance(999 * time.Millisecond)
	c.expectNone() // no RTO below tcp_rto_min_us
	c.tp.Abort()
}

// tcp_invalid_ratelimit 0: every out-of-window segment gets its dupack.
func TestSysctlInvalidRatelimit(t *testing.T) {
	for _, lim := range []string{"500", "0"} {
		c := newEstablished(t)
		setSysctl(t, c.s, "ipv4/tcp_invalid_ratelimit", lim)
		c.clk.Advance(time.Second)
		for i := 0; i < 2; i++ {
			c.send(seg{seq: 1001 + 1<<20, ack: c.iss + 1, flags: fAck})
		}
		n := 0
		for _, _, ok := c.take(); ok; _, _, ok = c.take() {
			n++
		}
		if want := map[string]int{"500": 1, "0": 2}[lim]; n != want {
			t.Fatalf("tcp_invalid_ratelimit %s: %d dupacks, want %d", lim, n, want)
		}
	}
}

// icmp_echo_ignore_all: echo requests go unanswered.
func TestSysctlICMPEchoIgnoreAll(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 12)
	setSysctl(t, n.b, "ipv4/icmp_echo_ignore_all", "1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.a.Ping(ctx, addrB, 1, []byte("x")) }()
	for n.b.mib.Get(memctl.IcmpInEchos) == 0 {
		n.clk.Advance(time.Millisecond)
		time.Sleep(time.Millisecond) // let the pinger send
	}
	n.clk.Advance(time.Second)
	cancel()
	<-done
	if n.b.mib.Get(memctl.IcmpOutEchoReps) != 0 {
		t.Fatal("echo answered with icmp_echo_ignore_all 1")
	}
}

// A connection in TIME_WAIT is a timewait sock, not a socket: it leaves
// sockstat's inuse (sock_prot_inuse) at once and sockets_allocated (alloc,
// which memory pressure's fair share divides by) when its full socket
// goes: at once for an orphan, at the user's close otherwise. Before,
// sockets_allocated kept every TIME_WAIT socket for its 60 s (an outside
// probe saw `tw 302 alloc 302` after 300 short connections).
func TestTimeWaitLeavesInuseAndAllocated(t *testing.T) {
	counts := func(c *script) (inuse, alloc int64) {
		return c.s.net.TCP.Inuse(), c.s.net.TCP.SocketsAllocated()
	}
	// An orphan: closed by the user, then the peer's FIN.
	c := newEstablished(t)
	in0, al0 := counts(c) // the listener and the connection
	if in0 != 2 || al0 != 2 {
		t.Fatalf("inuse %d alloc %d with a listener and a connection, want 2 and 2", in0, al0)
	}
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if in, al := counts(c); c.tp.state != TCPTimeWait || in != 1 || al != 1 {
		t.Fatalf("orphan in %v: inuse %d alloc %d, want TIME_WAIT, 1 and 1", c.tp.state, in, al)
	}
	// A socket the user still holds: shut down for writing, then the
	// peer's FIN; its full socket stays allocated until the user closes it.
	c2 := newEstablished(t)
	if err := c2.tp.Shutdown(ShutWr); err != nil {
		t.Fatal(err)
	}
	c2.expect(seg{seq: c2.iss + 1, ack: 1001, flags: fAck | fFin})
	c2.send(seg{seq: 1001, ack: c2.iss + 2, flags: fAck | fFin})
	c2.expect(seg{seq: c2.iss + 2, ack: 1002, flags: fAck})
	if in, al := counts(c2); c2.tp.state != TCPTimeWait || in != 1 || al != 2 {
		t.Fatalf("held socket in %v: inuse %d alloc %d, want TIME_WAIT, 1 and 2", c2.tp.state, in, al)
	}
	c2.tp.Close()
	if in, al := counts(c2); in != 1 || al != 1 {
		t.Fatalf("after the user's close in TIME_WAIT: inuse %d alloc %d, want 1 and 1", in, al)
	}
	if tw := c2.s.net.TCP.TwCount(); tw != 1 {
		t.Fatalf("tw %d, want 1", tw)
	}
}

// With TCP_USER_TIMEOUT set, keepalive gives up when the connection has
// been idle that long and a probe went unanswered, whatever TCP_KEEPCNT
// says (tcp_keepalive_timer): idle 1 s, interval 1 s, 9 probes allowed,
// user timeout 2.5 s: probes at 1 and 2 s, the reset at 3 s. It sent all
// 9 probes and gave up at 10 s.
func TestKeepaliveUserTimeout(t *testing.T) {
	c := newEstablished(t)
	c.tp.SetKeepAlive(true, time.Second, time.Second, 9)
	if err := c.tp.SetUserTimeout(2500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c.clk.Advance(time.Second)
		c.expect(seg{seq: c.iss, ack: 1001, flags: fAck})
	}
	c.clk.Advance(time.Second)
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v at 3 s, want Close", c.tp.State())
	}
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fRst | fAck})
	if err := c.tp.sk.SockError(); err != syscall.ETIMEDOUT {
		t.Fatalf("error %v, want ETIMEDOUT", err)
	}
}

// TCP_USER_TIMEOUT 2 s with the peer gone and RTOs of 200 ms doubling:
// the first retransmission at 0.2 s, then 0.6, 1.4; the next would come
// at 3.0 s; it is cut to what the user timeout leaves since
// the first retransmission (tcp_clamp_rto_to_user_timeout), so the
// connection gives up 2 s after that retransmission, not at the next full
// RTO (which a probe saw: 3.2 s against the kernel's 2.4).
func TestUserTimeoutClampsTheRTO(t *testing.T) {
	c := newEstablished(t)
	if err := c.tp.SetUserTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	// An RTT sample first (1 ms), so that the RTO is tcp_rto_min's 200 ms
	// (the clock moves first: a send stamped 0 has no timestamp).
	c.clk.Advance(time.Millisecond)
	if _, err := c.tp.Send(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "a"})
	c.clk.Advance(time.Millisecond)
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	if _, err := c.tp.Send(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	c.expect(seg{seq: c.iss + 2, ack: 1001, flags: fAck | fPsh, payload: "x"})
	start := c.clk.Nanotime()
	var first int64
	for c.tp.State() != TCPClose && time.Duration(c.clk.Nanotime()-start) < 10*time.Second {
		c.clk.Advance(10 * time.Millisecond)
		for {
			g, _, ok := c.take()
			if !ok {
				break
			}
			if g.flags&fRst == 0 && first == 0 {
				first = c.clk.Nanotime()
			}
		}
	}
	if c.tp.State() != TCPClose || first == 0 {
		t.Fatalf("state %v, first retransmission at %v", c.tp.State(), time.Duration(first-start))
	}
	if gaveUp := time.Duration(c.clk.Nanotime() - first); gaveUp < 2*time.Second || gaveUp > 2*time.Second+50*time.Millisecond {
		t.Fatalf("gave up %v after the first retransmission, want 2 s", gaveUp)
	}
}

// TestKeepaliveIntvlZero: tcp_keepalive_intvl 0 re-arms the keepalive
// timer for the next tick, not for now, as sk_reset_timer(jiffies + 0)
// does, so each probe's ACK, back 50 µs later, keeps the connection: one
// probe a keepalive_time, as the live kernel sent with the same settings.
// The timer fired again at once and sent all nine probes before the ACK,
// then reset the connection.
func TestKeepaliveIntvlZero(t *testing.T) {
	c := newEstablished(t)
	setSysctl(t, c.s, "ipv4/tcp_keepalive_time", "1")
	setSysctl(t, c.s, "ipv4/tcp_keepalive_intvl", "0")
	c.tp.SetKeepAlive(true, 0, 0, 0)
	probes := 0
	for ms := 0; ms < 3500; ms++ {
		c.clk.Advance(time.Millisecond)
		p, _, ok := c.take()
		if !ok {
			continue
		}
		if p.seq != c.iss || p.flags != fAck {
			t.Fatalf("at %d ms: %v, want a keepalive probe", ms, p)
		}
		probes++
		c.clk.Advance(50 * time.Microsecond)
		c.expectNone()
		c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck}) // its answer
	}
	if probes != 3 || c.tp.State() != TCPEstablished {
		t.Fatalf("%d probes in 3.5 s, state %v; want 3 and ESTABLISHED", probes, c.tp.State())
	}
}
