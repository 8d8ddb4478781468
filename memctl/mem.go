package memctl

// MemKind says which side of a socket a schedule is for.
type MemKind int

// Kinds of memory schedule (SK_MEM_SEND, SK_MEM_RECV).
const (
	MemSend MemKind = iota
	MemRecv
)

// memPages is sk_mem_pages: bytes rounded up to pages.
func (sk *Sock) memPages(amt int64) int64 {
	ps := int64(sk.net.Profile.PageSize)
	return (amt + ps - 1) / ps
}

// forwardAllocAdd mirrors sk_forward_alloc_add. Caller holds the socket lock.
func (sk *Sock) forwardAllocAdd(v int64) { sk.forwardAlloc.Store(sk.forwardAlloc.Load() + v) }

// WmemSchedule makes sure forward_alloc covers size bytes of send memory,
// drawing pages from the pool if needed; false means the pool refused.
// Always true for an unaccounted socket. Mirrors sk_wmem_schedule
// (include/net/sock.h). Caller holds the socket lock; does not block.
func (sk *Sock) WmemSchedule(size int) bool {
	if sk.proto == nil {
		return true
	}
	delta := int64(size) - sk.forwardAlloc.Load()
	return delta <= 0 || sk.MemSchedule(int(delta), MemSend)
}

// RmemSchedule is WmemSchedule for receive memory. Mirrors sk_rmem_schedule
// (without the pfmemalloc exemption, which has no meaning here). Caller holds
// the socket lock (UDP: the receive queue lock); does not block.
func (sk *Sock) RmemSchedule(size int) bool {
	if sk.proto == nil {
		return true
	}
	delta := int64(size) - sk.forwardAlloc.Load()
	return delta <= 0 || sk.MemSchedule(int(delta), MemRecv)
}

// MemSchedule adds ceil(size/PAGE_SIZE) pages to forward_alloc and charges
// them to the pool, undoing both if the pool refuses. Mirrors
// __sk_mem_schedule (net/core/sock.c). Caller holds the socket lock.
func (sk *Sock) MemSchedule(size int, kind MemKind) bool {
	amt := sk.memPages(int64(size))
	bytes := amt * int64(sk.net.Profile.PageSize)
	sk.forwardAllocAdd(bytes)
	if !sk.memRaiseAllocated(int64(size), amt, kind) {
		sk.forwardAllocAdd(-bytes)
		return false
	}
	return true
}

// memRaiseAllocated charges amt pages to the pool and decides whether the
// socket may have them, in Linux's order: under tcp_mem[0] grant and leave
// pressure; above [1] enter pressure; above [2] suppress; otherwise grant if
// the socket is under its rmem0/wmem0 minimum, or if the protocol has no
// pressure flag, or pressure is off, or the socket holds less than its fair
// share (mem[2] > sockets_allocated * pages held). Suppressing a stream send
// moderates sndbuf and still grants if wmem_queued + size >= sndbuf (the
// sender would block on sndbuf anyway). A refusal gives the pages back.
// Mirrors __sk_mem_raise_allocated (net/core/sock.c) without memcg.
func (sk *Sock) memRaiseAllocated(size, amt int64, kind MemKind) bool {
	p := sk.proto
	p.MemoryAllocatedAdd(int(amt))
	allocated := p.MemoryAllocated()

	if allocated <= p.MemLimit(0) {
		p.LeaveMemoryPressure()
		return true
	}
	if allocated > p.MemLimit(1) {
		p.EnterMemoryPressure()
	}
	if allocated <= p.MemLimit(2) {
		if kind == MemRecv {
			if sk.rmemAlloc.Load() < p.rmem0() {
				return true
			}
		} else {
			wmem0 := p.wmem0()
			if sk.typ == SockStream {
				if sk.wmemQueued.Load() < wmem0 {
					return true
				}
			} else if sk.wmemAlloc.Load() < wmem0 {
				return true
			}
		}
		if p.HasMemoryPressure() {
			if !p.UnderMemoryPressure() {
				return true
			}
			alloc := p.SocketsAllocated()
			held := sk.wmemQueued.Load() + sk.rmemAlloc.Load() + sk.forwardAlloc.Load()
			if p.MemLimit(2) > alloc*sk.memPages(held) {
				return true
			}
		}
	}
	// suppress_allocation:
	if kind == MemSend && sk.typ == SockStream {
		sk.StreamModerateSndbuf()
		if sk.wmemQueued.Load()+size >= sk.sndbuf.Load() {
			return true
		}
	}
	p.MemoryAllocatedSub(int(amt))
	return false
}

