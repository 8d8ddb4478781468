package linuxdiff

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiveAutotune: the kernel peer sends 64 MiB over the sub-millisecond
// path (no impairment) to a socket of each side that reads as fast as it
// can, and the receiver's view is taken once everything has arrived. With
// millisecond timestamps nearly every TSecr is echoed within its own
// tick; Linux 6.16 and later take no RTT sample from a 0 ms delta
// (tcp_rcv_rtt_measure_ts), so the estimate comes from the window-based
// samples of tcp_rcv_rtt_measure and is the path's tens to hundreds of
// microseconds (or the relay's milliseconds). sockfs used to count such a
// delta as 1 us: its rcv_rtt was 1, DRS (tcp_rcv_space_adjust) measured "one RTT" of copying on every
// read, and rcvbuf stayed near what one read takes.
func receiveAutotune(t *testing.T, sides [2]sut, rs *rowSet) {
	var got [2]tcpSample
	var rmem1 [2]int
	for j, side := range sides {
		v, err := side.sysctl("ipv4/tcp_rmem", "")
		if err == nil {
			if f := strings.Fields(v); len(f) == 3 {
				rmem1[j], err = strconv.Atoi(f[1])
			} else {
				err = fmt.Errorf("tcp_rmem %q", v)
			}
		}
		if err == nil {
			got[j], err = bulkReceive(side, nextPort(), 64<<20, 30*time.Second)
		}
		if err != nil {
			t.Fatalf("%s: %v", side.name(), err)
		}
	}
	k, s := got[0], got[1]
	// The two paths differ (the kernel's crosses the test's relay, which
	// under -race adds milliseconds), so the row compares what the
	// estimate is made of: a measured path, or 0 ms deltas counted as 1 us.
	band := func(us int) string {
		if us < 10 {
			return "under 10 us"
		}
		return "10 us or more"
	}
	rs.judge("bulk receive: rcv_rtt (us) after 64 MiB", fmt.Sprintf("%d (%s)", k.rcvRtt, band(k.rcvRtt)),
		fmt.Sprintf("%d (%s)", s.rcvRtt, band(s.rcvRtt)), band(k.rcvRtt) == band(s.rcvRtt), "same side of 10 us")
	grown := func(rb, rmem1 int) string {
		if rb >= 4*rmem1 {
			return "at least 4x tcp_rmem[1]"
		}
		return "under 4x tcp_rmem[1]"
	}
	rs.judge("bulk receive: rb (rcvbuf) after 64 MiB", fmt.Sprintf("%d (%s)", k.rb, grown(k.rb, rmem1[0])),
		fmt.Sprintf("%d (%s)", s.rb, grown(s.rb, rmem1[1])), grown(k.rb, rmem1[0]) == grown(s.rb, rmem1[1]), "same side of 4x tcp_rmem[1]")
}

// bulkReceive has the kernel peer send n bytes to a fresh socket of side,
// reads them all (polling: every 20 us while nothing is queued) and returns
// the socket's sample taken once the last byte was read, before the peer
// closes.
func bulkReceive(side sut, port, n int, limit time.Duration) (tcpSample, error) {
	l, err := side.tcpListen(port)
	if err != nil {
		return tcpSample{}, err
	}
	defer l.Close()
	tx, err := peerDial(side.peer(), port)
	if err != nil {
		return tcpSample{}, err
	}
	rx, err := l.accept(10 * time.Second)
	if err != nil {
		tx.Close()
		return tcpSample{}, err
	}
	defer rx.Close()
	sent := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		tx.SetWriteDeadline(time.Now().Add(limit))
		for left := n; left > 0; left -= len(buf) {
			if _, err := tx.Write(buf[:min(left, len(buf))]); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	defer func() { tx.Close(); <-sent }()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(limit)
	for total := 0; total < n; {
		k, err := rx.read(buf)
		total += k
		switch {
		case errors.Is(err, errWouldBlock):
			if time.Now().After(deadline) {
				return tcpSample{}, fmt.Errorf("%d of %d B in %v", total, n, limit)
			}
			time.Sleep(20 * time.Microsecond)
		case err == io.EOF:
			return tcpSample{}, fmt.Errorf("end of stream after %d of %d B", total, n)
		case err != nil:
			return tcpSample{}, err
		}
	}
	return rx.info()
}
