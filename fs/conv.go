package fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sockfs/memctl"
	"sockfs/skb"
)

// Conv is one conversation of a protocol directory: a socket as the file
// tree sees it. UDP and TCP implement it; another protocol plugs in by
// implementing Conv and Proto.
//
// Blocking methods take the request context: cancellation returns EINTR
// and consumes nothing; a context marked WithNonblock makes them return
// EAGAIN instead of blocking. Every error is a syscall.Errno.
type Conv interface {
	// Connect sets the remote address (laddr, if valid, binds first).
	// TCP blocks until established or failed.
	Connect(ctx context.Context, raddr, laddr netip.AddrPort) error
	// Announce binds laddr (port 0: pick one) and, for TCP, listens.
	Announce(ctx context.Context, laddr netip.AddrPort) error
	// Bind only binds laddr.
	Bind(laddr netip.AddrPort) error
	// Accept waits for an incoming call on an announced conversation and
	// returns it (the listen file). EINVAL if not announced.
	Accept(ctx context.Context) (Conv, error)
	// Read reads from the data queue: a datagram, or the bytes queued;
	// 0 at EOF.
	Read(ctx context.Context, p []byte) (int, error)
	// Write sends p (one datagram, or a stream write that returns once
	// everything is queued).
	Write(ctx context.Context, p []byte) (int, error)
	// Readiness reports poll's view of the data file.
	Readiness() Event
	// WaitQueue is the socket's wait queue; every readiness change wakes it.
	WaitQueue() *memctl.WaitQueue
	// Local and Remote return the addresses (the zero AddrPort if unset).
	Local() netip.AddrPort
	Remote() netip.AddrPort
	// Status is the status file's line; its first word is the state.
	Status() string
	// Mem is the socket's memory accounting.
	Mem() *memctl.Sock
	// Ctl runs a protocol-specific ctl command (fields[0] is the verb). It
	// returns errUnknownCtl for a verb it does not know.
	Ctl(ctx context.Context, fields []string) error
	// Hangup tears the conversation down at once (TCP: RST).
	Hangup() error
	// Close closes gracefully while the files stay open (TCP: FIN).
	Close() error
	// Release is the last close of the conversation's files: a graceful
	// close. It does not block.
	Release()
	// Free reports whether a released conversation's slot may be reused
	// (TCP: its state is Closed).
	Free() bool
}

// Proto is a protocol of the tree: a directory tcp/ or udp/.
type Proto interface {
	Name() string
	// New returns a fresh, unbound conversation.
	New() Conv
	// Stats is the text of the protocol's stats file.
	Stats() string
}

// errUnknownCtl is what Conv.Ctl returns for a verb it does not know.
var errUnknownCtl = fmt.Errorf("unknown control request: %w", syscall.EINVAL)

// Types of the protocol directory files (proto 3/4).
const (
	qProtoDir = 1 + iota
	qClone
	qStats
	qConvDir
	qCtl
	qData
	qErr
	qListen
	qLocal
	qRemote
	qStatus
	qMem
	qRcvbuf
	qSndbuf
)

var convFileNames = []struct {
	typ  int
	name string
	mode fs.FileMode
}{
	{qCtl, "ctl", 0660}, {qData, "data", 0660}, {qErr, "err", 0660}, {qListen, "listen", 0660},
	{qLocal, "local", 0444}, {qRemote, "remote", 0444}, {qStatus, "status", 0444},
	{qMem, "mem", 0444}, {qRcvbuf, "rcvbuf", 0660}, {qSndbuf, "sndbuf", 0660},
}

// protoDir is tcp/ or udp/: clone, stats and the conversation slots.
type protoDir struct {
	*dirNode
	t     *Tree
	proto int
	p     Proto
	clone *cloneFile
	stats *textFile

	mu    sync.Mutex // guards slots and every slot's fields
	slots []*slot

	nextrport atomic.Uint32 // the next restricted port's offset from rportLo (connectRestricted)
}

