package p9

import (
	"errors"
	iofs "io/fs"
	"slices"
	"strings"
	"syscall"

	"sockfs/fs"
)

// validIn reports whether dialect d has message type typ: 9P2000's
// messages are in all three except Topen, Tcreate, Tstat and Twstat, which
// .L replaces; .L's own are only in .L.
func validIn(typ uint8, d dialect) bool {
	switch typ {
	case msgTattach, msgTauth, msgTwalk, msgTread, msgTwrite, msgTclunk, msgTremove:
		return true
	case msgTopen, msgTcreate, msgTstat, msgTwstat:
		return d != dialectL
	case msgTstatfs, msgTlopen, msgTlcreate, msgTsymlink, msgTmknod, msgTrename,
		msgTreadlink, msgTgetattr, msgTsetattr, msgTxattrwalk, msgTxattrcreat,
		msgTreaddir, msgTfsync, msgTlock, msgTgetlock, msgTlink, msgTmkdir,
		msgTrenameat, msgTunlinkat:
		return d == dialectL
	}
	return false
}

// usesFid reports whether a request of type typ works on an existing fid
// named by its first four bytes.
func usesFid(typ uint8) bool {
	switch typ {
	case msgTwalk, msgTopen, msgTread, msgTwrite, msgTstat, msgTwstat,
		msgTstatfs, msgTlopen, msgTgetattr, msgTsetattr, msgTreaddir,
		msgTfsync, msgTlock, msgTgetlock, msgTreadlink, msgTxattrwalk:
		return true
	}
	return false
}

// handle runs request r (body: the message after its header) and returns
// the reply, or the error to answer with.
func (c *conn) handle(r *request, d dialect, body []byte) ([]byte, error) {
	if !validIn(r.typ, d) {
		return nil, errUnknownMsg
	}
	dc := &dec{b: body}
	switch r.typ {
	case msgTauth:
		return nil, errNoAuth
	case msgTattach:
		return c.attach(r, d, dc)
	case msgTclunk, msgTremove:
		id := dc.u32()
		if dc.err != nil {
			return nil, errBadMsg
		}
		if err := c.clunkWait(&r.ctx, id); err != nil {
			return nil, err
		}
		if r.typ == msgTremove {
			// Nothing can be removed (devip says Eperm), but Tremove
			// clunks the fid all the same.
			return nil, errPerm
		}
		return reply(msgRclunk, r.tag), nil
	case msgTcreate, msgTlcreate, msgTsymlink, msgTmknod, msgTrename,
		msgTlink, msgTmkdir, msgTrenameat, msgTunlinkat:
		// The tree's names are fixed.
		return nil, errPerm
	case msgTxattrcreat:
		return nil, errNoXattr
	}
	if !usesFid(r.typ) {
		return nil, errUnknownMsg
	}
	id := dc.u32()
	if dc.err != nil {
		return nil, errBadMsg
	}
	// Clunking the fid cancels what runs on it (getFid marks r).
	f, err := c.getFid(r, id)
	if err != nil {
		return nil, err
	}
	defer c.putFid(f)

	var e enc
	switch r.typ {
	case msgTwalk:
		return c.walk(r, d, f, dc)
	case msgTopen:
		mode := dc.u8()
		if dc.err != nil {
			return nil, errBadMsg
		}
		if mode&oRCLOSE != 0 {
			return nil, errPerm
		}
		flags := syscall.O_RDONLY
		switch mode & 3 {
		case oWRITE:
			flags = syscall.O_WRONLY
		case oRDWR:
			flags = syscall.O_RDWR
		}
		q, err := c.open(r, f, flags)
		if err != nil {
			return nil, err
		}
		e.start(msgRopen, r.tag)
		e.qid(q)
		e.u32(0) // iounit: msize-sized I/O
	case msgTlopen:
		flags := dc.u32()
		if dc.err != nil {
			return nil, errBadMsg
		}
		// O_NONBLOCK is not passed on: v9fs sets it to mean "return
		// after one short read", which stream files do anyway, and
		// poll on v9fs always reports ready.
		q, err := c.open(r, f, int(flags&syscall.O_ACCMODE))
		if err != nil {
			return nil, err
		}
		e.start(msgRlopen, r.tag)
		e.qid(q)
		e.u32(0)
	case msgTread:
		return c.read(r, d, f, dc)
	case msgTwrite:
		return c.writeFid(r, f, dc)
	case msgTreaddir:
		return c.readdir(r, f, dc)
	case msgTstat:
		e.start(msgRstat, r.tag)
		at := len(e.b)
		e.u16(0)
		appendStat(&e, f.node(), d)
		le.PutUint16(e.b[at:], uint16(len(e.b)-at-2))
	case msgTwstat:
		return c.wstat(r, d, f, dc)
	case msgTgetattr:
		dc.u64()
		if dc.err != nil {
			return nil, errBadMsg
		}
		e.start(msgRgetattr, r.tag)
		appendGetattr(&e, f.node())
	case msgTsetattr:
		// valid[4] mode[4] uid[4] gid[4] size[8] times: mode and uid
		// go to the node's Wstat; the rest (truncation from `>`,
		// times, the group) is accepted and ignored, as the FUSE
		// frontend does.
		valid, mode, uid := dc.u32(), dc.u32(), dc.u32()
		if dc.err != nil {
			return nil, errBadMsg
		}
		var owner *uint32
		var perm *iofs.FileMode
		if valid&setattrUID != 0 {
			owner = &uid
		}
		if valid&setattrMode != 0 {
			m := iofs.FileMode(mode & 0o777)
			perm = &m
		}
		if err := wstatNode(f, owner, perm); err != nil {
			return nil, err
		}
		e.start(msgRsetattr, r.tag)
	case msgTstatfs:
		e.start(msgRstatfs, r.tag)
		e.u32(0x01021997) // V9FS_MAGIC
		e.u32(4096)       // bsize
		for range 6 {     // blocks bfree bavail files ffree fsid
			e.u64(0)
		}
		e.u32(255) // namelen
	case msgTfsync:
		e.start(msgRfsync, r.tag)
	case msgTlock:
		e.start(msgRlock, r.tag)
		e.u8(0) // P9_LOCK_SUCCESS: nothing to lock
	case msgTgetlock:
		dc.u8()
		start, length, pid := dc.u64(), dc.u64(), dc.u32()
		client := dc.str()
		if dc.err != nil {
			return nil, errBadMsg
		}
		e.start(msgRgetlock, r.tag)
		e.u8(2) // F_UNLCK: no lock in the way
		e.u64(start)
		e.u64(length)
		e.u32(pid)
		e.str(client)
	case msgTreadlink:
		return nil, syscall.EINVAL
	case msgTxattrwalk:
		return nil, errNoXattr
	}
	return e.finish(), nil
}

