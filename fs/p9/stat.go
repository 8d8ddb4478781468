package p9

import (
	iofs "io/fs"
	"os/user"
	"strconv"
	"sync"
	"time"

	"sockfs/fs"
)

// start is the time given as every node's times: the tree keeps none.
var start = time.Now()

func qidOf(n fs.Node) qid {
	q := n.Qid()
	return qid{typ: q.Type, version: q.Version, path: q.Path}
}

// users maps between the tree's numeric owners and the user names that
// 9P2000 carries (uname in Tattach, uid/gid in stat), through the host's
// user database. Lookups are cached: a stat of every file of a listing
// names few users.
type users struct {
	mu     sync.Mutex
	byName map[string]uint32
	byID   map[uint32]string
}

var hostUsers = &users{byName: map[string]uint32{}, byID: map[uint32]string{}}

// uid is the uid of user name, or nobody if the host has no such user. A
// decimal name is taken as the uid itself.
func (u *users) uid(name string) uint32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if id, ok := u.byName[name]; ok {
		return id
	}
	id := uint32(nobody)
	if n, err := strconv.ParseUint(name, 10, 32); err == nil && name != "" {
		id = uint32(n)
	} else if usr, err := user.Lookup(name); err == nil {
		if n, err := strconv.ParseUint(usr.Uid, 10, 32); err == nil {
			id = uint32(n)
		}
	}
	if len(u.byName) < 1024 {
		u.byName[name] = id
	}
	return id
}

// name is the user name of uid, or the uid in decimal.
func (u *users) name(id uint32) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if s, ok := u.byID[id]; ok {
		return s
	}
	s := strconv.FormatUint(uint64(id), 10)
	if usr, err := user.LookupId(s); err == nil {
		s = usr.Username
	}
	if len(u.byID) < 1024 {
		u.byID[id] = s
	}
	return s
}

// groupName is the group name of gid, or gid in decimal.
func (u *users) groupName(id uint32) string {
	s := strconv.FormatUint(uint64(id), 10)
	if g, err := user.LookupGroupId(s); err == nil {
		return g.Name
	}
	return s
}

// appendStat appends n's stat(5) entry: Plan 9's for 9P2000, with the .u
// extension (extension[s] n_uid[4] n_gid[4] n_muid[4]) for 9P2000.u.
// length is 0: the tree's files have no size.
func appendStat(e *enc, n fs.Node, d dialect) {
	st := n.Stat()
	at := len(e.b)
	e.u16(0) // size, filled in below
	e.u16(0) // type
	e.u32(0) // dev
	e.qid(qidOf(n))
	mode := uint32(st.Mode.Perm())
	if st.Mode&iofs.ModeDir != 0 {
		mode |= dmDir
	}
	e.u32(mode)
	e.u32(uint32(start.Unix())) // atime
	e.u32(uint32(start.Unix())) // mtime
	e.u64(uint64(st.Length))
	name := st.Name
	if name == "" {
		name = "/"
	}
	e.str(name)
	owner := hostUsers.name(st.Uid)
	e.str(owner)
	e.str(hostUsers.groupName(st.Gid))
	e.str(owner) // muid
	if d == dialectU {
		e.str("")
		e.u32(st.Uid)
		e.u32(st.Gid)
		e.u32(st.Uid)
	}
	le.PutUint16(e.b[at:], uint16(len(e.b)-at-2))
}

// statLen is the size of n's stat entry, as appendStat writes it.
func statLen(n fs.Node, d dialect) int {
	var e enc
	appendStat(&e, n, d)
	return len(e.b)
}

// Linux's struct stat mode bits, for Rgetattr.
const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
)

// getattr mask bits (P9_GETATTR_*) that Rgetattr fills in: mode, nlink,
// uid, gid, rdev, atime, mtime, ctime, ino, size, blocks = P9_GETATTR_BASIC.
const getattrBasic = 0x000007ff

// appendGetattr appends Rgetattr's body for n.
func appendGetattr(e *enc, n fs.Node) {
	st := n.Stat()
	mode, nlink := uint32(st.Mode.Perm())|sIFREG, uint64(1)
	if st.Mode&iofs.ModeDir != 0 {
		mode, nlink = uint32(st.Mode.Perm())|sIFDIR, 2
	}
	sec, nsec := uint64(start.Unix()), uint64(start.Nanosecond())
	e.u64(getattrBasic)
	e.qid(qidOf(n))
	e.u32(mode)
	e.u32(st.Uid)
	e.u32(st.Gid)
	e.u64(nlink)
	e.u64(0)                               // rdev
	e.u64(uint64(st.Length))               // size
	e.u64(4096)                            // blksize
	e.u64((uint64(st.Length) + 511) / 512) // blocks
	for range 3 {
		e.u64(sec) // atime, mtime, ctime
		e.u64(nsec)
	}
	e.u64(0) // btime
	e.u64(0)
	e.u64(0) // gen
	e.u64(0) // data_version
}
