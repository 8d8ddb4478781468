package memctl

import (
	"sync/atomic"
	"time"
)

// Options configure NewNet.
type Options struct {
	// Profile selects the kernel rules and sizes; nil means Linux618Min.
	Profile *Profile
	// Now is the clock used for the memory-pressure chrono; nil means
	// time.Now. Only differences between readings matter.
	Now func() time.Time
	// NrFreeBufferPages is the nr_free_buffer_pages() value the boot-time
	// defaults of tcp_mem, udp_mem, tcp_rmem[2] and tcp_wmem[2] are computed
	// from; 0 means estimate it from this machine (EstimateNrFreeBufferPages).
	NrFreeBufferPages int64
	// MemPcpuRsv, when non-zero, sets net.core.mem_pcpu_rsv without the
	// sysctl's minimum of 256 pages, so tests can use a small reserve.
	MemPcpuRsv int
	// VMWaitMax bounds the "vm_wait" sleep of StreamWaitMemory when memory is
	// already free on entry; 0 means 200 ms (Linux sleeps 2 + rand(HZ/5)
	// jiffies). A negative value disables the sleep.
	VMWaitMax time.Duration
}

// Net is the accounting state of one stack, the counterpart of what a Linux
// network namespace (and, for the global knobs, the whole kernel) holds for
// socket memory: the sysctl table, the TCP and UDP memory pools and the MIB
// counters. One sockfs stack has one Net. All of it is safe for concurrent
// use.
type Net struct {
	// Profile is the kernel profile in force. Read-only after NewNet.
	Profile Profile
	// Sysctls is the sysctl table (net.core.* and net.ipv4.* memory knobs).
	Sysctls *Sysctls
	// TCP is the pool shared by TCP sockets (tcp_prot: tcp_mem, pressure).
	TCP *Proto
	// UDP is the pool shared by UDP and UDP-Lite sockets (udp_prot: udp_mem,
	// no pressure flag).
	UDP *Proto
	// MIB holds the SNMP and netstat counters.
	MIB *MIB

	now       func() time.Time
	vmWaitMax time.Duration
}

