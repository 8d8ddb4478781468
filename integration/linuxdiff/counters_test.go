package linuxdiff

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The differential counter test (issue 16): the same transfer, 4 MB from
// the system under test to a kernel peer with 2% of what it sends lost and
// 3% reordered (sockfs: its device's `out` impairment; kernel: the relay,
// from a seeded source), on the kernel behind a TUN and on sockfs. Each
// counter below is compared as "moves / does not move" over the transfer;
// counts under random loss are not deterministic, so only a few ratios are
// compared, with stated tolerances.

const (
	ctrLoss    = 0.02
	ctrReorder = 0.03
	ctrBytes   = 4 << 20
)

// diffCounters are the counters compared, by their names in /proc/net/snmp
// and /proc/net/netstat (sockfs's snmp and netstat files).
var diffCounters = []string{
	"Ip:InReceives", "Ip:InDelivers", "Ip:OutRequests", "Ip:InDiscards", "Ip:InHdrErrors",
	"Ip:ReasmReqds", "Ip:FragCreates",
	"Icmp:InMsgs", "Icmp:OutMsgs",
	"Tcp:ActiveOpens", "Tcp:PassiveOpens", "Tcp:AttemptFails", "Tcp:EstabResets",
	"Tcp:InSegs", "Tcp:OutSegs", "Tcp:RetransSegs", "Tcp:InErrs", "Tcp:OutRsts",
	"Udp:InDatagrams", "Udp:OutDatagrams",
	"TcpExt:TCPPureAcks", "TcpExt:TCPHPAcks", "TcpExt:TCPHPHits", "TcpExt:DelayedACKs",
	"TcpExt:TCPSackRecovery", "TcpExt:TCPRenoRecovery", "TcpExt:TCPSACKReorder",
	"TcpExt:TCPFastRetrans", "TcpExt:TCPSlowStartRetrans", "TcpExt:TCPTimeouts",
	"TcpExt:TCPLossProbes", "TcpExt:TCPLossProbeRecovery", "TcpExt:TCPSackShifted",
	"TcpExt:TCPSackMerged", "TcpExt:TCPSackShiftFallback", "TcpExt:TCPDSACKRecv",
	"TcpExt:TCPDelivered", "TcpExt:TCPOrigDataSent", "TcpExt:TCPAbortOnData", "TcpExt:TCPAbortOnClose",
	"TcpExt:TCPAbortOnTimeout", "TcpExt:PruneCalled", "TcpExt:TCPRcvCollapsed",
	"TcpExt:TCPMemoryPressures", "TcpExt:ListenDrops", "TcpExt:ListenOverflows",
	"TcpExt:TW", "TcpExt:TCPChallengeACK", "TcpExt:TCPOFOQueue", "TcpExt:TCPRcvCoalesce", "TcpExt:TCPBacklogCoalesce",
	"TcpExt:TCPDSACKOldSent", "TcpExt:TCPWantZeroWindowAdv", "TcpExt:TCPToZeroWindowAdv",
	"IpExt:InOctets", "IpExt:OutOctets", "IpExt:InNoECTPkts",
}

// knownCounterDiff says why a counter moves on one side only in this
// transfer. Such a row is reported, not failed; a row listed here that
// agrees is logged (it may agree in some runs: loss is random).
var knownCounterDiff = map[string]string{
	"TcpExt:TCPSackShifted": "the kernel here builds one-segment skbs (gso_max_segs 1, so that the relay " +
		"loses wire segments), so its SACK blocks start and end at skb boundaries and tcp_shift_skb_data " +
		"merges whole skbs (TCPSackMerged); sockfs's skbs are TSO-sized and its impairment loses wire " +
		"segments, so a block often ends inside a multi-segment skb and its head is shifted " +
		"(TCPSackShifted), as Linux's would be (TestEstablishedSackShiftMergesPieces)",
	"TcpExt:TCPBacklogCoalesce": "segments that arrive while a user owns the socket wait on its backlog, " +
		"where tcp_add_backlog merges a pure ACK into the segment after it (so it counts as neither " +
		"TCPPureAcks nor TCPHPAcks): sockfs's readers own theirs for a whole FUSE request, the kernel's " +
		"only inside read(2) (TestLinuxDiffConnectRequestClose: sockfs 3 and 20, exactly the ACKs its " +
		"counts of those lack, the kernel 0)",
	"TcpExt:TCPRcvCoalesce": "the kernel behind the TUN receives each packet in a linear kmalloc'd skb " +
		"(tun_get_user copies it into the head), which tcp_try_coalesce can only copy into a tailroom " +
		"(0-9 times in a 4 MB exchange); sockfs reads its TUN into page fragments, as a NIC's driver " +
		"builds skbs, whose fragments it steals",
}

