// Package skb is sockfs's packet buffer, the userspace counterpart of Linux's
// struct sk_buff.
//
// An SKB describes one packet: a linear data area inside a head buffer
// (head/data/tail/end, manipulated with Reserve, Put, Push, Pull and Trim)
// plus optional page fragments. The head buffer and the fragments are
// described by a Shared block (Linux's skb_shared_info) that clones share.
//
// Memory is charged by truesize, never by length: Truesize is the capacity of
// the head buffer actually allocated plus the fixed overhead of the skb struct
// and its shared info, exactly as Linux computes SKB_TRUESIZE on x86_64, plus
// the bytes of any page fragments attached. Head buffers come from size-class
// pools whose classes are Linux's (the small-head cache, the kmalloc buckets,
// then page orders), so a buffer really has the capacity it is charged for:
// a 1-byte packet in a 2 KiB class is charged the class.
//
// Ownership is expressed by a Destructor (Linux's skb->destructor with
// skb->sk): package memctl installs sock_rfree / sock_wfree style destructors,
// and Free or Orphan runs them exactly once. This package knows nothing about
// sockets or protocols.
//
// Concurrency: an SKB is owned by one goroutine at a time (whoever holds it in
// a queue or is processing it); its methods do not lock. The reference counts
// shared between clones (dataref, the fclone pair count, page references) are
// atomic, so clones of one buffer may be freed from different goroutines.
//
// Debugging: building with the race detector or with the skbdebug tag turns
// on checks for double free and use after free (see debug_on.go). Freed skbs
// are then poisoned instead of being recycled.
package skb
