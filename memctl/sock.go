package memctl

import (
	"encoding/binary"
	"sync/atomic"
	"syscall"
)

// SockType is the socket type (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW).
type SockType int

// Socket types, with Linux's values.
const (
	SockStream SockType = 1
	SockDgram  SockType = 2
	SockRaw    SockType = 3
)

// User lock bits (sk_userlocks, include/uapi/linux/socket.h and sock.h).
const (
	SockSndbufLock   = 1 // SOCK_SNDBUF_LOCK: SO_SNDBUF set, no send autotuning
	SockRcvbufLock   = 2 // SOCK_RCVBUF_LOCK: SO_RCVBUF set, no receive autotuning
	SockBufLockMask  = 3 // SOCK_BUF_LOCK_MASK: the bits SO_BUF_LOCK controls
	SockBindaddrLock = 4 // SOCK_BINDADDR_LOCK
	SockBindportLock = 8 // SOCK_BINDPORT_LOCK
)

// Shutdown bits (sk_shutdown).
const (
	RcvShutdown  = 1 // RCV_SHUTDOWN
	SendShutdown = 2 // SEND_SHUTDOWN
)

// Socket flags kept by Sock (Linux spreads them over sk_flags and
// sk_socket->flags).
const (
	FlagNoSpace       = 1 << iota // SOCK_NOSPACE: a writer found no room
	FlagAsyncNoSpace              // SOCKWQ_ASYNC_NOSPACE
	FlagUseWriteQueue             // SOCK_USE_WRITE_QUEUE: sock_wfree does not call WriteSpace (TCP sets it)
	FlagQueueShrunk               // SOCK_QUEUE_SHRUNK
	FlagDead                      // SOCK_DEAD: orphaned
)

// Sock is the accounting half of a socket: what Linux's struct sock carries
// for memory. The socket layer embeds or points to one per socket.
//
// Concurrency contract, as in Linux:
//   - rmem_alloc, wmem_alloc, drops, sndbuf, rcvbuf, user locks, err,
//     shutdown, flags and the reference count are atomics: any goroutine may
//     read them, and the methods that change them may be called without the
//     socket lock.
//   - forward_alloc and wmem_queued are protected by the socket lock (Linux's
//     lock_sock, or for UDP the receive queue lock on the receive side): the
//     methods that modify them say "Caller holds the socket lock". They are
//     stored in atomics only so that lock-free readers (diagnostics, poll)
//     see whole values, like READ_ONCE.
//   - The callback fields (WriteSpace, StreamMemoryFree, OnRelease) are set
//     once by the socket layer before the socket is used.
type Sock struct {
	net   *Net
	proto *Proto
	typ   SockType

	rmemAlloc    atomic.Int64
	wmemAlloc    atomic.Int64 // starts at 1: the bias that keeps the socket alive
	wmemQueued   atomic.Int64 // socket lock
	forwardAlloc atomic.Int64 // socket lock
	backlogLen   atomic.Int64 // socket's backlog spinlock
	sndbuf       atomic.Int64
	rcvbuf       atomic.Int64
	userlocks    atomic.Uint32
	drops        atomic.Uint64
	err          atomic.Int32
	shutdown     atomic.Uint32
	flags        atomic.Uint32
	refcnt       atomic.Int32
	writePending atomic.Int32

	// UDP receive side (struct udp_sock), protected by the receive queue lock.
	forwardDeficit   atomic.Int64
	forwardThreshold atomic.Int64

	// WriteSpace is sk_write_space: called when send memory is freed
	// (sock_wfree) or SO_SNDBUF changes. NewSock installs SockDefWriteSpace
	// for datagram/raw sockets and StreamWriteSpace for stream sockets; the
	// socket layer may wrap them (e.g. to notify pollers).
	WriteSpace func(sk *Sock)
	// StreamMemoryFree is the protocol's stream_memory_free hook
	// (tcp_stream_memory_free: the not-sent low-water mark). nil means always
	// true. wake is 0 for a sender's check and 1 for poll / wake-up checks.
	StreamMemoryFree func(sk *Sock, wake int) bool
	// OnRelease is called once when the last reference is dropped (Put), like
	// sk_free. May be nil.
	OnRelease func(sk *Sock)

	// Wq is the socket's wait queue (sk_wq): writers waiting for memory sleep
	// here, and WriteSpace, SetErr and Shutdown wake it. The socket layer
	// uses it for readers too.
	Wq WaitQueue
}