// chanceCounters count rare events of loss recovery (a tail loss that only
// a probe or the RTO finds, a retransmission in the Loss state) that a
// 4 MiB transfer under random 2% loss meets a few times or not at all, on
// either side: with ~80 losses a run, whether the last packets of a flight
// are among them is chance. Moving on one side only is reported for them,
// not failed (one clean-clone run saw the kernel at TCPTimeouts 2,
// TCPLossProbes 16, TCPSlowStartRetrans 1 and sockfs at 0, 0, 0; the
// branch's own three runs saw all of them agree).
var chanceCounters = map[string]bool{
	"TcpExt:TCPTimeouts": true, "TcpExt:TCPLossProbes": true, "TcpExt:TCPLossProbeRecovery": true,
	"TcpExt:TCPSlowStartRetrans": true, "TcpExt:TCPSpuriousRTOs": true, "TcpExt:TCPLossUndo": true,
	"TcpExt:TCPLostRetransmit": true,
}

// counterRatio is a ratio of counter deltas that must agree within tol
// (relative) between kernel and sockfs.
type counterRatio struct {
	num, den string
	tol      float64
	why      string
}

// counterRatios are the ratios compared over the one-way transfer.
var counterRatios = []counterRatio{
	{"Tcp:OutSegs", "TcpExt:TCPOrigDataSent", 0.25,
		"segments per data segment sent: the same data, the same MSS (GSO counts wire segments)"},
	{"IpExt:OutOctets", "TcpExt:TCPOrigDataSent", 0.25, "bytes per data segment sent"},
	{"TcpExt:TCPDelivered", "TcpExt:TCPOrigDataSent", 0.05,
		"every segment sent is delivered once (plus the SYN and FIN)"},
	{"Tcp:RetransSegs", "Tcp:OutSegs", 0.6,
		"both near the 2% loss, as random loss of ~3000 segments allows (about +-25% at 2 sigma) " +
			"plus the difference in what a lost retransmission costs"},
}

// lossyTransfer sends ctrBytes from side to a kernel peer that reads them
// all, with the side's output impaired, and returns the counters' deltas.
func lossyTransfer(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	return impairedTransfer(t, side, ctrLoss, ctrReorder)
}

// impairedTransfer sends ctrBytes from side to a kernel peer that reads
// them all, with the side's output losing and reordering with these
// probabilities, and returns the counters' deltas.
func impairedTransfer(t *testing.T, side sut, loss, reorder float64) map[string]int64 {
	t.Helper()
	port, got := peerSink(t, side, 90*time.Second)
	if err := side.impairOut(loss, reorder); err != nil {
		t.Fatal(err)
	}
	defer side.impairOut(0, 0)
	tx, before := dialCounted(t, side, port)
	sendToSink(t, side, tx, ctrBytes, got, 5*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // the last ACKs and the FIN's
	return mibDeltas(t, side, before, diffCounters)
}

// sendToSink writes n bytes on tx in 64 KiB writes (pausing for pause
// while the socket is full, for at most 60 s in all), closes it, and
// checks that the peer's sink (peerSink's channel) read all n.
func sendToSink(t *testing.T, side sut, tx tcpSock, n int, got chan int64, pause time.Duration) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for sent, deadline := 0, time.Now().Add(60*time.Second); sent < n; {
		k, err := tx.write(buf[:min(len(buf), n-sent)])
		sent += k
		if errors.Is(err, errWouldBlock) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d bytes sent in 60 s", side.name(), sent, n)
			}
			time.Sleep(pause)
		} else if err != nil {
			t.Fatalf("%s: write: %v", side.name(), err)
		}
	}
	tx.Close()
	if k := <-got; k != int64(n) {
		t.Fatalf("%s: the peer read %d of %d bytes", side.name(), k, n)
	}
}

// mibDeltas reads side's counters again and returns how much each of names
// moved since before. A counter the side does not have fails the test.
func mibDeltas(t *testing.T, side sut, before map[string]int64, names []string) map[string]int64 {
	t.Helper()
	after, err := side.mib()
	if err != nil {
		t.Fatal(err)
	}
	d := map[string]int64{}
	for _, name := range names {
		a, ok := after[name]
		if !ok {
			t.Fatalf("%s has no counter %s", side.name(), name)
		}
		d[name] = a - before[name]
	}
	return d
}

