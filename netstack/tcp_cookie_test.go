package netstack

import (
	"context"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
)

// A SYN cookie keeps the SYN's window scale, SACK and ECN in the low six
// bits of its SYN-ACK's TSval (cookie_init_timestamp), and the ACK that
// echoes it restores them (cookie_timestamp_decode): with timestamps the
// child has all four; without, it has none (and the SYN-ACK offers none),
// as Linux's cookies do.
func TestSyncookieTimestampKeepsOptions(t *testing.T) {
	for _, ts := range []bool{true, false} {
		c := newScript(t)
		setSysctl(t, c.s, "ipv4/tcp_syncookies", "2")
		c.clk.Advance(5 * time.Second)
		c.listen(8)
		o := make([]byte, 40)
		n := header.EncodeSynOptions(o, 1460, 5, true, ts, 777, 0)
		c.send(seg{seq: 1000, flags: fSyn | fEce | fCwr, opts: o[:n]})
		sa, so, ok := c.take()
		if !ok || sa.flags&(fSyn|fAck) != fSyn|fAck || c.s.mib.Get(memctl.TcpExtSyncookiesSent) != 1 {
			t.Fatalf("ts %v: no cookie SYN-ACK: %v", ts, sa)
		}
		if so.HasTimestamp != ts || so.HasWS != ts || so.SACKPermitted != ts || (sa.flags&fEce != 0) != ts {
			t.Fatalf("ts %v: SYN-ACK options %+v flags %v", ts, so, sa.flags)
		}
		if ts {
			off := c.s.tcp.secureTSOff(tcpTuple{laddr: scriptLocal, raddr: scriptRemote, lport: c.lport, rport: c.rport})
			if enc := (so.TSVal - off) & cookieTSOptsMask; enc != 5|cookieTSSack|cookieTSECN {
				t.Fatalf("TSval's options %#x, want wscale 5, SACK and ECN", enc)
			}
			if got, now := so.TSVal-off, uint32(c.clk.Nanotime()/int64(time.Millisecond)); got > now || now-got >= 1<<cookieTSBits {
				t.Fatalf("cookie TSval %d, now %d: not within 64 ms before", got, now)
			}
		}
		k := header.EncodeOptions(o, ts, 778, so.TSVal, nil)
		c.send(seg{seq: 1001, ack: sa.seq + 1, flags: fAck, opts: o[:k]})
		child, err := c.l.Accept(context.Background())
		if err != nil {
			t.Fatalf("ts %v: accept: %v", ts, err)
		}
		child.lockSock()
		got := [4]bool{child.tstampOK, child.sackOK, child.sndWscale == 5, child.ecnOK()}
		child.releaseSock()
		if want := [4]bool{ts, ts, ts, ts}; got != want {
			t.Fatalf("ts %v: child timestamps, SACK, wscale 5, ECN = %v, want %v", ts, got, want)
		}
	}
}
