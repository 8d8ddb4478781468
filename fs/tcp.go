package fs

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"sockfs/memctl"
	"sockfs/netstack"
	"sockfs/skb"
)

type tcpProto struct{ stack *netstack.Stack }

func (p tcpProto) Name() string { return "tcp" }
func (p tcpProto) New() Conv    { return &tcpConv{s: p.stack.NewTCP(), backlog: 4096} }

func (p tcpProto) Stats() string {
	m := p.stack.Net().MIB
	var out string
	for _, c := range []memctl.Counter{memctl.TcpActiveOpens, memctl.TcpPassiveOpens,
		memctl.TcpAttemptFails, memctl.TcpEstabResets, memctl.TcpCurrEstab, memctl.TcpInSegs,
		memctl.TcpOutSegs, memctl.TcpRetransSegs, memctl.TcpInErrs, memctl.TcpOutRsts} {
		_, name := c.Name()
		out += fmt.Sprintf("%s: %d\n", name, m.Get(c))
	}
	return out
}

// tcpStateNames are Plan 9's state names for the status file.
var tcpStateNames = map[netstack.TCPState]string{
	netstack.TCPClose: "Closed", netstack.TCPListen: "Listen", netstack.TCPSynSent: "Syn_sent",
	netstack.TCPSynRecv: "Syn_received", netstack.TCPEstablished: "Established",
	netstack.TCPFinWait1: "Finwait1", netstack.TCPFinWait2: "Finwait2",
	netstack.TCPCloseWait: "Close_wait", netstack.TCPClosing: "Closing",
	netstack.TCPLastAck: "Last_ack", netstack.TCPTimeWait: "Time_wait",
}

// tcpConv is a TCP conversation over a netstack.TCPSock.
type tcpConv struct {
	s *netstack.TCPSock

	mu       sync.Mutex
	backlog  int
	released bool
	lingerOn bool // SO_LINGER set by `linger S`
	linger   int  // its timeout, seconds
	hungup   bool // `hangup` was written: reads see EOF, writes EPIPE
}

func (c *tcpConv) isHungup() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungup
}

func (c *tcpConv) Connect(ctx context.Context, raddr, laddr netip.AddrPort) error {
	if c.isHungup() {
		// Plan 9 connects only an Idle conversation; a hung-up one
		// says "connection in use" (its socket is gone: EBADF before).
		return syscall.EISCONN
	}
	if laddr.Port() != 0 || laddr.Addr().IsValid() {
		if err := c.s.Bind(laddr); err != nil {
			return err
		}
	}
	return c.s.Connect(ctx, raddr)
}

func (c *tcpConv) Announce(_ context.Context, laddr netip.AddrPort) error {
	if c.isHungup() || c.s.State() != netstack.TCPClose {
		// As Connect: Plan 9's announcectlmsg refuses a conversation
		// that is not Idle (connected, connecting, announced).
		return syscall.EISCONN
	}
	if err := c.s.Bind(laddr); err != nil {
		return err
	}
	c.mu.Lock()
	b := c.backlog
	c.mu.Unlock()
	return c.s.Listen(b)
}

func (c *tcpConv) Bind(laddr netip.AddrPort) error { return c.s.Bind(laddr) }

func (c *tcpConv) SetIgnoreAdvice() { c.s.SetIgnoreAdvice() }

// Queued is data's length: the bytes not yet read (SIOCINQ), none for a
// listener, whose Recv-Q counts calls.
func (c *tcpConv) Queued() int { return c.s.Inq() }

func (c *tcpConv) Accept(ctx context.Context) (Conv, error) {
	if c.s.State() != netstack.TCPListen {
		return nil, fmt.Errorf("not announced: %w", syscall.EINVAL)
	}
	ctx, cancel := nbctx(ctx)
	defer cancel()
	ns, err := c.s.Accept(ctx)
	if err != nil {
		if c.isHungup() || (Errno(err) == syscall.EINVAL && c.s.State() != netstack.TCPListen) {
			// Plan 9's ipopen: the announcement went away under a
			// waiting listen.
			return nil, fmt.Errorf("listen hungup: %w", syscall.EINVAL)
		}
		return nil, err
	}
	return &tcpConv{s: ns, backlog: 4096}, nil
}

