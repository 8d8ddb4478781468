package p9

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// clientConn sits between p9's client and its connection, for what the
// client cannot do itself:
//
//   - flush: p9's client has no way to abandon a request. interrupt(g)
//     sends Tflush for the request the goroutine g is waiting on; the
//     server answers the old tag (EINTR, or the result it already had)
//     before Rflush. The Rflush, whose tag p9 never allocated, is consumed
//     here, and if the server answered the old tag with nothing, an
//     Rlerror(EINTR) is made up for it so that the waiting call returns.
//   - identity: p9's client attaches with no uid (n_uname = ~0); the
//     shim puts uid in its place, so the server opens files as that user.
//
// Tags used for Tflush are taken from the top of the tag space (p9's
// client allocates from 1 upwards, one per request in flight).
type clientConn struct {
	nc  net.Conn
	br  *bufio.Reader
	uid uint32

	// Read side, used by p9's receiving goroutine (one at a time).
	cur   []byte
	pos   int
	queue []frame // made-up replies to hand over before reading nc

	// Write side: p9 writes a message as several slices under its send
	// lock; wbuf collects one message.
	wbuf []byte

	mu        sync.Mutex
	wmu       sync.Mutex           // one message at a time on nc
	pending   map[uint16]uint64    // tag of a request in flight -> sending goroutine
	byG       map[uint64]uint16    // goroutine -> tag of its request in flight
	cancelled map[uint64]bool      // goroutines interrupted before sending
	flushes   map[uint16]*flushReq // by our Tflush's tag
	flushing  map[uint16]*flushReq // by the tag flushed, until its reply
	nextFlush uint16
	msize     uint32 // from Rversion: p9's client keeps the msize it asked for
}

// flushReq is a Tflush we sent.
type flushReq struct {
	old      uint16
	answered bool // the old request got its reply
}

func newClientConn(nc net.Conn, uid uint32) *clientConn {
	return &clientConn{
		nc:        nc,
		br:        bufio.NewReaderSize(nc, 64<<10),
		uid:       uid,
		pending:   make(map[uint16]uint64),
		byG:       make(map[uint64]uint16),
		cancelled: make(map[uint64]bool),
		flushes:   make(map[uint16]*flushReq),
		flushing:  make(map[uint16]*flushReq),
		nextFlush: noTag - 1,
	}
}

// Write collects one of p9's T-messages and sends it whole.
func (c *clientConn) Write(p []byte) (int, error) {
	c.wbuf = append(c.wbuf, p...)
	for len(c.wbuf) >= hdrLen {
		f := frame(c.wbuf)
		size := int(f.size())
		if size < hdrLen {
			return 0, errors.New("9p client: bad message")
		}
		if len(f) < size {
			break
		}
		err := c.send(f[:size])
		c.wbuf = append(c.wbuf[:0], c.wbuf[size:]...)
		if err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *clientConn) send(f frame) error {
	var g uint64
	switch f.typ() {
	case msgTattach:
		if len(f) >= hdrLen+4 && le.Uint32(f[len(f)-4:]) == noUID {
			le.PutUint32(f[len(f)-4:], c.uid)
		}
	case msgTlopen, msgTread, msgTwrite:
		// Only these may block, so only these can be interrupted:
		// note the sending goroutine (goid costs microseconds).
		g = goid()
	}
	c.mu.Lock()
	c.pending[f.tag()] = g
	interrupted := false
	if g != 0 {
		c.byG[g] = f.tag()
		interrupted = c.cancelled[g]
	}
	c.mu.Unlock()
	c.wmu.Lock()
	_, err := c.nc.Write(f)
	c.wmu.Unlock()
	if err == nil && interrupted {
		c.interrupt(g)
	}
	return err
}

// interrupt abandons the request goroutine g is waiting on (or, if it has
// not sent it yet, the one it sends next, until done(g)). It does not wait.
func (c *clientConn) interrupt(g uint64) {
	c.mu.Lock()
	old, ok := c.byG[g]
	if !ok {
		c.cancelled[g] = true
		c.mu.Unlock()
		return
	}
	if c.flushing[old] != nil {
		c.mu.Unlock()
		return
	}
	ftag := c.nextFlush
	for i := 0; i < 4096; i++ {
		_, a := c.pending[ftag]
		_, b := c.flushes[ftag]
		if !a && !b {
			break
		}
		ftag--
	}
	c.nextFlush = ftag - 1
	if c.nextFlush < noTag-4096 {
		c.nextFlush = noTag - 1
	}
	fr := &flushReq{old: old}
	c.flushes[ftag] = fr
	c.flushing[old] = fr
	c.mu.Unlock()

	var b [2]byte
	le.PutUint16(b[:], old)
	c.wmu.Lock()
	c.nc.Write(newFrame(msgTflush, ftag, b[:]...))
	c.wmu.Unlock()
}

// done ends goroutine g's call: a late interrupt no longer applies.
func (c *clientConn) done(g uint64) {
	c.mu.Lock()
	delete(c.cancelled, g)
	if t, ok := c.byG[g]; ok {
		if _, inFlight := c.pending[t]; !inFlight {
			delete(c.byG, g)
		}
	}
	c.mu.Unlock()
}

// Read hands p9 the next R-message meant for it.
func (c *clientConn) Read(p []byte) (int, error) {
	for c.pos == len(c.cur) {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.cur[c.pos:])
	c.pos += n
	return n, nil
}

func (c *clientConn) next() error {
	c.cur, c.pos = nil, 0
	if len(c.queue) > 0 {
		c.cur = c.queue[0]
		c.queue = c.queue[1:]
		c.retire(frame(c.cur).tag())
		return nil
	}
	var sz [4]byte
	if _, err := io.ReadFull(c.br, sz[:]); err != nil {
		return err
	}
	size := le.Uint32(sz[:])
	if size < hdrLen || size > maxMsize {
		return errors.New("9p client: bad message size")
	}
	f := make(frame, size)
	copy(f, sz[:])
	if _, err := io.ReadFull(c.br, f[4:]); err != nil {
		return err
	}
	c.mu.Lock()
	if fr, ours := c.flushes[f.tag()]; ours {
		// The answer to our Tflush: the old request is over. p9's
		// client may already have reused its tag (it frees a tag on
		// the reply, not on our Rflush), so "answered" is tracked per
		// flush, not looked up by tag.
		delete(c.flushes, f.tag())
		if !fr.answered {
			delete(c.flushing, fr.old)
			c.queue = append(c.queue, rlerror(fr.old, uint32(syscall.EINTR)))
		}
		c.mu.Unlock()
		return nil
	}
	if f.typ() == msgRversion {
		if m, ok := f.u32(0); ok {
			c.msize = m
		}
	}
	if fr := c.flushing[f.tag()]; fr != nil {
		fr.answered = true
		delete(c.flushing, f.tag())
	}
	c.mu.Unlock()
	c.retire(f.tag())
	c.cur = f
	return nil
}

// retire forgets the request with tag: its reply is being handed to p9.
func (c *clientConn) retire(tag uint16) {
	c.mu.Lock()
	if g, ok := c.pending[tag]; ok {
		delete(c.pending, tag)
		if g != 0 && c.byG[g] == tag {
			delete(c.byG, g)
		}
	}
	c.mu.Unlock()
}

// Close closes the connection.
func (c *clientConn) Close() error { return c.nc.Close() }
