package p9

import (
	"bytes"
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	iofs "io/fs"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"sockfs/fs"
)

// RemoteOptions configures Dial and NewRemote.
type RemoteOptions struct {
	// Uid is the user the remote server opens files as (Tattach
	// n_uname), and the one that walks and stats. 9P2000.L carries one
	// identity per attach.
	Uid uint32
	// PerUser makes each open go out as the local opener's uid
	// (fs.OpenReq.Uid), over a connection and attach of its own per
	// user, so that the remote tree's ownership rules (the opener owns a
	// conversation; others get EACCES) hold for local users as they do
	// on a FUSE mount. Only Dial can do it (it needs to reconnect).
	PerUser bool
	// Aname is the attach name (the remote directory to import); "" is
	// the root.
	Aname string
	// Msize is the message size to ask for; 0 means DefaultMsize.
	Msize uint32
	// TLS, if set, makes Dial speak 9P inside TLS (ClientTLS: mutual
	// TLS). The server then attaches every connection as its
	// certificate's common name, so PerUser opens gain nothing.
	TLS *tls.Config
}

// Remote is a tree served over 9P by another process (a sockfs server in
// 9P2000.L, or a Plan 9 /net in plain 9P2000), seen as an fs tree: Root
// can be mounted with the FUSE frontend (sockfs import). Blocking calls
// carry their context to the server: its cancellation (a FUSE INTERRUPT)
// sends Tflush for the remote request.
type Remote struct {
	opts RemoteOptions
	dial func(context.Context) (net.Conn, error) // nil: no PerUser
	main *session
	root *rnode

	mu    sync.Mutex
	nodes map[string]*rnode    // by path, so a name keeps one Node
	fids  list.List            // rnodes holding a fid, most recently used first (not the root)
	users map[uint32]*session  // PerUser sessions, by uid
	fails map[uint32]time.Time // last failed attach per uid
	convs map[string]*rconv    // TCP conversations with files open here, by directory
}

// session is one connection and attach.
type session struct {
	c    *client
	root *cfid
}

// Dial connects to the 9P server at addr (host:port) and attaches.
func Dial(ctx context.Context, addr string, opts RemoteOptions) (*Remote, error) {
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil || opts.TLS == nil {
			return nc, err
		}
		cfg := opts.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		return tc, nil
	}
	nc, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	r, err := newRemote(nc, opts, dial)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// NewRemote speaks 9P over nc, which it owns from now on (also on error).
// opts.PerUser is ignored: there is no way to open more connections.
func NewRemote(nc net.Conn, opts RemoteOptions) (*Remote, error) {
	opts.PerUser = false
	return newRemote(nc, opts, nil)
}

func newRemote(nc net.Conn, opts RemoteOptions, dial func(context.Context) (net.Conn, error)) (*Remote, error) {
	if !opts.PerUser {
		dial = nil
	}
	main, err := newSession(nc, opts, opts.Uid)
	if err != nil {
		return nil, err
	}
	r := &Remote{opts: opts, dial: dial, main: main,
		nodes: make(map[string]*rnode), users: make(map[uint32]*session), fails: make(map[uint32]time.Time),
		convs: make(map[string]*rconv)}
	root := &rnode{r: r, f: main.root}
	if err := root.refresh(); err != nil {
		main.c.Close()
		return nil, err
	}
	if root.st.Mode&iofs.ModeDir == 0 {
		main.c.Close()
		return nil, syscall.ENOTDIR
	}
	r.root = root
	r.nodes[""] = root
	return r, nil
}

