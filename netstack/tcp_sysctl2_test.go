package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/header"
	"sockfs/netstack/impair"
)

// More sysctls, each shown by what the stack does with it (issue 16): a
// packet script, a counter or a measured value that changes with the
// sysctl and would not if it were only stored.

// establishAfter completes a passive handshake (MSS only) on a script whose
// sysctls the caller already set, so that values copied at socket creation
// apply.
func (c *script) establishAfter() {
	c.t.Helper()
	c.listen(8)
	c.send(seg{seq: c.peerIS, flags: fSyn, opts: mssOpt(1460)})
	sa, _, ok := c.take()
	if !ok || sa.flags != fSyn|fAck {
		c.t.Fatalf("no SYN-ACK: %v", sa)
	}
	c.iss = sa.seq
	c.send(seg{seq: c.peerIS + 1, ack: c.iss + 1, flags: fAck})
	c.acceptNoDelay()
}

// withSysctl makes a script with mk and sets the sysctl ipv4/name to v
// unless v is empty (the default).
func withSysctl(t *testing.T, mk func(*testing.T) *script, name, v string) *script {
	c := mk(t)
	if v != "" {
		setSysctl(t, c.s, "ipv4/"+name, v)
	}
	return c
}

// retransmitGaps sends one unanswered segment and returns the intervals
// between its first n transmissions, measured on the simulated clock.
func (c *script) retransmitGaps(n int) []time.Duration {
	c.t.Helper()
	c.tp.Send(context.Background(), []byte("lost"))
	c.take()
	last := c.clk.Nanotime()
	var gaps []time.Duration
	for len(gaps) < n && c.tp.State() != TCPClose {
		c.clk.Advance(5 * time.Millisecond)
		for _, _, ok := c.take(); ok; _, _, ok = c.take() {
			now := c.clk.Nanotime()
			gaps = append(gaps, time.Duration(now-last))
			last = now
		}
	}
	return gaps
}

// tcp_dsack 0: a duplicate segment is acked without a D-SACK block.
func TestSysctlDsack(t *testing.T) {
	for _, on := range []bool{true, false} {
		c := sackEstablished(t)
		if !on {
			setSysctl(t, c.s, "ipv4/tcp_dsack", "0")
		}
		c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "abc"})
		c.expect(seg{seq: c.iss + 1, ack: 1004, flags: fAck})
		c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, payload: "abc"})
		_, o := c.expect(seg{seq: c.iss + 1, ack: 1004, flags: fAck})
		dsack := o.NumSACK == 1 && o.SACK[0] == header.SACKBlock{Start: 1001, End: 1004}
		if dsack != on || (c.s.mib.Get(memctl.TcpExtTCPDSACKOldSent) == 1) != on {
			t.Fatalf("tcp_dsack %v: SACK blocks %v, DSACKOldSent %d", on, o.Blocks(), c.s.mib.Get(memctl.TcpExtTCPDSACKOldSent))
		}
	}
}

// tcp_max_syn_backlog 4 without SYN cookies: the last quarter of the SYN
// queue is kept back, so the fifth SYN is dropped (ListenDrops) where the
// default answers it.
func TestSysctlMaxSynBacklog(t *testing.T) {
	for _, v := range []string{"", "4"} {
		c := newScript(t)
		setSysctl(t, c.s, "ipv4/tcp_syncookies", "0")
		if v != "" {
			setSysctl(t, c.s, "ipv4/tcp_max_syn_backlog", v)
		}
		c.listen(100)
		answered := 0
		for i := 0; i < 5; i++ {
			c.rport = uint16(5000 + i)
			c.send(seg{seq: 1000, flags: fSyn, opts: mssOpt(1460)})
			if _, _, ok := c.take(); ok {
				answered++
			}
		}
		want := map[string]int{"": 5, "4": 4}[v]
		if answered != want || (c.s.mib.Get(memctl.TcpExtListenDrops) != 0) != (v != "") {
			t.Fatalf("tcp_max_syn_backlog %q: %d SYNs answered (want %d), ListenDrops %d", v, answered, want, c.s.mib.Get(memctl.TcpExtListenDrops))
		}
	}
}

