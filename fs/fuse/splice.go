package fuse

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A READ reply written with writev(2) makes the kernel pin the server's
// source pages one page at a time (fuse_dev_do_write → fuse_copy_fill →
// iov_iter_get_pages2, a gup_fast call with its interrupt toggling for
// each 4 KiB) while it copies them into the reader's pages. A long reply
// goes instead through a pipe of the worker's own: vmsplice(2) takes
// references on the receive queue's pages up to 16 at a time
// (iter_to_pipe), and splice(2) hands the pipe's buffers to the device
// (fuse_dev_splice_write), which copies from them with no pinning. The
// data is still copied once, by the kernel, into the reader's pages;
// splice(2) returns after that copy and the pipe's release of our pages,
// so the receive queue may free them as before.

// spliceReplyMin is the least data a READ reply goes through the pipe
// with: below it writev's one system call is cheaper than two.
const spliceReplyMin = 64 << 10

// replyPipeSize is the pipe size asked for. A reply takes one pipe slot
// (a page) for its header and one for each page its data touches, so a
// pipe of 2 MiB holds any reply of max_pages (1 MiB). Beyond
// fs.pipe-max-size (1 MiB by default) that needs CAP_SYS_RESOURCE
// (growPipe); without it the pipe gets pipe-max-size, and a reply through
// it carries at most what its 255 data slots hold (1020 KiB if every
// page is whole; 1012 KiB measured from a TUN's receive queue, whose
// slices end and begin inside pages): a read(2) of 1 MiB then returns that
// much and
// the rest stays queued for the next, where Linux's tcp_recvmsg would
// take all 1 MiB at once. A short read, which a stream allows.
const replyPipeSize = 2 << 20

// replyPipe is a worker's pipe for spliceReply: both ends non-blocking,
// so that a reply that would not fit is refused instead of waited for.
type replyPipe struct {
	r, w  int
	slots int // pages it holds; 0: not made (or failed: broken)
	broke bool
}

// open makes the pipe if it is not there yet; false if it cannot be made
// (then replies keep to writev).
func (p *replyPipe) open() bool {
	if p.slots > 0 {
		return true
	}
	if p.broke {
		return false
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		p.broke = true
		return false
	}
	size, err := growPipe(fds[1], replyPipeSize)
	if err != nil || size < 64<<10 {
		unix.Close(fds[0])
		unix.Close(fds[1])
		p.broke = true
		return false
	}
	p.r, p.w, p.slots = fds[0], fds[1], size/pageSize
	return true
}

// close closes the pipe (a failed reply may have left buffers in it; the
// next reply makes a new one).
func (p *replyPipe) close() {
	if p.slots > 0 {
		unix.Close(p.r)
		unix.Close(p.w)
		p.slots = 0
	}
}

func (v *replyVec) closePipe() { v.pipe.close() }

// pageSize is the unit of a pipe's slots.
var pageSize = unix.Getpagesize()

// spliceReply writes the READ reply for as much of data (n bytes) as the
// pipe holds, through it, and reports how many data bytes it took. ok is
// false, with nothing written, when the pipe cannot be had or did not
// take the whole reply: the caller then writes it with writev. A reply
// the device refused (the request is gone) sets v.err, as writev's.
func (v *replyVec) spliceReply(data [][]byte, n int) (k int, ok bool) {
	p := &v.pipe
	if !p.open() {
		return 0, false
	}
	iov := append(v.iov[:0], unix.Iovec{Base: &v.hdr[0], Len: outHeaderLen})
	slots := p.slots - 1 // the header's
	for _, d := range data {
		if len(d) == 0 || slots == 0 || k >= n {
			continue
		}
		d = d[:min(len(d), n-k)]
		start := int(uintptr(unsafe.Pointer(&d[0])) % uintptr(pageSize))
		if need := (start + len(d) + pageSize - 1) / pageSize; need > slots {
			d = d[:slots*pageSize-start]
		}
		slots -= (start + len(d) + pageSize - 1) / pageSize
		iov = append(iov, unix.Iovec{Base: &d[0], Len: uint64(len(d))})
		k += len(d)
	}
	total := outHeaderLen + k
	putOutHeader(v.hdr[:], total, 0, v.unique)
	for {
		m, _, e := syscall.Syscall6(unix.SYS_VMSPLICE, uintptr(p.w), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 || int(m) != total {
			p.close() // whatever it took stays in the old pipe, which goes
			return 0, false
		}
		break
	}
	v.w.replying()
	for {
		m, _, e := syscall.Syscall6(unix.SYS_SPLICE, uintptr(p.r), 0, uintptr(v.w.s.fd), 0, uintptr(total), 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			// The device took the buffers and refused the reply (ENOENT:
			// the request was interrupted and answered): the data was not
			// delivered and stays queued.
			p.close()
			v.err = e
			return 0, true
		}
		if int(m) != total {
			p.close()
			v.err = syscall.EIO
			return 0, true
		}
		return k, true
	}
}
