// Command nullfs serves a single null file, data, the ceiling of sockfs's
// file transports: reads return zeros (copied from memory), writes are
// discarded, and no stack or socket is behind either. With
//
//	-fuse DIR  it mounts a one-file tree at DIR with bazil.org/fuse and the
//	           mount options of sockfs's FUSE frontend (fs/fuse: FSName and
//	           Subtype sockfs, max_readahead 0, allow_other; bazil's 128 KiB
//	           max_write), opening data as sockfs opens its stream files
//	           (DIRECT_IO, FOPEN_STREAM, NONSEEKABLE);
//	-9p ADDR   it serves the tree over 9P on ADDR with sockfs's own 9P
//	           server core (fs/p9.Serve, the one `sockfs serve --9p` runs,
//	           default options), so the 9P rows divided by this one compare
//	           the same server, client and msize and differ only in the
//	           file behind data.
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

	sfs "sockfs/fs"
	"sockfs/fs/p9"
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p9.Serve(ctx, ln, p9Dir{}, p9.Options{}) }()
	fmt.Println("ready")
	select {
	case <-stdinClosed():
	case err = <-done:
	}
	cancel()
	ln.Close()
	return err
}

// p9Dir is the root of the 9P tree: one entry, data. It is a sockfs/fs
// tree, so sockfs's own 9P server core (fs/p9) serves it exactly as it
// serves the /net tree; only the file behind data differs.
type p9Dir struct{}

func (p9Dir) Qid() sfs.Qid { return sfs.Qid{Path: 1, Type: sfs.QTDir} }
func (p9Dir) Stat() sfs.Stat {
	return sfs.Stat{Name: "/", Mode: os.ModeDir | 0o555}
}

func (p9Dir) Lookup(name string) (sfs.Node, error) {
	if name != "data" {
		return nil, syscall.ENOENT
	}
	return p9Data{}, nil
}

func (p9Dir) List() []sfs.Node { return []sfs.Node{p9Data{}} }

// p9Data is the null file, a stream file as a conversation's data is; it
// is its own handle.
type p9Data struct{}

func (p9Data) Qid() sfs.Qid { return sfs.Qid{Path: 2, Type: sfs.QTFile} }
func (p9Data) Stat() sfs.Stat {
	return sfs.Stat{Name: "data", Mode: 0o666, Stream: true}
}

func (d p9Data) Open(context.Context, sfs.OpenReq) (sfs.Handle, error) { return d, nil }

func (p9Data) Read(_ context.Context, p []byte, _ int64) (int, error) {
	for i := 0; i < len(p); i += len(zeros) {
		copy(p[i:], zeros)
	}
	return len(p), nil
}

func (p9Data) Write(_ context.Context, p []byte, _ int64) (int, error) { return len(p), nil }

func (p9Data) Poll(ev sfs.Event, _ func()) sfs.Event { return ev & (sfs.PollIn | sfs.PollOut) }

func (p9Data) Release() {}

// Tryable: reads and writes never block (fs.Trier), as a TCP
// conversation's data with bytes queued or room to queue.
func (p9Data) Tryable() bool { return true }
