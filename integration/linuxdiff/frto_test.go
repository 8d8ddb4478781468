package linuxdiff

import (
	"errors"
	"testing"
	"time"
)

// A spurious timeout, on the kernel behind a TUN and on sockfs, against the
// same kernel peer: the system under test streams to the peer, then every
// ACK coming back is held 800 ms (the relay's delay line, sockfs's `in
// delay`; both keep the order) for 1.5 s. The RTO fires long before the
// held ACKs arrive; they acknowledge the original segments, not the
// retransmission. Without timestamps only F-RTO (RFC 5682,
// tcp_process_loss) can tell: the timeout must be undone as spurious on
// both sides (TCPSpuriousRTOs, TCPLossUndo), and with tcp_frto 0 on
// neither.

// spuriousRTO runs the scenario on side with tcp_frto set to frto and
// returns the counters' deltas.
func spuriousRTO(t *testing.T, side sut, frto string) map[string]int64 {
	t.Helper()
	for path, val := range map[string]string{"ipv4/tcp_timestamps": "0", "ipv4/tcp_frto": frto} {
		old, err := side.sysctl(path, val)
		if err != nil {
			t.Fatalf("%s: %s: %v", side.name(), path, err)
		}
		t.Cleanup(func() { side.sysctl(path, old) })
	}
	port, got := peerSink(t, side, 30*time.Second)
	tx, before := dialCounted(t, side, port)
	buf := make([]byte, 16<<10)
	start, sent := time.Now(), int64(0)
	held, released := false, false
	defer side.impairIn(0)
	for el := time.Duration(0); el < 3*time.Second; el = time.Since(start) {
		switch {
		case !held && el > 500*time.Millisecond:
			held = true
			if err := side.impairIn(800 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
		case !released && el > 2*time.Second:
			released = true
			if err := side.impairIn(0); err != nil {
				t.Fatal(err)
			}
		}
		n, err := tx.write(buf)
		sent += int64(n)
		if errors.Is(err, errWouldBlock) {
			time.Sleep(2 * time.Millisecond)
		} else if err != nil {
			t.Fatalf("%s: write: %v", side.name(), err)
		}
	}
	tx.Close()
	if n := <-got; n != sent {
		t.Fatalf("%s: the peer read %d of %d bytes", side.name(), n, sent)
	}
	d := mibDeltas(t, side, before, []string{"TcpExt:TCPTimeouts", "TcpExt:TCPSpuriousRTOs", "TcpExt:TCPLossUndo", "Tcp:RetransSegs"})
	t.Logf("%s, tcp_frto %s: %d bytes; %v", side.name(), frto, sent, d)
	return d
}

func TestLinuxDiffSpuriousRTO(t *testing.T) {
	k, s := startBoth(t, nil)
	for _, side := range []sut{k, s} {
		on, off := spuriousRTO(t, side, "2"), spuriousRTO(t, side, "0")
		if on["TcpExt:TCPTimeouts"] == 0 || off["TcpExt:TCPTimeouts"] == 0 {
			t.Fatalf("%s: no RTO (%v, %v): the scenario did not happen", side.name(), on, off)
		}
		if on["TcpExt:TCPSpuriousRTOs"] == 0 || on["TcpExt:TCPLossUndo"] == 0 {
			t.Errorf("%s, tcp_frto 2: the timeout was not undone as spurious: %v", side.name(), on)
		}
		if off["TcpExt:TCPSpuriousRTOs"] != 0 || off["TcpExt:TCPLossUndo"] != 0 {
			t.Errorf("%s, tcp_frto 0: undone without F-RTO and timestamps: %v", side.name(), off)
		}
	}
}
