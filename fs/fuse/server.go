package fuse

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	netfs "sockfs/fs"
	"sockfs/skb"
)

// server speaks the FUSE protocol on one /dev/fuse descriptor.
//
// Readers: goroutines blocked in read(2) on the device, maxIdle of them
// from the start. A reader that gets a request serves it itself, so a
// request costs no hand-over between goroutines; when it takes the last
// idle reader's place it starts another first, so a request that blocks
// (a read on an idle connection, a listen open) never stalls the others.
// Readers beyond maxIdle idle ones exit after their request (their
// worker state is kept for the next reader started).
type server struct {
	fd   int
	pid  int    // this process's, to tell its own threads' requests
	born int64  // mount time, every node's atime, mtime and ctime
	dir  string // the mount point: where clients see the tree (OpenReq.Root)

	nmu   sync.Mutex
	nodes map[uint64]*inode // by FUSE node id

	hmu     sync.Mutex
	handles map[uint64]*handle
	nextFh  uint64

	// inflight are the requests that may block, by unique: INTERRUPT
	// and the signal watch find them here.
	rmu      sync.Mutex
	inflight map[uint64]*reqCtx
	// early are INTERRUPTs read before the request they name registered,
	// by that request's unique (see interrupt).
	early map[uint64]earlyIntr

	sentinelDone chan struct{} // closed when the sentinel (ownpoll.go) is out

	idle    atomic.Int32
	live    atomic.Int32 // readers running, idle or not
	readers sync.WaitGroup
	quit    chan struct{}

	wmu   sync.Mutex
	spare []*worker // workers of readers that exited, for new readers

	// flushed: files of lingering conversations flushed and not yet
	// released, with when (awaitReleases).
	fmu     sync.Mutex
	flushed map[*handle]time.Time
}

// maxIdle is how many readers may wait in read(2) at once: enough that
// a few requests in flight together (a blocked read and the write that
// answers it, several streams) find a reader without starting one.
const maxIdle = 4

const rootID = 1 // FUSE_ROOT_ID

type inode struct {
	n       netfs.Node
	lookups uint64
}

// nodeID is the FUSE node id of a tree node: Qid.Path+2 (1 is the root).
func nodeID(n netfs.Node) uint64 { return n.Qid().Path + 2 }

func newServer(fd int, root netfs.Dir) *server {
	return &server{
		fd:       fd,
		pid:      os.Getpid(),
		born:     time.Now().Unix(),
		nodes:    map[uint64]*inode{rootID: {n: root, lookups: 1}},
		handles:  map[uint64]*handle{},
		inflight: map[uint64]*reqCtx{},
		early:    map[uint64]earlyIntr{},
		flushed:  map[*handle]time.Time{},
		quit:     make(chan struct{}),
	}
}

// readReq reads one request into buf (see readReqv).
func (s *server) readReq(buf []byte) (int, error) {
	iov := [1]unix.Iovec{{Base: unsafe.SliceData(buf)}}
	iov[0].SetLen(len(buf))
	return s.readReqv(iov[:])
}

// readReqv reads one request into the buffers of iov, retrying what the
// device answers when a request vanished before it was read. The read is
// rawRead's: a POLL from this process's own threads is answered on the
// way (see ownpoll.go) and comes back as opPollAnswered.
func (s *server) readReqv(iov []unix.Iovec) (int, error) {
	fd, pid := uintptr(s.fd), uintptr(s.pid)
	for {
		n, err := rawRead(fd, &iov[0], uintptr(len(iov)), pid)
		switch err {
		case 0:
			if n < inHeaderLen {
				return 0, fmt.Errorf("fuse: short request (%d bytes)", n)
			}
			return int(n), nil
		case unix.EINTR, unix.EAGAIN, unix.ENOENT:
			continue
		}
		return 0, err
	}
}

// write sends a reply or notification; an error (the request was
// interrupted and given up on, or the mount is gone) is no one's to see.
func (s *server) write(b []byte) {
	for {
		if _, err := unix.Write(s.fd, b); err != unix.EINTR {
			return
		}
	}
}

