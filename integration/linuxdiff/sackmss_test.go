package linuxdiff

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// Both ends of one connection send 4 MB to each other at once over a link
// that loses 2% each way, on the kernel behind a TUN and on sockfs. Each
// then sends and retransmits data while it holds out-of-order data, so its
// segments carry SACK blocks, and tcp_current_mss must take their size off
// the MSS: IP must fragment or drop none of its TCP segments. sockfs did
// not (it built MSS-sized segments 12-28 bytes over the MTU, which IP
// dropped as IpFragFails: TestKernel200ConcurrentEcho under -race); the
// kernel is the reference that this scenario does exercise SACK recovery
// and still fragments nothing. The counters of TestLinuxDiffCounters are
// compared over this exchange too, as there (compareCounters): loss
// recovery while receiving, and data carrying the ACKs, are what the
// one-way transfer does not exercise.
func TestLinuxDiffSackMss(t *testing.T) {
	// The relay loses whole packets as the TUNs hand them over; with TSO a
	// super-packet of up to 45 segments would be one loss, where sockfs's
	// impairment loses wire segments. Both kernels send segment by segment.
	k, s := startBoth(t, func(k *kernelSUT) {
		k.ns.mustRun(t, "ip", "link", "set", "dev", "ldkern0", "gso_max_segs", "1")
		k.peerNs.mustRun(t, "ip", "link", "set", "dev", "ldpeer0", "gso_max_segs", "1")
	})
	const loss = 0.02
	deltas := map[string]map[string]int64{}
	for _, side := range []sut{k, s} {
		d := bidirLossy(t, side, bidirBytes, loss)
		deltas[side.name()] = d
		for _, c := range []string{"Ip:FragCreates", "Ip:FragFails"} {
			if d[c] != 0 {
				t.Errorf("%s: %s %d: TCP segments built over the MTU", side.name(), c, d[c])
			}
		}
		for _, c := range []string{"TcpExt:TCPOFOQueue", "Tcp:RetransSegs"} {
			if d[c] == 0 {
				t.Errorf("%s: %s did not move: the scenario did not exercise SACK recovery both ways", side.name(), c)
			}
		}
	}
	compareCounters(t, deltas[k.name()], deltas[s.name()], bidirRatios, bidirChance,
		fmt.Sprintf("%d bytes each way at once with %.0f%% loss each way", bidirBytes, 100*loss))
}

const bidirBytes = 4 << 20

// bidirChance are counters that moved on either side alone from run to run
// of the exchange (eleven runs of each, 2026-12-06), for the reason given.
var bidirChance = map[string]string{
	"TcpExt:TCPWantZeroWindowAdv": "the test's loop reads only between its writes: whether a receive queue " +
		"nears rcvbuf depends on its pace (kernel 0-63, sockfs 0-31)",
	"TcpExt:PruneCalled":        "likewise (kernel 1 in one run)",
	"TcpExt:TCPToZeroWindowAdv": "likewise (sockfs 1 in one run)",
	"TcpExt:TCPHPAcks": "a pure ACK takes the fast path only while header prediction is on, which a " +
		"receive queue at rcvbuf at the last tcp_fast_path_check keeps off: the reader's pace again " +
		"(kernel 0-186, sockfs 129-261)",
	"TcpExt:DelayedACKs": "a delayed ACK's timer fires only when no data or read sent the ACK first " +
		"(kernel 1-3 in four runs, sockfs 0)",
	"TcpExt:TCPDSACKOldSent": "a duplicate arrives only after a spurious retransmission (kernel 1 in two runs)",
	"TcpExt:TCPDSACKRecv":    "the peer reports one only after a spurious retransmission (sockfs 1-2 in two runs)",
}

// bidirRatios are the ratios compared over the exchange both ways.
var bidirRatios = []counterRatio{
	{"TcpExt:TCPDelivered", "TcpExt:TCPOrigDataSent", 0.05,
		"every segment sent is delivered once (plus the SYN and FIN)"},
	{"Tcp:OutSegs", "TcpExt:TCPOrigDataSent", 0.25,
		"segments per data segment sent: data carries the ACKs both ways, pure ACKs as the ACK policy sends them"},
	{"Tcp:RetransSegs", "TcpExt:TCPOrigDataSent", 0.6,
		"both near the 2% loss, as random loss allows"},
}

// bidirLossy runs the exchange on side and returns the deltas of
// diffCounters and Ip:FragFails.
func bidirLossy(t *testing.T, side sut, n int, loss float64) map[string]int64 {
	t.Helper()
	port, peerDone := peerServe(t, side, 60*time.Second, func(c net.Conn) error {
		wrote := make(chan error, 1) // write n bytes and read n, at once
		go func() {
			_, err := c.Write(make([]byte, n))
			wrote <- err
		}()
		got, err := io.CopyN(io.Discard, c, int64(n))
		if werr := <-wrote; err == nil {
			err = werr
		}
		if err == nil && got != int64(n) {
			err = fmt.Errorf("peer read %d of %d B", got, n)
		}
		return err
	})
	before, err := side.mib()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { return side.impairOut(loss, 0) },
		func() error { return side.impairInLoss(loss) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	defer side.impairOut(0, 0)
	defer side.impairInLoss(0)
	c, err := side.tcpDial(port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, in := make([]byte, 64<<10), make([]byte, 256<<10)
	sent, got := 0, 0
	for deadline := time.Now().Add(60 * time.Second); sent < n || got < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: sent %d and received %d of %d B in 60 s", side.name(), sent, got, n)
		}
		idle := true
		if sent < n {
			k, err := c.write(out[:min(len(out), n-sent)])
			sent += k
			if err != nil && !errors.Is(err, errWouldBlock) {
				t.Fatalf("%s: write: %v", side.name(), err)
			}
			idle = idle && k == 0
		}
		if got < n { // past n the peer may have closed: EOF
			k, err := c.read(in)
			got += k
			if err != nil && !errors.Is(err, errWouldBlock) {
				t.Fatalf("%s: read after %d B: %v", side.name(), got, err)
			}
			idle = idle && k == 0
		}
		if idle {
			time.Sleep(200 * time.Microsecond)
		}
	}
	if err := <-peerDone; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	return mibDeltas(t, side, before, append([]string{"Ip:FragFails"}, diffCounters...))
}
