package netstack

import (
	"net/netip"
	"sync"
	"unsafe"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// Reassembly limits are the sysctls net.ipv4.ipfrag_*, read for every
// fragment: new fragments are refused while the memory held by incomplete
// datagrams is above ipfrag_high_thresh; an incomplete datagram is dropped
// ipfrag_time after its first fragment arrived. Since Linux 4.17 low_thresh
// no longer drives an evictor; it only bounds high_thresh.

// fragKey identifies the datagram a fragment belongs to (RFC 791).
type fragKey struct {
	src, dst netip.Addr
	id       uint16
	proto    uint8
}

// fragCB is what reassembly keeps in an skb's control buffer.
type fragCB struct {
	offset, end int // payload byte range of this fragment
}

func fragcb(b *skb.SKB) *fragCB { return (*fragCB)(unsafe.Pointer(&b.CB[0])) }

// fragQueue is one datagram being reassembled. Mirrors struct ipq.
type fragQueue struct {
	key     fragKey
	frags   skb.Queue // sorted by offset, non-overlapping
	length  int       // highest end offset seen; the datagram's length once lastIn
	meat    int       // payload bytes received
	lastIn  bool      // the fragment without MF arrived
	firstIn bool      // the fragment at offset 0 arrived
	mem     int       // truesize held
	timer   *clock.Timer
	dead    bool
}

// ipfragTable holds the datagrams being reassembled. Mirrors fqdir with
// inet_frag_find / ip_frag_queue.
type ipfragTable struct {
	stack *Stack
	mu    sync.Mutex
	qs    map[fragKey]*fragQueue
	mem   int // sum of truesize held, like fqdir->mem
}

func (t *ipfragTable) init(s *Stack) {
	t.stack = s
	t.qs = make(map[fragKey]*fragQueue)
}

// Mem returns the bytes held by incomplete datagrams (FRAG: memory in
// sockstat).
func (t *ipfragTable) Mem() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mem
}

// Queues returns the number of datagrams being reassembled (FRAG: inuse).
func (t *ipfragTable) Queues() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.qs)
}

func (t *ipfragTable) destroy() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, q := range t.qs {
		t.killLocked(q)
	}
}

// killLocked drops q and everything it holds. Mirrors inet_frag_kill +
// inet_frag_destroy.
func (t *ipfragTable) killLocked(q *fragQueue) {
	if q.dead {
		return
	}
	q.dead = true
	q.timer.Stop()
	delete(t.qs, q.key)
	t.mem -= q.mem
	q.frags.Purge()
}

