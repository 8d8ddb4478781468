package p9

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// request is one T-message in flight on a served connection, from the
// moment the shim hands it to p9 (or answers it itself) until its reply
// header is written.
type request struct {
	tag    uint16
	typ    uint8
	g      uint64 // goroutine that received it (p9's handler goroutine)
	fid    uint32 // Tattach, Twalk, Txattrwalk: the fid they create
	uid    uint32 // Tattach: the attaching user
	remove bool   // a Tremove passed to p9 as Tclunk
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the reply header goes out
}

// serverConn sits between one client connection and p9's per-connection
// server (p9.Server.Handle reads T-messages from it and writes R-messages
// to it). It sees every frame both ways, which lets it:
//
//   - give each request a context, cancelled by Tflush for its tag, by the
//     client going away, or by Serve's context ending;
//   - answer Tflush itself: cancel the old request, let its reply (EINTR,
//     or the data it already had) go out, then send Rflush, as flush(5)
//     wants; p9 itself only waits for the old tag, forever if it blocks;
//   - answer Tauth with ENOENT ("no authentication required", which diod's
//     clients need; p9 says ENOSYS);
//   - answer the requests p9 would run under a write lock on the path or
//     the global rename lock (Tsetattr, Txattrcreate, Trename, Trenameat,
//     Tremove), which would otherwise wait for every blocked read on that
//     file and, for the rename lock, stall the whole connection;
//   - cap msize and Tread counts;
//   - on Tversion, abort the requests in flight (as version(5) says) and
//     let p9 answer them before it starts the new session;
//   - refuse (EBADF) a request on a fid whose Tlopen is still in flight:
//     p9 v0.3.0 sets a fid's open state in Tlopen's handler without the
//     lock the other handlers read it under, so a client that pipelines
//     a Tread (or a Treaddir, Twalk, ...) behind its Tlopen races inside
//     p9 (the race detector caught it on FuzzServeConn's seeds). A client
//     must wait for Rlopen anyway; Tclunk and Tflush still pass.
type serverConn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer // under wmu; flushed at the end of each message
	log      *slog.Logger
	maxMsize uint32
	ctx      context.Context // the connection's; cancelled when it ends
	cancel   context.CancelFunc

	// Read side: only p9's receiving goroutine (one at a time, under its
	// recvMu) calls Read.
	cur []byte // the frame being handed to p9
	pos int
	buf []byte // reused frame buffer

	mu    sync.Mutex
	msize uint32
	tags  map[uint16]*request
	byG   map[uint64]*request
	fids  map[uint32]bool // fids the client holds (for Tsetattr's EBADF)
	// opening holds the fids with a Tlopen in flight (see next).
	opening map[uint32]*request
	// version is the Tversion given to p9 and not yet answered (see next).
	version *request
	// p9busy counts requests given to p9 whose reply is not completely
	// written yet.
	p9busy int
	wmu    sync.Mutex   // one frame at a time on nc; held across p9's partial writes
	whdr   [hdrLen]byte // header of p9's frame being written
	whn    int
	wrem   int // bytes of p9's current frame still to pass through
	werr   error
	broken atomic.Bool // a write to the client failed: p9's writes are dropped
}

func newServerConn(ctx context.Context, nc net.Conn, maxMsize uint32, log *slog.Logger) *serverConn {
	c := &serverConn{
		nc:       nc,
		br:       bufio.NewReaderSize(nc, 64<<10),
		bw:       bufio.NewWriterSize(nc, 16<<10),
		log:      log,
		maxMsize: maxMsize,
		msize:    maxMsize,
		tags:     make(map[uint16]*request),
		byG:      make(map[uint64]*request),
		fids:     make(map[uint32]bool),
		opening:  make(map[uint32]*request),
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	return c
}

// Read hands p9 the next T-message it should handle. Messages the shim
// answers itself are never seen by p9. When the client goes away, Read
// cancels the connection's context so that blocked calls return (consuming
// nothing) and p9 can clunk every fid.
func (c *serverConn) Read(p []byte) (int, error) {
	for c.pos == len(c.cur) {
		if err := c.next(); err != nil {
			c.cancel()
			c.drain()
			return 0, err
		}
	}
	n := copy(p, c.cur[c.pos:])
	c.pos += n
	return n, nil
}

// drain waits, once the connection is over, until p9 has answered every
// request it was given (their contexts are cancelled, so this is prompt).
//
// It works around a race in p9's Server.Handle: handler goroutines call
// pendingWg.Add(1) each time they loop back for another message, so if the
// reader reports the error while another goroutine is still finishing a
// request, Handle's Wait can be overtaken by that goroutine's Add from
// zero, which the race detector reports and sync.WaitGroup may panic on
// ("reused before previous Wait has returned"). While this goroutine is
// inside Read it holds a count, so the others' Adds are not from zero.
func (c *serverConn) drain() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		busy := c.p9busy
		c.mu.Unlock()
		// Once a write to the client has failed, p9's replies are
		// dropped unread (Write cannot even parse them), so busy no
		// longer counts down: the handlers return at once anyway.
		if busy == 0 || c.broken.Load() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Let the last one get from its reply back to Add.
	time.Sleep(5 * time.Millisecond)
}

