package memctl

import (
	"context"
	"errors"
	"math/bits"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// StreamWspace is sndbuf - wmem_queued. Mirrors sk_stream_wspace.
func (sk *Sock) StreamWspace() int { return sk.Sndbuf() - sk.WmemQueued() }

// StreamMinWspace is wmem_queued / 2. Mirrors sk_stream_min_wspace.
func (sk *Sock) StreamMinWspace() int { return sk.WmemQueued() >> 1 }

// streamMemoryFree mirrors __sk_stream_memory_free: wmem_queued < sndbuf and
// the protocol's hook (TCP's not-sent low-water mark).
func (sk *Sock) streamMemoryFree(wake int) bool {
	if sk.wmemQueued.Load() >= sk.sndbuf.Load() {
		return false
	}
	if sk.StreamMemoryFree != nil {
		return sk.StreamMemoryFree(sk, wake)
	}
	return true
}

// StreamMemoryFreeNow reports whether a stream sender may queue a new skb.
// Mirrors sk_stream_memory_free. Lock-free.
func (sk *Sock) StreamMemoryFreeNow() bool { return sk.streamMemoryFree(0) }

// StreamIsWriteable is the "one third free" rule: wspace >= wmem_queued/2
// (writable once wmem_queued <= 2/3 sndbuf) and the memory-free check with
// the given wake (1 for poll and wake-ups). Mirrors __sk_stream_is_writeable.
func (sk *Sock) StreamIsWriteable(wake int) bool {
	return sk.StreamWspace() >= sk.StreamMinWspace() && sk.streamMemoryFree(wake)
}

// StreamWriteSpace is the write-space callback of stream sockets: when the
// socket is writable by the one-third rule (wake = 1), it clears
// SOCK_NOSPACE and wakes the wait queue. Mirrors sk_stream_write_space
// (net/core/stream.c). Lock-free; does not block.
func StreamWriteSpace(sk *Sock) {
	if sk.StreamIsWriteable(1) {
		sk.ClearFlag(FlagNoSpace)
		sk.Wq.Wake()
	}
}

// SockWriteable is the datagram writability rule: raw wmem_alloc < sndbuf/2.
// Mirrors sock_writeable.
func (sk *Sock) SockWriteable() bool { return sk.wmemAlloc.Load() < sk.sndbuf.Load()>>1 }

// SockDefWriteSpace is the default write-space callback: it wakes the wait
// queue only when the socket is writable (half of sndbuf free), so a writer
// can make significant progress. Mirrors sock_def_write_space
// (net/core/sock.c). Lock-free; does not block.
func SockDefWriteSpace(sk *Sock) {
	if sk.SockWriteable() {
		sk.Wq.Wake()
	}
}

// StreamModerateSndbuf shrinks sndbuf to max(min(sndbuf, wmem_queued/2),
// SOCK_MIN_SNDBUF) unless SO_SNDBUF locked it. Mirrors
// sk_stream_moderate_sndbuf. Caller holds the socket lock.
func (sk *Sock) StreamModerateSndbuf() {
	if sk.userlocks.Load()&SockSndbufLock != 0 {
		return
	}
	val := min(sk.sndbuf.Load(), sk.wmemQueued.Load()>>1)
	// max with sk_unused_reserved_mem: always 0 here.
	sk.sndbuf.Store(max(val, int64(sk.net.Profile.SockMinSndbuf())))
}

// errFromCtx maps the end of a wait to an errno: an expired deadline is a
// send timeout (SO_SNDTIMEO) and gives EAGAIN, a cancellation is a signal and
// gives EINTR.
func errFromCtx(ctx context.Context) error {
	// The cause, not Err: a context ended by a simulated clock's deadline
	// reports Canceled with DeadlineExceeded as its cause.
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return syscall.EAGAIN
	}
	return syscall.EINTR
}

