// Command nullfs serves a single null file, data, the ceiling of sockfs's
// file transports: reads return zeros (copied from memory), writes are
// discarded, and no stack or socket is behind either. With
//
//	-fuse DIR  it mounts a one-file tree at DIR with sockfs's own FUSE
//	           server (package sockfs/fs/fuse, the one that serves /net:
//	           the same mount options, 1 MiB requests, pooled replies),
//	           data being a stream file as the conversations' data files
//	           are (DIRECT_IO, FOPEN_STREAM, NONSEEKABLE);
//	-9p ADDR   it serves the same tree over 9P on ADDR with sockfs's own
//	           9P server core (fs/p9.Serve, the one `sockfs serve --9p`
//	           runs, default options), so the 9P rows divided by this one
//	           compare the same server, client and msize and differ only in
//	           the file behind data.
//
// The files peer (bench/peers/files -null) reads and writes data in the
// same requests as it moves the conversation files' data (1 MiB over
// FUSE, 1020 KiB at msize 1 MiB over 9P), so
// sockfs's file rows divided by these give the share of the transport's
// ceiling they reach. nullfs prints "ready" once the tree can be reached
// and serves until its standard input closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"os"
	"syscall"

	netfs "sockfs/fs"
	"sockfs/fs/fuse"
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

func serveFUSE(dir string) error {
	m, err := fuse.Mount(dir, nullDir{})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	select {
	case <-stdinClosed():
	case err = <-m.Done():
	}
	if uerr := m.Unmount(); err == nil {
		err = uerr
	}
	return err
}

func stdinClosed() <-chan struct{} {
	c := make(chan struct{})
	go func() { untilStdinCloses(); close(c) }()
	return c
}

// nullDir is the root: one entry, data.
type nullDir struct{}

func (nullDir) Qid() netfs.Qid { return netfs.Qid{Path: 0, Type: netfs.QTDir} }
func (nullDir) Stat() netfs.Stat {
	return netfs.Stat{Name: "/", Mode: iofs.ModeDir | 0o555}
}
func (nullDir) List() []netfs.Node { return []netfs.Node{nullFile{}} }
func (nullDir) Lookup(name string) (netfs.Node, error) {
	if name != "data" {
		return nil, syscall.ENOENT
	}
	return nullFile{}, nil
}

// nullFile is the null file; its handles read zeros and discard writes.
type nullFile struct{}

func (nullFile) Qid() netfs.Qid { return netfs.Qid{Path: 1} }
func (nullFile) Stat() netfs.Stat {
	return netfs.Stat{Name: "data", Mode: 0o666, Stream: true}
}
func (nullFile) Open(context.Context, netfs.OpenReq) (netfs.Handle, error) {
	return nullHandle{}, nil
}

type nullHandle struct{}

func (nullHandle) Read(_ context.Context, p []byte, _ int64) (int, error) {
	for i := 0; i < len(p); i += len(zeros) {
		copy(p[i:], zeros)
	}
	return len(p), nil
}
func (nullHandle) Write(_ context.Context, p []byte, _ int64) (int, error) { return len(p), nil }
func (nullHandle) Poll(ev netfs.Event, _ func()) netfs.Event {
	return ev & (netfs.PollIn | netfs.PollOut)
}
func (nullHandle) Release() {}

// Tryable: reads and writes never block (fs.Trier), as a TCP
// conversation's data with bytes queued or room to queue.
func (nullHandle) Tryable() bool { return true }

func serve9P(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p9.Serve(ctx, ln, nullDir{}, p9.Options{}) }()
	fmt.Println("ready")
	select {
	case <-stdinClosed():
	case err = <-done:
	}
	cancel()
	ln.Close()
	return err
}