// tcp_orphan_retries 1: an orphan whose FIN is never acked gives up after
// far fewer retransmissions than with the default (0, meaning 8).
func TestSysctlOrphanRetries(t *testing.T) {
	count := func(v string) int {
		c := withSysctl(t, newEstablished, "tcp_orphan_retries", v)
		c.closeActive()
		n := 0
		for i := 0; i < 1200 && c.tp.State() != TCPClose; i++ {
			c.clk.Advance(time.Second)
			for _, _, ok := c.take(); ok; _, _, ok = c.take() {
				n++
			}
		}
		if c.tp.State() != TCPClose || c.s.mib.Get(memctl.TcpExtTCPAbortOnTimeout) != 1 {
			t.Fatalf("tcp_orphan_retries %q: state %v", v, c.tp.State())
		}
		return n
	}
	one, def := count("1"), count("")
	if one > 2 || def < one+4 {
		t.Fatalf("FIN retransmissions: %d with tcp_orphan_retries 1, %d by default", one, def)
	}
}

// tcp_max_orphans 0: at its first RTO an orphan with unacked data is
// killed with a RST (TCPAbortOnMemory); by default it retransmits.
func TestSysctlMaxOrphans(t *testing.T) {
	for _, v := range []string{"", "0"} {
		c := withSysctl(t, newEstablished, "tcp_max_orphans", v)
		c.tp.Send(context.Background(), []byte("data"))
		c.take()
		c.tp.Close()
		c.take() // FIN
		for i := 0; i < 500 && c.tp.State() != TCPClose && c.s.mib.Get(memctl.TcpRetransSegs) == 0; i++ {
			c.clk.Advance(10 * time.Millisecond)
		}
		killed := c.s.mib.Get(memctl.TcpExtTCPAbortOnMemory) == 1 && c.tp.State() == TCPClose
		if killed != (v == "0") {
			t.Fatalf("tcp_max_orphans %q: AbortOnMemory %d state %v", v, c.s.mib.Get(memctl.TcpExtTCPAbortOnMemory), c.tp.State())
		}
		if killed {
			sawRst := false
			for g, _, ok := c.take(); ok; g, _, ok = c.take() {
				sawRst = sawRst || g.flags&fRst != 0
			}
			if !sawRst {
				t.Fatal("orphan killed without a RST")
			}
		}
	}
}

// tcp_rto_max_ms 1000: the exponential backoff stops at 1 s.
func TestSysctlRtoMax(t *testing.T) {
	c := newScript(t)
	setSysctl(t, c.s, "ipv4/tcp_rto_max_ms", "1000")
	c.establishAfter()
	gaps := c.retransmitGaps(8)
	for i, g := range gaps {
		if g > time.Second+5*time.Millisecond {
			t.Fatalf("retransmission %d after %v > tcp_rto_max_ms: %v", i+1, g, gaps)
		}
	}
	if gaps[7] < 900*time.Millisecond {
		t.Fatalf("backoff did not reach the ceiling: %v", gaps)
	}
	c2 := newEstablished(t)
	if g := c2.retransmitGaps(8); g[7] < 10*time.Second {
		t.Fatalf("default backoff %v, want beyond 10 s by the 8th", g)
	}
}

// tcp_thin_linear_timeouts 1: a thin stream's RTO does not back off for
// its first six timeouts after slow start (the first RTO ends it).
func TestSysctlThinLinearTimeouts(t *testing.T) {
	for _, on := range []bool{false, true} {
		c := newEstablished(t)
		if on {
			setSysctl(t, c.s, "ipv4/tcp_thin_linear_timeouts", "1")
		}
		g := c.retransmitGaps(5)
		linear := g[2] == g[3] && g[3] == g[4]
		if linear != on || (!on && g[4] != 2*g[3]) {
			t.Fatalf("tcp_thin_linear_timeouts %v: gaps %v", on, g)
		}
	}
}

