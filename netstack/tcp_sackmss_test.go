package netstack

import (
	"context"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/impair"
)

// A segment that carries SACK blocks has a longer header, so the MSS it
// may carry shrinks by the blocks' size (tcp_current_mss: header_len
// against tcp_header_len). Both ends here send and receive at once over a
// lossy link, so each has SACK blocks to send while it sends and
// retransmits data: nothing may come out over the MTU. Without the
// adjustment an MSS-sized retransmission was 12, 20 or 28 bytes over the
// MTU and IP dropped it (IpFragFails: DF clear, a partial checksum on a
// clone), as TestKernel200ConcurrentEcho showed under -race (hundreds per
// run), and each drop cost another retransmission or an RTO.
func TestTCPSackBlocksShrinkMss(t *testing.T) {
	cfg := impair.Config{Loss: 0.03, Delay: 2 * time.Millisecond}
	n := newTestNet(t, cfg, cfg, 61)
	cli, srv := tcpPair(t, n, 80)
	const size = 1 << 20
	data := make([]byte, 32<<10)
	buf := make([]byte, 64<<10)
	var sent, got [2]int
	ends := [2]*TCPSock{cli, srv}
	ctx := context.Background()
	n.drive(func() bool {
		for i, s := range ends {
			for sent[i] < size {
				k, err := s.Send(ctx, data[:min(len(data), size-sent[i])])
				if err != nil || k == 0 {
					break
				}
				sent[i] += k
			}
			for {
				k, err := s.Recv(ctx, buf)
				if err != nil || k == 0 {
					break
				}
				got[i] += k
			}
		}
		return got[0] == size && got[1] == size
	}, 120*time.Second)
	if got[0] != size || got[1] != size {
		t.Fatalf("received %d and %d of %d bytes", got[0], got[1], size)
	}
	for _, st := range []*Stack{n.a, n.b} {
		if f, c := st.mib.Get(memctl.IpFragFails), st.mib.Get(memctl.IpFragCreates); f+c != 0 {
			t.Errorf("IpFragFails %d, IpFragCreates %d: segments built over the MTU", f, c)
		}
	}
	if n.a.mib.Get(memctl.TcpRetransSegs)+n.b.mib.Get(memctl.TcpRetransSegs) == 0 {
		t.Error("no retransmission: the scenario did not exercise SACK recovery")
	}
}