// reply is a reply with an empty body.
func reply(typ uint8, tag uint16) []byte {
	var e enc
	e.start(typ, tag)
	return e.finish()
}

// attach answers Tattach: fid[4] afid[4] uname[s] aname[s], then
// n_uname[4] in 9P2000.u and .L. aname names the directory to attach to
// ("" or "/" for the root).
func (c *conn) attach(r *request, d dialect, dc *dec) ([]byte, error) {
	id, afid := dc.u32(), dc.u32()
	uname, aname := dc.str(), dc.str()
	nuname := noUID
	if d != dialect9P {
		nuname = dc.u32()
	}
	if dc.err != nil {
		return nil, errBadMsg
	}
	if afid != noFid {
		return nil, errNoAuth
	}
	var uid uint32
	switch {
	case c.opts.Attach != nil:
		var err error
		if uid, err = c.opts.Attach(c.nc, uname, nuname); err != nil {
			c.log.Info("9p: attach refused", "uname", uname, "n_uname", nuname, "err", err)
			return nil, perr(syscall.EACCES, err.Error())
		}
	case nuname != noUID:
		uid = nuname
	case d == dialectL:
		uid = nobody
	default:
		uid = hostUsers.uid(uname)
	}
	path := []fs.Node{c.root}
	for _, name := range strings.Split(aname, "/") {
		if name == "" || name == "." {
			continue
		}
		next, err := walkOne(path, name)
		if err != nil {
			return nil, err
		}
		path = next
	}
	f := c.newFid(id, path, uid)
	if err := c.addFid(f); err != nil {
		return nil, err
	}
	var e enc
	e.start(msgRattach, r.tag)
	e.qid(qidOf(f.node()))
	return e.finish(), nil
}

