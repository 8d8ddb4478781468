// Package clock is sockfs's injected time source: a Clock interface with a
// real implementation (Real, backed by the runtime's monotonic clock and one
// goroutine) and a simulated one (Sim, which moves only when its owner
// advances it), so that protocol timers are deterministic under test.
//
// Both implementations keep their timers in the same structure: a binary
// min-heap of *Timer ordered by (deadline, arm sequence), each Timer carrying
// its own heap index, so that Reset and Stop are O(log n) and never
// allocate. Only NewTimer allocates. This plays the role of Linux's timer
// wheel (kernel/time/timer.c) for the stack: protocols keep one Timer per
// purpose (retransmit, delayed ACK, keepalive...) and re-arm it, as
// sk_reset_timer / sk_stop_timer do, instead of creating one per event.
//
// Callback contract: the callbacks of one clock run one at a time, never
// concurrently with each other, in deadline order (ties in the order the
// timers were armed). A callback runs without any clock lock held, so it may
// Reset or Stop any timer, its own included, and arm new ones. A callback
// must not block: while it runs no other timer of its clock can fire (on a
// Real clock, the single timer goroutine is busy; on a Sim, Advance is).
package clock
