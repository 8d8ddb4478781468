package skb

// Unclone gives b a head buffer of its own when it shares one with a clone,
// so that its headers and fragment list may be written: the head is copied
// into a buffer of the same size class, at the same offsets, the fragment
// descriptors are copied with a new page reference each, and b drops its
// reference to the shared buffer. truesize does not change (the new head
// is the same size), nor does the owner. An skb that is not cloned is left
// alone. Mirrors skb_unclone -> pskb_expand_head(skb, 0, 0).
func (b *SKB) Unclone() {
	if debug {
		b.checkLive("Unclone")
	}
	if !b.Cloned() {
		return
	}
	old := b.shared
	sh := getShared(old.obj)
	copy(sh.head, old.head[:b.end])
	for i := 0; i < old.nrFrags; i++ {
		f := old.frags[i]
		f.Page.Get()
		sh.frags[i] = f
	}
	sh.nrFrags = old.nrFrags
	sh.GSOSize, sh.GSOSegs, sh.GSOType = old.GSOSize, old.GSOSegs, old.GSOType
	b.releaseData()
	b.shared, b.head, b.end = sh, sh.head, min(b.end, len(sh.head))
	b.cloned, b.nohdr = false, false
}
