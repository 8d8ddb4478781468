package netstack

// TCP (RFC 9293) with Linux's (6.18) behaviour and socket memory accounting.
//
// Files: tcp_sock.go (socket, tables, setState, destruction), tcp_input.go
// (tcp_v4_rcv, tcp_rcv_state_process, tcp_ack, tcp_data_queue),
// tcp_output.go (__tcp_transmit_skb, tcp_write_xmit, SYN/FIN/ACK/RST),
// tcp_timer.go (retransmit/probe, delayed ACK, keepalive/FIN_WAIT2/TIME_WAIT),
// tcp_mem.go (window and buffer rules of linux-skmem.md 1.8/1.9),
// tcp_sack.go (SACK blocks, RFC 6675 loss marking, reordering, recovery,
// PRR), tcp_undo.go (undoing spurious reductions: D-SACKs, timestamps),
// tcp_rack.go (RACK loss detection, reorder timer, min_rtt),
// tcp_backlog.go (socket lock, sk_backlog, deferred timers),
// tcp_cong.go (NewReno, CUBIC), tcp_listen.go (SYN queue, accept queue, SYN
// cookies), tcp_api.go (socket calls, net.Conn, net.Listener), tcp_seq.go.
//
// Concurrency: the socket lock of Linux (tcp_backlog.go): user calls own
// the socket (lock_sock, released while they sleep); segment input (device
// goroutine) and timers (clock callbacks) take only its spinlock and, when a
// user owns the socket, queue the segment on sk_backlog or defer the timer
// work, which the owner does in release_sock. Lock order: listener, then
// child, then the table. Transmitting under the socket lock is safe
// (devices never call back synchronously).
//
// Deviations from Linux, each also noted where it is made: TIME_WAIT keeps
// the full socket rather than a timewait mini-socket; a listener's input
// takes its lock (backlogged when owned) where Linux's is lockless; no
// TSO on output (send skbs hold at most one MSS; received super-packets
// from a TUN's offloads are handled); RACK walks the retransmit
// queue in sequence order, not a time-sorted list (tcp_rack.go says why
// the result is the same); no F-RTO (a spurious RTO is undone only by
// timestamps or D-SACKs; tcp_undo.go), and NewReno leaves recovery at
// high_seq without Linux's hold; an ACK arriving while the loss probe is
// pending re-arms a full RTO rather than the remainder (tcp_rearm_rto);
// HyStart without pacing or GSO terms (tcp_hystart.go).

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/netstack/header"
	"sockfs/skb"
)

// TCPState is a TCP connection state, numbered as Linux's (include/net/tcp_states.h)
// so that status files read like /proc/net/tcp.
type TCPState uint8

// TCP states.
const (
	TCPEstablished TCPState = 1
	TCPSynSent     TCPState = 2
	TCPSynRecv     TCPState = 3
	TCPFinWait1    TCPState = 4
	TCPFinWait2    TCPState = 5
	TCPTimeWait    TCPState = 6
	TCPClose       TCPState = 7
	TCPCloseWait   TCPState = 8
	TCPLastAck     TCPState = 9
	TCPListen      TCPState = 10
	TCPClosing     TCPState = 11
)

var tcpStateNames = [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

// String returns the state's name as ss prints it.
func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) && s != 0 {
		return tcpStateNames[s]
	}
	return "UNKNOWN"
}

// Protocol constants (include/net/tcp.h), as time.Durations.
const (
	tcpTimeoutInit   = time.Second            // TCP_TIMEOUT_INIT
	tcpRtoMin        = 200 * time.Millisecond // TCP_RTO_MIN (the sysctl's default; probe0 and tcp_model_timeout use the constant)
	tcpRtoMax        = 120 * time.Second      // TCP_RTO_MAX
	tcpDelackMax     = 200 * time.Millisecond // TCP_DELACK_MAX
	tcpAtoMin        = 40 * time.Millisecond  // TCP_ATO_MIN
	tcpDelackMin     = 40 * time.Millisecond  // TCP_DELACK_MIN
	tcpTimewaitLen   = 60 * time.Second       // TCP_TIMEWAIT_LEN (2*MSL)
	tcpMaxQuickacks  = 16                     // TCP_MAX_QUICKACKS
	tcpInitCwnd      = 10                     // TCP_INIT_CWND
	tcpMssDefault    = 536                    // TCP_MSS_DEFAULT
	tcpMinMss        = 88                     // TCP_MIN_MSS
	tcpThinLinearRet = 6                      // TCP_THIN_LINEAR_RETRIES
	tcpMaxKeepIdle   = 32767 * time.Second    // MAX_TCP_KEEPIDLE (and MAX_TCP_KEEPINTVL)
	tcpMaxKeepCnt    = 127                    // MAX_TCP_KEEPCNT
	tcpOlenTstampAl  = 12                     // TCPOLEN_TSTAMP_ALIGNED
	tcpMaxWscale     = 14                     // TCP_MAX_WSCALE
	tcpScalingRatio  = 128                    // TCP_DEFAULT_SCALING_RATIO
	tcpCollapseMax   = 3776                   // SKB_MAX_ORDER(0, 0): payload of a collapsed skb
	tcpMaxSackBlocks = 4                      // TCP_NUM_SACKS
)

