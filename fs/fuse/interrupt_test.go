package fuse

import (
	"syscall"
	"testing"
	"time"
)

// TestInterruptBeforeItsRequest: an INTERRUPT that reaches the server
// before the request it names has registered (the device hands INTERRUPTs
// out first) is kept, not answered EAGAIN, and the request starts
// cancelled when it registers; past maxEarly kept, one is answered EAGAIN
// at once, and one kept longer than earlyTTL is answered EAGAIN by the
// next request that registers. The device here is a socket pair in place
// of /dev/fuse (a mock): the kernel cannot be made to hand out an
// INTERRUPT ahead of its request on demand.
func TestInterruptBeforeItsRequest(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	if err := syscall.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	s := newServer(fds[0], nil)
	w := s.takeWorker()
	interrupt := func(intr, unique uint64) {
		req := make([]byte, inHeaderLen+8)
		ne.PutUint32(req[0:], uint32(len(req)))
		ne.PutUint32(req[4:], opInterrupt)
		ne.PutUint64(req[8:], intr)
		ne.PutUint64(req[inHeaderLen:], unique)
		w.serve(req)
	}
	// answer returns the unique and errno of the next reply written, or
	// ok false if none was.
	answer := func() (unique uint64, errno int32, ok bool) {
		var b [64]byte
		n, err := syscall.Read(fds[1], b[:])
		if err != nil || n < outHeaderLen {
			return 0, 0, false
		}
		return ne.Uint64(b[8:]), int32(ne.Uint32(b[4:])), true
	}
	register := func(unique uint64) *reqCtx {
		c := w.begin(inHeader{unique: unique})
		w.end(c)
		return c
	}

	interrupt(1, 77)
	if u, e, ok := answer(); ok {
		t.Fatalf("INTERRUPT of a request not yet registered answered (unique %d, errno %d); want it kept", u, e)
	}
	if c := register(77); c.Err() == nil {
		t.Fatal("request 77 registered uncancelled after its INTERRUPT")
	}
	if c := register(78); c.Err() != nil {
		t.Fatal("request 78 registered cancelled: it had no INTERRUPT")
	}

	for i := range uint64(maxEarly) {
		interrupt(5000+i, 1000+i)
	}
	if _, _, ok := answer(); ok {
		t.Fatalf("an INTERRUPT of the first %d answered", maxEarly)
	}
	interrupt(9999, 2000)
	if u, e, ok := answer(); !ok || u != 9999 || e != -int32(syscall.EAGAIN) {
		t.Fatalf("INTERRUPT past maxEarly: answer %d, %d, %v; want 9999, -EAGAIN", u, e, ok)
	}

	s.rmu.Lock()
	s.early[1000] = earlyIntr{intr: 5000, at: time.Now().Add(-2 * earlyTTL)}
	s.rmu.Unlock()
	if c := register(3000); c.Err() != nil {
		t.Fatal("request 3000 registered cancelled")
	}
	if u, e, ok := answer(); !ok || u != 5000 || e != -int32(syscall.EAGAIN) {
		t.Fatalf("expired INTERRUPT: answer %d, %d, %v; want 5000, -EAGAIN", u, e, ok)
	}
	if _, ok := s.early[1000]; ok {
		t.Fatal("expired INTERRUPT still kept")
	}
}