// abortInFlight cancels every request in flight but self and waits (at
// most 5 s) until p9 has written the replies of those it was given.
func (c *serverConn) abortInFlight(self *request) {
	c.mu.Lock()
	for _, o := range c.tags {
		if o != self {
			o.cancel()
		}
	}
	c.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		c.mu.Lock()
		busy := c.p9busy
		c.mu.Unlock()
		if busy == 0 || c.broken.Load() {
			return
		}
	}
}

// next reads one frame from the client and either keeps it for p9 (as
// c.cur) or answers it.
func (c *serverConn) next() error {
	var sz [4]byte
	if _, err := io.ReadFull(c.br, sz[:]); err != nil {
		return err
	}
	size := le.Uint32(sz[:])
	if size < hdrLen || size > c.maxMsize {
		c.log.Debug("9p: bad frame size", "size", size)
		return errors.New("9p: bad frame size")
	}
	if cap(c.buf) < int(size) {
		c.buf = make([]byte, size)
	}
	f := frame(c.buf[:size])
	copy(f, sz[:])
	if _, err := io.ReadFull(c.br, f[4:]); err != nil {
		return err
	}
	c.cur, c.pos = nil, 0

	// Nothing goes to p9 until it has answered a Tversion: p9 v0.3.0
	// reads the next message in another goroutine while its Tversion
	// handler sets up the session's buffers, unsynchronised (a race the
	// race detector found with FuzzServeConn's seeds). A client must wait
	// for Rversion anyway.
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != nil {
		select {
		case <-v.done:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}

	r := &request{tag: f.tag(), typ: f.typ(), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(c.ctx)
	c.mu.Lock()
	if _, busy := c.tags[r.tag]; busy && r.tag != noTag {
		// A tag reused while in flight: p9 drops such a request
		// without an answer; keep the first one's bookkeeping.
		c.mu.Unlock()
		r.cancel()
		c.cur = f
		return nil
	}
	c.tags[r.tag] = r
	msize := c.msize
	c.mu.Unlock()

	if usesFid(f.typ()) {
		fid, _ := f.u32(0)
		c.mu.Lock()
		_, busy := c.opening[fid]
		c.mu.Unlock()
		if busy {
			go c.reply(r, rlerror(r.tag, uint32(syscall.EBADF)))
			return nil
		}
	}
	switch f.typ() {
	case msgTversion:
		// version(5): a Tversion aborts all outstanding I/O. Cancel what
		// p9 is still running and let it answer before p9 sees the
		// Tversion: p9 v0.3.0 replaces per-session buffers (the zeros
		// its Rread cleanup copies) that those replies still use, a race
		// FuzzServeConn's seeds found.
		c.abortInFlight(r)
		// Cap msize in the request, so p9 agrees to our limit. A new
		// session also forgets every fid.
		if m, ok := f.u32(0); ok && m > c.maxMsize {
			le.PutUint32(f[hdrLen:], c.maxMsize)
		}
		m, _ := f.u32(0)
		c.mu.Lock()
		c.msize = min(m, c.maxMsize)
		clear(c.fids)
		c.version = r
		c.mu.Unlock()
	case msgTauth:
		go c.reply(r, rlerror(r.tag, uint32(syscall.ENOENT)))
		return nil
	case msgTflush:
		old, ok := f.u16(0)
		if !ok {
			go c.reply(r, rlerror(r.tag, uint32(syscall.EINVAL)))
			return nil
		}
		// Look the old request up now, in message order: once its
		// reply is out, a client may (wrongly, but p9's own client
		// does) reuse the tag before our Rflush.
		c.mu.Lock()
		o := c.tags[old]
		c.mu.Unlock()
		go c.flush(r, o)
		return nil
	case msgTsetattr:
		// Accepted and ignored, as the FUSE frontend does (truncation
		// from `>` included), but for fids the client does not hold.
		fid, _ := f.u32(0)
		c.mu.Lock()
		ok := c.fids[fid]
		c.mu.Unlock()
		ans := newFrame(msgRsetattr, r.tag)
		if !ok {
			ans = rlerror(r.tag, uint32(syscall.EBADF))
		}
		go c.reply(r, ans)
		return nil
	case msgTxattrcreat:
		go c.reply(r, rlerror(r.tag, uint32(syscall.EOPNOTSUPP)))
		return nil
	case msgTrename, msgTrenameat:
		go c.reply(r, rlerror(r.tag, uint32(syscall.EPERM)))
		return nil
	case msgTremove:
		// Nothing in the tree can be removed (Plan 9 says Eperm), but
		// Tremove clunks the fid even when it fails: pass it to p9 as
		// Tclunk and turn the Rclunk into Rlerror(EPERM).
		f[4] = msgTclunk
		r.typ, r.remove = msgTclunk, true
		fallthrough
	case msgTclunk:
		fid, _ := f.u32(0)
		c.mu.Lock()
		delete(c.fids, fid)
		c.mu.Unlock()
	case msgTattach:
		r.fid, _ = f.u32(0)
		r.uid = noUID
		if _, off, ok := f.str(8); ok { // uname
			if _, off, ok = f.str(off); ok { // aname
				r.uid, _ = f.u32(off)
			}
		}
	case msgTwalk, msgTxattrwalk:
		r.fid, _ = f.u32(4)
	case msgTlopen:
		r.fid, _ = f.u32(0)
		c.mu.Lock()
		c.opening[r.fid] = r
		c.mu.Unlock()
	}
	switch f.typ() {
	case msgTread:
		// p9 reads into an msize-long buffer: keep the reply within it.
		if n, ok := f.u32(12); ok && msize > readHdr && n > msize-readHdr {
			le.PutUint32(f[hdrLen+12:], msize-readHdr)
		}
	}
	switch f.typ() {
	case msgTattach, msgTlopen, msgTread, msgTwrite:
		// The only requests whose handlers ask for their request
		// (current): goid costs a few microseconds, so only these
		// pay it.
		r.g = goid()
	}
	c.mu.Lock()
	if r.g != 0 {
		c.byG[r.g] = r
	}
	c.p9busy++
	c.mu.Unlock()
	c.cur = f
	return nil
}

// flush answers Tflush r for old (nil if its tag was not in flight): it cancels the old request (whose
// blocking call then returns EINTR having consumed nothing, or returns what
// it already had), waits until the old reply is on the wire, and then
// sends Rflush, so the client sees either the complete old reply or none.
func (c *serverConn) flush(r *request, old *request) {
	if old != nil && old != r {
		c.log.Debug("9p: flush", "tag", old.tag, "type", old.typ)
		old.cancel()
		select {
		case <-old.done:
		case <-c.ctx.Done():
		}
	}
	c.reply(r, newFrame(msgRflush, r.tag))
}

// reply writes the shim's own answer to r.
func (c *serverConn) reply(r *request, f frame) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.finish(f.tag())
	c.send(f)
	c.flushOut()
}

// send queues b for the client; errors stick. Called with wmu held.
func (c *serverConn) send(b []byte) {
	if c.werr == nil {
		if _, err := c.bw.Write(b); err != nil {
			c.werr = err
		}
	}
}

// flushOut pushes a complete message out. Called with wmu held.
func (c *serverConn) flushOut() {
	if c.werr == nil {
		if err := c.bw.Flush(); err != nil {
			c.werr = err
		}
	}
}

// finish retires the request with tag: its reply is about to be written.
// Called with wmu held, so a Tflush waiting on it writes Rflush only after
// the reply is out; and before the reply is written, since the client may
// reuse the tag as soon as it has the reply. It reports the request.
func (c *serverConn) finish(tag uint16) *request {
	c.mu.Lock()
	r := c.tags[tag]
	if r != nil {
		delete(c.tags, tag)
		if r.g != 0 && c.byG[r.g] == r {
			delete(c.byG, r.g)
		}
		if r.typ == msgTlopen && c.opening[r.fid] == r {
			delete(c.opening, r.fid)
		}
		if c.version == r {
			c.version = nil
		}
	}
	c.mu.Unlock()
	if r != nil {
		r.cancel()
		close(r.done)
	}
	return r
}

// Write passes p9's R-messages to the client. p9 writes a message as
// several slices (header, fixed part, payload) under its own send lock;
// Write holds wmu from a message's header to its last byte so that the
// shim's own replies go between messages.
func (c *serverConn) Write(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, net.ErrClosed
	}
	total := len(p)
	for len(p) > 0 {
		if c.wrem == 0 {
			n := copy(c.whdr[c.whn:], p)
			c.whn += n
			p = p[n:]
			if c.whn < hdrLen {
				continue
			}
			c.whn = 0
			if err := c.startReply(frame(c.whdr[:])); err != nil {
				c.abandon()
				return total - len(p), err
			}
			continue
		}
		n := min(len(p), c.wrem)
		c.send(p[:n])
		p = p[n:]
		c.wrem -= n
		if c.wrem == 0 {
			c.flushOut()
			err := c.werr
			c.wmu.Unlock()
			c.p9done()
			if err != nil {
				c.broken.Store(true)
				return total - len(p), err
			}
		}
	}
	if c.wrem > 0 { // in the middle of a message: wmu is ours
		if err := c.werr; err != nil {
			c.abandon()
			return total, err
		}
	}
	return total, nil
}

