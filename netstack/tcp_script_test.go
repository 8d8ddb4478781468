package netstack

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/netstack/header"
	"sockfs/netstack/link"
	"sockfs/skb"
)

// capDev is a test device that records what the stack transmits.
type capDev struct {
	mu      sync.Mutex
	out     []*skb.SKB
	batches []int // the length of each Xmit batch
	stats   link.Stats
	rx      link.Receiver
}

func (d *capDev) Kind() string                { return "cap" }
func (d *capDev) MTU() int                    { return 1500 }
func (d *capDev) Open(rx link.Receiver) error { d.rx = rx; return nil }
func (d *capDev) Stats() *link.Stats          { return &d.stats }
func (d *capDev) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.out {
		b.Free()
	}
	d.out = nil
	return nil
}
func (d *capDev) Xmit(batch []*skb.SKB) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.batches = append(d.batches, len(batch))
	for _, b := range batch {
		b.Orphan()
		d.out = append(d.out, b)
	}
}

var (
	scriptLocal  = netip.MustParseAddr("10.0.0.1")
	scriptRemote = netip.MustParseAddr("10.0.0.2")
)

// seg is a segment of a packet script. In expectations, zero fields other
// than flags are not checked unless the matching check bit is set.
type seg struct {
	seq, ack uint32
	flags    header.TCPFlags
	win      uint16
	payload  string
	opts     []byte
	tos      uint8 // the IP header's TOS byte (ECN in its low bits)
	// what to check on expect (seq and flags always)
	checkAck, checkWin bool
}

func (s seg) String() string {
	return fmt.Sprintf("seq=%d ack=%d %v win=%d len=%d", s.seq, s.ack, s.flags, s.win, len(s.payload))
}

// script drives one stack through a capture device: the test plays the
// peer at 10.0.0.2:5000 against the stack at 10.0.0.1:80.
type script struct {
	t      *testing.T
	clk    *clock.Sim
	s      *Stack
	dev    *capDev
	nd     *NetDevice
	lport  uint16
	rport  uint16
	tp     *TCPSock // the stack's connection
	l      *TCPSock // the listener, if any
	peerIS uint32   // our (peer) ISS
	iss    uint32   // the stack's ISS
	lastTS uint32
}

func newScript(t *testing.T) *script {
	t.Helper()
	return newScriptSeed(t, 7)
}

// newScriptSeed is newScript with the stack's random seed (and so its
// initial sequence numbers) chosen.
func newScriptSeed(t *testing.T, seed uint64) *script {
	t.Helper()
	heads := skb.LiveHeads()
	c := &script{t: t, clk: clock.NewSim(), dev: &capDev{}, lport: 80, rport: 5000, peerIS: 1000}
	c.s = New(Options{Clock: c.clk, Seed: seed})
	var err error
	if c.nd, err = c.s.AddDevice(c.dev); err != nil {
		t.Fatal(err)
	}
	if err := c.s.AddAddress(c.nd, netip.PrefixFrom(scriptLocal, 24)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The user's socket, which Stack.Close no longer finds in a
		// table once it is closed (a reset), and which may still hold
		// received data or the FIN.
		if c.tp != nil {
			c.tp.Close()
		}
		c.s.Close()
		if d := skb.LiveHeads() - heads; d != 0 && !t.Failed() {
			t.Errorf("%d skb heads leaked", d)
		}
	})
	return c
}

// build makes the skb of a segment from the peer.
func (c *script) build(sg seg) *skb.SKB {
	c.t.Helper()
	hl := header.TCPMinSize + (len(sg.opts)+3)&^3
	total := header.IPv4MinSize + hl + len(sg.payload)
	b := skb.Alloc(total + 64)
	b.Reserve(64)
	pkt := b.Put(total)
	iph := header.IPv4(pkt)
	iph.Encode(&header.IPv4Fields{TotalLength: uint16(total), TTL: 64, Protocol: header.IPv4ProtocolTCP,
		Src: scriptRemote, Dst: scriptLocal, ID: 1, TOS: sg.tos})
	th := header.TCP(pkt[header.IPv4MinSize:])
	win := sg.win
	if win == 0 && sg.flags&header.TCPFlagRst == 0 && !sg.checkWin {
		win = 65535
	}
	th.Encode(&header.TCPFields{SrcPort: c.rport, DstPort: c.lport, Seq: sg.seq, Ack: sg.ack,
		Flags: sg.flags, Window: win, Options: sg.opts, DataOffset: hl})
	copy(th[hl:], sg.payload)
	th.SetChecksum(th.CalculateChecksum(scriptRemote, scriptLocal))
	return b
}

