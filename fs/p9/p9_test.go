package p9

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"

	"sockfs/fs"

	"sockfs/netstack/link"
	"sockfs/netstack/stacktest"
	"sockfs/skb"
)

// env is two stacks (198.18.0.1 and .2) joined by an in-memory pipe on a
// real clock. A's tree is served over 9P on 127.0.0.1; B's tree is used
// directly, as the far end of A's conversations.
type env struct {
	ta, tb *fs.Tree
	addr   string
}

func newEnv(t testing.TB) *env { return newEnvMsize(t, 0) }

// newEnvMsize is newEnv with the server's MaxMsize set.
func newEnvMsize(t testing.TB, maxMsize uint32) *env {
	t.Helper()
	return newEnvWith(t, maxMsize, nil)
}

// newEnvWith is newEnvMsize with A's device passed through wrapA
// (stacktest.PairWrapped).
func newEnvWith(t testing.TB, maxMsize uint32, wrapA func(link.Device) link.Device) *env {
	t.Helper()
	sa, sb := stacktest.PairWrapped(t, wrapA)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{ta: fs.New(sa, fs.Options{Logger: log}), tb: fs.New(sb, fs.Options{Logger: log})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, e.ta.Root(), Options{Logger: log, MaxMsize: maxMsize}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
	})
	return e
}