// abandon gives up p9's current message after a failed write: p9 stops
// writing it, so wmu (held from its header on) and its p9busy count must
// be released here, or drain and the shim's own replies would wait for
// ever (found by FuzzServeConn: a client closing while a reply was on its
// way kept serveConn from returning). Later writes are dropped.
func (c *serverConn) abandon() {
	c.whn = 0
	if c.wrem > 0 {
		c.wrem = 0
		c.wmu.Unlock()
		c.p9done()
	}
	c.broken.Store(true)
}

// startReply takes wmu for p9's reply whose header is h, does the
// bookkeeping for its request and writes the header.
func (c *serverConn) startReply(h frame) error {
	c.wmu.Lock()
	r := c.finish(h.tag())
	if r != nil && h.typ() != msgRlerror {
		switch h.typ() {
		case msgRattach, msgRwalk, msgRxattrwalk:
			c.mu.Lock()
			c.fids[r.fid] = true
			c.mu.Unlock()
		}
	}
	out := []byte(h)
	if r != nil && r.remove && h.typ() == msgRclunk {
		out = rlerror(h.tag(), uint32(syscall.EPERM))
	}
	c.send(out)
	c.wrem = int(h.size()) - hdrLen
	err := c.werr
	if c.wrem <= 0 {
		c.wrem = 0
		c.flushOut()
		err = c.werr
		c.wmu.Unlock()
		c.p9done()
	}
	return err
}

// p9done notes that one of p9's replies is completely written.
func (c *serverConn) p9done() {
	c.mu.Lock()
	if c.p9busy > 0 {
		c.p9busy--
	}
	c.mu.Unlock()
}

// Close closes the client connection (p9 calls it when it is done).
func (c *serverConn) Close() error {
	c.cancel()
	return c.nc.Close()
}

// current returns the request p9 is handling in the calling goroutine: its
// context (cancelled by Tflush or the end of the connection) and, for
// Tattach, the user.
func (c *serverConn) current() *request {
	g := goid()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byG[g]
}

// reqContext is the context for the blocking call made in this goroutine.
func (c *serverConn) reqContext() context.Context {
	if r := c.current(); r != nil {
		return r.ctx
	}
	return c.ctx
}
