package fuse

import (
	"sync"
	"syscall"

	netfs "sockfs/fs"
)

// armedRead is a stream handle's READ left with the file (fs.Armer, for a
// TCP data file the socket's armed recv): the reader that read the request
// goes back to /dev/fuse at once instead of waiting in the socket, and
// whoever makes the read possible, the stack's receive path most of the
// time, copies the data into the reply and writes it to /dev/fuse itself.
// A 1-byte request/response through data so costs no goroutine wake-up on
// the daemon's side beyond the device reader's, where the blocking read
// cost the hand-over from the receive path to the waiting reader, which on
// this machine is a thread wake-up. One READ per handle is armed at a
// time; another at once on the same handle blocks as before.
//
// The armedRead is reused from READ to READ. refs counts who may still
// touch it: the armed read itself until it is answered, the reader that
// armed it until it has checked for an early INTERRUPT, and a canceller
// while it cancels; the reply buffer goes back to its pool, and the next
// READ may arm, only when none is left, so no late canceller disarms or
// answers a later READ.
type armedRead struct {
	hd *handle
	a  netfs.Armer

	mu     sync.Mutex
	refs   int
	unique uint64
	buf    []byte // the reply: out header, then p
	pool   *bufPool
	p      []byte

	ctx    reqCtx // in the in-flight table while armed
	doneFn func(int, error)
}

func newArmedRead(hd *handle, a netfs.Armer) *armedRead {
	ar := &armedRead{hd: hd, a: a}
	ar.doneFn = ar.done
	ar.ctx.onCancel = ar.cancel
	return ar
}

// arm arms READ h into buf (size payload bytes); false if it could not
// be armed (another READ is, or the read would not wait), and the caller
// reads as before.
func (ar *armedRead) arm(h inHeader, buf []byte, pool *bufPool, size int) bool {
	s := ar.hd.s
	ar.mu.Lock()
	if ar.refs != 0 {
		ar.mu.Unlock()
		return false
	}
	ar.refs = 2 // the armed read's, and ours until the check below
	ar.unique, ar.buf, ar.pool, ar.p = h.unique, buf, pool, buf[outHeaderLen:outHeaderLen+size]
	ar.mu.Unlock()
	ar.ctx.reset(h.unique, h.pid)
	s.rmu.Lock()
	s.inflight[h.unique] = &ar.ctx
	s.rmu.Unlock()
	if !ar.a.ArmRead(ar.p, ar.doneFn) {
		s.rmu.Lock()
		delete(s.inflight, h.unique)
		s.rmu.Unlock()
		// The buffer stays the caller's; a canceller still holding a
		// reference finds nothing to disarm or give back.
		ar.mu.Lock()
		ar.refs -= 2
		ar.buf, ar.pool, ar.p = nil, nil, nil
		ar.mu.Unlock()
		return false
	}
	// An INTERRUPT (or the signal watch) that came before the read was
	// armed found nothing to disarm.
	if ar.ctx.Err() != nil {
		ar.disarm()
	}
	ar.put()
	return true
}

// done answers the armed READ with the read's result. It runs in the
// goroutine that completed the read (netstack's recvDone).
func (ar *armedRead) done(n int, err error) {
	s := ar.hd.s
	s.rmu.Lock()
	delete(s.inflight, ar.unique)
	s.rmu.Unlock()
	b := ar.buf
	if err != nil {
		putOutHeader(b, outHeaderLen, -int32(errnoOf(err)), ar.unique)
		b = b[:outHeaderLen]
	} else {
		ar.hd.mu.Lock()
		ar.hd.cursor += int64(n)
		ar.hd.mu.Unlock()
		putOutHeader(b, outHeaderLen+n, 0, ar.unique)
		b = b[:outHeaderLen+n]
	}
	s.writeLive(b)
	ar.put()
}

// cancel is the context's onCancel: INTERRUPT or the signal watch
// cancelled request unique.
func (ar *armedRead) cancel(unique uint64) {
	ar.mu.Lock()
	if ar.refs == 0 || ar.unique != unique {
		ar.mu.Unlock()
		return
	}
	ar.refs++
	ar.mu.Unlock()
	ar.disarm()
	ar.put()
}

// disarm answers the READ with EINTR if it is still armed. The caller
// holds a reference.
func (ar *armedRead) disarm() {
	ar.mu.Lock()
	p, unique := ar.p, ar.unique
	ar.mu.Unlock()
	if p == nil || !ar.a.DisarmRead(p) {
		return // answered, or being answered, with the data
	}
	s := ar.hd.s
	s.rmu.Lock()
	delete(s.inflight, unique)
	s.rmu.Unlock()
	var b [outHeaderLen]byte
	putOutHeader(b[:], outHeaderLen, -int32(syscall.EINTR), unique)
	s.writeLive(b[:])
	ar.put()
}

// put drops a reference; the last gives the reply buffer back.
func (ar *armedRead) put() {
	ar.mu.Lock()
	ar.refs--
	if ar.refs > 0 {
		ar.mu.Unlock()
		return
	}
	buf, pool := ar.buf, ar.pool
	ar.buf, ar.pool, ar.p = nil, nil, nil
	ar.mu.Unlock()
	if pool != nil {
		pool.put(buf)
	}
}

// writeLive writes a reply from outside the readers: nothing once the
// server is done (its descriptor may be closed and its number reused).
func (s *server) writeLive(b []byte) {
	s.live.RLock()
	if !s.gone {
		s.write(b)
	}
	s.live.RUnlock()
}
