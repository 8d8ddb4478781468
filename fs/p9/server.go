package p9

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"sockfs/fs"
)

// DefaultMsize is the largest message size Serve agrees to by default.
const DefaultMsize = 1 << 20

// maxMsize is the largest MaxMsize accepted.
const maxMsize = 4 << 20

// Defaults of the per-connection limits.
const (
	DefaultMaxFids     = 4096
	DefaultMaxRequests = 1024
	DefaultMaxBytes    = 64 << 20
)

// Options configures Serve.
type Options struct {
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// MaxMsize caps the negotiated message size; 0 means DefaultMsize
	// (1 MiB). Values above 4 MiB are lowered to it.
	MaxMsize uint32
	// MaxFids bounds the fids one connection may hold (0: DefaultMaxFids);
	// an attach or walk beyond it fails ("too many fids", EMFILE).
	MaxFids int
	// MaxRequests bounds the requests one connection may have in flight
	// (0: DefaultMaxRequests); one more is answered at once with "too many
	// requests in flight" (ENOBUFS).
	MaxRequests int
	// MaxBytes bounds the memory the requests in flight of one connection
	// hold: their messages plus the buffers of their reads (0:
	// DefaultMaxBytes). A request that would go over is answered at once
	// with "too many bytes in flight" (ENOBUFS).
	MaxBytes int64
	// Attach, if set, decides who an attach is. It gets the client's
	// connection and what Tattach said (uname, and n_uname for 9P2000.u
	// and .L, noUID if absent) and returns the uid to open files as, or an
	// error to refuse the attach. Without it, n_uname is the uid if
	// given, else the host's user called uname (nobody if none; an .L
	// attach without n_uname is nobody).
	Attach func(nc net.Conn, uname string, nuname uint32) (uint32, error)
	// HandshakeTimeout bounds the TLS handshake of a connection accepted
	// through a TLS listener (0: 10 s), so that a client that never
	// completes it does not hold a connection.
	HandshakeTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MaxMsize == 0 {
		o.MaxMsize = DefaultMsize
	}
	o.MaxMsize = max(min(o.MaxMsize, maxMsize), minMsize)
	if o.MaxFids <= 0 {
		o.MaxFids = DefaultMaxFids
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	return o
}

// Serve answers 9P on ln until ctx ends or ln fails; it closes ln on
// return. Each connection is served concurrently, in the dialect its
// Tversion asks for (9P2000, 9P2000.u or 9P2000.L). When ctx ends, every
// connection is closed (cancelling its blocked calls) and Serve returns
// once they are all gone. It returns nil if ctx ended or ln was closed,
// else the Accept error.
func Serve(ctx context.Context, ln net.Listener, root fs.Dir, opts Options) error {
	defer ln.Close()
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Go(func() { ServeConn(ctx, nc, root, opts) })
	}
}

// ServeConn serves one client on nc until it goes away or ctx ends, then
// closes nc. It returns once every request of the connection has been
// answered and every fid released.
func ServeConn(ctx context.Context, nc net.Conn, root fs.Dir, opts Options) {
	opts = opts.withDefaults()
	c := &conn{
		nc:    nc,
		root:  root,
		opts:  opts,
		log:   opts.Logger.With("client", nc.RemoteAddr().String()),
		msize: opts.MaxMsize,
		fids:  make(map[uint32]*fid),
		reqs:  make(map[uint16]*request),
		workq: make(chan *request),
		rw:    newRawVec(nc, false),
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, func() { nc.Close() })
	defer stop()
	c.log.Debug("9p: connected")
	err := c.handshake()
	if err == nil {
		err = c.readLoop()
	}
	c.log.Debug("9p: disconnected", "err", err)
	c.cancel()
	c.cancelAll()
	nc.Close()
	c.work.Wait()
	c.clunkAll()
}

