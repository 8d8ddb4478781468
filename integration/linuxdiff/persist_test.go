package linuxdiff

import (
	"errors"
	"net"
	"testing"
	"time"
)

// A receiver that never reads: the system writes to a kernel peer whose
// application reads nothing until the peer's window closes, then keeps
// the connection for 2.5 s. The system's persist timer sends zero-window
// probes backing off from the RTO (tcp_probe_timer, tcp_send_probe0;
// TCPWinProbe counts them: at about 0.2, 0.6 and 1.4 s after the window
// closed), on the kernel and on sockfs. It found zero-window probes left
// out of sockfs's Tcp:OutSegs (81 against 78 here: controlSkb).
//
// A difference found and explained by packet captures on both TUNs (one
// run of each, session 16): sockfs sends a second tail loss probe, a
// retransmission the peer reports as a duplicate (DSACK), where the kernel
// sends one (TCPLossProbes 2 against 1 in ten runs of thirteen,
// Tcp:RetransSegs and TCPDSACKRecv 1 against 0 in eight runs of nine
// before the fixes named below, four of five after). What differs is the
// timing of the first flight, not the probe logic. The kernel sent its
// first two TSO skbs (10 segments) before the peer's first ACK arrived;
// sockfs sent them with that ACK between them (its writer goes through a
// FUSE WRITE, which is slower), and tcp_is_cwnd_limited then let slow
// start grow cwnd less (30 segments after the first round trip against
// the kernel's 42), as Linux's would with that timing. The peer's window then closes on other boundaries.
// The kernel's first probe (new data) was answered with a window of 1 KiB,
// less than an MSS, so it waited for the persist timer. sockfs's was
// answered with 18 KiB, which it filled, ending in a 1056-byte segment the
// peer acknowledged late (a delayed ACK, since its window was shrinking),
// and the second probe retransmitted that segment, as
// tcp_send_loss_probe does when the send head is beyond the window. The
// same captures led to two fixes that did not change this count:
// tcp_process_tlp_ack's episode rules (TestLossProbe*) and Linux 6.x's
// probe timeout (TestLossProbeTimeout).
func TestLinuxDiffZeroWindowProbes(t *testing.T) {
	k, s := startBoth(t, nil)
	secondProbe := "sockfs's second tail loss probe (one retransmission, DSACKed), the kernel's one, " +
		"in twelve runs of fourteen: sockfs's first flight, timed otherwise, leaves the peer's window open " +
		"by 18 KiB where the kernel's leaves 1 KiB (see the comment above)"
	compareRoles(t, k, s, []counterRole{
		{"2.5s", zeroWindowProbes, "the peer reads nothing; the system fills its window and waits 2.5 s"},
	}, []counterRatio{
		{"Tcp:OutSegs", "TcpExt:TCPOrigDataSent", 0.05, "segments per data segment sent, the probes included"},
	}, map[string]string{"Tcp:RetransSegs": secondProbe, "TcpExt:TCPDSACKRecv": secondProbe})
}

func zeroWindowProbes(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	hold := make(chan struct{})
	port, peerDone := peerServe(t, side, 20*time.Second, func(c net.Conn) error {
		<-hold // read nothing until the system is done
		return nil
	})
	defer func() { close(hold); <-peerDone }()
	c, before := dialCounted(t, side, port)
	defer c.Close()
	buf := make([]byte, 64<<10)
	// Write until the socket has been full for 300 ms: the peer's window
	// is closed and the system's send queue full by then.
	var full time.Time
	for deadline := time.Now().Add(20 * time.Second); ; {
		k, err := c.write(buf)
		switch {
		case errors.Is(err, errWouldBlock) && k == 0:
			if full.IsZero() {
				full = time.Now()
			} else if time.Since(full) > 300*time.Millisecond {
				goto closed
			}
			time.Sleep(time.Millisecond)
		case err != nil && !errors.Is(err, errWouldBlock):
			t.Fatalf("%s: write: %v", side.name(), err)
		default:
			full = time.Time{}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the socket never stayed full", side.name())
		}
	}
closed:
	time.Sleep(2200 * time.Millisecond)
	d := mibDeltas(t, side, before, append([]string{"TcpExt:TCPWinProbe"}, diffCounters...))
	t.Logf("%s: TCPWinProbe %d, Tcp:OutSegs %d", side.name(), d["TcpExt:TCPWinProbe"], d["Tcp:OutSegs"])
	return d
}
