// Package header holds the wire formats of IPv4, ICMPv4, UDP and TCP, and
// the Internet checksum. It has no protocol logic: protocol code reads and
// writes packets only through these views (as smoltcp's wire/ and gVisor's
// header/ keep formats apart from state machines).
//
// A header is a named byte slice (IPv4, ICMPv4, UDP, TCP) over the packet's
// own bytes, with accessors, setters and an Encode builder that takes a
// Fields struct. Views never copy and never allocate.
//
// # Safety
//
// Validation happens once, at the boundary: IPv4.Check, ICMPv4.Check,
// UDP.Check and TCP.Check each report, as an Error, why bytes from the wire
// cannot be read as that header. After a nil Check every accessor of the
// view is in bounds. Fixed-offset accessors need only the minimum size
// (IPv4MinSize, ICMPv4MinSize, UDPMinSize, TCPMinSize) and panic on a
// shorter slice, like an index expression; the variable-length ones
// (Options, Payload) clamp to the slice and never panic once the minimum
// size is there. Validation itself never panics, whatever the bytes.
//
// Setters and Encode write into a slice the caller sized; they panic if it
// is too short, which is a programming error, not a property of input.
//
// # Checksums
//
// Checksum returns an uncomplemented one's complement sum so that partial
// sums chain (the pseudo-header, then the header, then the payload); the
// CalculateChecksum methods return the complemented value to store, computed
// as if the checksum field were zero, whatever it holds.
//
// Nothing in this package blocks or keeps state; every function is safe for
// concurrent use on distinct slices.
package header
