package linuxdiff

import "testing"

// Reordering without loss: 4 MB from the system to a kernel peer with 5%
// of what it sends held behind the next packet and nothing lost. Every
// retransmission is spurious; RACK's reordering window
// (tcp_rack_detect_loss with reo_wnd, widened by DSACKs:
// tcp_rack_update_reo_wnd) and the undo of a recovery that DSACKs show to
// be spurious (tcp_try_undo_dsack) are what the counters show, on the
// kernel and on sockfs: reordering is detected on both (TCPSACKReorder
// alike, 127-143). Whether it ever exceeds RACK's window and causes a
// spurious retransmission is chance: in five runs the kernel made 1-3,
// sockfs 0-7 (0 in a clean-clone run under -race); on session 16's host,
// in four runs, the kernel 1-2 and sockfs 7-15. That sockfs makes more is
// not explained. What the packet captures of one run on each TUN show
// (session 16): the paths differ. The kernel's segments cross the test's
// user-space relay, and an ACK came back to its TUN at least 47 µs after
// the segment it acknowledges left (median 300 µs); sockfs's peer answers
// at sockfs's TUN in 1-2 µs. RACK's window is a quarter of min_rtt, so
// the kernel here tolerates a held segment for longer: sockfs's min_rtt
// was 26 µs in such a run (its window 6 µs), the kernel's at least the
// relay's 47. Each of sockfs's 12 spurious retransmissions in that run
// left 0.1-0.2 ms after the segment's first transmission, when the peer's
// cumulative ACK of it was already at sockfs's TUN: the loss was decided
// on the SACK in front of that ACK. Adding a 25 µs delay to sockfs's own
// impairment made it worse, not equal (142-233), since a delayed stage
// lets held packets pass unequally; an equal path for both is the test
// this needs.
func TestLinuxDiffReorderOnly(t *testing.T) {
	k, s := startBoth(t, func(k *kernelSUT) {
		k.ns.mustRun(t, "ip", "link", "set", "dev", "ldkern0", "gso_max_segs", "1")
	})
	compareRoles(t, k, s, []counterRole{
		{"5%", func(t *testing.T, side sut) map[string]int64 { return impairedTransfer(t, side, 0, 0.05) },
			"4 MB with 5% of the segments sent held behind the next, none lost"},
	}, []counterRatio{
		{"TcpExt:TCPDelivered", "TcpExt:TCPOrigDataSent", 0.05, "every segment delivered once"},
	}, reorderChance)
}

// reorderChance: a spurious retransmission, and everything that follows
// from one, happens only when a held segment arrives past RACK's window.
var reorderChance = map[string]string{
	"Tcp:RetransSegs":            "spurious retransmissions (kernel 1-3, sockfs 0-15 in nine runs on two hosts)",
	"TcpExt:TCPSackRecovery":     "the recovery a spurious retransmission starts",
	"TcpExt:TCPFastRetrans":      "the spurious retransmission itself",
	"TcpExt:TCPDSACKRecv":        "the peer's DSACK of it",
	"TcpExt:TCPSlowStartRetrans": "a spurious retransmission in slow start",
}
