package skb

import (
	"bytes"
	"testing"
)

// countingOwner records destructor calls, as memctl's sock_rfree would.
type countingOwner struct {
	calls, charged int
}

func (o *countingOwner) SkbDestruct(truesize int) { o.calls++; o.charged -= truesize }

func TestReservePutPushPullTrim(t *testing.T) {
	b := Alloc(100)
	defer b.Free()
	if b.Headroom() != 0 || b.Tailroom() != b.EndOffset() || b.Len() != 0 {
		t.Fatalf("fresh skb: %v", b)
	}
	b.Reserve(40)
	if b.Headroom() != 40 || b.Tailroom() != b.EndOffset()-40 {
		t.Fatalf("after Reserve: %v", b)
	}
	copy(b.Put(5), "hello")
	b.PutData([]byte(" world"))
	if string(b.Data()) != "hello world" || b.Len() != 11 {
		t.Fatalf("after Put: %q", b.Data())
	}
	copy(b.Push(4), "HDR:")
	if string(b.Data()) != "HDR:hello world" || b.Headroom() != 36 {
		t.Fatalf("after Push: %q headroom %d", b.Data(), b.Headroom())
	}
	b.SetNetworkHeader()
	if rest := b.Pull(4); string(rest) != "hello world" {
		t.Fatalf("Pull returned %q", rest)
	}
	if b.NetworkHeader != 36 || b.DataOffset() != 40 {
		t.Fatalf("network header %d data %d", b.NetworkHeader, b.DataOffset())
	}
	if b.Pull(1000) != nil || b.Len() != 11 {
		t.Fatal("an oversized Pull must fail and change nothing")
	}
	b.Trim(5)
	if string(b.Data()) != "hello" || b.Len() != 5 {
		t.Fatalf("after Trim: %q", b.Data())
	}
	b.Trim(50) // longer than the packet: no-op
	if b.Len() != 5 {
		t.Fatalf("Trim(50) changed len to %d", b.Len())
	}
}

func TestPutPastEndPanics(t *testing.T) {
	b := Alloc(10)
	defer b.Free()
	defer func() {
		if recover() == nil {
			t.Fatal("Put past the end did not panic (skb_over_panic)")
		}
	}()
	b.Put(b.EndOffset() + 1)
}

func TestPushPastHeadPanics(t *testing.T) {
	b := Alloc(10)
	defer b.Free()
	b.Reserve(4)
	defer func() {
		if recover() == nil {
			t.Fatal("Push past the head did not panic (skb_under_panic)")
		}
	}()
	b.Push(5)
}

func TestDestructorRunsOnceOnFree(t *testing.T) {
	var o countingOwner
	b := Alloc(1)
	b.SetDestructor(&o)
	o.charged = b.Truesize()
	b.Free()
	if o.calls != 1 || o.charged != 0 {
		t.Fatalf("destructor calls %d, charge left %d", o.calls, o.charged)
	}
}

func TestOrphanRunsDestructorEarly(t *testing.T) {
	var o countingOwner
	b := Alloc(1)
	b.SetDestructor(&o)
	b.Orphan()
	if o.calls != 1 || b.Destructor() != nil {
		t.Fatalf("after Orphan: calls %d destructor %v", o.calls, b.Destructor())
	}
	b.Free()
	if o.calls != 1 {
		t.Fatalf("Free after Orphan ran the destructor again (%d calls)", o.calls)
	}
}

// Seed note: a clone shares the data and the buffer is freed once, by the
// last of the two to go.
func TestCloneSharesDataAndFreesOnce(t *testing.T) {
	before := LiveHeads()
	var o countingOwner
	b := Alloc(64)
	b.PutData([]byte("payload"))
	b.SetDestructor(&o)
	c := b.Clone()
	if !b.Cloned() || !c.Cloned() {
		t.Fatal("both halves must report Cloned")
	}
	if c.Destructor() != nil {
		t.Fatal("a clone must not inherit the owner")
	}
	if c.Truesize() != b.Truesize() {
		t.Fatalf("clone truesize %d, original %d", c.Truesize(), b.Truesize())
	}
	c.Data()[0] = 'P' // same bytes, not a copy
	if string(b.Data()) != "Payload" {
		t.Fatalf("clone does not share data: original reads %q", b.Data())
	}
	if b.Dataref() != 2 {
		t.Fatalf("dataref %#x, want 2", b.Dataref())
	}
	if LiveHeads() != before+1 {
		t.Fatalf("live heads %d, want %d", LiveHeads(), before+1)
	}
	b.Free()
	if o.calls != 1 {
		t.Fatal("freeing the original must uncharge its owner")
	}
	if LiveHeads() != before+1 {
		t.Fatal("the buffer was released while the clone still uses it")
	}
	if string(c.Data()) != "Payload" {
		t.Fatalf("clone's data changed after the original was freed: %q", c.Data())
	}
	if c.Cloned() {
		t.Fatal("the survivor is no longer sharing")
	}
	c.Free()
	if LiveHeads() != before {
		t.Fatalf("buffer not released after the last reference: live %d, want %d", LiveHeads(), before)
	}
}

