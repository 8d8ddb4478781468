package skb

import "fmt"

// Destructor is run once when an skb is freed or orphaned, with the truesize
// the skb carries at that moment. It is how a socket's charge is returned:
// memctl's sock_rfree and sock_wfree implement it. Mirrors the pair
// skb->sk / skb->destructor.
//
// It is an alias of an unnamed interface type so that packages which must not
// import skb (memctl) can name the same type.
type Destructor = interface{ SkbDestruct(truesize int) }

// fclone states. Mirrors SKB_FCLONE_UNAVAILABLE / _ORIG / _CLONE.
const (
	fcloneUnavailable = iota
	fcloneOrig
	fcloneClone
)

// Checksum states for SKB.IPSummed. Mirrors CHECKSUM_NONE,
// CHECKSUM_UNNECESSARY and CHECKSUM_PARTIAL (include/linux/skbuff.h);
// CHECKSUM_COMPLETE has no producer here.
const (
	// ChecksumNone: nothing is known; the receiver verifies in software
	// and the sender has filled in every checksum.
	ChecksumNone = 0
	// ChecksumUnnecessary: on receive, the transport checksum was verified
	// (or need not be, as for a packet the local host made).
	ChecksumUnnecessary = 1
	// ChecksumPartial: the transport checksum field holds only the
	// pseudo-header sum, the rest to be completed over CsumStart.. by
	// whoever needs it (the device on transmit; nobody on local receive,
	// where it is trusted like ChecksumUnnecessary).
	ChecksumPartial = 3
)

// SKB is a packet buffer. The zero value is not usable; get one from Alloc,
// AllocFclone or Clone, and give it back with Free.
type SKB struct {
	// next and prev link the skb into at most one Queue.
	next, prev *SKB
	queue      *Queue

	shared *Shared
	head   []byte // shared.head
	data   int    // offsets into head
	tail   int
	end    int
	len    int // linear bytes + dataLen
	// dataLen is the number of bytes held in page fragments.
	dataLen int

	truesize   int
	destructor Destructor

	cloned bool // the data area may be shared with another skb
	nohdr  bool // this skb holds a payload-only reference
	fclone uint8
	pair   *fclones
	freed  bool // debug: set by Free

	// NetworkHeader and TransportHeader are offsets from the start of the head
	// buffer, or -1 when unset. Mirrors network_header / transport_header.
	NetworkHeader   int
	TransportHeader int
	// Protocol is the network protocol (an EtherType, 0x0800 for IPv4).
	Protocol uint16
	// Dev is the index of the device the packet arrived on or leaves by.
	Dev int
	// Tstamp is a time in the stack's clock (nanoseconds), set by whoever
	// needs it: the arrival time on receive, the send time for TCP's RTT.
	Tstamp int64
	// Mark is free for the stack's use (skb->mark).
	Mark uint32
	// IPSummed is the checksum state of the packet, one of ChecksumNone,
	// ChecksumUnnecessary or ChecksumPartial. Mirrors skb->ip_summed.
	IPSummed uint8
	// CsumStart (an offset from the start of the head buffer, comparable
	// with DataOffset) and CsumOffset (from CsumStart) locate the checksum
	// a ChecksumPartial packet still needs: the sum of the bytes from
	// CsumStart to the end, folded and complemented, goes at
	// CsumStart+CsumOffset, where the pseudo-header sum already is.
	// Mirrors csum_start / csum_offset.
	CsumStart, CsumOffset uint16
	// CB is the control buffer each layer may use while it owns the skb
	// (TCP keeps its sequence numbers here). Mirrors skb->cb[48].
	CB [48]byte
}

// Alloc returns a linear skb with room for at least size bytes and no
// headroom. Its truesize is Linux's: the size class of the head allocation
// plus the skb struct. Mirrors alloc_skb.
func Alloc(size int) *SKB {
	b := getSKB()
	b.init(size)
	return b
}

// AllocFclone returns an skb allocated together with a companion for its
// first clone, as TCP does for every segment it will retransmit. The first
// Clone then costs no allocation and FcloneBusy can tell whether that clone
// is still alive. Mirrors alloc_skb_fclone.
func AllocFclone(size int) *SKB {
	var f *fclones
	if f = fclonePool.get(); f == nil {
		f = new(fclones)
	}
	f.ref.Store(1)
	b := &f.skb1
	b.init(size)
	b.fclone = fcloneOrig
	b.pair = f
	f.skb2.fclone = fcloneClone
	f.skb2.pair = f
	return b
}

func (b *SKB) init(size int) {
	if size < 0 {
		panic(fmt.Sprintf("skb: Alloc(%d)", size))
	}
	obj := profile.HeadObjSize(size)
	sh := getShared(obj)
	*b = SKB{
		shared:          sh,
		head:            sh.head,
		end:             len(sh.head),
		truesize:        obj + profile.SKBSize,
		NetworkHeader:   -1,
		TransportHeader: -1,
	}
}