// writev sends a reply gathered from iov, as write does; it returns the
// error, which a spliced READ needs (the data it carried stays queued).
func (s *server) writev(iov []unix.Iovec) syscall.Errno {
	for {
		_, _, e := syscall.Syscall(syscall.SYS_WRITEV, uintptr(s.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e != syscall.EINTR {
			return e
		}
	}
}

// handshake answers INIT, the first request on a new mount: protocol
// 7.31 (or the kernel's, if older), 1 MiB writes, max_pages for 1 MiB
// reads, no readahead, no writeback cache.
func (s *server) handshake() error {
	buf := make([]byte, reqBufLen)
	n, err := s.readReq(buf)
	if err != nil {
		return fmt.Errorf("fuse init: %w", err)
	}
	h := parseInHeader(buf)
	if h.opcode != opInit || n < inHeaderLen+16 {
		return fmt.Errorf("fuse: first request has opcode %d, not INIT", h.opcode)
	}
	in := buf[inHeaderLen:n]
	major, minor, flags := ne.Uint32(in[0:]), ne.Uint32(in[4:]), ne.Uint32(in[12:])
	out := make([]byte, outHeaderLen+initOutLen)
	if major != protoMajor {
		// Offer our major; the kernel retries INIT or gives up.
		ne.PutUint32(out[outHeaderLen:], protoMajor)
		ne.PutUint32(out[outHeaderLen+4:], protoMinor)
		putOutHeader(out, outHeaderLen+8, 0, h.unique)
		s.write(out[:outHeaderLen+8])
		return fmt.Errorf("fuse: kernel speaks protocol %d.%d", major, minor)
	}
	minor = min(minor, protoMinor)
	size := initOutLen
	if minor < 23 {
		size = 24 // FUSE_COMPAT_22_INIT_OUT_SIZE
	}
	b := out[outHeaderLen:]
	ne.PutUint32(b[0:], protoMajor)
	ne.PutUint32(b[4:], minor)
	ne.PutUint32(b[8:], 0) // max_readahead
	ne.PutUint32(b[12:], flags&(initBigWrites|initParallelDirop|initMaxPages))
	ne.PutUint16(b[16:], 64) // max_background
	ne.PutUint16(b[18:], 48) // congestion_threshold
	ne.PutUint32(b[20:], maxIO)
	if size > 24 {
		ne.PutUint32(b[24:], 1) // time_gran
		ne.PutUint16(b[28:], maxPages)
	}
	putOutHeader(out, outHeaderLen+size, 0, h.unique)
	s.write(out[:outHeaderLen+size])
	return nil
}

// serve runs readers until the mount goes away, then returns.
func (s *server) serve() error {
	go s.watchSignals()
	defer close(s.quit)
	s.readers.Add(maxIdle)
	for range maxIdle {
		go s.reader()
	}
	s.readers.Wait()
	<-s.sentinelDone
	return nil
}

// worker is a reader's own state, reused from request to request.
type worker struct {
	s     *server
	small [512]byte // the request, copied out of the big buffer
	reply [outHeaderLen + entryOutLen]byte
	ctx   *reqCtx
	rv    replyVec // spliced READ replies (readSpliced)
	// wpages holds the WRITE being served, read there by serveFrom: its
	// wlen bytes of data from byte writeHeadLen of the pages on; nil for
	// a request in one piece (the sentinel's).
	wpages *reqPages
	wlen   int
	// back: counted in idle already, from just before the reply was
	// written (see send).
	back bool
}

func (s *server) reader() {
	defer s.readers.Done()
	s.live.Add(1)
	defer s.live.Add(-1)
	w := s.takeWorker()
	defer s.giveWorker(w)
	for {
		rp := getReqPages()
		if !w.back {
			s.idle.Add(1)
		}
		w.back = false
		n, err := s.readReqv(rp.iov[:])
		if s.idle.Add(-1) == 0 && err == nil {
			s.readers.Add(1)
			go s.reader()
		}
		if err != nil {
			putReqPages(rp)
			// ENODEV: unmounted; anything else: the device is unusable.
			return
		}
		w.serveFrom(rp, n)
		if w.back && s.idle.Load() > maxIdle || !w.back && s.idle.Load() >= maxIdle {
			if w.back {
				s.idle.Add(-1)
				w.back = false // the next reader to take w counts itself
			}
			return
		}
	}
}

// serveFrom serves the request of n bytes read into rp and gives rp back.
// A WRITE is served with its data where it is, in rp's pages (writeReq);
// any other request is copied out first and rp given back before it is
// served, since it may block.
func (w *worker) serveFrom(rp *reqPages, n int) {
	req := rp.first()
	if h := parseInHeader(req); h.opcode == opWrite && n >= writeHeadLen {
		w.wpages, w.wlen = rp, n-writeHeadLen
		w.serve(req[:writeHeadLen])
		w.wpages, w.wlen = nil, 0
		putReqPages(rp)
		return
	}
	var buf []byte
	if n > len(w.small) {
		buf = reqBufs.get()
		req = buf[:n]
	} else {
		req = w.small[:n]
	}
	rp.copyOut(0, req) // a copy even within the first page: rp goes back now
	putReqPages(rp)
	w.serve(req)
	reqBufs.put(buf)
}

// takeWorker returns a spare worker or a new one.
func (s *server) takeWorker() *worker {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if n := len(s.spare); n > 0 {
		w := s.spare[n-1]
		s.spare = s.spare[:n-1]
		return w
	}
	w := &worker{s: s, ctx: new(reqCtx)}
	w.rv = newReplyVec(w)
	return w
}

// giveWorker keeps w for the next reader.
func (s *server) giveWorker(w *worker) {
	s.wmu.Lock()
	s.spare = append(s.spare, w)
	s.wmu.Unlock()
}

// send writes a reply. The reader counts itself idle first: the caller
// whose request this answers may send the next one at once, and the
// reader is back in read(2) as soon as the runtime gives it a processor
// again, so that next request must not look as if every reader were
// busy (it would start a reader for each one; on two cores a reader
// often waits for a processor after its write).
func (w *worker) send(b []byte) {
	w.replying()
	w.s.write(b)
}

// replying counts the reader idle, once per request, as it is about to
// write its reply (see send).
func (w *worker) replying() {
	if !w.back {
		w.s.idle.Add(1)
		w.back = true
	}
}

// replyErr answers a request with an errno (0: success, no payload).
func (w *worker) replyErr(h inHeader, errno syscall.Errno) {
	putOutHeader(w.reply[:], outHeaderLen, -int32(errno), h.unique)
	w.send(w.reply[:outHeaderLen])
}

// replyOut answers with the first n payload bytes of w.reply.
func (w *worker) replyOut(h inHeader, n int) {
	putOutHeader(w.reply[:], outHeaderLen+n, 0, h.unique)
	w.send(w.reply[:outHeaderLen+n])
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return netfs.Errno(err)
}

// serve handles one request.
func (w *worker) serve(req []byte) {
	s := w.s
	h := parseInHeader(req)
	in := req[inHeaderLen:]
	switch h.opcode {
	case opForget:
		if len(in) >= 8 {
			s.forget(h.nodeid, ne.Uint64(in))
		}
	case opBatchForget:
		if len(in) >= 8 {
			cnt := int(ne.Uint32(in))
			for i := range cnt {
				o := 8 + 16*i
				if o+16 > len(in) {
					break
				}
				s.forget(ne.Uint64(in[o:]), ne.Uint64(in[o+8:]))
			}
		}
	case opInterrupt:
		if len(in) >= 8 && !s.interrupt(ne.Uint64(in), h.unique) {
			// Neither in flight nor kept: EAGAIN makes the kernel send
			// the INTERRUPT again; if the request is already answered
			// the kernel just drops this reply.
			w.replyErr(h, syscall.EAGAIN)
		}
	case opLookup:
		w.lookup(h, cstring(in))
	case opGetattr, opSetattr:
		n, ok := s.node(h.nodeid)
		if !ok {
			w.replyErr(h, syscall.ENOENT)
			return
		}
		if h.opcode == opSetattr {
			if err := setattr(n, h, in); err != nil {
				w.replyErr(h, errnoOf(err))
				return
			}
		}
		putAttrOut(w.reply[outHeaderLen:], s.attr(n))
		w.replyOut(h, attrOutLen)
	case opOpen, opOpendir:
		w.open(h, in)
	case opRead:
		w.read(h, in)
	case opWrite:
		w.writeReq(h, in)
	case opReaddir:
		w.readdir(h, in)
	case opPoll:
		w.poll(h, in, false)
	case opPollAnswered:
		w.poll(h, in, true)
	case opRelease, opReleasedir:
		if len(in) >= 8 {
			s.release(ne.Uint64(in))
		}
		w.replyErr(h, 0)
	case opFlush:
		w.flush(h, in)
	case opFsync, opFsyncdir:
		w.replyErr(h, 0)
	case opStatfs:
		b := w.reply[outHeaderLen : outHeaderLen+statfsOutLen]
		clear(b)
		ne.PutUint32(b[40:], 4096) // bsize
		ne.PutUint32(b[44:], 255)  // namelen
		ne.PutUint32(b[48:], 4096) // frsize
		w.replyOut(h, statfsOutLen)
	case opDestroy:
		w.replyErr(h, 0)
	case 6, 8, 9, 10, 11, 12, 13, 35, 45: // symlink mknod mkdir unlink rmdir rename link create rename2
		w.replyErr(h, syscall.EPERM)
	default:
		w.replyErr(h, syscall.ENOSYS)
	}
}

func (s *server) node(id uint64) (netfs.Node, bool) {
	s.nmu.Lock()
	defer s.nmu.Unlock()
	in, ok := s.nodes[id]
	if !ok {
		return nil, false
	}
	return in.n, true
}

func (s *server) forget(id, n uint64) {
	if id == rootID {
		return
	}
	s.nmu.Lock()
	if in, ok := s.nodes[id]; ok {
		if in.lookups <= n {
			delete(s.nodes, id)
		} else {
			in.lookups -= n
		}
	}
	s.nmu.Unlock()
}

// setattr applies SETATTR's fuse_setattr_in (valid[4] pad[4] fh[8]
// size[8] lock_owner[8] atime[8] mtime[8] ctime[8] atimensec[4]
// mtimensec[4] ctimensec[4] mode[4] unused[4] uid[4] gid[4]): a new mode
// (chmod) or owner (chown) goes to the node's Wstat as the caller, which
// a conversation's ctl and data take from their owner or root (Plan 9's
// ipwstat); the size (a shell's > truncation), times and group are
// accepted and ignored.
func setattr(n netfs.Node, h inHeader, in []byte) error {
	if len(in) < 88 {
		return syscall.EINVAL
	}
	valid := ne.Uint32(in[0:])
	var owner *uint32
	var mode *fs.FileMode
	if valid&fattrMode != 0 {
		m := fs.FileMode(ne.Uint32(in[68:]) & 0o777)
		mode = &m
	}
	if valid&fattrUID != 0 {
		uid := ne.Uint32(in[76:])
		owner = &uid
	}
	if owner == nil && mode == nil {
		return nil
	}
	w, ok := n.(netfs.Wstatter)
	if !ok {
		return syscall.EPERM
	}
	return w.Wstat(h.uid, owner, mode)
}

// SETATTR's valid bits that setattr acts on (FATTR_MODE, FATTR_UID).
const (
	fattrMode = 1 << 0
	fattrUID  = 1 << 1
)

func (s *server) attr(n netfs.Node) attr {
	st := n.Stat()
	// The size stays 0, not st.Length (data's bytes queued, which 9P
	// reports): the kernel serves splice(2) and MAP_PRIVATE mmaps of a
	// FUSE file from its page cache, FOPEN_DIRECT_IO or not, in pages
	// bounded by the size it cached, while READ takes a stream's bytes
	// whole; a size lets it take a page and hand on less, losing the
	// rest. At size 0 those calls see end of file and take nothing.
	a := attr{ino: n.Qid().Path + 1, uid: st.Uid, gid: st.Gid, time: s.born, nlink: 1}
	a.mode = uint32(st.Mode.Perm())
	if st.Mode&fs.ModeDir != 0 {
		a.mode |= syscall.S_IFDIR
		a.nlink = 2
	} else {
		a.mode |= syscall.S_IFREG
	}
	return a
}

func (w *worker) lookup(h inHeader, name string) {
	s := w.s
	p, ok := s.node(h.nodeid)
	if !ok {
		w.replyErr(h, syscall.ENOENT)
		return
	}
	d, ok := p.(netfs.Dir)
	if !ok {
		w.replyErr(h, syscall.ENOTDIR)
		return
	}
	c, err := d.Lookup(name)
	if err != nil {
		w.replyErr(h, errnoOf(err))
		return
	}
	id := nodeID(c)
	s.nmu.Lock()
	if in, ok := s.nodes[id]; ok {
		in.n = c
		in.lookups++
	} else {
		s.nodes[id] = &inode{n: c, lookups: 1}
	}
	s.nmu.Unlock()
	putEntryOut(w.reply[outHeaderLen:], id, s.attr(c))
	w.replyOut(h, entryOutLen)
}

// begin registers a request that may block and returns its context.
func (w *worker) begin(h inHeader) *reqCtx {
	if w.ctx.used {
		w.ctx = new(reqCtx)
	}
	c := w.ctx
	c.reset(h.unique, h.pid)
	s := w.s
	var stale uint64
	s.rmu.Lock()
	s.inflight[h.unique] = c
	if len(s.early) > 0 {
		if _, ok := s.early[h.unique]; ok {
			delete(s.early, h.unique)
			c.cancel() // its INTERRUPT came first
		}
		stale = s.expireEarly()
	}
	s.rmu.Unlock()
	if stale != 0 {
		var b [outHeaderLen]byte
		putOutHeader(b[:], outHeaderLen, -int32(syscall.EAGAIN), stale)
		s.write(b[:])
	}
	return c
}

func (w *worker) end(c *reqCtx) {
	w.s.rmu.Lock()
	delete(w.s.inflight, c.unique)
	w.s.rmu.Unlock()
}

// An INTERRUPT kept for a request that has not registered yet (earlyIntr):
// the device hands INTERRUPTs out before any request, so a signal that
// reaches a caller whose READ or WRITE waits in the device's queue sends
// the INTERRUPT to a reader first, and the READ to another. Answered EAGAIN
// at once, as it was, the kernel queued it again, ahead of the READ once
// more, and readers passed it around until one took the READ and
// registered it (about 2% of round trips in the request/response
// benchmark, whose Go peer gets the runtime's SIGURGs). Kept instead, as
// libfuse keeps it (check_interrupt), it cancels the request when it
// registers (begin).
type earlyIntr struct {
	intr uint64    // the INTERRUPT's own unique, for its EAGAIN answer
	at   time.Time // when it came
}

// maxEarly bounds the INTERRUPTs kept; more are answered EAGAIN at once.
const maxEarly = 64

// earlyTTL is how long an INTERRUPT is kept. One whose request never
// registers (it was answered before the INTERRUPT was read, or it is a
// request that never blocks) is answered EAGAIN by the first begin after
// that: the kernel drops the answer, or sends the INTERRUPT again if the
// request still waits.
const earlyTTL = time.Second

// interrupt cancels the request unique, or keeps INTERRUPT intr for it
// until it registers; false if it is not in flight and no more can be
// kept (the INTERRUPT must be answered EAGAIN).
func (s *server) interrupt(unique, intr uint64) bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if c, ok := s.inflight[unique]; ok {
		c.cancel()
		return true
	}
	if _, ok := s.early[unique]; !ok && len(s.early) >= maxEarly {
		return false
	}
	s.early[unique] = earlyIntr{intr: intr, at: time.Now()}
	return true
}

// expireEarly removes one INTERRUPT kept longer than earlyTTL and returns
// its unique, to be answered EAGAIN; 0 if none. Called under rmu.
func (s *server) expireEarly() uint64 {
	now := time.Now()
	for u, e := range s.early {
		if now.Sub(e.at) > earlyTTL {
			delete(s.early, u)
			return e.intr
		}
	}
	return 0
}

func (w *worker) open(h inHeader, in []byte) {
	s := w.s
	if len(in) < 4 {
		w.replyErr(h, syscall.EINVAL)
		return
	}
	flags := int(ne.Uint32(in))
	n, ok := s.node(h.nodeid)
	if !ok {
		w.replyErr(h, syscall.ENOENT)
		return
	}
	hd := &handle{s: s}
	var oflags uint32
	if h.opcode == opOpendir {
		d, ok := n.(netfs.Dir)
		if !ok {
			w.replyErr(h, syscall.ENOTDIR)
			return
		}
		hd.dir = d
	} else {
		f, ok := n.(netfs.File)
		if !ok {
			w.replyErr(h, syscall.EISDIR)
			return
		}
		c := w.begin(h)
		nh, err := f.Open(ioctx(c, flags), netfs.OpenReq{Flags: flags, Uid: h.uid, Gid: h.gid, Root: w.s.dir})
		w.end(c)
		if err != nil {
			w.replyErr(h, errnoOf(err))
			return
		}
		hd.h = nh
		hd.wakeFn = hd.wake
		oflags = fopenDirectIO
		if n.Stat().Stream {
			hd.stream = true
			oflags |= fopenNonseekable | fopenStream
		}
	}
	s.hmu.Lock()
	s.nextFh++
	fh := s.nextFh
	s.handles[fh] = hd
	s.hmu.Unlock()
	b := w.reply[outHeaderLen : outHeaderLen+openOutLen]
	clear(b)
	ne.PutUint64(b[0:], fh)
	ne.PutUint32(b[8:], oflags)
	w.replyOut(h, openOutLen)
}

func (s *server) handle(fh uint64) *handle {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.handles[fh]
}

func (s *server) release(fh uint64) {
	s.hmu.Lock()
	hd := s.handles[fh]
	delete(s.handles, fh)
	s.hmu.Unlock()
	if hd != nil {
		s.fmu.Lock()
		delete(s.flushed, hd)
		s.fmu.Unlock()
	}
	if hd != nil && hd.h != nil {
		hd.kh.Store(0)
		hd.h.Release()
	}
}

// flush answers FLUSH, which the kernel sends at every close(2) of a
// descriptor and waits for: a file whose last close lingers (a TCP
// conversation's after `linger S`) waits there (netfs.Lingerer's Flush),
// unless the closing thread is exiting, whose closes Linux does not
// linger (inet_release skips the linger when PF_EXITING). An INTERRUPT (a
// signal to the closing thread) ends the wait, as a signal ends
// sk_stream_wait_close.
func (w *worker) flush(h inHeader, in []byte) {
	if len(in) >= 8 {
		if hd := w.s.handle(ne.Uint64(in)); hd != nil {
			if l, ok := hd.h.(netfs.Lingerer); ok && l.LingerSet() {
				w.s.awaitReleases(hd, l)
				if l.Lingers() && !exiting(h.pid) {
					c := w.begin(h)
					l.Flush(c)
					w.end(c)
				}
				w.s.noteFlushed(hd)
			}
		}
	}
	w.replyErr(h, 0)
}

// releaseWait bounds how long a FLUSH waits for the RELEASE of another
// file (awaitReleases).
const releaseWait = time.Second

// noteFlushed records the FLUSH of hd, a file of a lingering
// conversation, until its RELEASE (if the close was its last, the RELEASE
// is on its way).
func (s *server) noteFlushed(hd *handle) {
	s.fmu.Lock()
	s.flushed[hd] = time.Now()
	s.fmu.Unlock()
}

// othersFlushed reports whether a file of a lingering conversation other
// than hd was flushed within releaseWait and not released since.
func (s *server) othersFlushed(hd *handle) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for o, at := range s.flushed {
		if o != hd && time.Since(at) < releaseWait {
			return true
		}
	}
	return false
}

