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
// A difference found and not explained: sockfs sends a second tail loss
// probe, a retransmission the peer reports as a duplicate (DSACK), where
// the kernel sends one (TCPLossProbes 2 against 1 in eight runs of nine,
// Tcp:RetransSegs and TCPDSACKRecv 1 against 0). It is reported, not
// failed, until it is understood.
func TestLinuxDiffZeroWindowProbes(t *testing.T) {
	k, s := startBoth(t, nil)
	secondProbe := "not chance: sockfs's second tail loss probe (one retransmission, DSACKed), " +
		"the kernel's one, in eight runs of nine; not explained"
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