// send injects a segment from the peer, alone in its receive batch.
func (c *script) send(sg seg) {
	c.t.Helper()
	c.nd.NetifRx([]*skb.SKB{c.build(sg)})
}

// sendBatch injects segments from the peer in one receive batch, as a
// device that drained several packets at one wake-up delivers them.
func (c *script) sendBatch(sgs ...seg) {
	c.t.Helper()
	batch := make([]*skb.SKB, len(sgs))
	for i, sg := range sgs {
		batch[i] = c.build(sg)
	}
	c.nd.NetifRx(batch)
}

// take returns the next transmitted segment, or false.
// expectNoRst takes every segment sent so far and fails if one of them is
// a RST; what says what the stack must not have reset.
func (c *script) expectNoRst(what string) {
	c.t.Helper()
	for {
		got, _, ok := c.take()
		if !ok {
			return
		}
		if got.flags&fRst != 0 {
			c.t.Fatalf("%s: %v", what, got)
		}
	}
}

func (c *script) take() (seg, header.TCPOptions, bool) {
	c.dev.mu.Lock()
	if len(c.dev.out) == 0 {
		c.dev.mu.Unlock()
		return seg{}, header.TCPOptions{}, false
	}
	b := c.dev.out[0]
	c.dev.out = c.dev.out[1:]
	c.dev.mu.Unlock()
	buf := make([]byte, b.Len())
	b.CopyBits(0, buf)
	b.Free()
	iph := header.IPv4(buf)
	th := header.TCP(buf[iph.HeaderLength():])
	if !th.IsChecksumValid(iph.SrcAddr(), iph.DstAddr()) {
		c.t.Fatalf("bad checksum on transmitted segment")
	}
	var o header.TCPOptions
	header.ParseTCPOptions(th.Options(), &o)
	if o.HasTimestamp {
		c.lastTS = o.TSVal
	}
	return seg{seq: th.Seq(), ack: th.Ack(), flags: th.Flags(), win: th.Window(), payload: string(th.Payload()), tos: iph.TOS()}, o, true
}

// expect checks the next transmitted segment.
func (c *script) expect(want seg) (seg, header.TCPOptions) {
	c.t.Helper()
	got, o, ok := c.take()
	if !ok {
		c.t.Fatalf("expected %v, nothing sent", want)
	}
	if got.seq != want.seq || got.flags != want.flags || got.payload != want.payload ||
		((want.checkAck || want.flags&header.TCPFlagAck != 0) && got.ack != want.ack) ||
		(want.checkWin && got.win != want.win) {
		c.t.Fatalf("got  %v\nwant %v", got, want)
	}
	return got, o
}

// expectNone checks that nothing was sent.
func (c *script) expectNone() {
	c.t.Helper()
	if got, _, ok := c.take(); ok {
		c.t.Fatalf("expected nothing, got %v", got)
	}
}

const (
	fSyn = header.TCPFlagSyn
	fAck = header.TCPFlagAck
	fFin = header.TCPFlagFin
	fRst = header.TCPFlagRst
	fPsh = header.TCPFlagPsh
)

// mssOpt is an MSS-only option block (no window scale, SACK or timestamps,
// so windows in the script are unscaled).
func mssOpt(mss uint16) []byte {
	b := make([]byte, 4)
	header.EncodeSynOptions(b, mss, -1, false, false, 0, 0)
	return b
}

// listen makes the stack listen on :80.
func (c *script) listen(backlog int) {
	c.t.Helper()
	l := c.s.NewTCP()
	if err := l.Bind(netip.AddrPortFrom(scriptLocal, c.lport)); err != nil {
		c.t.Fatal(err)
	}
	if err := l.Listen(backlog); err != nil {
		c.t.Fatal(err)
	}
	l.SetNonblock(true)
	c.l = l
}

// establishPassive completes a handshake against the listener and accepts.
func (c *script) establishPassive() {
	c.t.Helper()
	c.listen(8)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(1460)})
	sa, _ := c.expect(seg{flags: fSyn | fAck, ack: c.peerIS + 1, seq: 0})
	_ = sa
}

// acceptNoDelay accepts the connection the handshake made, non-blocking
// and with TCP_NODELAY, as the script's connection.
func (c *script) acceptNoDelay() {
	c.t.Helper()
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	tp.SetNonblock(true)
	tp.SetNoDelay(true)
	c.tp = tp
}

