package netstack

import (
	"context"
	"testing"
	"time"
)

// tcp_tso_should_defer in slow start on a 10 ms path: each ACK of one
// segment opens cwnd by one, and with the write queue's skbs two segments
// long each ACK first sends two (an skb that will get no more data goes
// whole). Once the queue's next skb is longer than the room, the room is
// under a third of cwnd and the head's ACK is due (it was sent a round
// trip ago), the skb waits for that ACK instead of leaving cut to the
// room: after the sixth ACK nothing is sent, and the seventh sends three
// segments at once. Without the deferral every ACK sends two.
func TestTSODeferWaitsForTheNextACK(t *testing.T) {
	const rtt = 10 * time.Millisecond
	c, base := rackEstablishedRTT(t, "1", rtt)
	if _, err := c.tp.Send(context.Background(), make([]byte, 100*1460)); err != nil {
		t.Fatal(err)
	}
	sent := func() int {
		n := 0
		for {
			s, _, ok := c.take()
			if !ok {
				return n / 1460
			}
			n += len(s.payload)
		}
	}
	if n := sent(); n != 10 {
		t.Fatalf("initial window: %d segments, want 10", n)
	}
	c.clk.Advance(rtt)
	var got []int
	for i := 1; i <= 7; i++ {
		c.send(seg{seq: 1001, ack: base + uint32(i)*1460, flags: fAck, win: 65535})
		got = append(got, sent())
		c.clk.Advance(100 * time.Microsecond)
	}
	want := []int{2, 2, 2, 2, 2, 0, 3}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("segments sent after each ACK: %v, want %v", got, want)
		}
	}
	c.tp.lockSock()
	defer c.tp.releaseSock()
	if !c.tp.cwndLimited {
		t.Fatal("a skb that waited for cwnd did not count as cwnd-limited")
	}
}
