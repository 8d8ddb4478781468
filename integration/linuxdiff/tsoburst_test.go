package linuxdiff

import (
	"encoding/json"
	"testing"
	"time"
)

// How large the system's transmissions are: a bulk send of tsoBytes to the
// kernel peer with the peer's ACKs delayed by tsoDelay on both systems.
// Linux builds skbs up to the size goal (tcp_xmit_size_goal: 64 KiB, at
// most half the largest window the peer offered), cuts each transmission
// to about 1 ms of the pacing rate (tcp_tso_autosize) and to the windows
// (tso_fragment), and holds back one the windows would cut short while an
// ACK is due soon (tcp_tso_should_defer). What is compared is the mean
// size of a packet the peer's TUN received (a super-packet counts once, as
// the kernel's rx_packets counts it), read in the peer's namespace on both
// systems, whose devices are the same kind of TUN.
//
// Measured on session 17's host: kernel 53-59 KB, sockfs 49-51 KB (ratio
// 0.83-0.94; under -race 0.71-0.94 in ten runs). sockfs's mean is lower in the first
// megabyte (ratio 0.57-0.97 over 1 MB): the peer's receive-buffer
// autotuning (tcp_rcv_space_adjust) starts from its first RTT sample,
// which the test's own path to the first byte moves (sockfs's connect and
// first write cross FUSE: the peer sampled 3 ms against the kernel's 2 ms
// in one run, and its rcvbuf then grew later), so the peer's window, and
// with it the size goal's half-window bound, opens later for sockfs. The
// scenario fails if sockfs sent MSS-sized packets or skbs far below the
// kernel's size; it does not isolate tcp_tso_should_defer, which moves the
// mean by less than the spread here (sockfs 0.80-0.86 of the kernel with
// the deferral disabled, in four runs).
func TestLinuxDiffTSOBursts(t *testing.T) {
	k, s := startBoth(t, nil)
	km, sm := tsoBurstMean(t, k), tsoBurstMean(t, s)
	ratio := sm / km
	t.Logf("%d bytes with the ACKs delayed %v: mean packet at the peer kernel %.0f B, sockfs %.0f B (ratio %.2f)",
		tsoBytes, tsoDelay, km, sm, ratio)
	if ratio < 1-tsoTolerance || ratio > 1+tsoTolerance {
		t.Errorf("sockfs's transmissions average %.0f B, the kernel's %.0f B: beyond %.0f%%",
			sm, km, 100*tsoTolerance)
	}
}

const (
	tsoBytes = 16 << 20
	tsoDelay = 2 * time.Millisecond
	// tsoTolerance: how far the means may differ. Under -race sockfs's
	// mean fell to 0.71 of the kernel's in one of ten runs (its first
	// megabyte's smaller packets, below, weigh more when it is slowed);
	// 0.6 still fails an skb capped at half of 64 KiB (about 0.55) and
	// MSS-sized ones (0.03).
	tsoTolerance = 0.4
)

// tsoBurstMean sends tsoBytes from side to a kernel peer with the peer's
// ACKs delayed by tsoDelay and returns the mean bytes per packet received
// by the peer's device over the transfer.
func tsoBurstMean(t *testing.T, side sut) float64 {
	t.Helper()
	if err := side.impairIn(tsoDelay); err != nil {
		t.Fatal(err)
	}
	defer side.impairIn(0)
	port, got := peerSink(t, side, 90*time.Second)
	p0, b0 := peerRx(t, side) // before the handshake: the ip(8) run must not delay the first data
	tx, _ := dialCounted(t, side, port)
	sendToSink(t, side, tx, tsoBytes, got, 200*time.Microsecond)
	p1, b1 := peerRx(t, side)
	if p1 <= p0 {
		t.Fatalf("%s: the peer's device counted no packets", side.name())
	}
	return float64(b1-b0) / float64(p1-p0)
}

// peerRx returns the packets and bytes the peer's TUN device has received:
// what the system under test sent, super-packets counted once.
func peerRx(t *testing.T, side sut) (packets, bytes int64) {
	t.Helper()
	dev := "ldpeer0" // the peer's end of the relay
	if _, ok := side.(*sockfsSUT); ok {
		dev = "ldsockfs0" // the kernel's side of sockfs's TUN
	}
	out := side.peer().mustRun(t, "ip", "-j", "-s", "link", "show", "dev", dev)
	var links []struct {
		Stats64 struct {
			Rx struct {
				Bytes   int64 `json:"bytes"`
				Packets int64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -s link show dev %s: %v in %q", dev, err, out)
	}
	return links[0].Stats64.Rx.Packets, links[0].Stats64.Rx.Bytes
}
