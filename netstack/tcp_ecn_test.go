package netstack

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

const (
	fEce = header.TCPFlagEce
	fCwr = header.TCPFlagCwr

	tosNotECT = header.ECNNotECT
	tosECT0   = header.ECNECT0
	tosCE     = header.ECNCE
)

// ecnEstablished is an established passive connection whose peer's SYN
// carried synFlags (fEce|fCwr asks for ECN) with MSS 1460 and SACK, with
// the stack's tcp_ecn at its default (2: accept). It returns the SYN-ACK.
func ecnEstablished(t *testing.T, synFlags header.TCPFlags) (*script, seg) {
	t.Helper()
	return ecnEstablishedCC(t, "", synFlags, tosNotECT)
}

// ecnEstablishedCC is ecnEstablished with the stack's default congestion
// control set to cc (if not empty) and the peer's SYN and ACK sent with
// the TOS byte tos.
func ecnEstablishedCC(t *testing.T, cc string, synFlags header.TCPFlags, tos uint8) (*script, seg) {
	t.Helper()
	c := newScript(t)
	if cc != "" {
		setSysctl(t, c.s, "ipv4/tcp_congestion_control", cc)
	}
	c.listen(8)
	opts := make([]byte, 20)
	k := header.EncodeSynOptions(opts, 1460, -1, true, false, 0, 0)
	c.send(seg{seq: c.peerIS, flags: fSyn | synFlags, opts: opts[:k], tos: tos})
	sa, _, ok := c.take()
	if !ok {
		t.Fatal("no SYN-ACK")
	}
	c.iss = sa.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck, tos: tos})
	c.acceptNoDelay()
	return c, sa
}

// tcp_ecn on an active open: 1 asks with ECE|CWR on the SYN (never ECT)
// and takes ECN if the SYN-ACK has ECE without CWR; 0 and 2 do not ask, so
// an ECE in the SYN-ACK is ignored.
func TestSynSentECN(t *testing.T) {
	for _, tc := range []struct {
		sysctl   string
		synack   header.TCPFlags
		wantSyn  header.TCPFlags
		wantECN  bool
		describe string
	}{
		{"0", fEce, fSyn, false, "off"},
		{"1", fEce, fSyn | fEce | fCwr, true, "requested and accepted"},
		{"1", 0, fSyn | fEce | fCwr, false, "requested, peer declines"},
		{"1", fEce | fCwr, fSyn | fEce | fCwr, false, "requested, SYN-ACK with ECE|CWR (a reflector) turns it off"},
		{"2", fEce, fSyn, false, "accept only: not asked"},
	} {
		t.Run(tc.sysctl+" "+tc.describe, func(t *testing.T) {
			c := newScript(t)
			setSysctl(t, c.s, "ipv4/tcp_ecn", tc.sysctl)
			c.lport, c.rport = 5000, 80
			tp := c.s.NewTCP()
			tp.SetNonblock(true)
			if err := tp.Connect(context.Background(), c.remoteAddr()); err != syscall.EINPROGRESS {
				t.Fatal(err)
			}
			c.tp = tp
			syn, _, _ := c.take()
			if syn.flags != tc.wantSyn || syn.tos != tosNotECT {
				t.Fatalf("SYN %v tos %d, want flags %v Not-ECT", syn, syn.tos, tc.wantSyn)
			}
			c.lport = tp.LocalAddr().Port()
			c.iss = syn.seq
			c.send(seg{seq: 3000, ack: c.iss + 1, flags: fSyn | fAck | tc.synack, opts: mssOpt(1460)})
			ack, _ := c.expect(seg{seq: c.iss + 1, ack: 3001, flags: fAck})
			if ack.tos != tosNotECT {
				t.Fatalf("handshake ACK tos %d", ack.tos)
			}
			if got := tp.Info().ECN; got != tc.wantECN {
				t.Fatalf("ecn %v, want %v", got, tc.wantECN)
			}
			if _, err := tp.Send(context.Background(), []byte("x")); err != nil {
				t.Fatal(err)
			}
			d, _, _ := c.take()
			if want := map[bool]uint8{true: tosECT0, false: tosNotECT}[tc.wantECN]; d.tos != want {
				t.Fatalf("first data tos %d, want %d", d.tos, want)
			}
		})
	}
}

// remoteAddr is the peer's address as the stack dials it.
func (c *script) remoteAddr() netip.AddrPort { return netip.AddrPortFrom(scriptRemote, c.rport) }

