package p9

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// rawConn is a hand-built 9P client for protocol-level checks, in any of
// the three dialects. It covers Tversion, Tattach, Twalk, Topen (9P2000,
// .u) or Tlopen (.L), Tread, Twrite, Tclunk, Tstat, Tflush, and decodes
// Rerror (string; .u: string and errno) and Rlerror (errno).
type rawConn struct {
	nc net.Conn
	d  dialect
}

func pstr(s string) []byte { return append(le.AppendUint16(nil, uint16(len(s))), s...) }

func tread(tag uint16, fid uint32, off uint64, count uint32) frame {
	b := le.AppendUint32(nil, fid)
	b = le.AppendUint64(b, off)
	b = le.AppendUint32(b, count)
	return newFrame(msgTread, tag, b...)
}

func twrite(tag uint16, fid uint32, data []byte) frame {
	b := le.AppendUint32(nil, fid)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint32(b, uint32(len(data)))
	return newFrame(msgTwrite, tag, append(b, data...)...)
}

func tversion(msize uint32, v string) frame {
	return newFrame(msgTversion, noTag, append(le.AppendUint32(nil, msize), pstr(v)...)...)
}

func tflush(tag, old uint16) frame { return newFrame(msgTflush, tag, byte(old), byte(old>>8)) }

// tattach attaches fid as uid (9P2000: as uname "root" if uid is 0).
func (c *rawConn) tattach(tag uint16, fid, uid uint32) frame {
	body := le.AppendUint32(nil, fid)
	body = le.AppendUint32(body, noFid)
	uname := "root"
	if uid != 0 {
		uname = "nosuchuser"
	}
	body = append(body, pstr(uname)...)
	body = append(body, pstr("")...)
	if c.d != dialect9P {
		body = le.AppendUint32(body, uid)
	}
	return newFrame(msgTattach, tag, body...)
}

// dialRaw connects, negotiates 9P2000.L and attaches fid 1 as uid.
func dialRaw(t *testing.T, addr string, uid uint32) *rawConn {
	return dialIn(t, addr, dialectL, uid)
}

// dialIn connects, negotiates dialect d and attaches fid 1 as uid.
func dialIn(t testing.TB, addr string, d dialect, uid uint32) *rawConn {
	t.Helper()
	return dialMsize(t, addr, d, uid, 65536)
}

// dialMsize is dialIn asking for msize.
func dialMsize(t testing.TB, addr string, d dialect, uid, msize uint32) *rawConn {
	t.Helper()
	c := &rawConn{nc: dialTCP(t, addr), d: d}
	c.send(t, tversion(msize, d.String()))
	if r := c.recv(t); r.typ() != msgRversion {
		t.Fatalf("Tversion: type %d", r.typ())
	}
	c.send(t, c.tattach(1, 1, uid))
	if r := c.recv(t); r.typ() != msgRattach {
		t.Fatalf("Tattach: type %d % x", r.typ(), []byte(r))
	}
	return c
}

func (c *rawConn) send(t testing.TB, f frame) {
	t.Helper()
	if _, err := c.nc.Write(f); err != nil {
		t.Fatal(err)
	}
}

func (c *rawConn) recv(t testing.TB) frame {
	t.Helper()
	f, err := c.tryRecv(5 * time.Second)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return f
}

// tryRecv reads one message, waiting at most d.
func (c *rawConn) tryRecv(d time.Duration) (frame, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	var sz [4]byte
	if _, err := io.ReadFull(c.nc, sz[:]); err != nil {
		return nil, err
	}
	f := make(frame, le.Uint32(sz[:]))
	if len(f) < hdrLen {
		return nil, errors.New("short message")
	}
	copy(f, sz[:])
	if _, err := io.ReadFull(c.nc, f[4:]); err != nil {
		return nil, err
	}
	return f, nil
}

func (c *rawConn) expectNothing(t testing.TB, d time.Duration) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	if n, err := c.nc.Read(b[:]); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unexpected reply (%d bytes, %v)", n, err)
	}
}

// rerr is an error reply as the dialect carries it.
type rerr struct {
	text  string        // 9P2000, .u
	errno syscall.Errno // .u, .L
}