// Free releases the skb: it runs the destructor (uncharging the owner),
// drops the reference to the data and returns the struct to its pool.
// Freeing an skb that is still on a queue is a bug. Mirrors kfree_skb /
// consume_skb (the drop-reason distinction is the caller's to count).
func (b *SKB) Free() {
	if debug {
		b.checkLive("Free")
		if b.queue != nil {
			panic("skb: Free of an skb still on a queue")
		}
	}
	b.releaseHeadState()
	b.releaseData()
	b.freeMem()
}

// releaseHeadState runs the destructor. Mirrors skb_release_head_state.
func (b *SKB) releaseHeadState() {
	if d := b.destructor; d != nil {
		b.destructor = nil
		d.SkbDestruct(b.truesize)
	}
}

// releaseData drops this skb's reference to the head and fragments, and
// recycles them when it was the last. Mirrors skb_release_data.
func (b *SKB) releaseData() {
	sh := b.shared
	if sh == nil {
		return
	}
	b.shared, b.head = nil, nil
	if b.cloned {
		sub := uint32(1)
		if b.nohdr {
			sub += 1 << datarefShift
		}
		left := sh.dataref.Add(-sub)
		if debug && (left&datarefMask) > datarefMask/2 {
			panic("skb: dataref underflow")
		}
		if left != 0 {
			return
		}
	}
	putShared(sh)
}

// freeMem returns the struct itself. Mirrors kfree_skbmem, including the
// fclone rules: the pair goes back only when both halves are gone.
func (b *SKB) freeMem() {
	switch b.fclone {
	case fcloneUnavailable:
		if debug {
			b.freed = true
			return // never recycled, so a use after free is caught
		}
		*b = SKB{}
		skbPool.put(b)
	case fcloneOrig, fcloneClone:
		f := b.pair
		b.freed = true
		if f.ref.Add(-1) != 0 {
			return
		}
		if debug {
			return
		}
		f.skb1, f.skb2 = SKB{}, SKB{}
		fclonePool.put(f)
	}
}

// checkLive panics if b was freed. Only called when debug is on.
func (b *SKB) checkLive(op string) {
	if b.freed {
		panic("skb: " + op + " after free")
	}
}

// Orphan runs the destructor now, detaching the skb from its owner while it
// stays alive (loopback and some devices do this at transmit). Mirrors
// skb_orphan.
func (b *SKB) Orphan() { b.releaseHeadState() }

// SetDestructor installs d, which Free or Orphan will run once. Installing a
// destructor over another one is a bug (the old owner would never be
// uncharged), so the caller orphans first.
func (b *SKB) SetDestructor(d Destructor) {
	if debug {
		b.checkLive("SetDestructor")
		if d != nil && b.destructor != nil {
			panic("skb: SetDestructor on an owned skb")
		}
	}
	b.destructor = d
}

// Destructor returns the installed destructor (the owner), or nil.
func (b *SKB) Destructor() Destructor { return b.destructor }

// Truesize is the memory this skb is charged for.
func (b *SKB) Truesize() int { return b.truesize }

// AddTruesize adjusts truesize by delta, for the callers that grow or shrink
// what an skb holds (fragments attached, coalescing, condensing). Whoever
// charged the old value must charge the delta too. Mirrors the direct
// skb->truesize updates in skb_len_add and friends.
func (b *SKB) AddTruesize(delta int) { b.truesize += delta }

// SetTruesize overwrites truesize; same caveat as AddTruesize.
func (b *SKB) SetTruesize(t int) { b.truesize = t }

// Len is the packet's length: linear bytes plus fragment bytes.
func (b *SKB) Len() int { return b.len }

// HeadLen is the length of the linear part. Mirrors skb_headlen.
func (b *SKB) HeadLen() int { return b.len - b.dataLen }

// DataLen is the number of bytes in page fragments (skb->data_len).
func (b *SKB) DataLen() int { return b.dataLen }

// IsNonlinear reports whether some of the packet is in fragments.
func (b *SKB) IsNonlinear() bool { return b.dataLen != 0 }

// Data returns the linear part of the packet. The slice aliases the buffer.
func (b *SKB) Data() []byte { return b.head[b.data:b.tail] }

// Head returns the whole usable head buffer (skb->head up to skb->end).
func (b *SKB) Head() []byte { return b.head[:b.end] }

// Headroom is the free space before the data. Mirrors skb_headroom.
func (b *SKB) Headroom() int { return b.data }