func newProtoDir(t *Tree, proto int, p Proto) *protoDir {
	pd := &protoDir{t: t, proto: proto, p: p}
	pd.clone = &cloneFile{pd: pd}
	pd.stats = newText(qpath(proto, 0, qStats), "stats", 0444, p.Stats, nil)
	pd.dirNode = newDir(qpath(proto, 0, qProtoDir), p.Name(), pd.list)
	pd.dirNode.lookup = pd.lookup
	return pd
}

func (pd *protoDir) list() []Node {
	pd.mu.Lock()
	out := make([]Node, 0, len(pd.slots)+2)
	for _, s := range pd.slots {
		out = append(out, s.dir)
	}
	pd.mu.Unlock()
	return append(out, pd.clone, pd.stats)
}

func (pd *protoDir) lookup(name string) (Node, error) {
	switch name {
	case "clone":
		return pd.clone, nil
	case "stats":
		return pd.stats, nil
	}
	n, err := strconv.Atoi(name)
	if err != nil || strconv.Itoa(n) != name {
		return nil, syscall.ENOENT
	}
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if n < 0 || n >= len(pd.slots) {
		return nil, syscall.ENOENT
	}
	return pd.slots[n].dir, nil
}

// used returns the conversations users hold open, for sockstat's
// "sockets: used".
func (pd *protoDir) used() (used int) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	for _, s := range pd.slots {
		if s.inuse > 0 {
			used++
		}
	}
	return used
}

// counts6 is counts' inuse for the conversations bound to an IPv6
// address (sockstat6's TCP6 and UDP6 inuse).
func (pd *protoDir) counts6() (inuse int) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	for _, s := range pd.slots {
		if s.inuse > 0 {
			if l := s.conv.Local(); l.Port() != 0 && l.Addr().Is6() {
				inuse++
			}
		}
	}
	return inuse
}

// slot is one numbered conversation directory. Its fields are guarded by
// the protoDir's mutex.
type slot struct {
	pd    *protoDir
	n     int
	dir   convDir
	conv  Conv        // current (or last) conversation; nil before first use
	inuse int         // open ctl, data and err handles, plus waiting listens
	owner uint32      // uid of the opener that allocated it (or the last wstat's)
	perm  fs.FileMode // ctl, data, err and listen's permissions: 0660, or the last wstat's
	gen   uint32      // bumped at each reuse (qid version)
	err   string      // last error text
}

func (pd *protoDir) newSlot(n int) *slot {
	s := &slot{pd: pd, n: n, perm: convPerm}
	var files []Node
	for _, f := range convFileNames {
		files = append(files, &convFile{s: s, typ: f.typ, name: f.name, mode: f.mode})
	}
	s.dir = convDir{newDir(qpath(pd.proto, n, qConvDir), strconv.Itoa(n), staticList(files...)), s}
	return s
}

// convDir is a conversation's directory, owned by the conversation's
// owner as Plan 9's ipgen gives it cv->owner.
type convDir struct {
	*dirNode
	s *slot
}

func (d convDir) Stat() Stat {
	st := d.dirNode.Stat()
	d.s.pd.mu.Lock()
	st.Uid, st.Gid = d.s.owner, d.s.owner
	d.s.pd.mu.Unlock()
	return st
}

// free reports whether the slot may be (re)allocated. Caller holds pd.mu.
func (s *slot) free() bool { return s.inuse == 0 && (s.conv == nil || s.conv.Free()) }

// reset starts a new conversation in s. Caller holds pd.mu.
func (s *slot) reset(c Conv, uid uint32) {
	if c == nil {
		c = s.pd.p.New()
	}
	s.conv, s.inuse, s.owner, s.err, s.perm = c, 1, uid, "", convPerm
	s.gen++
}