// conn is one client connection. The reader goroutine (readLoop) reads
// each message and answers it inline, except the requests that may block
// (Topen, Tlopen, Tread, Twrite), which it hands to worker goroutines so
// that a blocked read never stalls other tags.
type conn struct {
	nc     net.Conn
	root   fs.Dir
	opts   Options
	log    *slog.Logger
	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc
	work   sync.WaitGroup // worker goroutines

	// workq hands a blocking request to an idle worker; a request that
	// finds none starts a new one. Workers stay for the next request
	// (up to maxIdleWorkers of them idle), so that a stream of reads or
	// writes costs one hand-off per request and no goroutine start (nor
	// its stack growth, which a fresh goroutine pays on every request).
	workq chan *request
	idle  atomic.Int32

	// wmu serialises replies. A reply is retired from reqs under wmu and
	// written before wmu is released, so a Tflush that finds its old tag
	// gone knows the old reply is already on the wire or about to be,
	// and its own Rflush (also under wmu) goes after it.
	wmu  sync.Mutex
	werr error // the first write error; later replies are dropped
	// rw writes spliced Rreads without waiting (nil: nc has no
	// descriptor, and Rreads are copied).
	rw *rawVec

	mu      sync.Mutex
	dialect dialect
	msize   uint32
	fids    map[uint32]*fid
	reqs    map[uint16]*request
	bytes   int64 // held by requests in flight (MaxBytes)
}

// maxIdleWorkers bounds the worker goroutines a connection keeps idle.
const maxIdleWorkers = 8

// handoffs counts the requests handed to a worker goroutine, in every
// connection (TestDataIOInline checks that reads and writes that do not
// block are not).
var handoffs atomic.Int64

// pushHandoffs counts the large Twrites answered inline whose push went to
// a worker (tryInline).
var pushHandoffs atomic.Int64

// request is one T-message in flight. Requests are recycled (reqPool)
// with their message and reply buffers, so that a stream of Tread or
// Twrite allocates nothing.
type request struct {
	tag  uint16
	typ  uint8
	d    dialect
	body []byte // the message after its header, in frame
	// ctx is the request's context: a Tflush for its tag, a clunk of its
	// fid or the end of the connection cancels it.
	ctx reqCtx
	// fid is the fid the request runs on (set by getFid under conn.mu), so
	// that clunking it cancels the request.
	fid   *fid
	bytes int64 // charged to conn.bytes
	// retired: the reply has been written or dropped (under conn.mu);
	// waitCh, made under conn.mu by one who waits for that (a Tflush of
	// it, a Tversion), is closed then.
	retired bool
	waitCh  chan struct{}
	// dropped: a Tversion aborted it; its reply is not sent.
	dropped bool
	// frame holds the T-message; buf, if set, the reply (Rread). Both are
	// pooled and go back once the reply is written.
	frame *[]byte
	buf   *[]byte
	// small is room for small replies (Rwrite, Rclunk, errors).
	small [64]byte
	// try: the request runs on the reading goroutine with its context
	// cancelled, to be handed to a worker if it would block (tryInline);
	// woff counts the bytes of a Twrite queued so far.
	try  bool
	woff int
	// pushOnly: the request was answered inline and is handed to a
	// worker only to push what it queued (tryInline).
	pushOnly bool
	// run holds a large Twrite's data (readLoop), in place of the
	// frame's tail.
	run *pageRun
	// rv writes a spliced Rread (readSpliced); made on a request's first
	// one and recycled with it.
	rv *rreadVec
}

var reqPool = sync.Pool{New: func() any { return new(request) }}

// newRequest returns a recycled request for frame.
func newRequest(frame *[]byte) *request {
	r := reqPool.Get().(*request)
	m := *frame
	r.frame = frame
	r.typ, r.tag = m[4], le.Uint16(m[5:7])
	r.body = m[hdrLen:]
	return r
}