// walkOne extends path by name: ".." goes up (not above the attach
// root), anything else is looked up in the last node, which must be a
// directory.
func walkOne(path []fs.Node, name string) ([]fs.Node, error) {
	if name == ".." {
		if len(path) > 1 {
			return path[:len(path)-1], nil
		}
		return path, nil
	}
	d, ok := path[len(path)-1].(fs.Dir)
	if !ok {
		return nil, errWalkNoDir
	}
	n, err := d.Lookup(name)
	if err != nil {
		return nil, err
	}
	return append(path[:len(path):len(path)], n), nil
}

// walk answers Twalk: fid[4] newfid[4] nwname[2] nwname*wname[s]. As
// walk(5) says: the fid must not be open; newfid must be unused unless it
// is fid; a walk that fails at the first name is an error, one that fails
// later answers the qids walked so far and leaves newfid alone. 9P2000.L
// lets an open fid be walked to a new fid, as diod's server does (diodls
// -l walks each entry from the directory it opened to list it).
func (c *conn) walk(r *request, d dialect, f *fid, dc *dec) ([]byte, error) {
	newid, n := dc.u32(), int(dc.u16())
	if dc.err == nil && n > maxWelem {
		return nil, errTooManyNames
	}
	names := make([]string, n)
	for i := range names {
		names[i] = dc.str()
	}
	if dc.err != nil {
		return nil, errBadMsg
	}
	f.mu.Lock()
	state := f.state
	f.mu.Unlock()
	if state != fidWalked && (d != dialectL || newid == f.id) {
		return nil, errFidOpen
	}
	if newid != f.id {
		c.mu.Lock()
		taken := c.fids[newid] != nil
		c.mu.Unlock()
		if taken {
			return nil, errDupFid
		}
	}
	path := f.walkPath()
	var qids []qid
	for i, name := range names {
		next, err := walkOne(path, name)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			break
		}
		path = next
		qids = append(qids, qidOf(path[len(path)-1]))
	}
	if len(qids) == len(names) {
		if newid == f.id {
			f.mu.Lock()
			f.path = path
			f.mu.Unlock()
		} else if err := c.addFid(c.newFid(newid, path, f.uid)); err != nil {
			return nil, err
		}
	}
	var e enc
	e.start(msgRwalk, r.tag)
	e.u16(uint16(len(qids)))
	for _, q := range qids {
		e.qid(q)
	}
	return e.finish(), nil
}

// open opens fid f with open(2)'s access mode flags. A file's open may
// block (listen, until a call arrives); the request's context (Tflush,
// clunk, disconnection) cancels it.
func (c *conn) open(r *request, f *fid, flags int) (qid, error) {
	f.mu.Lock()
	if f.state != fidWalked {
		f.mu.Unlock()
		return qid{}, errFidOpen
	}
	f.state = fidOpening
	f.mu.Unlock()
	n := f.node()
	var h fs.Handle
	var err error
	if file, ok := n.(fs.File); ok {
		h, err = file.Open(&r.ctx, fs.OpenReq{Flags: flags, Uid: f.uid, Gid: f.uid})
	} else if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		err = errIsDir
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.state = fidWalked
		return qid{}, err
	}
	f.state = fidOpen
	f.h = h // released by the fid's last putFid, even if clunked meanwhile
	if ra, ok := h.(fs.Redirected); ok && len(f.path) >= 2 {
		// clone or listen: the fid is now the new conversation's ctl,
		// one level deeper (ipopen's mkqid(&c->qid, ..., Qctl)).
		d, ctl := ra.OpenedAs()
		f.path = append(slices.Clone(f.path[:len(f.path)-1]), d, ctl)
		n = ctl
	}
	f.read = flags&syscall.O_ACCMODE != syscall.O_WRONLY
	f.written = flags&syscall.O_ACCMODE != syscall.O_RDONLY
	return qidOf(n), nil
}

// openHandle returns f's open handle (nil for a directory) after checking
// the fid is open for reading (write=false) or writing.
func openHandle(f *fid, write bool) (fs.Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.state != fidOpen:
		return nil, errNotOpen
	case write && !f.written:
		return nil, errNoWrite
	case !write && !f.read:
		return nil, errNoRead
	}
	return f.h, nil
}

