package netstack

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"

	"sockfs/skb"
)

// pagesOf puts data into fresh pages, from the first page's start.
func pagesOf(data []byte) []*skb.Page {
	var pages []*skb.Page
	for len(data) > 0 || pages == nil {
		pg := skb.NewPage()
		data = data[copy(pg.Buf, data):]
		pages = append(pages, pg)
	}
	return pages
}

func patternedBytes(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

// writeQueueData is the data on tp's write queue.
func writeQueueData(tp *TCPSock) []byte {
	var data []byte
	for b := tp.writeQueue.Peek(); b != nil; b = b.Next() {
		p := make([]byte, b.Len())
		b.CopyBits(0, p)
		data = append(data, p...)
	}
	return data
}

// zeroWindow makes the peer advertise a zero window, so that what tp is
// given stays on its write queue.
func zeroWindow(c *script) {
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck, win: 0, checkWin: true})
}

// SendPages queues what Send queues for the same bytes, charged the same
// (wmem_queued, forward_alloc: the bytes, not the pages' size), in as many
// skbs, stopped by the send buffer at the same byte, and its fragments are
// the caller's pages themselves, each holding a reference of its own.
func TestTCPSendPagesAccountsAsSend(t *testing.T) {
	for _, tc := range []struct{ off, size int }{{0, 1000}, {0, 40000}, {5000, 60000}, {0, 300000}} {
		data := patternedBytes(tc.off + tc.size)
		ca := newEstablished(t)
		zeroWindow(ca)
		a := ca.tp
		na, erra := a.Send(context.Background(), data[tc.off:])
		cb := newEstablished(t)
		zeroWindow(cb)
		b := cb.tp
		pages := pagesOf(data)
		nb, errb := b.SendPages(context.Background(), pages, tc.off, tc.size, true)
		if na != nb || (erra == nil) != (errb == nil) {
			t.Fatalf("%+v: Send %d, %v; SendPages %d, %v", tc, na, erra, nb, errb)
		}
		if tc.size > 100000 && nb == tc.size {
			t.Fatalf("%+v: all queued: the send buffer should have stopped it", tc)
		}
		if got := writeQueueData(b); !bytes.Equal(got, data[tc.off:tc.off+nb]) {
			t.Fatalf("%+v: write queue holds %d bytes, not the %d given", tc, len(got), nb)
		}
		ma, mb := a.Mem(), b.Mem()
		if ma.WmemQueued() != mb.WmemQueued() || ma.ForwardAlloc() != mb.ForwardAlloc() ||
			a.writeQueue.Len() != b.writeQueue.Len() {
			t.Fatalf("%+v: Send w%d f%d %d skbs; SendPages w%d f%d %d skbs", tc,
				ma.WmemQueued(), ma.ForwardAlloc(), a.writeQueue.Len(),
				mb.WmemQueued(), mb.ForwardAlloc(), b.writeQueue.Len())
		}
		// Every fragment points into the caller's pages, and every page
		// that holds queued bytes is referenced by the queue.
		refs := map[*skb.Page]int{}
		for s := b.writeQueue.Peek(); s != nil; s = s.Next() {
			for i := range s.NrFrags() {
				refs[s.Frag(i).Page]++
			}
		}
		for pg := range refs {
			found := false
			for _, mine := range pages {
				found = found || pg == mine
			}
			if !found {
				t.Fatalf("%+v: a fragment is in a page that is not the caller's: the data was copied", tc)
			}
		}
		first, last := tc.off/skb.PageFragSize, (tc.off+nb-1)/skb.PageFragSize
		for i, pg := range pages {
			want := 1 + refs[pg]
			if i >= first && i <= last && refs[pg] == 0 {
				t.Fatalf("%+v: page %d holds queued bytes but no fragment references it", tc, i)
			}
			if pg.Refs() != want {
				t.Fatalf("%+v: page %d has %d references, want the caller's and the queue's %d", tc, i, pg.Refs(), want)
			}
		}
		// The socket gives its references back when it goes; the
		// caller's stay.
		b.Abort()
		for i, pg := range pages {
			if pg.Refs() != 1 {
				t.Fatalf("%+v: page %d has %d references after the socket went, want the caller's 1", tc, i, pg.Refs())
			}
			pg.Put()
		}
	}
}

// The data reaches the peer as given, and once the peer acknowledges it
// the pages are the caller's alone again.
func TestTCPSendPagesOnTheWire(t *testing.T) {
	c := newEstablished(t)
	data := patternedBytes(20000)
	pages := pagesOf(data)
	defer func() {
		for _, pg := range pages {
			pg.Put()
		}
	}()
	n, err := c.tp.SendPages(context.Background(), pages, 0, len(data), true)
	if n != len(data) || err != nil {
		t.Fatalf("SendPages %d, %v", n, err)
	}
	// The initial window takes 10 segments: the peer acknowledges what
	// it got until all is there.
	var got []byte
	for len(got) < len(data) {
		before := len(got)
		for {
			sg, _, ok := c.take()
			if !ok {
				break
			}
			got = append(got, sg.payload...)
		}
		if len(got) == before {
			break
		}
		if pages[0].Refs() < 2 {
			t.Fatalf("page referenced %d times before the ACK: the sent data should still be held for retransmission", pages[0].Refs())
		}
		c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1 + uint32(len(got)), flags: fAck})
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("peer got %d bytes, not the %d sent in order", len(got), len(data))
	}
	if r := pages[0].Refs(); r != 1 {
		t.Fatalf("page referenced %d times after the ACK, want the caller's 1", r)
	}
}

// A range outside the pages is EINVAL and queues nothing.
func TestTCPSendPagesRange(t *testing.T) {
	c := newEstablished(t)
	pages := pagesOf(make([]byte, 100))
	defer pages[0].Put()
	w0 := c.tp.Mem().WmemQueued()
	for _, r := range [][2]int{{-1, 10}, {0, skb.PageFragSize + 1}, {skb.PageFragSize, 1}, {0, -1}} {
		if n, err := c.tp.SendPages(context.Background(), pages, r[0], r[1], true); n != 0 || !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("SendPages off %d n %d: %d, %v; want EINVAL", r[0], r[1], n, err)
		}
	}
	if c.tp.Mem().WmemQueued() != w0 || !c.tp.writeQueue.Empty() || pages[0].Refs() != 1 {
		t.Fatalf("a refused SendPages queued something")
	}
}