// free gives r and its buffers back to the pools; no one may hold r.
func (r *request) free() {
	putFrame(r.frame)
	if r.buf != nil {
		putFrame(r.buf)
	}
	r.ctx.reset()
	r.tag, r.typ, r.d, r.body, r.fid, r.bytes = 0, 0, 0, nil, nil, 0
	r.retired, r.waitCh, r.dropped, r.frame, r.buf = false, nil, false, nil, nil
	r.try, r.woff, r.pushOnly = false, 0, false
	if r.rv != nil {
		r.rv.c, r.rv.r = nil, nil
	}
	if r.run != nil {
		r.run.free()
		r.run = nil
	}
	reqPool.Put(r)
}

// reqCtx is a request's context. It is part of the recycled request, so
// that a request costs no context allocation: Done's channel is made only
// when something waits on it (a read that blocks), and kept for the next
// request unless it was closed. Cancellation comes from the connection
// (Tflush, clunk, disconnection: see cancelFid and cancelAll), not from a
// parent context. Value answers nothing.
type reqCtx struct {
	mu   sync.Mutex
	done chan struct{}
	err  error
	// push: a large Twrite to a TCP data file leaves its socket here, to
	// be pushed once the reply is written (fs.PushAfterReply).
	push fs.PushAfterReply
}

func (x *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value answers fs.PushAfterReplyKey only.
func (x *reqCtx) Value(key any) any {
	if key == fs.PushAfterReplyKey {
		return &x.push
	}
	return nil
}

func (x *reqCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil && x.err != nil {
		return closedChan // a tried request (tryInline): no channel to lose
	}
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		}
	}
	return x.done
}

func (x *reqCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// cancel ends the context (context.Canceled); later calls do nothing.
func (x *reqCtx) cancel() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err == nil {
		x.err = context.Canceled
		if x.done != nil {
			close(x.done)
		}
	}
}

// closedChan is the Done of a context cancelled before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// reset makes the context new again for the next request.
func (x *reqCtx) reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		x.done = nil // closed: cannot be used again
	}
	x.err = nil
}

// Frames (messages read and replies built) come from pools by power-of-two
// size class, from 512 bytes to maxMsize. A pooled buffer is held through
// a *[]byte kept with the request, so putting it back allocates nothing.
const (
	minFrameShift = 9
	frameClasses  = 22 - minFrameShift + 1 // up to 4 MiB (maxMsize)
)

var framePools [frameClasses]sync.Pool

// frameClass is the class of the smallest pooled buffer that holds n
// bytes.
func frameClass(n int) int {
	if n <= 1<<minFrameShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minFrameShift
}

// getFrame returns a buffer of length n (at most maxMsize).
func getFrame(n int) *[]byte {
	cl := frameClass(n)
	if p, ok := framePools[cl].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<(cl+minFrameShift))
	return &b
}

// putFrame gives a buffer from getFrame back.
func putFrame(p *[]byte) {
	if p == nil {
		return
	}
	framePools[frameClass(cap(*p))].Put(p)
}

// handshake completes a TLS connection's handshake within
// HandshakeTimeout; other connections have none.
func (c *conn) handshake() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log.Info("9p: TLS handshake failed", "err", err)
		return err
	}
	return nil
}

// readLoop reads and dispatches messages until the connection fails. A
// message is read into a pooled frame: the bytes already buffered are
// copied, the rest of a large message (a Twrite's data) is read straight
// into the frame, as bufio.Reader does for reads of at least its size.
func (c *conn) readLoop() error {
	br := bufio.NewReaderSize(c.nc, 8<<10)
	rr := newRunReader(br, c.nc)
	var sz [4]byte
	var head [twriteHeadLen]byte // a message's start, while its type is not known
	for {
		if _, err := io.ReadFull(br, sz[:]); err != nil {
			return err
		}
		size := le.Uint32(sz[:])
		c.mu.Lock()
		msize := c.msize
		c.mu.Unlock()
		if size < hdrLen || size > msize {
			c.log.Info("9p: bad message size; closing", "size", size, "msize", msize)
			return errors.New("9p: bad message size")
		}
		got := 4 // of the message, read so far
		copy(head[:], sz[:])
		if size >= twriteHeadLen+pagedWriteMin {
			// Perhaps a large Twrite, whose data goes into pages.
			if _, err := io.ReadFull(br, head[4:hdrLen]); err != nil {
				return err
			}
			got = hdrLen
			if head[4] == msgTwrite {
				if _, err := io.ReadFull(br, head[hdrLen:]); err != nil {
					return err
				}
				got = twriteHeadLen
			}
			if got == twriteHeadLen && c.takesPages(le.Uint32(head[hdrLen:])) {
				run, err := rr.read(int(size) - twriteHeadLen)
				if err != nil {
					return err
				}
				fp := getFrame(twriteHeadLen)
				copy(*fp, head[:])
				c.dispatch(fp, run)
				continue
			}
		}
		fp := getFrame(int(size))
		m := *fp
		copy(m, head[:got])
		if _, err := io.ReadFull(br, m[got:]); err != nil {
			putFrame(fp)
			return err
		}
		c.dispatch(fp, nil)
	}
}