// client attaches to the server as uid (noUID: as p9's client does by
// itself, without a uid).
func (e *env) client(t testing.TB, uid uint32) (*p9.Client, p9.File) {
	t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p9.NewClient(&uidConn{Conn: nc, uid: uid}, p9.WithMessageSize(DefaultMsize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	root, err := c.Attach("")
	if err != nil {
		t.Fatal(err)
	}
	return c, root
}

// uidConn puts uid into the n_uname of the Tattach messages hugelgupf/p9's
// client writes through it (the client has no way to attach as a user: it
// sends n_uname ~0). The client writes a message in several pieces; uidConn
// sends each message whole once it has it.
type uidConn struct {
	net.Conn
	uid uint32
	buf []byte
}

func (c *uidConn) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 4 {
		size := int(le.Uint32(c.buf))
		if size < hdrLen || len(c.buf) < size {
			break
		}
		m := c.buf[:size]
		if m[4] == msgTattach && le.Uint32(m[size-4:]) == noUID {
			le.PutUint32(m[size-4:], c.uid)
		}
		if _, err := c.Conn.Write(m); err != nil {
			return 0, err
		}
		c.buf = append(c.buf[:0], c.buf[size:]...)
	}
	return len(p), nil
}

func walkTo(t testing.TB, root p9.File, path string) p9.File {
	t.Helper()
	_, f, err := root.Walk(strings.Split(path, "/"))
	if err != nil {
		t.Fatalf("walk %s: %v", path, err)
	}
	return f
}

func openP9(t testing.TB, root p9.File, path string, flags p9.OpenFlags) p9.File {
	t.Helper()
	f := walkTo(t, root, path)
	_, iounit, err := f.Open(flags)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	if iounit != 0 {
		t.Fatalf("open %s: iounit %d, want 0", path, iounit)
	}
	return f
}

// readAll reads f from offset 0 to EOF.
func readAll(t testing.TB, f p9.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := f.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return string(out)
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
}

// local opens a file of a tree directly, for reading and writing.
func local(t testing.TB, tr *fs.Tree, path string) fs.Handle {
	t.Helper()
	h := openPath(t, tr.Root(), path, syscall.O_RDWR)
	t.Cleanup(h.Release)
	return h
}

// openPath walks path from root and opens the file there with flags.
func openPath(t testing.TB, root fs.Dir, path string, flags int) fs.Handle {
	t.Helper()
	var n fs.Node = root
	for _, name := range strings.Split(path, "/") {
		c, err := n.(fs.Dir).Lookup(name)
		if err != nil {
			t.Fatalf("lookup %s: %v", path, err)
		}
		n = c
	}
	h, err := n.(fs.File).Open(context.Background(), fs.OpenReq{Flags: flags})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return h
}

func readNum(t testing.TB, h fs.Handle) string {
	t.Helper()
	buf := make([]byte, 32)
	n, err := h.Read(context.Background(), buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func write(t testing.TB, h fs.Handle, s string) {
	t.Helper()
	if _, err := h.Write(context.Background(), []byte(s), 0); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// TestTwritePushedBesideNextMessage: a large Twrite answered on the
// reading goroutine leaves its push to a worker, so the connection reads
// and answers the client's next message while the push is still in the
// device. The device here (gatedDevice) holds every transmit until the
// test lets it go: a stand-in for the TUN, whose write(2) runs the
// kernel's TCP receive and takes long. Before the push moved to a
// worker, the reading goroutine sat in the device, and the Twalk sent
// behind the Twrite got no answer until the push was done.
func TestTwritePushedBesideNextMessage(t *testing.T) {
	gate := &gatedDevice{}
	e := newEnvWith(t, 0, func(d link.Device) link.Device { gate.Device = d; return gate })
	n, bdata := e.localPair(t, 7410)
	write(t, local(t, e.ta, "tcp/"+n+"/ctl"), "sndbuf 1000000")
	rc := dialMsize(t, e.addr, dialectL, 0, DefaultMsize)
	rc.walkOpen(t, 1, 2, "tcp", n, "data")
	defer gate.open() // before the cleanups, which close through the device
	msg := bytes.Repeat([]byte("0123456789abcdef"), (128<<10)/16)
	inline, pushed := handoffs.Load(), pushHandoffs.Load()
	gate.shut()
	rc.send(t, twrite(5, 2, msg))
	if r := rc.recv(t); r.typ() != msgRwrite {
		t.Fatalf("Twrite answered with type %d", r.typ())
	}
	rc.send(t, twalk(6, 1, 3, "tcp"))
	r, err := rc.tryRecv(2 * time.Second)
	gate.open()
	if err != nil {
		t.Fatalf("no answer to a Twalk sent behind a Twrite whose push is held in the device: %v", err)
	}
	if r.typ() != msgRwalk || r.tag() != 6 {
		t.Fatalf("Twalk answered with type %d tag %d", r.typ(), r.tag())
	}
	if handoffs.Load() != inline || pushHandoffs.Load() == pushed {
		t.Fatal("the Twrite was not answered on the reading goroutine with its push handed off: the test does not cover that path")
	}
	if got := drainString(t, bdata, len(msg)); got != string(msg) {
		t.Fatal("B got other bytes than were written")
	}
}

// gatedDevice is a link device whose transmits, while the gate is shut,
// wait until it opens.
type gatedDevice struct {
	link.Device
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (g *gatedDevice) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

func (g *gatedDevice) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedDevice) Xmit(batch []*skb.SKB) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	g.Device.Xmit(batch)
}

// tcpPair connects a 9P-driven conversation of A to a listener on B. It
// returns A's open ctl and data fids and B's data handle.
func (e *env) tcpPair(t testing.TB, root p9.File, port int) (ctl, data p9.File, bdata fs.Handle) {
	t.Helper()
	bctl := local(t, e.tb, "tcp/clone")
	write(t, bctl, "announce "+strconv.Itoa(port))
	bn := readNum(t, bctl)
	type accepted struct {
		h   fs.Handle
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		var n fs.Node = e.tb.Root()
		for _, name := range []string{"tcp", bn, "listen"} {
			n, _ = n.(fs.Dir).Lookup(name)
		}
		h, err := n.(fs.File).Open(context.Background(), fs.OpenReq{Flags: syscall.O_RDWR})
		acc <- accepted{h, err}
	}()

	ctl = openP9(t, root, "tcp/clone", p9.ReadWrite)
	t.Cleanup(func() { ctl.Close() })
	n := readAll(t, ctl)
	if _, err := strconv.Atoi(n); err != nil {
		t.Fatalf("clone read %q", n)
	}
	if _, err := ctl.WriteAt([]byte("connect 198.18.0.2!"+strconv.Itoa(port)), 0); err != nil {
		t.Fatalf("connect: %v", err)
	}
	data = openP9(t, root, "tcp/"+n+"/data", p9.ReadWrite)
	t.Cleanup(func() { data.Close() })

	var a accepted
	select {
	case a = <-acc:
	case <-time.After(5 * time.Second):
		t.Fatal("listen did not return")
	}
	if a.err != nil {
		t.Fatalf("listen: %v", a.err)
	}
	t.Cleanup(a.h.Release)
	bdata = local(t, e.tb, "tcp/"+readNum(t, a.h)+"/data")
	return ctl, data, bdata
}

// TestWalkListAndSysctl: the tree lists over 9P, a sysctl reads in Linux
// format, a root write changes it, a bad write is EINVAL and changes
// nothing, and an attach without a uid (nobody) may not write it.
func TestWalkListAndSysctl(t *testing.T) {
	e := newEnv(t)
	_, root := e.client(t, 0)

	_, dir, err := root.Walk(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dir.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	var names []string
	var off uint64
	for {
		ents, err := dir.Readdir(off, 512)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			break
		}
		for _, d := range ents {
			names = append(names, d.Name)
			off = d.Offset
		}
	}
	dir.Close()
	for _, want := range []string{"tcp", "udp", "sys", "ipifc", "iproute", "sockstat"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("root lists %v, lacks %s", names, want)
		}
	}
	qids, tcp, err := root.Walk([]string{"tcp"})
	if err != nil || len(qids) != 1 || qids[0].Type != p9.TypeDir {
		t.Fatalf("walk tcp: %v %v", qids, err)
	}
	if _, _, a, err := tcp.GetAttr(p9.AttrMaskAll); err != nil || !a.Mode.IsDir() {
		t.Fatalf("getattr tcp: %v %v", a, err)
	}
	if _, _, err := root.Walk([]string{"nonesuch"}); !errors.Is(err, linux.ENOENT) {
		t.Fatalf("walk nonesuch: %v, want ENOENT", err)
	}

	const path = "sys/ipv4/tcp_rmem"
	f := openP9(t, root, path, p9.ReadWrite)
	if got := readAll(t, f); !strings.HasPrefix(got, "4096\t131072\t") || !strings.HasSuffix(got, "\n") {
		t.Fatalf("tcp_rmem %q", got)
	}
	if _, err := f.WriteAt([]byte("4096\t131072\t6291456\n"), 0); err != nil {
		t.Fatalf("write tcp_rmem: %v", err)
	}
	f.Close()
	f = openP9(t, root, path, p9.ReadWrite)
	if _, err := f.WriteAt([]byte("abc"), 0); !errors.Is(err, linux.EINVAL) {
		t.Fatalf("bad write: %v, want EINVAL", err)
	}
	if got := readAll(t, f); got != "4096\t131072\t6291456\n" {
		t.Fatalf("tcp_rmem after writes %q", got)
	}
	f.Close()

	_, anon := e.client(t, noUID)
	g := walkTo(t, anon, path)
	if _, _, err := g.Open(p9.WriteOnly); !errors.Is(err, linux.EACCES) {
		t.Fatalf("open for writing by nobody: %v, want EACCES", err)
	}
}

// TestClientScenario: clone, ctl connect, data write and read through 9P,
// against a listener on the other stack.
func TestClientScenario(t *testing.T) {
	e := newEnv(t)
	_, root := e.client(t, 1000)
	ctl, data, bdata := e.tcpPair(t, root, 7000)

	if _, err := data.WriteAt([]byte("hello over 9p"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := bdata.Read(ctx, buf, 0)
	if err != nil || string(buf[:n]) != "hello over 9p" {
		t.Fatalf("B read %q %v", buf[:n], err)
	}
	write(t, bdata, "and back")
	n, err = data.ReadAt(buf, 0)
	if err != nil || string(buf[:n]) != "and back" {
		t.Fatalf("A read %q %v", buf[:n], err)
	}
	// The conversation is the attaching user's.
	_, _, a, err := walkTo(t, root, "tcp/0/data").GetAttr(p9.AttrMaskAll)
	if err != nil || a.UID != 1000 {
		t.Fatalf("data owner %v %v, want uid 1000", a.UID, err)
	}
	_, other := e.client(t, 1001)
	if _, _, err := walkTo(t, other, "tcp/0/data").Open(p9.ReadWrite); !errors.Is(err, linux.EACCES) {
		t.Fatalf("open by another uid: %v, want EACCES", err)
	}
	status := readAll(t, openP9(t, root, "tcp/0/status", p9.ReadOnly))
	if !strings.HasPrefix(status, "Established") {
		t.Fatalf("status %q", status)
	}
	if _, err := ctl.WriteAt([]byte("bogus"), 0); !errors.Is(err, linux.EINVAL) {
		t.Fatalf("bogus ctl: %v, want EINVAL", err)
	}
}

// blockedRead starts a read of f in the background.
func blockedRead(f p9.File, size int) chan string {
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, size)
		n, err := f.ReadAt(buf, 0)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	return got
}

func expectBlocked(t *testing.T, got chan string) {
	t.Helper()
	select {
	case s := <-got:
		t.Fatalf("read returned %q, want it blocked", s)
	case <-time.After(200 * time.Millisecond):
	}
}

// readFull reads from f (a stream) until want bytes arrived; after 5 s it
// closes c, so a read that would block forever fails instead.
func readFull(t *testing.T, c *p9.Client, f p9.File, want int) string {
	t.Helper()
	timer := time.AfterFunc(5*time.Second, func() { c.Close() })
	defer timer.Stop()
	var out []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		n, err := f.ReadAt(buf, 0)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, buf[:n]...)
	}
	return string(out)
}

// TestBlockedReadDoesNotStall: while a data read is blocked, the same
// connection gets answers for getattr, setattr (truncation), walk, open and
// read of the same file, and rename/remove attempts; then the read gets
// its data.
func TestBlockedReadDoesNotStall(t *testing.T) {
	e := newEnv(t)
	_, root := e.client(t, 0)
	ctl, data, bdata := e.tcpPair(t, root, 7001)
	got := blockedRead(data, 1000)
	expectBlocked(t, got)

	start := time.Now()
	if _, _, _, err := data.GetAttr(p9.AttrMaskAll); err != nil {
		t.Fatalf("getattr: %v", err)
	}
	if err := data.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 0}); err != nil {
		t.Fatalf("setattr: %v", err)
	}
	_, dir, err := root.Walk([]string{"tcp", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.RenameAt("data", dir, "x"); !errors.Is(err, linux.EPERM) {
		t.Fatalf("renameat: %v, want EPERM", err)
	}
	again := walkTo(t, root, "tcp/0/data")
	if err := again.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{}); err != nil {
		t.Fatalf("setattr: %v", err)
	}
	if err := again.(interface{ Remove() error }).Remove(); !errors.Is(err, linux.EPERM) {
		t.Fatalf("remove: %v, want EPERM", err)
	}
	st := readAll(t, openP9(t, root, "tcp/0/status", p9.ReadOnly))
	if !strings.HasPrefix(st, "Established") {
		t.Fatalf("status %q", st)
	}
	if _, err := ctl.WriteAt([]byte("nodelay on"), 0); err != nil {
		t.Fatalf("ctl: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("other requests took %v while a read was blocked", d)
	}
	expectBlocked(t, got)
	write(t, bdata, "finally")
	select {
	case s := <-got:
		if s != "finally" {
			t.Fatalf("blocked read got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked read never returned")
	}
}

// TestTauthSaysNoAuth: Tauth is answered ENOENT ("no authentication
// needed"), which is what diod's clients check for.
func TestTauthSaysNoAuth(t *testing.T) {
	e := newEnv(t)
	rc := dialRaw(t, e.addr, 0)
	body := append(append(append([]byte{}, 0xff, 0xff, 0xff, 0xff), pstr("root")...), pstr("")...)
	body = le.AppendUint32(body, 0)
	rc.send(t, newFrame(msgTauth, 1, body...))
	r := rc.recv(t)
	if r.typ() != msgRlerror || le.Uint32(r[hdrLen:]) != uint32(syscall.ENOENT) {
		t.Fatalf("Tauth answered type %d % x, want Rlerror(ENOENT)", r.typ(), []byte(r))
	}
}

// TestMsizeCapped: a client asking for more than MaxMsize gets MaxMsize.
func TestMsizeCapped(t *testing.T) {
	e := newEnv(t)
	rc := &rawConn{nc: dialTCP(t, e.addr), d: dialectL}
	rc.send(t, tversion(4<<20, "9P2000.L"))
	r := rc.recv(t)
	if r.typ() != msgRversion || le.Uint32(r[hdrLen:]) != DefaultMsize {
		t.Fatalf("Rversion % x, want msize %d", []byte(r), DefaultMsize)
	}
}

// TestServeStopsWithBlockedRead: ending Serve's context closes live
// connections, cancels their blocked reads, and Serve returns.
func TestServeStopsWithBlockedRead(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, e.ta.Root(), Options{}) }()
	e2 := &env{ta: e.ta, tb: e.tb, addr: ln.Addr().String()}
	_, root := e2.client(t, 0)
	ctl := openP9(t, root, "udp/clone", p9.ReadWrite)
	n := readAll(t, ctl)
	if _, err := ctl.WriteAt([]byte("announce 7800"), 0); err != nil {
		t.Fatal(err)
	}
	got := blockedRead(openP9(t, root, "udp/"+n+"/data", p9.ReadOnly), 100)
	expectBlocked(t, got)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Serve took %v to stop", d)
	}
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "error") {
			t.Fatalf("read returned %q after the server stopped", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client read still blocked after the server stopped")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still open")
	}
}

