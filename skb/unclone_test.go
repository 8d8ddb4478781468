package skb

import "testing"

// A clone made private by Unclone keeps its bytes, offsets, fragments and
// truesize, may be written (header and fragment list) without the original
// seeing it, and both buffers are released once.
func TestUncloneMakesHeadPrivate(t *testing.T) {
	before := LiveHeads()
	var pf PageFrag
	defer pf.Release()
	b := Alloc(128)
	b.Reserve(64)
	b.PutData([]byte("hdr:"))
	fillFrags(t, b, &pf, []byte("payload"))
	b.Shared().GSOSize = 1448
	c := b.Clone()
	page := b.Frag(0).Page
	refs := page.Refs()

	c.Unclone()
	if c.Cloned() || b.Cloned() {
		t.Fatalf("after Unclone: clone cloned %v, original cloned %v", c.Cloned(), b.Cloned())
	}
	if c.Shared() == b.Shared() {
		t.Fatal("Unclone kept the shared info")
	}
	if c.Truesize() != b.Truesize() || c.Headroom() != 64 || c.Len() != b.Len() || c.HeadLen() != 4 {
		t.Fatalf("clone after Unclone: %v (original %v)", c, b)
	}
	if c.Shared().GSOSize != 1448 || c.NrFrags() != 1 || page.Refs() != refs+1 {
		t.Fatalf("gso_size %d frags %d page refs %d (was %d)", c.Shared().GSOSize, c.NrFrags(), page.Refs(), refs)
	}
	if LiveHeads() != before+2 {
		t.Fatalf("live heads %d, want %d", LiveHeads()-before, 2)
	}
	c.Data()[0] = 'H'
	fillFrags(t, c, &pf, []byte("more"))
	if string(b.Data()) != "hdr:" || b.NrFrags() != 1 || b.Len() != 11 {
		t.Fatalf("the original changed: %q, %v", b.Data(), b)
	}
	got := make([]byte, c.Len())
	c.CopyBits(0, got)
	if string(got) != "Hdr:payloadmore" {
		t.Fatalf("clone reads %q", got)
	}
	b.Free()
	c.Free()
	if LiveHeads() != before {
		t.Fatalf("%d heads leaked", LiveHeads()-before)
	}
}

// An skb nobody shares is left as it is.
func TestUncloneOfPrivateSkbIsNoop(t *testing.T) {
	b := Alloc(64)
	b.PutData([]byte("x"))
	sh := b.Shared()
	b.Unclone()
	if b.Shared() != sh {
		t.Fatal("Unclone replaced the head of an skb that was not cloned")
	}
	b.Free()
}