// NewSock initialises the accounting of a new socket of type typ charged to
// pool proto (nil for unaccounted sockets, like raw and ping): rcvbuf and
// sndbuf from rmem_default / wmem_default, wmem_alloc 1, one reference.
// Mirrors sock_init_data. TCP then calls InitTCPSock, UDP InitUDPSock.
func NewSock(n *Net, typ SockType, proto *Proto) *Sock {
	sk := &Sock{net: n, proto: proto, typ: typ}
	sk.wmemAlloc.Store(1)
	sk.refcnt.Store(1)
	sk.rcvbuf.Store(int64(n.Sysctls.RmemDefault()))
	sk.sndbuf.Store(int64(n.Sysctls.WmemDefault()))
	if typ == SockStream {
		sk.WriteSpace = StreamWriteSpace
	} else {
		sk.WriteSpace = SockDefWriteSpace
	}
	return sk
}

// InitTCPSock applies tcp_init_sock's memory settings: sndbuf tcp_wmem[1],
// rcvbuf tcp_rmem[1], SOCK_USE_WRITE_QUEUE, and counts the socket in
// sockets_allocated. Mirrors tcp_init_sock (net/ipv4/tcp.c).
func (sk *Sock) InitTCPSock() {
	w, r := sk.net.Sysctls.TCPWmem(), sk.net.Sysctls.TCPRmem()
	sk.sndbuf.Store(int64(w[1]))
	sk.rcvbuf.Store(int64(r[1]))
	sk.SetFlag(FlagUseWriteQueue)
	if sk.proto != nil {
		sk.proto.SocketsAllocatedInc()
	}
}

// InitUDPSock sets forward_threshold = rcvbuf >> 2. Mirrors udp_lib_init_sock
// (include/net/udp.h).
func (sk *Sock) InitUDPSock() { sk.forwardThreshold.Store(sk.rcvbuf.Load() >> 2) }

// Clone returns the accounting of an accepted child: it inherits rcvbuf,
// sndbuf and the user locks, with fresh counters (fwd, rmem, wmem_queued 0,
// wmem_alloc 1, one reference) and the same callbacks. Mirrors the memory
// part of sk_clone_lock (net/core/sock.c).
func (sk *Sock) Clone() *Sock {
	c := &Sock{net: sk.net, proto: sk.proto, typ: sk.typ,
		WriteSpace: sk.WriteSpace, StreamMemoryFree: sk.StreamMemoryFree, OnRelease: sk.OnRelease}
	c.wmemAlloc.Store(1)
	c.refcnt.Store(1)
	c.rcvbuf.Store(sk.rcvbuf.Load())
	c.sndbuf.Store(sk.sndbuf.Load())
	c.userlocks.Store(sk.userlocks.Load())
	c.flags.Store(sk.flags.Load() & FlagUseWriteQueue)
	c.forwardThreshold.Store(sk.forwardThreshold.Load())
	return c
}

// Net returns the Net the socket belongs to.
func (sk *Sock) Net() *Net { return sk.net }

// Proto returns the socket's pool, or nil for an unaccounted socket.
func (sk *Sock) Proto() *Proto { return sk.proto }

// Type returns the socket type.
func (sk *Sock) Type() SockType { return sk.typ }

// HasAccount reports whether the socket is charged to a pool. Mirrors
// sk_has_account.
func (sk *Sock) HasAccount() bool { return sk.proto != nil }

// RmemAlloc is sk_rmem_alloc (bytes). Lock-free.
func (sk *Sock) RmemAlloc() int { return int(sk.rmemAlloc.Load()) }

// WmemAlloc is the raw sk_wmem_alloc, including the bias of 1. Lock-free.
func (sk *Sock) WmemAlloc() int { return int(sk.wmemAlloc.Load()) }

// WmemAllocGet is sk_wmem_alloc - 1, the value userspace sees (ss "t",
// SIOCOUTQ). Mirrors sk_wmem_alloc_get.
func (sk *Sock) WmemAllocGet() int { return int(sk.wmemAlloc.Load()) - 1 }

// WmemQueued is sk_wmem_queued (bytes). Lock-free read (READ_ONCE).
func (sk *Sock) WmemQueued() int { return int(sk.wmemQueued.Load()) }

// ForwardAlloc is sk_forward_alloc (bytes). Lock-free read (READ_ONCE).
func (sk *Sock) ForwardAlloc() int { return int(sk.forwardAlloc.Load()) }