// estab returns a script with an established passive connection; the peer
// sent SYN with MSS 1460 only.
func newEstablished(t *testing.T) *script {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(1460)})
	got, _, ok := c.take()
	if !ok || got.flags != fSyn|fAck || got.ack != c.peerIS+1 {
		t.Fatalf("no SYN-ACK: %v", got)
	}
	c.iss = got.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck})
	c.expectNone()
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tp.SetNonblock(true)
	c.tp = tp
	return c
}

func TestListenSyn(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	got, o, _ := c.take()
	if got.flags != fSyn|fAck || got.ack != 1001 || got.win != 64240 {
		t.Fatalf("SYN-ACK %v, want win 64240 (65536 rounded down to the MSS)", got)
	}
	if !o.HasMSS || o.MSS != 1460 || o.HasWS || o.HasTimestamp || o.SACKPermitted {
		t.Fatalf("SYN-ACK options %+v: want MSS 1460 only (the SYN offered nothing else)", o)
	}
	if c.s.mib.Get(memctl.TcpPassiveOpens) != 0 {
		t.Fatal("PassiveOpens counted before the handshake completed")
	}
}

func TestListenSynOptionsLinuxLayout(t *testing.T) {
	c := newScript(t)
	c.s.net.Sysctls.Lookup("ipv4/tcp_rmem")
	c.listen(8)
	opts := make([]byte, 20)
	n := header.EncodeSynOptions(opts, 1460, 7, true, true, 12345, 0)
	c.send(seg{seq: 1000, flags: fSyn, opts: opts[:n]})
	got, o, _ := c.take()
	if got.flags != fSyn|fAck || !o.HasMSS || o.MSS != 1460 || !o.HasWS || !o.SACKPermitted || !o.HasTimestamp || o.TSEcr != 12345 {
		t.Fatalf("SYN-ACK %v options %+v", got, o)
	}
}

func TestClosedSynRst(t *testing.T) {
	c := newScript(t)
	c.send(seg{seq: 1000, flags: fSyn})
	c.expect(seg{seq: 0, ack: 1001, flags: fRst | fAck})
	if c.s.mib.Get(memctl.TcpOutRsts) != 1 {
		t.Fatal("OutRsts not counted")
	}
}

func TestListenAckNoRequestRst(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	c.send(seg{seq: 1000, ack: 5555, flags: fAck})
	c.expect(seg{seq: 5555, flags: fRst})
}

func TestSynRecvAck(t *testing.T) {
	c := newEstablished(t)
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v", c.tp.State())
	}
	if c.s.mib.Get(memctl.TcpPassiveOpens) != 1 || c.s.mib.Get(memctl.TcpCurrEstab) != 1 {
		t.Fatal("PassiveOpens/CurrEstab not counted")
	}
}

// activeOpen connects the stack to the peer and returns the SYN.
func (c *script) activeOpen() (seg, header.TCPOptions) {
	c.t.Helper()
	c.lport, c.rport = 5000, 80
	tp := c.s.NewTCP()
	tp.SetNonblock(true)
	if err := tp.Bind(netip.AddrPortFrom(scriptLocal, 5000)); err != nil {
		c.t.Fatal(err)
	}
	if err := tp.Connect(context.Background(), netip.AddrPortFrom(scriptRemote, 80)); err != syscall.EINPROGRESS {
		c.t.Fatal(err)
	}
	c.tp = tp
	got, o, ok := c.take()
	if !ok || got.flags != fSyn {
		c.t.Fatalf("no SYN: %v", got)
	}
	c.iss = got.seq
	return got, o
}

func TestSynSentSynAck(t *testing.T) {
	c := newScript(t)
	_, o := c.activeOpen()
	if !o.HasMSS || o.MSS != 1460 || !o.HasWS || !o.SACKPermitted || !o.HasTimestamp {
		t.Fatalf("SYN options %+v", o)
	}
	c.send(seg{seq: 3000, ack: c.iss + 1, flags: fSyn | fAck, opts: mssOpt(1460)})
	c.expect(seg{seq: c.iss + 1, ack: 3001, flags: fAck})
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v", c.tp.State())
	}
	if c.s.mib.Get(memctl.TcpActiveOpens) != 1 {
		t.Fatal("ActiveOpens")
	}
}

func TestSynSentBadAckRst(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.send(seg{seq: 3000, ack: c.iss + 100, flags: fSyn | fAck})
	c.expect(seg{seq: c.iss + 100, flags: fRst})
	if c.tp.State() != TCPSynSent {
		t.Fatalf("state %v", c.tp.State())
	}
}

