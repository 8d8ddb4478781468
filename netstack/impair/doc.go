// Package impair degrades a packet stream the way Linux's netem qdisc
// (net/sched/sch_netem.c) does: loss, delay with jitter, reordering,
// duplication, corruption, rate limiting and a queue limit. It is used by
// the in-memory link (netstack/link.Pipe) for simulation and, through the
// ipifc/N/impair file, on real interfaces.
//
// An Impairer is driven by an injected clock.Clock and a seeded PCG, so a
// run under clock.Sim is reproducible for a given seed. It keeps the packets
// it holds in one time-ordered heap keyed by (delivery time, sequence) and
// arms a single clock Timer for the earliest, never one per packet; the heap
// and the delivery batch are reused, so steady-state operation does not
// allocate.
package impair
