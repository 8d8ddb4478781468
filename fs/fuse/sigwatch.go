package fuse

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// signalPoll is how often a blocked call looks for a signal its INTERRUPT
// did not bring.
const signalPoll = 100 * time.Millisecond

// watchSignals backs up FUSE INTERRUPT for a call that may block. bazil
// registers a request in the goroutine that serves it, so an INTERRUPT
// read microseconds after its request can find nothing to cancel and is
// answered and forgotten; the kernel sends only one. The caller was then
// stuck until the call completed on its own: a Ctrl-C'd `cat data` on an
// idle connection forever, and a killed process unkillable (a request the
// daemon has read is waited for uninterruptibly, SIGKILL included).
//
// A thread interrupted in a FUSE request keeps its signal pending until
// the request ends, so while the call runs we look at the calling thread's
// pending signals every signalPoll (/proc/TID/status) and cancel the call,
// as the INTERRUPT would have, when one is pending that the thread neither
// blocks nor ignores. The returned stop ends the watch; call it when the
// call returns. tid 0 (a request the kernel makes itself) is not watched.
func watchSignals(ctx context.Context, tid uint32) (context.Context, func()) {
	if tid == 0 {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &sigWatch{tid: int(tid), ctx: ctx, cancel: cancel}
	w.mu.Lock()
	w.t = time.AfterFunc(signalPoll, w.check)
	w.mu.Unlock()
	return ctx, w.stop
}

type sigWatch struct {
	tid    int
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (w *sigWatch) check() {
	if w.ctx.Err() != nil {
		return
	}
	if signalPending(w.tid) {
		w.cancel()
		return
	}
	w.mu.Lock()
	if !w.stopped {
		w.t.Reset(signalPoll)
	}
	w.mu.Unlock()
}

func (w *sigWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.t.Stop()
	w.mu.Unlock()
	w.cancel()
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