func (c *tcpConv) Read(ctx context.Context, p []byte) (int, error) {
	if c.isHungup() {
		return 0, nil
	}
	ctx, cancel := nbctx(ctx)
	defer cancel()
	return c.s.Recv(ctx, p)
}

// Write returns once all of p is queued (or with the count queued before
// an error).
func (c *tcpConv) Write(ctx context.Context, p []byte) (int, error) {
	return c.send(ctx, len(p), func(ctx context.Context, done int, push bool) (int, error) {
		if push {
			return c.s.Send(ctx, p[done:])
		}
		return c.s.SendNoPush(ctx, p[done:])
	})
}

// WritePages is Write for n bytes from byte off of pages, which the send
// queue references instead of copying (Splicer).
func (c *tcpConv) WritePages(ctx context.Context, pages []*skb.Page, off, n int) (int, error) {
	return c.send(ctx, n, func(ctx context.Context, done int, push bool) (int, error) {
		return c.s.SendPages(ctx, pages, off+done, n-done, push)
	})
}

// send queues size bytes by calls of one, each from byte done on, pushed
// now or after the reply (PushAfterReply).
func (c *tcpConv) send(ctx context.Context, size int, one func(ctx context.Context, done int, push bool) (int, error)) (int, error) {
	if c.isHungup() {
		return 0, fmt.Errorf("i/o on hungup channel: %w", syscall.EPIPE)
	}
	later := pushAfterReply(ctx, size)
	if later != nil {
		later.s = c.s
	}
	ctx, cancel := nbctx(ctx)
	defer cancel()
	done := 0
	for done < size {
		n, err := one(ctx, done, later == nil)
		done += n
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		if done < size {
			// A short count without an error: the send stopped at an
			// error it keeps for the next write (tcp_sendmsg_locked
			// returns what it copied and leaves sk_err), or at EAGAIN
			// or a cancelled wait. Another call here would take that
			// error (sk_stream_error) and drop it, and the user's
			// next write would see EPIPE instead of, say, ETIMEDOUT.
			return done, nil
		}
	}
	return done, nil
}

// ReadTo is Read with the data handed to a (Splicer).
func (c *tcpConv) ReadTo(ctx context.Context, limit int, iov [][]byte, a RecvActor) (int, error) {
	if c.isHungup() {
		return 0, nil
	}
	ctx, cancel := nbctx(ctx)
	defer cancel()
	return c.s.RecvTo(ctx, limit, iov, a)
}

func (c *tcpConv) Readiness() Event             { return Event(c.s.Readiness()) }
func (c *tcpConv) WaitQueue() *memctl.WaitQueue { return &c.s.Mem().Wq }
func (c *tcpConv) Local() netip.AddrPort        { return c.s.LocalAddr() }
func (c *tcpConv) Remote() netip.AddrPort       { return c.s.RemoteAddr() }
func (c *tcpConv) Mem() *memctl.Sock            { return c.s.Mem() }

