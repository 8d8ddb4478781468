package netstack

import (
	"bytes"
	"context"
	"testing"
)

// TestSendNoPushQueuesUntilPush: SendNoPush queues and charges the data as
// Send does but hands the device nothing; Push then sends all of it, PSH on
// its last segment, as Send would have at once.
func TestSendNoPushQueuesUntilPush(t *testing.T) {
	c := newEstablished(t)
	data := bytes.Repeat([]byte("x"), 3000)
	n, err := c.tp.SendNoPush(context.Background(), data)
	if n != len(data) || err != nil {
		t.Fatalf("SendNoPush = %d, %v", n, err)
	}
	c.expectNone()
	if q := c.tp.sk.WmemQueued(); q < len(data) {
		t.Fatalf("wmem_queued %d after queueing %d bytes", q, len(data))
	}
	c.tp.Push()
	sent, last := 0, seg{}
	for {
		g, _, ok := c.take()
		if !ok {
			break
		}
		if g.seq != c.iss+1+uint32(sent) {
			t.Fatalf("segment %v: want seq %d", g, c.iss+1+uint32(sent))
		}
		sent += len(g.payload)
		last = g
	}
	if sent != len(data) || last.flags&fPsh == 0 {
		t.Fatalf("Push sent %d bytes, last segment %v; want %d, PSH", sent, last, len(data))
	}
	c.tp.Push() // nothing left: nothing sent
	c.expectNone()
}

// TestSendPushesInline: Send, by contrast, has sent the data when it
// returns (the behaviour SendNoPush leaves out).
func TestSendPushesInline(t *testing.T) {
	c := newEstablished(t)
	if n, err := c.tp.Send(context.Background(), []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	c.expect(seg{seq: c.iss + 1, ack: c.peerIS + 1, flags: fAck | fPsh, payload: "hello"})
}
