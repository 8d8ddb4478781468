package fuse

import (
	"context"
	"sync"
	"time"

	netfs "sockfs/fs"
)

// reqCtx is the context of one FUSE request that may block (OPEN, READ,
// WRITE). INTERRUPT and the pending-signal watch cancel it. A reader
// reuses its reqCtx for the next request unless Done was asked for (a
// call that waited may have handed the channel on), so a request that
// does not block allocates no context.
//
// It implements AfterFunc (the context package's afterFuncer), so a
// context derived from it registers here instead of starting a goroutine
// that would call Done at some later time, when the reader may have
// reused it.
type reqCtx struct {
	mu     sync.Mutex
	done   chan struct{}
	err    error
	afters []*afterFn
	used   bool // Done or AfterFunc was called: not reusable
	unique uint64
	tid    uint32
	start  time.Time
	// push: a large WRITE to a TCP data file leaves its socket here, to
	// be pushed once the reply is written (netfs.PushAfterReply).
	push netfs.PushAfterReply
}

func (c *reqCtx) reset(unique uint64, tid uint32) {
	c.done, c.err, c.used, c.afters = nil, nil, false, nil
	c.unique, c.tid, c.start = unique, tid, time.Now()
}

func (c *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value answers netfs.PushAfterReplyKey only.
func (c *reqCtx) Value(key any) any {
	if key == netfs.PushAfterReplyKey {
		return &c.push
	}
	return nil
}

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = true
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

type afterFn struct {
	f       func()
	stopped bool
}

// AfterFunc arranges for f to run in its own goroutine once c is
// cancelled; stop undoes that if f has not started.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = true
	a := &afterFn{f: f}
	if c.err != nil {
		a.stopped = true
		go f()
	} else {
		c.afters = append(c.afters, a)
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.stopped {
			return false
		}
		a.stopped = true
		return true
	}
}

// cancel ends the request's waits with context.Canceled (EINTR).
func (c *reqCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	for _, a := range c.afters {
		if !a.stopped {
			a.stopped = true
			go a.f()
		}
	}
}