func TestSynSentRst(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.send(seg{seq: 0, ack: c.iss + 1, flags: fRst | fAck})
	c.expectNone()
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v", c.tp.State())
	}
	if _, err := c.tp.Recv(context.Background(), make([]byte, 10)); err != syscall.ECONNREFUSED {
		t.Fatalf("recv after refused connect: %v", err)
	}
	if c.s.mib.Get(memctl.TcpAttemptFails) != 1 {
		t.Fatal("AttemptFails")
	}
}

func TestSynSentSyn(t *testing.T) { // simultaneous open
	c := newScript(t)
	c.activeOpen()
	c.send(seg{seq: 3000, flags: fSyn, opts: mssOpt(1460)})
	c.expect(seg{seq: c.iss, ack: 3001, flags: fSyn | fAck})
	if c.tp.State() != TCPSynRecv {
		t.Fatalf("state %v", c.tp.State())
	}
	c.send(seg{seq: 3000, ack: c.iss + 1, flags: fSyn | fAck, opts: mssOpt(1460)})
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state after SYN-ACK %v", c.tp.State())
	}
}

func TestSynSentTimeout(t *testing.T) {
	c := newScript(t)
	c.activeOpen()
	c.clk.Advance(time.Second)
	c.expect(seg{seq: c.iss, flags: fSyn}) // first retransmission after 1 s
	c.clk.Advance(time.Second)
	c.expect(seg{seq: c.iss, flags: fSyn}) // not backed off (tcp_syn_linear_timeouts)
	c.clk.Advance(200 * time.Second)
	for {
		if _, _, ok := c.take(); !ok {
			break
		}
	}
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v after 203 s", c.tp.State())
	}
}

func TestEstablishedData(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fPsh, payload: "hello"})
	// quick-ack mode at the start: acked at once
	c.expect(seg{seq: c.iss + 1, ack: 1006, flags: fAck})
	buf := make([]byte, 10)
	n, err := c.tp.Recv(context.Background(), buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("recv %q %v", buf[:n], err)
	}
	if _, err := c.tp.Send(context.Background(), []byte("world")); err != nil {
		t.Fatal(err)
	}
	c.expect(seg{seq: c.iss + 1, ack: 1006, flags: fAck | fPsh, payload: "world"})
}

// TestEstablishedSendOneXmit: one Send call's data goes into one TSO skb
// (under the size goal), sent as two GSO skbs (the first cut at half the
// congestion window by tcp_cwnd_test), which software GSO cuts into wire
// segments for this device without TSO, all in one Xmit batch, in
// order.
func TestEstablishedSendOneXmit(t *testing.T) {
	c := newEstablished(t)
	const mss, n = 1460, 8
	data := make([]byte, n*mss)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	c.dev.mu.Lock()
	before := len(c.dev.batches)
	c.dev.mu.Unlock()
	if _, err := c.tp.Send(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	c.dev.mu.Lock()
	batches := append([]int(nil), c.dev.batches[before:]...)
	c.dev.mu.Unlock()
	if len(batches) != 1 || batches[0] != n {
		t.Fatalf("Xmit batches %v, want one of %d", batches, n)
	}
	for i := range n {
		// PSH on the last only: tcp_push marked the tail skb, and GSO
		// leaves PSH on the last segment it cuts.
		f := fAck
		if i == n-1 {
			f |= fPsh
		}
		c.expect(seg{seq: c.iss + 1 + uint32(i*mss), ack: 1001, flags: f, payload: string(data[i*mss : (i+1)*mss])})
	}
	c.expectNone()
}

func TestEstablishedOutOfOrder(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1006, ack: c.iss + 1, flags: fAck, payload: "world"})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck}) // dup ACK at once
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "hello"})
	c.expect(seg{seq: c.iss + 1, ack: 1011, flags: fAck}) // hole filled: ACK now
	buf := make([]byte, 20)
	n, _ := c.tp.Recv(context.Background(), buf)
	if string(buf[:n]) != "helloworld" {
		t.Fatalf("recv %q", buf[:n])
	}
}

func TestEstablishedFin(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	if c.tp.State() != TCPCloseWait {
		t.Fatalf("state %v", c.tp.State())
	}
	c.clk.Advance(tcpDelackMax) // the FIN's ACK is delayed (pingpong)
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
	n, err := c.tp.Recv(context.Background(), make([]byte, 10))
	if n != 0 || err != nil {
		t.Fatalf("recv at EOF: %d %v", n, err)
	}
	c.tp.Close()
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fFin})
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck}) // LAST_ACK -> CLOSED
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