// Flags of the control segments we build (tcp_flags in the cb).
const (
	tcpFin = uint8(header.TCPFlagFin)
	tcpSyn = uint8(header.TCPFlagSyn)
	tcpRst = uint8(header.TCPFlagRst)
	tcpPsh = uint8(header.TCPFlagPsh)
	tcpAck = uint8(header.TCPFlagAck)
)

// icsk_ack.pending bits (inet_connection_sock.h).
const (
	icskAckSched   = 1  // ICSK_ACK_SCHED
	icskAckTimer   = 2  // ICSK_ACK_TIMER
	icskAckPushed  = 4  // ICSK_ACK_PUSHED
	icskAckPushed2 = 8  // ICSK_ACK_PUSHED2
	icskAckNow     = 16 // ICSK_ACK_NOW
	icskAckNoMem   = 32 // ICSK_ACK_NOMEM
)

// Congestion-avoidance states (tcp_ca_state).
const (
	tcpCAOpen     = 0
	tcpCADisorder = 1
	tcpCACWR      = 2 // TCP_CA_CWR: reducing cwnd after an ECN echo (tcp_ecn.go)
	tcpCARecovery = 3
	tcpCALoss     = 4
)

// tcpTuple identifies a connection: local and remote address and port.
type tcpTuple struct {
	laddr, raddr netip.Addr
	lport, rport uint16
}

// tcpTable holds the stack's TCP sockets: the established hash (every
// synchronised state, TIME_WAIT included), the listening hash and the bind
// table. Mirrors tcp_hashinfo (ehash, lhash2, bhash).
type tcpTable struct {
	stack  *Stack
	mu     sync.RWMutex
	estab  map[tcpTuple]*TCPSock
	listen map[uint16][]*TCPSock
	bound  map[uint16][]*TCPSock
	isnKey [32]byte
	tsKey  [32]byte

	// tcp_challenge_ack_limit's budget (net->ipv4.tcp_challenge_*).
	challengeMu    sync.Mutex
	challengeStamp int64
	challengeInit  bool
	challengeCount uint32
}

func (t *tcpTable) init(s *Stack) {
	t.stack = s
	t.estab = make(map[tcpTuple]*TCPSock)
	t.listen = make(map[uint16][]*TCPSock)
	t.bound = make(map[uint16][]*TCPSock)
	for i := 0; i < 32; i += 8 {
		binary.LittleEndian.PutUint64(t.isnKey[i:], s.rand())
		binary.LittleEndian.PutUint64(t.tsKey[i:], s.rand())
	}
}

// closeAll destroys every socket without sending anything (the stack is
// going away), freeing all their queued skbs.
func (t *tcpTable) closeAll() {
	t.mu.RLock()
	var all []*TCPSock
	seen := make(map[*TCPSock]bool)
	add := func(tp *TCPSock) {
		if !seen[tp] {
			seen[tp] = true
			all = append(all, tp)
		}
	}
	for _, tp := range t.estab {
		add(tp)
	}
	for _, l := range t.listen {
		for _, tp := range l {
			add(tp)
		}
	}
	for _, l := range t.bound {
		for _, tp := range l {
			add(tp)
		}
	}
	t.mu.RUnlock()
	for _, tp := range all {
		tp.lockSock()
		tp.destroyLocked()
		tp.releaseSock()
	}
}

// secureSeq computes an RFC 6528 initial sequence number: a keyed hash of
// the 4-tuple plus a clock ticking every 64 ns. Mirrors secure_tcp_seq
// (siphash there; SHA-256 here, keyed from the stack's seeded generator so
// simulations repeat).
func (t *tcpTable) secureSeq(tu tcpTuple) uint32 {
	h := t.hashTuple(&t.isnKey, tu)
	return h + uint32(t.stack.clock.Nanotime()>>6)
}

// secureTSOff is the per-connection timestamp offset: none unless the
// sysctl tcp_timestamps is 1 (2 turns the random offsets off). Mirrors
// secure_tcp_ts_off.
func (t *tcpTable) secureTSOff(tu tcpTuple) uint32 {
	if t.stack.net.Sysctls.TCPTimestamps() != 1 {
		return 0
	}
	return t.hashTuple(&t.tsKey, tu)
}

// synOptionsAllowed drops from a received SYN's options those the sysctls
// turn off: tcp_window_scaling, tcp_sack and tcp_timestamps are read for
// every SYN and SYN-ACK, as tcp_parse_options does.
func (s *Stack) synOptionsAllowed(opts *header.TCPOptions) {
	sys := s.net.Sysctls
	if !sys.TCPWindowScaling() {
		opts.HasWS = false
	}
	if !sys.TCPSack() {
		opts.SACKPermitted = false
	}
	if sys.TCPTimestamps() == 0 {
		opts.HasTimestamp = false
	}
}

