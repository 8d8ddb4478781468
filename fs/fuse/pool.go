package fuse

import "sync"

// bufPool keeps up to max buffers of one size for reuse. Unlike sync.Pool
// it is not emptied by the garbage collector, so a steady stream of
// requests allocates nothing.
type bufPool struct {
	size int
	max  int
	mu   sync.Mutex
	free [][]byte
}

func (p *bufPool) get() []byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	return make([]byte, p.size)
}

func (p *bufPool) put(b []byte) {
	if cap(b) != p.size {
		return
	}
	p.mu.Lock()
	if len(p.free) < p.max {
		p.free = append(p.free, b[:p.size])
	}
	p.mu.Unlock()
}

// reqBufs hold whole requests (a WRITE of up to maxIO); a reader takes one
// for each read(2) of /dev/fuse and gives it back once the request's
// arguments are copied out (or, for WRITE, once the write is done).
var reqBufs = &bufPool{size: reqBufLen, max: 16}

// replyBufs hold READ and READDIR replies: the out header followed by up
// to the class's payload. A blocked read holds its buffer while it waits,
// as the kernel's own read would hold its pages.
var replyBufs = []*bufPool{
	{size: outHeaderLen + 4<<10, max: 64},
	{size: outHeaderLen + 64<<10, max: 32},
	{size: outHeaderLen + 128<<10, max: 32},
	{size: outHeaderLen + maxIO, max: 16},
}

// replyPool returns the smallest class that holds n payload bytes.
func replyPool(n int) *bufPool {
	for _, p := range replyBufs {
		if n <= p.size-outHeaderLen {
			return p
		}
	}
	return replyBufs[len(replyBufs)-1]
}
