package fuse

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// signalPoll is how often a blocked call looks for a signal its INTERRUPT
// did not bring.
const signalPoll = 100 * time.Millisecond

// watchSignals backs up FUSE INTERRUPT for the calls that may block
// (OPEN, READ, WRITE). The kernel sends one INTERRUPT per signal; should
// it be lost (bazil.org/fuse, which served these files before, registered
// a request only once its goroutine ran, and dropped an INTERRUPT that
// overtook it), the caller would stay stuck until the call completed on
// its own: a Ctrl-C'd `cat data` on an idle connection forever, and a
// killed process unkillable (a request the daemon has read is waited for
// uninterruptibly, SIGKILL included). This server registers a request
// before it serves it and answers an INTERRUPT it cannot place with
// EAGAIN, which makes the kernel send it again, so none is lost; the
// watch stays as a second line.
//
// A thread interrupted in a FUSE request keeps its signal pending until
// the request ends, so every signalPoll the server looks at the pending
// signals of each calling thread whose request has run for signalPoll or
// longer (/proc/TID/status) and cancels the call, as the INTERRUPT would
// have, when one is pending that the thread neither blocks nor ignores.
// tid 0 (a request the kernel makes itself) is not watched. The watch
// costs a request nothing: it reads the in-flight table.
func (s *server) watchSignals() {
	t := time.NewTicker(signalPoll)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.checkSignals(time.Now())
		}
	}
}

// checkSignals cancels the in-flight requests, older than signalPoll at
// now, whose thread has a signal pending.
func (s *server) checkSignals(now time.Time) {
	type cand struct {
		c      *reqCtx
		unique uint64
		tid    uint32
	}
	var cands []cand
	s.rmu.Lock()
	for u, c := range s.inflight {
		if c.tid != 0 && now.Sub(c.start) >= signalPoll {
			cands = append(cands, cand{c, u, c.tid})
		}
	}
	s.rmu.Unlock()
	for _, x := range cands {
		if !signalPending(int(x.tid)) {
			continue
		}
		s.rmu.Lock()
		if s.inflight[x.unique] == x.c {
			x.c.cancel()
		}
		s.rmu.Unlock()
	}
}

// signalPending reports whether thread tid has a signal pending (its own
// or its process's) that it neither blocks nor ignores: one that makes
// the kernel interrupt the FUSE request it waits in. A thread that is gone
// counts as interrupted: nobody waits for the answer.
func signalPending(tid int) bool {
	f, err := os.Open("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return os.IsNotExist(err)
	}
	defer f.Close()
	masks, err := parseSigMasks(bufio.NewScanner(f))
	if err != nil {
		return false
	}
	pending := masks["SigPnd"] | masks["ShdPnd"]
	return pending&^masks["SigBlk"]&^masks["SigIgn"] != 0
}

// parseSigMasks reads the signal masks (hexadecimal) of a /proc status
// file.
func parseSigMasks(sc *bufio.Scanner) (map[string]uint64, error) {
	m := make(map[string]uint64, 4)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		switch k {
		case "SigPnd", "ShdPnd", "SigBlk", "SigIgn":
		default:
			continue
		}
		if !ok {
			return nil, fmt.Errorf("status line %q", sc.Text())
		}
		x, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, err
		}
		m[k] = x
	}
	if len(m) != 4 {
		return nil, fmt.Errorf("status lacks signal masks")
	}
	return m, sc.Err()
}