// StreamWaitMemory blocks a stream writer until sk_stream_memory_free holds,
// following sk_stream_wait_memory (net/core/stream.c): an error or
// SEND_SHUTDOWN gives EPIPE; nonblock (a zero timeout) sets SOCK_NOSPACE and
// gives EAGAIN; cancellation of ctx gives EINTR, and its deadline expiring
// (the send timeout) gives EAGAIN. If memory is already free on entry (the
// caller failed an allocation), it first sleeps a random "vm_wait" interval:
// Linux sleeps 2 + rand(HZ/5) jiffies; sockfs sleeps a random duration up to
// Options.VMWaitMax (200 ms by default), cut short by an error, shutdown or
// ctx.
//
// Caller holds the socket lock, passed as lock: it is released while
// sleeping and re-acquired before returning, like sk_wait_event (lock may be
// nil if the caller holds none). May block; ctx cancels it. Charges nothing.
func (sk *Sock) StreamWaitMemory(ctx context.Context, nonblock bool, lock sync.Locker) error {
	var vmWait time.Duration
	if sk.StreamMemoryFreeNow() && sk.net.vmWaitMax > 0 {
		vmWait = time.Millisecond + rand.N(sk.net.vmWaitMax)
	}
	for {
		sk.SetFlag(FlagAsyncNoSpace)
		if sk.err.Load() != 0 || sk.shutdown.Load()&SendShutdown != 0 {
			return syscall.EPIPE
		}
		if nonblock {
			sk.SetFlag(FlagNoSpace)
			return syscall.EAGAIN
		}
		if ctx.Err() != nil {
			return errFromCtx(ctx)
		}
		sk.ClearFlag(FlagAsyncNoSpace)
		if vmWait == 0 && sk.StreamMemoryFreeNow() {
			return nil
		}
		sk.SetFlag(FlagNoSpace)
		sk.writePending.Add(1)
		err := sk.waitEvent(ctx, lock, vmWait, func() bool {
			return sk.err.Load() != 0 || sk.shutdown.Load()&SendShutdown != 0 ||
				(vmWait == 0 && sk.StreamMemoryFreeNow())
		})
		sk.writePending.Add(-1)
		vmWait = 0
		if err != nil {
			return err
		}
	}
}

// waitEvent sleeps on the wait queue until cond holds, ctx ends or (when
// timeout > 0) the timeout passes, with lock released while sleeping.
// Mirrors sk_wait_event. It returns an error only when ctx ended.
func (sk *Sock) waitEvent(ctx context.Context, lock sync.Locker, timeout time.Duration, cond func() bool) error {
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	if lock != nil {
		lock.Unlock()
		defer lock.Lock()
	}
	for {
		w := sk.Wq.Prepare()
		if cond() {
			sk.Wq.Finish(w)
			return nil
		}
		select {
		case <-w.C():
			sk.Wq.Finish(w)
		case <-timer:
			sk.Wq.Finish(w)
			return nil
		case <-ctx.Done():
			sk.Wq.Finish(w)
			return errFromCtx(ctx)
		}
	}
}

// TCPShouldExpandSndbuf says whether a TCP socket that hit SOCK_NOSPACE may
// grow its send buffer: not SO_SNDBUF-locked, not under memory pressure, the
// pool below tcp_mem[0], and the congestion window not fully used. Mirrors
// tcp_should_expand_sndbuf (net/ipv4/tcp_input.c); the caller passes
// tcp_packets_in_flight and snd_cwnd.
func (sk *Sock) TCPShouldExpandSndbuf(packetsInFlight, cwnd uint32) bool {
	if sk.userlocks.Load()&SockSndbufLock != 0 {
		return false
	}
	p := sk.proto
	if p != nil {
		if p.UnderMemoryPressure() {
			return false // no SO_RESERVE_MEM, so no unused reserve to keep
		}
		if p.MemoryAllocated() >= p.MemLimit(0) {
			return false
		}
	}
	return packetsInFlight < cwnd
}

// TCPSndbufExpandSize computes the send buffer tcp_sndbuf_expand wants:
// per_mss = roundup_pow_of_two(max(mssClamp, mssCache) + MAX_TCP_HEADER +
// A_shinfo) + A_skb; nr_segs = max(10, cwnd, reordering+1); sndmem =
// factor * nr_segs * per_mss (factor is the congestion control's
// sndbuf_expand, 2 by default, 3 for BBR). Pure arithmetic.
func TCPSndbufExpandSize(p *Profile, mssClamp, mssCache, cwnd, reordering, factor int) int {
	perMSS := max(mssClamp, mssCache) + p.MaxTCPHeader + p.ShinfoSize
	perMSS = roundupPowOfTwo(perMSS) + p.SKBSize
	nrSegs := max(10, cwnd, reordering+1)
	if factor <= 0 {
		factor = 2
	}
	return factor * nrSegs * perMSS
}

