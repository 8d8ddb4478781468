package clock

import (
	"context"
	"time"
)

// ContextWithDeadline returns a copy of parent that is cancelled when c's
// time reaches d (Err then returns context.DeadlineExceeded), when the
// returned CancelFunc is called, or when parent is done, whichever happens
// first. It is context.WithDeadline on an injected clock, so that socket
// deadlines work under a Sim: the deadline fires from a Sim callback when the
// simulation reaches it. A deadline already passed cancels at once.
//
// For a *Real clock it is exactly context.WithDeadline. Otherwise it costs
// one Timer on c; the timer is stopped when the context is done, however
// that happens. Always call the CancelFunc. One difference from the standard
// library: a context derived from the returned one reports Canceled (with
// context.Cause DeadlineExceeded) when the clock deadline passes.
func ContextWithDeadline(parent context.Context, c Clock, d time.Time) (context.Context, context.CancelFunc) {
	if _, ok := c.(*Real); ok {
		return context.WithDeadline(parent, d)
	}
	if pd, ok := parent.Deadline(); ok && !pd.After(d) {
		// The parent expires first; a plain cancel context inherits that.
		return context.WithCancel(parent)
	}
	inner, cancel := context.WithCancelCause(parent)
	ctx := &deadlineCtx{Context: inner, deadline: d}
	dur := d.Sub(c.Now())
	if dur <= 0 {
		cancel(context.DeadlineExceeded)
		return ctx, func() { cancel(context.Canceled) }
	}
	t := c.AfterFunc(dur, func() { cancel(context.DeadlineExceeded) })
	stop := context.AfterFunc(inner, func() { t.Stop() }) // parent done first
	return ctx, func() {
		stop()
		t.Stop()
		cancel(context.Canceled)
	}
}

// deadlineCtx reports the clock deadline and DeadlineExceeded as its error
// once the clock timer has cancelled it.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Err() error {
	err := c.Context.Err()
	if err == context.Canceled && context.Cause(c.Context) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}

func (c *deadlineCtx) String() string { return "clock.WithDeadline(" + c.deadline.String() + ")" }
