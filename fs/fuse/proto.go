package fuse

import (
	"encoding/binary"
)

// The kernel's FUSE protocol (include/uapi/linux/fuse.h), the part a
// synthetic tree needs. Every message is in the host's byte order.

// Protocol version spoken: 7.31 (max_pages and FOPEN_STREAM are older).
const (
	protoMajor = 7
	protoMinor = 31
)

// Opcodes.
const (
	opLookup      = 1
	opForget      = 2
	opGetattr     = 3
	opSetattr     = 4
	opOpen        = 14
	opRead        = 15
	opWrite       = 16
	opStatfs      = 17
	opRelease     = 18
	opFsync       = 20
	opFlush       = 25
	opInit        = 26
	opOpendir     = 27
	opReaddir     = 28
	opReleasedir  = 29
	opFsyncdir    = 30
	opInterrupt   = 36
	opDestroy     = 38
	opPoll        = 40
	opBatchForget = 42
)

// INIT flags this server asks for.
const (
	initBigWrites     = 1 << 5
	initParallelDirop = 1 << 18
	initMaxPages      = 1 << 22
)

// OPEN reply flags.
const (
	fopenDirectIO    = 1 << 0
	fopenNonseekable = 1 << 2
	fopenStream      = 1 << 4
)

// pollScheduleNotify in fuse_poll_in.flags asks for a NOTIFY_POLL when
// readiness changes; notifyPoll is that notification's code.
const (
	pollScheduleNotify = 1
	notifyPoll         = 1
)

// Sizes of the fixed parts.
const (
	inHeaderLen  = 40 // fuse_in_header
	outHeaderLen = 16 // fuse_out_header
	attrLen      = 88 // fuse_attr
	entryOutLen  = 40 + attrLen
	attrOutLen   = 16 + attrLen
	initOutLen   = 64
	openOutLen   = 16
	readInLen    = 40 // fuse_read_in
	writeInLen   = 40 // fuse_write_in
	statfsOutLen = 80
	direntLen    = 24 // fuse_dirent without its name
)

// maxIO is the largest READ or WRITE the kernel sends (max_write, and
// max_pages of 4 KiB pages for reads): 1 MiB, Linux's FUSE_MAX_MAX_PAGES.
const (
	maxIO    = 1 << 20
	maxPages = maxIO / 4096
)

// reqBufLen is the size of a buffer that holds any request: the kernel
// refuses reads into less than the header, a fuse_write_in and max_write.
const reqBufLen = maxIO + 4096

var ne = binary.NativeEndian

// inHeader is fuse_in_header.
type inHeader struct {
	len    uint32
	opcode uint32
	unique uint64
	nodeid uint64
	uid    uint32
	gid    uint32
	pid    uint32
}

func parseInHeader(b []byte) inHeader {
	return inHeader{
		len:    ne.Uint32(b[0:]),
		opcode: ne.Uint32(b[4:]),
		unique: ne.Uint64(b[8:]),
		nodeid: ne.Uint64(b[16:]),
		uid:    ne.Uint32(b[24:]),
		gid:    ne.Uint32(b[28:]),
		pid:    ne.Uint32(b[32:]),
	}
}

// putOutHeader writes fuse_out_header for a reply of n bytes in all.
func putOutHeader(b []byte, n int, errno int32, unique uint64) {
	ne.PutUint32(b[0:], uint32(n))
	ne.PutUint32(b[4:], uint32(errno))
	ne.PutUint64(b[8:], unique)
}

// attr is what fuse_attr carries for a tree node.
type attr struct {
	ino   uint64
	size  uint64
	mode  uint32 // S_IF* | permissions
	nlink uint32
	uid   uint32
	gid   uint32
	time  int64 // seconds, for atime, mtime and ctime
}

func putAttr(b []byte, a attr) {
	clear(b[:attrLen])
	ne.PutUint64(b[0:], a.ino)
	ne.PutUint64(b[8:], a.size)
	ne.PutUint64(b[16:], (a.size+511)/512) // blocks
	ne.PutUint64(b[24:], uint64(a.time))
	ne.PutUint64(b[32:], uint64(a.time))
	ne.PutUint64(b[40:], uint64(a.time))
	// nsecs 48..60: 0
	ne.PutUint32(b[60:], a.mode)
	ne.PutUint32(b[64:], a.nlink)
	ne.PutUint32(b[68:], a.uid)
	ne.PutUint32(b[72:], a.gid)
	// rdev 76: 0
	ne.PutUint32(b[80:], 4096) // blksize
}

// putEntryOut writes fuse_entry_out with zero timeouts.
func putEntryOut(b []byte, nodeid uint64, a attr) {
	clear(b[:40])
	ne.PutUint64(b[0:], nodeid)
	putAttr(b[40:], a)
}

// putAttrOut writes fuse_attr_out with a zero timeout.
func putAttrOut(b []byte, a attr) {
	clear(b[:16])
	putAttr(b[16:], a)
}

// padDirent is the length of a fuse_dirent with a name of n bytes.
func padDirent(n int) int { return (direntLen + n + 7) &^ 7 }

// putDirent writes one fuse_dirent; b must hold padDirent(len(name)).
func putDirent(b []byte, ino, off uint64, typ uint32, name string) int {
	n := padDirent(len(name))
	ne.PutUint64(b[0:], ino)
	ne.PutUint64(b[8:], off)
	ne.PutUint32(b[16:], uint32(len(name)))
	ne.PutUint32(b[20:], typ)
	copy(b[direntLen:], name)
	clear(b[direntLen+len(name) : n])
	return n
}

// cstring returns the NUL-terminated string at the start of b.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
