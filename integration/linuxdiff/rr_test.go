package linuxdiff

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Request/response, the interactive case of the ACK policy: the system
// under test sends rrRounds requests of rrSize bytes to a kernel peer that
// answers each with as many, reading each answer before the next request,
// over a clean link, on the kernel behind a TUN and on sockfs. What the
// counters show is how the receiving side acknowledges small pushed
// segments: Linux enters ping-pong mode after the first exchange
// (tcp_event_data_sent, tcp_pingpong_thresh), delays the ACK of each
// answer, and sends it on the next request; a read that empties the
// queue ACKs at once only outside ping-pong mode (tcp_cleanup_rbuf,
// ICSK_ACK_PUSHED). A side that sent a pure ACK per answer, or waited for
// its delayed-ACK timer, shows it in Tcp:OutSegs and DelayedACKs.
const (
	rrRounds = 300
	rrSize   = 100
)

func TestLinuxDiffRequestResponse(t *testing.T) {
	k, s := startBoth(t, nil)
	deltas := map[string]map[string]int64{}
	for _, side := range []sut{k, s} {
		deltas[side.name()] = requestResponse(t, side)
	}
	compareCounters(t, deltas[k.name()], deltas[s.name()], rrRatios, nil,
		"300 requests and answers of 100 bytes, each answer read before the next request")
}

// rrRatios: with the ACKs riding on the requests, one segment goes out per
// request (plus the handshake's and the close's) on both.
var rrRatios = []counterRatio{
	{"Tcp:OutSegs", "TcpExt:TCPOrigDataSent", 0.1,
		"segments sent per request: the ACK of each answer rides on the next request"},
	{"Tcp:InSegs", "TcpExt:TCPOrigDataSent", 0.1,
		"segments received per request: the answer carries the ACK of the request"},
}

// requestResponse runs the exchange on side and returns the deltas of
// diffCounters.
func requestResponse(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	port, peerDone := peerServe(t, side, 60*time.Second, func(c net.Conn) error {
		buf := make([]byte, rrSize) // answer each request with as many bytes
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
	})
	c, before := dialCounted(t, side, port)
	req, in := make([]byte, rrSize), make([]byte, rrSize)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < rrRounds; i++ {
		for sent := 0; sent < rrSize; {
			k, err := c.write(req[sent:])
			sent += k
			if err != nil && !errors.Is(err, errWouldBlock) {
				t.Fatalf("%s: request %d: write: %v", side.name(), i, err)
			}
		}
		for got := 0; got < rrSize; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d exchanges in 60 s", side.name(), i, rrRounds)
			}
			k, err := c.read(in[got:])
			got += k
			if err != nil && !errors.Is(err, errWouldBlock) {
				t.Fatalf("%s: answer %d: read: %v", side.name(), i, err)
			}
			if k == 0 {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	c.Close()
	if err := <-peerDone; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	time.Sleep(300 * time.Millisecond) // the FINs and their ACKs
	after, err := side.mib()
	if err != nil {
		t.Fatal(err)
	}
	d := map[string]int64{}
	for _, name := range diffCounters {
		d[name] = after[name] - before[name]
	}
	return d
}
