package p9

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func tclunk(tag uint16, fid uint32) frame {
	return newFrame(msgTclunk, tag, le.AppendUint32(nil, fid)...)
}

// TestClunkLingers, in each dialect: after `linger 1` the clunk of a TCP
// conversation's last open file is answered only after the linger time
// while the peer has not acknowledged what was written (B does not read,
// and A's data outruns its window), as close(2) of a socket with
// SO_LINGER waits; the connection's other requests are answered
// meanwhile. The clunk of a file that is not the conversation's last is
// answered at once.
func TestClunkLingers(t *testing.T) {
	e := newEnv(t)
	for i, d := range dialects {
		port := strconv.Itoa(7400 + i)
		accepted := e.listenB(t, 7400+i)
		rc := dialIn(t, e.addr, d, 0)
		rc.walkOpen(t, 1, 2, "tcp", "clone")
		n := rc.read(t, 2, 64)
		rc.write(t, 2, "connect 198.18.0.2!"+port)
		accepted() // B's conversation stays open, its data unread
		rc.write(t, 2, "sndbuf 1000000")
		rc.write(t, 2, "linger 1")
		rc.walkOpen(t, 1, 3, "tcp", n, "data")
		chunk := strings.Repeat("x", 40000)
		for range 10 {
			rc.write(t, 3, chunk)
		}

		start := time.Now()
		rc.send(t, tclunk(6, 2))
		if r := rc.recv(t); r.typ() != msgRclunk || time.Since(start) > 300*time.Millisecond {
			t.Fatalf("%v: clunk of ctl, data still open: type %d after %v", d, r.typ(), time.Since(start))
		}
		start = time.Now()
		rc.send(t, tclunk(7, 3))
		rc.send(t, twalk(8, 1, 9, "tcp"))
		if r := rc.recv(t); r.typ() != msgRwalk || r.tag() != 8 {
			t.Fatalf("%v: during the lingering clunk: type %d tag %d, want the walk's Rwalk", d, r.typ(), r.tag())
		}
		r := rc.recv(t)
		took := time.Since(start)
		if r.typ() != msgRclunk || r.tag() != 7 || took < 900*time.Millisecond || took > 3*time.Second {
			t.Fatalf("%v: clunk of the last file: type %d tag %d after %v, want Rclunk after the linger time, 1 s", d, r.typ(), r.tag(), took)
		}
		t.Logf("%v: the last clunk took %v", d, took)
	}
}
