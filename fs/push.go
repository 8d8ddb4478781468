package fs

import (
	"context"

	"sockfs/netstack"
)

// PushAfterReply lets a file server answer a large write to a TCP data
// file before the data goes to the device. A server whose request context
// answers Value(PushAfterReplyKey) with a *PushAfterReply promises to
// call its Push once the reply is written; a data Write of at least
// pushAfterReplyMin bytes then queues its data without sending it
// (netstack's SendNoPush) and leaves the socket here.
//
// Why: over a TUN each 64 KiB segment handed to the device is a write(2)
// in which the kernel runs its own TCP receive. With those inline, the
// writer of a 1 MiB FUSE WRITE waited for all of them before it could
// send its next request; answered first, the next request (and the
// kernel's copy of its data into the server) proceeds beside them. A
// write below pushAfterReplyMin is sent before the reply as before: its
// one segment is what a request/response peer is waiting for, and
// putting the reply's system call in front of it would only delay it.
type PushAfterReply struct{ s *netstack.TCPSock }

type pushAfterReplyKey struct{}

// PushAfterReplyKey is the context key a server answers with its
// *PushAfterReply.
var PushAfterReplyKey any = pushAfterReplyKey{}

// pushAfterReplyMin is the smallest write whose push waits for the reply:
// one full TSO segment.
const pushAfterReplyMin = 64 << 10

// Push sends what the write left queued, if anything (netstack's Push).
func (p *PushAfterReply) Push() {
	if s := p.s; s != nil {
		p.s = nil
		s.Push()
	}
}

// Pending reports whether a write left data for Push to send.
func (p *PushAfterReply) Pending() bool { return p.s != nil }

// pushAfterReply returns the server's slot if it offers one and a write of
// n bytes should use it.
func pushAfterReply(ctx context.Context, n int) *PushAfterReply {
	if n < pushAfterReplyMin {
		return nil
	}
	p, _ := ctx.Value(PushAfterReplyKey).(*PushAfterReply)
	return p
}