func (t *tcpTable) hashTuple(key *[32]byte, tu tcpTuple) uint32 {
	if tu.laddr.Is6() {
		return t.hashTuple6(key, tu, nil)
	}
	var buf [44]byte
	copy(buf[:32], key[:])
	l, r := tu.laddr.As4(), tu.raddr.As4()
	copy(buf[32:], l[:])
	copy(buf[36:], r[:])
	binary.BigEndian.PutUint16(buf[40:], tu.lport)
	binary.BigEndian.PutUint16(buf[42:], tu.rport)
	sum := sha256.Sum256(buf[:])
	return binary.LittleEndian.Uint32(sum[:4])
}

// hashTuple6 is hashTuple (with extra, cookieHash's count and index) for
// IPv6 addresses, as secure_tcpv6_seq hashes all 32 bytes of them.
func (t *tcpTable) hashTuple6(key *[32]byte, tu tcpTuple, extra []byte) uint32 {
	var buf [32 + 36 + 5]byte
	copy(buf[:32], key[:])
	l, r := tu.laddr.As16(), tu.raddr.As16()
	copy(buf[32:], l[:])
	copy(buf[48:], r[:])
	binary.BigEndian.PutUint16(buf[64:], tu.lport)
	binary.BigEndian.PutUint16(buf[66:], tu.rport)
	copy(buf[68:], extra)
	sum := sha256.Sum256(buf[:])
	return binary.LittleEndian.Uint32(sum[:4])
}

// lookupEstab finds the socket of a connection. Mirrors __inet_lookup_established.
func (t *tcpTable) lookupEstab(tu tcpTuple) *TCPSock {
	t.mu.RLock()
	tp := t.estab[tu]
	t.mu.RUnlock()
	return tp
}

// lookupListener finds the listener for a SYN to daddr:dport, preferring a
// specific address over the wildcard. Mirrors __inet_lookup_listener.
func (t *tcpTable) lookupListener(daddr netip.Addr, dport uint16) *TCPSock {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var best *TCPSock
	bestScore := -1
	for _, l := range t.listen[dport] {
		if sc := localMatch(l.local.Addr(), l.v6only, daddr); sc > bestScore {
			best, bestScore = l, sc
		}
	}
	return best
}