// Tailroom is the free space after the data in the head; 0 for a nonlinear
// skb. Mirrors skb_tailroom.
func (b *SKB) Tailroom() int {
	if b.dataLen != 0 {
		return 0
	}
	return b.end - b.tail
}

// EndOffset is the usable size of the head (skb_end_offset).
func (b *SKB) EndOffset() int { return b.end }

// Reserve moves the data and tail of an empty skb forward to leave headroom.
// Mirrors skb_reserve.
func (b *SKB) Reserve(n int) {
	if b.len != 0 || b.tail+n > b.end || n < 0 {
		panic(fmt.Sprintf("skb: Reserve(%d) with len %d headroom %d tailroom %d", n, b.len, b.data, b.end-b.tail))
	}
	b.data += n
	b.tail += n
}

// Put extends the data at the tail by n bytes and returns them for the caller
// to fill. Running past the end is a bug, as skb_over_panic is in Linux.
// Mirrors skb_put.
func (b *SKB) Put(n int) []byte {
	if b.dataLen != 0 || n < 0 || b.tail+n > b.end {
		panic(fmt.Sprintf("skb: Put(%d) over end: tail %d end %d nonlinear %v", n, b.tail, b.end, b.dataLen != 0))
	}
	old := b.tail
	b.tail += n
	b.len += n
	return b.head[old:b.tail]
}

// PutData appends p at the tail. Mirrors skb_put_data.
func (b *SKB) PutData(p []byte) { copy(b.Put(len(p)), p) }

// Push extends the data at the front by n bytes (into the headroom) and
// returns the new start for the caller to fill with a header. Mirrors
// skb_push.
func (b *SKB) Push(n int) []byte {
	if n < 0 || n > b.data {
		panic(fmt.Sprintf("skb: Push(%d) under head: headroom %d", n, b.data))
	}
	b.data -= n
	b.len += n
	return b.head[b.data:b.tail]
}

// Pull removes n bytes from the front of the linear data and returns the
// data that remains, or nil (and changes nothing) if the linear part is
// shorter than n. Mirrors skb_pull.
func (b *SKB) Pull(n int) []byte {
	if n < 0 || n > b.HeadLen() {
		return nil
	}
	b.data += n
	b.len -= n
	return b.head[b.data:b.tail]
}

// Trim cuts the packet to n bytes, dropping fragment bytes first as needed.
// It does nothing if the packet is not longer than n. Mirrors skb_trim and
// pskb_trim.
func (b *SKB) Trim(n int) {
	if n < 0 || n >= b.len {
		return
	}
	hl := b.HeadLen()
	if n >= hl { // the cut is inside the fragments
		b.trimFrags(n - hl)
		b.len = n
		return
	}
	b.trimFrags(0)
	b.tail = b.data + n
	b.len = n
}

// SetNetworkHeader records the current data position as the network header.
func (b *SKB) SetNetworkHeader() { b.NetworkHeader = b.data }

// SetTransportHeader records the current data position as the transport
// header.
func (b *SKB) SetTransportHeader() { b.TransportHeader = b.data }

// DataOffset is the position of the data in the head buffer; header offsets
// are comparable with it.
func (b *SKB) DataOffset() int { return b.data }

// Shared returns the shared info (skb_shinfo).
func (b *SKB) Shared() *Shared { return b.shared }

// PartialCsumSet marks the packet ChecksumPartial with the checksum to be
// completed from start bytes after the data (the transport header) and
// stored off bytes further. It reports false, changing nothing, if the
// field does not lie within the packet. Mirrors skb_partial_csum_set.
func (b *SKB) PartialCsumSet(start, off int) bool {
	cs := b.data + start
	if start < 0 || off < 0 || start+off+2 > b.len || cs > 0xffff || off > 0xffff {
		return false
	}
	b.IPSummed = ChecksumPartial
	b.CsumStart, b.CsumOffset = uint16(cs), uint16(off)
	return true
}

// ChecksumStartOffset is the position of CsumStart relative to the data.
// Mirrors skb_checksum_start_offset.
func (b *SKB) ChecksumStartOffset() int { return int(b.CsumStart) - b.data }

// CsumUnnecessary reports whether the receive path may skip verifying the
// transport checksum: it was verified already, or the packet is a partial
// one from this host. Mirrors skb_csum_unnecessary.
func (b *SKB) CsumUnnecessary() bool {
	return b.IPSummed == ChecksumUnnecessary ||
		(b.IPSummed == ChecksumPartial && b.ChecksumStartOffset() >= 0)
}

// String describes the skb for debugging.
func (b *SKB) String() string {
	return fmt.Sprintf("skb{len %d (head %d, frags %d) headroom %d tailroom %d truesize %d cloned %v}",
		b.len, b.HeadLen(), b.dataLen, b.data, b.end-b.tail, b.truesize, b.cloned)
}
