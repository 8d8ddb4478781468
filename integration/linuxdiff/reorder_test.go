package linuxdiff

import "testing"

// Reordering without loss: 4 MB from the system to a kernel peer with 5%
// of what it sends held behind the next packet and nothing lost. Every
// retransmission is spurious; RACK's reordering window (tcp_rack_detect_loss
// with reo_wnd, widened by DSACKs: tcp_rack_update_reo_wnd) and the undo
// of a recovery that DSACKs show to be spurious (tcp_try_undo_dsack) are
// what the counters show, on the kernel and on sockfs: the same counters
// move on both. How many retransmissions is not compared: in four runs the
// kernel made 1-3, sockfs 3-7, with TCPSACKReorder alike (127-143). Not
// explained; one candidate, not checked, is that reo_wnd is a quarter of
// min_rtt, which the relay in the kernel's path lengthens.
func TestLinuxDiffReorderOnly(t *testing.T) {
	k, s := startBoth(t, func(k *kernelSUT) {
		k.ns.mustRun(t, "ip", "link", "set", "dev", "ldkern0", "gso_max_segs", "1")
	})
	compareRoles(t, k, s, []counterRole{
		{"5%", func(t *testing.T, side sut) map[string]int64 { return impairedTransfer(t, side, 0, 0.05) },
			"4 MB with 5% of the segments sent held behind the next, none lost"},
	}, []counterRatio{
		{"TcpExt:TCPDelivered", "TcpExt:TCPOrigDataSent", 0.05, "every segment delivered once"},
	}, nil)
}