// tcp_early_retrans 0: no tail loss probe; the default (3) sends one
// before the RTO.
func TestSysctlEarlyRetrans(t *testing.T) {
	for _, v := range []string{"3", "0"} {
		c := sackEstablished(t)
		setSysctl(t, c.s, "ipv4/tcp_early_retrans", v)
		c.tp.Send(context.Background(), []byte("tail"))
		c.take()
		c.untilRetransmit()
		if got := c.s.mib.Get(memctl.TcpExtTCPLossProbes); (got == 1) != (v == "3") {
			t.Fatalf("tcp_early_retrans %s: TCPLossProbes %d, TCPTimeouts %d", v, got, c.s.mib.Get(memctl.TcpExtTCPTimeouts))
		}
		if to := c.s.mib.Get(memctl.TcpExtTCPTimeouts); (to == 1) != (v == "0") {
			t.Fatalf("tcp_early_retrans %s: TCPTimeouts %d", v, to)
		}
	}
}

// tcp_slow_start_after_idle: after idling for several RTOs a connection's
// cwnd restarts from the initial window; at 0 it keeps its window.
func TestSysctlSlowStartAfterIdle(t *testing.T) {
	for _, on := range []bool{true, false} {
		c := newEstablished(t)
		if !on {
			setSysctl(t, c.s, "ipv4/tcp_slow_start_after_idle", "0")
		}
		c.clk.Advance(time.Second) // lsndtime 0 means never sent
		c.tp.Send(context.Background(), []byte("x"))
		c.take()
		c.send(seg{seq: 1001, ack: c.iss + 2, flags: fAck})
		c.tp.lockSock()
		c.tp.cwnd = 80
		c.tp.releaseSock()
		c.clk.Advance(30 * time.Second)
		c.tp.Send(context.Background(), []byte("y"))
		c.take()
		if cw := c.tp.Info().SndCwnd; (cw == 80) == on {
			t.Fatalf("tcp_slow_start_after_idle %v: cwnd %d after 30 s idle", on, cw)
		}
	}
}

// tcp_max_reordering caps the reordering degree a SACK shows: with the
// peer SACKing 9 segments past a hole, reordering is 10 by
// default and 5 with tcp_max_reordering 5 (the first segment, SACKed
// later, was reordered by ten segments' worth: tcp_check_sack_reordering).
func TestSysctlMaxReordering(t *testing.T) {
	for _, v := range []string{"", "5"} {
		c := withSysctl(t, sackEstablished, "tcp_max_reordering", v)
		c.tp.Send(context.Background(), make([]byte, 10*1460))
		for _, _, ok := c.take(); ok; _, _, ok = c.take() {
		}
		mss := uint32(c.tp.mssCache)
		c.send(seg{seq: 1001, ack: c.iss + 1, flags: fAck, opts: sack1(c.iss+1+mss, c.iss+1+10*mss)})
		c.tp.lockSock()
		c.tp.reordering = 3
		c.tp.checkSackReordering(c.iss+1, false) // the hole turned out to be reordering
		r := c.tp.reordering
		c.tp.releaseSock()
		if want := map[string]uint32{"": 10, "5": 5}[v]; r != want {
			t.Fatalf("tcp_max_reordering %q: reordering %d, want %d", v, r, want)
		}
	}
}

// tsoState puts a socket in a known pacing state: mss 1000, srtt and
// min_rtt rtt, cwnd, ssthresh.
func tsoState(c *script, rtt time.Duration, cwnd, ssthresh uint32) {
	c.tp.lockSock()
	defer c.tp.releaseSock()
	c.tp.srttUs = uint32(rtt/time.Microsecond) << 3
	c.tp.updateRttMin(rtt)
	c.tp.cwnd, c.tp.ssthresh = cwnd, ssthresh
	c.tp.mssCache = 1000
}