// awaitReleases gives the RELEASE of another file of l's conversation,
// closed just before this FLUSH's file, time to arrive. The kernel queued
// it ahead of this FLUSH, but the reader that took it off the device may
// not have served it yet (a reader can wait long for a CPU on a busy
// machine), and until it has, the conversation still counts that file
// open. Every RELEASE follows its file's FLUSH, so while l does not linger
// and another lingering conversation's file was flushed within
// releaseWait and not released since, this FLUSH looks again every 200
// µs; a close that leaves files open that no one is closing does not wait.
func (s *server) awaitReleases(hd *handle, l netfs.Lingerer) {
	for start := time.Now(); !l.Lingers() && s.othersFlushed(hd) && time.Since(start) < releaseWait; {
		time.Sleep(200 * time.Microsecond)
	}
}

// pfExiting is the kernel's PF_EXITING task flag.
const pfExiting = 0x4

// exiting reports whether thread tid is exiting (PF_EXITING in the flags,
// field 9 of /proc/TID/stat): its descriptors are being closed by
// exit(2). A thread that is gone counts as exiting; tid 0 (a caller
// outside the mount's PID namespace) does not.
func exiting(tid uint32) bool {
	if tid == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:])) // from field 3, the state
	if len(f) < 7 {
		return false
	}
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	return flags&pfExiting != 0
}

