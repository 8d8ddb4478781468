package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/client"

	"sockfs/fs"
	"sockfs/fs/p9"
)

// nineFS is what the 9P client scenario needs of a client: list a
// directory, open a file by path with a Plan 9 open mode.
type nineFS interface {
	list(path string) ([]string, error)
	open(path string, mode uint8) (nineFile, error)
}

// nineFile is an open file: Read is one Tread (io.EOF at 0 bytes), Write
// one Twrite.
type nineFile interface {
	io.ReadWriteCloser
}

// p9Target is a sockfs stack on a TUN device whose kernel side is in a
// namespace, with its tree served over 9P on 127.0.0.1 in this process,
// and a kernel HTTP server in the namespace on 198.18.0.1:8080 serving
// hello.txt.
type p9Target struct {
	ns   *netns
	addr string
}

func newP9Target(t *testing.T, tun string) *p9Target {
	t.Helper()
	needRoot(t)
	needTool(t, "python3")
	ns := newNetns(t)
	st := stackInNetns(t, ns, tun)
	tree := fs.New(st, fs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p9.Serve(ctx, ln, tree.Root(), p9.Options{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the kernel's HTTP server\n"), 0644); err != nil {
		t.Fatal(err)
	}
	srv := ns.cmd("python3", "-m", "http.server", "--bind", "198.18.0.1", "--directory", dir, "8080")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := ns.run("python3", "-c", "import socket; socket.create_connection(('198.18.0.1', 8080), 1)"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("python3 http.server did not start")
		}
	}
	return &p9Target{ns: ns, addr: ln.Addr().String()}
}

// readAll reads f to EOF.
func readAll(f nineFile) (string, error) {
	var out []byte
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return string(out), nil
		}
		if err != nil {
			return string(out), err
		}
	}
}

func open9(t *testing.T, c nineFS, path string, mode uint8) nineFile {
	t.Helper()
	f, err := c.open(path, mode)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return f
}