// BacklogLen is sk_backlog.len (bytes).
func (sk *Sock) BacklogLen() int { return int(sk.backlogLen.Load()) }

// Sndbuf is sk_sndbuf. Lock-free.
func (sk *Sock) Sndbuf() int { return int(sk.sndbuf.Load()) }

// Rcvbuf is sk_rcvbuf. Lock-free.
func (sk *Sock) Rcvbuf() int { return int(sk.rcvbuf.Load()) }

// SetSndbuf stores sk_sndbuf as is (WRITE_ONCE), for autotuning; it does not
// set the lock or apply SO_SNDBUF's rules.
func (sk *Sock) SetSndbuf(v int) { sk.sndbuf.Store(int64(v)) }

// SetRcvbuf stores sk_rcvbuf as is (WRITE_ONCE), for autotuning.
func (sk *Sock) SetRcvbuf(v int) { sk.rcvbuf.Store(int64(v)) }

// Userlocks returns sk_userlocks.
func (sk *Sock) Userlocks() uint32 { return sk.userlocks.Load() }

// SetUserlocks ORs bits into sk_userlocks.
func (sk *Sock) SetUserlocks(bits uint32) { sk.userlocks.Or(bits) }

// Drops is sk_drops.
func (sk *Sock) Drops() uint64 { return sk.drops.Load() }

// DropsInc adds 1 to sk_drops. Mirrors sk_drops_inc.
func (sk *Sock) DropsInc() { sk.drops.Add(1) }

// DropsAdd adds n to sk_drops. Mirrors sk_drops_add.
func (sk *Sock) DropsAdd(n int) { sk.drops.Add(uint64(n)) }

// Flags returns the socket flags (Flag*).
func (sk *Sock) Flags() uint32 { return sk.flags.Load() }

// SetFlag sets flag bits.
func (sk *Sock) SetFlag(f uint32) { sk.flags.Or(f) }

// ClearFlag clears flag bits.
func (sk *Sock) ClearFlag(f uint32) { sk.flags.And(^f) }

// HasFlag reports whether all bits of f are set.
func (sk *Sock) HasFlag(f uint32) bool { return sk.flags.Load()&f == f }

// WritePending is sk_write_pending: writers sleeping in StreamWaitMemory.
func (sk *Sock) WritePending() int { return int(sk.writePending.Load()) }

// Err returns sk_err (0 if none) without clearing it.
func (sk *Sock) Err() syscall.Errno { return syscall.Errno(sk.err.Load()) }

// SetErr stores sk_err and wakes the wait queue. Mirrors setting sk_err
// followed by sk_error_report.
func (sk *Sock) SetErr(e syscall.Errno) {
	sk.err.Store(int32(e))
	sk.Wq.Wake()
}

// SockError returns and clears sk_err. Mirrors sock_error.
func (sk *Sock) SockError() syscall.Errno {
	if sk.err.Load() == 0 {
		return 0
	}
	return syscall.Errno(sk.err.Swap(0))
}

// ShutdownState returns sk_shutdown (RcvShutdown | SendShutdown bits).
func (sk *Sock) ShutdownState() uint32 { return sk.shutdown.Load() }

// Shutdown ORs how into sk_shutdown and wakes the wait queue (sk_state_change).
func (sk *Sock) Shutdown(how uint32) {
	sk.shutdown.Or(how)
	sk.Wq.Wake()
}

// ClearShutdown clears sk_shutdown, as tcp_disconnect does for a socket
// that may connect again.
func (sk *Sock) ClearShutdown() { sk.shutdown.Store(0) }

// Hold takes a reference. Mirrors sock_hold.
func (sk *Sock) Hold() { sk.refcnt.Add(1) }

// Put drops a reference; the last one calls OnRelease. Mirrors sock_put.
func (sk *Sock) Put() {
	if v := sk.refcnt.Add(-1); v == 0 {
		if sk.OnRelease != nil {
			sk.OnRelease(sk)
		}
	} else if v < 0 {
		panic("memctl: Sock.Put without a reference")
	}
}

// Refcnt returns the reference count.
func (sk *Sock) Refcnt() int { return int(sk.refcnt.Load()) }

// ParseSockoptInt reads an int socket option value: fewer than 4 bytes is
// EINVAL, only the first 4 bytes are used (so an 8-byte value works on a
// little-endian machine). Mirrors copy_from_sockptr of an int in
// sk_setsockopt.
func ParseSockoptInt(optval []byte) (int32, error) {
	if len(optval) < 4 {
		return 0, syscall.EINVAL
	}
	return int32(binary.NativeEndian.Uint32(optval[:4])), nil
}