// tcp_ecn on a listener: ECE on the SYN-ACK when the SYN asked (ECE|CWR)
// and tcp_ecn is 1 or 2, never when the SYN itself was ECT (RFC 3168
// 6.1.1); the accepted socket has ECN exactly then.
func TestListenSynECN(t *testing.T) {
	for _, tc := range []struct {
		sysctl  string
		syn     header.TCPFlags
		synTOS  uint8
		wantECN bool
	}{
		{"0", fEce | fCwr, 0, false},
		{"1", fEce | fCwr, 0, true},
		{"2", fEce | fCwr, 0, true},
		{"2", fEce, 0, false},
		{"2", 0, 0, false},
		{"2", fEce | fCwr, tosECT0, false},
	} {
		c := newScript(t)
		setSysctl(t, c.s, "ipv4/tcp_ecn", tc.sysctl)
		c.listen(8)
		c.send(seg{seq: c.peerIS, flags: fSyn | tc.syn, tos: tc.synTOS, opts: mssOpt(1460)})
		sa, _, _ := c.take()
		want := fSyn | fAck
		if tc.wantECN {
			want |= fEce
		}
		if sa.flags != want || sa.tos != tosNotECT {
			t.Fatalf("tcp_ecn %s, SYN %v tos %d: SYN-ACK %v tos %d, want %v Not-ECT", tc.sysctl, tc.syn, tc.synTOS, sa.flags, sa.tos, want)
		}
		c.send(seg{seq: c.peerIS + 1, ack: sa.seq + 1, flags: fAck})
		tp, err := c.l.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tp.Info().ECN != tc.wantECN {
			t.Fatalf("tcp_ecn %s, SYN %v: accepted socket ecn %v", tc.sysctl, tc.syn, !tc.wantECN)
		}
	}
}

// tcp_ecn takes 0, 1 and 2 only; anything else is EINVAL and changes
// nothing. tcp_ecn_fallback 1 takes ECE|CWR off a retransmitted SYN, 0
// keeps them.
func TestSynSentECNRetransmitFallback(t *testing.T) {
	for _, fallback := range []string{"1", "0"} {
		c := newScript(t)
		setSysctl(t, c.s, "ipv4/tcp_ecn", "1")
		sc, _ := c.s.net.Sysctls.Lookup("ipv4/tcp_ecn")
		for _, bad := range []string{"3", "-1", "x", "256"} {
			if err := sc.Write(bad); !errors.Is(err, syscall.EINVAL) || sc.Read() != "1\n" {
				t.Fatalf("tcp_ecn write %q: %v, now %q", bad, err, sc.Read())
			}
		}
		setSysctl(t, c.s, "ipv4/tcp_ecn_fallback", fallback)
		syn, _ := c.activeOpenFlags(fSyn | fEce | fCwr)
		c.clk.Advance(time.Second)
		re, _, ok := c.take()
		want := fSyn
		if fallback == "0" {
			want |= fEce | fCwr
		}
		if !ok || re.seq != syn.seq || re.flags != want {
			t.Fatalf("tcp_ecn_fallback %s: retransmitted SYN %v, want flags %v", fallback, re, want)
		}
	}
}

// activeOpenFlags is activeOpen for a SYN with the given flags.
func (c *script) activeOpenFlags(want header.TCPFlags) (seg, header.TCPOptions) {
	c.t.Helper()
	c.lport, c.rport = 5000, 80
	tp := c.s.NewTCP()
	tp.SetNonblock(true)
	if err := tp.Connect(context.Background(), c.remoteAddr()); err != syscall.EINPROGRESS {
		c.t.Fatal(err)
	}
	c.tp = tp
	c.lport = tp.LocalAddr().Port()
	got, o, ok := c.take()
	if !ok || got.flags != want {
		c.t.Fatalf("SYN %v, want flags %v", got, want)
	}
	c.iss = got.seq
	return got, o
}

// ESTABLISHED with ECN: new data goes ECT(0); pure ACKs and
// retransmissions go Not-ECT (tcp_ecn_send).
func TestEstablishedECNCodepoints(t *testing.T) {
	c, sa := ecnEstablished(t, fEce|fCwr)
	if sa.flags != fSyn|fAck|fEce {
		t.Fatalf("SYN-ACK %v", sa)
	}
	c.sendData("a")
	d, _ := c.expect(seg{seq: c.iss + 1, ack: c.peerIS + 1, flags: fAck | fPsh, payload: "a"})
	if d.tos != tosECT0 {
		t.Fatalf("data tos %d, want ECT(0)", d.tos)
	}
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck | fPsh, payload: "p", tos: tosECT0})
	a, _ := c.expect(seg{seq: c.iss + 2, ack: c.peerIS + 2, flags: fAck})
	if a.tos != tosNotECT {
		t.Fatalf("pure ACK tos %d, want Not-ECT", a.tos)
	}
	c.clk.Advance(time.Second) // RTO
	r, _ := c.expect(seg{seq: c.iss + 1, ack: c.peerIS + 2, flags: fAck | fPsh, payload: "a"})
	if r.tos != tosNotECT {
		t.Fatalf("retransmission tos %d, want Not-ECT", r.tos)
	}
	if i := c.tp.Info(); !i.ECN || !i.ECNSeen {
		t.Fatalf("info ecn %v ecnseen %v", i.ECN, i.ECNSeen)
	}
}

