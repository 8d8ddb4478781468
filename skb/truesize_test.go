package skb

import "testing"

// udpAlloc is the head size __ip_append_data asks for a loopback UDP datagram
// of payload L: L + 28 (IP and UDP headers) + 16 (LL_RESERVED_SPACE(lo)) + 15.
func udpAlloc(payload int) int { return payload + 59 }

// withProfile runs f under p and restores the default afterwards.
func withProfile(t testing.TB, p Profile, f func()) {
	t.Helper()
	old := SetProfile(p)
	defer SetProfile(old)
	f()
}

// Scenario B11 of linux-skmem.md: the truesize of a loopback UDP datagram by
// payload length, for the three profiles (minimal and distro 6.18, pre-6.3).
func TestScenario11_UDPLoopbackTruesize(t *testing.T) {
	cases := []struct {
		payload            int
		min, distro, pre63 int
	}{
		{1, 832, 960, 768},
		{100, 832, 960, 768},
		{133, 832, 960, 768},
		{134, 832, 960, 1280},
		{197, 832, 960, 1280},
		{198, 1280, 960, 1280},
		{325, 1280, 960, 1280},
		{326, 1280, 1280, 1280},
		{645, 1280, 1280, 1280},
		{646, 2304, 2304, 2304},
		{1000, 2304, 2304, 2304},
		{1400, 2304, 2304, 2304},
		{1669, 2304, 2304, 2304},
		{1670, 4352, 4352, 4352},
		{3717, 4352, 4352, 4352},
		{3718, 8448, 8448, 8448},
		{4000, 8448, 8448, 8448},
		{7813, 8448, 8448, 8448},
		{7814, 16640, 16640, 16640},
		{8000, 16640, 16640, 16640},
		{9000, 16640, 16640, 16640},
		{16004, 16640, 16640, 16640},
	}
	for _, c := range cases {
		for _, pc := range []struct {
			p    Profile
			want int
		}{{Linux618Min, c.min}, {Linux618Distro, c.distro}, {LinuxPre63, c.pre63}} {
			withProfile(t, pc.p, func() {
				// The profile's arithmetic and a real allocation must agree.
				if got := pc.p.AllocTruesize(udpAlloc(c.payload)); got != pc.want {
					t.Errorf("%s: AllocTruesize(payload %d) = %d, want %d", pc.p.Name, c.payload, got, pc.want)
				}
				b := Alloc(udpAlloc(c.payload))
				b.Put(udpAlloc(c.payload))
				if b.Truesize() != pc.want {
					t.Errorf("%s: Alloc for payload %d: truesize %d, want %d", pc.p.Name, c.payload, b.Truesize(), pc.want)
				}
				// Honest: the head really has the capacity it is charged for.
				if got, want := b.EndOffset(), b.Truesize()-pc.p.SKBSize-pc.p.ShinfoSize; got != want {
					t.Errorf("%s: usable head %d, want %d", pc.p.Name, got, want)
				}
				b.Free()
			})
		}
	}
}

// Scenario B12: SKB_TRUESIZE(256) * 256 is the default buffer size.
func TestScenario12_DefaultBufferIdentity(t *testing.T) {
	if got := Linux618Min.TruesizeOf(256); got != 832 {
		t.Fatalf("SKB_TRUESIZE(256) = %d, want 832", got)
	}
	if got := Linux618Min.TruesizeOf(256) * 256; got != 212992 {
		t.Fatalf("rmem_default = %d, want 212992", got)
	}
}

// Scenario B13 (the skb part): a TCP transmit skb is alloc_skb_fclone of
// MAX_TCP_HEADER, truesize 832 (minimal) or 960 (distro), and page-fragment
// payload adds exactly its bytes: one 32741-byte segment gives 33573.
func TestScenario13_TCPSkbTruesize(t *testing.T) {
	for _, pc := range []struct {
		p    Profile
		want int
	}{{Linux618Min, 832}, {Linux618Distro, 960}} {
		withProfile(t, pc.p, func() {
			b := AllocFclone(pc.p.MaxTCPHeader)
			b.Reserve(pc.p.MaxTCPHeader)
			if b.Truesize() != pc.want {
				t.Fatalf("%s: tcp skb truesize %d, want %d", pc.p.Name, b.Truesize(), pc.want)
			}
			var pf PageFrag
			left := 32741
			for left > 0 {
				page, room := pf.Refill()
				n := min(left, len(room))
				for i := range room[:n] {
					room[i] = byte(i)
				}
				pg, off := pf.Commit(n)
				if pg != page || !b.AddFrag(pg, off, n) {
					t.Fatal("AddFrag failed")
				}
				b.AddTruesize(n) // skb_copy_to_page_nocache charges the copy
				left -= n
			}
			if b.Truesize() != pc.want+32741 {
				t.Fatalf("%s: truesize with payload %d, want %d", pc.p.Name, b.Truesize(), pc.want+32741)
			}
			if b.Len() != 32741 || b.DataLen() != 32741 || b.HeadLen() != 0 {
				t.Fatalf("len %d datalen %d headlen %d", b.Len(), b.DataLen(), b.HeadLen())
			}
			b.Free()
			pf.Release()
		})
	}
}

// Seed note: a large buffer holding a small packet is charged its full size,
// and a 1-byte packet is charged its whole size class plus the struct.
func TestLargeBufferSmallPacketChargedFullSize(t *testing.T) {
	b := Alloc(16000)
	b.Put(1)
	if b.Len() != 1 {
		t.Fatalf("len %d", b.Len())
	}
	if b.Truesize() != 16384+256 {
		t.Fatalf("truesize %d, want %d", b.Truesize(), 16384+256)
	}
	b.Free()

	b = Alloc(1)
	b.Put(1)
	if b.Truesize() != 832 {
		t.Fatalf("1-byte skb truesize %d, want 832", b.Truesize())
	}
	b.Free()
}

func TestKmallocBuckets(t *testing.T) {
	for _, c := range []struct{ in, want int }{
		{1, 512}, {512, 512}, {513, 1024}, {8192, 8192}, {8193, 16384}, {70000, 131072},
	} {
		if got := kmallocRoundup(c.in); got != c.want {
			t.Errorf("kmallocRoundup(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
