package p9

import (
	"bufio"
	"context"
	"io"
	iofs "io/fs"
	"net"
	"sync"
	"syscall"
)

// client is one 9P connection from the importing side, speaking 9P2000.L
// to a sockfs server or plain 9P2000 to a Plan 9 one (whatever Rversion
// agrees to). Calls may be made concurrently; each takes a context whose
// cancellation sends Tflush for the call's tag and waits for Rflush,
// honouring a reply that arrived first (flush(5)): a cancelled read
// returns EINTR having consumed nothing, or the data the server already
// had.
type client struct {
	nc      net.Conn
	dialect dialect
	msize   uint32

	wmu sync.Mutex // one message at a time on nc

	mu      sync.Mutex
	calls   map[uint16]*call // by tag, until the caller is done
	nextTag uint16
	nextFid uint32
	freeFid []uint32
	err     error         // why the connection is over
	dead    chan struct{} // closed when the reader stops
}

// errClosed is a call on a connection that has ended.
var errClosed = perr(syscall.EIO, "connection closed")

// newClient negotiates a version and msize over nc: 9P2000.L if the server
// speaks it, else 9P2000. It owns nc from now on (closed on error).
func newClient(nc net.Conn, msize uint32) (*client, error) {
	c := &client{nc: nc, calls: make(map[uint16]*call), dead: make(chan struct{})}
	// A small read buffer: an Rread's data is read past it, straight into
	// the caller's buffer (readLoop), so at most this much of it is
	// copied twice.
	br := bufio.NewReaderSize(nc, 8<<10)
	for _, v := range []string{"9P2000.L", "9P2000"} {
		var e enc
		e.start(msgTversion, noTag)
		e.u32(msize)
		e.str(v)
		if _, err := nc.Write(e.finish()); err != nil {
			nc.Close()
			return nil, err
		}
		m, err := readMsg(br, msize)
		if err != nil {
			nc.Close()
			return nil, err
		}
		dc := dec{b: m[hdrLen:]}
		if m[4] == msgRerror {
			// The server's reason (a TLS-only server says so).
			nc.Close()
			return nil, perr(syscall.EPROTO, "version refused: "+dc.str())
		}
		if m[4] != msgRversion {
			nc.Close()
			return nil, perr(syscall.EPROTO, "version refused")
		}
		got, gv := dc.u32(), dc.str()
		if dc.err != nil || got > msize || got < 8192 {
			nc.Close()
			return nil, perr(syscall.EPROTO, "bad Rversion")
		}
		d := parseVersion(gv)
		if d == dialectL || d == dialect9P {
			c.dialect, c.msize = d, got
			go c.readLoop(br)
			return c, nil
		}
	}
	nc.Close()
	return nil, perr(syscall.EPROTO, "server speaks neither 9P2000.L nor 9P2000")
}

// readMsg reads one message of at most msize bytes.
func readMsg(r io.Reader, msize uint32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	size := le.Uint32(sz[:])
	if size < hdrLen || size > msize {
		return nil, perr(syscall.EPROTO, "bad message size")
	}
	m := make([]byte, size)
	copy(m, sz[:])
	if _, err := io.ReadFull(r, m[4:]); err != nil {
		return nil, err
	}
	return m, nil
}

// readLoop hands each reply to the call waiting on its tag. The data of
// an Rread goes straight from the connection into the caller's buffer
// (call.dst) when it fits, and the call gets the header and count only.
func (c *client) readLoop(br *bufio.Reader) {
	var err error
	var hdr [hdrLen + 4]byte
	for {
		if _, err = io.ReadFull(br, hdr[:hdrLen]); err != nil {
			break
		}
		size, typ, tag := le.Uint32(hdr[:]), hdr[4], le.Uint16(hdr[5:7])
		if size < hdrLen || size > c.msize {
			err = perr(syscall.EPROTO, "bad message size")
			break
		}
		c.mu.Lock()
		cl := c.calls[tag]
		c.mu.Unlock()
		var m []byte
		have := hdrLen
		if cl != nil && cl.dst != nil && typ == msgRread && size >= hdrLen+4 {
			if _, err = io.ReadFull(br, hdr[hdrLen:]); err != nil {
				break
			}
			have = hdrLen + 4
			if n := le.Uint32(hdr[hdrLen:]); int(n) <= len(cl.dst) && size == hdrLen+4+n {
				if _, err = io.ReadFull(br, cl.dst[:n]); err != nil {
					break
				}
				m = append(cl.rhdr[:0], hdr[:]...)
			}
		}
		if m == nil {
			m = make([]byte, size)
			copy(m, hdr[:have])
			if _, err = io.ReadFull(br, m[have:]); err != nil {
				break
			}
		}
		if cl != nil {
			select {
			case cl.ch <- m:
			default: // a second reply for one tag: the server's bug
			}
		}
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.dead)
	c.nc.Close()
}

