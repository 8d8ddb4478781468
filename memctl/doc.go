// Package memctl is sockfs's socket memory accounting, reproducing Linux's
// (v6.18) behaviour: per-socket counters (sk_rmem_alloc, sk_wmem_alloc,
// sk_wmem_queued, sk_forward_alloc, sk_sndbuf, sk_rcvbuf, sk_userlocks,
// sk_drops), per-protocol pools (memory_allocated in pages with the per-CPU
// reserve, tcp_mem/udp_mem limits, TCP memory pressure), the sysctl table with
// Linux's text format and validation, and the SNMP/netstat counters with their
// /proc formatters.
//
// The spec is shared/research/linux-skmem.md. Each function names the Linux
// function it mirrors; deviations are stated where they are made.
//
// memctl imports nothing of sockfs. Packet buffers are seen through the Buffer
// interface, which *skb.SKB satisfies; ownership is expressed by installing a
// Destructor (sock_rfree / sock_wfree) that Free or Orphan runs once.
//
// Entry points:
//   - NewNet builds a Net (sysctls, the TCP and UDP pools, the MIB).
//   - NewSock builds a Sock, the accounting half of one socket.
//   - Datagram paths: QueueRcvSkb, WaitForWmem / AllocSendSkb, SetOwnerR,
//     SetOwnerW, UDPEnqueueScheduleSkb, UDPRmemRelease.
//   - Stream paths: WmemSchedule, RmemSchedule, ForcedMemSchedule, MemCharge,
//     MemUncharge, MemReclaim, StreamWaitMemory, StreamWriteSpace,
//     TCPShouldExpandSndbuf, TCPSndbufExpand.
//
// Version- and config-dependent values live in a Profile (Linux618Min is the
// default, Linux618Distro and Linux612Distro are the alternatives).
package memctl
