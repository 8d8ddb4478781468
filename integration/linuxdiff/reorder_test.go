package linuxdiff

import "testing"

// Reordering without loss: 4 MB from the system to a kernel peer with 5%
// of what it sends held behind the next packet and nothing lost. Every
// retransmission is spurious; RACK's reordering window (tcp_rack_detect_loss
// with reo_wnd, widened by DSACKs: tcp_rack_update_reo_wnd) and the undo
// of a recovery that DSACKs show to be spurious (tcp_try_undo_dsack) are
// what the counters show, on the kernel and on sockfs: reordering is
// detected on both (TCPSACKReorder alike, 127-143). Whether it ever
// exceeds RACK's window and causes a spurious retransmission is chance:
// in five runs the kernel made 1-3, sockfs 0-7 (0 in a clean-clone run
// under -race). That sockfs made more in four of them is not explained;
// one candidate, not checked, is that reo_wnd is a quarter of min_rtt,
// which the relay in the kernel's path lengthens.
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
	"Tcp:RetransSegs":            "a spurious retransmission (kernel 1-3, sockfs 0-7 in five runs)",
	"TcpExt:TCPSackRecovery":     "the recovery a spurious retransmission starts",
	"TcpExt:TCPFastRetrans":      "the spurious retransmission itself",
	"TcpExt:TCPDSACKRecv":        "the peer's DSACK of it",
	"TcpExt:TCPSlowStartRetrans": "a spurious retransmission in slow start",
}