// takesPages reports whether fid is open on a file whose writes take
// pages (fs.Splicer: a TCP conversation's data), so that a large Twrite
// to it is read into pages; the data of any other goes into its frame, as
// it would otherwise be copied once more out of the pages. Only a hint:
// a fid clunked or reopened meanwhile is served right either way
// (writeFid copies a run for a file that takes no pages).
func (c *conn) takesPages(id uint32) bool {
	sp, ok := c.handleOf(id).(fs.Splicer)
	return ok && sp.Splices()
}

// twriteHeadLen is a Twrite before its data: the header, fid[4],
// offset[8] and count[4], in every dialect.
const twriteHeadLen = hdrLen + 16

// freeMsg gives back a message that did not become a request.
func freeMsg(frame *[]byte, run *pageRun) {
	putFrame(frame)
	if run != nil {
		run.free()
	}
}

// blocking reports whether requests of type typ may block in the tree, and
// so run in a goroutine of their own.
func blocking(typ uint8) bool {
	switch typ {
	case msgTopen, msgTlopen, msgTread, msgTwrite:
		return true
	}
	return false
}

// dispatch admits the message in frame as a request and runs it; run, if
// set, holds a Twrite's data (the frame then ends where the data begins).
func (c *conn) dispatch(frame *[]byte, run *pageRun) {
	m := *frame
	typ, tag := m[4], le.Uint16(m[5:7])
	body := m[hdrLen:]
	if typ == msgTversion {
		c.version(tag, body)
		putFrame(frame)
		return
	}
	c.mu.Lock()
	d := c.dialect
	c.mu.Unlock()
	if d == dialectNone {
		freeMsg(frame, run)
		c.writeError(nil, tag, dialect9P, errNoVersion)
		return
	}
	need := int64(len(m))
	if run != nil {
		need += int64(run.n)
	}
	switch typ {
	case msgTread, msgTreaddir:
		var dc dec
		dc.b = body
		dc.take(12)
		need += int64(min(dc.u32(), c.msize))
	}
	c.mu.Lock()
	var err error
	switch {
	case c.reqs[tag] != nil:
		err = errDupTag
	case len(c.reqs) >= c.opts.MaxRequests:
		err = errTooBusy
	case c.bytes+need > c.opts.MaxBytes:
		err = errTooBig
	}
	if err != nil {
		c.mu.Unlock()
		freeMsg(frame, run)
		c.writeError(nil, tag, d, err)
		return
	}
	r := newRequest(frame)
	r.d, r.bytes, r.run = d, need, run
	c.reqs[tag] = r
	c.bytes += need
	c.mu.Unlock()
	switch {
	case typ == msgTflush:
		c.flush(r)
	case blocking(typ) || (typ == msgTclunk || typ == msgTremove) && len(body) >= 4 && c.lingers(le.Uint32(body)):
		if (typ == msgTread || typ == msgTwrite) && c.tryInline(r) {
			return
		}
		handoffs.Add(1)
		c.handoff(r)
	default:
		c.run(r)
	}
}