// TCPSock is a TCP socket. Its methods are safe for concurrent use; every
// one owns the socket (lock_sock) while it runs. Segment input (from the
// device's goroutine) and the timers (from the clock's) never wait for an
// owner: they queue to the backlog or defer (tcp_backlog.go).
type TCPSock struct {
	stack *Stack
	sk    *memctl.Sock
	mu    sockLock  // see tcp_backlog.go: take it with lockSock/releaseSock or bhLockSock
	txq   xmitQueue // segments of one Send/writeXmit/xmitRetransmitQueue run (txBegin..txEnd)

	skBacklog    skb.Queue // sk_backlog: segments that arrived while owned (slock)
	blProc       skb.Queue // the batch __release_sock is processing (owner only)
	inBacklogRcv bool      // processing the backlog (owner only)
	rxb          *rxBatch  // the receive batch being processed (spinlock held)
	ackDeferred  bool      // on a receive batch's list of ACKs to send
	// backlogAckDue: an ACK deferred to the end of a releaseBacklog pass
	// (backlogBatch; owner only).
	backlogAckDue bool

	// SACK compression (tcp_sack_compress): duplicate ACKs merged.
	compressedAck       uint8
	dupAckCounter       uint8
	compressedAckRcvNxt uint32
	deferred            uint8 // timer work deferred to release_sock (tsq_flags; slock)

	state        TCPState
	local        netip.AddrPort
	remote       netip.AddrPort
	route        Route
	bound        bool
	connectBound bool  // bound by connect (hashConnect), so other connects may share the port
	hashed       bool  // in the established hash
	listened     bool  // in the listening hash
	dead         bool  // SOCK_DEAD: closed by the user (orphan)
	orphaned     bool  // counted in the protocol's orphans (setOrphan)
	twEntry      int64 // when TIME_WAIT began (tw_entry_stamp)
	twReused     bool  // connect took a TIME_WAIT socket's tuple (twReuse): iss set
	released     bool  // closed by the user (Close or Abort): the socket is no longer theirs
	sockState    uint8 // sock->state: ssUnconnected, ssConnecting or ssConnected (tcp_disconnect.go)
	inuse        bool  // counted in the protocol's sock_prot_inuse (setInuse)
	twUncounted  bool  // stands for a timewait sock only: out of sockets_allocated (twUncount)
	fw2tw        bool  // a FIN_WAIT2 timewait sock (timeWait): counted in tw
	destroyed    bool
	nonblock     atomic.Bool
	ignoreAdvice atomic.Bool  // Plan 9's ignoreadvice: ICMP errors do not fail the connection (SetIgnoreAdvice)
	err          atomic.Int32 // mirror of a pending error for lock-free readers

	// Sending (struct tcp_sock).
	iss          uint32
	sndUna       uint32
	bytesAcked   uint64 // tcpi_bytes_acked: snd_una's advance (the SYN counts 1)
	sndNxt       uint32
	sndWnd       uint32 // scaled
	sndWl1       uint32
	maxWindow    uint32
	writeSeq     uint32
	pushedSeq    uint32
	sndSml       uint32 // end of the last small segment sent (Minshall)
	sndWscale    uint8
	rcvWscale    uint8
	wscaleOK     bool
	sackOK       bool
	tstampOK     bool
	mssClamp     int           // peer's MSS option (rx_opt.mss_clamp)
	mssCache     int           // current effective send MSS
	pmtuCookie   int           // the path MTU mss_cache was computed for (icsk_pmtu_cookie)
	mtuInfo      int           // the MTU the last fragmentation-needed reported (mtu_info)
	mtuInfoSeq   uint32        // the sequence number that fragmentation-needed quoted, for a deferred check
	mtup         tcpMtup       // packetization-layer path-MTU discovery (icsk_mtup)
	errSoft      syscall.Errno // an ICMP error kept for a timeout (sk_err_soft)
	gsoSegs      uint16        // the size goal in segments (tp->gso_segs, tcp_tso.go)
	advmss       int           // MSS we advertise (minus options)
	userMss      int
	ttl, tos     uint8  // IP_TTL (0: the default) and IP_TOS of what the socket sends
	ecnTos       uint8  // the ECN bits of inet->tos: ECT(0) or none (tcp_ecn.go)
	ecnFlags     uint8  // ecn_flags (tcp_ecn.go)
	ackFlagECE   bool   // FLAG_ECE: the ACK being processed echoes CE (tcp_ack)
	ackAt        uint32 // the ack field of a sendAckAt ACK, when ackAtSet
	ackAtSet     bool
	deliveredCE  uint32 // delivered_ce: packets delivered by ACKs with ECE
	nodelay      bool
	cork         bool
	notsentLowat uint32
	v6only       bool          // IPV6_V6ONLY (SetV6Only)
	mapped       bool          // an IPv4 connection of an IPv6 socket: addresses reported IPv4-mapped
	writeSeqA    atomic.Uint32 // lock-free copies for the stream_memory_free hook
	sndNxtA      atomic.Uint32

	writeQueue skb.Queue // not yet sent
	rtxQueue   skb.Queue // sent, not fully acknowledged
	pf         skb.PageFrag

	packetsOut    uint32
	sackedOut     uint32
	lostOut       uint32
	retransOut    uint32
	highSeq       uint32 // snd_nxt when recovery started
	caState       uint8
	dupAcks       int
	totalRetrans  uint32
	undoMarker    uint32 // snd_una when the window was last reduced (0: nothing to undo)
	undoRetrans   int    // retransmissions not yet shown spurious by D-SACK (-1: none sent yet)
	undoEnd       uint32 // D-SACKs are awaited until snd_una passes this
	priorCwnd     uint32
	priorSsthr    uint32
	prrDelivered  uint32 // RFC 6937 state
	prrOut        uint32
	tlpHighSeq    uint32        // snd_nxt at the last tail loss probe (0: none out)
	tlpRetrans    bool          // tlp_retrans: that probe was a retransmission
	rack          tcpRack       // RACK-TLP loss detection state (tcp_rack.go)
	reordSeen     uint32        // reord_seen: reordering events detected
	delivered     uint32        // delivered: packets (S)ACKed (tcp_rate.go)
	rate          tcpRateState  // the delivery-rate sampler's socket state (tcp_rate.go)
	rttMin        minmax        // rtt_min: windowed minimum RTT in microseconds (tcp_min_rtt)
	rs            tcpRateSample // the rate sample of the ACK being processed
	dsackDups     uint32        // dsack_dups: segments reported duplicated by D-SACKs
	maxPacketsOut uint32        // tcp_cwnd_validate state
	cwndUsageSeq  uint32
	cwndLimited   bool

	// Pacing (tcp_pacing.go).
	pacingStatus uint8  // sk_pacing_status
	skPacingRate uint64 // sk_pacing_rate in bytes per second, kept by a congestion control with congControl
	wstampNs     int64  // tcp_wstamp_ns: earliest departure time of the next skb
	dataSegsOut  uint32 // data_segs_out: data segments sent, retransmissions included

	// F-RTO (tcp_enter_loss, tcp_process_loss). frto: on for the Loss
	// episode in progress (tp->frto). The ACK being processed (s)acked
	// data below high_seq never retransmitted (ackOrigSackAcked,
	// FLAG_ORIG_SACK_ACKED: tcp_sacktag_one, tcp_clean_rtx_queue), F-RTO's
	// proof that an RTO was spurious, or SACKed new data (ackDataSacked,
	// FLAG_DATA_SACKED).
	frto, ackOrigSackAcked, ackDataSacked bool
	// ackDsackTLP: the ACK being processed D-SACKs the last tail loss
	// probe's segment (FLAG_DSACK_TLP, set by rackDsackSeen).
	ackDsackTLP bool

	// Congestion control.
	ccMain     congControlOps // cc's cong_control, nil for reno and cubic
	rexmitLost bool           // rexmit == REXMIT_LOST: retransmit after congControl (xmitRecovery)
	rexmitNew  bool           // rexmit == REXMIT_NEW: new data after congControl (xmitNew, F-RTO)
	cwnd       uint32
	ssthresh   uint32
	cwndCnt    uint32
	cc         congestionControl
	ccName     string
	reordering uint32

	// RTT (tcp_rtt_estimator), in microseconds; srtt is stored <<3 as Linux.
	srttUs       uint32
	mdevUs       uint32
	mdevMaxUs    uint32
	rttvarUs     uint32
	rttSeq       uint32
	rto          time.Duration
	backoff      uint8
	retransmits  uint8
	probesOut    uint8
	probesTstamp int64         // icsk_probes_tstamp: when the persist timer first fired unanswered by a window (0: not)
	rtoMin       time.Duration // icsk_rto_min: tcp_rto_min_us when the socket was made
	rtoMax       time.Duration // icsk_rto_max: tcp_rto_max_ms when the socket was made
	userTimeout  time.Duration // icsk_user_timeout (TCP_USER_TIMEOUT; 0: none)
	rtoKind      uint8         // icsk_pending: timerRetrans, timerProbe0, timerReoTimeout or timerLossProbe
	rtoDeadline  int64
	retransStamp int64 // retrans_stamp: stack time of the episode's first retransmission (0: none; tcp_undo.go)

	// Receiving.
	irs           uint32
	rcvNxt        uint32
	bytesReceived uint64 // tcpi_bytes_received: rcv_nxt's advance past the SYN
	copiedSeq     uint32
	rcvlowat      int // sk_rcvlowat (SO_RCVLOWAT, tcp_rcvlowat.go)
	rcvWup        uint32
	rcvWnd        uint32
	rcvSsthresh   uint32
	windowClamp   uint32
	scalingRatio  uint8
	rcvMss        int       // icsk_ack.rcv_mss
	lastSegSize   int       // icsk_ack.last_seg_size
	rcvq          skb.Queue // in-order data
	ofo           skb.Queue // out-of-order, sorted by seq
	finSeen       bool
	urgData       bool
	// predOn and predWnd are tp->pred_flags: header prediction is on,
	// for segments offering the window predWnd (snd_wnd when it was
	// turned on). Set and cleared where Linux sets and clears them
	// (fastPathOn, fastPathCheck), not recomputed per segment.
	predOn        bool
	predWnd       uint32
	selectiveAcks [tcpMaxSackBlocks]header.SACKBlock
	numSacks      int
	dsack         bool
	duplicateSack header.SACKBlock

	// Receive autotuning (rcvq_space, rcv_rtt_est).
	rcvqSpace  int
	rcvqSeq    uint32
	rcvqTime   int64
	rcvRttUs   uint32 // <<3
	rcvRttSeq  uint32
	rcvRttTime int64
	// rcvRttLastTsecr is the last TSecr an RTT sample was considered
	// for (tcp_sock.rcv_rtt_last_tsecr): one sample per echoed value.
	rcvRttLastTsecr uint32

	// Timestamps (rx_opt).
	tsOffset      uint32
	tsRecent      uint32
	tsRecentStamp int64
	sawTstamp     bool
	rcvTsval      uint32
	rcvTsecr      uint32

	// Delayed ACK (icsk_ack).
	ackPending  uint8
	ackQuick    uint8
	ackPingpong uint8 // icsk_ack.pingpong: answers sent within ato of a receive
	ato         time.Duration
	lrcvtime    int64
	ackDeadline int64
	lastOOWAck  int64

	// Keepalive / FIN_WAIT2 / TIME_WAIT (sk_timer). kaTime, kaIntvl and
	// kaProbes are TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT; zero
	// means the live sysctl (keepalive_time_when and friends).
	keepalive  bool
	kaTime     time.Duration
	kaIntvl    time.Duration
	kaProbes   int
	rcvTstamp  int64 // time of the last received segment
	lsndtime   int64
	kaDeadline int64

	retransTimer *clock.Timer
	pacingTimer  *clock.Timer // pacing_timer (tcp_pacing.go)
	delackTimer  *clock.Timer
	keepTimer    *clock.Timer

	// Listening.
	backlog     int
	acceptQ     []*TCPSock
	reqs        map[tcpTuple]*tcpRequest
	synackTimer *clock.Timer
	parent      *TCPSock // listener while in the accept queue
}