// newSession negotiates and attaches as uid over nc (closed on error).
func newSession(nc net.Conn, opts RemoteOptions, uid uint32) (*session, error) {
	msize := opts.Msize
	if msize == 0 {
		msize = DefaultMsize
	}
	c, err := newClient(nc, msize)
	if err != nil {
		return nil, sessionErr(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := c.attach(ctx, opts.Aname, uid)
	if err != nil {
		c.Close()
		return nil, sessionErr(err)
	}
	return &session{c: c, root: root}, nil
}

// sessionErr is convErr for the version and attach of a new session,
// keeping the cause of a broken connection in the text: a TLS server
// that refused the certificate ("remote error: tls: bad certificate"), a
// server that hung up. Its errno is still EIO.
func sessionErr(err error) error {
	if e := convErr(err); e != syscall.EIO {
		return e
	}
	return fmt.Errorf("%v: %w", err, syscall.EIO)
}

// session returns the session to open files as uid: the main one, or with
// PerUser one of uid's own, made on first use. A failed attach is not
// retried for a second, so a refusing server is not hammered.
func (r *Remote) session(ctx context.Context, uid uint32) (*session, error) {
	if r.dial == nil || uid == r.opts.Uid {
		return r.main, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.users[uid]; s != nil {
		return s, nil
	}
	if t, ok := r.fails[uid]; ok && time.Since(t) < time.Second {
		return nil, syscall.EIO
	}
	nc, err := r.dial(ctx)
	if err != nil {
		r.fails[uid] = time.Now()
		return nil, syscall.EIO
	}
	s, err := newSession(nc, r.opts, uid)
	if err != nil {
		r.fails[uid] = time.Now()
		return nil, convErr(err)
	}
	r.users[uid] = s
	return s, nil
}

// Root is the imported tree's root.
func (r *Remote) Root() fs.Dir { return rdir{r.root} }

// Close drops the connections; calls in flight fail.
// Lost is closed when the connection to the server is over (the server
// went away, or Close); LostErr then says why.
func (r *Remote) Lost() <-chan struct{} { return r.main.c.dead }

// LostErr is why the connection ended, once Lost is closed.
func (r *Remote) LostErr() error {
	c := r.main.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (r *Remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.users {
		s.c.Close()
	}
	return r.main.c.Close()
}

// convErr turns a client error into an errno (wrapped with the server's
// text, if it sent one): EIO for a broken connection.
func convErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *protoError
	var e syscall.Errno
	if errors.As(err, &pe) || errors.As(err, &e) {
		return err
	}
	return syscall.EIO
}

// streamNames are the files the tree serves as streams (fs.Stat.Stream):
// 9P has no attribute for it, so the import goes by name.
var streamNames = map[string]bool{"clone": true, "ctl": true, "data": true, "listen": true}

// maxCachedFids bounds the fids the Remote keeps walked to nodes, so that
// an import that has seen many conversations stays within the server's
// fids per connection (DefaultMaxFids, 4096). The kernel's FUSE FORGET
// does not reach the tree, so nodes are never told they are gone.
const maxCachedFids = 256

// rnode is a remote node: its path, and a fid walked to it (for getattr
// and as the origin of opens and walks), kept while the node is among the
// most recently used and given back (clunked) after; the next use walks
// a new one from the root.
type rnode struct {
	r    *Remote
	path string // slash-separated, "" for the root

	// Under r.mu: f is nil once given back; busy counts the calls using
	// f, which keep it from being given back; elem is the node's place
	// in r.fids.
	f    *cfid
	busy int
	elem *list.Element

	mu  sync.Mutex
	qid fs.Qid
	st  fs.Stat
}

// hold returns the node's fid, walked anew from the root if it was given
// back, and keeps it until unhold.
func (n *rnode) hold(ctx context.Context) (*cfid, error) {
	r := n.r
	r.mu.Lock()
	if f := n.holdLocked(); f != nil {
		r.mu.Unlock()
		return f, nil
	}
	r.mu.Unlock()
	f, err := r.main.root.walk(ctx, strings.Split(n.path, "/")...)
	if err != nil {
		return nil, convErr(err)
	}
	return n.adopt(f), nil
}

// holdLocked holds the node's fid if it has one (nil if not). Caller
// holds r.mu.
func (n *rnode) holdLocked() *cfid {
	if n.f != nil {
		n.busy++
		n.r.touchLocked(n)
	}
	return n.f
}

// adopt makes f the node's fid, held once, unless another caller gave it
// one meanwhile (f is then clunked, and that one held). Least recently
// used fids beyond maxCachedFids are given back.
func (n *rnode) adopt(f *cfid) *cfid {
	r := n.r
	r.mu.Lock()
	if have := n.holdLocked(); have != nil {
		r.mu.Unlock()
		f.clunk()
		return have
	}
	n.f = f
	n.busy++
	r.touchLocked(n)
	var back []*cfid
	for e := r.fids.Back(); e != nil && r.fids.Len() > maxCachedFids; {
		v := e.Value.(*rnode)
		prev := e.Prev()
		if v.busy == 0 {
			back = append(back, v.f)
			v.f, v.elem = nil, nil
			r.fids.Remove(e)
		}
		e = prev
	}
	r.mu.Unlock()
	for _, b := range back {
		b.clunk()
	}
	return f
}

// unhold ends a use of the fid hold returned.
func (n *rnode) unhold() {
	n.r.mu.Lock()
	n.busy--
	n.r.mu.Unlock()
}

// touchLocked moves n to the front of r.fids (the root stays out).
func (r *Remote) touchLocked(n *rnode) {
	if n == r.root || n.path == "" {
		return
	}
	if n.elem == nil {
		n.elem = r.fids.PushFront(n)
		return
	}
	r.fids.MoveToFront(n.elem)
}

func (n *rnode) name() string { return n.path[strings.LastIndexByte(n.path, '/')+1:] }

// refresh fetches the node's attributes (one Tgetattr or Tstat).
func (n *rnode) refresh() error {
	f, err := n.hold(context.Background())
	if err != nil {
		return err
	}
	a, err := f.stat(context.Background())
	n.unhold()
	if err != nil {
		return convErr(err)
	}
	st := fs.Stat{Name: n.name(), Mode: a.mode, Uid: a.uid, Gid: a.gid, Length: a.size}
	if a.mode&iofs.ModeDir == 0 {
		st.Stream = streamNames[st.Name]
	}
	q := a.qid
	n.mu.Lock()
	n.qid = fs.Qid{Path: q.path, Version: q.version, Type: q.typ}
	n.st = st
	n.mu.Unlock()
	return nil
}

// Qid is the qid last seen.
func (n *rnode) Qid() fs.Qid {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.qid
}

// Wstat asks the server to change the node's owner or mode (it decides:
// a conversation's owner may, through ctl or data).
func (n *rnode) Wstat(_ uint32, owner *uint32, mode *iofs.FileMode) error {
	f, err := n.hold(context.Background())
	if err != nil {
		return err
	}
	err = f.wstat(context.Background(), owner, mode)
	n.unhold()
	if err != nil {
		return convErr(err)
	}
	n.refresh()
	return nil
}

// Stat asks the server (ownership changes as conversations are reused);
// if it cannot, the last answer stands.
func (n *rnode) Stat() fs.Stat {
	n.refresh()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st
}

// node returns the node for path, walked by one name from parent. It
// always walks, so a name that went away is ENOENT.
func (r *Remote) node(parent *rnode, name string) (*rnode, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, syscall.ENOENT
	}
	pf, err := parent.hold(context.Background())
	if err != nil {
		return nil, err
	}
	f, err := pf.walk(context.Background(), name)
	parent.unhold()
	if err != nil {
		return nil, convErr(err)
	}
	path := name
	if parent.path != "" {
		path = parent.path + "/" + name
	}
	r.mu.Lock()
	n, ok := r.nodes[path]
	if !ok {
		n = &rnode{r: r, path: path}
		r.nodes[path] = n
	}
	r.mu.Unlock()
	n.adopt(f) // or clunked, if n kept a fid
	n.unhold()
	if err := n.refresh(); err != nil {
		return nil, err
	}
	return n, nil
}

func (r *Remote) wrap(n *rnode) fs.Node {
	if n.Qid().Type&fs.QTDir != 0 {
		return rdir{n}
	}
	return rfile{n}
}

// rdir is a remote directory. Lookup and List each make round trips to the
// server; they block only as long as the server takes to answer.
type rdir struct{ *rnode }

func (d rdir) Lookup(name string) (fs.Node, error) {
	n, err := d.r.node(d.rnode, name)
	if err != nil {
		return nil, err
	}
	return d.r.wrap(n), nil
}

// List is ListErr without its error.
func (d rdir) List() []fs.Node {
	out, _ := d.ListErr()
	return out
}

// ListErr reads the directory through a fresh fid; entries that vanish
// between the listing and their walk are left out. A listing the server
// did not give (the connection lost, a refusal) is an error, not an empty
// directory (fs.ErrLister).
func (d rdir) ListErr() ([]fs.Node, error) {
	ctx := context.Background()
	df, err := d.hold(ctx)
	if err != nil {
		return nil, err
	}
	f, err := df.walk(ctx)
	d.unhold()
	if err != nil {
		return nil, err
	}
	defer f.clunk()
	if err := f.open(ctx, syscall.O_RDONLY); err != nil {
		return nil, err
	}
	ents, err := f.readdir(ctx)
	if err != nil {
		return nil, err
	}
	var out []fs.Node
	for _, e := range ents {
		if e.name == "." || e.name == ".." {
			continue
		}
		n, err := d.r.node(d.rnode, e.name)
		if err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue // gone since the listing
			}
			return nil, err // not an empty directory
		}
		out = append(out, d.r.wrap(n))
	}
	return out, nil
}

