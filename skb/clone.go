package skb

// Clone returns a new skb that shares this one's data buffer and fragments.
// Both are marked cloned and the buffer's dataref goes up by one; the buffer
// returns to its pool only when the last of them is freed. The clone carries
// the same truesize but no owner (no destructor). For an skb from
// AllocFclone, the first clone alive at a time is the preallocated companion.
// Mirrors skb_clone / __skb_clone.
func (b *SKB) Clone() *SKB {
	if debug {
		b.checkLive("Clone")
	}
	var n *SKB
	fclone, pair := uint8(fcloneUnavailable), (*fclones)(nil)
	if b.fclone == fcloneOrig && b.pair.ref.Load() == 1 {
		// The companion is free: only the original is alive, and only its
		// owner clones it, so nobody races for the slot.
		n = &b.pair.skb2
		b.pair.ref.Store(2)
		fclone, pair = fcloneClone, b.pair
	} else {
		n = getSKB()
	}
	*n = *b
	n.next, n.prev, n.queue = nil, nil, nil
	n.destructor = nil
	n.nohdr = false
	n.freed = false
	n.fclone, n.pair = fclone, pair
	n.cloned = true
	b.cloned = true
	b.shared.dataref.Add(1)
	return n
}

// HeaderRelease gives up this skb's claim on the header area, so that a clone
// may write its own headers into the shared headroom. TCP calls it on every
// skb it queues for transmission, before the first clone. Mirrors
// __skb_header_release.
func (b *SKB) HeaderRelease() {
	if b.nohdr {
		return
	}
	b.nohdr = true
	b.shared.dataref.Add(1 << datarefShift)
	b.cloned = true // releasing the data must now go through dataref
}

// Cloned reports whether the data buffer is shared with another skb.
// Mirrors skb_cloned.
func (b *SKB) Cloned() bool {
	return b.cloned && b.shared.dataref.Load()&datarefMask != 1
}

// HeaderCloned reports whether the header area is shared with another skb
// that may write it. Mirrors skb_header_cloned.
func (b *SKB) HeaderCloned() bool {
	if !b.cloned {
		return false
	}
	d := b.shared.dataref.Load()
	return (d&datarefMask)-(d>>datarefShift) != 1
}

// Dataref returns the raw dataref word (low half: all references, high half:
// payload-only references), for tests and debugging.
func (b *SKB) Dataref() uint32 { return b.shared.dataref.Load() }

// FcloneBusy reports whether this skb's preallocated clone is still alive,
// that is, a transmitted copy has not yet been freed by the layers below.
// TCP uses it to avoid retransmitting a segment still queued in the device.
// Mirrors skb_fclone_busy (without the socket check, which TCP makes).
func (b *SKB) FcloneBusy() bool {
	return b.fclone == fcloneOrig && b.pair.ref.Load() > 1
}

// Copy returns a new, private, linear skb with the same headroom, data and
// header offsets as b. Its truesize is that of its own allocation. Mirrors
// skb_copy.
func (b *SKB) Copy() *SKB {
	n := Alloc(b.data + b.len)
	n.Reserve(b.data)
	b.CopyBits(0, n.Put(b.len))
	n.copyHeader(b)
	return n
}

// copyHeader copies the metadata that travels with a packet.
func (n *SKB) copyHeader(b *SKB) {
	n.NetworkHeader = b.NetworkHeader
	n.TransportHeader = b.TransportHeader
	n.Protocol = b.Protocol
	n.Dev = b.Dev
	n.Tstamp = b.Tstamp
	n.Mark = b.Mark
	n.CB = b.CB
	n.IPSummed = b.IPSummed
	n.CsumStart, n.CsumOffset = b.CsumStart, b.CsumOffset
	// skb_copy_header copies the GSO description too.
	n.shared.GSOSize, n.shared.GSOSegs, n.shared.GSOType = b.shared.GSOSize, b.shared.GSOSegs, b.shared.GSOType
}
