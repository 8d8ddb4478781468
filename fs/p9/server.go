package p9

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
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
	nc.Close()
	c.work.Wait()
	c.clunkAll()
}

// conn is one client connection. The reader goroutine (readLoop) reads
// each message and answers it inline, except the requests that may block
// (Topen, Tlopen, Tread, Twrite), which run in goroutines of their own so
// that a blocked read never stalls other tags.
type conn struct {
	nc     net.Conn
	root   fs.Dir
	opts   Options
	log    *slog.Logger
	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc
	work   sync.WaitGroup // request goroutines

	// wmu serialises replies. A reply is retired from reqs under wmu and
	// written before wmu is released, so a Tflush that finds its old tag
	// gone knows the old reply is already on the wire or about to be,
	// and its own Rflush (also under wmu) goes after it.
	wmu  sync.Mutex
	werr error // the first write error; later replies are dropped

	mu      sync.Mutex
	dialect dialect
	msize   uint32
	fids    map[uint32]*fid
	reqs    map[uint16]*request
	bytes   int64 // held by requests in flight (MaxBytes)
}

// request is one T-message in flight.
type request struct {
	tag    uint16
	typ    uint8
	ctx    context.Context
	cancel context.CancelFunc
	bytes  int64         // charged to conn.bytes
	done   chan struct{} // closed once its reply is written (or dropped)
	// dropped: a Tversion aborted it; its reply is not sent.
	dropped bool
	// buf, if set, is a pooled buffer the reply was built in; run returns
	// it to the pool once the reply is written.
	buf []byte
}

// bufPool holds Rread buffers of the largest size asked for so far, so
// that a stream of msize reads does not allocate (and zero) a buffer per
// Tread.
var bufPool sync.Pool

// getBuf returns a buffer of length n, from the pool if one is big enough.
func getBuf(n int) []byte {
	if b, ok := bufPool.Get().(*[]byte); ok {
		if cap(*b) >= n {
			return (*b)[:n]
		}
	}
	return make([]byte, n)
}

// putBuf gives b back to the pool.
func putBuf(b []byte) {
	bufPool.Put(&b)
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

// readLoop reads and dispatches messages until the connection fails.
func (c *conn) readLoop() error {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sz [4]byte
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
		m := make([]byte, size)
		copy(m, sz[:])
		if _, err := io.ReadFull(br, m[4:]); err != nil {
			return err
		}
		c.dispatch(m)
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

// dispatch admits message m as a request and runs it.
func (c *conn) dispatch(m []byte) {
	typ, tag := m[4], le.Uint16(m[5:7])
	body := m[hdrLen:]
	if typ == msgTversion {
		c.version(tag, body)
		return
	}
	c.mu.Lock()
	d := c.dialect
	c.mu.Unlock()
	if d == dialectNone {
		c.writeError(nil, tag, dialect9P, errNoVersion)
		return
	}
	need := int64(len(m))
	switch typ {
	case msgTread, msgTreaddir:
		var dc dec
		dc.b = body
		dc.take(12)
		need += int64(min(dc.u32(), c.msize))
	}
	r := &request{tag: tag, typ: typ, bytes: need, done: make(chan struct{})}
	c.mu.Lock()
	var err error
	switch {
	case c.reqs[tag] != nil:
		err = errDupTag
	case len(c.reqs) >= c.opts.MaxRequests:
		err = errTooBusy
	case c.bytes+need > c.opts.MaxBytes:
		err = errTooBig
	default:
		c.reqs[tag] = r
		c.bytes += need
	}
	c.mu.Unlock()
	if err != nil {
		c.writeError(nil, tag, d, err)
		return
	}
	r.ctx, r.cancel = context.WithCancel(c.ctx)
	if typ == msgTflush {
		c.flush(r, body)
		return
	}
	if blocking(typ) {
		c.work.Go(func() { c.run(r, d, body) })
		return
	}
	c.run(r, d, body)
}

// run answers request r.
func (c *conn) run(r *request, d dialect, body []byte) {
	reply, err := c.handle(r, d, body)
	if err != nil {
		c.writeError(r, r.tag, d, err)
	} else {
		c.write(r, reply)
	}
	if r.buf != nil {
		putBuf(r.buf)
	}
}

// retire removes r from the requests in flight; called under wmu.
func (c *conn) retire(r *request) {
	if r == nil {
		return
	}
	c.mu.Lock()
	if c.reqs[r.tag] == r {
		delete(c.reqs, r.tag)
	}
	c.bytes -= r.bytes
	c.mu.Unlock()
	r.cancel()
	close(r.done)
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
func (c *conn) flush(r *request, body []byte) {
	dc := dec{b: body}
	oldTag := dc.u16()
	c.mu.Lock()
	d := c.dialect
	old := c.reqs[oldTag]
	c.mu.Unlock()
	if dc.err != nil {
		c.writeError(r, r.tag, d, errBadMsg)
		return
	}
	var e enc
	e.start(msgRflush, r.tag)
	reply := e.finish()
	if old == nil || old == r {
		c.write(r, reply)
		return
	}
	c.log.Debug("9p: flush", "tag", oldTag, "type", old.typ)
	old.cancel()
	c.work.Go(func() {
		<-old.done
		c.write(r, reply)
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
	var wait []*request
	for _, r := range c.reqs {
		r.dropped = true
		r.cancel()
		wait = append(wait, r)
	}
	c.mu.Unlock()
	c.wmu.Unlock()
	for _, r := range wait {
		<-r.done
	}
}