// The dataref split: TCP releases the header of the original before the
// first clone, so the clone may write headers while the payload is shared.
func TestDatarefHeaderRelease(t *testing.T) {
	b := Alloc(128)
	b.Reserve(64)
	b.PutData([]byte("data"))
	b.HeaderRelease()
	if b.Dataref() != 1+1<<16 {
		t.Fatalf("after HeaderRelease dataref %#x, want 0x10001", b.Dataref())
	}
	if b.Cloned() {
		t.Fatal("HeaderRelease alone does not share the buffer")
	}
	c := b.Clone()
	if b.Dataref() != 2+1<<16 {
		t.Fatalf("after Clone dataref %#x, want 0x10002", b.Dataref())
	}
	if !b.Cloned() || !c.Cloned() {
		t.Fatal("both must be cloned")
	}
	if c.HeaderCloned() || b.HeaderCloned() {
		t.Fatal("with the original's header released, the header is not shared")
	}
	copy(c.Push(4), "IPv4") // the clone writes its header into the headroom
	if string(c.Data()) != "IPv4data" || string(b.Data()) != "data" {
		t.Fatalf("clone %q original %q", c.Data(), b.Data())
	}
	before := LiveHeads()
	c.Free()
	if b.Dataref() != 1+1<<16 {
		t.Fatalf("after freeing the clone dataref %#x", b.Dataref())
	}
	b.Free()
	if LiveHeads() != before-1 {
		t.Fatal("buffer not released")
	}

	// Without HeaderRelease both halves claim the header.
	b = Alloc(64)
	c = b.Clone()
	if !b.HeaderCloned() || !c.HeaderCloned() {
		t.Fatal("plain clones share the header")
	}
	b.Free()
	c.Free()
}

func TestFclonePair(t *testing.T) {
	b := AllocFclone(192)
	b.Reserve(192)
	b.PutData([]byte("seg"))
	b.HeaderRelease()
	if b.FcloneBusy() {
		t.Fatal("no clone yet")
	}
	c1 := b.Clone()
	if c1 != &b.pair.skb2 {
		t.Fatal("the first clone must be the preallocated companion")
	}
	if !b.FcloneBusy() {
		t.Fatal("companion alive: busy")
	}
	c2 := b.Clone() // companion taken: an ordinary clone
	if c2 == &b.pair.skb2 {
		t.Fatal("second clone reused the busy companion")
	}
	c1.Free()
	if b.FcloneBusy() {
		t.Fatal("companion freed: not busy")
	}
	c3 := b.Clone() // retransmission reuses the companion
	if c3 != &b.pair.skb2 {
		t.Fatal("the companion is reused once free")
	}
	before := LiveHeads()
	b.Free() // original first, clones later (the device still holds them)
	c2.Free()
	if LiveHeads() != before {
		t.Fatal("buffer released while a clone still holds it")
	}
	if string(c3.Data()) != "seg" {
		t.Fatalf("clone data %q", c3.Data())
	}
	c3.Free()
	if LiveHeads() != before-1 {
		t.Fatal("buffer not released")
	}
}

func TestCopyIsPrivate(t *testing.T) {
	b := Alloc(64)
	b.Reserve(16)
	b.PutData([]byte("abc"))
	b.Protocol = 0x800
	n := b.Copy()
	n.Data()[0] = 'X'
	if string(b.Data()) != "abc" || string(n.Data()) != "Xbc" || n.Headroom() != 16 || n.Protocol != 0x800 {
		t.Fatalf("copy %q original %q headroom %d", n.Data(), b.Data(), n.Headroom())
	}
	if n.Cloned() || b.Cloned() {
		t.Fatal("a copy shares nothing")
	}
	b.Free()
	n.Free()
}