// ESTABLISHED with ECN, receiving: a CE mark is echoed with ECE on every
// ACK, at once, until the peer's CWR; without ECN the mark is ignored.
func TestEstablishedCEEcho(t *testing.T) {
	c, _ := ecnEstablished(t, fEce|fCwr)
	seq := c.peerIS + 1
	data := func(flags header.TCPFlags, tos uint8, wantAck header.TCPFlags) {
		t.Helper()
		c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck | flags, payload: "d", tos: tos})
		seq++
		c.expect(seg{seq: c.iss + 1, ack: seq, flags: wantAck})
	}
	data(0, tosECT0, fAck)
	data(0, tosCE, fAck|fEce)                                 // CE: echoed
	data(0, tosECT0, fAck|fEce)                               // still echoed, no CWR yet
	data(fCwr, tosECT0, fAck)                                 // CWR: the echo stops
	data(0, tosECT0, fAck)                                    // and stays off
	data(0, tosCE, fAck|fEce)                                 // a new mark starts it again
	c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck | fCwr}) // CWR on a pure ACK counts too
	c.expectNone()
	data(0, tosECT0, fAck)

	n, _ := ecnEstablished(t, 0) // no ECN negotiated
	n.send(seg{seq: n.peerIS + 1, ack: n.iss + 1, flags: fAck, payload: "d", tos: tosCE})
	n.expect(seg{seq: n.iss + 1, ack: n.peerIS + 2, flags: fAck})
	if n.tp.Info().ECNSeen {
		t.Fatal("ecnseen without ECN")
	}
}

// ESTABLISHED with ECN, sending: an ECE enters CWR (ssthresh from the
// congestion control, CUBIC's 0.7 here, cwnd brought down by PRR), the
// next new data carries CWR, further ECEs in the same window do nothing,
// and once data past high_seq is acked the state is Open with cwnd at
// ssthresh. No loss, no retransmission, no undo.
func TestEstablishedECEEntersCWR(t *testing.T) {
	c, _ := ecnEstablished(t, fEce|fCwr)
	base := c.iss + 1
	c.sendFive(base)
	st := func() (uint8, uint32, uint32) {
		c.tp.lockSock()
		defer c.tp.releaseSock()
		return c.tp.caState, c.tp.cwnd, c.tp.ssthresh
	}
	if s, cw, _ := st(); s != tcpCAOpen || cw != 10 {
		t.Fatalf("before: state %d cwnd %d", s, cw)
	}
	c.send(seg{seq: c.peerIS + 1, ack: base + 1, flags: fAck | fEce})
	s, cw, ss := st()
	if s != tcpCACWR || ss != 7 || cw >= 10 {
		t.Fatalf("after ECE: state %d cwnd %d ssthresh %d, want CWR, ssthresh 7, cwnd below 10", s, cw, ss)
	}
	c.sendData("f")
	f, _ := c.expect(seg{seq: base + 5, ack: c.peerIS + 1, flags: fAck | fPsh | fCwr, payload: "f"})
	if f.tos != tosECT0 {
		t.Fatalf("CWR data tos %d", f.tos)
	}
	c.sendData("g") // CWR only once
	c.expect(seg{seq: base + 6, ack: c.peerIS + 1, flags: fAck | fPsh, payload: "g"})
	c.send(seg{seq: c.peerIS + 1, ack: base + 2, flags: fAck | fEce})
	if s, _, ss := st(); s != tcpCACWR || ss != 7 {
		t.Fatalf("second ECE in the window: state %d ssthresh %d", s, ss)
	}
	c.send(seg{seq: c.peerIS + 1, ack: base + 5, flags: fAck}) // up to high_seq: CWR held
	if s, _, _ := st(); s != tcpCACWR {
		t.Fatalf("at high_seq: state %d, want CWR", s)
	}
	c.send(seg{seq: c.peerIS + 1, ack: base + 7, flags: fAck})
	if s, cw, ss := st(); s != tcpCAOpen || cw != 7 || ss != 7 {
		t.Fatalf("past high_seq: state %d cwnd %d ssthresh %d, want Open 7 7", s, cw, ss)
	}
	if r := c.tp.Info().TotalRetrans; r != 0 {
		t.Fatalf("%d retransmissions", r)
	}
}