// alloc takes the lowest free slot for c (nil: a fresh conversation), owned
// by uid, with one reference. Mirrors Fsprotoclone.
func (pd *protoDir) alloc(c Conv, uid uint32) (*slot, error) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	for _, s := range pd.slots {
		if s.free() {
			s.reset(c, uid)
			return s, nil
		}
	}
	if len(pd.slots) >= maxConv {
		return nil, fmt.Errorf("no free devices: %w", syscall.EBUSY)
	}
	s := pd.newSlot(len(pd.slots))
	pd.slots = append(pd.slots, s)
	s.reset(c, uid)
	return s, nil
}

// ref is one reference on a slot's conversation, dropped by release.
type ref struct {
	s    *slot
	conv Conv
	done atomic.Bool
}

func (s *slot) newRef() *ref { return &ref{s: s, conv: s.conv} }

// release drops the reference; the last one releases the conversation.
func (r *ref) release() {
	if r.drop() {
		r.conv.Release()
	}
}

// drop drops the reference and reports whether it was the last.
func (r *ref) drop() bool {
	if r.done.Swap(true) {
		return false
	}
	pd := r.s.pd
	pd.mu.Lock()
	r.s.inuse--
	last := r.s.inuse == 0
	if last {
		r.s.owner, r.s.perm = 0, convPerm // closeconv
	}
	pd.mu.Unlock()
	return last
}

// lingerConv is a conversation whose last close may linger (TCP's
// SO_LINGER with a positive time).
type lingerConv interface {
	// lingerTime is the linger time, and whether closes linger.
	lingerTime() (time.Duration, bool)
	// releaseLinger is Release lingering (Lingerer.ReleaseWait).
	releaseLinger(ctx context.Context)
	// flushLinger waits for the data written to be acknowledged
	// (Lingerer.Flush).
	flushLinger(ctx context.Context)
}

// lingerSet reports whether the conversation lingers on its last close
// (Lingerer.LingerSet).
func (r *ref) lingerSet() bool {
	l, ok := r.conv.(lingerConv)
	if !ok {
		return false
	}
	_, on := l.lingerTime()
	return on
}

// lingers reports whether r is the conversation's only reference and the
// conversation lingers on its last close (Lingerer.Lingers).
func (r *ref) lingers() bool {
	if !r.lingerSet() {
		return false
	}
	pd := r.s.pd
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return !r.done.Load() && r.s.inuse == 1
}

// releaseWait is release with the conversation's last close lingering
// (Lingerer.ReleaseWait).
func (r *ref) releaseWait(ctx context.Context) {
	if !r.drop() {
		return
	}
	if l, ok := r.conv.(lingerConv); ok {
		l.releaseLinger(ctx)
		return
	}
	r.conv.Release()
}

// flush is Lingerer.Flush.
func (r *ref) flush(ctx context.Context) {
	if r.lingers() {
		r.conv.(lingerConv).flushLinger(ctx)
	}
}

// setErr records the last error of the conversation and logs it.
func (s *slot) setErr(conv Conv, err error, what string) {
	text := ErrText(err)
	s.pd.mu.Lock()
	if s.conv == conv {
		s.err = text
	}
	s.pd.mu.Unlock()
	s.pd.t.log.Info("conversation error", "conv", fmt.Sprintf("%s/%d", s.pd.p.Name(), s.n), "op", what, "err", text)
}

// cloneFile is proto/clone: open allocates a conversation and returns its
// ctl.
type cloneFile struct{ pd *protoDir }

func (f *cloneFile) Qid() Qid { return Qid{Path: qpath(f.pd.proto, 0, qClone)} }
func (f *cloneFile) Stat() Stat {
	return Stat{Name: "clone", Mode: 0666, Stream: true}
}

func (f *cloneFile) Open(ctx context.Context, req OpenReq) (Handle, error) {
	s, err := f.pd.alloc(nil, req.Uid)
	if err != nil {
		return nil, err
	}
	return &ctlHandle{r: s.newRef()}, nil
}

// convFile is one file of a conversation directory.
type convFile struct {
	s    *slot
	typ  int
	name string
	mode fs.FileMode
}