// checkTsoSegs sets the sysctl ipv4/name to val (none if name is empty)
// and expects tsoSegs (mss 1000) to be want.
func (c *script) checkTsoSegs(name, val string, want int) {
	c.t.Helper()
	if name != "" {
		setSysctl(c.t, c.s, "ipv4/"+name, val)
	}
	if n := c.tp.tsoSegs(1000); n != want {
		c.t.Fatalf("tsoSegs %d (after %s=%s), want %d", n, name, val, want)
	}
}

// tcp_min_tso_segs is the floor of the TSO burst on a slow path.
func TestSysctlMinTsoSegs(t *testing.T) {
	c := newEstablished(t)
	tsoState(c, 100*time.Millisecond, 10, 5) // 10 segments per 100 ms: under 1 per ms
	c.checkTsoSegs("", "", 2)                // the default
	c.checkTsoSegs("tcp_min_tso_segs", "7", 7)
}

// tcp_tso_rtt_log: a path with a min_rtt of 100 us gets bursts of up to
// 64 KB by default (100 us < 2^9 us); with tcp_tso_rtt_log 0 the bonus is
// gone and the burst is about 1 ms of the pacing rate.
func TestSysctlTsoRttLog(t *testing.T) {
	c := newEstablished(t)
	tsoState(c, 100*time.Microsecond, 2, 2)
	big := c.tp.tsoSegs(1000)
	setSysctl(t, c.s, "ipv4/tcp_tso_rtt_log", "0")
	small := c.tp.tsoSegs(1000)
	// 2 segments per 100 us at 120%: 24 MB/s, 23 segments per 1.024 ms
	if big != 65 || small != 23 {
		t.Fatalf("tsoSegs %d by default, %d with tcp_tso_rtt_log 0", big, small)
	}
}

// tcp_pacing_ss_ratio and tcp_pacing_ca_ratio scale the pacing rate, and
// with it the TSO burst, in slow start and in congestion avoidance.
func TestSysctlPacingRatios(t *testing.T) {
	c := newEstablished(t)
	// 100 segments per 10 ms: 10 MB/s at 100%, 9 segments of 1000 bytes per
	// 1.024 ms (tcpPacingShift); min_rtt 10 ms gets no bonus.
	tsoState(c, 10*time.Millisecond, 100, 1000) // slow start: cwnd < ssthresh/2
	c.checkTsoSegs("", "", 19)                  // tcp_pacing_ss_ratio 200
	c.checkTsoSegs("tcp_pacing_ss_ratio", "100", 9)
	tsoState(c, 10*time.Millisecond, 100, 100) // congestion avoidance
	c.checkTsoSegs("", "", 11)                 // tcp_pacing_ca_ratio 120
	c.checkTsoSegs("tcp_pacing_ca_ratio", "300", 29)
}

// tcp_min_rtt_wlen: a min_rtt sample older than the window is replaced by
// a larger new one; within the default 300 s window it stays.
func TestSysctlMinRttWlen(t *testing.T) {
	for _, v := range []string{"", "1"} {
		c := withSysctl(t, newEstablished, "tcp_min_rtt_wlen", v)
		c.tp.lockSock()
		c.tp.updateRttMin(10 * time.Millisecond)
		c.tp.releaseSock()
		c.clk.Advance(5 * time.Second)
		c.tp.lockSock()
		c.tp.updateRttMin(50 * time.Millisecond)
		got := c.tp.minRttUs()
		c.tp.releaseSock()
		if want := map[string]uint32{"": 10000, "1": 50000}[v]; got != want {
			t.Fatalf("tcp_min_rtt_wlen %q: min_rtt %d us, want %d", v, got, want)
		}
	}
}

