package p9

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawVec runs readv(2) or writev(2) with a vector of ours on a
// connection's descriptor, through its syscall.RawConn (Go keeps every
// network descriptor non-blocking): a readv waits in the runtime's poller
// until something has arrived, a writev never waits and writes what the
// socket takes now. One per direction and connection, so that the
// reading goroutine and a replying one never share one.
type rawVec struct {
	raw  syscall.RawConn
	read bool
	// call is the function raw.Read or raw.Write runs, made once (a
	// closure per call would be an allocation per message); iov, n and
	// err are its argument and results.
	call func(fd uintptr) bool
	iov  []unix.Iovec
	n    int
	err  error
}

// newRawVec returns a reader (read) or writer of nc's descriptor, or nil
// if nc has none (TLS).
func newRawVec(nc net.Conn, read bool) *rawVec {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	v := &rawVec{raw: raw, read: read}
	trap := uintptr(unix.SYS_WRITEV)
	if read {
		trap = unix.SYS_READV
	}
	v.call = func(fd uintptr) bool {
		for {
			n, _, e := unix.Syscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(v.iov))), uintptr(len(v.iov)))
			switch e {
			case unix.EINTR:
				continue
			case 0:
				v.n, v.err = int(n), nil
			case unix.EAGAIN:
				if v.read {
					return false // the poller waits for more
				}
				v.n, v.err = 0, nil // the socket is full: nothing now
			default:
				v.n, v.err = 0, e
			}
			return true
		}
	}
	return v
}

// do runs the readv or writev of iov and returns the bytes it moved.
func (v *rawVec) do(iov []unix.Iovec) (int, error) {
	v.iov = iov
	var err error
	if v.read {
		err = v.raw.Read(v.call)
	} else {
		err = v.raw.Write(v.call)
	}
	v.iov = nil
	if err == nil {
		err = v.err
	}
	return v.n, err
}