func mustWrite(t *testing.T, f nineFile, s string) {
	t.Helper()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// cloneConv opens tcp/clone and returns the ctl and the conversation number.
func cloneConv(t *testing.T, c nineFS) (nineFile, string) {
	t.Helper()
	ctl := open9(t, c, "tcp/clone", plan9.ORDWR)
	buf := make([]byte, 32)
	n, err := ctl.Read(buf)
	if err != nil {
		t.Fatalf("read clone: %v", err)
	}
	return ctl, string(buf[:n])
}

// p9Scenario is the acceptance scenario of a 9P client: it lists the
// tree, reads sys/ipv4/tcp_rmem, fetches a page from the kernel's HTTP
// server through tcp/clone, ctl and data, gets "connection refused" as
// the error of a refused connect, and serves an echo to a kernel client
// through announce and listen. It returns the refused connect's error.
func (p *p9Target) scenario(t *testing.T, c nineFS) error {
	t.Helper()
	names, err := c.list("/")
	if err != nil {
		t.Fatalf("list /: %v", err)
	}
	for _, want := range []string{"tcp", "udp", "sys", "cs", "ipifc"} {
		if !slices.Contains(names, want) {
			t.Fatalf("/ lists %v, lacks %s", names, want)
		}
	}
	if names, err := c.list("tcp"); err != nil || !slices.Contains(names, "clone") {
		t.Fatalf("list tcp: %v %v", names, err)
	}
	f := open9(t, c, "sys/ipv4/tcp_rmem", plan9.OREAD)
	if s, err := readAll(f); err != nil || !strings.HasPrefix(s, "4096\t131072\t") {
		t.Fatalf("tcp_rmem %q %v", s, err)
	}
	f.Close()

	// HTTP client.
	ctl, n := cloneConv(t, c)
	mustWrite(t, ctl, "connect 198.18.0.1!8080")
	data := open9(t, c, "tcp/"+n+"/data", plan9.ORDWR)
	mustWrite(t, data, "GET /hello.txt HTTP/1.0\r\n\r\n")
	page, err := readAll(data)
	if err != nil || !strings.HasPrefix(page, "HTTP/1.0 200") || !strings.HasSuffix(page, "\r\n\r\nhello from the kernel's HTTP server\n") {
		t.Fatalf("HTTP reply %q %v", page, err)
	}
	data.Close()
	ctl.Close()

	// A refused connect: nothing listens on port 9.
	ctl, _ = cloneConv(t, c)
	_, refused := ctl.Write([]byte("connect 198.18.0.1!9"))
	if refused == nil || refused.Error() != "connection refused" {
		t.Fatalf("refused connect: %v, want \"connection refused\"", refused)
	}
	_, bad := ctl.Write([]byte("frobnicate"))
	if bad == nil || bad.Error() != "unknown control request" {
		t.Fatalf("bad ctl: %v, want \"unknown control request\"", bad)
	}
	ctl.Close()

	// Echo server for a kernel client.
	ctl, n = cloneConv(t, c)
	mustWrite(t, ctl, "announce 7777")
	out := make(chan string, 1)
	go func() {
		s, err := p.ns.run("python3", "-c", `
import socket
s = socket.create_connection(("198.18.0.2", 7777), 10)
s.sendall(b"ping")
print(s.recv(100).decode())
`)
		if err != nil {
			s = fmt.Sprintf("python: %v %s", err, s)
		}
		out <- s
	}()
	lst := open9(t, c, "tcp/"+n+"/listen", plan9.ORDWR)
	buf := make([]byte, 100)
	k, err := lst.Read(buf)
	if err != nil {
		t.Fatalf("read listen: %v", err)
	}
	cdata := open9(t, c, "tcp/"+string(buf[:k])+"/data", plan9.ORDWR)
	if k, err = cdata.Read(buf); err != nil || string(buf[:k]) != "ping" {
		t.Fatalf("echo server read %q %v", buf[:k], err)
	}
	mustWrite(t, cdata, "echo:ping")
	cdata.Close()
	lst.Close()
	ctl.Close()
	if s := <-out; s != "echo:ping\n" {
		t.Fatalf("kernel client got %q", s)
	}
	return refused
}

// plan9portFS is plan9port's Go client (9fans.net/go/plan9/client), which
// speaks plain 9P2000 as Plan 9, 9front and plan9port's tools do.
type plan9portFS struct{ fsys *client.Fsys }

func (p plan9portFS) open(path string, mode uint8) (nineFile, error) {
	return p.fsys.Open(path, mode)
}

func (p plan9portFS) list(path string) ([]string, error) {
	f, err := p.fsys.Open(path, plan9.OREAD)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dirs, err := f.Dirreadall()
	var names []string
	for _, d := range dirs {
		names = append(names, d.Name)
	}
	return names, err
}

// TestP9Plan9portClient: plan9port's Go client attaches in 9P2000 and runs
// the scenario against the kernel in a namespace; the error strings are
// Plan 9's.
func TestP9Plan9portClient(t *testing.T) {
	p := newP9Target(t, "sfp9p0")
	conn, err := client.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fsys, err := conn.Attach(nil, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	p.scenario(t, plan9portFS{fsys})
	st, err := fsys.Stat("tcp")
	if err != nil || st.Mode&plan9.DMDIR == 0 || st.Uid != "root" {
		t.Fatalf("stat tcp: %+v %v, want a directory owned by root", st, err)
	}

	// data's length is the bytes queued, as devip's stat gives qlen(rq):
	// the whole reply once the server has closed, none after reading it.
	ctl, n := cloneConv(t, plan9portFS{fsys})
	defer ctl.Close()
	mustWrite(t, ctl, "connect 198.18.0.1!8080")
	data := open9(t, plan9portFS{fsys}, "tcp/"+n+"/data", plan9.ORDWR)
	defer data.Close()
	mustWrite(t, data, "GET /hello.txt HTTP/1.0\r\n\r\n")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f := open9(t, plan9portFS{fsys}, "tcp/"+n+"/status", plan9.OREAD)
		s, _ := readAll(f)
		f.Close()
		if strings.HasPrefix(s, "Close_wait") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HTTP server did not close: status %q", s)
		}
	}
	st, err = fsys.Stat("tcp/" + n + "/data")
	if err != nil {
		t.Fatal(err)
	}
	page, err := readAll(data)
	if err != nil || int(st.Length) != len(page) || !strings.HasSuffix(page, "hello from the kernel's HTTP server\n") {
		t.Fatalf("stat length %d before reading a reply of %d bytes (%v)", st.Length, len(page), err)
	}
	if st, err = fsys.Stat("tcp/" + n + "/data"); err != nil || st.Length != 0 {
		t.Fatalf("stat length %d after reading it all (%v)", st.Length, err)
	}

	// wstat: the owner changes the conversation's mode through ctl (and
	// ctl, data, err show it); status refuses with Plan 9's text.
	var d plan9.Dir
	d.Null()
	d.Mode = 0664
	if err := ctl.(*client.Fid).Wstat(&d); err != nil {
		t.Fatalf("wstat ctl: %v", err)
	}
	if st, err := fsys.Stat("tcp/" + n + "/data"); err != nil || st.Mode&0777 != 0664 {
		t.Fatalf("data after wstat 0664: %+v %v", st, err)
	}
	sf, err := fsys.Open("tcp/"+n+"/status", plan9.OREAD)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if err := sf.Wstat(&d); err == nil || err.Error() != "permission denied" {
		t.Fatalf("wstat status: %v, want \"permission denied\"", err)
	}
}

// uClient is a hand-built 9P2000.u client, one request at a time. It
// covers Tversion, Tattach (with n_uname), Twalk, Topen, Tread (files and
// directories: .u stat entries), Twrite and Tclunk, and decodes Rerror
// with its string and errno.
type uClient struct {
	mu      sync.Mutex
	nc      net.Conn
	nextFid uint32
}

