// Package fs is sockfs's file tree: the Plan 9 style /net of
// shared/design/NET-FILES.md, defined once and independent of the transport
// that serves it. A FUSE frontend (package sockfs/fs/fuse) and a 9P
// frontend serve the same Nodes.
//
// The model is small on purpose:
//
//   - a Node has a Qid (stable path, Plan 9 style: proto<<17 | conv<<5 | type)
//     and a Stat (name, mode, owner, flags for the transport);
//   - a Dir looks names up and lists its entries (listings are dynamic);
//   - a File is opened with Open(ctx, OpenReq) and gives a Handle;
//   - a Handle reads and writes at an offset, reports poll readiness with a
//     wake-up callback, and is released once, when the last reference to the
//     open file goes away (FUSE RELEASE, 9P clunk).
//
// Every error returned through these interfaces is a syscall.Errno (possibly
// wrapped; frontends use errors.As). Blocking calls take the request's
// context: its cancellation (FUSE INTERRUPT, 9P Tflush) ends them with EINTR
// and consumes nothing. A non-blocking call is marked on the context with
// WithNonblock.
package fs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"sockfs/netstack"
	"sockfs/skb"
)

// Qid types, as in Plan 9.
const (
	QTDir  = 0x80
	QTFile = 0x00
)

// Qid identifies a node for the life of the tree, as a Plan 9 qid: Path is
// unique and stable (a reused conversation slot keeps its paths; Version
// counts the reuses), Type is QTDir or QTFile. FUSE uses Path+1 as the inode
// number.
type Qid struct {
	Path    uint64
	Version uint32
	Type    uint8
}

// Stat describes a node.
type Stat struct {
	Name string
	Mode fs.FileMode // permission bits, plus fs.ModeDir for directories
	Uid  uint32
	Gid  uint32
	// Length is the file's length as stat reports it: 0 but for a
	// conversation's data, whose length is the bytes queued for reading
	// (Plan 9's ip3gen gives qlen of the read queue).
	Length int64
	// Stream marks files without positions that may be read and written
	// concurrently through one open file (data, listen, ctl, clone): FUSE
	// opens them with FOPEN_STREAM|FOPEN_NONSEEKABLE and keeps the read
	// cursor itself, passing it as the offset.
	Stream bool
}

// Node is a file or a directory of the tree.
type Node interface {
	Qid() Qid
	Stat() Stat
}

// Dir is a directory node. Its methods do not block.
type Dir interface {
	Node
	// Lookup returns the entry called name, or ENOENT.
	Lookup(name string) (Node, error)
	// List returns the current entries, in listing order.
	List() []Node
}

// ErrLister is a Dir whose listing can fail (a remote one whose server
// went away): the frontends list it with ListErr and answer its error,
// where an empty list would look like an empty directory.
type ErrLister interface {
	ListErr() ([]Node, error)
}

// ListDir lists d, with its error if it has one (ErrLister).
func ListDir(d Dir) ([]Node, error) {
	if l, ok := d.(ErrLister); ok {
		return l.ListErr()
	}
	return d.List(), nil
}

// OpenReq describes an open: the access mode and flags of open(2) (O_RDONLY,
// O_WRONLY, O_RDWR, O_NONBLOCK; O_TRUNC is ignored) and the caller's identity.
type OpenReq struct {
	Flags int
	Uid   uint32
	Gid   uint32
	// Root is where the client sees the tree's root (a FUSE mount point),
	// for the files that answer with paths (cs); empty means /net, where
	// Plan 9 clients bind a 9P tree.
	Root string
}

// Readable reports whether the open asks for reading.
func (o OpenReq) Readable() bool { return o.Flags&syscall.O_ACCMODE != syscall.O_WRONLY }

// Writable reports whether the open asks for writing.
func (o OpenReq) Writable() bool { return o.Flags&syscall.O_ACCMODE != syscall.O_RDONLY }

// File is a file node.
type File interface {
	Node
	// Open opens the file. It may block (listen waits for a call); ctx
	// cancels it with EINTR. clone and listen return a handle on another
	// conversation's ctl.
	Open(ctx context.Context, req OpenReq) (Handle, error)
}

// Wstatter is a node whose owner and permissions can be changed (Plan 9's
// wstat, chmod and chown on a FUSE mount). uid is the caller's; a nil
// owner or mode leaves that field as it is. Nodes that are not Wstatters
// refuse any change with EPERM.
type Wstatter interface {
	Wstat(uid uint32, owner *uint32, mode *fs.FileMode) error
}

// Redirected is a Handle open on another file than the one opened: clone
// and listen give a conversation's ctl, and Plan 9's ipopen re-points the
// channel's qid there, so that a 9P server answers Ropen with ctl's qid
// and the fid then stands for ctl (stat, walks of "..").
type Redirected interface {
	// OpenedAs returns the conversation directory and the ctl file.
	OpenedAs() (Dir, Node)
}

// Event is a poll(2) readiness mask.
type Event uint32

// Readiness bits, with poll(2)'s values.
const (
	PollIn    Event = 0x001
	PollOut   Event = 0x004
	PollErr   Event = 0x008
	PollHup   Event = 0x010
	PollRdHup Event = 0x2000 // POLLRDHUP: the peer closed its sending side (asked for, like In and Out)
)