// TCPSndbufExpand grows sndbuf to min(TCPSndbufExpandSize, tcp_wmem[2]) if
// that is larger; it never shrinks it. Mirrors tcp_sndbuf_expand. The caller
// checks SOCK_SNDBUF_LOCK (tcp_init_buffer_space) or TCPShouldExpandSndbuf
// (tcp_new_space) first.
func (sk *Sock) TCPSndbufExpand(mssClamp, mssCache, cwnd, reordering, factor int) {
	sndmem := TCPSndbufExpandSize(&sk.net.Profile, mssClamp, mssCache, cwnd, reordering, factor)
	if sk.Sndbuf() < sndmem {
		sk.SetSndbuf(min(sndmem, sk.net.Sysctls.TCPWmem()[2]))
	}
}

func roundupPowOfTwo(x int) int {
	if x <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(x-1))
}

// TCPOutOfMemory reports whether the socket should be aborted for memory:
// wmem_queued > SOCK_MIN_SNDBUF and the TCP pool above tcp_mem[2]. Mirrors
// tcp_out_of_memory (include/net/tcp.h).
func (sk *Sock) TCPOutOfMemory() bool {
	p := sk.proto
	return p != nil && sk.WmemQueued() > sk.net.Profile.SockMinSndbuf() && p.MemoryAllocated() > p.MemLimit(2)
}

// TCPTooManyOrphans reports orphans << shift > max. Mirrors
// tcp_too_many_orphans.
func TCPTooManyOrphans(orphans int64, shift uint, maxOrphans int64) bool {
	return orphans<<shift > maxOrphans
}

// TCPNotsentLowatFor returns the socket's not-sent low-water mark: the
// per-socket TCP_NOTSENT_LOWAT if set (non-zero), else the live sysctl.
// Mirrors tcp_notsent_lowat.
func (s *Sysctls) TCPNotsentLowatFor(perSocket uint32) uint32 {
	if perSocket != 0 {
		return perSocket
	}
	return s.TCPNotsentLowat()
}

// TCPStreamMemoryFree is TCP's stream_memory_free rule: (notsent << wake) <
// lowat in 32-bit arithmetic, where notsent = write_seq - snd_nxt. Mirrors
// tcp_stream_memory_free (net/ipv4/tcp_ipv4.c). A TCP socket installs a
// Sock.StreamMemoryFree hook that calls this with its own sequence numbers
// and Sysctls.TCPNotsentLowatFor.
func TCPStreamMemoryFree(notsent, lowat uint32, wake int) bool {
	return notsent<<uint(wake) < lowat
}

// TCPWqueueTooBig reports whether tcp_fragment must refuse to split an skb in
// the middle of the retransmit queue: wmem_queued/2 > sndbuf +
// 2*SKB_TRUESIZE(64 KiB). The caller checks the queue-position exceptions and
// counts TcpExtTCPWqueueTooBig. Mirrors the limit in tcp_fragment.
func (sk *Sock) TCPWqueueTooBig() bool {
	limit := int64(sk.Sndbuf()) + 2*int64(sk.net.Profile.TruesizeOf(65536))
	return sk.wmemQueued.Load()>>1 > limit
}

// TCPBacklogLimit is the TCP backlog limit 2*rcvbuf + sndbuf/2 + 64 KiB,
// capped at UINT_MAX. Mirrors the limit in tcp_add_backlog.
func (sk *Sock) TCPBacklogLimit() uint32 {
	l := 2*int64(sk.Rcvbuf()) + int64(sk.Sndbuf())/2 + 64*1024
	return uint32(min(l, 1<<32-1))
}

// RcvqueuesFull reports backlog.len + rmem_alloc > limit (the arriving skb is
// not counted). Mirrors sk_rcvqueues_full.
func (sk *Sock) RcvqueuesFull(limit uint32) bool {
	return sk.backlogLen.Load()+sk.rmemAlloc.Load() > int64(limit)
}

// AddBacklog accounts an skb of the given truesize appended to the backlog,
// or returns ENOBUFS if the queues are full (the caller drops it, bumps
// sk_drops and, for TCP, TcpExtTCPBacklogDrop). Mirrors sk_add_backlog.
// Caller holds the backlog lock.
func (sk *Sock) AddBacklog(truesize int, limit uint32) error {
	if sk.RcvqueuesFull(limit) {
		return syscall.ENOBUFS
	}
	sk.backlogLen.Add(int64(truesize))
	return nil
}

// ResetBacklog sets backlog.len to 0, as __release_sock does after
// processing the backlog.
func (sk *Sock) ResetBacklog() { sk.backlogLen.Store(0) }
