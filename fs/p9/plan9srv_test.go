package p9

import (
	"context"
	"errors"
	iofs "io/fs"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/srv9p"

	"sockfs/fs"
)

// plan9Node is what a fid of plan9Server stands for.
type plan9Node struct {
	path []fs.Node
	mu   sync.Mutex
	h    fs.Handle
}

// plan9Server serves tree in plain 9P2000 with plan9port's server library
// (9fans.net/go/plan9/srv9p, a port of Plan 9's lib9p): the stand-in for
// a Plan 9 machine's /net (9front's exportfs), which cannot run here. It
// answers any "9P..." Tversion with "9P2000", as lib9p does, and sends
// the tree's errors as Plan 9 strings. It returns the address.
func plan9Server(t *testing.T, tree fs.Dir) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	qidOf9 := func(n fs.Node) plan9.Qid {
		q := n.Qid()
		return plan9.Qid{Path: q.Path, Vers: q.Version, Type: q.Type}
	}
	node := func(f *srv9p.Fid) *plan9Node { return f.Aux().(*plan9Node) }
	plan9Err := func(err error) error {
		if err == nil {
			return nil
		}
		return errors.New(fs.ErrText(err))
	}
	srv := &srv9p.Server{
		Msize: 65536 + plan9.IOHDRSZ,
		Attach: func(ctx context.Context, fid, afid *srv9p.Fid, user, aname string) (plan9.Qid, error) {
			fid.SetAux(&plan9Node{path: []fs.Node{tree}})
			return qidOf9(tree), nil
		},
		Walk: func(ctx context.Context, fid, newfid *srv9p.Fid, names []string) ([]plan9.Qid, error) {
			return srv9p.Walk(fid, newfid, names,
				func(old, new *srv9p.Fid) error {
					new.SetAux(&plan9Node{path: node(old).path})
					return nil
				},
				func(f *srv9p.Fid, name string) (plan9.Qid, error) {
					n := node(f)
					next, err := walkOne(n.path, name)
					if err != nil {
						return plan9.Qid{}, plan9Err(err)
					}
					n.path = next
					return qidOf9(next[len(next)-1]), nil
				})
		},
		Open: func(ctx context.Context, fid *srv9p.Fid, mode uint8) error {
			n := node(fid)
			file, ok := n.path[len(n.path)-1].(fs.File)
			if !ok {
				return nil
			}
			flags := syscall.O_RDONLY
			switch mode & 3 {
			case plan9.OWRITE:
				flags = syscall.O_WRONLY
			case plan9.ORDWR:
				flags = syscall.O_RDWR
			}
			h, err := file.Open(ctx, fs.OpenReq{Flags: flags})
			if err != nil {
				return plan9Err(err)
			}
			n.mu.Lock()
			n.h = h
			n.mu.Unlock()
			return nil
		},
		Read: func(ctx context.Context, fid *srv9p.Fid, data []byte, off int64) (int, error) {
			n := node(fid)
			if d, ok := n.path[len(n.path)-1].(fs.Dir); ok {
				list := d.List()
				return fid.ReadDir(data, off, func(i int, dir *plan9.Dir) bool {
					if i >= len(list) {
						return false
					}
					st := list[i].Stat()
					*dir = plan9.Dir{Qid: qidOf9(list[i]), Mode: plan9.Perm(st.Mode.Perm()), Name: st.Name, Uid: "root", Gid: "root", Muid: "root"}
					if st.Mode.IsDir() {
						dir.Mode |= plan9.DMDIR
					}
					return true
				})
			}
			k, err := n.h.Read(ctx, data, off)
			return k, plan9Err(err)
		},
		Write: func(ctx context.Context, fid *srv9p.Fid, data []byte, off int64) (int, error) {
			k, err := node(fid).h.Write(ctx, data, off)
			return k, plan9Err(err)
		},
		Stat: func(ctx context.Context, fid *srv9p.Fid) (*plan9.Dir, error) {
			n := node(fid).path
			st := n[len(n)-1].Stat()
			d := &plan9.Dir{Qid: qidOf9(n[len(n)-1]), Mode: plan9.Perm(st.Mode.Perm()), Name: st.Name, Uid: "root", Gid: "root", Muid: "root"}
			if st.Mode.IsDir() {
				d.Mode |= plan9.DMDIR
			}
			return d, nil
		},
		Wstat: func(ctx context.Context, fid *srv9p.Fid, d *plan9.Dir) error {
			n := node(fid).path
			var owner *uint32
			var mode *iofs.FileMode
			if d.Uid != "" {
				id := hostUsers.uid(d.Uid)
				owner = &id
			}
			if d.Mode != ^plan9.Perm(0) {
				m := iofs.FileMode(d.Mode & 0o777)
				mode = &m
			}
			w, ok := n[len(n)-1].(fs.Wstatter)
			if !ok {
				return errors.New("permission denied")
			}
			return plan9Err(w.Wstat(0, owner, mode))
		},
		Clunk: func(fid *srv9p.Fid) {
			if n, ok := fid.Aux().(*plan9Node); ok && n.h != nil {
				n.h.Release()
			}
		},
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { srv.Serve(nc, nc) })
		}
	}()
	return ln.Addr().String()
}