func (c *tcpConv) Status() string {
	i := c.s.Info()
	name := tcpStateNames[i.State]
	if name == "" {
		name = "Closed"
	}
	us := func(d time.Duration) int64 { return d.Microseconds() }
	s := fmt.Sprintf("%s qin %d qout %d srtt %d rttvar %d rto %d cwnd %d ssthresh %d "+
		"snd_wnd %d rcv_wnd %d rcv_ssthresh %d window_clamp %d mss %d retrans %d "+
		"bytes_acked %d bytes_received %d congestion %s",
		name, i.Qin, i.Qout, us(i.RTT), us(i.RTTVar), us(i.RTO), i.SndCwnd, i.SndSsthresh,
		i.SndWnd, i.RcvWnd, i.RcvSsthresh, i.WindowClamp, i.SndMSS, i.TotalRetrans,
		i.BytesAcked, i.BytesReceived, i.Congestion)
	// tcpi_ca_state and tcpi_min_rtt (ss -i's minrtt, here in
	// microseconds like srtt); tcpi_rcv_rtt and tcpi_rcv_space, the
	// receiver's RTT estimate and what DRS last saw copied in one
	// (ss -i's rcv_rtt and rcv_space).
	s += fmt.Sprintf(" ca_state %s min_rtt %d rcv_rtt %d rcv_space %d",
		netstack.CAStateName(i.CAState), us(i.MinRTT), us(i.RcvRTT), i.RcvSpace)
	if i.PMTU != 0 {
		s += fmt.Sprintf(" pmtu %d", i.PMTU)
	}
	// The rest of tcp_info that ss -tmi shows: segments in flight and
	// their scoreboard (unacked, sacked, lost, retrans_out: ss's
	// retrans:retrans_out/retrans), reordering, the delayed-ACK timeout
	// (ato, microseconds), the MSSs and window scales, what was delivered
	// (with ECE: delivered_ce), bytes written but not sent, data segments
	// sent, and app_limited while the delivery rate is application-limited.
	s += fmt.Sprintf(" unacked %d sacked %d lost %d retrans_out %d reordering %d ato %d rcvmss %d advmss %d"+
		" snd_wscale %d rcv_wscale %d delivered %d delivered_ce %d notsent %d data_segs_out %d",
		i.Unacked, i.Sacked, i.Lost, i.Retrans, i.Reordering, us(i.ATO), i.RcvMSS, i.AdvMSS,
		i.SndWscale, i.RcvWscale, i.Delivered, i.DeliveredCE, i.Notsent, i.DataSegsOut)
	if i.AppLimited {
		s += " app_limited on"
	}
	// ss -i's fields in name value pairs: its bbr:(bw:,mrtt:,
	// pacing_gain:,cwnd_gain:) becomes bbr_bw ... , bbr_mrtt in
	// microseconds like srtt and min_rtt (ss prints milliseconds).
	if b := i.BBR; b != nil {
		s += fmt.Sprintf(" bbr_mode %s bbr_bw %s bbr_mrtt %d bbr_pacing_gain %g bbr_cwnd_gain %g",
			b.Mode, ssBw(float64(b.Bw)*8), b.MinRttUs, float64(b.PacingGain)/256, float64(b.CwndGain)/256)
	}
	if i.PacingRate != 0 && i.PacingRate != ^uint64(0) {
		s += " pacing_rate " + ssBw(float64(i.PacingRate)*8)
	}
	if i.DeliveryRate != 0 {
		s += " delivery_rate " + ssBw(float64(i.DeliveryRate)*8)
	}
	// ss -i's options ecn and ecnseen, and its dctcp:(ce_state:,alpha:,
	// ab_ecn:,ab_tot:), as name value pairs.
	if i.ECN {
		s += " ecn on"
	}
	if i.ECNSeen {
		s += " ecnseen on"
	}
	if d := i.DCTCP; d != nil {
		s += fmt.Sprintf(" dctcp_ce_state %d dctcp_alpha %d dctcp_ab_ecn %d dctcp_ab_tot %d", d.CEState, d.Alpha, d.AbECN, d.AbTot)
	}
	return s + "\n"
}

// ssBw formats bits per second as ss -n does (sprint_bw without
// resolve_services: "%.0f", then "bps"): exact, where ss's "12.3Mbps"
// form kept three digits and trace, which reads the number back, lost the
// rest.
func ssBw(bw float64) string {
	return fmt.Sprintf("%.0fbps", bw)
}

func onOff(f []string) (bool, error) {
	if len(f) != 2 || (f[1] != "on" && f[1] != "off") {
		return false, fmt.Errorf("bad args to %s: %w", f[0], syscall.EINVAL)
	}
	return f[1] == "on", nil
}

func intArg(f []string, lo, hi int64) (int64, error) {
	if len(f) != 2 {
		return 0, fmt.Errorf("bad args to %s: %w", f[0], syscall.EINVAL)
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("bad %s value %q: %w", f[0], f[1], syscall.EINVAL)
	}
	return v, nil
}