func (f *convFile) Qid() Qid {
	f.s.pd.mu.Lock()
	defer f.s.pd.mu.Unlock()
	return Qid{Path: qpath(f.s.pd.proto, f.s.n, f.typ), Version: f.s.gen}
}

func (f *convFile) Stat() Stat {
	f.s.pd.mu.Lock()
	st := Stat{Name: f.name, Mode: f.mode, Uid: f.s.owner, Gid: f.s.owner,
		Stream: f.typ == qData || f.typ == qListen || f.typ == qCtl}
	if f.permed() {
		st.Mode = f.s.perm
	}
	c := f.s.conv
	f.s.pd.mu.Unlock()
	if q, ok := c.(queuedConv); ok && f.typ == qData {
		st.Length = int64(q.Queued()) // outside pd.mu: it takes the socket's lock
	}
	return st
}

// convPerm is a conversation's permissions when it starts (Plan 9's
// Fsprotoclone and closeconv set cv->perm to 0660).
const convPerm fs.FileMode = 0660

// permed reports whether the file's permissions are the conversation's
// (cv->perm in Plan 9's ip3gen: ctl, data, err, listen).
func (f *convFile) permed() bool {
	return f.typ == qCtl || f.typ == qData || f.typ == qErr || f.typ == qListen
}

// mayOpen reports whether uid may open a file of s for the access of
// open(2)'s flags: root and the owner may, others as the permission's
// "other" bits allow (0660 allows none; a wstat may open it up). Caller
// holds pd.mu.
func (s *slot) mayOpen(uid uint32, flags int) bool {
	if uid == 0 || uid == s.owner {
		return true
	}
	var need fs.FileMode
	switch flags & syscall.O_ACCMODE {
	case syscall.O_RDONLY:
		need = 0o4
	case syscall.O_WRONLY:
		need = 0o2
	default:
		need = 0o6
	}
	return s.perm&need == need
}

// Wstat changes the conversation's owner and permissions, as Plan 9's
// ipwstat does: only through ctl or data, only by the owner or root
// (EPERM otherwise); nil leaves a field as it is. The new owner and mode
// apply to ctl, data, err and listen until the conversation is reused.
func (f *convFile) Wstat(uid uint32, owner *uint32, mode *fs.FileMode) error {
	if f.typ != qCtl && f.typ != qData {
		return fmt.Errorf("permission denied: %w", syscall.EPERM)
	}
	pd := f.s.pd
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if f.s.inuse == 0 || uid != 0 && uid != f.s.owner {
		return fmt.Errorf("permission denied: %w", syscall.EPERM)
	}
	if owner != nil {
		f.s.owner = *owner
	}
	if mode != nil {
		f.s.perm = *mode & 0o777
	}
	return nil
}

// queuedConv is a conversation that can say how many bytes its data file
// would give to reads now (Plan 9's qlen(cv->rq), data's stat length).
type queuedConv interface{ Queued() int }

// takeRef checks the caller's permission and takes a reference; opening a
// file of an unused slot starts a new conversation there, as Plan 9 does.
func (f *convFile) takeRef(uid uint32, flags int) (*ref, error) {
	pd := f.s.pd
	pd.mu.Lock()
	defer pd.mu.Unlock()
	s := f.s
	if s.inuse == 0 {
		if !s.free() {
			return nil, fmt.Errorf("conversation closing: %w", syscall.EBUSY)
		}
		s.reset(nil, uid)
		return s.newRef(), nil
	}
	if !s.mayOpen(uid, flags) {
		return nil, syscall.EACCES
	}
	s.inuse++
	return s.newRef(), nil
}