// NewTCP returns a fresh, unbound TCP socket. Mirrors socket(AF_INET,
// SOCK_STREAM) with tcp_init_sock.
func (s *Stack) NewTCP() *TCPSock {
	sk := memctl.NewSock(s.net, memctl.SockStream, s.net.TCP)
	sk.InitTCPSock()
	return s.newTCPSock(sk)
}

func (s *Stack) newTCPSock(sk *memctl.Sock) *TCPSock {
	tp := &TCPSock{stack: s, sk: sk, state: TCPClose}
	tp.mu.wq.L = &tp.mu.slock
	tp.sk.StreamMemoryFree = tp.streamMemoryFree
	tp.sk.OnRelease = nil
	tp.rto = tcpTimeoutInit
	tp.mdevUs = uint32(tcpTimeoutInit / time.Microsecond)
	tp.cwnd = tcpInitCwnd
	tp.ssthresh = 0x7fffffff // TCP_INFINITE_SSTHRESH
	tp.mssCache = tcpMssDefault
	tp.mssClamp = 0xffff
	tp.advmss = tcpMssDefault
	tp.rcvMss = tcpMssDefault
	sys := s.net.Sysctls
	tp.reordering = uint32(sys.TCPReordering()) // tcp_init_sock
	tp.rtoMin, tp.rtoMax = sys.TCPRtoMin(), sys.TCPRtoMax()
	tp.rack.reoWndSteps = 1 // tcp_init_sock
	tp.rttMin.reset(0, tcpRackNoMinRtt)
	tp.scalingRatio = tcpScalingRatio
	tp.rcvlowat = 1 // sock_init_data
	// tcp_assign_congestion_control: the default at creation time.
	name := sys.TCPCongestionControl()
	tp.setCC(newCongestionControl(name), name)
	tp.retransTimer = s.clock.NewTimer(tp.retransmitTimerFired)
	tp.delackTimer = s.clock.NewTimer(tp.delackTimerFired)
	tp.pacingTimer = s.clock.NewTimer(tp.pacingTimerFired)
	tp.keepTimer = s.clock.NewTimer(tp.keepaliveTimerFired)
	return tp
}