func TestEstablishedRstInWindow(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, flags: fRst})
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v", c.tp.State())
	}
	if _, err := c.tp.Recv(context.Background(), make([]byte, 1)); err != syscall.ECONNRESET {
		t.Fatalf("recv: %v", err)
	}
	if c.s.mib.Get(memctl.TcpEstabResets) != 1 {
		t.Fatal("EstabResets")
	}
}

// An RST inside the window but not at rcv_nxt gets a challenge ACK (RFC
// 5961 3.2); one outside the window is dropped silently.
func TestEstablishedRstOutOfWindowChallengeAck(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001 + 100, flags: fRst})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	c.send(seg{seq: 1001 + 1<<20, flags: fRst})
	c.expectNone()
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v", c.tp.State())
	}
	if c.s.mib.Get(memctl.TcpExtTCPChallengeACK) != 1 {
		t.Fatal("TCPChallengeACK")
	}
}

func TestEstablishedSynChallengeAck(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, flags: fSyn})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck})
	if c.tp.State() != TCPEstablished {
		t.Fatalf("state %v", c.tp.State())
	}
	if c.s.mib.Get(memctl.TcpExtTCPSYNChallenge) != 1 {
		t.Fatal("TCPSYNChallenge")
	}
}

func TestEstablishedOldSegmentDupack(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "abc"})
	c.expect(seg{seq: c.iss + 1, ack: 1004, flags: fAck})
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "abc"})
	c.expect(seg{seq: c.iss + 1, ack: 1004, flags: fAck})
}

func TestEstablishedRetransmit(t *testing.T) {
	c := newEstablished(t)
	c.tp.Send(context.Background(), []byte("data"))
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "data"})
	rto := c.tp.Info().RTO
	c.clk.Advance(rto)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "data"})
	c.clk.Advance(2 * rto)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "data"})
	if c.s.mib.Get(memctl.TcpRetransSegs) != 2 {
		t.Fatal("RetransSegs")
	}
	c.send(seg{seq: 1001, ack: c.iss + 5, flags: fAck})
	c.clk.Advance(10 * time.Second)
	c.expectNone()
}

func TestEstablishedZeroWindowProbe(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true})
	c.tp.Send(context.Background(), []byte("blocked"))
	c.expectNone()
	c.clk.Advance(c.tp.Info().RTO)
	c.expect(seg{seq: c.iss, ack: 1001, flags: fAck}) // probe: snd_una - 1, no data
	if c.s.mib.Get(memctl.TcpExtTCPWinProbe) != 1 {
		t.Fatal("TCPWinProbe")
	}
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, win: 1000})
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "blocked"})
}

func TestEstablishedNagle(t *testing.T) {
	c := newEstablished(t)
	c.tp.Send(context.Background(), []byte("a"))
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "a"})
	c.tp.Send(context.Background(), []byte("b"))
	c.expectNone() // a small segment is outstanding
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.expect(seg{seq: c.iss + 2, ack: 1001, flags: fAck | fPsh, payload: "b"})
	c.tp.SetNoDelay(true)
	c.tp.Send(context.Background(), []byte("c"))
	c.expect(seg{seq: c.iss + 3, ack: 1001, flags: fAck | fPsh, payload: "c"})
}

func TestEstablishedCork(t *testing.T) {
	c := newEstablished(t)
	c.tp.SetCork(true)
	c.tp.Send(context.Background(), []byte("ab"))
	c.tp.Send(context.Background(), []byte("cd"))
	c.expectNone()
	c.tp.SetCork(false)
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fPsh, payload: "abcd"})
}

func TestEstablishedDelayedAck(t *testing.T) {
	c := newEstablished(t)
	c.tp.lockSock()
	c.tp.ackQuick = 0 // out of the initial quick-ack phase
	c.tp.ato = tcpAtoMin
	c.tp.lrcvtime = c.tp.now()
	c.tp.releaseSock()
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "x"})
	c.expectNone()
	c.clk.Advance(tcpAtoMin)
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck})
	if c.s.mib.Get(memctl.TcpExtDelayedACKs) != 1 {
		t.Fatal("DelayedACKs")
	}
}