// rfile is a remote file.
type rfile struct{ *rnode }

// Open opens a new fid on the file. It blocks as long as the remote open
// does (listen); ctx's cancellation flushes it. The open is made as the
// Remote's user, or with PerUser as req.Uid.
func (f rfile) Open(ctx context.Context, req fs.OpenReq) (fs.Handle, error) {
	s, err := f.r.session(ctx, req.Uid)
	if err != nil {
		return nil, err
	}
	var nf *cfid
	if s == f.r.main {
		var of *cfid
		if of, err = f.hold(ctx); err == nil {
			nf, err = of.walk(ctx)
			f.unhold()
		}
	} else {
		nf, err = s.root.walk(ctx, strings.Split(f.path, "/")...)
	}
	if err != nil {
		return nil, convErr(err)
	}
	if err := nf.open(ctx, req.Flags); err != nil {
		nf.clunk()
		return nil, convErr(err)
	}
	if f.path == "cs" && req.Root != "" {
		return &csHandle{rhandle: rhandle{f: nf}, root: strings.TrimSuffix(req.Root, "/")}, nil
	}
	h := &rhandle{f: nf}
	f.r.track(h, s, f.path)
	return h, nil
}

// csHandle is an imported cs: the server answers paths under /net (a
// sockfs over 9P, or Plan 9's cs); each reply line's leading /net becomes
// the tree's root as the client sees it (the import's mount point).
type csHandle struct {
	rhandle
	root string
}