// Close ends the connection; calls in flight fail.
func (c *client) Close() error {
	err := c.nc.Close()
	<-c.dead
	return err
}

// call is one request waiting for its reply. Calls are recycled
// (callPool) with their channel, which is empty whenever a call is put
// back.
type call struct {
	ch chan []byte
	// dst, if set, receives an Rread's data directly (readLoop).
	dst []byte
	// small holds the T-message if it fits; rhdr an Rread's header and
	// count when its data went to dst.
	small [64]byte
	rhdr  [hdrLen + 4]byte
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan []byte, 1)} }}

// newTag allocates a tag and its call.
func (c *client) newTag() (uint16, *call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range 1 << 16 {
		t := c.nextTag
		c.nextTag++
		if t == noTag {
			continue
		}
		if c.calls[t] == nil {
			cl := callPool.Get().(*call)
			c.calls[t] = cl
			return t, cl, nil
		}
	}
	return 0, nil, perr(syscall.EAGAIN, "no free tags")
}

// freeTag ends the call on tag t. Once it is out of the table readLoop
// sends it nothing more; a reply left unread is dropped with it.
func (c *client) freeTag(t uint16, cl *call) {
	c.mu.Lock()
	delete(c.calls, t)
	c.mu.Unlock()
	select {
	case <-cl.ch:
	default:
	}
	cl.dst = nil
	callPool.Put(cl)
}

// send writes message m, then payload (a Twrite's data, sent from the
// caller's buffer without copying it into m).
func (c *client) send(m, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(payload) == 0 {
		_, err := c.nc.Write(m)
		return err
	}
	bufs := net.Buffers{m, payload}
	_, err := bufs.WriteTo(c.nc)
	return err
}

// rpc sends the message build writes (after the header, which rpc
// writes with type typ) and returns the reply's body, or the server's
// error. If ctx is cancelled first, it flushes the request.
func (c *client) rpc(ctx context.Context, typ uint8, build func(*enc)) ([]byte, error) {
	return c.rpcData(ctx, typ, build, nil, nil)
}

// rpcData is rpc with a payload sent after the message build writes (its
// length counted in the size), and dst, the buffer an Rread's data goes
// to (the returned body then holds only the count).
func (c *client) rpcData(ctx context.Context, typ uint8, build func(*enc), payload, dst []byte) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, syscall.EINTR
	}
	tag, cl, err := c.newTag()
	if err != nil {
		return nil, err
	}
	defer c.freeTag(tag, cl)
	cl.dst = dst
	e := enc{b: cl.small[:0]}
	e.start(typ, tag)
	build(&e)
	m := e.b
	le.PutUint32(m, uint32(len(m)+len(payload)))
	if err := c.send(m, payload); err != nil {
		return nil, errClosed
	}
	select {
	case m = <-cl.ch:
	case <-c.dead:
		return nil, errClosed
	case <-ctx.Done():
		if m, err = c.flush(tag, cl); err != nil {
			return nil, err
		}
	}
	return c.result(typ, m)
}

// flush sends Tflush for tag and waits for Rflush; a reply to tag that
// came first is returned, else EINTR.
func (c *client) flush(tag uint16, cl *call) ([]byte, error) {
	ftag, fcl, err := c.newTag()
	if err != nil {
		return nil, err
	}
	defer c.freeTag(ftag, fcl)
	e := enc{b: fcl.small[:0]}
	e.start(msgTflush, ftag)
	e.u16(tag)
	if err := c.send(e.finish(), nil); err != nil {
		return nil, errClosed
	}
	select {
	case <-fcl.ch:
	case <-c.dead:
		return nil, errClosed
	}
	select {
	case m := <-cl.ch:
		return m, nil
	default:
		return nil, syscall.EINTR
	}
}

