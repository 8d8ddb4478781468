package linuxdiff

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Counters a receiver that never reads may move.
var recvCounters = []string{"TCPToZeroWindowAdv", "PruneCalled", "TCPRcvCollapsed", "TCPRcvQDrop",
	"TCPZeroWindowDrop", "TCPOFODrop"}

// recvResult is a receiver that never reads, once its window has closed.
type recvResult struct {
	s   tcpSample
	mib map[string]int64 // counters moved during the scenario
}

func (r recvResult) counters(names ...string) string {
	var s string
	for i, n := range names {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s %d", n, r.mib["TcpExt:"+n])
	}
	return s
}

// recvFill makes the kernel peer send to a socket of side that never
// reads (with delay on the packets arriving at it) until the receive
// window is closed and the queue holds still, then waits (at most 2 s) for
// a zero-window probe to be dropped.
func recvFill(side sut, port int, delay time.Duration) (res recvResult, err error) {
	if err := side.impairIn(delay); err != nil {
		return res, err
	}
	defer func() {
		if e := side.impairIn(0); err == nil {
			err = e
		}
	}()
	l, err := side.tcpListen(port)
	if err != nil {
		return res, err
	}
	defer l.Close()
	before, err := side.mib()
	if err != nil {
		return res, err
	}
	tx, err := peerDial(side.peer(), port)
	if err != nil {
		return res, err
	}
	rx, err := l.accept(10 * time.Second)
	if err != nil {
		tx.Close()
		return res, err
	}
	defer rx.Close()
	sent := make(chan struct{})
	go func() { // at most 64 MiB and 30 s; closing tx ends it sooner
		defer close(sent)
		buf := make([]byte, 64<<10)
		tx.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for i := 0; i < 1024; i++ {
			if _, err := tx.Write(buf); err != nil {
				return
			}
		}
	}()
	defer func() { tx.Close(); <-sent }()

	type key struct{ qin, r, wnd int }
	_, err = settle(600*time.Millisecond, 15*time.Second, func() (key, error) {
		s, err := rx.info()
		return key{s.qin, s.r, s.rcvWnd}, err
	})
	if err != nil {
		return res, err
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res.s, err = rx.info(); err != nil || res.s.d > 0 || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return res, err
	}
	if res.s.rcvWnd != 0 {
		return res, fmt.Errorf("window did not close: %+v", res.s)
	}
	after, err := side.mib()
	res.mib = map[string]int64{}
	for n, v := range after {
		res.mib[n] = v - before[n]
	}
	return res, err
}

// recvBoth runs recvFill on the kernel, then on sockfs.
func recvBoth(t *testing.T, sides [2]sut, delay time.Duration) (k, s recvResult) {
	t.Helper()
	var res [2]recvResult
	for j, side := range sides {
		var err error
		if res[j], err = recvFill(side, nextPort(), delay); err != nil {
			t.Fatalf("%s: %v", side.name(), err)
		}
	}
	return res[0], res[1]
}

// zeroWindow: a kernel sender into a receiver that never reads. How full
// the queue gets depends on the sizes of the peer's TSO super-packets,
// which follow its cwnd and ACK timing: Recv-Q and r get 5%.
func zeroWindow(t *testing.T, sides [2]sut, rs *rowSet) {
	k, s := recvBoth(t, sides, 0)
	const why = "the peer's TSO sizes follow its cwnd and ACK timing"
	rs.near("zero-window receiver: Recv-Q", float64(k.s.qin), float64(s.s.qin), 0.05, why)
	rs.near("zero-window receiver: r (rmem_alloc)", float64(k.s.r), float64(s.s.r), 0.05, why)
	rs.exact("zero-window receiver: rb (rcvbuf)", k.s.rb, s.s.rb)
	rs.exact("zero-window receiver: advertised window (rcv_wnd)", k.s.rcvWnd, s.s.rcvWnd)
	rs.near("zero-window receiver: rcv_ssthresh", float64(k.s.rcvSsthresh), float64(s.s.rcvSsthresh), 0.05,
		why+": each segment grows it by its own size")
	rs.judge("zero-window receiver: d (sk_drops) counts dropped probes",
		fmt.Sprint(k.s.d), fmt.Sprint(s.s.d), (k.s.d > 0) == (s.s.d > 0),
		"both > 0: how many probes arrived depends on the sender's backoff timer")
	rs.exact("zero-window receiver: counters", k.counters(recvCounters...), s.counters(recvCounters...))
}