func (c *tcpConv) Ctl(ctx context.Context, f []string) error {
	switch f[0] {
	case "v6only":
		on, err := onOff(f)
		if err != nil {
			return err
		}
		return c.s.SetV6Only(on)
	case "nodelay", "cork":
		on, err := onOff(f)
		if err != nil {
			return err
		}
		if f[0] == "nodelay" {
			c.s.SetNoDelay(on)
		} else {
			c.s.SetCork(on)
		}
		return nil
	case "keepalive":
		if len(f) == 1 {
			c.s.SetKeepAlive(true, 0, 0, 0)
			return nil
		}
		ms, err := intArg(f, 1, 1<<31-1)
		if err != nil {
			return err
		}
		c.s.SetKeepAlive(true, time.Duration(ms)*time.Millisecond, time.Duration(ms)*time.Millisecond, 0)
		return nil
	case "shutdown":
		if len(f) != 2 {
			return fmt.Errorf("bad args to shutdown: %w", syscall.EINVAL)
		}
		how := map[string]uint32{"rd": netstack.ShutRd, "wr": netstack.ShutWr, "rdwr": netstack.ShutRdWr}[f[1]]
		if how == 0 {
			return fmt.Errorf("bad args to shutdown: %w", syscall.EINVAL)
		}
		return c.s.Shutdown(how)
	case "notsent_lowat":
		v, err := intArg(f, 0, 1<<32-1)
		if err != nil {
			return err
		}
		c.s.SetNotsentLowat(uint32(v))
		return nil
	case "backlog":
		v, err := intArg(f, 0, 65535)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.backlog = int(v)
		c.mu.Unlock()
		return nil
	case "linger":
		// `linger off`, or `linger S` (SO_LINGER on, S seconds).
		if len(f) == 2 && f[1] == "off" {
			c.mu.Lock()
			c.lingerOn = false
			c.mu.Unlock()
			return nil
		}
		v, err := intArg(f, 0, 1<<31-1)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.lingerOn, c.linger = true, int(v)
		c.mu.Unlock()
		return nil
	case "rcvlowat": // SO_RCVLOWAT (negative: INT_MAX)
		v, err := intArg(f, -1<<31, 1<<31-1)
		if err != nil {
			return err
		}
		c.s.SetRcvlowat(int(v))
		return nil
	case "window_clamp": // TCP_WINDOW_CLAMP
		v, err := intArg(f, -1<<31, 1<<31-1)
		if err != nil {
			return err
		}
		return c.s.SetWindowClamp(int(v))
	case "user_timeout": // TCP_USER_TIMEOUT, milliseconds
		v, err := intArg(f, 0, 1<<31-1)
		if err != nil {
			return err
		}
		return c.s.SetUserTimeout(time.Duration(v) * time.Millisecond)
	case "maxseg": // TCP_MAXSEG
		v, err := intArg(f, 0, 1<<31-1)
		if err != nil {
			return err
		}
		return c.s.SetMaxSeg(int(v))
	case "quickack": // TCP_QUICKACK
		on, err := onOff(f)
		if err != nil {
			return err
		}
		c.s.SetQuickAck(on)
		return nil
	case "keepidle", "keepintvl": // TCP_KEEPIDLE, TCP_KEEPINTVL, seconds
		v, err := intArg(f, 1, 32767)
		if err != nil {
			return err
		}
		if f[0] == "keepidle" {
			return c.s.SetKeepIdle(time.Duration(v) * time.Second)
		}
		return c.s.SetKeepIntvl(time.Duration(v) * time.Second)
	case "keepcnt": // TCP_KEEPCNT
		v, err := intArg(f, 1, 127)
		if err != nil {
			return err
		}
		return c.s.SetKeepCnt(int(v))
	case "congestion": // TCP_CONGESTION
		if len(f) != 2 {
			return fmt.Errorf("bad args to congestion: %w", syscall.EINVAL)
		}
		if err := c.s.SetCongestion(f[1], ctlPrivileged(ctx)); err != nil {
			switch Errno(err) {
			case syscall.ENOENT:
				return fmt.Errorf("no congestion control %q (tcp_available_congestion_control lists them): %w", f[1], err)
			case syscall.EPERM:
				return fmt.Errorf("congestion control %q not in tcp_allowed_congestion_control: %w", f[1], err)
			}
			return fmt.Errorf("congestion %s: %w", f[1], err)
		}
		return nil
	case "ttl", "tos":
		lo := int64(0)
		if f[0] == "ttl" {
			lo = 1
		}
		v, err := intArg(f, lo, 255)
		if err != nil {
			return err
		}
		if f[0] == "ttl" {
			c.s.SetTTL(uint8(v))
		} else {
			c.s.SetTOS(uint8(v))
		}
		return nil
	}
	return errUnknownCtl
}