func fillFrags(t *testing.T, b *SKB, pf *PageFrag, data []byte) {
	t.Helper()
	for len(data) > 0 {
		_, room := pf.Refill()
		n := copy(room, data)
		page, off := pf.Commit(n)
		if !b.AddFrag(page, off, n) {
			t.Fatal("AddFrag: no room")
		}
		data = data[n:]
	}
}

func TestFragsCopyBitsAndTrim(t *testing.T) {
	var pf PageFrag
	defer pf.Release()
	b := Alloc(64)
	b.PutData([]byte("head:"))
	payload := bytes.Repeat([]byte("0123456789"), 8000) // 80000 bytes, three pages
	fillFrags(t, b, &pf, payload)
	if b.Len() != 5+len(payload) || b.NrFrags() != 3 {
		t.Fatalf("len %d frags %d", b.Len(), b.NrFrags())
	}
	if b.Tailroom() != 0 {
		t.Fatal("a nonlinear skb has no tailroom")
	}
	got := make([]byte, b.Len())
	if n := b.CopyBits(0, got); n != b.Len() {
		t.Fatalf("CopyBits copied %d", n)
	}
	if !bytes.Equal(got, append([]byte("head:"), payload...)) {
		t.Fatal("CopyBits returned the wrong bytes")
	}
	part := make([]byte, 20)
	b.CopyBits(32770, part) // straddles the first page boundary
	if !bytes.Equal(part, payload[32765:32785]) {
		t.Fatalf("CopyBits at 32770: %q", part)
	}
	lastPage := b.Frag(2).Page
	if lastPage.Refs() != 2 { // the PageFrag cache and the fragment
		t.Fatalf("last page refs %d, want 2", lastPage.Refs())
	}
	b.Trim(5 + 100)
	if b.Len() != 105 || b.NrFrags() != 1 || b.DataLen() != 100 {
		t.Fatalf("after Trim: len %d frags %d datalen %d", b.Len(), b.NrFrags(), b.DataLen())
	}
	b.Trim(3)
	if b.NrFrags() != 0 || string(b.Data()) != "hea" {
		t.Fatalf("after Trim into the head: frags %d data %q", b.NrFrags(), b.Data())
	}
	if lastPage.Refs() != 1 { // only the PageFrag cache holds it now
		t.Fatalf("page refs %d after trimming its fragment away", lastPage.Refs())
	}
	b.Free()
}

func TestAddFragMergesAdjacent(t *testing.T) {
	var pf PageFrag
	defer pf.Release()
	b := Alloc(0)
	fillFrags(t, b, &pf, []byte("abc"))
	fillFrags(t, b, &pf, []byte("def"))
	if b.NrFrags() != 1 || b.DataLen() != 6 {
		t.Fatalf("adjacent pieces of one page must merge: frags %d", b.NrFrags())
	}
	if b.Frag(0).Page.Refs() != 2 { // the cache and the one fragment
		t.Fatalf("page refs %d, want 2", b.Frag(0).Page.Refs())
	}
	b.Free()
}

func TestQueue(t *testing.T) {
	var q Queue
	a, b, c := Alloc(1), Alloc(1), Alloc(1)
	a.Put(1)
	b.Put(1)
	c.Put(1)
	q.PushBack(b)
	q.PushFront(a)
	q.PushBack(c)
	if q.Len() != 3 || q.Bytes() != 3 || q.Peek() != a || q.PeekTail() != c || a.Next() != b || c.Prev() != b {
		t.Fatal("queue order wrong")
	}
	q.Unlink(b)
	if q.Len() != 2 || a.Next() != c || b.OnQueue() {
		t.Fatal("unlink wrong")
	}
	q.InsertAfter(a, b)
	if a.Next() != b || b.Next() != c {
		t.Fatal("InsertAfter wrong")
	}
	if q.PopBack() != c || q.PopFront() != a || q.PopFront() != b || !q.Empty() || q.PopFront() != nil {
		t.Fatal("pop order wrong")
	}
	before := LiveHeads()
	q.PushBack(a)
	q.PushBack(b)
	q.PushBack(c)
	var r Queue
	r.Splice(&q)
	if !q.Empty() || r.Len() != 3 {
		t.Fatal("splice")
	}
	r.Purge()
	if !r.Empty() || LiveHeads() != before-3 {
		t.Fatal("purge must free every skb")
	}
}

func TestDoubleQueueingPanics(t *testing.T) {
	var q, r Queue
	b := Alloc(1)
	q.PushBack(b)
	defer func() {
		if recover() == nil {
			t.Fatal("an skb on two queues must panic")
		}
		q.Purge()
	}()
	r.PushBack(b)
}