// tcp_comp_sack_nr: out-of-order segments arriving in one receive batch
// get one merged SACK by default; with 0 each gets its own ACK.
func TestSysctlCompSackNr(t *testing.T) {
	for _, v := range []string{"", "0"} {
		c := withSysctl(t, sackEstablished, "tcp_comp_sack_nr", v)
		var sgs []seg
		for i := uint32(1); i <= 6; i++ {
			sgs = append(sgs, seg{seq: 1001 + 10*i, ack: c.iss + 1, flags: fAck, payload: "0123456789"})
		}
		c.sendBatch(sgs...)
		n := 0
		for _, _, ok := c.take(); ok; _, _, ok = c.take() {
			n++
		}
		if (v == "0") != (n == 6) || n == 0 {
			t.Fatalf("tcp_comp_sack_nr %q: %d ACKs for 6 out-of-order segments", v, n)
		}
	}
}

// tcp_challenge_ack_limit 2: at most three challenge ACKs a second
// (between half and one and a half times the limit) where the default
// answers every SYN.
func TestSysctlChallengeAckLimit(t *testing.T) {
	for _, v := range []string{"", "2"} {
		c := newEstablished(t)
		setSysctl(t, c.s, "ipv4/tcp_invalid_ratelimit", "0")
		if v != "" {
			setSysctl(t, c.s, "ipv4/tcp_challenge_ack_limit", v)
		}
		c.clk.Advance(time.Second)
		for i := 0; i < 10; i++ {
			c.send(seg{seq: 1001, flags: fSyn})
		}
		n := 0
		for _, _, ok := c.take(); ok; _, _, ok = c.take() {
			n++
		}
		if got := c.s.mib.Get(memctl.TcpExtTCPChallengeACK); got != uint64(n) || (v == "" && n != 10) || (v == "2" && (n < 1 || n > 3)) {
			t.Fatalf("tcp_challenge_ack_limit %q: %d challenge ACKs (counted %d)", v, n, got)
		}
	}
}

// ipfrag_high_thresh: with a limit below one held fragment's charge a
// second datagram's fragment is refused (ReasmFails); by default it is
// held.
func TestSysctlIPFragHighThresh(t *testing.T) {
	for _, v := range []string{"", "1"} {
		n := newTestNet(t, impair.Config{}, impair.Config{}, 21)
		if v != "" {
			setSysctl(t, n.b, "ipv4/ipfrag_low_thresh", "0")
			setSysctl(t, n.b, "ipv4/ipfrag_high_thresh", v)
		}
		n.inject(ipPacket(17, 42, 0x2000, make([]byte, 16)))
		n.inject(ipPacket(17, 43, 0x2000, make([]byte, 16)))
		want := map[string]int{"": 2, "1": 1}[v]
		if q := n.b.frags.Queues(); q != want || (n.b.mib.Get(memctl.IpReasmFails) == 1) != (v == "1") {
			t.Fatalf("ipfrag_high_thresh %q: %d queues, ReasmFails %d", v, q, n.b.mib.Get(memctl.IpReasmFails))
		}
	}
}

// ipfrag_low_thresh bounds ipfrag_high_thresh from below: the high mark
// cannot go under it, and can once it is lowered.
func TestSysctlIPFragLowThresh(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 22)
	high, _ := n.b.net.Sysctls.Lookup("ipv4/ipfrag_high_thresh")
	if err := high.Write("1000"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("high below the default low mark: %v, want EINVAL", err)
	}
	if n.b.net.Sysctls.IPFragHighThresh() != 4<<20 {
		t.Fatal("a refused write changed ipfrag_high_thresh")
	}
	setSysctl(t, n.b, "ipv4/ipfrag_low_thresh", "500")
	setSysctl(t, n.b, "ipv4/ipfrag_high_thresh", "1000")
	if n.b.net.Sysctls.IPFragHighThresh() != 1000 {
		t.Fatal("ipfrag_high_thresh not set above the lowered low mark")
	}
}