// Mem returns the socket's memory accounting (skmem).
func (tp *TCPSock) Mem() *memctl.Sock { return tp.sk }

// SetNonblock sets O_NONBLOCK.
func (tp *TCPSock) SetNonblock(nb bool) { tp.nonblock.Store(nb) }

// SetIgnoreAdvice is Plan 9's `ignoreadvice` ctl: ICMP errors no longer
// fail a connection in SYN_SENT or SYN_RECV, nor leave a soft error for
// a timeout to report. Linux has no such option; a fragmentation-needed
// still lowers the path MTU.
func (tp *TCPSock) SetIgnoreAdvice() { tp.ignoreAdvice.Store(true) }

// State returns the connection state.
func (tp *TCPSock) State() TCPState {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.state
}

// IsTimewait reports whether the socket is only what Linux keeps as an
// inet_timewait_sock: in TIME_WAIT, or a FIN_WAIT2 orphan tcp_time_wait
// made one (fw2tw). Once the user has closed it, Linux has no full socket
// left, and nothing but the 4-tuple's lookup refers to it.
func (tp *TCPSock) IsTimewait() bool {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.state == TCPTimeWait || tp.fw2tw
}

// LocalAddr returns the bound local address (IPv4-mapped for an IPv4
// connection of an IPv6 socket).
func (tp *TCPSock) LocalAddr() netip.AddrPort {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.mapped {
		return mapTo(netip.IPv6Unspecified(), tp.local)
	}
	return tp.local
}

// RemoteAddr returns the peer's address, or the zero AddrPort
// (IPv4-mapped for an IPv4 connection of an IPv6 socket).
func (tp *TCPSock) RemoteAddr() netip.AddrPort {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.mapped {
		return mapTo(netip.IPv6Unspecified(), tp.remote)
	}
	return tp.remote
}

// SetV6Only sets IPV6_V6ONLY: an IPv6 wildcard binding (::) then takes
// IPv6 only, else IPv4 too, with IPv4-mapped addresses. Like Linux, it is
// EINVAL once the socket is bound (do_ipv6_setsockopt checks
// inet_num). The default is off (net.ipv6.bindv6only = 0).
func (tp *TCPSock) SetV6Only(on bool) error {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.bound {
		return errInval
	}
	tp.v6only = on
	return nil
}

// V6Only reports IPV6_V6ONLY.
func (tp *TCPSock) V6Only() bool {
	tp.lockSock()
	defer tp.releaseSock()
	return tp.v6only
}

func (tp *TCPSock) tuple() tcpTuple {
	return tcpTuple{laddr: tp.local.Addr(), raddr: tp.remote.Addr(), lport: tp.local.Port(), rport: tp.remote.Port()}
}

// now is the stack clock in nanoseconds.
func (tp *TCPSock) now() int64 { return tp.stack.clock.Nanotime() }

// tsNow is the TCP timestamp clock: milliseconds plus the connection's
// offset. Mirrors tcp_time_stamp_ts + tsoffset.
func (tp *TCPSock) tsNow() uint32 { return uint32(tp.now()/int64(time.Millisecond)) + tp.tsOffset }

