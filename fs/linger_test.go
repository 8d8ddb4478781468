package fs

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// lingerConv connects a conversation of A to one of B that does not read,
// with A's sndbuf raised so that 400 KB queue without waiting and most of
// them stay unacknowledged (B's window is full); A's ctl (from clone) and
// data are returned, B's data kept open unread.
func lingerSetup(t *testing.T, port string, linger string) (a *conv, ad Handle, b *conv) {
	t.Helper()
	ta, tb := treePair(t)
	a, b = connected(t, ta, tb, port)
	a.must("sndbuf 1000000")
	if linger != "" {
		a.must("linger " + linger)
	}
	b.data()
	ad, err := open(t, ta, 0, syscall.O_RDWR, "tcp", a.n, "data")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ad.Write(context.Background(), make([]byte, 400_000), 0); k != 400_000 || err != nil {
		t.Fatalf("write: %d, %v", k, err)
	}
	return a, ad, b
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// With `linger 1` the last close of a conversation waits as close(2) of a
// socket with SO_LINGER does: Lingerer's Lingers is true only for the
// conversation's only open file, its Flush waits the linger time for the
// unacknowledged data and closes nothing, and ReleaseWait sends the FIN
// and waits the linger time for its acknowledgement, which B's full window
// holds back.
func TestTCPLingerLastClose(t *testing.T) {
	a, ad, _ := lingerSetup(t, "8021", "1")
	l := ad.(Lingerer)
	if l.Lingers() {
		t.Fatal("data lingers while the ctl from clone is open too")
	}
	if took := timed(func() { l.Flush(context.Background()) }); took > 200*time.Millisecond {
		t.Fatalf("Flush with another file open took %v", took)
	}
	a.ctl.Release()
	if !l.Lingers() {
		t.Fatal("the only open file does not linger")
	}
	if took := timed(func() { l.Flush(context.Background()) }); took < 900*time.Millisecond || took > 3*time.Second {
		t.Fatalf("Flush of the last file took %v, want the linger time, 1 s", took)
	}
	if st := a.state(); st != "Established" {
		t.Fatalf("after Flush: %s, want Established (no FIN yet)", st)
	}
	if took := timed(func() { l.ReleaseWait(context.Background()) }); took < 900*time.Millisecond || took > 3*time.Second {
		t.Fatalf("ReleaseWait took %v, want the linger time, 1 s", took)
	}
	if st := a.state(); st != "Finwait1" {
		t.Fatalf("after the lingering close: %s, want Finwait1 (the FIN waits behind B's full window)", st)
	}
}

// A signal (the context) ends the wait at once, and without `linger` the
// last close does not wait at all.
func TestTCPLingerInterruptedAndOff(t *testing.T) {
	a, ad, _ := lingerSetup(t, "8022", "5")
	a.ctl.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if took := timed(func() { ad.(Lingerer).ReleaseWait(ctx) }); took < 150*time.Millisecond || took > time.Second {
		t.Fatalf("ReleaseWait cancelled at 200 ms took %v", took)
	}
	a, ad, _ = lingerSetup(t, "8023", "")
	a.ctl.Release()
	l := ad.(Lingerer)
	if l.Lingers() {
		t.Fatal("lingers without `linger`")
	}
	if took := timed(func() { l.ReleaseWait(context.Background()) }); took > 200*time.Millisecond {
		t.Fatalf("ReleaseWait without linger took %v", took)
	}
	if st := a.state(); st != "Finwait1" {
		t.Fatalf("after the close: %s, want Finwait1", st)
	}
}