// impairedReceiver: as zeroWindow, with 1 ms of delay on the data path
// (sockfs: `in delay 1ms`, which cuts super-packets into wire-sized
// packets; kernel: the relay holds the super-packets whole, as GRO
// (napi_gro_receive) would rebuild them behind a NIC).
func impairedReceiver(t *testing.T, sides [2]sut, rs *rowSet) {
	k, s := recvBoth(t, sides, time.Millisecond)
	perByte := func(r recvResult) (float64, string) {
		return float64(r.s.r) / float64(max(r.s.qin, 1)), fmt.Sprintf("r%d for %d B", r.s.r, r.s.qin)
	}
	kv, kw := perByte(k)
	sv, sw := perByte(s)
	rs.nearShow("in delay 1ms: r per queued byte", kv, sv, kw, sw, 0.10,
		"how many wire packets each skb carries depends on timing")
	rs.exact("in delay 1ms: rb (rcvbuf)", k.s.rb, s.s.rb)
	rs.exact("in delay 1ms: counters", k.counters("PruneCalled", "TCPRcvCollapsed"),
		s.counters("PruneCalled", "TCPRcvCollapsed"))
}

// sendFill connects side to a kernel peer that never reads and writes
// (non-blocking) until the send buffer is full and stays so.
func sendFill(side sut, port int) (tcpSample, error) {
	l, err := peerListen(side.peer(), port)
	if err != nil {
		return tcpSample{}, err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		l.SetDeadline(time.Now().Add(10 * time.Second))
		c, _ := l.Accept()
		accepted <- c
	}()
	tx, err := side.tcpDial(port)
	if c := <-accepted; c != nil {
		defer c.Close()
	} else if err == nil {
		err = errors.New("the peer accepted nothing")
	}
	if err != nil {
		return tcpSample{}, err
	}
	defer tx.Close()
	buf := make([]byte, 64<<10)
	total := 0
	type key struct{ w, qout, tb int }
	_, err = settle(600*time.Millisecond, 15*time.Second, func() (key, error) {
		for total < 64<<20 {
			n, err := tx.write(buf)
			total += n
			if errors.Is(err, errWouldBlock) {
				break
			}
			if err != nil {
				return key{}, err
			}
		}
		s, err := tx.info()
		return key{s.w, s.qout, s.tb}, err
	})
	if err != nil {
		return tcpSample{}, err
	}
	return tx.info()
}

// blockedSender: a sender whose kernel peer never reads. sndbuf grows
// with cwnd (tcp_sndbuf_expand) and cwnd with the ACKs that came back
// before the peer's window closed, which depends on timing (the kernel
// alone ends anywhere from cwnd 29 to 86 here): w, Send-Q and tb are
// compared through what does not depend on it, wmem per queued byte (the
// skb sizes: 5%, as issue 13 asks) and tb per cwnd segment (2 × per_mss).
func blockedSender(t *testing.T, sides [2]sut, rs *rowSet) {
	var res [2]tcpSample
	for j, side := range sides {
		var err error
		if res[j], err = sendFill(side, nextPort()); err != nil {
			t.Fatalf("%s: %v", side.name(), err)
		}
	}
	k, s := res[0], res[1]
	what := func(s tcpSample) string { return fmt.Sprintf("w%d for %d B queued", s.w, s.qout) }
	rs.nearShow("blocked sender: w (wmem_queued) per queued byte",
		float64(k.w)/float64(max(k.qout, 1)), float64(s.w)/float64(max(s.qout, 1)), what(k), what(s), 0.05,
		"skb sizes follow cwnd and timing")
	perSeg := func(s tcpSample) string {
		return fmt.Sprintf("%d (tb%d at cwnd %d)", s.tb/max(s.cwnd, 1), s.tb, s.cwnd)
	}
	rs.judge("blocked sender: tb (sndbuf) per cwnd segment", perSeg(k), perSeg(s),
		k.tb*s.cwnd == s.tb*k.cwnd, "tb / cwnd")
}