// result checks reply m of a T-message of type typ: the server's error,
// or the body of the expected R-message.
func (c *client) result(typ uint8, m []byte) ([]byte, error) {
	dc := dec{b: m[hdrLen:]}
	switch m[4] {
	case msgRlerror:
		errno := syscall.Errno(dc.u32())
		if dc.err != nil {
			return nil, errBadMsg
		}
		return nil, errno
	case msgRerror:
		text := dc.str()
		if dc.err != nil {
			return nil, errBadMsg
		}
		return nil, perr(plan9Errno(text), text)
	case typ + 1:
		return m[hdrLen:], nil
	}
	return nil, perr(syscall.EPROTO, "unexpected reply type")
}

// plan9Errno is the errno of a Plan 9 error string (EIO if unknown), so
// that errors from a 9P2000 server reach the FUSE mount as errnos.
func plan9Errno(text string) syscall.Errno {
	for e, s := range fsStrings {
		if s == text && e != syscall.EACCES {
			return e
		}
	}
	if e, ok := plan9Errnos[text]; ok {
		return e
	}
	return syscall.EIO
}

// plan9Errnos maps the network strings of fs (the err file's) and Plan 9
// kernel strings seen from /net back to errnos.
var plan9Errnos = map[string]syscall.Errno{
	"connection refused":      syscall.ECONNREFUSED,
	"connection timed out":    syscall.ETIMEDOUT,
	"connection reset":        syscall.ECONNRESET,
	"address in use":          syscall.EADDRINUSE,
	"no route":                syscall.EHOSTUNREACH,
	"i/o on hungup channel":   syscall.EPIPE,
	"interrupted":             syscall.EINTR,
	"no free devices":         syscall.EBUSY,
	"unknown control request": syscall.EINVAL,
	"file not found":          syscall.ENOENT,
	"not announced":           syscall.EINVAL,
	"listen hungup":           syscall.EPIPE,
	"fid not open":            syscall.EBADF,
	"unknown fid":             syscall.EBADF,
}

// getFid allocates a fid number.
func (c *client) getFid() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.freeFid); n > 0 {
		f := c.freeFid[n-1]
		c.freeFid = c.freeFid[:n-1]
		return f
	}
	c.nextFid++
	return c.nextFid
}

func (c *client) putFidNum(f uint32) {
	c.mu.Lock()
	c.freeFid = append(c.freeFid, f)
	c.mu.Unlock()
}

// cfid is a fid of the client.
type cfid struct {
	c  *client
	id uint32
}

// attach attaches a new fid to aname as uid (9P2000: as the host's user
// name of uid).
func (c *client) attach(ctx context.Context, aname string, uid uint32) (*cfid, error) {
	f := &cfid{c: c, id: c.getFid()}
	_, err := c.rpc(ctx, msgTattach, func(e *enc) {
		e.u32(f.id)
		e.u32(noFid)
		e.str(hostUsers.name(uid))
		e.str(aname)
		if c.dialect == dialectL {
			e.u32(uid)
		}
	})
	if err != nil {
		c.putFidNum(f.id)
		return nil, err
	}
	return f, nil
}

// walk walks a new fid from f along names (all of them, or an error).
func (f *cfid) walk(ctx context.Context, names ...string) (*cfid, error) {
	if len(names) > maxWelem {
		nf, err := f.walk(ctx, names[:maxWelem]...)
		if err != nil {
			return nil, err
		}
		defer nf.clunk()
		return nf.walk(ctx, names[maxWelem:]...)
	}
	nf := &cfid{c: f.c, id: f.c.getFid()}
	b, err := f.c.rpc(ctx, msgTwalk, func(e *enc) {
		e.u32(f.id)
		e.u32(nf.id)
		e.u16(uint16(len(names)))
		for _, n := range names {
			e.str(n)
		}
	})
	if err == nil {
		dc := dec{b: b}
		if n := dc.u16(); dc.err != nil || int(n) != len(names) {
			err = syscall.ENOENT // a partial walk: newfid was not made
		}
	}
	if err != nil {
		f.c.putFidNum(nf.id)
		return nil, err
	}
	return nf, nil
}