// setState is the one place every state transition goes through. It keeps
// TcpCurrEstab, wakes waiters (readers see EOF in CLOSE_WAIT once the queue
// drains), and on CLOSE unhashes the socket and releases its port. Mirrors
// tcp_set_state (and the unhash in inet_put_port).
func (tp *TCPSock) setState(ns TCPState) {
	old := tp.state
	if old == ns {
		return
	}
	mib := tp.stack.mib
	if ns == TCPEstablished {
		mib.Inc(memctl.TcpCurrEstab)
	}
	if old == TCPEstablished {
		mib.Dec(memctl.TcpCurrEstab)
	}
	if ns == TCPTimeWait {
		tp.sk.Proto().TwCountAdd(1) // a timewait sock in Linux: sockstat's tw
	}
	if old == TCPTimeWait {
		tp.sk.Proto().TwCountAdd(-1)
	}
	if old == TCPFinWait2 && tp.fw2tw { // leaving a FIN_WAIT2 timewait sock
		tp.sk.Proto().TwCountAdd(-1)
		tp.fw2tw = false
	}
	if ns == TCPClose {
		if old == TCPEstablished || old == TCPCloseWait {
			mib.Inc(memctl.TcpEstabResets)
		}
		tp.unhash()
	}
	tp.state = ns
	tp.stack.log.Debug("tcp state", "local", tp.local, "remote", tp.remote, "from", old, "to", ns)
	tp.sk.Wq.Wake() // sk_state_change
}

// setInuse counts the socket into the protocol's sockets in use, or out
// of them, once: when it is hashed (a listener, a connecting socket, a
// child) and when it is unhashed or becomes a timewait sock. Mirrors the
// sock_prot_inuse_add calls of inet_hash, inet_ehash_nolisten and
// inet_unhash (a timewait sock takes the full socket's place in the hash
// uncounted).
func (tp *TCPSock) setInuse(on bool) {
	if on == tp.inuse {
		return
	}
	tp.inuse = on
	if on {
		tp.sk.Proto().InuseAdd(1)
	} else {
		tp.sk.Proto().InuseAdd(-1)
	}
}

// twUncount takes the socket out of sockets_allocated once it stands only
// for a timewait sock: Linux destroys the full socket (tcp_v4_destroy_sock,
// sk_sockets_allocated_dec) when an orphan enters TIME_WAIT, or when the
// user closes a socket whose connection is in TIME_WAIT, and the timewait
// sock it leaves in the hash is counted only in tw. sockfs keeps one
// TCPSock for both; destroyLocked does not count it out again.
func (tp *TCPSock) twUncount() {
	if !tp.twUncounted {
		tp.twUncounted = true
		tp.sk.Proto().SocketsAllocatedDec()
	}
}

// setOrphan counts or uncounts the socket as an orphan (tcp_orphan_count):
// from the user's close until it is destroyed or, as Linux turns it into a
// timewait sock, until it enters TIME_WAIT.
func (tp *TCPSock) setOrphan(on bool) {
	if on == tp.orphaned {
		return
	}
	tp.orphaned = on
	if on {
		tp.sk.Proto().OrphanCountAdd(1)
	} else {
		tp.sk.Proto().OrphanCountAdd(-1)
	}
}

// unhash removes the socket from the established and listening hashes and
// releases its port. Mirrors inet_unhash + inet_put_port.
func (tp *TCPSock) unhash() {
	tp.setInuse(false)
	t := &tp.stack.tcp
	t.mu.Lock()
	if tp.hashed {
		if t.estab[tp.tuple()] == tp {
			delete(t.estab, tp.tuple())
		}
		tp.hashed = false
	}
	if tp.listened {
		l := t.listen[tp.local.Port()]
		for i, o := range l {
			if o == tp {
				l = append(l[:i:i], l[i+1:]...)
				break
			}
		}
		if len(l) == 0 {
			delete(t.listen, tp.local.Port())
		} else {
			t.listen[tp.local.Port()] = l
		}
		tp.listened = false
	}
	if tp.bound {
		port := tp.local.Port()
		l := t.bound[port]
		for i, o := range l {
			if o == tp {
				l = append(l[:i:i], l[i+1:]...)
				break
			}
		}
		if len(l) == 0 {
			delete(t.bound, port)
		} else {
			t.bound[port] = l
		}
		tp.bound, tp.connectBound = false, false
	}
	t.mu.Unlock()
}

// hashEstab inserts the socket in the established hash. Mirrors inet_ehash_nolisten.
// Caller holds t.mu.
func (tp *TCPSock) hashEstabLocked() bool {
	t := &tp.stack.tcp
	tu := tp.tuple()
	if o, ok := t.estab[tu]; ok && o != tp {
		return false
	}
	t.estab[tu] = tp
	tp.hashed = true
	tp.setInuse(true)
	return true
}