// smallRmem: with tcp_rmem `4096 16384 65536` the window, not the peer's
// cwnd, bounds every burst, so the kernel is deterministic: rcv_ssthresh
// after the handshake on either side, after a first 3000 B (one
// super-packet), and a receiver that never reads.
func smallRmem(t *testing.T, sides [2]sut, rs *rowSet) {
	const rmem = "4096 16384 65536"
	var accepted, firstData, connected [2]int
	for j, side := range sides {
		old, err := side.sysctl("ipv4/tcp_rmem", rmem)
		if err != nil {
			t.Fatal(err)
		}
		defer side.sysctl("ipv4/tcp_rmem", old)
		if accepted[j], firstData[j], err = handshakePassive(side, nextPort(), 3000); err != nil {
			t.Fatalf("%s: %v", side.name(), err)
		}
		if connected[j], err = handshakeActive(side, nextPort()); err != nil {
			t.Fatalf("%s: %v", side.name(), err)
		}
	}
	rs.exact("tcp_rmem "+rmem+": rcv_ssthresh after accept", accepted[0], accepted[1])
	rs.exact("tcp_rmem "+rmem+": rcv_ssthresh after connect", connected[0], connected[1])
	rs.exact("tcp_rmem "+rmem+": rcv_ssthresh after the first 3000 B", firstData[0], firstData[1])
	k, s := recvBoth(t, sides, 0)
	rs.exact("tcp_rmem "+rmem+": zero-window receiver Recv-Q", k.s.qin, s.s.qin)
	rs.exact("tcp_rmem "+rmem+": zero-window receiver r (rmem_alloc)", k.s.r, s.s.r)
	rs.exact("tcp_rmem "+rmem+": zero-window receiver rcv_ssthresh", k.s.rcvSsthresh, s.s.rcvSsthresh)
}

