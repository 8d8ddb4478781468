package netstack

import (
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// On a 100 ms RTT path limited to 20 Mbit/s, once the window has opened the
// transfer runs at no less than 80% of the link rate: the windows (send
// buffer autotuning, receive autotuning, window scaling) grow to cover the
// bandwidth-delay product (250 KB here) and congestion control keeps the
// pipe full.
func TestTCPSimLongRTTRateLimit(t *testing.T) {
	const rate = 20_000_000 // bit/s
	cfg := impair.Config{Delay: 50 * time.Millisecond, Rate: rate}
	n := newTestNet(t, cfg, cfg, 31)
	cli, srv := tcpPair(t, n, 80)
	const size, warm = 24 << 20, 4 << 20
	p := newBulkPump(cli, srv, size)
	var tWarm int64
	n.drive(func() bool {
		done := p.step()
		if tWarm == 0 && p.got >= warm {
			tWarm = n.clk.Nanotime()
		}
		return done
	}, 120*time.Second)
	el := time.Duration(n.clk.Nanotime() - tWarm)
	bps := float64(size-warm) * 8 / el.Seconds()
	info := cli.Info()
	t.Logf("%.2f Mbit/s after the first %d MiB (link %d Mbit/s); cwnd %d, sndbuf %d, peer rcvbuf %d, retrans %d",
		bps/1e6, warm>>20, rate/1_000_000, info.SndCwnd, cli.Mem().Sndbuf(), srv.Mem().Rcvbuf(), info.TotalRetrans)
	if bps < 0.8*rate {
		t.Fatalf("throughput %.2f Mbit/s is below 80%% of the %d Mbit/s link", bps/1e6, rate/1_000_000)
	}
}
