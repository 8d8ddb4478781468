package fuse

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Files of the mount opened by this process itself.
//
// The Go runtime registers every file it opens with its netpoller
// (epoll_ctl in runtime.netpollopen), and epoll_wait looks at a ready
// file again (ep_item_poll); for a FUSE file both call the kernel's
// fuse_file_poll, which sends POLL to this server and waits for the
// answer. The runtime makes both calls without giving up its P, so when
// this process opens a file on its own mount, the thread that waits for
// the POLL answer holds a P. A stop-the-world (the garbage collector's)
// then waits for that thread, and the reader that would answer the POLL,
// back from read(2), waits for the world to start again to get a P: the
// process deadlocks (the h-fuse branch did, under load).
//
// go-fuse answers POLL with ENOSYS, after which the kernel treats every
// file of the mount as always ready (fc->no_poll): select and poll on a
// data file would lose their meaning (NET-FILES.md). Here instead a
// reader reads /dev/fuse in the state of a goroutine in a system call
// (runtime.entersyscall: no P held) and, when the request is a POLL
// from one of this process's own threads (tgkill(getpid(), tid, 0)
// succeeds), answers it there, before it needs a P again. The answer
// is the kernel's DEFAULT_POLLMASK (readable and writable): the runtime
// then simply tries the read or write; a non-blocking one that finds
// nothing waits for the NOTIFY_POLL that the server sends once the
// reader is back and has registered the handle's wake-up (poll with
// answered set). Deviation: select/poll by this process's own threads
// on its own mount always report ready; other processes get the
// handle's real readiness.
//
// Readers can all be busy or held by a stop-the-world when the POLL
// comes (requests that other threads sent during the stop take them
// one by one), so one more goroutine, the sentinel, stays in the system
// call state for the mount's lifetime: every sentinelPeriod it asks
// the device whether requests are waiting (ppoll) and, when they wait
// at two checks in a row, reads one itself: an own POLL it answers, any
// other request it passes whole through a pipe to a goroutine that
// serves it once the world runs again.

//go:linkname entersyscall runtime.entersyscall
func entersyscall()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// defaultPollMask is the kernel's DEFAULT_POLLMASK: EPOLLIN | EPOLLOUT |
// EPOLLRDNORM | EPOLLWRNORM.
const defaultPollMask = 0x1 | 0x4 | 0x40 | 0x100

// opPollAnswered replaces the opcode of a POLL that was answered where
// it was read: the server only registers the handle's wake-up.
const opPollAnswered = 1<<31 | opPoll

// sentinelPeriod is how often the sentinel looks for waiting requests.
const sentinelPeriod = 4_000_000 // ns

// pollOut is fuse_out_header followed by fuse_poll_out.
type pollOut struct {
	len     uint32
	errno   int32
	unique  uint64
	revents uint32
	_       uint32
}

// rawRead reads one request from the device into the buffers of iov
// (cnt of them; the first holds at least a POLL request) as a system
// call, answering it first if it is an own POLL (see above).
//
//go:nosplit
//go:norace
func rawRead(fd uintptr, iov *unix.Iovec, cnt, pid uintptr) (uintptr, syscall.Errno) {
	entersyscall()
	n, e := readAnswer(fd, iov, cnt, pid)
	exitsyscall()
	return n, e
}

// readAnswer is rawRead's body; it runs without a P, so it and all it
// calls are nosplit and touch no Go heap object but the buffers.
//
//go:nosplit
//go:norace
func readAnswer(fd uintptr, iov *unix.Iovec, cnt, pid uintptr) (uintptr, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READV, fd, uintptr(unsafe.Pointer(iov)), cnt)
	if e != 0 {
		return 0, e
	}
	p := unsafe.Pointer(iov.Base)
	if n < inHeaderLen+24 || *(*uint32)(unsafe.Add(p, 4)) != opPoll {
		return n, 0
	}
	tid := uintptr(*(*uint32)(unsafe.Add(p, 32)))
	if _, _, e := syscall.RawSyscall(syscall.SYS_TGKILL, pid, tid, 0); tid == 0 || e != 0 {
		return n, 0 // another process's POLL: the server answers it
	}
	out := pollOut{len: uint32(unsafe.Sizeof(pollOut{})), unique: *(*uint64)(unsafe.Add(p, 8)), revents: defaultPollMask}
	syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&out)), unsafe.Sizeof(out))
	*(*uint32)(unsafe.Add(p, 4)) = opPollAnswered
	return n, 0
}

// sentinelRun runs the sentinel's loop as one long system call; it
// returns when the device fails (the mount is gone) or the pipe does.
//
//go:nosplit
//go:norace
func sentinelRun(fd uintptr, p unsafe.Pointer, size, pid, parkw, readyw uintptr) syscall.Errno {
	entersyscall()
	// Tell startSentinel that the loop runs without a P from now on.
	one := byte(1)
	syscall.RawSyscall(syscall.SYS_WRITE, readyw, uintptr(unsafe.Pointer(&one)), 1)
	e := sentinelLoop(fd, p, size, pid, parkw)
	exitsyscall()
	return e
}