// read answers Tread: fid[4] offset[8] count[4]. Files read through their
// handle (it may block; the request's context cancels it with EINTR,
// consuming nothing); directories in 9P2000 and .u read as stat entries.
func (c *conn) read(r *request, d dialect, f *fid, dc *dec) ([]byte, error) {
	off, count := dc.u64(), dc.u32()
	if dc.err != nil {
		return nil, errBadMsg
	}
	h, err := openHandle(f, false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	count = min(count, c.msize-ioHdr)
	c.mu.Unlock()
	if h == nil {
		if d == dialectL {
			return nil, errIsDir
		}
		return c.readDirStat(r, d, f, off, count)
	}
	if r.try && !tryable(h) {
		return nil, errWouldBlock
	}
	if sp, ok := h.(fs.Splicer); ok && sp.Splices() && c.rw != nil {
		return c.readSpliced(r, sp, count)
	}
	if r.buf == nil {
		r.buf = getFrame(hdrLen + 4 + int(count)) // back to the pool once the reply is written
	}
	buf := *r.buf
	n, err := h.Read(&r.ctx, buf[hdrLen+4:], int64(off))
	if r.try && n == 0 && errors.Is(err, syscall.EINTR) {
		return nil, errWouldBlock
	}
	if err != nil {
		return nil, err
	}
	e := enc{b: buf[:0]}
	e.start(msgRread, r.tag)
	e.u32(uint32(n))
	e.b = buf[:hdrLen+4+n]
	return e.finish(), nil
}

// readDirStat reads a directory in 9P2000's way: whole stat entries, from
// offset 0 (which takes a new listing) or from where the last read ended.
func (c *conn) readDirStat(r *request, d dialect, f *fid, off uint64, count uint32) ([]byte, error) {
	dir := f.node().(fs.Dir)
	f.mu.Lock()
	defer f.mu.Unlock()
	if off == 0 {
		list, err := fs.ListDir(dir)
		if err != nil {
			return nil, err
		}
		f.dir, f.dirIdx, f.dirOff = list, 0, 0
	} else if off != f.dirOff {
		return nil, errBadOffset
	}
	var e enc
	e.start(msgRread, r.tag)
	e.u32(0)
	for f.dirIdx < len(f.dir) {
		at := len(e.b)
		appendStat(&e, f.dir[f.dirIdx], d)
		if len(e.b)-hdrLen-4 > int(count) {
			e.b = e.b[:at]
			break
		}
		f.dirIdx++
	}
	n := len(e.b) - hdrLen - 4
	le.PutUint32(e.b[hdrLen:], uint32(n))
	f.dirOff += uint64(n)
	return e.finish(), nil
}

// readdir answers Treaddir (9P2000.L): fid[4] offset[8] count[4]; the
// offset is an entry index, and each entry carries the next one's.
func (c *conn) readdir(r *request, f *fid, dc *dec) ([]byte, error) {
	off, count := dc.u64(), dc.u32()
	if dc.err != nil {
		return nil, errBadMsg
	}
	if _, err := openHandle(f, false); err != nil {
		return nil, err
	}
	dir, ok := f.node().(fs.Dir)
	if !ok {
		return nil, syscall.ENOTDIR
	}
	c.mu.Lock()
	count = min(count, c.msize-ioHdr)
	c.mu.Unlock()
	list, err := fs.ListDir(dir)
	if err != nil {
		return nil, err
	}
	var e enc
	e.start(msgRreaddir, r.tag)
	e.u32(0)
	for i := off; i < uint64(len(list)); i++ {
		n := list[i]
		name := n.Stat().Name
		if len(e.b)-hdrLen-4+qidLen+8+1+2+len(name) > int(count) {
			break
		}
		q := qidOf(n)
		e.qid(q)
		e.u64(i + 1)
		if q.typ&fs.QTDir != 0 {
			e.u8(4) // DT_DIR
		} else {
			e.u8(8) // DT_REG
		}
		e.str(name)
	}
	le.PutUint32(e.b[hdrLen:], uint32(len(e.b)-hdrLen-4))
	return e.finish(), nil
}

// writeFid answers Twrite: fid[4] offset[8] count[4] data[count]. It may
// block (flow control, connect); the request's context cancels it.
func (c *conn) writeFid(r *request, f *fid, dc *dec) ([]byte, error) {
	off, count := dc.u64(), dc.u32()
	data := dc.b
	if dc.err != nil {
		return nil, errBadMsg
	}
	have := len(data)
	if r.run != nil {
		have = r.run.n // the frame ends where the data begins
	}
	if int(count) != have {
		return nil, errBadCount
	}
	h, err := openHandle(f, true)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errIsDir
	}
	if r.try && !tryable(h) {
		return nil, errWouldBlock
	}
	var n int
	sp, _ := h.(fs.Splicer)
	switch {
	case r.run != nil && sp != nil && sp.Splices():
		// The send queue takes the pages themselves.
		pagedWrites.Add(1)
		n, err = sp.WritePages(&r.ctx, r.run.pages, r.woff, int(count)-r.woff)
	case r.run != nil:
		// A large write to a file that takes no pages: in one piece.
		if r.buf == nil {
			r.buf = getFrame(int(count)) // back to the pool with the request
			r.run.copyOut(0, *r.buf)
		}
		data = *r.buf
		fallthrough
	default:
		n, err = h.Write(&r.ctx, data[r.woff:], int64(off)+int64(r.woff))
	}
	left := int(count) - r.woff
	r.woff += n
	if r.try && n < left && (err == nil || errors.Is(err, syscall.EINTR)) {
		return nil, errWouldBlock // the rest goes to a worker
	}
	if err != nil && (r.woff == 0 || !errors.Is(err, syscall.EINTR)) {
		return nil, err
	}
	n = r.woff
	e := enc{b: r.small[:0]}
	e.start(msgRwrite, r.tag)
	e.u32(uint32(n))
	return e.finish(), nil
}