// ForcedMemSchedule charges the pages needed for size bytes with no limit
// check, for the first skb of an empty write queue, a FIN, or an in-order
// skb arriving at an empty receive queue. Mirrors sk_forced_mem_schedule
// (net/ipv4/tcp_output.c). Caller holds the socket lock.
func (sk *Sock) ForcedMemSchedule(size int) {
	if sk.proto == nil {
		return
	}
	delta := int64(size) - sk.forwardAlloc.Load()
	if delta <= 0 {
		return
	}
	amt := sk.memPages(delta)
	sk.forwardAllocAdd(amt * int64(sk.net.Profile.PageSize))
	sk.proto.MemoryAllocatedAdd(int(amt))
}

// MemCharge consumes size bytes of forward_alloc. Mirrors sk_mem_charge.
// Caller holds the socket lock.
func (sk *Sock) MemCharge(size int) {
	if sk.proto == nil {
		return
	}
	sk.forwardAllocAdd(-int64(size))
}

// MemUncharge returns size bytes to forward_alloc and reclaims whole pages.
// Mirrors sk_mem_uncharge. Caller holds the socket lock.
func (sk *Sock) MemUncharge(size int) {
	if sk.proto == nil {
		return
	}
	sk.forwardAllocAdd(int64(size))
	sk.MemReclaim()
}

// MemReclaim gives whole pages of forward_alloc back to the pool, leaving
// less than one page (the 6.0+ rule). Mirrors sk_mem_reclaim. Caller holds
// the socket lock.
func (sk *Sock) MemReclaim() {
	if sk.proto == nil {
		return
	}
	// sk_unused_reserved_mem is always 0: no SO_RESERVE_MEM without memcg.
	if r := sk.forwardAlloc.Load(); r >= int64(sk.net.Profile.PageSize) {
		sk.memReclaimBytes(r)
	}
}

// memReclaimBytes returns the whole pages of amount bytes. Mirrors
// __sk_mem_reclaim.
func (sk *Sock) memReclaimBytes(amount int64) {
	pages := amount >> sk.net.Profile.pageShift()
	sk.forwardAllocAdd(-(pages << sk.net.Profile.pageShift()))
	sk.MemReduceAllocated(int(pages))
}

// MemReduceAllocated returns pages to the pool and leaves pressure if the
// pool is now strictly below mem[0] (the raise path leaves at <= mem[0]).
// Mirrors __sk_mem_reduce_allocated. Lock-free.
func (sk *Sock) MemReduceAllocated(pages int) {
	p := sk.proto
	p.MemoryAllocatedSub(pages)
	if p.UnderMemoryPressure() && p.MemoryAllocated() < p.MemLimit(0) {
		p.LeaveMemoryPressure()
	}
}

// WmemQueuedAdd adds n (may be negative) to wmem_queued. Mirrors
// sk_wmem_queued_add. Caller holds the socket lock.
func (sk *Sock) WmemQueuedAdd(n int) { sk.wmemQueued.Store(sk.wmemQueued.Load() + int64(n)) }

// SkbEntail accounts a new send skb of the given truesize queued on the write
// queue: wmem_queued += T, forward_alloc -= T. Mirrors the accounting of
// tcp_skb_entail. Caller holds the socket lock.
func (sk *Sock) SkbEntail(truesize int) {
	sk.WmemQueuedAdd(truesize)
	sk.MemCharge(truesize)
}

// WmemFreeSkb un-charges a freed send skb: wmem_queued -= T and
// sk_mem_uncharge(T). Sets SOCK_QUEUE_SHRUNK. Mirrors sk_wmem_free_skb /
// tcp_wmem_free_skb. Caller holds the socket lock.
func (sk *Sock) WmemFreeSkb(truesize int) {
	sk.SetFlag(FlagQueueShrunk)
	sk.WmemQueuedAdd(-truesize)
	sk.MemUncharge(truesize)
}

// TCPWmemSchedule schedules copy bytes of payload; when the pool refuses it
// force-charges up to tcp_wmem[0] - wmem_queued so a socket with little
// queued can make progress, and returns how much of copy may be added (0
// means wait for memory). Mirrors tcp_wmem_schedule (net/ipv4/tcp.c).
// Caller holds the socket lock.
func (sk *Sock) TCPWmemSchedule(copy int) int {
	if sk.WmemSchedule(copy) {
		return copy
	}
	left := sk.net.Sysctls.TCPWmem()[0] - sk.WmemQueued()
	if left > 0 {
		sk.ForcedMemSchedule(min(left, copy))
	}
	return min(copy, sk.ForwardAlloc())
}
