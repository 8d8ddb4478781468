package netstack

import "syscall"

// Errors are errno values so that the file servers can hand them to FUSE and
// 9P unchanged; the Go API wraps them in *net.OpError.
const (
	errExist        = syscall.EEXIST
	errNoRoute      = syscall.ESRCH // fib_table_delete: no such route
	errDestAddrReq  = syscall.EDESTADDRREQ
	errAgain        = syscall.EAGAIN
	errIntr         = syscall.EINTR
	errInval        = syscall.EINVAL
	errAddrInUse    = syscall.EADDRINUSE
	errAddrNotAvail = syscall.EADDRNOTAVAIL
	errNetUnreach   = syscall.ENETUNREACH
	errHostUnreach  = syscall.EHOSTUNREACH
	errConnRefused  = syscall.ECONNREFUSED
	errMsgSize      = syscall.EMSGSIZE
	errNotConn      = syscall.ENOTCONN
	errIsConn       = syscall.EISCONN
	errPipe         = syscall.EPIPE
	errBadF         = syscall.EBADF
	errTimedOut     = syscall.ETIMEDOUT
	errNoBufs       = syscall.ENOBUFS
	errAFNoSupport  = syscall.EAFNOSUPPORT
)
