package memctl_test

import (
	"testing"

	"sockfs/memctl"
	"sockfs/skb"
)

// These tests use the real packet buffer (package skb) to check that the
// truesize numbers and the destructor contract line up with memctl.

// udpAlloc is the loopback UDP allocation of __ip_append_data: payload + 59.
func udpAlloc(payload int) *skb.SKB { return skb.Alloc(payload + 59) }

func TestScenario11_UdpLoopbackTruesize(t *testing.T) {
	n := memctl.NewNet(memctl.Options{NrFreeBufferPages: 6141888})
	for _, c := range []struct{ payload, want int }{
		{1, 832}, {100, 832}, {325, 1280}, {326, 1280}, {1000, 2304}, {1400, 2304},
		{4000, 8448}, {8000, 16640}, {9000, 16640},
	} {
		sk := memctl.NewSock(n, memctl.SockDgram, n.UDP)
		sk.InitUDPSock()
		_ = sk.SetSockoptRcvbuf(65536, false, false)
		var q []*skb.SKB
		for i := 0; i < 200; i++ {
			b := udpAlloc(c.payload)
			if b.Truesize() != c.want {
				t.Fatalf("payload %d: truesize %d, want %d", c.payload, b.Truesize(), c.want)
			}
			if memctl.UDPQueueRcvSkb(sk, b, false) != nil {
				b.Free()
				continue
			}
			q = append(q, b)
		}
		if got := sk.RmemAlloc() / len(q); got != c.want {
			t.Errorf("payload %d: r/queued = %d, want %d", c.payload, got, c.want)
		}
		for i, b := range q {
			memctl.UDPRmemRelease(sk, b.Truesize(), true, i == len(q)-1)
			b.Free()
		}
		if sk.RmemAlloc() != 0 {
			t.Errorf("payload %d: r %d after reading all", c.payload, sk.RmemAlloc())
		}
	}
}

func TestScenario14_RcvbufDropCountRealSkb(t *testing.T) {
	n := memctl.NewNet(memctl.Options{NrFreeBufferPages: 6141888})
	sk := memctl.NewSock(n, memctl.SockDgram, n.UDP)
	sk.InitUDPSock()
	_ = sk.SetSockoptRcvbuf(4096, false, false)
	queued := 0
	for i := 0; i < 200; i++ {
		b := udpAlloc(1)
		if memctl.UDPQueueRcvSkb(sk, b, false) != nil {
			b.Free()
			continue
		}
		queued++
		defer b.Free()
	}
	if queued != 9 || sk.RmemAlloc() != 7488 || sk.ForwardAlloc() != 704 || sk.Drops() != 191 {
		t.Fatalf("queued %d r%d f%d d%d, want 9 r7488 f704 d191", queued, sk.RmemAlloc(), sk.ForwardAlloc(), sk.Drops())
	}
	if n.MIB.Get(memctl.UdpRcvbufErrors) != 191 || n.MIB.Get(memctl.UdpInErrors) != 191 || n.MIB.Get(memctl.UdpMemErrors) != 0 {
		t.Fatal("SNMP counters")
	}
}

func TestOwnerDestructorsWithRealSkb(t *testing.T) {
	n := memctl.NewNet(memctl.Options{NrFreeBufferPages: 6141888})
	raw := memctl.NewSock(n, memctl.SockRaw, nil)
	b := skb.Alloc(100)
	if err := memctl.QueueRcvSkb(raw, b); err != nil {
		t.Fatal(err)
	}
	if raw.RmemAlloc() != 832 {
		t.Fatalf("r %d", raw.RmemAlloc())
	}
	b.Free()
	if raw.RmemAlloc() != 0 {
		t.Fatalf("r %d after free", raw.RmemAlloc())
	}
	u := memctl.NewSock(n, memctl.SockDgram, n.UDP)
	w := skb.Alloc(100)
	memctl.SetOwnerW(w, u)
	if u.WmemAllocGet() != 832 || u.Refcnt() != 2 {
		t.Fatalf("t %d refs %d", u.WmemAllocGet(), u.Refcnt())
	}
	w.Orphan() // loopback orphans at transmit
	if u.WmemAllocGet() != 0 || u.Refcnt() != 1 {
		t.Fatalf("after orphan: t %d refs %d", u.WmemAllocGet(), u.Refcnt())
	}
	w.Free()
}
