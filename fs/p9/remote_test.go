package p9

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/fs"
)

func remoteOpen(t *testing.T, r *Remote, path string, flags int) fs.Handle {
	t.Helper()
	return openPath(t, r.Root(), path, flags)
}

// TestRemoteCancelFlushes: cancelling the context of a blocked read on a
// Remote sends Tflush; the read ends with EINTR, the connection stays
// usable (p9's client reuses the tag before Rflush, which the shim
// survives), and the next datagram goes whole to the next read.
func TestRemoteCancelFlushes(t *testing.T) {
	e := newEnv(t)
	r := dialRemote(t, e.addr)
	actl := local(t, e.ta, "udp/clone")
	write(t, actl, "announce 7400")
	n := readNum(t, actl)

	for i := 0; i < 3; i++ {
		h := remoteOpen(t, r, "udp/"+n+"/data", syscall.O_RDONLY)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		err := within(t, 3*time.Second, func() error {
			k, err := h.Read(ctx, make([]byte, 1000), 0)
			if k != 0 {
				t.Errorf("cancelled read returned %d bytes", k)
			}
			return err
		})
		cancel()
		if !errors.Is(err, syscall.EINTR) {
			t.Fatalf("cancelled read: %v, want EINTR", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("cancelled read took %v", d)
		}
		h.Release()
	}
	// An already-cancelled context does not even send the request.
	h := remoteOpen(t, r, "udp/"+n+"/data", syscall.O_RDONLY)
	defer h.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Read(ctx, make([]byte, 10), 0); !errors.Is(err, syscall.EINTR) {
		t.Fatalf("read with a cancelled context: %v", err)
	}

	bctl := local(t, e.tb, "udp/clone")
	write(t, bctl, "connect 198.18.0.1!7400")
	write(t, local(t, e.tb, "udp/"+readNum(t, bctl)+"/data"), "whole datagram")
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	buf := make([]byte, 1000)
	k, err := h.Read(rctx, buf, 0)
	if err != nil || string(buf[:k]) != "whole datagram" {
		t.Fatalf("next read %q %v", buf[:k], err)
	}
	if st := r.Root().(fs.Node).Stat(); st.Mode&0o777 == 0 {
		t.Fatalf("root stat %+v", st)
	}
}

// TestRemoteCancelListen: a listen open blocked on a Remote is flushed by
// its context; the call that arrives later is still queued for the next
// listen.
func TestRemoteCancelListen(t *testing.T) {
	e := newEnv(t)
	r := dialRemote(t, e.addr)
	ctl := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
	defer ctl.Release()
	buf := make([]byte, 100)
	k, err := ctl.Read(context.Background(), buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := string(buf[:k])
	if _, err := ctl.Write(context.Background(), []byte("announce 7401"), 0); err != nil {
		t.Fatal(err)
	}
	var lst fs.Node = r.Root()
	for _, name := range []string{"tcp", n, "listen"} {
		if lst, err = lst.(fs.Dir).Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err = within(t, 3*time.Second, func() error {
		_, err := lst.(fs.File).Open(ctx, fs.OpenReq{Flags: syscall.O_RDWR})
		return err
	})
	cancel()
	if !errors.Is(err, syscall.EINTR) {
		t.Fatalf("cancelled listen: %v, want EINTR", err)
	}
	bctl := local(t, e.tb, "tcp/clone")
	write(t, bctl, "connect 198.18.0.1!7401")
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := lst.(fs.File).Open(ctx, fs.OpenReq{Flags: syscall.O_RDWR})
	if err != nil {
		t.Fatalf("listen after the call: %v", err)
	}
	h.Release()
}

// within runs fn and fails the test if it has not returned after d (the
// goroutine is left behind; the test's cleanup closes the connection).
func within(t *testing.T, d time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("call still blocked after %v", d)
		return nil
	}
}

// TestRemoteSmallServerMsize: against a server that agrees to only 64 KiB
// messages, a Remote asking for 1 MiB still sends messages that fit: a
// 300 KB write arrives whole and reads come back.
func TestRemoteSmallServerMsize(t *testing.T) {
	e := newEnvMsize(t, 64<<10)
	r, err := Dial(context.Background(), e.addr, RemoteOptions{Msize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bctl := local(t, e.tb, "tcp/clone")
	write(t, bctl, "announce 7600")
	got := make(chan int, 1)
	go func() {
		// Count what B receives until EOF.
		var lst fs.Node = e.tb.Root()
		for _, name := range []string{"tcp", readNum(t, bctl), "listen"} {
			lst, _ = lst.(fs.Dir).Lookup(name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		lh, err := lst.(fs.File).Open(ctx, fs.OpenReq{Flags: syscall.O_RDWR})
		if err != nil {
			got <- -1
			return
		}
		defer lh.Release()
		buf := make([]byte, 64<<10)
		k, _ := lh.Read(ctx, buf, 0)
		var dn fs.Node = e.tb.Root()
		for _, name := range []string{"tcp", string(buf[:k]), "data"} {
			dn, _ = dn.(fs.Dir).Lookup(name)
		}
		d, err := dn.(fs.File).Open(ctx, fs.OpenReq{Flags: syscall.O_RDWR})
		if err != nil {
			got <- -2
			return
		}
		defer d.Release()
		total := 0
		for {
			n, err := d.Read(ctx, buf, 0)
			if err != nil || n == 0 {
				break
			}
			total += n
		}
		got <- total
	}()
	ctl := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
	buf := make([]byte, 32)
	k, err := ctl.Read(context.Background(), buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := string(buf[:k])
	if _, err := ctl.Write(context.Background(), []byte("connect 198.18.0.2!7600"), 0); err != nil {
		t.Fatal(err)
	}
	data := remoteOpen(t, r, "tcp/"+n+"/data", syscall.O_RDWR)
	msg := make([]byte, 300000)
	if w, err := data.Write(context.Background(), msg, 0); err != nil || w != len(msg) {
		t.Fatalf("write %d %v", w, err)
	}
	data.Release()
	ctl.Release() // last close: FIN after the data
	select {
	case total := <-got:
		if total != len(msg) {
			t.Fatalf("B received %d bytes, want %d", total, len(msg))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("B never saw EOF")
	}
}

// TestRemotePerUser: with PerUser, each local opener's uid reaches the
// server: the conversation a user clones is theirs, and another user gets
// EACCES on it, as on a FUSE mount of the tree itself.
func TestRemotePerUser(t *testing.T) {
	e := newEnv(t)
	r, err := Dial(context.Background(), e.addr, RemoteOptions{PerUser: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	open := func(path string, uid uint32) (fs.Handle, error) {
		var n fs.Node = r.Root()
		for _, name := range strings.Split(path, "/") {
			c, err := n.(fs.Dir).Lookup(name)
			if err != nil {
				return nil, err
			}
			n = c
		}
		return n.(fs.File).Open(context.Background(), fs.OpenReq{Flags: syscall.O_RDWR, Uid: uid, Gid: uid})
	}
	ctl, err := open("tcp/clone", 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Release()
	buf := make([]byte, 32)
	k, err := ctl.Read(context.Background(), buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := string(buf[:k])
	var data fs.Node = e.ta.Root()
	for _, name := range []string{"tcp", n, "data"} {
		data, _ = data.(fs.Dir).Lookup(name)
	}
	if st := data.Stat(); st.Uid != 1000 {
		t.Fatalf("conversation owner %d, want 1000", st.Uid)
	}
	if _, err := open("tcp/"+n+"/ctl", 1001); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("open by uid 1001: %v, want EACCES", err)
	}
	h, err := open("tcp/"+n+"/data", 1000)
	if err != nil {
		t.Fatalf("open by the owner: %v", err)
	}
	h.Release()
	if st := r.Root().(fs.Node).Stat(); st.Name != "" || st.Mode&iofs.ModeDir == 0 {
		t.Fatalf("root stat %+v", st)
	}
}

// TestRemoteManyCancels: 30 reads blocked at once on one connection, all
// cancelled together, all end with EINTR; the connection then carries the
// next datagrams, each whole, in order.
func TestRemoteManyCancels(t *testing.T) {
	e := newEnv(t)
	r := dialRemote(t, e.addr)
	actl := local(t, e.ta, "udp/clone")
	write(t, actl, "announce 7700")
	n := readNum(t, actl)
	const readers = 30
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, readers)
	for i := 0; i < readers; i++ {
		h := remoteOpen(t, r, "udp/"+n+"/data", syscall.O_RDONLY)
		defer h.Release()
		go func() {
			_, err := h.Read(ctx, make([]byte, 100), 0)
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	deadline := time.After(5 * time.Second)
	for i := 0; i < readers; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, syscall.EINTR) {
				t.Fatalf("reader %d: %v, want EINTR", i, err)
			}
		case <-deadline:
			t.Fatalf("%d of %d readers still blocked", readers-i, readers)
		}
	}
	bctl := local(t, e.tb, "udp/clone")
	write(t, bctl, "connect 198.18.0.1!7700")
	bdata := local(t, e.tb, "udp/"+readNum(t, bctl)+"/data")
	h := remoteOpen(t, r, "udp/"+n+"/data", syscall.O_RDONLY)
	defer h.Release()
	for i := 0; i < 5; i++ {
		write(t, bdata, "datagram "+string(rune('a'+i)))
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	for i := 0; i < 5; i++ {
		buf := make([]byte, 100)
		k, err := h.Read(rctx, buf, 0)
		if want := "datagram " + string(rune('a'+i)); err != nil || string(buf[:k]) != want {
			t.Fatalf("read %d: %q %v, want %q", i, buf[:k], err, want)
		}
	}
}

// dialRemote dials the test server's tree; the test's cleanup closes it.
func dialRemote(t *testing.T, addr string) *Remote {
	t.Helper()
	r, err := Dial(context.Background(), addr, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRemoteLost: when the server's connection goes (a restart), Lost is
// closed with the reason, and listing a directory is an error, not an
// empty directory (ls of an import showed nothing and exited 0, and
// sockfs import said nothing about it).
func TestRemoteLost(t *testing.T) {
	e := newEnv(t)
	// A relay between the Remote and the server, to cut.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cut := make(chan struct{})
	go func() {
		a, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", e.addr)
		if err != nil {
			a.Close()
			return
		}
		go io.Copy(a, b)
		go io.Copy(b, a)
		<-cut
		a.Close()
		b.Close()
	}()
	r := dialRemote(t, ln.Addr().String())
	root := r.Root().(fs.Dir)
	if ents, err := fs.ListDir(root); err != nil || len(ents) == 0 {
		t.Fatalf("listing before the cut: %d entries, %v", len(ents), err)
	}
	close(cut)
	select {
	case <-r.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed 5 s after the connection went")
	}
	if r.LostErr() == nil {
		t.Error("LostErr is nil")
	}
	if ents, err := fs.ListDir(root); err == nil {
		t.Fatalf("listing after the cut: %d entries, no error", len(ents))
	}
}

// checkRemoteWstat changes conversation n's mode and owner through r
// (the import's client: chmod and chown on an imported mount) and checks
// the serving tree took them; status refuses with EPERM.
func checkRemoteWstat(t *testing.T, e *env, r *Remote, n string) {
	t.Helper()
	node := func(root fs.Dir, name string) fs.Node {
		var nd fs.Node = root
		for _, p := range []string{"tcp", n, name} {
			c, err := nd.(fs.Dir).Lookup(p)
			if err != nil {
				t.Fatal(err)
			}
			nd = c
		}
		return nd
	}
	mode := iofs.FileMode(0o664)
	if err := node(r.Root(), "ctl").(fs.Wstatter).Wstat(0, nil, &mode); err != nil {
		t.Fatalf("wstat mode: %v", err)
	}
	if st := node(e.ta.Root(), "data").Stat(); st.Mode != 0o664 {
		t.Fatalf("served data's mode %v after a remote wstat 0664", st.Mode)
	}
	owner := uint32(1234)
	if err := node(r.Root(), "data").(fs.Wstatter).Wstat(0, &owner, nil); err != nil {
		t.Fatalf("wstat owner: %v", err)
	}
	if st := node(e.ta.Root(), "ctl").Stat(); st.Uid != owner {
		t.Fatalf("served ctl's owner %d after a remote wstat to %d", st.Uid, owner)
	}
	if err := node(r.Root(), "status").(fs.Wstatter).Wstat(0, nil, &mode); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("wstat of status: %v, want EPERM", err)
	}
}

// TestRemoteWstat: chmod and chown through the import's client in
// 9P2000.L (Tsetattr) reach the serving tree, as Plan 9's wstat.
func TestRemoteWstat(t *testing.T) {
	e := newEnv(t)
	r := dialRemote(t, e.addr)
	if r.main.c.dialect != dialectL {
		t.Fatalf("negotiated %v, want 9P2000.L", r.main.c.dialect)
	}
	ctl := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
	defer ctl.Release()
	checkRemoteWstat(t, e, r, readNum(t, ctl))
}

// TestRemoteFidsBounded: the import keeps at most maxCachedFids fids
// walked to the nodes it has seen, giving back the least recently used
// and walking again when one is used, so looking up more nodes than the
// server lets one connection hold works. Each node kept its fid for good,
// and an import failed with "too many fids" (EMFILE) after some 2,000
// conversations' files against the default 4096.
func TestRemoteFidsBounded(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, e.ta.Root(), Options{MaxFids: maxCachedFids + 100}) }()
	t.Cleanup(func() { cancel(); <-done })
	r := dialRemote(t, ln.Addr().String())
	var convs []string
	for range 60 { // 60 conversations of 11 files: 720 nodes
		convs = append(convs, readNum(t, local(t, e.ta, "tcp/clone")))
	}
	lookup := func(d fs.Node, name string) fs.Node {
		t.Helper()
		n, err := d.(fs.Dir).Lookup(name)
		if err != nil {
			t.Fatalf("lookup %s: %v", name, err)
		}
		return n
	}
	tcp := lookup(r.Root(), "tcp")
	for _, n := range convs {
		dir := lookup(tcp, n)
		for _, name := range []string{"ctl", "data", "err", "listen", "local", "remote", "status", "mem", "rcvbuf", "sndbuf"} {
			if st := lookup(dir, name).Stat(); st.Name != name {
				t.Fatalf("tcp/%s/%s stat %+v", n, name, st)
			}
		}
	}
	r.mu.Lock()
	held := r.fids.Len()
	r.mu.Unlock()
	if held > maxCachedFids {
		t.Fatalf("%d fids kept, want at most %d", held, maxCachedFids)
	}
	// The first conversation's nodes gave their fids back: they walk
	// again, and its status opens and reads.
	h := remoteOpen(t, r, "tcp/"+convs[0]+"/status", syscall.O_RDONLY)
	defer h.Release()
	buf := make([]byte, 256)
	if k, err := h.Read(context.Background(), buf, 0); err != nil || !strings.HasPrefix(string(buf[:k]), "Closed") {
		t.Fatalf("status of an evicted node: %q %v", buf[:k], err)
	}
	if names := listNames(tcp.(fs.Dir)); !strings.Contains(names, " "+convs[59]+" ") {
		t.Fatalf("tcp lists%s", names)
	}
}
