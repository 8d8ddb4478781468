package p9

import (
	"errors"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"sockfs/fs"
)

// readSpliced answers a Tread of a TCP conversation's data from the
// receive queue's own bytes (fs.Splicer's ReadTo: netstack's RecvTo,
// tcp_read_sock's actor with tcp_recvmsg_locked's waits): the actor,
// rreadVec.TakeRecv, writes the Rread's header and the skbs' slices with
// one writev, so the kernel's copy into the connection's socket is the
// only copy of the data between the queue and the client. The data is
// consumed only once its Rread is on its way whole. It returns
// errAnswered when the reply went out (or was dropped) there. Only for a
// connection with a descriptor (conn.rw); others copy (conn.read).
func (c *conn) readSpliced(r *request, sp fs.Splicer, count uint32) ([]byte, error) {
	v := r.spliceVec(c)
	n, err := sp.ReadTo(&r.ctx, int(count), v.iov[:0], v)
	v.finish()
	switch {
	case v.sent:
		return nil, errAnswered
	case r.try && n == 0 && errors.Is(err, syscall.EINTR):
		return nil, errWouldBlock
	case err != nil:
		return nil, err
	}
	// The end of the stream: no slices, no writev; an empty Rread.
	e := enc{b: r.small[:0]}
	e.start(msgRread, r.tag)
	e.u32(0)
	return e.finish(), nil
}

// maxSpliceSlices bounds the receive queue slices of one spliced Rread:
// IOV_MAX (1024) less the header's. At msize 1 MiB that is at least 1 KiB
// per slice; a queue in smaller pieces gives a shorter Rread.
const maxSpliceSlices = 1023

// rreadVec is a request's RecvActor for a spliced Tread.
type rreadVec struct {
	c   *conn
	r   *request
	hdr [hdrLen + 4]byte
	iov [][]byte     // storage for RecvTo's slices
	wv  []unix.Iovec // the writev's vector: hdr, then the slices
	// sent: the reply was written, or dropped with its request: the
	// request has been retired and has nothing left to send.
	sent bool
	// rest: what the socket did not take at once, copied; it is written
	// by finish, with wmu still held from TakeRecv, once the receive
	// queue is let go.
	rest *[]byte
}

// spliceVec returns r's rreadVec, ready for a Tread on c.
func (r *request) spliceVec(c *conn) *rreadVec {
	if r.rv == nil {
		r.rv = &rreadVec{iov: make([][]byte, 0, maxSpliceSlices), wv: make([]unix.Iovec, 0, maxSpliceSlices+1)}
	}
	v := r.rv
	v.c, v.r, v.sent = c, r, false
	return v
}

// TakeRecv sends r's Rread with the n bytes of data: under wmu, as
// conn.write, with r retired first. It runs with the conversation's
// socket owned (segments that arrive meanwhile wait in its backlog), so it
// must not wait for the client: the writev is tried without waiting
// (conn.rw), and what the connection's socket does not take at once is
// copied out (rest) and written by finish after the socket is released,
// wmu held until then, as the Rread is part way onto the wire. All n bytes
// are consumed then; none if nothing could be sent: a request dropped by
// a Tversion, or a connection that can no longer be written (the data
// stays queued for the next read).
func (v *rreadVec) TakeRecv(data [][]byte, n int) (int, error) {
	c, r := v.c, v.r
	e := enc{b: v.hdr[:0]}
	e.start(msgRread, r.tag)
	e.u32(uint32(n))
	le.PutUint32(v.hdr[0:4], uint32(len(v.hdr)+n))
	c.wmu.Lock()
	c.retire(r)
	v.sent = true
	if r.dropped || c.werr != nil {
		c.wmu.Unlock()
		return 0, nil
	}
	wv := append(v.wv[:0], unix.Iovec{Base: &v.hdr[0], Len: uint64(len(v.hdr))})
	for _, d := range data {
		if len(d) > 0 {
			wv = append(wv, unix.Iovec{Base: &d[0], Len: uint64(len(d))})
		}
	}
	wrote, err := c.rw.do(wv)
	clear(wv) // no references to the queue's skbs past the call
	if err != nil {
		c.werr = err
		c.cancel()
		c.wmu.Unlock()
		return 0, nil
	}
	total := len(v.hdr) + n
	if wrote == total {
		c.wmu.Unlock()
		return n, nil
	}
	restWrites.Add(1)
	v.rest = getFrame(total - wrote)
	copyFrom(*v.rest, wrote, v.hdr[:], data)
	return n, nil // wmu stays held: finish writes the rest
}

// restWrites counts the spliced Rreads the socket did not take whole at
// once, in every connection (for tests).
var restWrites atomic.Int64

// finish writes what TakeRecv left (rest) and lets wmu go.
func (v *rreadVec) finish() {
	if v.rest == nil {
		return
	}
	c := v.c
	if _, err := c.nc.Write(*v.rest); err != nil {
		c.werr = err
		c.cancel()
	}
	putFrame(v.rest)
	v.rest = nil
	c.wmu.Unlock()
}

// copyFrom fills p with the bytes of the pieces (hdr, then data) from
// byte off of their concatenation on.
func copyFrom(p []byte, off int, hdr []byte, data [][]byte) {
	done := 0
	for i := -1; i < len(data); i++ {
		d := hdr
		if i >= 0 {
			d = data[i]
		}
		if off >= len(d) {
			off -= len(d)
			continue
		}
		done += copy(p[done:], d[off:])
		off = 0
	}
}
