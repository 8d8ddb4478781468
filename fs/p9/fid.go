package p9

import (
	"context"
	"sync"

	"sockfs/fs"
)

// fid is a client's reference to a node, and once opened, to an open
// handle. The connection's table holds one reference; each request that
// uses the fid holds another while it runs, so that the handle is released
// (the last close of a conversation starts its graceful close) only once
// the fid is clunked and no request is still using it, as fs.Handle's
// contract wants.
type fid struct {
	id  uint32
	uid uint32
	// ctx is cancelled when the fid is clunked: requests still running on
	// it (a read blocked on data) end with EINTR.
	ctx    context.Context
	cancel context.CancelFunc

	refs int // under conn.mu

	mu      sync.Mutex
	path    []fs.Node // from the attach root to the node, for ".."
	state   fidState
	h       fs.Handle
	read    bool
	written bool // opened for writing
	// 9P2000 directory reads: the listing taken at offset 0, the next
	// entry and the byte offset the next read must ask for.
	dir    []fs.Node
	dirIdx int
	dirOff uint64
}

type fidState uint8

const (
	fidWalked  fidState = iota // may be walked, opened, stat'ed
	fidOpening                 // an open is in flight
	fidOpen
)

// node is the node f stands for.
func (f *fid) node() fs.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path[len(f.path)-1]
}

// walkPath is the path from the attach root to f's node.
func (f *fid) walkPath() []fs.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path
}

// newFid makes a fid for path; the caller puts it in the table.
func (c *conn) newFid(id uint32, path []fs.Node, uid uint32) *fid {
	f := &fid{id: id, path: path, uid: uid, refs: 1}
	f.ctx, f.cancel = context.WithCancel(c.ctx)
	return f
}

// addFid puts f in the table unless its number is taken or the table is
// full.
func (c *conn) addFid(f *fid) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fids[f.id] != nil {
		f.cancel()
		return errDupFid
	}
	if len(c.fids) >= c.opts.MaxFids {
		f.cancel()
		return errTooManyFids
	}
	c.fids[f.id] = f
	return nil
}

// getFid returns fid id with a reference for request r (putFid drops
// it), and marks r as running on it, so that clunking the fid cancels r.
func (c *conn) getFid(r *request, id uint32) (*fid, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fids[id]
	if f == nil {
		return nil, errUnknownFid
	}
	f.refs++
	r.fid = f
	return f, nil
}

// putFid drops a reference; the last one releases the open handle.
func (c *conn) putFid(f *fid) { c.putFidWait(nil, f) }

// putFidWait is putFid; if ctx is not nil and the reference is the last,
// a handle whose last close lingers (fs.Lingerer: a TCP conversation's
// file after `linger S`) is released lingering, for at most the linger
// time and until ctx is done: the client's clunk, its close(2), waits as
// close(2) of such a socket does.
func (c *conn) putFidWait(ctx context.Context, f *fid) {
	c.mu.Lock()
	f.refs--
	last := f.refs == 0
	c.mu.Unlock()
	if !last {
		return
	}
	f.cancel()
	f.mu.Lock()
	h := f.h
	f.h = nil
	f.mu.Unlock()
	if h == nil {
		return
	}
	if l, ok := h.(fs.Lingerer); ok && ctx != nil {
		l.ReleaseWait(ctx)
		return
	}
	h.Release()
}

// clunk takes fid id out of the table, cancels what still runs on it and
// drops the table's reference.
func (c *conn) clunk(id uint32) error { return c.clunkWait(nil, id) }

// lingers reports whether clunking fid id now may wait (putFidWait): its
// open handle is the last of a conversation whose last close lingers. A
// request that may wait does not run on the connection's reading
// goroutine.
func (c *conn) lingers(id uint32) bool {
	l, ok := c.handleOf(id).(fs.Lingerer)
	return ok && l.Lingers()
}

// handleOf returns the open handle of fid id, nil if there is none.
func (c *conn) handleOf(id uint32) fs.Handle {
	c.mu.Lock()
	f := c.fids[id]
	c.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.h
}

// clunkWait is clunk for a Tclunk or Tremove, the client's close: the
// handle's last release may linger (putFidWait) until ctx is done.
func (c *conn) clunkWait(ctx context.Context, id uint32) error {
	c.mu.Lock()
	f := c.fids[id]
	delete(c.fids, id)
	if f != nil {
		c.cancelFid(f)
	}
	c.mu.Unlock()
	if f == nil {
		return errUnknownFid
	}
	f.cancel()
	c.putFidWait(ctx, f)
	return nil
}

// clunkAll clunks every fid (a new session, or the end of the connection).
func (c *conn) clunkAll() {
	c.mu.Lock()
	ids := make([]uint32, 0, len(c.fids))
	for id := range c.fids {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.clunk(id)
	}
}