// readIn is the part of fuse_read_in (also READDIR's) that we use.
type readIn struct {
	fh    uint64
	off   int64
	size  int
	flags int
}

func parseReadIn(in []byte) (readIn, bool) {
	if len(in) < readInLen {
		return readIn{}, false
	}
	return readIn{fh: ne.Uint64(in), off: int64(ne.Uint64(in[8:])), size: int(ne.Uint32(in[16:])),
		flags: int(ne.Uint32(in[32:]))}, true
}

// read answers READ: the tree handle reads straight into the reply
// buffer, after the out header, so the bytes are copied once (from the
// socket's receive queue) before the kernel copies them to the caller. A
// handle that splices (a TCP conversation's data) is not copied by us at
// all: readSpliced.
func (w *worker) read(h inHeader, in []byte) {
	r, ok := parseReadIn(in)
	hd := w.s.handle(r.fh)
	if !ok || hd == nil || hd.h == nil {
		w.replyErr(h, syscall.EBADF)
		return
	}
	size := min(r.size, maxIO)
	if sp, ok := hd.h.(netfs.Splicer); ok && sp.Splices() {
		w.readSpliced(h, hd, sp, size, r.flags)
		return
	}
	pool := replyPool(size)
	buf := pool.get()
	off := r.off
	if hd.stream {
		hd.mu.Lock()
		off = hd.cursor
		hd.mu.Unlock()
	}
	c := w.begin(h)
	n, err := hd.h.Read(ioctx(c, r.flags), buf[outHeaderLen:outHeaderLen+size], off)
	w.end(c)
	if err != nil {
		pool.put(buf)
		w.replyErr(h, errnoOf(err))
		return
	}
	hd.advance(n)
	putOutHeader(buf, outHeaderLen+n, 0, h.unique)
	w.send(buf[:outHeaderLen+n])
	pool.put(buf)
}

