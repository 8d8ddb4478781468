package p9

import (
	"errors"
	"syscall"

	"sockfs/fs"
)

// protoError is an error of the protocol itself (a bad fid, a walk from a
// file, ...): the errno for 9P2000.L and .u, and a Plan 9 style string for
// 9P2000 and .u.
type protoError struct {
	errno syscall.Errno
	text  string
}

func (e *protoError) Error() string { return e.text }
func (e *protoError) Unwrap() error { return e.errno }

func perr(errno syscall.Errno, text string) error { return &protoError{errno, text} }

// The server's own errors. The strings follow Plan 9's lib9p (srv.c) and
// the kernel's error.h where they have one.
var (
	errUnknownFid   = perr(syscall.EBADF, "unknown fid")
	errDupFid       = perr(syscall.EBADF, "duplicate fid")
	errDupTag       = perr(syscall.EINVAL, "duplicate tag")
	errWalkNoDir    = perr(syscall.ENOTDIR, "walk in non-directory")
	errFidOpen      = perr(syscall.EBADF, "fid already open")
	errNotOpen      = perr(syscall.EBADF, "fid not open")
	errNoRead       = perr(syscall.EBADF, "fid not open for reading")
	errNoWrite      = perr(syscall.EBADF, "fid not open for writing")
	errIsDir        = perr(syscall.EISDIR, "file is a directory")
	errPerm         = perr(syscall.EPERM, "permission denied")
	errTooManyFids  = perr(syscall.EMFILE, "too many fids")
	errTooBusy      = perr(syscall.ENOBUFS, "too many requests in flight")
	errTooBig       = perr(syscall.ENOBUFS, "too many bytes in flight")
	errBadMsg       = perr(syscall.EINVAL, "malformed message")
	errUnknownMsg   = perr(syscall.EOPNOTSUPP, "unknown message type")
	errNoAuth       = perr(syscall.ENOENT, "authentication not required")
	errNoVersion    = perr(syscall.EPROTO, "version not negotiated")
	errMsize        = perr(syscall.EINVAL, "msize too small")
	errBadOffset    = perr(syscall.EINVAL, "bad offset in directory read")
	errTooManyNames = perr(syscall.EINVAL, "too many names in walk")
	errBadCount     = perr(syscall.EINVAL, "write count does not match data")
	errNoXattr      = perr(syscall.EOPNOTSUPP, "operation not supported")
	errNotWritten   = perr(syscall.EPERM, "wstat prohibited")
)

// fsStrings are Plan 9's strings for the errnos the tree gives for
// file-system reasons (error.h: Enonexist, Eperm, Eisdir, ...); network
// errors get theirs from fs.ErrText.
var fsStrings = map[syscall.Errno]string{
	syscall.ENOENT:  "file does not exist",
	syscall.EPERM:   "permission denied",
	syscall.EACCES:  "permission denied",
	syscall.EISDIR:  "file is a directory",
	syscall.ENOTDIR: "not a directory",
	syscall.EBADF:   "inappropriate use of fd",
	syscall.EINVAL:  "bad arg in system call",
	syscall.EIO:     "i/o error",
}

// errString is err as 9P2000 and 9P2000.u send it: the server's own
// string, the message the tree gave ("unknown control request"), or the
// Plan 9 string of the errno ("connection refused").
func errString(err error) string {
	var pe *protoError
	if errors.As(err, &pe) {
		return pe.text
	}
	e := fs.Errno(err)
	var bare syscall.Errno
	if errors.As(err, &bare) && err.Error() == bare.Error() {
		if s, ok := fsStrings[e]; ok {
			return s
		}
	}
	return fs.ErrText(err)
}