func (h *csHandle) Read(ctx context.Context, p []byte, off int64) (int, error) {
	buf := make([]byte, max(len(p), 256))
	n, err := h.rhandle.Read(ctx, buf, off)
	if err != nil {
		return 0, err
	}
	line := buf[:n]
	if rest, ok := bytes.CutPrefix(line, []byte("/net/")); ok {
		line = append([]byte(h.root+"/"), rest...)
	}
	return copy(p, line), nil
}

// rhandle is an open remote file.
type rhandle struct {
	f *cfid
	l *rlinger // a TCP conversation's file (remote_linger.go), or nil
}

// Read sends one Tread (at most msize's worth); 0 bytes is EOF.
func (h *rhandle) Read(ctx context.Context, p []byte, off int64) (int, error) {
	n, err := h.f.read(ctx, p, off)
	if h.l != nil && err == nil {
		h.l.read(p[:n], off)
	}
	return n, convErr(err)
}

// Write sends p in one Twrite if it fits in a message (one ctl command,
// one datagram), else in message-sized pieces.
func (h *rhandle) Write(ctx context.Context, p []byte, off int64) (int, error) {
	cmd := p
	total := 0
	for len(p) > 0 {
		piece := p[:min(len(p), h.f.c.maxIO())]
		n, err := h.f.write(ctx, piece, off)
		total += n
		if err != nil {
			return total, convErr(err)
		}
		if n < len(piece) {
			break
		}
		p, off = p[n:], off+int64(n)
	}
	if h.l != nil && total == len(cmd) {
		h.l.wrote(ctx, h.f, cmd)
	}
	return total, nil
}

// Poll cannot ask the server (9P has no poll): a remote file is always
// ready, as on Linux v9fs, and a read or write blocks instead.
func (h *rhandle) Poll(ev fs.Event, _ func()) fs.Event { return ev & (fs.PollIn | fs.PollOut) }

// Release clunks the fid (one round trip: the server's last close of a
// conversation starts its graceful close before Release returns).
func (h *rhandle) Release() {
	if h.l != nil {
		h.l.release()
	}
	h.f.clunk()
}