// handoff gives r to an idle worker, or to a new one if none is idle.
func (c *conn) handoff(r *request) {
	select {
	case c.workq <- r:
	default:
		c.work.Go(func() { c.worker(r) })
	}
}

// worker runs r, then the requests handed to it, until it would be one
// idle worker too many or the connection ends.
func (c *conn) worker(r *request) {
	for {
		if r.pushOnly {
			r.ctx.push.Push() // answered inline (tryInline); only its push is left
			r.free()
		} else {
			c.run(r)
		}
		if c.idle.Add(1) > maxIdleWorkers {
			c.idle.Add(-1)
			return
		}
		select {
		case r = <-c.workq:
			c.idle.Add(-1)
		case <-c.ctx.Done():
			c.idle.Add(-1)
			return
		}
	}
}

// run answers request r and recycles it.
func (c *conn) run(r *request) {
	reply, err := c.handle(r, r.d, r.body)
	c.answer(r, reply, err)
	r.ctx.push.Push()
	r.free()
}

// answer sends r's reply, or err in the dialect's form; a Twrite that
// queued bytes before an error answers their count.
func (c *conn) answer(r *request, reply []byte, err error) {
	switch {
	case err == errAnswered:
	case err != nil && r.typ == msgTwrite && r.woff > 0:
		e := enc{b: r.small[:0]}
		e.start(msgRwrite, r.tag)
		e.u32(uint32(r.woff))
		c.write(r, e.finish())
	case err != nil:
		c.writeError(r, r.tag, r.d, err)
	default:
		c.write(r, reply)
	}
}

// tryInline runs Tread or Twrite r on the reading goroutine when the
// handle allows it (fs.Trier): with its context already cancelled, a read
// takes what is queued and a write queues what fits. If the call would
// block, r goes to a worker with a fresh context (a Twrite for the rest of
// its data) and tryInline returns false. A stream of reads of data that
// is there, or of writes that fit, so costs no hand-off between
// goroutines.
func (c *conn) tryInline(r *request) bool {
	r.try = true
	r.ctx.cancel()
	reply, err := c.handle(r, r.d, r.body)
	r.try = false
	r.ctx.reset()
	if err == errWouldBlock {
		return false // a worker answers, then pushes what was queued here too
	}
	c.answer(r, reply, err)
	if r.ctx.push.Pending() {
		// The push of a large Twrite (up to sixteen TUN writes, in each of
		// which the kernel runs its TCP receive) goes to a worker, so that
		// this goroutine reads the client's next message beside it: a
		// stream of 1 MiB Twrites then costs the longer of the two per
		// message, not their sum. The next Twrite's queueing waits for the
		// socket lock the push holds, as it would have waited here.
		r.pushOnly = true
		pushHandoffs.Add(1)
		c.handoff(r)
		return true
	}
	r.free()
	return true
}