const intMax = 1<<31 - 1

// SetSockoptSndbuf implements SO_SNDBUF (force false) and SO_SNDBUFFORCE
// (force true; capNetAdmin says whether the caller has CAP_NET_ADMIN, else
// EPERM and no change). SO_SNDBUF caps val at wmem_max as an unsigned value
// (so a negative val becomes wmem_max); FORCE turns a negative val into 0
// and has no cap. Then val is capped at INT_MAX/2, SOCK_SNDBUF_LOCK is set,
// sndbuf = max(2*val, SOCK_MIN_SNDBUF), and WriteSpace is called. Mirrors
// sk_setsockopt SO_SNDBUF/SO_SNDBUFFORCE (net/core/sock.c). Takes no lock
// beyond atomics; does not block.
func (sk *Sock) SetSockoptSndbuf(val int32, force, capNetAdmin bool) error {
	v, err := sockoptBufVal(val, force, capNetAdmin, sk.net.Sysctls.WmemMax())
	if err != nil {
		return err
	}
	sk.userlocks.Or(SockSndbufLock)
	sk.sndbuf.Store(max(v*2, int64(sk.net.Profile.SockMinSndbuf())))
	if sk.WriteSpace != nil {
		sk.WriteSpace(sk)
	}
	return nil
}

// sockoptBufVal is the value handling SO_SNDBUF and SO_RCVBUF share: an
// unsigned cap at the sysctl maximum (or, for the FORCE variants, which need
// CAP_NET_ADMIN, a floor at 0 and no cap), then INT_MAX/2.
func sockoptBufVal(val int32, force, capNetAdmin bool, sysctlMax int) (int64, error) {
	var v int64
	if force {
		if !capNetAdmin {
			return 0, syscall.EPERM
		}
		v = max(int64(val), 0)
	} else {
		v = min(int64(uint32(val)), int64(uint32(sysctlMax)))
	}
	return min(v, intMax/2), nil
}

// SetSockoptRcvbuf implements SO_RCVBUF and SO_RCVBUFFORCE, as
// SetSockoptSndbuf with rmem_max, SOCK_RCVBUF_LOCK and SOCK_MIN_RCVBUF. For
// a UDP socket it also resets forward_threshold to rcvbuf >> 2 (the
// udp_setsockopt hook). Mirrors sk_setsockopt SO_RCVBUF/SO_RCVBUFFORCE and
// __sock_set_rcvbuf.
func (sk *Sock) SetSockoptRcvbuf(val int32, force, capNetAdmin bool) error {
	v, err := sockoptBufVal(val, force, capNetAdmin, sk.net.Sysctls.RmemMax())
	if err != nil {
		return err
	}
	sk.userlocks.Or(SockRcvbufLock)
	sk.rcvbuf.Store(max(v*2, int64(sk.net.Profile.SockMinRcvbuf())))
	if sk.proto != nil && sk.proto.kind == protoUDP {
		sk.forwardThreshold.Store(sk.rcvbuf.Load() >> 2)
	}
	return nil
}

// SetSockoptBufLock implements SO_BUF_LOCK: val outside the mask is EINVAL,
// otherwise the two buffer lock bits are replaced. Mirrors sk_setsockopt
// SO_BUF_LOCK.
func (sk *Sock) SetSockoptBufLock(val int32) error {
	if val&^SockBufLockMask != 0 {
		return syscall.EINVAL
	}
	for {
		old := sk.userlocks.Load()
		nv := uint32(val) | old&^SockBufLockMask
		if sk.userlocks.CompareAndSwap(old, nv) {
			return nil
		}
	}
}

// BufLock returns the SO_BUF_LOCK bits (getsockopt).
func (sk *Sock) BufLock() int32 { return int32(sk.userlocks.Load() & SockBufLockMask) }

// SetSockoptReserveMem implements SO_RESERVE_MEM without memcg socket
// accounting: a negative value is EINVAL, anything else EOPNOTSUPP. Mirrors
// sk_setsockopt SO_RESERVE_MEM. Deviation: sockfs has no memcg, so
// sk_reserved_mem is always 0 and the reserve-related floors never apply.
func (sk *Sock) SetSockoptReserveMem(val int32) error {
	if val < 0 {
		return syscall.EINVAL
	}
	return syscall.EOPNOTSUPP
}
