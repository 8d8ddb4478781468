package p9

import (
	iofs "io/fs"
	"sync"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"

	"sockfs/fs"
)

// errno converts a tree error to the errno p9 sends in Rlerror. It must be
// a linux.Errno: p9 maps errors that match os.ErrPermission (EPERM as well
// as EACCES) to EACCES.
func errno(err error) error {
	if err == nil {
		return nil
	}
	return linux.Errno(fs.Errno(err))
}

// attacher gives each Tattach a root file carrying the attaching user.
type attacher struct {
	c    *serverConn
	root fs.Dir
}

// Attach runs in the goroutine handling Tattach, so the shim knows its
// n_uname. An attach without a uid (~0) is nobody.
func (a *attacher) Attach() (p9.File, error) {
	uid := uint32(nobody)
	if r := a.c.current(); r != nil && r.uid != noUID {
		uid = r.uid
	}
	return &file{c: a.c, n: a.root, uid: uid}, nil
}

// file is a fid's view of a tree node; p9 makes one per fid (Walk with no
// names clones). Blocking calls (Open of listen, ReadAt, WriteAt) take the
// context of the request being served in their goroutine, so Tflush and the
// client's disconnection cancel them.
type file struct {
	c   *serverConn
	n   fs.Node
	uid uint32

	mu sync.Mutex
	h  fs.Handle // set by Open, released by Close
}

// start is the time given as every node's times: the tree keeps none.
var start = time.Now()

func qidOf(n fs.Node) p9.QID {
	q := n.Qid()
	return p9.QID{Type: p9.QIDType(q.Type), Version: q.Version, Path: q.Path}
}

func modeOf(st fs.Stat) p9.FileMode {
	m := p9.FileMode(st.Mode.Perm())
	if st.Mode&iofs.ModeDir != 0 {
		return m | p9.ModeDirectory
	}
	return m | p9.ModeRegular
}

// Walk looks names up one after another (p9 passes at most one).
func (f *file) Walk(names []string) ([]p9.QID, p9.File, error) {
	n := f.n
	var qids []p9.QID
	for _, name := range names {
		d, ok := n.(fs.Dir)
		if !ok {
			return nil, nil, linux.ENOTDIR
		}
		c, err := d.Lookup(name)
		if err != nil {
			return nil, nil, errno(err)
		}
		n = c
		qids = append(qids, qidOf(n))
	}
	return qids, &file{c: f.c, n: n, uid: f.uid}, nil
}

// WalkGetAttr is left to p9's Walk+GetAttr fallback.
func (f *file) WalkGetAttr([]string) ([]p9.QID, p9.File, p9.AttrMask, p9.Attr, error) {
	return nil, nil, p9.AttrMask{}, p9.Attr{}, linux.ENOSYS
}

func (f *file) StatFS() (p9.FSStat, error) {
	return p9.FSStat{Type: 0x01021997 /* V9FS_MAGIC */, BlockSize: 4096, NameLength: 255}, nil
}

// GetAttr never blocks and takes no lock of the tree.
func (f *file) GetAttr(p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	st := f.n.Stat()
	sec, nsec := uint64(start.Unix()), uint64(start.Nanosecond())
	attr := p9.Attr{
		Mode: modeOf(st), UID: p9.UID(st.Uid), GID: p9.GID(st.Gid), NLink: 1,
		BlockSize:    4096,
		ATimeSeconds: sec, ATimeNanoSeconds: nsec,
		MTimeSeconds: sec, MTimeNanoSeconds: nsec,
		CTimeSeconds: sec, CTimeNanoSeconds: nsec,
	}
	if st.Mode&iofs.ModeDir != 0 {
		attr.NLink = 2
	}
	valid := p9.AttrMask{Mode: true, NLink: true, UID: true, GID: true, Size: true,
		Blocks: true, ATime: true, MTime: true, CTime: true, INo: true}
	return qidOf(f.n), valid, attr, nil
}

// SetAttr accepts and ignores everything, like the FUSE frontend. (The
// connection shim answers Tsetattr before p9 would take the file's write
// lock; this is for completeness.)
func (f *file) SetAttr(p9.SetAttrMask, p9.SetAttr) error { return nil }

// Close releases the open handle: p9 calls it when the fid's last
// reference goes (Tclunk, or the end of the connection), after every other
// call on it has returned.
func (f *file) Close() error {
	f.mu.Lock()
	h := f.h
	f.h = nil
	f.mu.Unlock()
	if h != nil {
		h.Release()
	}
	return nil
}