//go:nosplit
//go:norace
func sentinelLoop(fd uintptr, p unsafe.Pointer, size, pid, parkw uintptr) syscall.Errno {
	var pfd struct {
		fd              int32
		events, revents int16
	}
	var nap, now syscall.Timespec
	waiting := 0
	for {
		nap = syscall.Timespec{Nsec: sentinelPeriod}
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&nap)), 0, 0)
		pfd.fd, pfd.events, pfd.revents = int32(fd), unix.POLLIN, 0
		now = syscall.Timespec{}
		_, _, e := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&now)), 0, 0, 0)
		if e != 0 && e != syscall.EINTR {
			return e
		}
		if pfd.revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			return syscall.ENODEV
		}
		if pfd.revents&unix.POLLIN == 0 {
			waiting = 0
			continue
		}
		if waiting++; waiting < 2 {
			continue
		}
		// Stay ready to read again at the next check: a stop of the
		// world can leave several requests ahead of an own POLL.
		waiting = 1
		iov := unix.Iovec{Base: (*byte)(p), Len: uint64(size)}
		n, e := readAnswer(fd, &iov, 1, pid)
		switch e {
		case 0:
		case syscall.EINTR, syscall.EAGAIN, syscall.ENOENT:
			continue
		default:
			return e
		}
		for off := uintptr(0); off < n; {
			w, _, e := syscall.RawSyscall(syscall.SYS_WRITE, parkw, uintptr(p)+off, n-off)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				return e
			}
			off += w
		}
	}
}

// startSentinel starts the sentinel and the goroutine that serves what
// it parks, and returns once the sentinel runs without a P (a goroutine
// that has not got that far yet could itself be held by a stopped
// world). Both end when the mount goes away, the sentinel closing
// s.sentinelDone (the device must stay open until then: a new mount
// could get its descriptor number).
func (s *server) startSentinel() error {
	var park, ready [2]int
	if err := unix.Pipe2(park[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	if err := unix.Pipe2(ready[:], unix.O_CLOEXEC); err != nil {
		unix.Close(park[0])
		unix.Close(park[1])
		return err
	}
	if _, err := growPipe(park[1], reqBufLen); err != nil {
		for _, fd := range [...]int{park[0], park[1], ready[0], ready[1]} {
			unix.Close(fd)
		}
		return fmt.Errorf("sentinel pipe: %w", err)
	}
	r := os.NewFile(uintptr(park[0]), "fuse-parked")
	s.sentinelDone = make(chan struct{})
	go func() {
		defer close(s.sentinelDone)
		buf := make([]byte, reqBufLen)
		sentinelRun(uintptr(s.fd), unsafe.Pointer(unsafe.SliceData(buf)), uintptr(len(buf)), uintptr(s.pid), uintptr(park[1]), uintptr(ready[1]))
		unix.Close(park[1])
	}()
	var b [1]byte
	for {
		if _, err := unix.Read(ready[0], b[:]); err != unix.EINTR {
			break
		}
	}
	unix.Close(ready[0])
	unix.Close(ready[1])
	go s.serveParked(r)
	return nil
}

// growPipe gives the pipe of fd room for want bytes, so that the
// sentinel parks a whole request (a 1 MiB WRITE) without waiting for
// serveParked to read it. Beyond fs.pipe-max-size (1 MiB by default, less
// than a WRITE request) pipe_set_size refuses that without
// CAP_SYS_RESOURCE, as for root in a user namespace; the pipe then gets
// pipe-max-size, and the sentinel writes a longer request in two pieces,
// the second waiting for serveParked to take the first (which it cannot
// while the world is stopped: an own POLL queued behind such a request in
// a stop of the world would wait for the stop's end). It returns the size
// the pipe has.
func growPipe(fd, want int) (int, error) {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, want); err != nil {
		if err != unix.EPERM {
			return 0, err
		}
		b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
		if err != nil {
			return 0, err
		}
		max, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("fs.pipe-max-size: %w", err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, min(want, max)); err != nil {
			return 0, err
		}
	}
	return unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
}

// serveParked serves the requests the sentinel read, each in a goroutine
// of its own (it may block, as a reader's may): a rare path, allowed its
// allocations.
func (s *server) serveParked(r *os.File) {
	defer r.Close()
	for {
		var hdr [inHeaderLen]byte
		if _, err := readFull(r, hdr[:]); err != nil {
			return
		}
		n := int(ne.Uint32(hdr[0:]))
		if n < inHeaderLen || n > reqBufLen {
			return
		}
		buf := reqBufs.get()
		copy(buf, hdr[:])
		if _, err := readFull(r, buf[inHeaderLen:n]); err != nil {
			reqBufs.put(buf)
			return
		}
		go func() {
			w := s.takeWorker()
			w.serve(buf[:n])
			if w.back {
				s.idle.Add(-1)
				w.back = false
			}
			s.giveWorker(w)
			reqBufs.put(buf)
		}()
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}