// TestRemotePlan9Server: a Remote (sockfs import's client) against a
// server that speaks only 9P2000 falls back to it and works: a sysctl
// reads, a TCP conversation connects and carries data both ways, a
// refused connect is ECONNREFUSED with Plan 9's string, and a blocked
// read is flushed by its context without consuming what comes next.
func TestRemotePlan9Server(t *testing.T) {
	e := newEnv(t)
	addr := plan9Server(t, e.ta.Root())
	r := dialRemote(t, addr)
	if r.main.c.dialect != dialect9P {
		t.Fatalf("negotiated %v, want 9P2000", r.main.c.dialect)
	}
	h := remoteOpen(t, r, "sys/ipv4/tcp_rmem", syscall.O_RDONLY)
	buf := make([]byte, 100)
	if k, err := h.Read(context.Background(), buf, 0); err != nil || !strings.HasPrefix(string(buf[:k]), "4096\t") {
		t.Fatalf("tcp_rmem %q %v", buf[:k], err)
	}
	h.Release()
	if names := listNames(r.Root()); !strings.Contains(names, " tcp ") || !strings.Contains(names, " sys ") {
		t.Fatalf("root lists%s", names)
	}

	ctl := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
	defer ctl.Release()
	k, err := ctl.Read(context.Background(), buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := string(buf[:k])
	_, err = ctl.Write(context.Background(), []byte("connect 198.18.0.2!9"), 0)
	if !errors.Is(err, syscall.ECONNREFUSED) || err.Error() != "connection refused" {
		t.Fatalf("refused connect: %v, want ECONNREFUSED \"connection refused\"", err)
	}

	bctl := local(t, e.tb, "tcp/clone")
	write(t, bctl, "announce 7600")
	acc := make(chan string, 1)
	go func() { acc <- echoOnce(e.tb, readNum(t, bctl)) }()
	ctl2 := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
	defer ctl2.Release()
	k, _ = ctl2.Read(context.Background(), buf, 0)
	n = string(buf[:k])
	if _, err := ctl2.Write(context.Background(), []byte("connect 198.18.0.2!7600"), 0); err != nil {
		t.Fatal(err)
	}
	data := remoteOpen(t, r, "tcp/"+n+"/data", syscall.O_RDWR)
	defer data.Release()
	if _, err := data.Write(context.Background(), []byte("hi"), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if k, err := data.Read(ctx, buf, 0); err != nil || string(buf[:k]) != "reply:hi" {
		t.Fatalf("reply %q %v", buf[:k], err)
	}
	if got := <-acc; got != "hi" {
		t.Fatalf("B got %q", got)
	}

	// wstat through the import's client in 9P2000: a Twstat that
	// lib9p's server parses, reaching the tree's Wstat.
	checkRemoteWstat(t, e, r, n)

	// A flushed read on a UDP conversation consumes nothing.
	actl := local(t, e.ta, "udp/clone")
	write(t, actl, "announce 7601")
	un := readNum(t, actl)
	uh := remoteOpen(t, r, "udp/"+un+"/data", syscall.O_RDONLY)
	defer uh.Release()
	cctx, ccancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err = uh.Read(cctx, buf, 0)
	ccancel()
	if !errors.Is(err, syscall.EINTR) {
		t.Fatalf("flushed read: %v, want EINTR", err)
	}
	uctl := local(t, e.tb, "udp/clone")
	write(t, uctl, "connect 198.18.0.1!7601")
	write(t, local(t, e.tb, "udp/"+readNum(t, uctl)+"/data"), "one datagram")
	if k, err := uh.Read(ctx, buf, 0); err != nil || string(buf[:k]) != "one datagram" {
		t.Fatalf("next read %q %v", buf[:k], err)
	}
}

// listNames lists d's names, space-separated with spaces around.
func listNames(d fs.Dir) string {
	s := " "
	for _, n := range d.List() {
		s += n.Stat().Name + " "
	}
	return s
}