func (f *convFile) Open(ctx context.Context, req OpenReq) (Handle, error) {
	switch f.typ {
	case qCtl, qData, qErr:
		r, err := f.takeRef(req.Uid, req.Flags)
		if err != nil {
			return nil, err
		}
		switch f.typ {
		case qCtl:
			return &ctlHandle{r: r}, nil
		case qData:
			return &dataHandle{r: r}, nil
		}
		return &errHandle{r: r}, nil
	case qListen:
		return f.openListen(ctx, req)
	case qRcvbuf, qSndbuf:
		f.s.pd.mu.Lock()
		owner, conv := f.s.owner, f.s.conv
		f.s.pd.mu.Unlock()
		if req.Writable() && req.Uid != 0 && req.Uid != owner {
			return nil, syscall.EACCES
		}
		return &bufHandle{conv: conv, snd: f.typ == qSndbuf, s: f.s}, nil
	}
	if req.Writable() {
		return nil, syscall.EACCES
	}
	return &infoHandle{f: f}, nil
}

// openListen waits for a call on the announced conversation and returns the
// new conversation's ctl. The waiting open holds a reference.
func (f *convFile) openListen(ctx context.Context, req OpenReq) (Handle, error) {
	pd := f.s.pd
	pd.mu.Lock()
	if f.s.inuse == 0 {
		pd.mu.Unlock()
		return nil, fmt.Errorf("not announced: %w", syscall.EINVAL)
	}
	if !f.s.mayOpen(req.Uid, req.Flags) {
		pd.mu.Unlock()
		return nil, syscall.EACCES
	}
	f.s.inuse++
	owner := f.s.owner
	r := f.s.newRef()
	pd.mu.Unlock()
	defer r.release()
	c, err := r.conv.Accept(ctx)
	if err != nil {
		if Errno(err) != syscall.EINTR && Errno(err) != syscall.EAGAIN {
			f.s.setErr(r.conv, err, "listen")
		}
		return nil, err
	}
	ns, err := pd.alloc(c, owner)
	if err != nil {
		c.Hangup()
		c.Release()
		return nil, err
	}
	return &ctlHandle{r: ns.newRef()}, nil
}

// ctlHandle is an open ctl (also what clone and listen return).
type ctlHandle struct {
	baseHandle
	r *ref
}

// OpenedAs is the conversation's directory and its ctl (fs.Redirected).
func (h *ctlHandle) OpenedAs() (Dir, Node) {
	d := h.r.s.dir
	ctl, _ := d.Lookup("ctl")
	return d, ctl
}

func (h *ctlHandle) Read(_ context.Context, p []byte, off int64) (int, error) {
	return readAt(strconv.Itoa(h.r.s.n), p, off), nil
}