// ipfrag_time 2: an incomplete datagram goes after 2 s, not 30.
func TestSysctlIPFragTime(t *testing.T) {
	n := newTestNet(t, impair.Config{}, impair.Config{}, 23)
	setSysctl(t, n.b, "ipv4/ipfrag_time", "2")
	n.inject(ipPacket(17, 42, 0x2000, make([]byte, 16)))
	n.run(1900 * time.Millisecond)
	if n.b.frags.Queues() != 1 {
		t.Fatal("dropped before ipfrag_time")
	}
	n.run(200 * time.Millisecond)
	if n.b.frags.Queues() != 0 || n.b.mib.Get(memctl.IpReasmTimeout) != 1 {
		t.Fatal("not dropped 2.1 s into ipfrag_time 2")
	}
}

// portUnreachables injects k UDP datagrams to a closed port, 1 ms apart,
// and returns how many port unreachables were sent.
func portUnreachables(n *testNet, k int, gap time.Duration) int64 {
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], 1234)
	binary.BigEndian.PutUint16(udp[2:], 9) // nothing listens
	binary.BigEndian.PutUint16(udp[4:], 8)
	before := n.b.mib.Get(memctl.IcmpOutDestUnreachs)
	for i := 0; i < k; i++ {
		n.inject(ipPacket(17, uint16(100+i), 0, udp))
		n.run(gap)
	}
	return int64(n.b.mib.Get(memctl.IcmpOutDestUnreachs) - before)
}

// icmp_ratelimit, icmp_ratemask, icmp_msgs_per_sec and icmp_msgs_burst:
// 20 datagrams to a closed port within 20 ms get a burst of 6 port
// unreachables by default (the per-destination bucket of
// icmp_ratelimit), all 20 with icmp_ratelimit 0 or with unreachables out
// of icmp_ratemask, and only icmp_msgs_burst of them when the global
// bucket is smaller.
func TestSysctlICMPRatelimit(t *testing.T) {
	for _, c := range []struct {
		set  [][2]string
		want int64
		ctr  memctl.Counter
	}{
		{nil, 6, memctl.IcmpOutRateLimitHost},
		{[][2]string{{"icmp_ratelimit", "0"}}, 20, 0},
		{[][2]string{{"icmp_ratemask", "0"}}, 20, 0},
		{[][2]string{{"icmp_ratelimit", "0"}, {"icmp_msgs_burst", "3"}}, 3, memctl.IcmpOutRateLimitGlobal},
	} {
		n := newTestNet(t, impair.Config{}, impair.Config{}, 24)
		for _, kv := range c.set {
			setSysctl(t, n.b, "ipv4/"+kv[0], kv[1])
		}
		n.run(10 * time.Millisecond) // the global bucket refills, to at most the burst
		if got := portUnreachables(n, 20, 0); got != c.want || (c.ctr != 0 && int64(n.b.mib.Get(c.ctr)) != 20-c.want) {
			t.Fatalf("%v: %d port unreachables, want %d", c.set, got, c.want)
		}
	}
}

// icmp_msgs_per_sec refills the global bucket: at 1000 per second with a
// burst of 1, a datagram every 3 ms is always answered; at 100 per second
// about one in three (one credit per 10 ms).
func TestSysctlICMPMsgsPerSec(t *testing.T) {
	for _, c := range []struct {
		perSec   string
		min, max int64
	}{{"1000", 20, 20}, {"100", 5, 7}} {
		n := newTestNet(t, impair.Config{}, impair.Config{}, 25)
		setSysctl(t, n.b, "ipv4/icmp_ratelimit", "0")
		setSysctl(t, n.b, "ipv4/icmp_msgs_burst", "1")
		setSysctl(t, n.b, "ipv4/icmp_msgs_per_sec", c.perSec)
		n.run(100 * time.Millisecond)
		portUnreachables(n, 1, 3*time.Millisecond) // the bucket refilled to the burst of 1 and used
		got := portUnreachables(n, 20, 3*time.Millisecond)
		if got < c.min || got > c.max {
			t.Fatalf("icmp_msgs_per_sec %s: %d of 20 answered", c.perSec, got)
		}
	}
}