// queue adds a fragment (data at the IP header). It returns the reassembled
// datagram when this fragment completes it, else nil. It owns b.
// Mirrors ip_defrag / ip_frag_queue / ip_frag_reasm.
func (t *ipfragTable) queue(b *skb.SKB) *skb.SKB {
	s := t.stack
	iph := header.IPv4(b.Data())
	hlen := iph.HeaderLength()
	off := iph.FragmentOffset()
	end := off + b.Len() - hlen
	key := fragKey{iph.SrcAddr(), iph.DstAddr(), iph.ID(), iph.Protocol()}

	t.mu.Lock()
	defer t.mu.Unlock()
	if int64(t.mem) > s.net.Sysctls.IPFragHighThresh() { // inet_frag_find: frag_mem_limit > high_thresh
		s.mib.Inc(memctl.IpReasmFails)
		b.Free()
		return nil
	}
	q := t.qs[key]
	if q == nil {
		q = &fragQueue{key: key}
		q.timer = s.clock.NewTimer(func() { t.expire(q) })
		q.timer.Reset(s.net.Sysctls.IPFragTime()) // inet_frag_create: fqdir->timeout
		t.qs[key] = q
	}
	// The length checks of ip_frag_queue: the last fragment fixes the
	// datagram's length, which no fragment may then exceed; other fragments
	// are cut down to a multiple of 8 bytes; an empty one is invalid.
	kill := false
	if !iph.MoreFragments() {
		kill = end < q.length || (q.lastIn && end != q.length)
		q.length = max(q.length, end)
	} else {
		if end&7 != 0 {
			end &^= 7
			if end > off {
				b.Trim(hlen + end - off)
			}
		}
		if end > q.length {
			kill = q.lastIn
			q.length = end
		}
	}
	if kill || end <= off || end > 0xffff-hlen {
		s.mib.Inc(memctl.IpReasmFails)
		t.killLocked(q)
		b.Free()
		return nil
	}
	// Find the place by offset; an exact duplicate is dropped, any other
	// overlap kills the datagram (Linux discards overlapping IPv4 fragments
	// since 4.19).
	var after *skb.SKB
	for f := q.frags.Peek(); f != nil; f = f.Next() {
		cb := fragcb(f)
		if cb.offset == off && cb.end == end {
			b.Free()
			return nil
		}
		if off < cb.end && end > cb.offset {
			s.mib.Inc(memctl.IpReasmFails)
			t.killLocked(q)
			b.Free()
			return nil
		}
		if cb.offset < off {
			after = f
		}
	}
	cb := fragcb(b)
	cb.offset, cb.end = off, end
	if after == nil {
		q.frags.PushFront(b)
	} else {
		q.frags.InsertAfter(after, b)
	}
	q.meat += end - off
	q.mem += b.Truesize()
	t.mem += b.Truesize()
	if off == 0 {
		q.firstIn = true
	}
	if !iph.MoreFragments() {
		q.lastIn = true
	}
	if !q.firstIn || !q.lastIn || q.meat != q.length {
		return nil
	}
	return t.reasmLocked(q)
}

// reasmLocked joins the fragments of a complete datagram into one linear
// skb. Deviation: Linux chains the fragments on a frag_list and the socket
// is charged the sum of their truesizes; we copy into one buffer, and charge
// that buffer's truesize, which is the memory we really retain.
func (t *ipfragTable) reasmLocked(q *fragQueue) *skb.SKB {
	first := q.frags.Peek()
	fh := header.IPv4(first.Data())
	hlen := fh.HeaderLength()
	r := skb.Alloc(hlen + q.length)
	out := r.Put(hlen + q.length)
	copy(out, first.Data()[:hlen])
	for f := q.frags.Peek(); f != nil; f = f.Next() {
		cb := fragcb(f)
		f.CopyBits(header.IPv4(f.Data()).HeaderLength(), out[hlen+cb.offset:hlen+cb.end])
	}
	rh := header.IPv4(out)
	rh.SetTotalLength(uint16(hlen + q.length))
	rh.SetFragment(0, false, rh.DontFragment())
	rh.SetChecksum(0)
	rh.SetChecksum(rh.CalculateChecksum())
	r.Dev = first.Dev
	t.killLocked(q)
	t.stack.mib.Inc(memctl.IpReasmOKs)
	return r
}

// expire runs ipfrag_time after a datagram's first fragment: the datagram is
// dropped and, if its first fragment arrived, the sender gets an ICMP time
// exceeded (fragment reassembly time exceeded). Mirrors ip_expire.
func (t *ipfragTable) expire(q *fragQueue) {
	t.mu.Lock()
	if q.dead {
		t.mu.Unlock()
		return
	}
	s := t.stack
	s.mib.Inc(memctl.IpReasmFails)
	s.mib.Inc(memctl.IpReasmTimeout)
	var first *skb.SKB
	if q.firstIn {
		if f := q.frags.Peek(); f != nil && fragcb(f).offset == 0 {
			first = f.Copy()
		}
	}
	t.killLocked(q)
	t.mu.Unlock()
	if first != nil {
		iph := header.IPv4(first.Data())
		first.Pull(iph.HeaderLength())
		s.icmpSend(first, iph, header.ICMPv4TimeExceeded, header.ICMPv4ReassemblyTimeout, 0)
		first.Free()
	}
}