func TestEstablishedKeepalive(t *testing.T) {
	c := newEstablished(t)
	c.tp.SetKeepAlive(true, 10*time.Second, 2*time.Second, 2)
	c.clk.Advance(10 * time.Second)
	c.expect(seg{seq: c.iss, ack: 1001, flags: fAck})
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck}) // answered
	c.clk.Advance(10 * time.Second)
	c.expect(seg{seq: c.iss, ack: 1001, flags: fAck})
	c.clk.Advance(2 * time.Second)
	c.expect(seg{seq: c.iss, ack: 1001, flags: fAck})
	c.clk.Advance(2 * time.Second)
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v after unanswered probes", c.tp.State())
	}
}

// closeActive closes the stack's side and returns after its FIN.
func (c *script) closeActive() {
	c.t.Helper()
	c.tp.Close()
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fAck | fFin})
}

func TestFinWait1Ack(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	if st := c.tp.state; st != TCPFinWait2 {
		t.Fatalf("state %v", st)
	}
	c.clk.Advance(c.s.net.Sysctls.TCPFinTimeout()) // orphan FIN_WAIT2 timeout
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v after fin timeout", st)
	}
}

func TestFinWait1Fin(t *testing.T) { // simultaneous close
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPClosing {
		t.Fatalf("state %v", st)
	}
}

func TestClosingAck(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck})
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v", st)
	}
}

func TestFinWait2Fin(t *testing.T) {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v", st)
	}
	c.clk.Advance(tcpTimewaitLen - time.Second)
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v before 2*MSL", st)
	}
	c.clk.Advance(time.Second)
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v after 2*MSL", st)
	}
}

func TestLastAckAck(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck | fFin})
	c.tp.Close()
	c.expect(seg{seq: c.iss + 1, ack: 1002, flags: fAck | fFin})
	if st := c.tp.state; st != TCPLastAck {
		t.Fatalf("state %v", st)
	}
	c.send(seg{seq: 1002, ack: c.iss + 2, flags: fAck})
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

func timeWaitScript(t *testing.T) *script {
	c := newEstablished(t)
	c.closeActive()
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin})
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
	if st := c.tp.state; st != TCPTimeWait {
		t.Fatalf("state %v", st)
	}
	return c
}

func TestTimeWaitFin(t *testing.T) {
	c := timeWaitScript(t)
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck | fFin}) // retransmitted FIN
	c.expect(seg{seq: c.iss + 2, ack: 1002, flags: fAck})
}

// A new SYN beyond the old sequence space reopens the connection through
// the listener, with an ISN above the old snd_nxt.
func TestTimeWaitSyn(t *testing.T) {
	c := timeWaitScript(t)
	c.send(seg{seq: 5000, flags: fSyn, opts: mssOpt(1460)})
	got, _ := c.expect(seg{seq: c.iss + 2 + 65537, ack: 5001, flags: fSyn | fAck})
	_ = got
	// An old SYN is answered with an ACK instead.
	c2 := timeWaitScript(t)
	c2.send(seg{seq: 500, flags: fSyn})
	c2.expect(seg{seq: c2.iss + 2, ack: 1002, flags: fAck})
}

func TestTimeWaitRst(t *testing.T) {
	c := timeWaitScript(t)
	c.send(seg{seq: 1002, flags: fRst})
	if st := c.tp.state; st != TCPClose {
		t.Fatalf("state %v", st)
	}
}

func TestEstablishedCloseUnreadRst(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "unread"})
	c.expect(seg{seq: c.iss + 1, ack: 1007, flags: fAck})
	c.tp.Close()
	c.expect(seg{seq: c.iss + 1, ack: 1007, flags: fRst | fAck})
	if c.s.mib.Get(memctl.TcpExtTCPAbortOnClose) != 1 {
		t.Fatal("TCPAbortOnClose")
	}
}

func TestListenSynQueueFullSyncookies(t *testing.T) {
	c := newScript(t)
	c.listen(0)
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	got, _, _ := c.take() // backlog 0: SYN queue "full" at once -> cookie
	if got.flags != fSyn|fAck {
		t.Fatalf("got %v", got)
	}
	if c.s.mib.Get(memctl.TcpExtSyncookiesSent) != 1 {
		t.Fatal("SyncookiesSent")
	}
	c.send(seg{seq: 1001, ack: got.seq + 1, flags: fAck})
	if c.s.mib.Get(memctl.TcpExtSyncookiesRecv) != 1 {
		t.Fatal("SyncookiesRecv")
	}
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tp.State() != TCPEstablished {
		t.Fatalf("state %v", tp.State())
	}
	// The accept queue (backlog 0 holds one) is now full: the next SYN is dropped.
	c.rport = 5001
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	c.take()
	c.send(seg{seq: 1001, ack: 12345, flags: fAck}) // bad cookie
	c.expect(seg{seq: 12345, flags: fRst})
	if c.s.mib.Get(memctl.TcpExtSyncookiesFailed) != 1 {
		t.Fatal("SyncookiesFailed")
	}
	tp.Abort()
}