// readSpliced answers a READ of a TCP conversation's data with one
// writev(2) of the reply's header and the receive queue's own bytes
// (netstack's RecvTo, tcp_read_sock's actor), so the kernel's copy into
// the caller's pages is the only one. The data is consumed only once the
// reply is written: if the request is gone (interrupted and given up on,
// ENOENT), it stays queued for the next read, where a copied reply would
// have lost it.
func (w *worker) readSpliced(h inHeader, hd *handle, sp netfs.Splicer, size, flags int) {
	c := w.begin(h)
	w.rv.unique, w.rv.err = h.unique, nil
	n, err := sp.ReadTo(ioctx(c, flags), size, w.rv.data[:0], &w.rv)
	w.end(c)
	switch {
	case w.rv.err != nil:
		return // the reply could not be written: nothing to answer
	case err != nil:
		w.replyErr(h, errnoOf(err))
		return
	case n == 0: // end of file: no writev was made
		w.replyErr(h, 0)
		return
	}
	hd.advance(n)
}

// maxSpliceSlices bounds the receive queue slices of one spliced reply:
// IOV_MAX (1024) less the header's.
const maxSpliceSlices = 1023

// replyVec is a worker's RecvActor: it writes a READ reply from slices of
// the receive queue.
type replyVec struct {
	w      *worker
	unique uint64
	err    error // the writev's, if it failed
	hdr    [outHeaderLen]byte
	data   [][]byte
	iov    []unix.Iovec
}