func (h *ctlHandle) Write(ctx context.Context, p []byte, _ int64) (int, error) {
	if err := ctlWrite(ctx, h.r, string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *ctlHandle) Release() { h.r.release() }

// Lingerer: the conversation's last close may linger (`linger S`).
func (h *ctlHandle) LingerSet() bool                 { return h.r.lingerSet() }
func (h *ctlHandle) Lingers() bool                   { return h.r.lingers() }
func (h *ctlHandle) ReleaseWait(ctx context.Context) { h.r.releaseWait(ctx) }
func (h *ctlHandle) Flush(ctx context.Context)       { h.r.flush(ctx) }

// dataHandle is an open data file.
type dataHandle struct {
	r    *ref
	mu   sync.Mutex
	hook *memctl.PollHook
	wake atomic.Pointer[func()]
}

func (h *dataHandle) Read(ctx context.Context, p []byte, _ int64) (int, error) {
	n, err := h.r.conv.Read(ctx, p)
	if err != nil && !transient(err) {
		h.r.s.setErr(h.r.conv, err, "read")
	}
	return n, err
}

func (h *dataHandle) Write(ctx context.Context, p []byte, _ int64) (int, error) {
	n, err := h.r.conv.Write(ctx, p)
	if err != nil && !transient(err) {
		h.r.s.setErr(h.r.conv, err, "write")
	}
	return n, err
}

// Splices: a TCP conversation's received data goes from its socket's
// queue to the frontend's descriptor without a copy of the frontend's
// (Splicer).
func (h *dataHandle) Splices() bool {
	_, ok := h.r.conv.(*tcpConv)
	return ok
}

func (h *dataHandle) ReadTo(ctx context.Context, limit int, iov [][]byte, a RecvActor) (int, error) {
	n, err := h.r.conv.(*tcpConv).ReadTo(ctx, limit, iov, a)
	if err != nil && n == 0 && !transient(err) {
		h.r.s.setErr(h.r.conv, err, "read")
	}
	return n, err
}

func (h *dataHandle) WritePages(ctx context.Context, pages []*skb.Page, off, n int) (int, error) {
	n, err := h.r.conv.(*tcpConv).WritePages(ctx, pages, off, n)
	if err != nil && !transient(err) {
		h.r.s.setErr(h.r.conv, err, "write")
	}
	return n, err
}

// Tryable: a TCP conversation's data keeps Trier's contract (Recv copies
// what is queued before it would wait, and Send queues what fits; both
// return EINTR from the wait, tcp_recvmsg's and tcp_sendmsg's
// signal_pending exit). UDP's is not offered: a datagram write that
// would wait for sndbuf may have resolved a route or bound a port first.
func (h *dataHandle) Tryable() bool {
	_, ok := h.r.conv.(*tcpConv)
	return ok
}

func (h *dataHandle) Poll(events Event, wake func()) Event {
	if wake != nil {
		h.wake.Store(&wake)
		h.mu.Lock()
		if h.hook == nil && !h.r.done.Load() {
			h.hook = h.r.conv.WaitQueue().AddPoll(func() {
				if w := h.wake.Load(); w != nil {
					(*w)()
				}
			})
		}
		h.mu.Unlock()
	}
	return h.r.conv.Readiness() & (events | PollErr | PollHup)
}

func (h *dataHandle) Release() {
	h.unhook()
	h.r.release()
}

// unhook ends the handle's poll subscription.
func (h *dataHandle) unhook() {
	h.mu.Lock()
	if h.hook != nil {
		h.r.conv.WaitQueue().RemovePoll(h.hook)
		h.hook = nil
	}
	h.mu.Unlock()
}

// Lingerer: the conversation's last close may linger (`linger S`).
func (h *dataHandle) LingerSet() bool { return h.r.lingerSet() }
func (h *dataHandle) Lingers() bool   { return h.r.lingers() }
func (h *dataHandle) ReleaseWait(ctx context.Context) {
	h.unhook()
	h.r.releaseWait(ctx)
}
func (h *dataHandle) Flush(ctx context.Context) { h.r.flush(ctx) }

// transient reports errors that say nothing about the conversation.
func transient(err error) bool {
	e := Errno(err)
	return e == syscall.EINTR || e == syscall.EAGAIN
}

// errHandle reads the last error text (a line, or empty), without blocking.
type errHandle struct {
	baseHandle
	r *ref
}

func (h *errHandle) Read(_ context.Context, p []byte, off int64) (int, error) {
	h.r.s.pd.mu.Lock()
	text := h.r.s.err
	h.r.s.pd.mu.Unlock()
	if text != "" {
		text += "\n"
	}
	return readAt(text, p, off), nil
}

func (h *errHandle) Release() { h.r.release() }

// Lingerer: the conversation's last close may linger (`linger S`).
func (h *errHandle) LingerSet() bool                 { return h.r.lingerSet() }
func (h *errHandle) Lingers() bool                   { return h.r.lingers() }
func (h *errHandle) ReleaseWait(ctx context.Context) { h.r.releaseWait(ctx) }
func (h *errHandle) Flush(ctx context.Context)       { h.r.flush(ctx) }

// infoHandle reads local, remote, status or mem of the slot's current
// conversation; it takes no reference.
type infoHandle struct {
	baseHandle
	f    *convFile
	mu   sync.Mutex
	text string
}

func (h *infoHandle) Read(_ context.Context, p []byte, off int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off == 0 || h.text == "" {
		h.text = h.f.info()
	}
	return readAt(h.text, p, off), nil
}

func (f *convFile) info() string {
	f.s.pd.mu.Lock()
	c := f.s.conv
	f.s.pd.mu.Unlock()
	switch f.typ {
	case qLocal, qRemote:
		if c == nil {
			return "::!0\n"
		}
		if f.typ == qLocal {
			return fmtAddr(c.Local())
		}
		return fmtAddr(c.Remote())
	case qStatus:
		if c == nil {
			return "Closed\n"
		}
		return c.Status()
	case qMem:
		if c == nil {
			return "skmem:(r0,rb0,t0,tb0,f0,w0,o0,bl0,d0)\n"
		}
		return FormatSkmem(c.Mem())
	}
	return ""
}

// FormatSkmem formats a socket's memory as ss -m does, with a newline:
// skmem:(r<rmem_alloc>,rb<rcvbuf>,t<wmem_alloc>,tb<sndbuf>,f<forward_alloc>,
// w<wmem_queued>,o<optmem>,bl<backlog>,d<drops>). optmem is always 0: the
// stack keeps no socket options memory.
func FormatSkmem(m *memctl.Sock) string {
	return fmt.Sprintf("skmem:(r%d,rb%d,t%d,tb%d,f%d,w%d,o%d,bl%d,d%d)\n",
		m.RmemAlloc(), m.Rcvbuf(), m.WmemAllocGet(), m.Sndbuf(), m.ForwardAlloc(),
		m.WmemQueued(), 0, m.BacklogLen(), m.Drops())
}

// fmtAddr formats addr!port as Plan 9 (eipfmt): IPv4 dotted (0.0.0.0 for
// an IPv4-only wildcard, which Plan 9 keeps v4-mapped), unset or the
// dual-stack wildcard "::".
func fmtAddr(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	if !a.IsValid() || a == netip.IPv6Unspecified() {
		return fmt.Sprintf("::!%d\n", ap.Port())
	}
	return fmt.Sprintf("%s!%d\n", a, ap.Port())
}

// bufHandle is rcvbuf or sndbuf: read the effective value, write N with
// setsockopt's rules (doubled, capped by rmem_max/wmem_max, locks autotuning).
type bufHandle struct {
	baseHandle
	conv Conv
	snd  bool
	s    *slot
}

func (h *bufHandle) Read(_ context.Context, p []byte, off int64) (int, error) {
	v := h.conv.Mem().Rcvbuf()
	if h.snd {
		v = h.conv.Mem().Sndbuf()
	}
	return readAt(strconv.Itoa(v)+"\n", p, off), nil
}

func (h *bufHandle) Write(_ context.Context, p []byte, _ int64) (int, error) {
	name := "rcvbuf"
	if h.snd {
		name = "sndbuf"
	}
	if err := setBuf(h.conv, name, trimCmd(string(p))); err != nil {
		h.s.setErr(h.conv, err, name)
		return 0, err
	}
	return len(p), nil
}

// setBuf applies SO_RCVBUF / SO_SNDBUF from text, a decimal int as
// setsockopt takes one. A negative value is not an error: sk_setsockopt
// compares the int as unsigned with rmem_max / wmem_max, so -1 is the
// maximum (doubled: 8388608 with max 4194304). What does not fit an int
// (-2147483648..2147483647) cannot reach setsockopt at all: EINVAL.
func setBuf(c Conv, name, text string) error {
	v, err := strconv.ParseInt(text, 10, 32)
	if err != nil {
		why := "not a decimal integer"
		if errors.Is(err, strconv.ErrRange) {
			why = "out of the range of an int"
		}
		return fmt.Errorf("bad %s value %q (%s): %w", name, text, why, syscall.EINVAL)
	}
	if name == "sndbuf" {
		return c.Mem().SetSockoptSndbuf(int32(v), false, false)
	}
	return c.Mem().SetSockoptRcvbuf(int32(v), false, false)
}