// clunk forgets the fid on the server (and its open file).
func (f *cfid) clunk() error {
	_, err := f.c.rpc(context.Background(), msgTclunk, func(e *enc) { e.u32(f.id) })
	f.c.putFidNum(f.id)
	return err
}

// rstat is what the importing side knows of a remote node.
type rstat struct {
	qid  qid
	mode iofs.FileMode // permissions plus ModeDir
	uid  uint32
	gid  uint32
	size int64 // data's bytes queued (fs.Stat.Length)
}

// stat asks for f's attributes: Tgetattr in 9P2000.L, Tstat in 9P2000.
func (f *cfid) stat(ctx context.Context) (rstat, error) {
	if f.c.dialect == dialectL {
		b, err := f.c.rpc(ctx, msgTgetattr, func(e *enc) { e.u32(f.id); e.u64(getattrBasic) })
		if err != nil {
			return rstat{}, err
		}
		dc := dec{b: b}
		dc.u64() // valid
		st := rstat{qid: dc.qid()}
		mode := dc.u32()
		st.uid, st.gid = dc.u32(), dc.u32()
		dc.take(16) // nlink rdev
		st.size = int64(dc.u64())
		if dc.err != nil {
			return rstat{}, errBadMsg
		}
		st.mode = iofs.FileMode(mode & 0o777)
		if mode&0o170000 == sIFDIR {
			st.mode |= iofs.ModeDir
		}
		return st, nil
	}
	b, err := f.c.rpc(ctx, msgTstat, func(e *enc) { e.u32(f.id) })
	if err != nil {
		return rstat{}, err
	}
	dc := dec{b: b}
	dc.u16() // n
	st, _, err := parseStat(&dc)
	return st, err
}

// parseStat reads one 9P2000 stat entry; it also returns the name.
func parseStat(dc *dec) (rstat, string, error) {
	size := dc.u16()
	body := dc.take(int(size))
	if dc.err != nil {
		return rstat{}, "", errBadMsg
	}
	sd := dec{b: body}
	sd.take(6) // type dev
	st := rstat{qid: sd.qid()}
	mode := sd.u32()
	sd.take(8) // atime mtime
	st.size = int64(sd.u64())
	name, uid, gid := sd.str(), sd.str(), sd.str()
	if sd.err != nil {
		return rstat{}, "", errBadMsg
	}
	st.mode = iofs.FileMode(mode & 0o777)
	if mode&dmDir != 0 {
		st.mode |= iofs.ModeDir
	}
	st.uid, st.gid = hostUsers.uid(uid), hostUsers.uid(gid)
	return st, name, nil
}

// wstat changes f's owner or mode (nil: unchanged) on the server:
// Tsetattr in 9P2000.L, else a Twstat whose other fields say "don't
// touch" (wstat(5)); the owner goes by name, as the server's host knows
// the uid.
func (f *cfid) wstat(ctx context.Context, owner *uint32, mode *iofs.FileMode) error {
	if f.c.dialect == dialectL {
		var valid, m, uid uint32
		if mode != nil {
			valid, m = valid|setattrMode, uint32(*mode&0o777)
		}
		if owner != nil {
			valid, uid = valid|setattrUID, *owner
		}
		_, err := f.c.rpc(ctx, msgTsetattr, func(e *enc) {
			e.u32(f.id)
			e.u32(valid)
			e.u32(m)
			e.u32(uid)
			e.u32(0) // gid
			for range 5 {
				e.u64(0) // size, atime, mtime (sec, nsec)
			}
		})
		return err
	}
	_, err := f.c.rpc(ctx, msgTwstat, func(e *enc) {
		e.u32(f.id)
		var st enc
		st.u16(^uint16(0)) // type
		st.u32(^uint32(0)) // dev
		st.u8(^uint8(0))   // qid: type, version, path
		st.u32(^uint32(0))
		st.u64(^uint64(0))
		m := ^uint32(0)
		if mode != nil {
			m = uint32(*mode & 0o777)
		}
		st.u32(m)
		st.u32(^uint32(0)) // atime
		st.u32(^uint32(0)) // mtime
		st.u64(^uint64(0)) // length
		st.str("")         // name
		uid := ""
		if owner != nil {
			uid = hostUsers.name(*owner)
		}
		st.str(uid)
		st.str("") // gid
		st.str("") // muid
		if f.c.dialect == dialectU {
			st.str("")         // extension
			st.u32(^uint32(0)) // n_uid: the name says it
			st.u32(^uint32(0)) // n_gid
			st.u32(^uint32(0)) // n_muid
		}
		e.u16(uint16(len(st.b) + 2))
		e.u16(uint16(len(st.b)))
		e.b = append(e.b, st.b...)
	})
	return err
}