// encodeSynOptsForTest is a Linux client's SYN options: MSS 1460, SACK,
// timestamps, window scale 7.
func encodeSynOptsForTest(b []byte) int {
	return header.EncodeSynOptions(b, 1460, 7, true, true, 1, 0)
}

// Unanswered retransmissions give up with ETIMEDOUT at the first RTO at
// least tcp_model_timeout(tcp_retries2 = 15, TCP_RTO_MIN) = 1023*200 ms +
// 6*120 s = 924.6 s after the first retransmission (Linux's
// retransmits_timed_out), not after a count of retransmissions.
func TestEstablishedRetransmitGiveUp(t *testing.T) {
	c := newEstablished(t)
	c.tp.Send(context.Background(), []byte("lost"))
	c.take()
	c.untilRetransmit()
	first := c.clk.Nanotime()
	limit := 1023*200*time.Millisecond + 6*120*time.Second
	c.clk.Advance(time.Duration(first + int64(limit) - 1 - c.clk.Nanotime()))
	if c.tp.State() == TCPClose {
		t.Fatalf("gave up before tcp_retries2's timeout")
	}
	c.clk.Advance(tcpRtoMax + time.Millisecond)
	for {
		if _, _, ok := c.take(); !ok {
			break
		}
	}
	if c.tp.State() != TCPClose {
		t.Fatalf("state %v", c.tp.State())
	}
	if _, err := c.tp.Recv(context.Background(), make([]byte, 1)); err != syscall.ETIMEDOUT {
		t.Fatalf("recv: %v", err)
	}
	if c.s.mib.Get(memctl.TcpExtTCPAbortOnTimeout) != 1 {
		t.Fatal("TCPAbortOnTimeout")
	}
}

// With the accept queue full (backlog 1 holds two, as sk_acceptq_is_full
// tests >), a further SYN is dropped and counted.
func TestListenAcceptQueueFull(t *testing.T) {
	c := newScript(t)
	c.listen(1)
	for i := 0; i < 2; i++ {
		c.rport = uint16(5000 + i)
		c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
		sa, _, _ := c.take()
		c.send(seg{seq: 1001, ack: sa.seq + 1, flags: fAck})
	}
	c.rport = 5002
	c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
	c.expectNone()
	if c.s.mib.Get(memctl.TcpExtListenOverflows) != 1 || c.s.mib.Get(memctl.TcpExtListenDrops) != 1 {
		t.Fatalf("ListenOverflows %d ListenDrops %d", c.s.mib.Get(memctl.TcpExtListenOverflows), c.s.mib.Get(memctl.TcpExtListenDrops))
	}
}

// Without SACK, three duplicate ACKs retransmit the first unacked segment
// at once (NewReno fast retransmit, RFC 6582) and enter recovery.
func TestEstablishedThreeDupacksFastRetransmit(t *testing.T) {
	c := newEstablished(t)
	c.tp.SetNoDelay(true)
	for i := 0; i < 5; i++ {
		c.tp.Send(context.Background(), []byte{byte('a' + i)})
	}
	for i := 0; i < 5; i++ {
		c.expect(seg{seq: c.iss + 1 + uint32(i), ack: 1001, flags: fAck | fPsh, payload: string(rune('a' + i))})
	}
	c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck}) // 'a' arrived
	for i := 0; i < 3; i++ {
		c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck}) // 'b' lost
	}
	c.expect(seg{seq: c.iss + 2, ack: 1001, flags: fAck | fPsh, payload: "b"})
	if c.s.mib.Get(memctl.TcpExtTCPRenoRecovery) != 1 || c.s.mib.Get(memctl.TcpExtTCPFastRetrans) != 1 {
		t.Fatalf("RenoRecovery %d FastRetrans %d", c.s.mib.Get(memctl.TcpExtTCPRenoRecovery), c.s.mib.Get(memctl.TcpExtTCPFastRetrans))
	}
	// A partial ACK (b and c arrived, d lost) retransmits d at once.
	c.send(seg{seq: 1001, ack: c.iss + 4, flags: fAck})
	c.expect(seg{seq: c.iss + 4, ack: 1001, flags: fAck | fPsh, payload: "d"})
	c.send(seg{seq: 1001, ack: c.iss + 6, flags: fAck})
	if i := c.tp.Info(); i.CAState != tcpCAOpen || i.Unacked != 0 {
		t.Fatalf("after full ACK: ca_state %d unacked %d", i.CAState, i.Unacked)
	}
}