// errOf decodes f as an error reply of c's dialect; ok is false if f is
// not one.
func (c *rawConn) errOf(f frame) (e rerr, ok bool) {
	dc := dec{b: f[hdrLen:]}
	switch {
	case c.d == dialectL && f.typ() == msgRlerror:
		e.errno = syscall.Errno(dc.u32())
	case c.d == dialectU && f.typ() == msgRerror:
		e.text = dc.str()
		e.errno = syscall.Errno(dc.u32())
	case c.d == dialect9P && f.typ() == msgRerror:
		e.text = dc.str()
	default:
		return e, false
	}
	return e, dc.err == nil && len(dc.b) == 0
}

// expectErr reads a reply and checks it is the error (text, errno) in c's
// dialect: 9P2000 compares the text, .L the errno, .u both.
func (c *rawConn) expectErr(t testing.TB, tag uint16, text string, errno syscall.Errno) {
	t.Helper()
	f := c.recv(t)
	e, ok := c.errOf(f)
	if !ok || f.tag() != tag {
		t.Fatalf("%v: got type %d tag %d % x, want an error for tag %d", c.d, f.typ(), f.tag(), []byte(f), tag)
	}
	if (c.d != dialectL && e.text != text) || (c.d != dialect9P && e.errno != errno) {
		t.Fatalf("%v: error %+v, want %q / %v", c.d, e, text, errno)
	}
}

func twalk(tag uint16, fid, newfid uint32, names ...string) frame {
	body := le.AppendUint32(nil, fid)
	body = le.AppendUint32(body, newfid)
	body = le.AppendUint16(body, uint16(len(names)))
	for _, n := range names {
		body = append(body, pstr(n)...)
	}
	return newFrame(msgTwalk, tag, body...)
}

// walk walks fid to newfid and returns the reply.
func (c *rawConn) walk(t testing.TB, fid, newfid uint32, names ...string) frame {
	t.Helper()
	c.send(t, twalk(2, fid, newfid, names...))
	return c.recv(t)
}

// topen is the open message of c's dialect for open(2)'s access mode.
func (c *rawConn) topen(tag uint16, fid uint32, flags int) frame {
	if c.d == dialectL {
		return newFrame(msgTlopen, tag, le.AppendUint32(le.AppendUint32(nil, fid), uint32(flags))...)
	}
	mode := byte(oREAD)
	switch flags & syscall.O_ACCMODE {
	case syscall.O_WRONLY:
		mode = oWRITE
	case syscall.O_RDWR:
		mode = oRDWR
	}
	return newFrame(msgTopen, tag, append(le.AppendUint32(nil, fid), mode)...)
}

// openReply reports whether f answers an open in c's dialect.
func (c *rawConn) openReply(f frame) bool {
	if c.d == dialectL {
		return f.typ() == msgRlopen
	}
	return f.typ() == msgRopen
}

// walkOpen walks fid to newfid along names and opens it read-write.
func (c *rawConn) walkOpen(t testing.TB, fid, newfid uint32, names ...string) {
	t.Helper()
	c.walkOpenMode(t, fid, newfid, syscall.O_RDWR, names...)
}

func (c *rawConn) walkOpenMode(t testing.TB, fid, newfid uint32, flags int, names ...string) {
	t.Helper()
	if r := c.walk(t, fid, newfid, names...); r.typ() != msgRwalk {
		t.Fatalf("Twalk %v: type %d % x", names, r.typ(), []byte(r))
	}
	c.send(t, c.topen(3, newfid, flags))
	r := c.recv(t)
	if !c.openReply(r) {
		t.Fatalf("open %v: type %d % x", names, r.typ(), []byte(r))
	}
	if iounit := le.Uint32(r[hdrLen+qidLen:]); iounit != 0 {
		t.Fatalf("iounit %d", iounit)
	}
}

// read sends a Tread and returns the data of its Rread.
func (c *rawConn) read(t testing.TB, fid uint32, count uint32) string {
	t.Helper()
	c.send(t, tread(4, fid, 0, count))
	r := c.recv(t)
	if r.typ() != msgRread {
		t.Fatalf("Tread: type %d % x", r.typ(), []byte(r))
	}
	return string(r[hdrLen+4:])
}

// write sends a Twrite and fails unless it is answered Rwrite.
func (c *rawConn) write(t testing.TB, fid uint32, s string) {
	t.Helper()
	c.send(t, twrite(5, fid, []byte(s)))
	if r := c.recv(t); r.typ() != msgRwrite {
		e, _ := c.errOf(r)
		t.Fatalf("Twrite %q: type %d %+v", s, r.typ(), e)
	}
}

var dialects = []dialect{dialect9P, dialectU, dialectL}

// dialTCP connects to addr; the test's cleanup closes the connection.
func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}