// open opens f with open(2)'s access mode.
func (f *cfid) open(ctx context.Context, flags int) error {
	if f.c.dialect == dialectL {
		_, err := f.c.rpc(ctx, msgTlopen, func(e *enc) { e.u32(f.id); e.u32(uint32(flags & syscall.O_ACCMODE)) })
		return err
	}
	mode := uint8(oREAD)
	switch flags & syscall.O_ACCMODE {
	case syscall.O_WRONLY:
		mode = oWRITE
	case syscall.O_RDWR:
		mode = oRDWR
	}
	_, err := f.c.rpc(ctx, msgTopen, func(e *enc) { e.u32(f.id); e.u8(mode) })
	return err
}

// maxIO is the most one Tread or Twrite carries.
func (c *client) maxIO() int { return int(c.msize) - ioHdr }

// read sends one Tread of at most maxIO bytes; 0 bytes is EOF.
func (f *cfid) read(ctx context.Context, p []byte, off int64) (int, error) {
	p = p[:min(len(p), f.c.maxIO())]
	b, err := f.c.rpcData(ctx, msgTread, func(e *enc) { e.u32(f.id); e.u64(uint64(off)); e.u32(uint32(len(p))) }, nil, p)
	if err != nil {
		return 0, err
	}
	dc := dec{b: b}
	n := dc.u32()
	if dc.err != nil || int(n) > len(p) {
		return 0, errBadMsg
	}
	if data := dc.b; len(data) > 0 {
		// Not read into p by readLoop (it did not fit the rule); the
		// data follows the count.
		if len(data) != int(n) {
			return 0, errBadMsg
		}
		copy(p, data)
	}
	return int(n), nil
}

// write sends one Twrite of p (at most maxIO bytes).
func (f *cfid) write(ctx context.Context, p []byte, off int64) (int, error) {
	b, err := f.c.rpcData(ctx, msgTwrite, func(e *enc) {
		e.u32(f.id)
		e.u64(uint64(off))
		e.u32(uint32(len(p)))
	}, p, nil)
	if err != nil {
		return 0, err
	}
	dc := dec{b: b}
	n := dc.u32()
	if dc.err != nil || int(n) > len(p) {
		return 0, errBadMsg
	}
	return int(n), nil
}

// dirent is one name of a remote directory listing.
type dirent struct {
	name string
	qid  qid
}

// readdir lists an open directory: Treaddir in 9P2000.L, stat entries
// read with Tread in 9P2000.
func (f *cfid) readdir(ctx context.Context) ([]dirent, error) {
	var out []dirent
	var off uint64
	count := uint32(min(f.c.maxIO(), 64<<10))
	for {
		typ := uint8(msgTreaddir)
		if f.c.dialect != dialectL {
			typ = msgTread
		}
		b, err := f.c.rpc(ctx, typ, func(e *enc) { e.u32(f.id); e.u64(off); e.u32(count) })
		if err != nil {
			return out, err
		}
		dc := dec{b: b}
		n := dc.u32()
		data := dec{b: dc.take(int(n))}
		if dc.err != nil {
			return out, errBadMsg
		}
		if n == 0 {
			return out, nil
		}
		for len(data.b) > 0 {
			if f.c.dialect == dialectL {
				q := data.qid()
				next := data.u64()
				data.u8()
				name := data.str()
				if data.err != nil {
					return out, errBadMsg
				}
				out = append(out, dirent{name: name, qid: q})
				off = next
				continue
			}
			st, name, err := parseStat(&data)
			if err != nil {
				return out, err
			}
			out = append(out, dirent{name: name, qid: st.qid})
		}
		if f.c.dialect != dialectL {
			off += uint64(n)
		}
	}
}