// uError is an Rerror of 9P2000.u.
type uError struct {
	text  string
	errno syscall.Errno
}

func (e *uError) Error() string { return e.text }

var le = binary.LittleEndian

func pstr(b []byte, s string) []byte { return append(le.AppendUint16(b, uint16(len(s))), s...) }

// rpc sends one message and returns the body of its reply.
func (c *uClient) rpc(typ uint8, body []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := le.AppendUint32(nil, uint32(7+len(body)))
	m = append(m, typ, 1, 0)
	if typ == 100 { // Tversion: NOTAG
		m[5], m[6] = 0xff, 0xff
	}
	m = append(m, body...)
	if _, err := c.nc.Write(m); err != nil {
		return nil, err
	}
	var hdr [7]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		return nil, err
	}
	r := make([]byte, le.Uint32(hdr[:])-7)
	if _, err := io.ReadFull(c.nc, r); err != nil {
		return nil, err
	}
	switch hdr[4] {
	case typ + 1:
		return r, nil
	case 107: // Rerror: ename[s] errno[4]
		n := le.Uint16(r)
		return nil, &uError{text: string(r[2 : 2+n]), errno: syscall.Errno(le.Uint32(r[2+n:]))}
	}
	return nil, fmt.Errorf("reply type %d to %d", hdr[4], typ)
}

func dialU(t *testing.T, addr string) *uClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &uClient{nc: nc, nextFid: 1}
	r, err := c.rpc(100, pstr(le.AppendUint32(nil, 65536), "9P2000.u"))
	if err != nil || string(r[6:]) != "9P2000.u" {
		t.Fatalf("Tversion: %q %v", r, err)
	}
	body := le.AppendUint32(nil, 1)          // fid
	body = le.AppendUint32(body, ^uint32(0)) // afid
	body = pstr(pstr(body, "root"), "")
	body = le.AppendUint32(body, 0) // n_uname
	if _, err := c.rpc(104, body); err != nil {
		t.Fatalf("Tattach: %v", err)
	}
	return c
}

// uFile is an open fid.
type uFile struct {
	c   *uClient
	fid uint32
	off uint64
}

func (c *uClient) open(path string, mode uint8) (nineFile, error) {
	c.mu.Lock()
	c.nextFid++
	fid := c.nextFid
	c.mu.Unlock()
	var names []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			names = append(names, s)
		}
	}
	body := le.AppendUint32(le.AppendUint32(nil, 1), fid)
	body = le.AppendUint16(body, uint16(len(names)))
	for _, n := range names {
		body = pstr(body, n)
	}
	r, err := c.rpc(110, body)
	if err != nil {
		return nil, err
	}
	if int(le.Uint16(r)) != len(names) {
		return nil, &uError{text: "file does not exist", errno: syscall.ENOENT}
	}
	f := &uFile{c: c, fid: fid}
	if _, err := c.rpc(112, append(le.AppendUint32(nil, fid), mode)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *uFile) Read(p []byte) (int, error) {
	body := le.AppendUint32(le.AppendUint64(le.AppendUint32(nil, f.fid), f.off), uint32(len(p)))
	r, err := f.c.rpc(116, body)
	if err != nil {
		return 0, err
	}
	n := copy(p, r[4:4+le.Uint32(r)])
	f.off += uint64(n)
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (f *uFile) Write(p []byte) (int, error) {
	body := le.AppendUint32(le.AppendUint64(le.AppendUint32(nil, f.fid), f.off), uint32(len(p)))
	r, err := f.c.rpc(118, append(body, p...))
	if err != nil {
		return 0, err
	}
	return int(le.Uint32(r)), nil
}

func (f *uFile) Close() error {
	_, err := f.c.rpc(120, le.AppendUint32(nil, f.fid))
	return err
}

// list reads a directory's .u stat entries: size[2] type[2] dev[4]
// qid[13] mode[4] atime[4] mtime[4] length[8] name[s] ... .
func (c *uClient) list(path string) ([]string, error) {
	f, err := c.open(path, plan9.OREAD)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		return nil, err
	}
	var names []string
	for len(b) >= 2 {
		size := int(le.Uint16([]byte(b)))
		e := b[2 : 2+size]
		n := int(le.Uint16([]byte(e[39:])))
		names = append(names, e[41:41+n])
		b = b[2+size:]
	}
	return names, nil
}

// TestP9UClient: a hand-built 9P2000.u client runs the scenario; the
// refused connect's Rerror carries both "connection refused" and
// ECONNREFUSED.
func TestP9UClient(t *testing.T) {
	p := newP9Target(t, "sfp9u0")
	err := p.scenario(t, dialU(t, p.addr))
	var ue *uError
	if !errors.As(err, &ue) || ue.errno != syscall.ECONNREFUSED {
		t.Fatalf("refused connect: %#v, want errno ECONNREFUSED", err)
	}
}
