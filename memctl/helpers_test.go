package memctl

import (
	"testing"
	"time"
)

// testBuf is a stand-in for *skb.SKB: the real packet buffer lives in package
// skb, which memctl must not import, so the unit tests here use this minimal
// Buffer. (scenario_skb_test.go checks the same paths with the real skb.)
type testBuf struct {
	ts int
	d  Destructor
}

func (b *testBuf) Truesize() int              { return b.ts }
func (b *testBuf) SetDestructor(d Destructor) { b.d = d }

// Free runs the destructor once, as skb.Free does.
func (b *testBuf) Free() {
	if d := b.d; d != nil {
		b.d = nil
		d.SkbDestruct(b.ts)
	}
}

// fakeClock is an injectable clock for the pressure chrono.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// nfbp235 is nr_free_buffer_pages of the 23.5 GiB research VM.
const nfbp235 = 6141888

func newTestNet(t testing.TB, opts Options) *Net {
	t.Helper()
	if opts.NrFreeBufferPages == 0 {
		opts.NrFreeBufferPages = nfbp235
	}
	if opts.VMWaitMax == 0 {
		opts.VMWaitMax = time.Millisecond
	}
	return NewNet(opts)
}

func mustWrite(t testing.TB, n *Net, name, text string) {
	t.Helper()
	s, ok := n.Sysctls.Lookup(name)
	if !ok {
		t.Fatalf("no sysctl %s", name)
	}
	if err := s.Write(text); err != nil {
		t.Fatalf("write %s %q: %v", name, text, err)
	}
}

func newUDPSock(n *Net) *Sock {
	sk := NewSock(n, SockDgram, n.UDP)
	sk.InitUDPSock()
	return sk
}

func newTCPSock(n *Net) *Sock {
	sk := NewSock(n, SockStream, n.TCP)
	sk.InitTCPSock()
	return sk
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