// DCTCP asks for ECN on its SYN whatever tcp_ecn says, and, needing ECN,
// sends every packet ECT: the SYN, the handshake's ACK, pure ACKs
// (tcp_ecn_send_syn, tcp_assign_congestion_control's INET_ECN_xmit).
// Without ECN from the peer it falls back to dctcp-reno, Not-ECT.
func TestSynSentDCTCP(t *testing.T) {
	for _, peerECN := range []bool{true, false} {
		c := newScript(t)
		setSysctl(t, c.s, "ipv4/tcp_ecn", "0")
		setSysctl(t, c.s, "ipv4/tcp_congestion_control", "dctcp")
		syn, _ := c.activeOpenFlags(fSyn | fEce | fCwr)
		if syn.tos != tosECT0 {
			t.Fatalf("DCTCP SYN tos %d, want ECT(0)", syn.tos)
		}
		var sa header.TCPFlags
		if peerECN {
			sa = fEce
		}
		c.send(seg{seq: 3000, ack: c.iss + 1, flags: fSyn | fAck | sa, opts: mssOpt(1460)})
		ack, _ := c.expect(seg{seq: c.iss + 1, ack: 3001, flags: fAck})
		i := c.tp.Info()
		if peerECN && (ack.tos != tosECT0 || !i.ECN || i.Congestion != "dctcp") ||
			!peerECN && (ack.tos != tosNotECT || i.ECN || i.Congestion != "dctcp-reno") {
			t.Fatalf("peer ECN %v: ACK tos %d, ecn %v, algorithm %s", peerECN, ack.tos, i.ECN, i.Congestion)
		}
	}
}

// A DCTCP listener accepts ECN even with tcp_ecn 0 and even from an ECT
// SYN (another DCTCP), and its SYN-ACK is ECT.
func TestListenSynDCTCP(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_ecn", "0")
	setSysctl(t, c.s, "ipv4/tcp_congestion_control", "dctcp")
	c.listen(8)
	c.send(seg{seq: c.peerIS, flags: fSyn | fEce | fCwr, tos: tosECT0, opts: mssOpt(1460)})
	sa, _, _ := c.take()
	if sa.flags != fSyn|fAck|fEce || sa.tos != tosECT0 {
		t.Fatalf("SYN-ACK %v tos %d", sa, sa.tos)
	}
}

// The DCTCP receiver's CE state machine: ECE follows the CE state of the
// last packet exactly (no latching until CWR); at a change of state an
// ACK being delayed goes first, for the data before the packet, with the
// old state, and the new state is acknowledged at once (dctcp_ece_ack_update).
func TestEstablishedDCTCPCEStateMachine(t *testing.T) {
	c, _ := ecnEstablishedCC(t, "dctcp", fEce|fCwr, tosECT0)
	tp := c.tp
	seq := c.peerIS + 1
	send := func(tos uint8) {
		c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: "0123456789", tos: tos})
		seq += 10
	}
	// Leave quick-ACK mode: ACKs are delayed from now on.
	for i := 0; i < 20; i++ {
		send(tosECT0)
		c.takeAll()
	}
	c.clk.Advance(time.Second)
	c.takeAll()
	tp.lockSock()
	tp.ackQuick = 0
	tp.enterPingpong()
	tp.releaseSock()
	send(tosECT0) // delayed: nothing yet
	c.expectNone()
	send(tosCE) // state 0 -> 1: the delayed ACK for the first packet (no ECE), then one with ECE
	a1, _ := c.expect(seg{seq: c.iss + 1, ack: seq - 10, flags: fAck})
	a2, _ := c.expect(seg{seq: c.iss + 1, ack: seq, flags: fAck | fEce})
	if a1.tos != tosECT0 || a2.tos != tosECT0 {
		t.Fatalf("pure ACKs tos %d %d, want ECT(0) (DCTCP)", a1.tos, a2.tos)
	}
	send(tosCE) // no change: delayed
	c.expectNone()
	send(tosECT0) // 1 -> 0: the delayed one with ECE, then this one without
	c.expect(seg{seq: c.iss + 1, ack: seq - 10, flags: fAck | fEce})
	c.expect(seg{seq: c.iss + 1, ack: seq, flags: fAck})
}