func newReplyVec(w *worker) replyVec {
	return replyVec{w: w, data: make([][]byte, 0, maxSpliceSlices), iov: make([]unix.Iovec, 0, maxSpliceSlices+1)}
}

// TakeRecv writes the reply: its header and data, all n bytes or none
// (the device takes a reply whole).
func (v *replyVec) TakeRecv(data [][]byte, n int) (int, error) {
	putOutHeader(v.hdr[:], outHeaderLen+n, 0, v.unique)
	iov := append(v.iov[:0], unix.Iovec{Base: &v.hdr[0], Len: outHeaderLen})
	for _, d := range data {
		if len(d) > 0 {
			iov = append(iov, unix.Iovec{Base: &d[0], Len: uint64(len(d))})
		}
	}
	v.w.replying()
	if e := v.w.s.writev(iov); e != 0 {
		v.err = e
		return 0, nil
	}
	return n, nil
}

// writeReq answers WRITE with the data where the request brought it: in
// the request (in, after fuse_write_in) or in w.wpages. A TCP
// conversation's data takes a write that does not fit in the first page
// as the pages themselves (netfs.Splicer's WritePages: the send queue
// references them, and they are replaced for the next request); anything
// else is written from one slice, the first page's own or, for a longer
// write, a copy.
func (w *worker) writeReq(h inHeader, in []byte) {
	if len(in) < writeInLen {
		w.replyErr(h, syscall.EINVAL)
		return
	}
	fh, off, size, flags := ne.Uint64(in), int64(ne.Uint64(in[8:])), int(ne.Uint32(in[16:])), int(ne.Uint32(in[32:]))
	hd := w.s.handle(fh)
	rp, have := w.wpages, len(in)-writeInLen
	if rp != nil {
		have = w.wlen
	}
	if hd == nil || hd.h == nil || size > have {
		w.replyErr(h, syscall.EBADF)
		return
	}
	c := w.begin(h)
	ctx := ioctx(c, flags)
	var n int
	var err error
	sp, _ := hd.h.(netfs.Splicer)
	switch {
	case rp == nil:
		n, err = hd.h.Write(ctx, in[writeInLen:writeInLen+size], off)
	case writeHeadLen+size > skb.PageFragSize && sp != nil && sp.Splices():
		n, err = sp.WritePages(ctx, rp.pages[:], writeHeadLen, size)
		rp.renew(writeHeadLen, size)
	default:
		var buf []byte // only for data beyond the first page
		if writeHeadLen+size > skb.PageFragSize {
			buf = reqBufs.get()
		}
		n, err = hd.h.Write(ctx, rp.slice(writeHeadLen, size, buf), off)
		reqBufs.put(buf)
	}
	w.end(c)
	later := c.push // sent once the writer has its answer (netfs.PushAfterReply)
	c.push = netfs.PushAfterReply{}
	defer later.Push()
	if err != nil {
		w.replyErr(h, errnoOf(err))
		return
	}
	b := w.reply[outHeaderLen : outHeaderLen+8]
	clear(b)
	ne.PutUint32(b, uint32(n))
	w.replyOut(h, 8)
}