// retire removes r from the requests in flight and wakes whoever waits
// for its reply; called under wmu.
func (c *conn) retire(r *request) {
	if r == nil {
		return
	}
	c.mu.Lock()
	if c.reqs[r.tag] == r {
		delete(c.reqs, r.tag)
	}
	c.bytes -= r.bytes
	r.retired = true
	ch := r.waitCh
	r.waitCh = nil
	c.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// waitFor returns a channel closed once r's reply is written or dropped;
// nil if it already is. Called under c.mu, while r is known to be in
// flight or retired but not yet recycled (it is recycled only after its
// retirement, and retirement happens under c.mu).
func (r *request) waitFor() chan struct{} {
	if r.retired {
		return nil
	}
	if r.waitCh == nil {
		r.waitCh = make(chan struct{})
	}
	return r.waitCh
}

// cancelFid cancels the requests in flight on fid f (it is being
// clunked); called under c.mu.
func (c *conn) cancelFid(f *fid) {
	for _, r := range c.reqs {
		if r.fid == f {
			r.ctx.cancel()
		}
	}
}

// write sends reply (a finished message) as r's answer; r may be nil for
// answers to messages that never became requests.
func (c *conn) write(r *request, reply []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.retire(r)
	if r != nil && r.dropped {
		return
	}
	if c.werr == nil {
		if _, err := c.nc.Write(reply); err != nil {
			c.werr = err
			c.cancel()
		}
	}
}

// writeError answers tag with err in dialect d's form: Rerror with a
// string (9P2000), Rerror with a string and an errno (9P2000.u), or
// Rlerror with an errno (9P2000.L).
func (c *conn) writeError(r *request, tag uint16, d dialect, err error) {
	var e enc
	if r != nil {
		e.b = r.small[:0]
	}
	switch d {
	case dialectL:
		e.start(msgRlerror, tag)
		e.u32(uint32(fs.Errno(err)))
	case dialectU:
		e.start(msgRerror, tag)
		e.str(errString(err))
		e.u32(uint32(fs.Errno(err)))
	default:
		e.start(msgRerror, tag)
		e.str(errString(err))
	}
	c.write(r, e.finish())
}

// flush answers Tflush r: it cancels the old request (whose blocking call
// then returns EINTR having consumed nothing, or returns what it already
// had), lets the old reply go out, and only then sends Rflush, so the
// client sees either the old reply whole before Rflush or none (flush(5)).
func (c *conn) flush(r *request) {
	dc := dec{b: r.body}
	oldTag := dc.u16()
	if dc.err != nil {
		c.writeError(r, r.tag, r.d, errBadMsg)
		r.free()
		return
	}
	var wait chan struct{}
	c.mu.Lock()
	if old := c.reqs[oldTag]; old != nil && old != r {
		c.log.Debug("9p: flush", "tag", oldTag, "type", old.typ)
		old.ctx.cancel()
		wait = old.waitFor()
	}
	c.mu.Unlock()
	reply := func() {
		e := enc{b: r.small[:0]}
		e.start(msgRflush, r.tag)
		c.write(r, e.finish())
		r.free()
	}
	if wait == nil {
		reply()
		return
	}
	c.work.Go(func() {
		<-wait
		reply()
	})
}

// version answers Tversion: it aborts every request in flight (their
// replies are not sent), clunks every fid, and starts a session in the
// dialect asked for, with msize at most MaxMsize. An msize below 256 is
// refused; a version not understood gets "unknown" and no session.
func (c *conn) version(tag uint16, body []byte) {
	dc := dec{b: body}
	msize := dc.u32()
	v := dc.str()
	if dc.err != nil {
		c.writeError(nil, tag, dialect9P, errBadMsg)
		return
	}
	c.abortAll()
	c.clunkAll()
	d := parseVersion(v)
	if d != dialectNone && msize < minMsize {
		c.mu.Lock()
		c.dialect = dialectNone
		c.mu.Unlock()
		c.writeError(nil, tag, dialect9P, errMsize)
		return
	}
	msize = min(msize, c.opts.MaxMsize)
	c.mu.Lock()
	c.dialect = d
	if d != dialectNone {
		c.msize = msize
	}
	c.mu.Unlock()
	c.log.Debug("9p: version", "asked", v, "dialect", d, "msize", msize)
	var e enc
	e.start(msgRversion, tag)
	e.u32(msize)
	e.str(d.String())
	c.write(nil, e.finish())
}

// abortAll cancels every request in flight, drops their replies and waits
// until they are over.
func (c *conn) abortAll() {
	c.wmu.Lock()
	c.mu.Lock()
	var wait []chan struct{}
	for _, r := range c.reqs {
		r.dropped = true
		r.ctx.cancel()
		if ch := r.waitFor(); ch != nil {
			wait = append(wait, ch)
		}
	}
	c.mu.Unlock()
	c.wmu.Unlock()
	for _, ch := range wait {
		<-ch
	}
}

// cancelAll cancels every request in flight (the connection is over).
func (c *conn) cancelAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reqs {
		r.ctx.cancel()
	}
}