// TestReadWhileOpenInFlight: a Tread on a fid whose Tlopen has not been
// answered (here a listen open, blocked until a call arrives) gets
// Rlerror(EBADF) at once; p9 v0.3.0 would race on the fid's open state.
// The open itself is unaffected: a Tflush still ends it with EINTR.
func TestReadWhileOpenInFlight(t *testing.T) {
	e := newEnv(t)
	ctl := local(t, e.ta, "tcp/clone")
	write(t, ctl, "announce 7010")
	n := readNum(t, ctl)

	rc := dialRaw(t, e.addr, 0)
	body := le.AppendUint32(nil, 1)
	body = le.AppendUint32(body, 2)
	body = le.AppendUint16(body, 3)
	for _, name := range []string{"tcp", n, "listen"} {
		body = append(body, pstr(name)...)
	}
	rc.send(t, newFrame(msgTwalk, 2, body...))
	if r := rc.recv(t); r.typ() != msgRwalk {
		t.Fatalf("Twalk: type %d", r.typ())
	}
	rc.send(t, newFrame(msgTlopen, 3, le.AppendUint32(le.AppendUint32(nil, 2), syscall.O_RDWR)...))
	rc.expectNothing(t, 100*time.Millisecond) // blocked: no call yet
	rc.send(t, tread(4, 2, 0, 100))
	if r := rc.recv(t); r.tag() != 4 || r.typ() != msgRlerror || le.Uint32(r[hdrLen:]) != uint32(syscall.EBADF) {
		t.Fatalf("Tread during Tlopen: type %d tag %d % x, want Rlerror(EBADF)", r.typ(), r.tag(), []byte(r))
	}
	var b [2]byte
	le.PutUint16(b[:], 3)
	rc.send(t, newFrame(msgTflush, 5, b[:]...))
	r1, r2 := rc.recv(t), rc.recv(t)
	if r1.tag() != 3 || r1.typ() != msgRlerror || le.Uint32(r1[hdrLen:]) != uint32(syscall.EINTR) || r2.typ() != msgRflush {
		t.Fatalf("flush of the open: %d/%d then %d/%d", r1.tag(), r1.typ(), r2.tag(), r2.typ())
	}
}

