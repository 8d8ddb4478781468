// Command nullfs serves a single null file, data, the ceiling of sockfs's
// file transports: reads return zeros (copied from memory), writes are
// discarded, and no stack or socket is behind either. With
//
//	-fuse DIR  it mounts a one-file tree at DIR with bazil.org/fuse and the
//	           mount options of sockfs's FUSE frontend (fs/fuse: FSName and
//	           Subtype sockfs, max_readahead 0, allow_other; bazil's 128 KiB
//	           max_write), opening data as sockfs opens its stream files
//	           (DIRECT_IO, FOPEN_STREAM, NONSEEKABLE);
//	-9p ADDR   it serves the tree over 9P2000.L on ADDR with the
//	           hugelgupf/p9 server (the library sockfs's 9P server runs
//	           behind its shim), iounit 0 so the client does msize-sized I/O.
//
// The files peer (bench/peers/files -null) reads and writes data in the
// same 128 KiB requests as it moves the conversation files' data, so
// sockfs's file rows divided by these give the share of the transport's
// ceiling they reach. nullfs prints "ready" once the tree can be reached
// and serves until its standard input closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
	"github.com/hugelgupf/p9/fsimpl/templatefs"
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// zeros is what every read copies from.
var zeros = make([]byte, 4<<20)

func main() {
	dir := flag.String("fuse", "", "mount point for the FUSE null tree")
	addr := flag.String("9p", "", "TCP address for the 9P null tree")
	flag.Parse()
	var err error
	switch {
	case *dir != "" && *addr == "":
		err = serveFUSE(*dir)
	case *addr != "" && *dir == "":
		err = serve9P(*addr)
	default:
		err = fmt.Errorf("give one of -fuse DIR or -9p ADDR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nullfs:", err)
		os.Exit(1)
	}
}

// untilStdinCloses blocks until the harness closes our standard input.
func untilStdinCloses() { io.Copy(io.Discard, os.Stdin) }

// openStream is FOPEN_STREAM, which bazil does not name (as in fs/fuse).
const openStream = fuse.OpenResponseFlags(1 << 4)

func serveFUSE(dir string) error {
	conn, err := fuse.Mount(dir, fuse.FSName("sockfs"), fuse.Subtype("sockfs"), fuse.MaxReadahead(0), fuse.AllowOther())
	if err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	done := make(chan error, 1)
	go func() { done <- bfs.Serve(conn, fuseTree{}) }()
	fmt.Println("ready")
	select {
	case <-stdinClosed():
	case err = <-done:
	}
	fuse.Unmount(dir)
	conn.Close()
	return err
}

func stdinClosed() <-chan struct{} {
	c := make(chan struct{})
	go func() { untilStdinCloses(); close(c) }()
	return c
}

type fuseTree struct{}

func (fuseTree) Root() (bfs.Node, error) { return fuseDir{}, nil }

// fuseDir is the root: one entry, data.
type fuseDir struct{}

func (fuseDir) Attr(_ context.Context, a *fuse.Attr) error {
	a.Valid, a.Inode, a.Mode = 0, 1, os.ModeDir|0o555
	return nil
}

func (fuseDir) Lookup(_ context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (bfs.Node, error) {
	if req.Name != "data" {
		return nil, syscall.ENOENT
	}
	resp.EntryValid = 0
	return fuseData{}, nil
}

func (fuseDir) ReadDirAll(context.Context) ([]fuse.Dirent, error) {
	return []fuse.Dirent{{Inode: 2, Name: "data", Type: fuse.DT_File}}, nil
}

// fuseData is the null file; it is its own handle.
type fuseData struct{}

func (fuseData) Attr(_ context.Context, a *fuse.Attr) error {
	a.Valid, a.Inode, a.Mode, a.Size = 0, 2, 0o666, 0
	return nil
}

func (d fuseData) Open(_ context.Context, _ *fuse.OpenRequest, resp *fuse.OpenResponse) (bfs.Handle, error) {
	resp.Flags |= fuse.OpenDirectIO | fuse.OpenNonSeekable | openStream
	return d, nil
}

func (fuseData) Read(_ context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	resp.Data = append(resp.Data[:0], zeros[:min(req.Size, len(zeros))]...)
	return nil
}

func (fuseData) Write(_ context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	resp.Size = len(req.Data)
	return nil
}

// Setattr accepts truncation (a shell's >), as sockfs's tree does.
func (d fuseData) Setattr(ctx context.Context, _ *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return d.Attr(ctx, &resp.Attr)
}

func serve9P(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := p9.NewServer(p9Attacher{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Println("ready")
	select {
	case <-stdinClosed():
	case err = <-done:
	}
	ln.Close()
	return err
}

type p9Attacher struct{}

func (p9Attacher) Attach() (p9.File, error) { return &p9Node{}, nil }

// p9Node is the root (data false) or the null file (data true).
type p9Node struct {
	templatefs.NoopFile
	data bool
}

func (n *p9Node) qid() p9.QID {
	if n.data {
		return p9.QID{Type: p9.TypeRegular, Path: 2}
	}
	return p9.QID{Type: p9.TypeDir, Path: 1}
}

func (n *p9Node) Walk(names []string) ([]p9.QID, p9.File, error) {
	switch {
	case len(names) == 0:
		return nil, &p9Node{data: n.data}, nil
	case !n.data && len(names) == 1 && names[0] == "data":
		f := &p9Node{data: true}
		return []p9.QID{f.qid()}, f, nil
	}
	return nil, nil, linux.ENOENT
}

func (n *p9Node) GetAttr(req p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	mode := p9.ModeDirectory | 0o555
	if n.data {
		mode = p9.ModeRegular | 0o666
	}
	return n.qid(), p9.AttrMask{Mode: true, Size: true}, p9.Attr{Mode: mode}, nil
}

func (n *p9Node) Open(p9.OpenFlags) (p9.QID, uint32, error) { return n.qid(), 0, nil }

func (n *p9Node) ReadAt(p []byte, _ int64) (int, error) {
	if !n.data {
		return 0, linux.EISDIR
	}
	for i := 0; i < len(p); i += len(zeros) {
		copy(p[i:], zeros)
	}
	return len(p), nil
}

func (n *p9Node) WriteAt(p []byte, _ int64) (int, error) {
	if !n.data {
		return 0, linux.EISDIR
	}
	return len(p), nil
}
