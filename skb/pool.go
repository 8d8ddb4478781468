package skb

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// MaxFrags is MAX_SKB_FRAGS (the 6.4+ default config).
const MaxFrags = 17

// Shared is the part of a packet that clones share: the head buffer and the
// page fragments, with the dataref count. Mirrors struct skb_shared_info,
// which Linux places at the end of the head allocation; here it is a Go struct
// beside the head bytes, and the head slice excludes it, so the usable head is
// SKB_WITH_OVERHEAD(obj) as in Linux.
type Shared struct {
	head []byte // usable head area, len = obj - ShinfoSize
	obj  int    // size of the head allocation (the size class), 0 if unpooled

	// dataref: low 16 bits count references to the whole buffer, high 16 bits
	// count the references that cover the payload only (nohdr).
	dataref atomic.Uint32

	nrFrags int
	frags   [MaxFrags]Frag

	// GSOSize, GSOSegs and GSOType describe a super-packet for offloads
	// (gso_size, gso_segs, gso_type).
	GSOSize uint16
	GSOSegs uint16
	GSOType uint8
}

const (
	datarefShift = 16
	datarefMask  = 1<<datarefShift - 1
)

// Head buffers are pooled by allocation size: the small-head cache sizes,
// then the powers of two from 512 bytes to 256 KiB. Larger heads are
// allocated and dropped directly.
const (
	minPow2Class = 9  // 512
	maxPow2Class = 18 // 256 KiB
)

var (
	pow2Pools      [maxPow2Class + 1]objCache[Shared]
	smallHeadPools sync.Map // obj size -> *objCache[Shared]
	skbPool        = objCache[SKB]{max: cacheMax(int(unsafe.Sizeof(SKB{})))}
	fclonePool     = objCache[fclones]{max: cacheMax(int(unsafe.Sizeof(fclones{})))}
)

func init() {
	for c := minPow2Class; c <= maxPow2Class; c++ {
		pow2Pools[c].max = cacheMax(1 << c)
	}
}

func headPool(obj int) *objCache[Shared] {
	if obj&(obj-1) == 0 {
		c := bits.TrailingZeros(uint(obj))
		if c >= minPow2Class && c <= maxPow2Class {
			return &pow2Pools[c]
		}
		return nil
	}
	if p, ok := smallHeadPools.Load(obj); ok {
		return p.(*objCache[Shared])
	}
	p, _ := smallHeadPools.LoadOrStore(obj, &objCache[Shared]{max: cacheMax(obj)})
	return p.(*objCache[Shared])
}

// heads counts head buffers handed out and recycled, so that tests can
// assert that every buffer came back (no leak) and came back once.
var heads struct{ allocs, frees atomic.Int64 }

// LiveHeads returns the number of head buffers currently referenced by some
// skb. A stack that has shut down cleanly has none.
func LiveHeads() int64 { return heads.allocs.Load() - heads.frees.Load() }

// getShared returns a Shared whose head comes from the obj size class, with
// dataref 1 and no fragments.
func getShared(obj int) *Shared {
	usable := profile.WithOverhead(obj)
	pool := headPool(obj)
	var sh *Shared
	if pool != nil {
		if sh = pool.get(); sh != nil && len(sh.head) != usable {
			sh = nil // the profile changed since it was pooled
		}
	}
	if sh == nil {
		sh = &Shared{head: make([]byte, usable)}
	}
	sh.obj = obj
	sh.dataref.Store(1)
	heads.allocs.Add(1)
	return sh
}

// putShared recycles a Shared whose last reference is gone.
func putShared(sh *Shared) {
	for i := 0; i < sh.nrFrags; i++ {
		sh.frags[i].Page.Put()
		sh.frags[i] = Frag{}
	}
	sh.nrFrags = 0
	sh.GSOSize, sh.GSOSegs, sh.GSOType = 0, 0, 0
	heads.frees.Add(1)
	if debug {
		poison(sh.head)
		return // never recycled: a use after free reads poison
	}
	if pool := headPool(sh.obj); pool != nil {
		pool.put(sh)
	}
}

// fclones is the pair alloc_skb_fclone makes: the original, its first clone,
// and the count of the two that are alive. Mirrors struct sk_buff_fclones.
type fclones struct {
	skb1, skb2 SKB
	ref        atomic.Int32
}

func getSKB() *SKB {
	if b := skbPool.get(); b != nil {
		return b
	}
	return new(SKB)
}