func TestLinuxDiffCounters(t *testing.T) {
	if len(diffCounters) < 40 {
		t.Fatalf("%d counters compared, the issue asks for 40", len(diffCounters))
	}
	// The relay loses whole packets as the kernel's TUN hands them over:
	// a TSO super-packet of up to 45 segments would be one loss. sockfs's
	// impairment sees each wire segment, so the kernel sends them one by
	// one here.
	k, s := startBoth(t, func(k *kernelSUT) {
		k.ns.mustRun(t, "ip", "link", "set", "dev", "ldkern0", "gso_max_segs", "1")
	})
	kd, sd := lossyTransfer(t, k), lossyTransfer(t, s)
	compareCounters(t, kd, sd, counterRatios, nil, fmt.Sprintf("a %d-byte transfer with %.0f%% loss and %.0f%% reordering",
		ctrBytes, 100*ctrLoss, 100*ctrReorder))
}

// counterRole is one way of running a scenario: run measures it on a
// system and returns the counters' deltas; what describes it.
type counterRole struct {
	name string
	run  func(*testing.T, sut) map[string]int64
	what string
}

// compareRoles runs each role on the kernel and on sockfs, in a subtest of
// its name, and compares their counters (compareCounters).
func compareRoles(t *testing.T, k, s sut, roles []counterRole, ratios []counterRatio, chance map[string]string) {
	t.Helper()
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			kd, sd := r.run(t, k), r.run(t, s)
			compareCounters(t, kd, sd, ratios, chance, r.what)
		})
	}
}

// compareCounters compares the deltas of diffCounters over one scenario run
// on the kernel (kd) and on sockfs (sd): a counter that moves on one side
// only fails the test unless knownCounterDiff says why or chanceCounters
// or the scenario's own chance list (counter: why) has it, and each ratio
// must agree within its tolerance. The whole table is logged.
func compareCounters(t *testing.T, kd, sd map[string]int64, ratios []counterRatio, chance map[string]string, scenario string) {
	t.Helper()
	var both, neither, kOnly, sOnly []string
	var rep strings.Builder
	fmt.Fprintf(&rep, "%-32s %10s %10s\n", "counter", "kernel", "sockfs")
	for _, name := range diffCounters {
		km, sm := kd[name] > 0, sd[name] > 0
		fmt.Fprintf(&rep, "%-32s %10d %10d\n", name, kd[name], sd[name])
		switch {
		case km && sm:
			both = append(both, name)
		case !km && !sm:
			neither = append(neither, name)
		case km:
			kOnly = append(kOnly, name)
		default:
			sOnly = append(sOnly, name)
		}
		if here, ok := chance[name]; km != sm && (chanceCounters[name] || ok) {
			if !ok {
				here = "a chance event"
			}
			t.Logf("%s moves on the %s only in this run (kernel %d, sockfs %d): %s",
				name, map[bool]string{true: "kernel", false: "sockfs"}[km], kd[name], sd[name], here)
		} else if why, known := knownCounterDiff[name]; km != sm && !known {
			t.Errorf("%s moves on the %s only (kernel %d, sockfs %d) and knownCounterDiff does not say why",
				name, map[bool]string{true: "kernel", false: "sockfs"}[km], kd[name], sd[name])
		} else if km == sm && known {
			t.Logf("%s agrees in this run (known difference: %s)", name, why)
		}
	}
	for _, r := range ratios {
		kr := float64(kd[r.num]) / float64(max(kd[r.den], 1))
		sr := float64(sd[r.num]) / float64(max(sd[r.den], 1))
		fmt.Fprintf(&rep, "%s / %s: kernel %.3f sockfs %.3f (tolerance %.0f%%)\n", r.num, r.den, kr, sr, 100*r.tol)
		if kr == 0 || sr/kr > 1+r.tol || sr/kr < 1-r.tol {
			t.Errorf("%s / %s: kernel %.3f, sockfs %.3f, beyond %.0f%% (%s)", r.num, r.den, kr, sr, 100*r.tol, r.why)
		}
	}
	sort.Strings(kOnly)
	sort.Strings(sOnly)
	t.Logf("over %s:\n%s"+
		"move in both (%d): %s\nmove in neither (%d): %s\nkernel only (%d): %s\nsockfs only (%d): %s",
		scenario, rep.String(), len(both), strings.Join(both, " "),
		len(neither), strings.Join(neither, " "), len(kOnly), strings.Join(kOnly, " "), len(sOnly), strings.Join(sOnly, " "))
}