// handshakePassive accepts a call from the kernel peer and returns
// rcv_ssthresh right after accept and once the peer's first n bytes (one
// write) have arrived.
func handshakePassive(side sut, port, n int) (accepted, afterData int, err error) {
	l, err := side.tcpListen(port)
	if err != nil {
		return 0, 0, err
	}
	defer l.Close()
	c, err := peerDial(side.peer(), port)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	rx, err := l.accept(10 * time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer rx.Close()
	s, err := rx.info()
	if err != nil {
		return 0, 0, err
	}
	if _, err := c.Write(make([]byte, n)); err != nil {
		return 0, 0, err
	}
	d, err := settle(200*time.Millisecond, 5*time.Second, rx.info)
	if err == nil && d.qin != n {
		err = fmt.Errorf("%d of %d B arrived", d.qin, n)
	}
	return s.rcvSsthresh, d.rcvSsthresh, err
}

func handshakeActive(side sut, port int) (int, error) {
	l, err := peerListen(side.peer(), port)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	c, err := side.tcpDial(port)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	s, err := c.info()
	return s.rcvSsthresh, err
}

// unreadFin: the peer accepts the system's connection and closes it at
// once, sending nothing but its FIN, which the system does not read for a
// while. Linux queues that FIN as an skb of its own (tcp_data_queue ->
// tcp_queue_rcv takes every in-order segment) and charges it to rmem_alloc
// until the reader reaches the end of the stream (tcp_recvmsg_locked's
// found_fin_ok eats it); SIOCINQ leaves it out (tcp_inq). sockfs used to
// drop a FIN without data after noting it: r0.
func unreadFin(t *testing.T, sides [2]sut, rs *rowSet) {
	var before, after [2]tcpSample
	for i, side := range sides {
		port, done := peerServe(t, side, 5*time.Second, func(net.Conn) error { return nil })
		before[i], after[i] = aroundPeerFin(t, side, port, done, nil)
	}
	rs.exact("unread FIN: r (rmem_alloc)", before[0].r, before[1].r)
	rs.exact("unread FIN: Recv-Q (SIOCINQ leaves the FIN out)", before[0].qin, before[1].qin)
	rs.exact("FIN read (end of stream): r (rmem_alloc)", after[0].r, after[1].r)
}

// aroundPeerFin dials the peer serving port, runs then (if not nil) on
// the connection, waits for the peer to finish (done) and its FIN to
// arrive, and samples the socket with that FIN unread and again once read
// to the end of the stream.
func aroundPeerFin(t *testing.T, side sut, port int, done chan error, then func(tcpSock) error) (before, after tcpSample) {
	t.Helper()
	c, err := side.tcpDial(port)
	if err != nil {
		t.Fatalf("%s: %v", side.name(), err)
	}
	defer c.Close()
	if then != nil {
		if err := then(c); err != nil {
			t.Fatalf("%s: %v", side.name(), err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	// The FIN is in when rmem_alloc stops changing.
	if _, err := settle(300*time.Millisecond, 5*time.Second, func() (int, error) {
		s, err := c.info()
		return s.r, err
	}); err != nil {
		t.Fatalf("%s: %v", side.name(), err)
	}
	if before, err = c.info(); err != nil {
		t.Fatal(err)
	}
	readEOF(t, side, c)
	if after, err = c.info(); err != nil {
		t.Fatal(err)
	}
	return before, after
}

// halfCloser is a TCP socket that can shut down its sending side.
type halfCloser interface {
	shutdownWrite() error
}

func (s *kernelSock) shutdownWrite() error { return unix.Shutdown(s.fd, unix.SHUT_WR) }

func (c *conv) shutdownWrite() error { return c.cmd("shutdown wr") }

// heldTimeWait: the system shuts down its sending side, the peer reads to
// the end and closes, so the system's socket, still held, enters
// TIME_WAIT with the peer's FIN unread. Linux's tcp_time_wait makes a
// timewait sock and moves the full socket to TCP_CLOSE (tcp_done) without
// touching its receive queue: the FIN stays queued and charged until the
// reader reaches it. What an orphan entering TIME_WAIT gives back cannot
// be compared here: its timewait sock has no descriptor and inet_diag
// reports no skmem for it, and sockstat's TCP mem is host-wide and moves
// by mem_pcpu_rsv (1 MiB) per CPU, not by a socket's page
// (TestTimeWaitOrphanFreesMemory covers it).
func heldTimeWait(t *testing.T, sides [2]sut, rs *rowSet) {
	var before, after [2]tcpSample
	for i, side := range sides {
		port, done := peerServe(t, side, 5*time.Second, func(c net.Conn) error {
			_, err := io.Copy(io.Discard, c)
			return err
		})
		before[i], after[i] = aroundPeerFin(t, side, port, done, func(c tcpSock) error {
			return c.(halfCloser).shutdownWrite()
		})
	}
	rs.exact("held socket in TIME_WAIT, FIN unread: r (rmem_alloc)", before[0].r, before[1].r)
	rs.exact("held socket in TIME_WAIT, FIN unread: f (forward_alloc)", before[0].f, before[1].f)
	rs.exact("held socket in TIME_WAIT, FIN read: r (rmem_alloc)", after[0].r, after[1].r)
}