// Hangup resets the connection (RST) at once; the files stay open, reads
// then see EOF and writes fail with EPIPE.
func (c *tcpConv) Hangup() error {
	c.mu.Lock()
	c.hungup = true
	c.mu.Unlock()
	return c.s.Abort()
}

// Close is 9front's `close` (tcpclose): graceful FIN, files stay open.
// Plan 9 answers it in every state, and Go's net package on Plan 9
// writes it before closing a connection's files and gives up at an
// error, so a conversation that is not connected (never was, refused,
// reset, timed out, hung up) closes quietly where shutdown(2) says
// ENOTCONN.
func (c *tcpConv) Close() error {
	if c.isHungup() {
		return nil
	}
	if err := c.s.Shutdown(netstack.ShutRdWr); err != nil && Errno(err) != syscall.ENOTCONN && Errno(err) != syscall.EBADF {
		return err
	}
	return nil
}

// Release is the last close. With `linger 0` it resets the connection
// (Linux's close with SO_LINGER and a zero timeout); otherwise it closes
// gracefully, FIN after the queued data, without waiting: a positive
// linger waits in releaseLinger (a 9P clunk) or flushLinger (FUSE's FLUSH),
// for the frontends whose client waits for them.
func (c *tcpConv) Release() {
	c.mu.Lock()
	c.released = true
	abort := c.lingerOn && c.linger == 0
	c.mu.Unlock()
	if abort {
		c.s.Abort()
	}
	c.s.Close()
}

// lingerTime is the SO_LINGER time, and whether the last close lingers
// (`linger S` with S > 0; `linger 0` resets instead, see Release).
func (c *tcpConv) lingerTime() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(c.linger) * time.Second, c.lingerOn && c.linger > 0
}

// releaseLinger is the last close with SO_LINGER on: inet_release hands
// tcp_close the linger time, which waits after the FIN for the peer to
// acknowledge everything (netstack's CloseLinger).
func (c *tcpConv) releaseLinger(ctx context.Context) {
	d, on := c.lingerTime()
	if !on {
		c.Release()
		return
	}
	c.mu.Lock()
	c.released = true
	c.mu.Unlock()
	c.s.CloseLinger(ctx, d)
}

// flushLinger waits, for at most the linger time, until what was written
// has been acknowledged (netstack's WaitOutqEmpty). Deviation: FUSE asks
// at every close(2) (FLUSH) and cannot say whether it is the last, so the
// FIN cannot be sent yet; it goes with the RELEASE that follows the last
// close, and close(2) does not wait for its acknowledgement, where Linux
// would. A close of a duplicate of the conversation's only open file
// waits too, where Linux waits only at the last.
func (c *tcpConv) flushLinger(ctx context.Context) {
	if d, on := c.lingerTime(); on {
		c.s.WaitOutqEmpty(ctx, d)
	}
}

// Free reports whether a released conversation's slot may take a new
// one: once Closed, or once only a timewait sock is left. Plan 9 waits for
// Closed, but its Time_wait is short; with Linux's 60 s one, 4096 slots
// would cap short connections near 68 a second, where Linux's timewait
// socks hold no descriptor (tcp_max_tw_buckets bounds them). The timewait
// sock lives on in the stack, answering its 4-tuple, without a directory.
func (c *tcpConv) Free() bool {
	c.mu.Lock()
	r := c.released
	c.mu.Unlock()
	return r && (c.s.State() == netstack.TCPClose || c.s.IsTimewait())
}