// dialCounted reads side's counters, then connects to the peer's port: the
// counters to subtract from the scenario's end.
func dialCounted(t *testing.T, side sut, port int) (tcpSock, map[string]int64) {
	t.Helper()
	before, err := side.mib()
	if err != nil {
		t.Fatal(err)
	}
	c, err := side.tcpDial(port)
	if err != nil {
		t.Fatal(err)
	}
	return c, before
}

// peerConnects listens on side, reads its counters, has the peer connect
// and run talk on its end, and returns side's end of the connection, the
// counters before, a channel with talk's error, and a function that lets
// the peer close (it holds its end open until then: the counters are read
// before the close's race).
func peerConnects(t *testing.T, side sut, talk func(c net.Conn) error) (tcpSock, map[string]int64, chan error, func()) {
	t.Helper()
	l, port, before := listenCounted(t, side)
	defer l.Close()
	done, closeNow := make(chan error, 1), make(chan struct{})
	go func() {
		c, err := peerDial(side.peer(), port)
		if err != nil {
			done <- err
			return
		}
		c.SetDeadline(time.Now().Add(60 * time.Second))
		done <- talk(c)
		<-closeNow
		c.Close()
	}()
	c, err := l.accept(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { close(closeNow) }) }
	t.Cleanup(release)
	return c, before, done, release
}

// listenCounted listens on a fresh port of side and reads its counters.
func listenCounted(t *testing.T, side sut) (tcpListener, int, map[string]int64) {
	t.Helper()
	port := nextPort()
	l, err := side.tcpListen(port)
	if err != nil {
		t.Fatal(err)
	}
	before, err := side.mib()
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return l, port, before
}

// peerServe listens on a fresh port in side's peer namespace and runs serve
// on the first connection, with limit as its deadline; the channel gets
// serve's error (or the accept's, after 10 s).
func peerServe(t *testing.T, side sut, limit time.Duration, serve func(c net.Conn) error) (int, chan error) {
	t.Helper()
	return peerServeN(t, side, 1, limit, serve)
}

// peerServeN is peerServe for n connections one after the other, each
// with limit as its deadline.
func peerServeN(t *testing.T, side sut, n int, limit time.Duration, serve func(c net.Conn) error) (int, chan error) {
	t.Helper()
	port := nextPort()
	l, err := peerListen(side.peer(), port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	done := make(chan error, 1)
	go func() {
		l.SetDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < n; i++ {
			c, err := l.Accept()
			if err == nil {
				c.SetDeadline(time.Now().Add(limit))
				err = serve(c)
				c.Close()
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return port, done
}

// peerSink listens on a fresh port in side's peer namespace and reads the
// first call to its end within limit; the channel gets the byte count (-1:
// no call within 10 s). The listener closes with the test.
func peerSink(t *testing.T, side sut, limit time.Duration) (int, chan int64) {
	t.Helper()
	got := make(chan int64, 1)
	port, done := peerServe(t, side, limit, func(c net.Conn) error {
		n, _ := io.Copy(io.Discard, c)
		got <- n
		return nil
	})
	go func() {
		if err := <-done; err != nil { // no call: serve did not run
			got <- -1
		}
	}()
	return port, got
}

// writeAll writes p on c, retrying while the socket is full.
func writeAll(t *testing.T, side sut, c tcpSock, p []byte) {
	t.Helper()
	for sent, deadline := 0, time.Now().Add(10*time.Second); sent < len(p); {
		k, err := c.write(p[sent:])
		sent += k
		if err != nil && !errors.Is(err, errWouldBlock) {
			t.Fatalf("%s: write: %v", side.name(), err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d B written in 10 s", side.name(), sent, len(p))
		}
	}
}

// readN reads n bytes from c.
func readN(t *testing.T, side sut, c tcpSock, n int) {
	t.Helper()
	buf := make([]byte, n)
	for got, deadline := 0, time.Now().Add(10*time.Second); got < n; {
		k, err := c.read(buf[got:])
		got += k
		if err != nil && !errors.Is(err, errWouldBlock) {
			t.Fatalf("%s: read: %v", side.name(), err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d B read in 10 s", side.name(), got, n)
		}
		if k == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// readEOF reads c until the end of the stream (the peer's FIN), for at
// most 5 s; data before it is not expected.
func readEOF(t *testing.T, side sut, c tcpSock) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := c.read(make([]byte, 1)); errors.Is(err, io.EOF) {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s: no end of stream in 5 s: %v", side.name(), err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
