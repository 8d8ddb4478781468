package p9

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/fs"
)

// TestRemoteLingerFlush: an imported conversation given `linger 1`
// through the import lingers at its last close (FUSE's FLUSH) as the
// exporting mount's own files do: the close of its only open file waits
// until the server's send queue is empty, the full linger time while B
// does not read and A's data outruns its window, briefly when B reads. A
// file that is not the conversation's last open one does not wait, nor
// does one after `linger off`. The linger is learnt also from a clone
// open whose number was never read.
func TestRemoteLingerFlush(t *testing.T) {
	e := newEnv(t)
	r := dialRemote(t, e.addr)
	chunk := strings.Repeat("x", 40000)
	for i, tc := range []struct {
		name     string
		readNum  bool // read the clone's number before `linger`
		bReads   bool
		off      bool // `linger off` after `linger 1`
		min, max time.Duration
	}{
		{"peer not reading", true, false, false, 900 * time.Millisecond, 3 * time.Second},
		{"peer reading", true, true, false, 0, 500 * time.Millisecond},
		{"number never read", false, false, false, 900 * time.Millisecond, 3 * time.Second},
		{"linger off", true, false, true, 0, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := 7420 + i
			accepted := e.listenB(t, port)
			ctl := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
			var n string
			if tc.readNum {
				n = readNum(t, ctl)
			}
			write(t, ctl, "connect 198.18.0.2!"+strconv.Itoa(port))
			lh := accepted()
			write(t, ctl, "sndbuf 1000000")
			write(t, ctl, "linger 1\n")
			if tc.off {
				write(t, ctl, "linger off")
			}
			if !tc.readNum {
				n = readNum(t, ctl)
			}
			if tc.bReads {
				bdata := local(t, e.tb, "tcp/"+readNum(t, lh)+"/data")
				go func() {
					buf := make([]byte, 65536)
					for {
						if _, err := bdata.Read(context.Background(), buf, 0); err != nil {
							return
						}
					}
				}()
			}
			data := remoteOpen(t, r, "tcp/"+n+"/data", syscall.O_WRONLY)
			for range 10 {
				write(t, data, chunk)
			}
			cl, dl := ctl.(fs.Lingerer), data.(fs.Lingerer)
			if cl.LingerSet() == tc.off || cl.Lingers() {
				t.Errorf("ctl with data open: LingerSet %v Lingers %v, want %v false", cl.LingerSet(), cl.Lingers(), !tc.off)
			}
			start := time.Now()
			cl.Flush(context.Background())
			ctl.Release()
			if took := time.Since(start); took > 300*time.Millisecond {
				t.Errorf("closing ctl with data still open took %v", took)
			}
			if dl.Lingers() == tc.off {
				t.Errorf("data, the last file open: Lingers %v, want %v", dl.Lingers(), !tc.off)
			}
			start = time.Now()
			dl.Flush(context.Background())
			took := time.Since(start)
			data.Release()
			t.Logf("the last close waited %v", took)
			if took < tc.min || took > tc.max {
				t.Errorf("the last close waited %v, want %v to %v", took, tc.min, tc.max)
			}
		})
	}
}

// TestRemoteLingerFlushInterrupted: a signal to the closing thread (FUSE's
// INTERRUPT, the context) ends a lingering close's wait at once.
func TestRemoteLingerFlushInterrupted(t *testing.T) {
	e := newEnv(t)
	r := dialRemote(t, e.addr)
	accepted := e.listenB(t, 7430)
	ctl := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
	n := readNum(t, ctl)
	write(t, ctl, "connect 198.18.0.2!7430")
	accepted()
	write(t, ctl, "sndbuf 1000000")
	write(t, ctl, "linger 2")
	data := remoteOpen(t, r, "tcp/"+n+"/data", syscall.O_WRONLY)
	ctl.Release()
	for range 10 {
		write(t, data, strings.Repeat("y", 40000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	data.(fs.Lingerer).Flush(ctx)
	if took := time.Since(start); took < 150*time.Millisecond || took > time.Second {
		t.Errorf("interrupted after 200 ms, the lingering close waited %v", took)
	}
	data.Release()
}
