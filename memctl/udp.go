package memctl

import "syscall"

// Condenser is implemented by buffers that can pull their fragments into the
// head and shrink their truesize (skb_condense). UDPEnqueueScheduleSkb uses it
// when the receive queue is more than half full; a Buffer without it is left
// as it is.
type Condenser interface{ Condense() }

// UDPEnqueueScheduleSkb performs UDP's receive admission and charging for one
// datagram. Mirrors __udp_enqueue_schedule_skb (net/ipv4/udp.c, v6.18) with a
// single producer queue:
//
//  1. With T = truesize and rmem = rmem_alloc: if rmem+T > rcvbuf, drop if
//     rcvbuf > INT_MAX/2 or the queue is not empty (rmem != 0); a datagram
//     that does not fit an empty queue is accepted. (Profile UDPAdmitLegacy:
//     drop only if rmem > rcvbuf.) The drop bumps sk_drops and returns
//     ENOMEM; the caller counts UdpRcvbufErrors and UdpInErrors.
//  2. If rmem > rcvbuf/2, the buffer is condensed (see Condenser) and T
//     re-read.
//  3. udp_rmem_schedule(T): when T > forward_alloc, schedule T - fwd bytes of
//     receive memory; if the pool refuses, sk_drops++ and ENOBUFS. In 6.18
//     no SNMP counter moves for this drop (profile UDPMemErrorsCounted
//     restores UdpMemErrors).
//  4. forward_alloc -= T; rmem_alloc += T.
//
// On error the caller frees b. No destructor is installed: UDP un-charges
// explicitly with UDPRmemRelease when the datagram is dequeued. Caller holds
// the receive queue lock, which protects forward_alloc for UDP.
func UDPEnqueueScheduleSkb(sk *Sock, b Buffer) error {
	rmem := sk.rmemAlloc.Load()
	rcvbuf := sk.rcvbuf.Load()
	size := int64(b.Truesize())
	switch sk.net.Profile.UDPAdmission {
	case UDPAdmitLegacy:
		if rmem > rcvbuf {
			sk.DropsInc()
			return syscall.ENOMEM
		}
	default:
		if rmem+size > rcvbuf && (rcvbuf > intMax>>1 || rmem != 0) {
			sk.DropsInc()
			return syscall.ENOMEM
		}
	}
	if rmem > rcvbuf>>1 {
		if c, ok := b.(Condenser); ok {
			c.Condense()
			size = int64(b.Truesize())
		}
	}
	if delta := size - sk.forwardAlloc.Load(); delta > 0 && sk.proto != nil &&
		!sk.MemSchedule(int(delta), MemRecv) {
		sk.DropsInc()
		return syscall.ENOBUFS
	}
	if sk.proto != nil {
		sk.forwardAllocAdd(-size)
	}
	sk.rmemAlloc.Add(size)
	return nil
}

// UDPQueueRcvSkb is UDPEnqueueScheduleSkb plus the SNMP counting of
// __udp_queue_rcv_skb (IPv4) and __udpv6_queue_rcv_skb (v6: the datagram
// is IPv6, counted in the Udp6 group): an ENOMEM drop counts RcvbufErrors
// and InErrors; an ENOBUFS drop counts MemErrors and InErrors only with a
// profile that has UDPMemErrorsCounted (kernels before 6.18). Same locking
// as UDPEnqueueScheduleSkb.
func UDPQueueRcvSkb(sk *Sock, b Buffer, v6 bool) error {
	err := UDPEnqueueScheduleSkb(sk, b)
	if err == nil {
		return nil
	}
	group := Counter(0) // Udp6 counters lie in Udp's order, this far on
	if v6 {
		group = Udp6InDatagrams - UdpInDatagrams
	}
	m := sk.net.MIB
	if err == syscall.ENOMEM {
		m.Inc(group + UdpRcvbufErrors)
		m.Inc(group + UdpInErrors)
	} else if sk.net.Profile.UDPMemErrorsCounted {
		m.Inc(group + UdpMemErrors)
		m.Inc(group + UdpInErrors)
	}
	return err
}

// UDPRmemRelease un-charges size bytes (a dequeued datagram's truesize) with
// UDP's deferred release. Mirrors udp_rmem_release (net/ipv4/udp.c).
//
// partial is true on the read path (udp_skb_destructor): size is added to
// forward_deficit, and nothing else happens while the deficit is below
// forward_threshold (rcvbuf/4) and readerQueueEmpty is false. Otherwise (or
// with partial false, the close path) the whole deficit is released:
// rmem_alloc -= deficit, forward_alloc keeps up to one page (partial) or
// nothing (close), and whole pages go back to the pool.
//
// Caller holds the receive queue lock (Linux takes sk_receive_queue.lock
// here); readerQueueEmpty tells whether the reader queue is now empty.
func UDPRmemRelease(sk *Sock, size int, partial, readerQueueEmpty bool) {
	sz := int64(size)
	if partial {
		sz = sk.forwardDeficit.Load() + sz
		sk.forwardDeficit.Store(sz)
		if sz < sk.forwardThreshold.Load() && !readerQueueEmpty {
			return
		}
	} else {
		sz += sk.forwardDeficit.Load()
	}
	sk.forwardDeficit.Store(0)
	if sk.proto != nil {
		var p int64
		if partial {
			p = 1
		}
		ps := int64(sk.net.Profile.PageSize)
		amt := (sz + sk.forwardAlloc.Load() - p) &^ (ps - 1)
		sk.forwardAllocAdd(sz - amt)
		if amt != 0 {
			sk.MemReduceAllocated(int(amt / ps))
		}
	}
	sk.rmemAlloc.Add(-sz)
}

// UDPRqueueGet is the receive queue length UDP reports (ss Recv-Q,
// /proc/net/udp): rmem_alloc - forward_deficit. Mirrors udp_rqueue_get.
func UDPRqueueGet(sk *Sock) int {
	return int(sk.rmemAlloc.Load() - sk.forwardDeficit.Load())
}

// ForwardDeficit is udp_sock.forward_deficit.
func (sk *Sock) ForwardDeficit() int { return int(sk.forwardDeficit.Load()) }

// ForwardThreshold is udp_sock.forward_threshold (rcvbuf >> 2).
func (sk *Sock) ForwardThreshold() int { return int(sk.forwardThreshold.Load()) }