// DCTCP's sender: alpha starts at 1 and decays by g = 1/16 per window
// without marks; an ECE reduces cwnd by alpha/2 (dctcp_ssthresh), and a
// window with every packet marked brings alpha back up by g.
func TestEstablishedDCTCPAlpha(t *testing.T) {
	c, _ := ecnEstablishedCC(t, "dctcp", fEce|fCwr, tosNotECT)
	tp := c.tp
	d := tp.cc.(*dctcpCC)
	state := func() (alpha, cwnd, ssthresh uint32) {
		tp.lockSock()
		defer tp.releaseSock()
		return d.alpha, tp.cwnd, tp.ssthresh
	}
	if a, _, _ := state(); a != dctcpMaxAlpha {
		t.Fatalf("initial alpha %d", a)
	}
	next := c.iss + 1
	window := func(ece header.TCPFlags) {
		c.sendData("x")
		c.take()
		next++
		c.send(seg{seq: c.peerIS + 1, ack: next, flags: fAck | ece})
	}
	window(0)
	if a, _, _ := state(); a != 1024-64 {
		t.Fatalf("alpha after an unmarked window %d, want 960", a)
	}
	window(0)
	if a, _, _ := state(); a != 960-60 {
		t.Fatalf("alpha after two unmarked windows %d, want 900", a)
	}
	_, cw, _ := state()
	window(fEce) // all marked: alpha = 900 - 56 + 64
	a, _, ss := state()
	if a != 900-56+64 {
		t.Fatalf("alpha after a marked window %d, want 908", a)
	}
	// tcp_in_ack_event runs before tcp_fastretrans_alert enters CWR.
	if want := max(cw-(cw*a)>>11, 2); ss != want {
		t.Fatalf("ssthresh %d after ECE at cwnd %d with alpha %d, want %d", ss, cw, a, want)
	}
	// dctcp_shift_g is read at every update: g = 1/4 now.
	setSysctl(t, c.s, "module/tcp_dctcp/parameters/dctcp_shift_g", "2")
	window(0)
	if a2, _, _ := state(); a2 != a-a>>2 {
		t.Fatalf("alpha with g = 1/4 after an unmarked window %d, want %d", a2, a-a>>2)
	}
	// dctcp_alpha_on_init is read when a connection starts DCTCP.
	setSysctl(t, c.s, "module/tcp_dctcp/parameters/dctcp_alpha_on_init", "100")
	if err := tp.SetCongestion("dctcp", true); err != nil {
		t.Fatal(err)
	}
	d = tp.cc.(*dctcpCC)
	if a3, _, _ := state(); a3 != 100 {
		t.Fatalf("alpha after dctcp_alpha_on_init 100: %d", a3)
	}
}

// A segment that arrives while the user owns the socket is not merged
// into a backlogged one with another ECN codepoint (tcp_add_backlog
// compares ip_dsfield): a CE mark behind an ECT(0) segment is still
// seen, and echoed.
func TestEstablishedBacklogKeepsCE(t *testing.T) {
	c, _ := ecnEstablished(t, fEce|fCwr)
	seq := c.peerIS + 1
	c.tp.lockSock()
	c.send(seg{seq: seq, ack: c.iss + 1, flags: fAck, payload: "first", tos: tosECT0})
	c.send(seg{seq: seq + 5, ack: c.iss + 1, flags: fAck, payload: "second", tos: tosCE})
	c.tp.releaseSock()
	if n := c.s.mib.Get(memctl.TcpExtTCPBacklogCoalesce); n != 0 {
		t.Fatalf("TCPBacklogCoalesce %d: ECT(0) and CE segments merged", n)
	}
	var last seg
	for _, a := range c.takeAll() {
		last = a
	}
	if last.ack != seq+11 || last.flags&fEce == 0 {
		t.Fatalf("last ACK %v: want ack %d with ECE", last, seq+11)
	}
}

// TestDeliveredCECounted: segments acknowledged by an ACK with ECE count
// in TcpExt TCPDeliveredCE as well as TCPDelivered (tcp_count_delivered);
// the counter stayed at 0 while DCTCP's own delivered_ce grew.
func TestDeliveredCECounted(t *testing.T) {
	c, _ := ecnEstablished(t, fEce|fCwr)
	base := c.iss + 1
	c.sendFive(base)
	c.send(seg{seq: c.peerIS + 1, ack: base + 2, flags: fAck | fEce}) // two segments, ECE
	c.send(seg{seq: c.peerIS + 1, ack: base + 3, flags: fAck})        // one more, no ECE
	if ce, all := c.s.mib.Get(memctl.TcpExtTCPDeliveredCE), c.s.mib.Get(memctl.TcpExtTCPDelivered); ce != 2 || all < 3 {
		t.Fatalf("TCPDeliveredCE %d, TCPDelivered %d; want 2 and at least 3", ce, all)
	}
}
