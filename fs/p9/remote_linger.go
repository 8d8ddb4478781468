package p9

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The last close of a TCP conversation given `linger S` (S > 0) waits on
// a sockfs mount until the data written has been acknowledged (fs.Lingerer:
// FUSE's FLUSH, 9P's clunk). Through `sockfs import` that close is the
// importing side's FLUSH, and the server hears of it only at the clunk,
// which FUSE sends with the RELEASE after close(2) has returned. So the
// import keeps what it needs to wait itself: which conversation each open
// file belongs to, how many of its files are open here, and the linger
// its ctl was given through this import. A close that lingers then reads
// the conversation's status on the server until its send queue is empty
// (qout 0), as the local mount waits for netstack's WaitOutqEmpty; the
// clunk that follows lingers on the server as its last close. Deviation:
// a linger set by another client of the server is not known here, and
// such a close returns at once (the server's clunk still lingers, after
// it). Only a tree imported from its root is followed (paths tcp/N/...).

// lingerPoll is how often a lingering close reads the conversation's
// status on the server.
const lingerPoll = 10 * time.Millisecond

// rconv is a remote TCP conversation with files open through this import.
type rconv struct {
	dir      string // "tcp/N"
	open     int    // its ctl, data and err files open here
	lingerOn bool   // `linger S` written through this import
	linger   time.Duration
}

// rlinger links an open file of a TCP conversation to its rconv.
type rlinger struct {
	r     *Remote
	s     *session // the file's, to read the status as its opener
	ctl   bool     // writes are ctl commands
	learn bool     // a clone or listen open: the conversation is the number its ctl reads
	c     *rconv   // nil until known
}

// track links h, just opened at path, to its conversation, if path is a
// file of one that holds it open (Plan 9's ctl, data and err; a clone or
// listen open is the ctl of the conversation it made, whose number its
// first read returns).
func (r *Remote) track(h *rhandle, s *session, path string) {
	el := strings.Split(path, "/")
	if len(el) < 2 || el[0] != "tcp" {
		return
	}
	l := &rlinger{r: r, s: s}
	switch {
	case len(el) == 2 && el[1] == "clone":
		l.ctl, l.learn = true, true
	case len(el) == 3 && convNumber(el[1]) && el[2] == "listen":
		l.ctl, l.learn = true, true
	case len(el) == 3 && convNumber(el[1]) && (el[2] == "ctl" || el[2] == "data" || el[2] == "err"):
		l.ctl = el[2] == "ctl"
		l.join("tcp/" + el[1])
	default:
		return
	}
	h.l = l
}

func convNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 31)
	return err == nil
}

// join counts the file as one of conversation dir's.
func (l *rlinger) join(dir string) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	c := l.r.convs[dir]
	if c == nil {
		c = &rconv{dir: dir}
		l.r.convs[dir] = c
	}
	c.open++
	l.c = c
}

// read sees what a read at off returned: a clone or listen open's ctl
// names its conversation.
func (l *rlinger) read(p []byte, off int64) {
	if !l.learn || l.c != nil || off != 0 {
		return
	}
	if n := strings.TrimSpace(string(p)); convNumber(n) {
		l.join("tcp/" + n)
	}
}

// wrote sees a ctl command the server accepted: `linger off` or
// `linger S`. A clone or listen open that has not been read yet is read
// here, once, to learn its conversation.
func (l *rlinger) wrote(ctx context.Context, f *cfid, cmd []byte) {
	if !l.ctl {
		return
	}
	fl := strings.Fields(string(cmd))
	if len(fl) != 2 || fl[0] != "linger" {
		return
	}
	if l.c == nil && l.learn {
		var b [32]byte
		if n, err := f.read(ctx, b[:], 0); err == nil {
			l.read(b[:n], 0)
		}
	}
	if l.c == nil {
		return
	}
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if fl[1] == "off" {
		l.c.lingerOn = false
	} else if s, err := strconv.ParseUint(fl[1], 10, 31); err == nil {
		l.c.lingerOn, l.c.linger = true, time.Duration(s)*time.Second
	}
}

// release uncounts the file.
func (l *rlinger) release() {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if c := l.c; c != nil {
		if c.open--; c.open == 0 && l.r.convs[c.dir] == c {
			delete(l.r.convs, c.dir)
		}
	}
}

// lingerTime is the conversation's linger and whether a last close waits
// for it (`linger S`, S > 0), and whether this is its only file open here.
func (l *rlinger) lingerTime() (d time.Duration, on, only bool) {
	if l == nil {
		return 0, false, false
	}
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if l.c == nil {
		return 0, false, false
	}
	return l.c.linger, l.c.lingerOn && l.c.linger > 0, l.c.open == 1
}

// Lingerer (fs): an imported conversation's file lingers as the local
// mount's do, as far as this import knows of the linger (see above).

// LingerSet reports whether `linger S` (S > 0) was written to the
// conversation through this import.
func (h *rhandle) LingerSet() bool {
	_, on, _ := h.l.lingerTime()
	return on
}

// Lingers reports whether closing h now would wait: the linger is on and
// h is the conversation's only file open through this import.
func (h *rhandle) Lingers() bool {
	_, on, only := h.l.lingerTime()
	return on && only
}

// ReleaseWait is Release: the clunk's reply comes once the server's last
// close has lingered.
func (h *rhandle) ReleaseWait(context.Context) { h.Release() }

// Flush waits, if h lingers, until the conversation's send queue on the
// server is empty (its status says qout 0), for at most the linger time
// and until ctx is done.
func (h *rhandle) Flush(ctx context.Context) {
	d, on, only := h.l.lingerTime()
	if !on || !only {
		return
	}
	deadline := time.Now().Add(d)
	for {
		q, err := h.l.qout(ctx)
		if err != nil || q == 0 {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		t := time.NewTimer(min(lingerPoll, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// qout reads the conversation's send queue from its status on the server
// (its "qout N" pair); a Closed one (reset, or never connected) has
// nothing left to wait for.
func (l *rlinger) qout(ctx context.Context) (int, error) {
	f, err := l.s.root.walk(ctx, append(strings.Split(l.c.dir, "/"), "status")...)
	if err != nil {
		return 0, err
	}
	defer f.clunk()
	if err := f.open(ctx, syscall.O_RDONLY); err != nil {
		return 0, err
	}
	var b [1024]byte
	n, err := f.read(ctx, b[:], 0)
	if err != nil {
		return 0, err
	}
	fl := strings.Fields(string(b[:n]))
	if len(fl) == 0 || fl[0] == "Closed" {
		return 0, nil
	}
	for i := 1; i+1 < len(fl); i++ {
		if fl[i] == "qout" {
			return strconv.Atoi(fl[i+1])
		}
	}
	return 0, nil
}