// bindLocked binds the socket; port 0 picks an ephemeral port. Caller holds
// tp.mu. Mirrors inet_bind + inet_csk_get_port.
func (tp *TCPSock) bindLocked(addr netip.AddrPort) error {
	a, err := bindableAddr(addr.Addr(), tp.v6only)
	if err != nil {
		return err
	}
	if !a.IsUnspecified() && !tp.stack.isLocalAddr(a) {
		return errAddrNotAvail
	}
	t := &tp.stack.tcp
	t.mu.Lock()
	defer t.mu.Unlock()
	free := func(p uint16) bool {
		for _, o := range t.bound[p] {
			if bindConflict(a, tp.v6only, o.local.Addr(), o.v6only) {
				return false
			}
		}
		return true
	}
	port := addr.Port()
	if port == 0 {
		if port = tp.stack.pickEphemeral(free); port == 0 {
			return errAddrInUse
		}
	} else if !free(port) {
		return errAddrInUse
	}
	tp.local = netip.AddrPortFrom(a, port)
	tp.bound = true
	t.bound[port] = append(t.bound[port], tp)
	return nil
}

// Bind binds the socket to addr (port 0: ephemeral).
func (tp *TCPSock) Bind(addr netip.AddrPort) error {
	tp.lockSock()
	defer tp.releaseSock()
	if tp.state != TCPClose || tp.bound || tp.released {
		return errInval
	}
	return tp.bindLocked(addr)
}

// streamMemoryFree is the socket's stream_memory_free hook: the not-sent
// bytes below tcp_notsent_lowat. Lock-free (poll and wakers call it).
// Mirrors tcp_stream_memory_free.
func (tp *TCPSock) streamMemoryFree(sk *memctl.Sock, wake int) bool {
	notsent := tp.writeSeqA.Load() - tp.sndNxtA.Load()
	return memctl.TCPStreamMemoryFree(notsent, tp.stack.net.Sysctls.TCPNotsentLowatFor(atomic.LoadUint32(&tp.notsentLowat)), wake)
}

// syncSeqs publishes write_seq and snd_nxt for the lock-free hook.
func (tp *TCPSock) syncSeqs() {
	tp.writeSeqA.Store(tp.writeSeq)
	tp.sndNxtA.Store(tp.sndNxt)
}

// purgeWriteQueues frees the write and retransmit queues, uncharging them.
// Mirrors tcp_write_queue_purge.
func (tp *TCPSock) purgeWriteQueues() {
	for _, q := range []*skb.Queue{&tp.rtxQueue, &tp.writeQueue} {
		for b := q.PopFront(); b != nil; b = q.PopFront() {
			tp.sk.WmemFreeSkb(b.Truesize())
			b.Free()
		}
	}
	tp.packetsOut, tp.sackedOut, tp.lostOut, tp.retransOut = 0, 0, 0, 0
	tp.sk.MemReclaim()
}

// purgeRecvQueues frees the receive and out-of-order queues (their
// destructors uncharge rmem). Mirrors __skb_queue_purge + skb_rbtree_purge.
func (tp *TCPSock) purgeRecvQueues() {
	tp.rcvq.Purge()
	tp.ofo.Purge()
	tp.sk.MemReclaim()
}

// stopTimers stops the socket's timers. Mirrors tcp_clear_xmit_timers.
func (tp *TCPSock) stopTimers() {
	tp.retransTimer.Stop()
	tp.delackTimer.Stop()
	tp.pacingTimer.Stop()
	tp.keepTimer.Stop()
	tp.rtoDeadline, tp.ackDeadline, tp.kaDeadline = 0, 0, 0
	tp.ackPending = 0
	if tp.synackTimer != nil {
		tp.synackTimer.Stop()
	}
}

// tcpDone moves the socket to CLOSE for good: timers stopped, queues of
// unsent data freed, waiters woken; an orphan is destroyed. Mirrors tcp_done.
func (tp *TCPSock) tcpDone() {
	if tp.state == TCPSynSent || tp.state == TCPSynRecv {
		tp.stack.mib.Inc(memctl.TcpAttemptFails)
	}
	tp.setState(TCPClose)
	tp.stopTimers()
	tp.purgeWriteQueues()
	tp.sk.Shutdown(memctl.RcvShutdown | memctl.SendShutdown)
	if tp.dead {
		tp.destroyLocked()
	}
}

// destroyLocked frees everything the socket holds. Mirrors
// inet_csk_destroy_sock + tcp_v4_destroy_sock.
func (tp *TCPSock) destroyLocked() {
	if tp.destroyed {
		return
	}
	tp.destroyed = true
	if tp.state != TCPClose {
		tp.setState(TCPClose)
	}
	tp.unhash()
	tp.stopTimers()
	tp.purgeWriteQueues()
	tp.purgeRecvQueues()
	for _, c := range tp.acceptQ {
		c.lockSock()
		c.dead = true
		c.destroyLocked()
		c.releaseSock()
	}
	tp.acceptQ = nil
	for k, r := range tp.reqs {
		r.timer.Stop()
		delete(tp.reqs, k)
	}
	tp.pf.Release()
	tp.setOrphan(false)
	tp.dead = false
	tp.sk.Shutdown(memctl.RcvShutdown | memctl.SendShutdown)
	if !tp.twUncounted {
		tp.sk.Proto().SocketsAllocatedDec()
	}
	tp.sk.Put() // the socket's own reference; clones in flight hold theirs
}
