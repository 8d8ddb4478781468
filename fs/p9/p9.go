// Package p9 serves a sockfs tree (package sockfs/fs) over 9P2000.L, and
// imports one served elsewhere (Remote) so that the FUSE frontend can mount
// it again (sockfs import).
//
// # Why hugelgupf/p9 with connection shims
//
// Both ends use github.com/hugelgupf/p9 v0.3.0 (gVisor's 9P2000.L code):
// it gets the protocol right and is well kept, while the other Go 9P
// servers we know of with cancellable handlers speak only 9P2000
// (docker/go-p9p, aqwari.net/net/styx), without Linux errnos. Its gaps, as measured with stock v0.3.0, are: File methods
// take no context and Tflush waits for the old request, so a read blocked
// on a data file cannot be interrupted; a disconnected client's blocked
// read stays behind and later swallows data meant for the next reader;
// Tauth says ENOSYS, which diod's clients refuse; and Tsetattr, Tremove and
// Trename(at) take write locks that wait behind a blocked read (rename's
// global lock then stalls every other request). Rather than fork the
// library, one p9.Server runs per connection behind a shim (serverConn)
// that sees every frame both ways and:
//
//   - gives each request a context, cancelled by Tflush for its tag, by the
//     client disconnecting, or by Serve's context; File methods find it
//     through the goroutine p9 runs the request in (see goid);
//   - answers Tflush itself, only after the cancelled request's reply
//     (EINTR, having consumed nothing, or what it already had) is on the
//     wire, as flush(5) requires;
//   - answers Tauth with ENOENT ("no authentication needed");
//   - answers Tsetattr (accepted and ignored, as on FUSE), Txattrcreate and
//     Trename(at) itself, and passes Tremove on as Tclunk, answering EPERM;
//   - caps msize (Options.MaxMsize, 1 MiB by default) and Tread counts.
//
// p9's client cannot abandon a request either; clientConn, under Remote,
// sends Tflush when a call's context is cancelled (a FUSE INTERRUPT on an
// imported mount) and hides the Rflush from the library.
//
// Requests on a connection run concurrently (p9 starts goroutines as
// needed). Opens return iounit 0 so clients do msize-sized I/O. The uid of
// Tattach (n_uname; nobody if absent, as from p9's own client) is the
// opener's uid for every open through that attach. Errors are the tree's
// errnos, unchanged. Stream files get the client's offsets, which they
// ignore. Linux v9fs clients should mount with cache=none and open stream
// files (data, listen) with O_NONBLOCK to get prompt short reads; the server
// never turns O_NONBLOCK into EAGAIN.
package p9

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/hugelgupf/p9/p9"

	"sockfs/fs"
)

// DefaultMsize is the largest message size Serve agrees to by default.
const DefaultMsize = 1 << 20

// maxMsize is p9's own ceiling.
const maxMsize = 4 << 20

// Options configures Serve.
type Options struct {
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// MaxMsize caps the negotiated message size; 0 means DefaultMsize
	// (1 MiB). Values above 4 MiB (p9's limit) are lowered to it.
	MaxMsize uint32
}

// Serve answers 9P2000.L on ln until ctx ends or ln fails; it closes ln on
// return. Each connection is served concurrently; when ctx ends, every
// connection is closed (cancelling its blocked calls) and Serve returns
// once they are all gone. It returns nil if ctx ended or ln was closed,
// else the Accept error.
func Serve(ctx context.Context, ln net.Listener, root fs.Dir, opts Options) error {
	defer ln.Close()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	msize := opts.MaxMsize
	if msize == 0 {
		msize = DefaultMsize
	}
	msize = min(msize, maxMsize)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, nc, root, msize, log)
		}()
	}
}

// serveConn serves one client until it goes away or ctx ends.
func serveConn(ctx context.Context, nc net.Conn, root fs.Dir, msize uint32, log *slog.Logger) {
	log = log.With("client", nc.RemoteAddr().String())
	log.Debug("9p: connected")
	c := newServerConn(ctx, nc, msize, log)
	stop := context.AfterFunc(c.ctx, func() { nc.Close() })
	defer stop()
	srv := p9.NewServer(&attacher{c: c, root: root})
	srv.Handle(c, c)
	log.Debug("9p: disconnected")
}
