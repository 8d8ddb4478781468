package netstack

import (
	"context"
	"testing"
	"time"

	"sockfs/netstack/impair"
)

// tcpi_bytes_acked counts snd_una's advance (the SYN's 1 included, as ss
// shows bytes_acked:1 on a fresh connection) and tcpi_bytes_received
// rcv_nxt's advance past the SYN: after 1 MiB one way and 64 KiB the other
// over a lossy link they equal what was sent, retransmissions not counted
// twice.
func TestTCPInfoBytesAckedReceived(t *testing.T) {
	n := newTestNet(t, impair.Config{Loss: 0.02, Delay: time.Millisecond}, impair.Config{Delay: time.Millisecond}, 71)
	cli, srv := tcpPair(t, n, 80)
	if i := cli.Info(); i.BytesAcked != 1 || i.BytesReceived != 0 {
		t.Fatalf("fresh connection: bytes_acked %d bytes_received %d", i.BytesAcked, i.BytesReceived)
	}
	transfer(t, n, cli, srv, 1<<20, 5, 60*time.Second) // ends with cli's FIN
	transfer(t, n, srv, cli, 64<<10, 6, 60*time.Second)
	n.run(time.Second)
	ci, si := cli.Info(), srv.Info()
	// Each side's FIN counts once it is acknowledged or received.
	if ci.BytesAcked != 1+1<<20+1 || si.BytesReceived != 1<<20+1 {
		t.Fatalf("client bytes_acked %d, server bytes_received %d for 1 MiB", ci.BytesAcked, si.BytesReceived)
	}
	if si.BytesAcked != 1+64<<10+1 || ci.BytesReceived != 64<<10+1 {
		t.Fatalf("server bytes_acked %d, client bytes_received %d for 64 KiB", si.BytesAcked, ci.BytesReceived)
	}
	if si.TotalRetrans+ci.TotalRetrans == 0 {
		t.Fatal("no retransmissions: the loss did not test double counting")
	}
}

func TestCAStateName(t *testing.T) {
	for s, want := range map[uint8]string{tcpCAOpen: "Open", tcpCADisorder: "Disorder", 2: "CWR",
		tcpCARecovery: "Recovery", tcpCALoss: "Loss", 9: "9"} {
		if got := CAStateName(s); got != want {
			t.Errorf("CAStateName(%d) = %q, want %q", s, got, want)
		}
	}
}

// A socket closed with data unread (reset, its queues freed) shows no
// queue in tcp_info any more: qin and qout were computed from sequence
// numbers that still said 10 and 5 bytes (the status of a released
// conversation's slot showed them).
func TestInfoQueuesOfAFreedSocket(t *testing.T) {
	c := newEstablished(t)
	c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "0123456789"})
	if _, err := c.tp.Send(context.Background(), []byte("abcde")); err != nil {
		t.Fatal(err)
	}
	if in := c.tp.Info(); in.Qin != 10 || in.Qout != 5 {
		t.Fatalf("before close: qin %d qout %d, want 10 and 5", in.Qin, in.Qout)
	}
	c.tp.Close() // unread data: RST (TCPAbortOnClose), destroyed
	if in := c.tp.Info(); in.Qin != 0 || in.Qout != 0 {
		t.Fatalf("after the abort: qin %d qout %d, want 0 and 0", in.Qin, in.Qout)
	}
}
