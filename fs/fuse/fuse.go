// Package fuse serves a sockfs/fs tree over FUSE with bazil.org/fuse.
//
// Transport rules (NET-FILES.md): DIRECT_IO on every file; FOPEN_STREAM and
// NONSEEKABLE on stream files (data, listen, ctl, clone), for which the
// frontend keeps the read cursor; entry and attribute timeouts 0; truncation
// (SETATTR size=0) accepted and ignored; INTERRUPT cancels the request
// context (EINTR); POLL answered from the handle with wake-ups sent through
// NOTIFY_POLL; conversation references dropped on RELEASE, never on FLUSH.
// max_write is bazil's maximum, 128 KiB. Mounted allow_other without
// default_permissions: every user reaches the tree, which checks ownership
// itself (a conversation is its opener's). Unmount detaches lazily when
// files are still open; Mount recovers a stale mount point (a killed
// daemon's) and refuses a live one.
//
// bazil registers a request in the goroutine that serves it, so an
// INTERRUPT that overtakes that registration (microseconds after the
// request is read) is dropped; open, read and write therefore also watch
// the caller's pending signals while they block (watchSignals), which
// ends such a call within signalPoll.
package fuse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"

	netfs "sockfs/fs"
)

// openStream is FOPEN_STREAM, which bazil does not name.
const openStream = fuse.OpenResponseFlags(1 << 4)

// MountPoint is a served FUSE mount.
type MountPoint struct {
	Dir  string
	conn *fuse.Conn
	srv  *bfs.Server
	done chan error
	once sync.Once
}

// Mount mounts root at dir and serves it in the background. A stale mount
// left at dir by a killed daemon is lazily unmounted first.
func Mount(dir string, root netfs.Dir) (*MountPoint, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := RecoverStale(dir); err != nil {
		return nil, err
	}
	// AllowOther: every user may open the files; the tree itself enforces
	// ownership (a conversation belongs to its opener, sys/ is root's).
	conn, err := fuse.Mount(dir, fuse.FSName("sockfs"), fuse.Subtype("sockfs"), fuse.MaxReadahead(0), fuse.AllowOther())
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	m := &MountPoint{Dir: dir, conn: conn, done: make(chan error, 1)}
	m.srv = bfs.New(conn, nil)
	go func() { m.done <- m.srv.Serve(fsys{root: root, m: m}) }()
	return m, nil
}

// Unmount unmounts: plainly if nothing has files open (retrying for 200
// ms), else lazily (the mount point is detached at once; open files keep the
// connection until they are closed or this process exits, which aborts it).
// It waits up to a second for the server to stop; requests still blocked
// then (a listen open, a data read) end when the stack closes or the
// process exits. Safe to call more than once.
func (m *MountPoint) Unmount() error {
	var err error
	m.once.Do(func() {
		for i := 0; i < 4; i++ {
			if err = fuse.Unmount(m.Dir); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			err = lazyUnmount(m.Dir)
		}
		select {
		case <-m.done:
			m.conn.Close()
		case <-time.After(time.Second):
		}
	})
	return err
}

// Done yields Serve's result once the server stops.
func (m *MountPoint) Done() <-chan error { return m.done }

func lazyUnmount(dir string) error {
	if out, err := exec.Command("fusermount3", "-uz", dir).CombinedOutput(); err == nil {
		return nil
	} else if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
		return fmt.Errorf("unmount %s: %v: %s; %v: %s", dir, err, out, err2, out2)
	}
	return nil
}

// ErrMounted is returned by Mount and RecoverStale when dir is a FUSE mount
// whose server is still alive.
var ErrMounted = errors.New("already a live FUSE mount (another sockfs serve?)")

// RecoverStale lazily unmounts a dead FUSE mount at dir: one whose server
// was killed, so that stat answers ENOTCONN ("Transport endpoint is not
// connected"). A FUSE mount that still answers is left alone and reported
// as ErrMounted, so a second daemon cannot steal a live mount point.
func RecoverStale(dir string) error {
	_, err := os.Stat(dir)
	if errors.Is(err, syscall.ENOTCONN) {
		return lazyUnmount(dir)
	}
	if isFuseMount(dir) {
		return fmt.Errorf("%s: %w", dir, ErrMounted)
	}
	return nil
}

func isFuseMount(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts ... - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescape(fields[4]) != dir {
			continue
		}
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && strings.HasPrefix(fields[i+1], "fuse") {
				return true
			}
		}
	}
	return false
}

func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

type fsys struct {
	root netfs.Dir
	m    *MountPoint
}

func (f fsys) Root() (bfs.Node, error) { return node{n: f.root, m: f.m}, nil }

// node wraps a tree node. It is a comparable value, so bazil identifies the
// same tree node with the same FUSE node.
type node struct {
	n netfs.Node
	m *MountPoint
}

func errno(err error) error {
	if err == nil {
		return nil
	}
	return netfs.Errno(err)
}

func (n node) Attr(_ context.Context, a *fuse.Attr) error {
	q, st := n.n.Qid(), n.n.Stat()
	a.Valid = 0
	a.Inode = q.Path + 1
	a.Mode = st.Mode
	a.Uid, a.Gid = st.Uid, st.Gid
	a.Size = 0
	return nil
}