// TestLargeWriteSentWhileOpen: a 256 KiB Twrite to data, answered before
// its segments go to the device (fs.PushAfterReply), all reaches the peer
// while the client keeps the fid open and writes nothing more. The send
// buffer holds the whole write, so it never waits for space (which would
// push); without the push after the reply the data would sit in the write
// queue with nothing in flight to clock it out.
func TestLargeWriteSentWhileOpen(t *testing.T) {
	e := newEnv(t)
	_, root := e.client(t, 1000)
	_, data, bdata := e.tcpPair(t, root, 7001)
	_, admin := e.client(t, 0)
	for _, w := range []struct {
		root      p9.File
		path, val string
	}{{admin, "sys/core/wmem_max", "8388608"}, {root, "tcp/0/sndbuf", "4194304"}} {
		path, v := w.path, w.val
		f := openP9(t, w.root, path, p9.WriteOnly)
		if _, err := f.WriteAt([]byte(v), 0); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		f.Close()
	}
	msg := make([]byte, 256<<10)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if n, err := data.WriteAt(msg, 0); n != len(msg) || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make([]byte, 0, len(msg))
	buf := make([]byte, 64<<10)
	for len(got) < len(msg) {
		n, err := bdata.Read(ctx, buf, 0)
		if err != nil {
			t.Fatalf("B read after %d of %d bytes: %v", len(got), len(msg), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("B got other bytes than were written")
	}
}