// readdir lists a directory handle's entries from the kernel's offset
// (an entry's offset is its index plus one); the listing is taken anew
// when a reader starts at 0.
func (w *worker) readdir(h inHeader, in []byte) {
	r, ok := parseReadIn(in)
	hd := w.s.handle(r.fh)
	if !ok || hd == nil || hd.dir == nil {
		w.replyErr(h, syscall.EBADF)
		return
	}
	hd.mu.Lock()
	if r.off == 0 || hd.ents == nil {
		ents, err := netfs.ListDir(hd.dir)
		if err != nil {
			hd.mu.Unlock()
			w.replyErr(h, errnoOf(err))
			return
		}
		hd.ents = ents
	}
	ents := hd.ents
	hd.mu.Unlock()
	size := min(r.size, maxIO)
	pool := replyPool(size)
	buf := pool.get()
	n := 0
	for i := int(max(r.off, 0)); i < len(ents); i++ {
		c := ents[i]
		name := c.Stat().Name
		if n+padDirent(len(name)) > size {
			break
		}
		typ := uint32(syscall.DT_REG)
		if c.Qid().Type&netfs.QTDir != 0 {
			typ = syscall.DT_DIR
		}
		n += putDirent(buf[outHeaderLen+n:], c.Qid().Path+1, uint64(i+1), typ, name)
	}
	putOutHeader(buf, outHeaderLen+n, 0, h.unique)
	w.send(buf[:outHeaderLen+n])
	pool.put(buf)
}

