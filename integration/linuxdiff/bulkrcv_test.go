package linuxdiff

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A bulk receive, segment by segment: a kernel peer sends 16 MB to the
// system under test, which reads all the time, over a clean link. The
// receiver's ACK policy is what the counters show: an ACK for every
// second full segment (__tcp_ack_snd_check), quick ACKs at the start,
// window updates after reads (tcp_cleanup_rbuf), delayed ACKs only when a
// segment is left alone. Both receivers get wire-sized segments: the
// kernel behind its TUN (the relay hands packets over one by one, the
// peer sends with gso_max_segs 1), sockfs with --offload=false, so the
// kernel hands it one MTU-sized packet per read and no GRO merges them.
//
// The ACKs per segment received are not compared: they move with how the
// reads interleave with arrivals on both (three runs: kernel 0.097-0.183,
// sockfs 0.075-0.212), the kernel's from segments coalesced in the socket's
// backlog while the reader owns it (tcp_add_backlog), sockfs's also from
// ACKs held to the end of a device's receive batch (rxBatch, a deviation
// on purpose). What is compared is which counters move.
func TestLinuxDiffBulkReceive(t *testing.T) {
	k, s := startBoth(t, func(k *kernelSUT) {
		k.peerNs.mustRun(t, "ip", "link", "set", "dev", "ldpeer0", "gso_max_segs", "1")
	}, "--offload=false")
	kd, sd := bulkReceiveCounted(t, k), bulkReceiveCounted(t, s)
	compareCounters(t, kd, sd, nil, bulkRcvChance,
		"16 MB from the kernel peer, read all the time, wire-sized segments on both")
}

const bulkRcvBytes = 16 << 20

var bulkRcvChance = map[string]string{
	"TcpExt:TCPOFOQueue": "segments arrive out of order on this clean link when the peer's kernel " +
		"transmits from both CPUs at once (its softirq and its writer): kernel 0-970, sockfs 137-909 " +
		"in six runs, on one side only in one of them",
	"TcpExt:TCPWantZeroWindowAdv": "a receive queue nears rcvbuf only when the reader falls behind: " +
		"sockfs 19 in one of three runs (its reads cross FUSE), the kernel 0",
	"TcpExt:PruneCalled": "likewise: sockfs 2 in a clean-clone run under -race, where its reader fell behind",
	"TcpExt:TCPToZeroWindowAdv": "likewise, a reader so far behind that the window closed: sockfs 2 in a " +
		"clean-clone run under -race while other tests ran on the machine (session 16), the kernel 0",
	"TcpExt:TCPRcvCollapsed": "likewise: tcp_prune_queue collapses the receive queue (tcp_collapse) when " +
		"the reader falls behind; not seen on either side in this scenario yet, listed with PruneCalled",
	"TcpExt:TCPDSACKOldSent": "a segment the peer resent after the receiver fell behind (its ACKs late): " +
		"sockfs 1, with PruneCalled 2, in a clean-clone run under -race (session 16), the kernel 0",
	"TcpExt:DelayedACKs": "a lone segment waits for the delayed-ACK timer only when no read or next " +
		"segment sends the ACK first: sockfs 1 in that run",
}

// bulkReceiveCounted has the peer connect to side and send bulkRcvBytes,
// which side reads as they come; it returns the counters' deltas, read
// before either end closes.
func bulkReceiveCounted(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	rx, before, sent, peerClose := peerConnects(t, side, func(c net.Conn) error {
		_, err := c.Write(make([]byte, bulkRcvBytes))
		return err
	})
	defer rx.Close()
	buf := make([]byte, 256<<10)
	for total, deadline := 0, time.Now().Add(60*time.Second); total < bulkRcvBytes; {
		k, err := rx.read(buf)
		total += k
		switch {
		case errors.Is(err, errWouldBlock):
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d B in 60 s", side.name(), total, bulkRcvBytes)
			}
			time.Sleep(20 * time.Microsecond)
		case err == io.EOF:
			t.Fatalf("%s: end of stream after %d of %d B", side.name(), total, bulkRcvBytes)
		case err != nil:
			t.Fatalf("%s: read: %v", side.name(), err)
		}
	}
	if err := <-sent; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	d := rrSettled(t, side, before)
	peerClose()
	return d
}
