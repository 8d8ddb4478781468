package p9

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"sockfs/fs"
	"sockfs/netstack"
	"sockfs/netstack/clock"
)

// FuzzServeConn feeds arbitrary bytes to the server core as one client's
// connection, after a valid Tversion in the dialect d picks (9P2000,
// 9P2000.u or 9P2000.L) and a Tattach, so that deeper messages are
// reached. Whatever arrives, the server must not panic, must answer or
// close, and must return once the client hangs up: a malformed frame ends
// only its own connection. make test runs the seeds.
func FuzzServeConn(f *testing.F) {
	clk := clock.NewReal()
	st := netstack.New(netstack.Options{Clock: clk, Seed: 9})
	f.Cleanup(func() { st.Close(); clk.Close() })
	tree := fs.New(st, fs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	cat := func(fr ...frame) []byte {
		var out []byte
		for _, x := range fr {
			out = append(out, x...)
		}
		return out
	}
	for _, d := range dialects {
		rc := &rawConn{d: d}
		open := func(tag uint16, fid uint32, flags int) frame { return rc.topen(tag, fid, flags) }
		f.Add(uint8(d), cat(twalk(2, 1, 2, "sys", "ipv4", "tcp_rmem"), open(3, 2, 0), tread(4, 2, 0, 100)))
		f.Add(uint8(d), cat(twalk(2, 1, 2, "udp", "clone"), open(3, 2, 2), tread(4, 2, 0, 10), twrite(5, 2, []byte("announce 9"))))
		f.Add(uint8(d), cat(twalk(2, 1, 2), open(3, 2, 0), tread(4, 2, 0, 4096), tread(5, 2, 200, 4096)))
		f.Add(uint8(d), cat(twalk(2, 1, 2, "..", "tcp", "nonesuch"), twalk(3, 1, 1, "tcp"), newFrame(msgTstat, 4, 1, 0, 0, 0)))
		f.Add(uint8(d), cat(tread(5, 1, 0, 1<<30), tflush(6, 5), tversion(8192, "9P2000.u")))
		f.Add(uint8(d), cat(newFrame(msgTremove, 2, 1, 0, 0, 0), newFrame(msgTclunk, 3, 1, 0, 0, 0)))
		// Messages of 64 KiB and more at msize 1 MiB: the reading loop
		// looks at their type and, for a Twrite, its fid before it reads
		// the rest (pages for a file that takes them).
		big := newFrame(msgTclunk, 4, make([]byte, pagedWriteMin+100)...)
		f.Add(uint8(d), cat(tversion(DefaultMsize, d.String()), rc.tattach(2, 1, 0), twrite(3, 1, make([]byte, pagedWriteMin+1)), big))
	}
	f.Add(uint8(dialectL), cat(newFrame(msgTgetattr, 2, 1, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0), newFrame(msgTreaddir, 3, 1, 0, 0, 0)))
	f.Add(uint8(dialect9P), []byte{0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(dialectU), []byte{255, 255, 255, 255, msgTwalk, 1, 0})

	f.Fuzz(func(t *testing.T, d uint8, in []byte) {
		rc := &rawConn{d: dialects[int(d)%len(dialects)]}
		cli, srv := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			ServeConn(context.Background(), srv, tree.Root(), Options{})
		}()
		go io.Copy(io.Discard, cli) // replies
		cli.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		cli.Write(cat(tversion(65536, rc.d.String()), rc.tattach(1, 1, 0)))
		cli.Write(in)
		time.Sleep(time.Millisecond)
		cli.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("the server did not let go of a closed connection:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
}