// Random segments thrown at an established connection must not crash it,
// corrupt its accounting or leak buffers.
func TestEstablishedRandomSegments(t *testing.T) {
	c := newEstablished(t)
	r := rand.New(rand.NewPCG(1, 2))
	flagsSet := []header.TCPFlags{fAck, fAck | fPsh, fAck | fFin, fRst, fSyn, fSyn | fAck, fAck | fRst, 0}
	for i := 0; i < 3000; i++ {
		base := uint32(1001)
		if r.IntN(4) == 0 {
			base = r.Uint32()
		}
		payload := make([]byte, r.IntN(1500))
		c.send(seg{seq: base + uint32(r.IntN(70000)) - 5000, ack: c.iss + uint32(r.IntN(10)),
			flags: flagsSet[r.IntN(len(flagsSet))], win: uint16(r.Uint32()), checkWin: true, payload: string(payload)})
		if r.IntN(10) == 0 {
			c.tp.Send(context.Background(), payload[:len(payload)/4])
		}
		if r.IntN(10) == 0 {
			c.tp.Recv(context.Background(), make([]byte, 4096))
		}
		if r.IntN(50) == 0 {
			c.clk.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
		}
		for {
			if _, _, ok := c.take(); !ok {
				break
			}
		}
		if c.tp.Mem().ForwardAlloc() < 0 || c.tp.Mem().RmemAlloc() < 0 || c.tp.Mem().WmemQueued() < 0 {
			t.Fatalf("accounting went negative at %d: f%d r%d w%d", i, c.tp.Mem().ForwardAlloc(), c.tp.Mem().RmemAlloc(), c.tp.Mem().WmemQueued())
		}
	}
	c.tp.Abort()
	if f := c.tp.Mem().ForwardAlloc(); f != 0 || c.tp.Mem().RmemAlloc() != 0 || c.tp.Mem().WmemQueued() != 0 {
		t.Fatalf("after abort: f%d r%d w%d", f, c.tp.Mem().RmemAlloc(), c.tp.Mem().WmemQueued())
	}
}

func TestEstablishedAbort(t *testing.T) {
	c := newEstablished(t)
	c.tp.Abort()
	c.expect(seg{seq: c.iss + 1, ack: 1001, flags: fRst | fAck})
	// Linux counts a zero-linger close as TCPAbortOnData (__tcp_close).
	if c.s.mib.Get(memctl.TcpExtTCPAbortOnData) != 1 || c.s.mib.Get(memctl.TcpEstabResets) != 1 {
		t.Fatal("TCPAbortOnData / EstabResets")
	}
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "late"})
	c.expect(seg{seq: c.iss + 1, flags: fRst}) // no socket any more
}

func tsOpt(val, ecr uint32) []byte {
	b := make([]byte, 12)
	n := header.EncodeOptions(b, true, val, ecr, nil)
	return b[:n]
}

// PAWS (RFC 7323 section 5): a segment whose timestamp is older than
// ts_recent is dropped and answered with an ACK.
func TestEstablishedPaws(t *testing.T) {
	c := newScript(t)
	c.listen(8)
	opts := make([]byte, 20)
	k := header.EncodeSynOptions(opts, 1460, -1, false, true, 100, 0)
	c.send(seg{seq: 1000, flags: fSyn, opts: opts[:k]})
	sa, o, _ := c.take()
	if !o.HasTimestamp || o.TSEcr != 100 {
		t.Fatalf("SYN-ACK options %+v", o)
	}
	c.iss = sa.seq
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, opts: tsOpt(200, o.TSVal)})
	tp, err := c.l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.tp = tp
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "new", opts: tsOpt(300, o.TSVal)})
	c.expect(seg{seq: c.iss + 1, ack: 1004, flags: fAck})
	c.send(seg{seq: 1004, ack: c.iss + 1, flags: fAck, payload: "old", opts: tsOpt(50, o.TSVal)})
	_, o2 := c.expect(seg{seq: c.iss + 1, ack: 1004, flags: fAck}) // rejected: rcv_nxt unchanged
	if o2.TSEcr != 300 {
		t.Fatalf("echoed %d, want ts_recent 300", o2.TSEcr)
	}
	if c.s.mib.Get(memctl.TcpExtPAWSEstab) != 1 {
		t.Fatal("PAWSEstab")
	}
}
