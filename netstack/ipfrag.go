package netstack

import (
	"net/netip"
	"sync"
	"time"
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

// fragKey identifies the datagram a fragment belongs to: source,
// destination, ID and protocol for IPv4 (RFC 791), source, destination and
// the 32-bit ID for IPv6 (RFC 8200 4.5; proto is 0).
type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

// fragCB is what reassembly keeps in an skb's control buffer.
type fragCB struct {
	offset, end int // payload byte range of this fragment
	// IPv6: the offset of the fragment header, and of the next-header
	// byte that names it (Linux's IP6CB(skb)->nhoff).
	fhoff, nhoff int
}

// fragFamily is what differs between IPv4 and IPv6 reassembly: the
// sysctls, the counters, how a complete datagram is joined, and the ICMP
// error an expired one sends. Everything else (the queue, the length and
// overlap rules, the memory limit, the timer) is one code for both, as
// Linux shares inet_fragment.c between ip_fragment.c and reassembly.c.
type fragFamily struct {
	highThresh  func(*memctl.Sysctls) int64
	timeout     func(*memctl.Sysctls) time.Duration
	fails, oks  memctl.Counter
	timeouts    memctl.Counter
	overlaps    memctl.Counter // -1: none printed (IPv6's is not in snmp6)
	reasm       func(t *ipfragTable, q *fragQueue) *skb.SKB
	expireFirst func(s *Stack, first *skb.SKB) // ICMP time exceeded; it owns first
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
	fam   *fragFamily
	mu    sync.Mutex
	qs    map[fragKey]*fragQueue
	mem   int // sum of truesize held, like fqdir->mem
}

func (t *ipfragTable) init(s *Stack, fam *fragFamily) {
	t.stack = s
	t.fam = fam
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

// ipv4Frag is IPv4's reassembly: net.ipv4.ipfrag_*, the Ip counters.
var ipv4Frag = fragFamily{
	highThresh: (*memctl.Sysctls).IPFragHighThresh,
	timeout:    (*memctl.Sysctls).IPFragTime,
	fails:      memctl.IpReasmFails,
	oks:        memctl.IpReasmOKs,
	timeouts:   memctl.IpReasmTimeout,
	overlaps:   memctl.IpExtReasmOverlaps,
	reasm:      (*ipfragTable).reasm4Locked,
	expireFirst: func(s *Stack, first *skb.SKB) {
		iph := header.IPv4(first.Data())
		first.Pull(iph.HeaderLength())
		s.icmpSend(first, iph, header.ICMPv4TimeExceeded, header.ICMPv4ReassemblyTimeout, 0)
		first.Free()
	},
}

// queue adds an IPv4 fragment (data at the IP header). It returns the
// reassembled datagram when this fragment completes it, else nil. It owns
// b. Mirrors ip_defrag / ip_frag_queue.
func (t *ipfragTable) queue(b *skb.SKB) *skb.SKB {
	iph := header.IPv4(b.Data())
	hlen := iph.HeaderLength()
	off := iph.FragmentOffset()
	end := off + b.Len() - hlen
	more := iph.MoreFragments()
	// ip_frag_queue: fragments other than the last are cut down to a
	// multiple of 8 bytes.
	if more && end&7 != 0 {
		end &^= 7
		if end > off {
			b.Trim(hlen + end - off)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.findLocked(fragKey{iph.SrcAddr(), iph.DstAddr(), uint32(iph.ID()), iph.Protocol()})
	if q == nil {
		b.Free()
		return nil
	}
	if !t.insertLocked(q, b, off, end, 0xffff-hlen, more) {
		return nil
	}
	return t.fam.reasm(t, q)
}

// findLocked returns the queue of key, made if new, or nil (counted as a
// reassembly failure) while the memory held is above the high threshold.
// Mirrors inet_frag_find / inet_frag_create.
func (t *ipfragTable) findLocked(key fragKey) *fragQueue {
	s := t.stack
	if int64(t.mem) > t.fam.highThresh(s.net.Sysctls) { // frag_mem_limit > high_thresh
		s.mib.Inc(t.fam.fails)
		return nil
	}
	q := t.qs[key]
	if q == nil {
		q = &fragQueue{key: key}
		q.timer = s.clock.NewTimer(func() { t.expire(q) })
		q.timer.Reset(t.fam.timeout(s.net.Sysctls)) // fqdir->timeout
		t.qs[key] = q
	}
	return q
}

// insertLocked adds b, the fragment holding payload bytes [off, end) (more:
// others follow it), to q, and reports whether q is now complete. A
// fragment that contradicts the datagram's length, is empty, ends past
// maxEnd or overlaps another (other than as an exact duplicate, which is
// dropped alone) kills the whole datagram, counted: RFC 5722 for IPv6, and
// Linux for IPv4 too since 4.19. It owns b. Mirrors the shared part of
// ip_frag_queue and ip6_frag_queue, with inet_frag_queue_insert.
func (t *ipfragTable) insertLocked(q *fragQueue, b *skb.SKB, off, end, maxEnd int, more bool) bool {
	s := t.stack
	// The last fragment fixes the datagram's length, which no fragment may
	// then exceed.
	kill := false
	if !more {
		kill = end < q.length || (q.lastIn && end != q.length)
		q.length = max(q.length, end)
	} else if end > q.length {
		kill = q.lastIn
		q.length = end
	}
	if kill || end <= off || end > maxEnd {
		s.mib.Inc(t.fam.fails)
		t.killLocked(q)
		b.Free()
		return false
	}
	var after *skb.SKB
	for f := q.frags.Peek(); f != nil; f = f.Next() {
		cb := fragcb(f)
		if cb.offset == off && cb.end == end {
			b.Free() // IPFRAG_DUP
			return false
		}
		if off < cb.end && end > cb.offset {
			if t.fam.overlaps >= 0 {
				s.mib.Inc(t.fam.overlaps)
			}
			s.mib.Inc(t.fam.fails)
			t.killLocked(q)
			b.Free()
			return false
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
	if !more {
		q.lastIn = true
	}
	return q.firstIn && q.lastIn && q.meat == q.length
}

// reasmTruesize is the truesize Linux leaves in the head of q's
// reassembled datagram, hdrLen(f) being the bytes before fragment f's
// payload. Mirrors inet_frag_reasm_finish with try_coalesce, as
// ip_frag_reasm (local delivery) and ip6_frag_reasm call it: the first
// fragment keeps its truesize, and each later one in order is offered to
// skb_try_coalesce. One that fits the head's tailroom while the head is
// still linear is copied there and adds nothing; one whose payload is all
// in page fragments, before anything was chained, gives them to the head
// and adds its truesize less its head's (SKB_TRUESIZE(skb_end_offset));
// any other is chained on the frag_list whole and adds its whole
// truesize (skb_head_is_locked: no skb here has a head in a page
// fragment). A fragment sockfs keeps linear but charges as Linux's paged
// one (a large TUN packet, tun_alloc_skb) counts as nonlinear.
// fqdir->mem is not touched: it held every fragment's truesize and drops
// their sum (sum_truesize), as killLocked does.
func reasmTruesize(q *fragQueue, hdrLen func(f *skb.SKB) int) int {
	prof := skb.CurrentProfile()
	linearInLinux := func(f *skb.SKB) bool {
		return !f.IsNonlinear() && f.Truesize() == prof.TruesizeOf(f.EndOffset())
	}
	head := q.frags.Peek()
	truesize := head.Truesize()
	linear := linearInLinux(head)
	tailroom := head.Tailroom() // skb_tailroom: 0 once nonlinear
	nrFrags := head.NrFrags()
	chained := false // skb_has_frag_list(head)
	for f := head.Next(); f != nil; f = f.Next() {
		cb := fragcb(f)
		l := cb.end - cb.offset
		switch {
		case linear && l <= tailroom:
			tailroom -= l // skb_put, *delta_truesize = 0
		case !chained && f.HeadLen()-hdrLen(f) <= 0 && nrFrags+f.NrFrags() <= skb.MaxFrags:
			truesize += f.Truesize() - prof.TruesizeOf(f.EndOffset())
			nrFrags += f.NrFrags()
			linear = false
		default:
			truesize += f.Truesize()
			chained, linear = true, false
		}
	}
	return truesize
}

// reasm4Locked joins the fragments of a complete IPv4 datagram into one
// linear skb. Mirrors ip_frag_reasm. The buffer is linear, where Linux
// keeps the fragments (a frag_list, or coalesced), but the charge mirrors
// inet_frag_reasm_finish (reasmTruesize).
func (t *ipfragTable) reasm4Locked(q *fragQueue) *skb.SKB {
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
	r.SetTruesize(reasmTruesize(q, func(f *skb.SKB) int { return header.IPv4(f.Data()).HeaderLength() }))
	t.killLocked(q)
	t.stack.mib.Inc(memctl.IpReasmOKs)
	return r
}

// reasm6Locked joins the fragments of a complete IPv6 datagram: the first
// fragment's unfragmentable part (the header and the extension headers
// before the fragment header), then every fragment's data; the fragment
// header goes, and the next-header byte that named it takes its next
// header. r's fragCB keeps where that byte and the removed header were,
// for the parser to go on from. Mirrors ip6_frag_reasm; as in
// reasm4Locked, the buffer is linear but the charge mirrors
// inet_frag_reasm_finish (reasmTruesize).
func (t *ipfragTable) reasm6Locked(q *fragQueue) *skb.SKB {
	first := q.frags.Peek()
	fcb := *fragcb(first)
	unfrag := fcb.fhoff
	r := skb.Alloc(unfrag + q.length)
	out := r.Put(unfrag + q.length)
	copy(out, first.Data()[:unfrag])
	out[fcb.nhoff] = header.IPv6Fragment(first.Data()[unfrag:]).NextHeader()
	for f := q.frags.Peek(); f != nil; f = f.Next() {
		cb := fragcb(f)
		f.CopyBits(cb.fhoff+header.IPv6FragmentSize, out[unfrag+cb.offset:unfrag+cb.end])
	}
	header.IPv6(out).SetPayloadLength(uint16(unfrag - header.IPv6MinSize + q.length))
	r.Dev = first.Dev
	r.SetTruesize(reasmTruesize(q, func(f *skb.SKB) int { return fragcb(f).fhoff + header.IPv6FragmentSize }))
	*fragcb(r) = fcb
	t.killLocked(q)
	t.stack.mib.Inc(memctl.Ip6ReasmOKs)
	return r
}

// expire runs ipfrag_time after a datagram's first fragment: the datagram is
// dropped and, if its first fragment arrived, the sender gets an ICMP time
// exceeded (fragment reassembly time exceeded). Mirrors ip_expire and
// ip6_frag_expire.
func (t *ipfragTable) expire(q *fragQueue) {
	t.mu.Lock()
	if q.dead {
		t.mu.Unlock()
		return
	}
	s := t.stack
	s.mib.Inc(t.fam.fails)
	s.mib.Inc(t.fam.timeouts)
	var first *skb.SKB
	if q.firstIn {
		if f := q.frags.Peek(); f != nil && fragcb(f).offset == 0 {
			first = f.Copy()
		}
	}
	t.killLocked(q)
	t.mu.Unlock()
	if first != nil {
		t.fam.expireFirst(s, first)
	}
}