// Handle is an open file. Read and Write may be called concurrently with each
// other (and with Poll); Release is called once, after every other call has
// returned.
type Handle interface {
	// Read reads into p at offset off (ignored by stream files). It may
	// block; ctx cancels it with EINTR and nothing is consumed.
	Read(ctx context.Context, p []byte, off int64) (int, error)
	// Write writes p at offset off (ignored by most files). It may block;
	// ctx cancels it with EINTR.
	Write(ctx context.Context, p []byte, off int64) (int, error)
	// Poll returns the current readiness among events. If wake is not nil,
	// it also arranges for wake to be called (from any goroutine, without
	// blocking) whenever the readiness may have changed, replacing the
	// wake function given by an earlier Poll on this handle, until Release.
	Poll(events Event, wake func()) Event
	// Release drops the handle's references (the last close of a
	// conversation starts its graceful close). It does not block.
	Release()
}

// Trier is implemented by handles whose Read and Write may be tried
// without blocking by calling them with a context that is already
// cancelled: then a Read returns what is queued (or EOF), a Write queues
// what fits and returns its count, and either returns EINTR having moved
// nothing only where it would have waited. A frontend may so run a call on
// the goroutine that received it, and hand it to one that may block only
// when it would (fs/p9 does, for Tread and Twrite). Tryable reports
// whether this handle keeps that contract; a call with side effects
// beyond moving data (a ctl write) must not.
type Trier interface {
	Tryable() bool
}

// Lingerer is implemented by handles whose last close may wait, as
// close(2) waits on a socket with SO_LINGER on and a positive time (the
// files of a TCP conversation after `linger S`, S > 0).
type Lingerer interface {
	// LingerSet reports whether the conversation's last close lingers
	// (`linger S`, S > 0), whatever else of it is open.
	LingerSet() bool
	// Lingers reports whether releasing the handle now would wait: it
	// holds its conversation's only reference and the linger is on.
	Lingers() bool
	// ReleaseWait is Release as that close(2) does it (tcp_close): it
	// returns once the peer has acknowledged the data and the FIN, the
	// linger time has passed or ctx is done. A frontend whose close is a
	// request the client waits for (9P's clunk) calls it instead of
	// Release.
	ReleaseWait(ctx context.Context)
	// Flush is for a frontend told of each close(2) before it knows
	// whether it is the last (FUSE's FLUSH, answered before close
	// returns; the RELEASE after the last is not waited for): if Lingers,
	// it waits until the data written has been acknowledged, for at most
	// the linger time and until ctx is done, and closes nothing.
	Flush(ctx context.Context)
}

// Splicer is implemented by handles that can hand their received data
// from the socket's queue to a frontend's descriptor, and take data to
// send in the frontend's pages, without a buffer of the frontend's in
// between (a TCP conversation's data). Splices reports
// whether this handle can; if not, the other methods must not be called.
type Splicer interface {
	Splices() bool
	// ReadTo is Read with the data handed to a as slices of the receive
	// queue (netstack.TCPSock.RecvTo): a writes them (a FUSE READ
	// reply's writev) and says how many bytes it took; only those are consumed.
	// limit bounds the bytes, cap(iov) the slices.
	ReadTo(ctx context.Context, limit int, iov [][]byte, a RecvActor) (int, error)
	// WritePages is Write with the data in pages, n bytes from byte
	// off of their run (page i holds bytes i*skb.PageFragSize on), which
	// the send queue references instead of copying
	// (netstack.TCPSock.SendPages): the caller must not write to a page
	// while another reference to it is held (skb.Page.Refs).
	WritePages(ctx context.Context, pages []*skb.Page, off, n int) (int, error)
}

// RecvActor takes received data for Splicer.ReadTo.
type RecvActor = netstack.RecvActor

type nonblockKey struct{}

// WithNonblock marks ctx as the context of a non-blocking call (O_NONBLOCK):
// a call that would block returns EAGAIN instead.
func WithNonblock(ctx context.Context) context.Context {
	return context.WithValue(ctx, nonblockKey{}, true)
}

// Nonblock reports whether ctx was marked by WithNonblock.
func Nonblock(ctx context.Context) bool {
	v, _ := ctx.Value(nonblockKey{}).(bool)
	return v
}

// Errno extracts the errno of err (EIO if it carries none, 0 for nil).
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// baseHandle gives the defaults: no reading, no writing, always ready.
type baseHandle struct{}

func (baseHandle) Read(context.Context, []byte, int64) (int, error)  { return 0, syscall.EBADF }
func (baseHandle) Write(context.Context, []byte, int64) (int, error) { return 0, syscall.EBADF }
func (baseHandle) Poll(ev Event, _ func()) Event                     { return ev & (PollIn | PollOut) }
func (baseHandle) Release()                                          {}

// readAt copies the part of text at offset off into p (Plan 9's readstr).
func readAt(text string, p []byte, off int64) int {
	if off < 0 || off >= int64(len(text)) {
		return 0
	}
	return copy(p, text[off:])
}
