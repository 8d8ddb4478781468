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

// FuzzServeConn feeds arbitrary bytes to the server as one client's
// connection (after a valid Tversion and Tattach, so that deeper messages
// are reached). Whatever arrives, the server must not panic, must answer
// or close, and must return once the client hangs up: a malformed frame
// ends only its own connection.
func FuzzServeConn(f *testing.F) {
	clk := clock.NewReal()
	st := netstack.New(netstack.Options{Clock: clk, Seed: 9})
	f.Cleanup(func() { st.Close(); clk.Close() })
	tree := fs.New(st, fs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	walk := func(tag uint16, fid, newfid uint32, names ...string) frame {
		b := le.AppendUint32(nil, fid)
		b = le.AppendUint32(b, newfid)
		b = le.AppendUint16(b, uint16(len(names)))
		for _, n := range names {
			b = append(b, pstr(n)...)
		}
		return newFrame(msgTwalk, tag, b...)
	}
	lopen := func(tag uint16, fid, flags uint32) frame {
		return newFrame(msgTlopen, tag, append(le.AppendUint32(nil, fid), le.AppendUint32(nil, flags)...)...)
	}
	cat := func(fr ...frame) []byte {
		var out []byte
		for _, x := range fr {
			out = append(out, x...)
		}
		return out
	}
	f.Add(cat(walk(2, 1, 2, "sys", "ipv4", "tcp_rmem"), lopen(3, 2, 0), tread(4, 2, 0, 100)))
	f.Add(cat(walk(2, 1, 2, "udp", "clone"), lopen(3, 2, 2), tread(4, 2, 0, 10)))
	f.Add(cat(tread(5, 1, 0, 1<<30), newFrame(msgTflush, 6, 5, 0)))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, msgTwalk, 1, 0})

	f.Fuzz(func(t *testing.T, in []byte) {
		cli, srv := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			ServeConn(context.Background(), srv, tree.Root(), Options{})
		}()
		go io.Copy(io.Discard, cli) // replies
		hello := newFrame(msgTversion, noTag, append(le.AppendUint32(nil, 65536), pstr("9P2000.L")...)...)
		body := le.AppendUint32(nil, 1)
		body = le.AppendUint32(body, ^uint32(0)) // no afid
		body = append(body, pstr("")...)
		body = append(body, pstr("")...)
		body = le.AppendUint32(body, 0)
		attach := newFrame(msgTattach, 1, body...)
		cli.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		cli.Write(cat(hello, attach))
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