// tryable reports whether handle h may be tried without blocking
// (fs.Trier).
func tryable(h fs.Handle) bool {
	t, ok := h.(fs.Trier)
	return ok && t.Tryable()
}

// errAnswered is how a request whose reply its handler wrote itself (a
// spliced Rread) says there is nothing left to send; it is never sent.
var errAnswered = errors.New("9p: answered")

// errWouldBlock is how a tried request (request.try) says it must go to a
// worker; it is never sent.
var errWouldBlock = errors.New("9p: would block")

// Tsetattr's valid bits that sockfs acts on (P9_SETATTR_MODE, _UID).
const (
	setattrMode = 0x1
	setattrUID  = 0x2
)

// wstat answers Twstat: fid[4] n[2] stat[n]. A new mode or owner goes to
// the node's Wstat (a conversation's ctl or data, by its owner: Plan 9's
// ipwstat); renames are refused (the names are fixed); times, length
// (truncation) and the group are accepted and ignored, and a stat that
// changes nothing (all "don't touch") is a no-op, as wstat(5) has it.
func (c *conn) wstat(r *request, d dialect, f *fid, dc *dec) ([]byte, error) {
	dc.u16()   // n
	dc.take(4) // size[2] type[2]
	dc.take(4) // dev
	dc.qid()
	mode := dc.u32()
	dc.take(16) // atime mtime length
	name, uid := dc.str(), dc.str()
	nuid := ^uint32(0)
	if d == dialectU {
		dc.str() // gid
		dc.str() // muid
		dc.str() // extension
		nuid = dc.u32()
	}
	if dc.err != nil {
		return nil, errBadMsg
	}
	if name != "" {
		return nil, errNotWritten
	}
	var owner *uint32
	var perm *iofs.FileMode
	switch {
	case uid != "":
		id := hostUsers.uid(uid)
		owner = &id
	case nuid != ^uint32(0):
		owner = &nuid
	}
	if mode != ^uint32(0) {
		m := iofs.FileMode(mode & 0o777)
		perm = &m
	}
	if err := wstatNode(f, owner, perm); err != nil {
		return nil, err
	}
	return reply(msgRwstat, r.tag), nil
}

// wstatNode changes f's node's owner or mode (nil: unchanged) as f's user,
// through fs.Wstatter; a node that is not one refuses any change.
func wstatNode(f *fid, owner *uint32, mode *iofs.FileMode) error {
	if owner == nil && mode == nil {
		return nil
	}
	w, ok := f.node().(fs.Wstatter)
	if !ok {
		return errPerm
	}
	return w.Wstat(f.uid, owner, mode)
}