// Open opens the node for the attaching user. It may block (listen) until
// a call arrives, Tflush or the client's disconnection. O_NONBLOCK from
// Tlopen is deliberately not passed on: Linux v9fs sets it to mean "return
// after one short read", which stream files do anyway, and poll on v9fs
// always reports ready, so EAGAIN would only break readers. iounit is 0 so
// clients do msize-sized I/O.
func (f *file) Open(mode p9.OpenFlags) (p9.QID, uint32, error) {
	file, ok := f.n.(fs.File)
	if !ok {
		return qidOf(f.n), 0, nil // a directory; p9 allows reading only
	}
	req := fs.OpenReq{Flags: int(mode & p9.OpenFlagsModeMask), Uid: f.uid, Gid: f.uid}
	h, err := file.Open(f.c.reqContext(), req)
	if err != nil {
		return p9.QID{}, 0, errno(err)
	}
	f.mu.Lock()
	f.h = h
	f.mu.Unlock()
	return qidOf(f.n), 0, nil
}

func (f *file) handle() (fs.Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		if _, ok := f.n.(fs.Dir); ok {
			return nil, linux.EISDIR
		}
		return nil, linux.EBADF
	}
	return f.h, nil
}

// ReadAt reads at off (stream files ignore it). It may block; Tflush or the
// client going away cancels it with EINTR, consuming nothing.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	h, err := f.handle()
	if err != nil {
		return 0, err
	}
	n, err := h.Read(f.c.reqContext(), p, off)
	return n, errno(err)
}

// WriteAt writes at off. It may block (flow control, connect); Tflush or
// the client going away cancels it with EINTR.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	h, err := f.handle()
	if err != nil {
		return 0, err
	}
	n, err := h.Write(f.c.reqContext(), p, off)
	return n, errno(err)
}

// Readdir lists the directory from entry offset; p9 keeps the entries that
// fit in count bytes, and the client continues from the last one's Offset.
func (f *file) Readdir(offset uint64, count uint32) (p9.Dirents, error) {
	d, ok := f.n.(fs.Dir)
	if !ok {
		return nil, linux.ENOTDIR
	}
	list := d.List()
	var out p9.Dirents
	for i := offset; i < uint64(len(list)) && len(out) < int(count/24)+1; i++ {
		c := list[i]
		q := qidOf(c)
		out = append(out, p9.Dirent{QID: q, Offset: i + 1, Type: q.Type, Name: c.Stat().Name})
	}
	return out, nil
}

func (f *file) FSync() error { return nil }

func (f *file) Lock(int, p9.LockType, p9.LockFlags, uint64, uint64, string) (p9.LockStatus, error) {
	return p9.LockStatusOK, nil
}

func (f *file) SetXattr(string, []byte, p9.XattrFlags) error { return linux.EOPNOTSUPP }
func (f *file) GetXattr(string) ([]byte, error)              { return nil, linux.ENODATA }
func (f *file) ListXattrs() ([]string, error)                { return nil, nil }
func (f *file) RemoveXattr(string) error                     { return linux.EOPNOTSUPP }

// The tree's names are fixed: nothing is created, linked, renamed or
// removed (Plan 9's devip says Eperm).
func (f *file) Create(string, p9.OpenFlags, p9.FileMode, p9.UID, p9.GID) (p9.File, p9.QID, uint32, error) {
	return nil, p9.QID{}, 0, linux.EPERM
}
func (f *file) Mkdir(string, p9.FileMode, p9.UID, p9.GID) (p9.QID, error) {
	return p9.QID{}, linux.EPERM
}
func (f *file) Symlink(string, string, p9.UID, p9.GID) (p9.QID, error) {
	return p9.QID{}, linux.EPERM
}
func (f *file) Link(p9.File, string) error { return linux.EPERM }
func (f *file) Mknod(string, p9.FileMode, uint32, uint32, p9.UID, p9.GID) (p9.QID, error) {
	return p9.QID{}, linux.EPERM
}
func (f *file) Rename(p9.File, string) error           { return linux.EPERM }
func (f *file) RenameAt(string, p9.File, string) error { return linux.EPERM }
func (f *file) UnlinkAt(string, uint32) error          { return linux.EPERM }
func (f *file) Readlink() (string, error)              { return "", linux.EINVAL }
func (f *file) Renamed(p9.File, string)                {}

var _ p9.File = (*file)(nil)