// NewNet builds the accounting state of a fresh stack with Linux's boot-time
// defaults.
func NewNet(opts Options) *Net {
	n := &Net{Profile: Linux618Min, now: opts.Now, vmWaitMax: opts.VMWaitMax}
	if opts.Profile != nil {
		n.Profile = *opts.Profile
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.vmWaitMax == 0 {
		n.vmWaitMax = 200 * time.Millisecond
	}
	nfbp := opts.NrFreeBufferPages
	if nfbp <= 0 {
		nfbp = EstimateNrFreeBufferPages()
	}
	n.Sysctls = NewSysctls(&n.Profile, nfbp)
	if opts.MemPcpuRsv != 0 {
		n.Sysctls.memPcpuRsv.Store(int64(opts.MemPcpuRsv)) // bypasses the minimum on purpose
	}
	n.MIB = NewMIB()
	n.TCP = &Proto{Name: "TCP", net: n, kind: protoTCP, mem: n.Sysctls.tcpMem}
	n.UDP = &Proto{Name: "UDP", net: n, kind: protoUDP, mem: n.Sysctls.udpMem}
	return n
}

type protoKind int

const (
	protoTCP protoKind = iota
	protoUDP
)

// Proto is a protocol's memory pool, the accounting half of Linux's struct
// proto: memory_allocated (pages), the per-CPU forward-alloc reserve
// (modelled as ONE per-CPU counter, as for a single-CPU machine), the limits
// sysctl_mem[3] (read live from the sysctl table), the memory_pressure flag
// (TCP only) and sockets_allocated. Every method is safe for concurrent use;
// none blocks.
type Proto struct {
	// Name is "TCP" or "UDP".
	Name string

	net  *Net
	kind protoKind
	mem  *Sysctl // tcp_mem or udp_mem

	memoryAllocated  atomic.Int64 // pages, the global counter
	perCPUFwAlloc    atomic.Int64 // pages, the one per-CPU counter
	memoryPressure   atomic.Int64 // TCP: ms timestamp when pressure began; 0 = none
	socketsAllocated atomic.Int64
	inuse            atomic.Int64 // sock_prot_inuse: sockets in the protocol's lookup tables
	orphanCount      atomic.Int64
	twCount          atomic.Int64
}

// Net returns the Net the pool belongs to.
func (p *Proto) Net() *Net { return p.net }

// HasMemoryPressure reports whether the protocol has a pressure flag (TCP
// yes, UDP no). Mirrors sk_has_memory_pressure.
func (p *Proto) HasMemoryPressure() bool { return p.kind == protoTCP }

// MemoryAllocated returns the global page count, never negative; every limit
// check and /proc/net/sockstat read only this, not the per-CPU reserve.
// Mirrors proto_memory_allocated / sk_memory_allocated.
func (p *Proto) MemoryAllocated() int64 {
	v := p.memoryAllocated.Load()
	if v < 0 {
		return 0
	}
	return v
}

// PerCPUFwAlloc returns the pages held in the per-CPU reserve (which the
// global does not yet include). The true total is MemoryAllocatedRaw() +
// PerCPUFwAlloc().
func (p *Proto) PerCPUFwAlloc() int64 { return p.perCPUFwAlloc.Load() }

// MemoryAllocatedRaw returns the global counter as stored (it can be negative
// transiently, since the per-CPU reserve may hold a credit).
func (p *Proto) MemoryAllocatedRaw() int64 { return p.memoryAllocated.Load() }

// MemoryAllocatedAdd charges amt pages through the per-CPU reserve: they
// reach the global only when the reserve reaches mem_pcpu_rsv. Mirrors
// sk_memory_allocated_add (include/net/proto_memory.h).
func (p *Proto) MemoryAllocatedAdd(amt int) {
	v := p.perCPUFwAlloc.Add(int64(amt))
	if v >= p.net.Sysctls.memPcpuRsv.load()[0] {
		p.pcpuDrain()
	}
}

// MemoryAllocatedSub returns amt pages through the per-CPU reserve. Mirrors
// sk_memory_allocated_sub.
func (p *Proto) MemoryAllocatedSub(amt int) {
	v := p.perCPUFwAlloc.Add(-int64(amt))
	if v <= -p.net.Sysctls.memPcpuRsv.load()[0] {
		p.pcpuDrain()
	}
}

// pcpuDrain moves the per-CPU reserve into the global. The swap keeps the sum
// exact when several goroutines drain at once. Mirrors
// proto_memory_pcpu_drain.
func (p *Proto) pcpuDrain() {
	if v := p.perCPUFwAlloc.Swap(0); v != 0 {
		p.memoryAllocated.Add(v)
	}
}

// MemLimit returns sysctl_mem[i] in pages (0 min/low, 1 pressure, 2 max),
// read live. Mirrors sk_prot_mem_limits.
func (p *Proto) MemLimit(i int) int64 { return p.mem.load()[i] }

// UnderMemoryPressure reports whether the protocol-wide pressure flag is set
// (always false for UDP). Mirrors sk_under_global_memory_pressure /
// tcp_under_memory_pressure without memcg.
func (p *Proto) UnderMemoryPressure() bool {
	return p.kind == protoTCP && p.memoryPressure.Load() != 0
}

// EnterMemoryPressure sets the pressure flag to the current time; on the
// 0 -> set transition it counts TcpExtTCPMemoryPressures. A no-op for UDP.
// Mirrors tcp_enter_memory_pressure (net/ipv4/tcp.c).
func (p *Proto) EnterMemoryPressure() {
	if p.kind != protoTCP || p.memoryPressure.Load() != 0 {
		return
	}
	val := p.net.now().UnixMilli()
	if val == 0 {
		val-- // 0 means "no pressure"; Linux does the same with jiffies
	}
	if p.memoryPressure.CompareAndSwap(0, val) {
		p.net.MIB.Inc(TcpExtTCPMemoryPressures)
	}
}

// LeaveMemoryPressure clears the pressure flag and adds the milliseconds spent
// under pressure to TcpExtTCPMemoryPressuresChrono. Mirrors
// tcp_leave_memory_pressure.
func (p *Proto) LeaveMemoryPressure() {
	if p.kind != protoTCP || p.memoryPressure.Load() == 0 {
		return
	}
	if val := p.memoryPressure.Swap(0); val != 0 {
		if d := p.net.now().UnixMilli() - val; d > 0 {
			p.net.MIB.Add(TcpExtTCPMemoryPressuresChrono, uint64(d))
		}
	}
}

// SocketsAllocated returns the number of sockets of the protocol, never
// negative. Mirrors sk_sockets_allocated_read_positive.
func (p *Proto) SocketsAllocated() int64 {
	if v := p.socketsAllocated.Load(); v > 0 {
		return v
	}
	return 0
}

// SocketsAllocatedInc counts a new socket (tcp_init_sock does this for TCP).
// Mirrors sk_sockets_allocated_inc.
func (p *Proto) SocketsAllocatedInc() { p.socketsAllocated.Add(1) }

// SocketsAllocatedDec uncounts a socket. Mirrors sk_sockets_allocated_dec.
func (p *Proto) SocketsAllocatedDec() { p.socketsAllocated.Add(-1) }

// Inuse returns the sockets the protocol's lookup tables hold: TCP's
// listeners and the full sockets of its established hash (a TIME_WAIT
// connection is a timewait sock there, not counted), UDP's bound sockets.
// What sockstat's inuse and protocols' sockets show. Mirrors
// sock_prot_inuse_get.
func (p *Proto) Inuse() int64 { return max(p.inuse.Load(), 0) }

// InuseAdd counts n sockets into (or, negative, out of) the lookup
// tables. Mirrors sock_prot_inuse_add, which inet_hash,
// inet_ehash_nolisten, inet_unhash and udp_lib_get_port call.
func (p *Proto) InuseAdd(n int64) { p.inuse.Add(n) }

// OrphanCount returns the number of orphaned sockets (TCP).
func (p *Proto) OrphanCount() int64 { return p.orphanCount.Load() }

// OrphanCountAdd changes the orphan count. Mirrors tcp_orphan_count_inc/dec.
func (p *Proto) OrphanCountAdd(d int) { p.orphanCount.Add(int64(d)) }

// TwCount returns the number of TIME_WAIT sockets (TCP). Mirrors
// tcp_death_row's tw_refcount less its initial reference.
func (p *Proto) TwCount() int64 { return p.twCount.Load() }

// TwCountAdd changes the TIME_WAIT count.
func (p *Proto) TwCountAdd(d int) { p.twCount.Add(int64(d)) }

// rmem0 and wmem0 are the per-socket minimums guaranteed under pressure
// (sysctl_rmem_offset / sysctl_wmem_offset: tcp_rmem[0], udp_rmem_min).
// Mirrors sk_get_rmem0.
func (p *Proto) rmem0() int64 {
	if p.kind == protoTCP {
		return p.net.Sysctls.tcpRmem.load()[0]
	}
	return p.net.Sysctls.udpRmemMin.load()[0]
}

// wmem0 mirrors sk_get_wmem0.
func (p *Proto) wmem0() int64 {
	if p.kind == protoTCP {
		return p.net.Sysctls.tcpWmem.load()[0]
	}
	return p.net.Sysctls.udpWmemMin.load()[0]
}