func (n node) Lookup(_ context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (bfs.Node, error) {
	d, ok := n.n.(netfs.Dir)
	if !ok {
		return nil, syscall.ENOTDIR
	}
	c, err := d.Lookup(req.Name)
	if err != nil {
		return nil, errno(err)
	}
	resp.EntryValid = 0
	return node{n: c, m: n.m}, nil
}

func (n node) ReadDirAll(context.Context) ([]fuse.Dirent, error) {
	d, ok := n.n.(netfs.Dir)
	if !ok {
		return nil, syscall.ENOTDIR
	}
	var out []fuse.Dirent
	for _, c := range d.List() {
		t := fuse.DT_File
		if c.Qid().Type&netfs.QTDir != 0 {
			t = fuse.DT_Dir
		}
		out = append(out, fuse.Dirent{Inode: c.Qid().Path + 1, Name: c.Stat().Name, Type: t})
	}
	return out, nil
}

// Setattr accepts and ignores everything (truncation from `>` included).
func (n node) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return n.Attr(ctx, &resp.Attr)
}

func (n node) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (bfs.Handle, error) {
	if req.Dir {
		if _, ok := n.n.(netfs.Dir); !ok {
			return nil, syscall.ENOTDIR
		}
		return n, nil
	}
	f, ok := n.n.(netfs.File)
	if !ok {
		return nil, syscall.EISDIR
	}
	flags := int(req.Flags)
	if req.Flags&fuse.OpenNonblock != 0 {
		ctx = netfs.WithNonblock(ctx)
	}
	ctx, stop := watchSignals(ctx, req.Pid)
	defer stop()
	h, err := f.Open(ctx, netfs.OpenReq{Flags: flags, Uid: req.Uid, Gid: req.Gid, Root: n.m.Dir})
	if err != nil {
		return nil, errno(err)
	}
	resp.Flags |= fuse.OpenDirectIO
	stream := n.n.Stat().Stream
	if stream {
		resp.Flags |= fuse.OpenNonSeekable | openStream
	}
	return &handle{h: h, m: n.m, stream: stream}, nil
}

// handle wraps an open tree handle.
type handle struct {
	h       netfs.Handle
	m       *MountPoint
	stream  bool
	mu      sync.Mutex
	cursor  int64 // read position of a stream handle
	polling atomic.Bool
	wakeup  atomic.Pointer[fuse.PollWakeup]
	pending atomic.Bool
}

func ioctx(ctx context.Context, flags fuse.OpenFlags) context.Context {
	if flags&fuse.OpenNonblock != 0 {
		return netfs.WithNonblock(ctx)
	}
	return ctx
}

func (h *handle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	buf := make([]byte, req.Size)
	off := req.Offset
	if h.stream {
		h.mu.Lock()
		off = h.cursor
		h.mu.Unlock()
	}
	ctx, stop := watchSignals(ctx, req.Pid)
	defer stop()
	n, err := h.h.Read(ioctx(ctx, req.FileFlags), buf, off)
	if err != nil {
		return errno(err)
	}
	if h.stream {
		h.mu.Lock()
		h.cursor += int64(n)
		h.mu.Unlock()
	}
	resp.Data = buf[:n]
	return nil
}

func (h *handle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	ctx, stop := watchSignals(ctx, req.Pid)
	defer stop()
	n, err := h.h.Write(ioctx(ctx, req.FileFlags), req.Data, req.Offset)
	if err != nil {
		return errno(err)
	}
	resp.Size = n
	return nil
}

func (h *handle) Poll(_ context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	var wake func()
	if w, ok := req.Wakeup(); ok {
		h.wakeup.Store(&w)
		wake = h.wake
	}
	ev := netfs.Event(0)
	if req.Events&fuse.PollIn != 0 {
		ev |= netfs.PollIn
	}
	if req.Events&fuse.PollOut != 0 {
		ev |= netfs.PollOut
	}
	got := h.h.Poll(ev, wake)
	var out fuse.PollEvents
	if got&netfs.PollIn != 0 {
		out |= fuse.PollIn
	}
	if got&netfs.PollOut != 0 {
		out |= fuse.PollOut
	}
	if got&netfs.PollErr != 0 {
		out |= fuse.PollError
	}
	if got&netfs.PollHup != 0 {
		out |= fuse.PollHangup
	}
	resp.REvents = out
	return nil
}

// wake sends NOTIFY_POLL for the last wakeup handle the kernel gave us. It
// runs in the socket's waker goroutine, so the write to /dev/fuse happens
// in a goroutine of its own, coalesced.
func (h *handle) wake() {
	if !h.pending.CompareAndSwap(false, true) {
		return
	}
	go func() {
		h.pending.Store(false)
		if w := h.wakeup.Load(); w != nil {
			h.m.srv.NotifyPollWakeup(*w)
		}
	}()
}

func (h *handle) Release(context.Context, *fuse.ReleaseRequest) error {
	h.h.Release()
	return nil
}