// poll answers POLL from the handle's readiness; with
// FUSE_POLL_SCHEDULE_NOTIFY it also arranges a NOTIFY_POLL for the
// kernel's poll handle whenever the readiness may have changed. The
// event bits are poll(2)'s on both sides. A POLL answered where it was
// read (answered: an own thread's, ownpoll.go) only registers the
// wake-up, and sends NOTIFY_POLL at once if the handle is ready already
// (its caller may have found it not ready before the registration).
func (w *worker) poll(h inHeader, in []byte, answered bool) {
	if len(in) < 24 {
		if !answered {
			w.replyErr(h, syscall.EINVAL)
		}
		return
	}
	fh, kh, flags, events := ne.Uint64(in), ne.Uint64(in[8:]), ne.Uint32(in[16:]), ne.Uint32(in[20:])
	hd := w.s.handle(fh)
	if hd == nil || hd.h == nil {
		if !answered {
			w.replyErr(h, syscall.EBADF)
		}
		return
	}
	var wake func()
	if flags&pollScheduleNotify != 0 {
		hd.kh.Store(kh)
		wake = hd.wakeFn
	}
	got := hd.h.Poll(netfs.Event(events)&(netfs.PollIn|netfs.PollOut|netfs.PollRdHup), wake)
	if answered {
		if wake != nil && got != 0 {
			wake()
		}
		return
	}
	b := w.reply[outHeaderLen : outHeaderLen+8]
	clear(b)
	ne.PutUint32(b, uint32(got))
	w.replyOut(h, 8)
}

// handle is an open file or directory.
type handle struct {
	s      *server
	h      netfs.Handle // nil for a directory
	dir    netfs.Dir
	stream bool

	mu     sync.Mutex
	cursor int64        // read position of a stream handle
	ents   []netfs.Node // directory listing being read

	wakeFn  func()
	kh      atomic.Uint64 // the kernel's poll handle (0: none)
	pending atomic.Bool
}

// advance moves a stream handle's read position on by n bytes.
func (hd *handle) advance(n int) {
	if hd.stream {
		hd.mu.Lock()
		hd.cursor += int64(n)
		hd.mu.Unlock()
	}
}

// wake sends NOTIFY_POLL for the kernel's poll handle. It runs in the
// socket's waker, so the write to /dev/fuse happens in a goroutine of its
// own, coalesced.
func (hd *handle) wake() {
	if hd.kh.Load() == 0 || !hd.pending.CompareAndSwap(false, true) {
		return
	}
	go func() {
		hd.pending.Store(false)
		kh := hd.kh.Load()
		if kh == 0 {
			return
		}
		var b [outHeaderLen + 8]byte
		putOutHeader(b[:], len(b), notifyPoll, 0)
		ne.PutUint64(b[outHeaderLen:], kh)
		hd.s.write(b[:])
	}()
}

// ioctx is the context of a call: c, or for a non-blocking one
// (O_NONBLOCK in the request's file flags) nonblockCtx. A non-blocking
// call never waits, so nothing needs to cancel it; deriving its context
// from c instead would hide c's AfterFunc behind the marker's value
// context, and a context derived from that (the tree's deadline for a
// non-blocking call) would start a goroutine that calls c.Done later,
// when the reader may have reused c.
func ioctx(c *reqCtx, flags int) context.Context {
	if flags&syscall.O_NONBLOCK != 0 {
		return nonblockCtx
	}
	return c
}

var nonblockCtx = netfs.WithNonblock(context.Background())
