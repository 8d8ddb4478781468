package memctl

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Sysctls is the sysctl table of one Net: net.core and net.ipv4 as Linux
// 6.18 has them (the ones that mean something for sockfs; AbsentSysctls
// lists the others and why), plus tcp_cubic's module parameters. The typed
// getters are cheap (one atomic load) and read the live value, so a change
// is seen where Linux reads the sysctl: tcp_rmem[2] at autotuning time,
// tcp_retries2 at every RTO, tcp_rto_min_us when a socket is created, and
// so on (each getter says). Safe for concurrent use.
type Sysctls struct {
	rmemDefault, wmemDefault, rmemMax, wmemMax *Sysctl
	optmemMax, memPcpuRsv, somaxconn           *Sysctl
	tcpMem, udpMem, tcpRmem, tcpWmem           *Sysctl
	udpRmemMin, udpWmemMin                     *Sysctl
	tcpNotsentLowat, tcpModerateRcvbuf         *Sysctl
	tcpAdvWinScale, tcpAppWin                  *Sysctl
	tcpShrinkWindow, tcpWorkaroundSignedWin    *Sysctl
	tcpRecovery                                *Sysctl
	tcpFrto                                    *Sysctl
	tcpSynLinearTimeouts                       *Sysctl

	// TCP options and handshake.
	tcpSack, tcpDsack, tcpTimestamps, tcpWindowScaling  *Sysctl
	tcpSyncookies, tcpMaxSynBacklog, tcpAbortOnOverflow *Sysctl
	tcpMinSndMss                                        *Sysctl
	tcpECN, tcpECNFallback                              *Sysctl
	// Timers.
	tcpSynRetries, tcpSynackRetries, tcpRetries2, tcpOrphanRetries *Sysctl
	tcpFinTimeout, tcpKeepaliveTime, tcpKeepaliveIntvl             *Sysctl
	tcpKeepaliveProbes, tcpRtoMinUs, tcpRtoMaxMs                   *Sysctl
	tcpThinLinearTimeouts, tcpEarlyRetrans                         *Sysctl
	// Sending and loss recovery.
	tcpSlowStartAfterIdle, tcpReordering, tcpMaxReordering *Sysctl
	tcpMinTsoSegs, tcpTsoRttLog, tcpTsoWinDivisor          *Sysctl
	tcpPacingSsRatio, tcpPacingCaRatio, tcpMinRttWlen      *Sysctl
	// Receiving and rate limits.
	tcpCompSackNr, tcpInvalidRatelimit, tcpChallengeAckLimit *Sysctl
	tcpPingpongThresh                                        *Sysctl
	// TIME_WAIT and orphans.
	tcpTwReuse, tcpMaxTwBuckets, tcpMaxOrphans, tcpRfc1337 *Sysctl
	tcpTwReuseDelay                                        *Sysctl
	// Congestion control.
	tcpCongestionControl, tcpAvailableCC, tcpAllowedCC *Sysctl
	ccDefault                                          atomic.Pointer[string]
	ccAllowed                                          atomic.Pointer[map[string]bool]
	// IP and ICMP.
	ipDefaultTTL, ipLocalPortRange                   *Sysctl
	ipfragHighThresh, ipfragLowThresh, ipfragTime    *Sysctl
	ipNoPmtuDisc, routeMinPmtu, routeMtuExpires      *Sysctl
	tcpMtuProbing, tcpBaseMss, tcpMtuProbeFloor      *Sysctl
	tcpProbeThreshold, tcpProbeInterval, tcpRetries1 *Sysctl
	icmpRatelimit, icmpRatemask, icmpMsgsPerSec      *Sysctl
	icmpMsgsBurst, icmpEchoIgnoreAll                 *Sysctl
	// IPv6 (net.ipv6).
	ip6fragHighThresh, ip6fragLowThresh, ip6fragTime  *Sysctl
	icmpv6Ratelimit, icmpv6EchoIgnoreAll, ip6HopLimit *Sysctl

	// tcp_cubic's module parameters.
	cubicHystart, cubicHystartDetect            *Sysctl
	cubicHystartLowWindow, cubicHystartAckDelta *Sysctl
	// tcp_dctcp's module parameters.
	dctcpShiftG, dctcpAlphaOnInit *Sysctl

	byName map[string]*Sysctl
	names  []string
}

// CongestionControls are the congestion control algorithms sockfs has, in
// the order Linux registers them (tcp_cong_list: reno is built in, cubic
// registers at boot), which is the order of
// tcp_available_congestion_control: "reno bbr cubic" on the reference
// 6.18 kernel, then dctcp as `modprobe tcp_dctcp` would add it.
var CongestionControls = []string{"reno", "bbr", "cubic", "dctcp"}

// DefaultCongestionControl is the boot default of tcp_congestion_control
// (CONFIG_DEFAULT_TCP_CONG: cubic, Linux's usual default).
const DefaultCongestionControl = "cubic"

// lim builds the optional range of a sysctl.
func lim(lo, hi *int64) [2]*int64 { return [2]*int64{lo, hi} }

// i64 returns a pointer to v, for ranges.
func i64(v int64) *int64 { return &v }

// NewSysctls builds the table with Linux's boot-time defaults for profile p
// and nr_free_buffer_pages nfbp (see BootDefaults).
func NewSysctls(p *Profile, nfbp int64) *Sysctls {
	d := ComputeBootDefaults(p, nfbp)
	s := &Sysctls{byName: make(map[string]*Sysctl)}
	minRcv, minSnd := int64(p.SockMinRcvbuf()), int64(p.SockMinSndbuf())
	mk := func(name string, kind sysctlKind, l [2]*int64, where string, vals ...int64) *Sysctl {
		c := &Sysctl{name: name, kind: kind, n: len(vals), where: where}
		if l[0] != nil {
			c.min, c.hasMin = *l[0], true
		}
		if l[1] != nil {
			c.max, c.hasMax = *l[1], true
		}
		if kind == kindU8 && (!c.hasMax || c.max > 255) {
			c.max, c.hasMax = 255, true
		}
		var v [3]int64
		copy(v[:], vals)
		for i := range v {
			switch kind {
			case kindJiffies:
				v[i] *= HZ // defaults are given in seconds
			case kindMsJiffies:
				v[i] = (v[i] + 1000/HZ - 1) / (1000 / HZ) // and in milliseconds
			}
		}
		c.v.Store(&v)
		s.byName[name] = c
		s.names = append(s.names, name)
		return c
	}
	none := [2]*int64{}
	smd := int64(p.SkMemDefault())
	// The established hash's size decides several defaults (tcp_init,
	// tcp_sk_init): alloc_large_system_hash("TCP established", scale 17)
	// gives a power of two near one entry per 128 KiB of memory, at most
	// 512 Ki entries.
	ehash := int64(1) << bits.Len64(uint64(max(nfbp>>5, 1)-1))
	ehash = min(ehash, 512*1024)

	// net.core (net/core/sysctl_net_core.c)
	s.rmemDefault = mk("core/rmem_default", kindInt, lim(&minRcv, nil), "sk_rcvbuf of a new socket (sock_init_data)", smd)
	s.wmemDefault = mk("core/wmem_default", kindInt, lim(&minSnd, nil), "sk_sndbuf of a new socket (sock_init_data)", smd)
	s.rmemMax = mk("core/rmem_max", kindInt, lim(&minRcv, nil), "cap of SO_RCVBUF; the window scale of a SYN (tcp_select_initial_window)", int64(p.RmemMaxDefault))
	s.wmemMax = mk("core/wmem_max", kindInt, lim(&minSnd, nil), "cap of SO_SNDBUF", int64(p.RmemMaxDefault))
	s.optmemMax = mk("core/optmem_max", kindInt, lim(i64(0), nil), "stored only: sockfs has no option memory (o is always 0)", int64(p.OptmemMaxDefault))
	s.memPcpuRsv = mk("core/mem_pcpu_rsv", kindInt, lim(i64(int64(p.PcpuReserve)), nil), "per-CPU forward-alloc reserve (sk_memory_allocated_add)", int64(p.PcpuReserve))
	s.somaxconn = mk("core/somaxconn", kindInt, lim(i64(0), nil), "caps the backlog of listen (__sys_listen)", 4096)
	// net.ipv4 (net/ipv4/sysctl_net_ipv4.c): memory
	s.tcpMem = mk("ipv4/tcp_mem", kindUlong, none, "TCP pool limits and pressure (__sk_mem_raise_allocated)", d.TCPMem[:]...)
	s.udpMem = mk("ipv4/udp_mem", kindUlong, none, "UDP pool limits (__sk_mem_raise_allocated)", d.UDPMem[:]...)
	// The reference kernel refuses tcp_rmem values below 4096 (but not
	// tcp_wmem's below 1).
	s.tcpRmem = mk("ipv4/tcp_rmem", kindInt, lim(i64(4096), nil), "rcvbuf of new sockets, autotuning's cap, the minimum under pressure", d.TCPRmem[:]...)
	s.tcpWmem = mk("ipv4/tcp_wmem", kindInt, lim(i64(1), nil), "sndbuf of new sockets, sndbuf growth's cap, the minimum under pressure", d.TCPWmem[:]...)
	s.udpRmemMin = mk("ipv4/udp_rmem_min", kindInt, lim(i64(1), nil), "UDP's receive minimum under pressure (sk_get_rmem0)", int64(p.PageSize))
	s.udpWmemMin = mk("ipv4/udp_wmem_min", kindInt, lim(i64(1), nil), "UDP's send minimum under pressure (sk_get_wmem0)", int64(p.PageSize))
	s.tcpNotsentLowat = mk("ipv4/tcp_notsent_lowat", kindUint, none, "writability (tcp_stream_memory_free)", 1<<32-1)
	s.tcpModerateRcvbuf = mk("ipv4/tcp_moderate_rcvbuf", kindU8, none, "receive buffer autotuning (tcp_rcvbuf_grow)", 1)
	s.tcpAdvWinScale = mk("ipv4/tcp_adv_win_scale", kindInt, lim(i64(-31), i64(31)), "stored only: unused since Linux 6.6 (scaling_ratio replaced it)", 1)
	s.tcpAppWin = mk("ipv4/tcp_app_win", kindU8, lim(i64(0), i64(31)), "window_clamp at connection start (tcp_init_buffer_space)", 31)
	s.tcpShrinkWindow = mk("ipv4/tcp_shrink_window", kindU8, lim(i64(0), i64(1)), "stored only: sockfs never shrinks the window (the value 0)", 0)
	s.tcpWorkaroundSignedWin = mk("ipv4/tcp_workaround_signed_windows", kindU8, none, "initial window of 32767 (tcp_select_initial_window)", 0)
	s.tcpRecovery = mk("ipv4/tcp_recovery", kindU8, none, "RACK-TLP loss detection (tcp_rack_mark_lost)", TCPRackLossDetection)
	s.tcpFrto = mk("ipv4/tcp_frto", kindU8, none, "F-RTO, RFC 5682 with SACK, after an RTO (tcp_enter_loss, tcp_process_loss)", 2)
	// TCP options and handshake
	s.tcpECN = mk("ipv4/tcp_ecn", kindU8, lim(i64(0), i64(2)), "ECN: 1 asks for it on SYNs and accepts it, 2 accepts only (tcp_ecn_send_syn, tcp_ecn_create_request)", 2)
	s.tcpECNFallback = mk("ipv4/tcp_ecn_fallback", kindU8, lim(i64(0), i64(1)), "a retransmitted SYN asks for no ECN (tcp_ecn_clear_syn)", 1)
	s.tcpSack = mk("ipv4/tcp_sack", kindU8, none, "SACK-permitted in SYNs sent and accepted (tcp_syn_options, tcp_parse_options)", 1)
	s.tcpDsack = mk("ipv4/tcp_dsack", kindU8, none, "D-SACK blocks in ACKs (tcp_dsack_set)", 1)
	s.tcpTimestamps = mk("ipv4/tcp_timestamps", kindU8, none, "timestamps in SYNs sent and accepted; 2: no random offset (tcp_syn_options, tcp_parse_options)", 1)
	s.tcpWindowScaling = mk("ipv4/tcp_window_scaling", kindU8, none, "window scale in SYNs sent and accepted (tcp_syn_options, tcp_parse_options)", 1)
	s.tcpSyncookies = mk("ipv4/tcp_syncookies", kindU8, none, "SYN cookies when the SYN queue is full (1) or always (2) (tcp_syn_flood_action)", 1)
	s.tcpMaxSynBacklog = mk("ipv4/tcp_max_syn_backlog", kindInt, none, "without syncookies, SYNs dropped once a quarter of it is left (tcp_conn_request)", max(128, ehash/128))
	s.tcpAbortOnOverflow = mk("ipv4/tcp_abort_on_overflow", kindU8, none, "RST instead of silence when the accept queue is full (tcp_check_req)", 0)
	s.tcpMinSndMss = mk("ipv4/tcp_min_snd_mss", kindInt, lim(i64(48), i64(65535)), "floor of the send MSS (tcp_mtu_to_mss)", 48)
	// Path-MTU probing (RFC 4821: tcp_mtu_probe, tcp_mtu_probing)
	s.tcpMtuProbing = mk("ipv4/tcp_mtu_probing", kindU8, none, "1: probe after a black hole (tcp_retries1 RTOs); 2: always (tcp_mtup_init, tcp_mtu_probing)", 0)
	s.tcpBaseMss = mk("ipv4/tcp_base_mss", kindInt, none, "MSS a probing search starts from (tcp_mtup_init, tcp_mtu_probing)", 1024)
	s.tcpMtuProbeFloor = mk("ipv4/tcp_mtu_probe_floor", kindInt, lim(i64(48), i64(65535)), "lowest MSS black-hole detection goes to (tcp_mtu_probing)", 48)
	s.tcpProbeThreshold = mk("ipv4/tcp_probe_threshold", kindInt, none, "search range below which probing stops (tcp_mtu_probe)", 8)
	s.tcpProbeInterval = mk("ipv4/tcp_probe_interval", kindUint, lim(nil, i64(int64(^uint32(0))/HZ)), "seconds before a finished search starts again (tcp_mtu_check_reprobe)", 600)
	s.tcpRetries1 = mk("ipv4/tcp_retries1", kindU8, none, "RTO back-offs before black-hole detection (tcp_write_timeout)", 3)
	// Timers
	s.tcpSynRetries = mk("ipv4/tcp_syn_retries", kindU8, lim(i64(1), i64(127)), "SYN retransmissions before connect fails (tcp_write_timeout)", 6)
	s.tcpSynLinearTimeouts = mk("ipv4/tcp_syn_linear_timeouts", kindU8, lim(i64(0), i64(127)), "SYN retransmissions at the initial RTO before it backs off, added to tcp_syn_retries (tcp_retransmit_timer, tcp_write_timeout)", 4)
	s.tcpSynackRetries = mk("ipv4/tcp_synack_retries", kindU8, none, "SYN-ACK retransmissions of a request (reqsk_timer_handler)", 5)
	s.tcpRetries2 = mk("ipv4/tcp_retries2", kindU8, none, "RTO back-offs before a connection times out (tcp_write_timeout, tcp_probe_timer)", 15)
	s.tcpOrphanRetries = mk("ipv4/tcp_orphan_retries", kindU8, none, "the same for orphans; 0 means 8 (tcp_orphan_retries)", 0)
	s.tcpFinTimeout = mk("ipv4/tcp_fin_timeout", kindJiffies, none, "FIN_WAIT2 lifetime of an orphan (tcp_fin_time)", 60)
	s.tcpKeepaliveTime = mk("ipv4/tcp_keepalive_time", kindJiffies, none, "idle time before the first keepalive (keepalive_time_when)", 7200)
	s.tcpKeepaliveIntvl = mk("ipv4/tcp_keepalive_intvl", kindJiffies, none, "time between keepalives (keepalive_intvl_when)", 75)
	s.tcpKeepaliveProbes = mk("ipv4/tcp_keepalive_probes", kindU8, none, "keepalives unanswered before the connection fails (keepalive_probes)", 9)
	s.tcpRtoMinUs = mk("ipv4/tcp_rto_min_us", kindInt, lim(i64(1), nil), "RTO floor of new sockets (icsk_rto_min, tcp_rto_min)", 200000)
	s.tcpRtoMaxMs = mk("ipv4/tcp_rto_max_ms", kindInt, lim(i64(1000), i64(120000)), "RTO ceiling of new sockets (icsk_rto_max, tcp_rto_max)", 120000)
	s.tcpThinLinearTimeouts = mk("ipv4/tcp_thin_linear_timeouts", kindU8, none, "no RTO back-off for thin streams for 6 RTOs (tcp_retransmit_timer)", 0)
	s.tcpEarlyRetrans = mk("ipv4/tcp_early_retrans", kindU8, lim(i64(0), i64(4)), "tail loss probes at 3 and 4 (tcp_schedule_loss_probe)", 3)
	// Sending and loss recovery
	s.tcpSlowStartAfterIdle = mk("ipv4/tcp_slow_start_after_idle", kindU8, none, "cwnd restarts after an idle RTO (tcp_slow_start_after_idle_check)", 1)
	s.tcpMaxReordering = mk("ipv4/tcp_max_reordering", kindInt, lim(i64(1), nil), "cap of the reordering degree (tcp_check_sack_reordering)", 300)
	s.tcpReordering = mk("ipv4/tcp_reordering", kindInt, lim(i64(1), nil), "initial reordering degree (tcp_init_sock)", 3)
	s.tcpReordering.maxOf = s.tcpMaxReordering
	s.tcpMinTsoSegs = mk("ipv4/tcp_min_tso_segs", kindU8, lim(i64(1), nil), "fewest segments in a TSO skb (tcp_tso_autosize)", 2)
	s.tcpTsoRttLog = mk("ipv4/tcp_tso_rtt_log", kindU8, none, "larger TSO skbs on short paths (tcp_tso_autosize)", 9)
	s.tcpTsoWinDivisor = mk("ipv4/tcp_tso_win_divisor", kindU8, none, "a TSO skb waits for a due ACK unless 1/N of the window can go; 0: unless more than 3 segments can (tcp_tso_should_defer)", 3)
	s.tcpPacingSsRatio = mk("ipv4/tcp_pacing_ss_ratio", kindInt, lim(i64(0), i64(1000)), "pacing rate in slow start, percent of cwnd/srtt (tcp_update_pacing_rate)", 200)
	s.tcpPacingCaRatio = mk("ipv4/tcp_pacing_ca_ratio", kindInt, lim(i64(0), i64(1000)), "pacing rate after slow start (tcp_update_pacing_rate)", 120)
	s.tcpMinRttWlen = mk("ipv4/tcp_min_rtt_wlen", kindInt, lim(i64(0), i64(86400)), "window of the min_rtt filter, seconds (tcp_update_rtt_min)", 300)
	// Receiving and rate limits
	s.tcpCompSackNr = mk("ipv4/tcp_comp_sack_nr", kindU8, none, "duplicate ACKs merged at most; 0: none (__tcp_ack_snd_check)", 44)
	s.tcpPingpongThresh = mk("ipv4/tcp_pingpong_thresh", kindU8, lim(i64(1), nil), "answers sent within ato of receiving before ACKs are delayed as interactive (inet_csk_in_pingpong_mode)", 1)
	s.tcpInvalidRatelimit = mk("ipv4/tcp_invalid_ratelimit", kindMsJiffies, none, "least time between ACKs to invalid segments (tcp_oow_rate_limited)", 500)
	s.tcpChallengeAckLimit = mk("ipv4/tcp_challenge_ack_limit", kindInt, none, "challenge ACKs per second; INT_MAX: no limit (tcp_send_challenge_ack)", 1<<31-1)
	// TIME_WAIT and orphans
	s.tcpTwReuse = mk("ipv4/tcp_tw_reuse", kindU8, lim(i64(0), i64(2)), "connect may take a TIME_WAIT tuple; 2: loopback only (inet_hash_connect, tcp_twsk_unique)", 2)
	s.tcpTwReuseDelay = mk("ipv4/tcp_tw_reuse_delay", kindUint, lim(i64(1), i64(60000)), "ms a TIME_WAIT socket lasts before tcp_tw_reuse takes it (tcp_twsk_unique)", 1000)
	s.tcpMaxTwBuckets = mk("ipv4/tcp_max_tw_buckets", kindInt, none, "TIME_WAIT sockets at most; beyond, closed at once (tcp_time_wait)", ehash/2)
	s.tcpMaxOrphans = mk("ipv4/tcp_max_orphans", kindInt, none, "orphans at most; beyond, reset (tcp_too_many_orphans)", ehash/2)
	s.tcpRfc1337 = mk("ipv4/tcp_rfc1337", kindU8, none, "a RST does not end TIME_WAIT (tcp_timewait_state_process)", 0)
	// Congestion control (tcp_cong.c)
	s.initCongestion()
	// IP and ICMP
	s.ipDefaultTTL = mk("ipv4/ip_default_ttl", kindU8, lim(i64(1), i64(255)), "TTL of sent packets (ip_select_ttl); Ip DefaultTTL", 64)
	s.ipLocalPortRange = mk("ipv4/ip_local_port_range", kindInt, lim(i64(1), i64(65535)), "ephemeral ports of bind and connect (inet_get_local_port_range)", 32768, 60999)
	s.ipLocalPortRange.check = func(v [3]int64) error {
		// ipv4_local_port_range; ip_unprivileged_port_start is 1024 here.
		if v[1] < v[0] {
			return fmt.Errorf("%d is below %d", v[1], v[0])
		}
		if v[0] < 1024 {
			return fmt.Errorf("%d is a privileged port (below ip_unprivileged_port_start 1024)", v[0])
		}
		return nil
	}
	s.ipfragHighThresh = mk("ipv4/ipfrag_high_thresh", kindUlong, none, "reassembly memory at most (inet_frag_find)", 4<<20)
	s.ipfragLowThresh = mk("ipv4/ipfrag_low_thresh", kindUlong, none, "only bounds ipfrag_high_thresh, as in Linux since 4.17", 3<<20)
	s.ipfragHighThresh.minOf = s.ipfragLowThresh
	s.ipfragLowThresh.maxOf = s.ipfragHighThresh
	s.ipfragTime = mk("ipv4/ipfrag_time", kindJiffies, none, "lifetime of a reassembly queue (ip_expire)", 30)
	// Path-MTU discovery (route.c, icmp.c)
	s.ipNoPmtuDisc = mk("ipv4/ip_no_pmtu_disc", kindU8, none, "2, 3: fragmentation-needed ignored; 1: its MTU taken as 0 (icmp_unreach). Not mirrored: 1 also clears DF on new sockets (IP_PMTUDISC_DONT)", 0)
	s.routeMinPmtu = mk("ipv4/route/min_pmtu", kindInt, lim(i64(68), nil), "a learned path MTU below it is raised to it and locked (__ip_rt_update_pmtu)", 552)
	s.routeMtuExpires = mk("ipv4/route/mtu_expires", kindJiffies, none, "lifetime of a learned path MTU (__ip_rt_update_pmtu)", 600)
	s.icmpRatelimit = mk("ipv4/icmp_ratelimit", kindMsJiffies, none, "per-destination interval of rate-limited ICMP errors (icmpv4_xrlim_allow)", 1000)
	s.icmpRatemask = mk("ipv4/icmp_ratemask", kindInt, none, "ICMP types that are rate-limited (icmpv4_mask_allow)", 6168)
	s.icmpMsgsPerSec = mk("ipv4/icmp_msgs_per_sec", kindInt, lim(i64(0), nil), "global ICMP error rate (icmp_global_allow)", 1000)
	s.icmpMsgsBurst = mk("ipv4/icmp_msgs_burst", kindInt, lim(i64(0), nil), "global ICMP error burst (icmp_global_allow)", 50)
	s.icmpEchoIgnoreAll = mk("ipv4/icmp_echo_ignore_all", kindU8, lim(i64(0), i64(1)), "no echo replies (icmp_echo)", 0)
	// IPv6 (net/ipv6/reassembly.c, icmp.c, addrconf.c): each its own
	// sysctl in Linux, apart from the IPv4 one of the same job.
	s.ip6fragHighThresh = mk("ipv6/ip6frag_high_thresh", kindUlong, none, "IPv6 reassembly memory at most (inet_frag_find)", 4<<20)
	s.ip6fragLowThresh = mk("ipv6/ip6frag_low_thresh", kindUlong, none, "only bounds ip6frag_high_thresh, as in Linux since 4.17", 3<<20)
	s.ip6fragHighThresh.minOf = s.ip6fragLowThresh
	s.ip6fragLowThresh.maxOf = s.ip6fragHighThresh
	s.ip6fragTime = mk("ipv6/ip6frag_time", kindJiffies, none, "lifetime of an IPv6 reassembly queue (ip6_frag_expire)", 60)
	s.icmpv6Ratelimit = mk("ipv6/icmp/ratelimit", kindMsJiffies, none, "per-destination interval of rate-limited ICMPv6 errors (icmpv6_xrlim_allow)", 100)
	s.icmpv6EchoIgnoreAll = mk("ipv6/icmp/echo_ignore_all", kindU8, none, "no ICMPv6 echo replies (icmpv6_echo_reply)", 0)
	s.ip6HopLimit = mk("ipv6/conf/all/hop_limit", kindInt, lim(i64(1), i64(255)), "hop limit of sent packets (ip6_dst_hoplimit). Deviation: Linux reads the device's conf/DEV/hop_limit, which a write here leaves alone; sockfs has one for all devices", 64)
	// HyStart's knobs. In Linux these are not sysctls but module parameters
	// of tcp_cubic (net/ipv4/tcp_cubic.c), global and read at every use:
	// /sys/module/tcp_cubic/parameters/hystart and so on. sockfs has no
	// modules, so they live here, one set per Net, under keys that name
	// that sysfs path rather than one below /proc/sys/net.
	s.cubicHystart = mk(cubicParam+"hystart", kindParamInt, none, "HyStart on (bictcp_acked)", 1)
	s.cubicHystartDetect = mk(cubicParam+"hystart_detect", kindParamInt, none, "HyStart's detectors (hystart_update)", HystartAckTrain|HystartDelay)
	s.cubicHystartLowWindow = mk(cubicParam+"hystart_low_window", kindParamInt, none, "cwnd below which HyStart does not look (bictcp_acked)", 16)
	s.cubicHystartAckDelta = mk(cubicParam+"hystart_ack_delta_us", kindParamInt, none, "largest gap in an ACK train (hystart_update)", 2000)
	// DCTCP's, likewise (net/ipv4/tcp_dctcp.c, unsigned ints).
	s.dctcpShiftG = mk(dctcpParam+"dctcp_shift_g", kindParamUint, none, "alpha's gain g = 1/2^dctcp_shift_g (dctcp_update_alpha)", 4)
	s.dctcpAlphaOnInit = mk(dctcpParam+"dctcp_alpha_on_init", kindParamUint, none, "alpha of a new connection, in 1/1024, at most 1024 (dctcp_init)", 1024)
	sort.Strings(s.names)
	return s
}

// initCongestion adds the three congestion-control sysctls, which are
// strings with handlers of their own (net/ipv4/sysctl_net_ipv4.c and
// tcp_cong.c): tcp_congestion_control is the default for new sockets,
// tcp_available_congestion_control lists what exists (read-only),
// tcp_allowed_congestion_control what an unprivileged TCP_CONGESTION may
// choose. sockfs's Net plays the init namespace, so any available
// algorithm may become the default.
func (s *Sysctls) initCongestion() {
	def := DefaultCongestionControl
	s.ccDefault.Store(&def)
	// reno and bbr are TCP_CONG_NON_RESTRICTED.
	allowed := map[string]bool{"reno": true, "bbr": true, def: true}
	s.ccAllowed.Store(&allowed)
	add := func(name, where string, get func() string, set func(string) error) *Sysctl {
		c := &Sysctl{name: name, kind: kindString, n: 1, where: where, getString: get, setString: set}
		c.v.Store(&[3]int64{})
		c.readOnly = set == nil
		s.byName[name] = c
		s.names = append(s.names, name)
		return c
	}
	s.tcpCongestionControl = add("ipv4/tcp_congestion_control",
		"algorithm of new sockets (tcp_assign_congestion_control)",
		func() string { return *s.ccDefault.Load() }, s.setDefaultCongestion)
	s.tcpCongestionControl.strMax = 16 // TCP_CA_NAME_MAX
	s.tcpAvailableCC = add("ipv4/tcp_available_congestion_control",
		"lists the algorithms (tcp_get_available_congestion_control)",
		func() string { return strings.Join(CongestionControls, " ") }, nil)
	s.tcpAllowedCC = add("ipv4/tcp_allowed_congestion_control",
		"what an unprivileged `congestion` may choose (tcp_set_congestion_control)",
		s.allowedCongestion, s.setAllowedCongestion)
	s.tcpAllowedCC.strMax = 2048 // TCP_CA_BUF_MAX
}

func knownCongestion(name string) bool {
	for _, n := range CongestionControls {
		if n == name {
			return true
		}
	}
	return false
}

// setDefaultCongestion mirrors tcp_set_default_congestion_control: an
// unknown name is ENOENT; the new default becomes allowed.
func (s *Sysctls) setDefaultCongestion(name string) error {
	if !knownCongestion(name) {
		return fmt.Errorf("no congestion control %q: %w", name, syscall.ENOENT)
	}
	s.ccDefault.Store(&name)
	old := *s.ccAllowed.Load()
	na := map[string]bool{name: true}
	for k, v := range old {
		na[k] = v
	}
	s.ccAllowed.Store(&na)
	return nil
}

// allowedCongestion mirrors tcp_get_allowed_congestion_control: the
// allowed algorithms in registration order.
func (s *Sysctls) allowedCongestion() string {
	a := *s.ccAllowed.Load()
	var out []string
	for _, n := range CongestionControls {
		if a[n] {
			out = append(out, n)
		}
	}
	return strings.Join(out, " ")
}

// setAllowedCongestion mirrors tcp_set_allowed_congestion_control: the
// names up to the first empty one (strsep on single spaces), each of which
// must exist (ENOENT, nothing changed), replace the allowed set.
func (s *Sysctls) setAllowedCongestion(list string) error {
	var names []string
	for _, n := range strings.Split(list, " ") {
		if n == "" {
			break
		}
		if !knownCongestion(n) {
			return fmt.Errorf("no congestion control %q: %w", n, syscall.ENOENT)
		}
		names = append(names, n)
	}
	na := map[string]bool{}
	for _, n := range names {
		na[n] = true
	}
	s.ccAllowed.Store(&na)
	return nil
}

// Lookup returns the sysctl with the given path below net/, such as
// "ipv4/tcp_rmem" or "core/rmem_max", or a module parameter by its sysfs
// path below /sys/, such as "module/tcp_cubic/parameters/hystart".
func (s *Sysctls) Lookup(name string) (*Sysctl, bool) {
	c, ok := s.byName[name]
	return c, ok
}

// Names lists the sysctl paths, sorted.
func (s *Sysctls) Names() []string { return append([]string(nil), s.names...) }

// Where says where the stack reads the sysctl (for README's table).
func (s *Sysctl) Where() string { return s.where }

// Handler names the Linux proc handler whose semantics the sysctl has.
func (s *Sysctl) Handler() string {
	h := handlerNames[s.kind]
	if (s.hasMin || s.hasMax || s.minOf != nil || s.maxOf != nil) && s.kind != kindU8 && s.kind != kindString {
		h += "_minmax"
	}
	return h
}

// Range describes the accepted values ("1..127", "" for none), for
// README's table.
func (s *Sysctl) Range() string {
	lo, hi := "", ""
	if s.hasMin {
		lo = fmt.Sprint(s.min)
	}
	if s.minOf != nil {
		lo = strings.TrimPrefix(s.minOf.name, "ipv4/")
	}
	if s.hasMax {
		hi = fmt.Sprint(s.max)
	}
	if s.maxOf != nil {
		hi = strings.TrimPrefix(s.maxOf.name, "ipv4/")
	}
	if s.kind == kindU8 && lo == "" {
		lo = "0"
	}
	if lo == "" && hi == "" {
		return ""
	}
	return lo + ".." + hi
}

// AbsentSysctls are the per-namespace sysctls of Linux 6.18 that issue 16
// and the outside probes asked about and sockfs does not have, with the
// reason.
var AbsentSysctls = map[string]string{
	"ipv4/tcp_limit_output_bytes":      "TSQ limits the bytes queued below TCP; sockfs's devices finish a transmission before Xmit returns, so there is no queue to limit",
	"ipv4/tcp_autocorking":             "autocorking waits for a TX completion of queued packets, which sockfs's devices never leave queued",
	"ipv4/tcp_no_metrics_save":         "sockfs has no tcp_metrics cache",
	"ipv4/icmp_echo_ignore_broadcasts": "fixed at its default 1: an echo request to a broadcast address gets no answer (netstack/icmp.go)",
	"ipv6/icmp/ratemask":               "fixed at Linux's default mask (netstack/icmp_ratelimit.go)",
	"ipv6/bindv6only":                  "fixed at its default 0: a socket bound to :: takes IPv4 too unless the conversation's v6only ctl says otherwise",
	"ipv4/ip_nonlocal_bind":            "fixed at 0: a bind to an address the stack does not have is EADDRNOTAVAIL",
	"ipv4/ip_local_reserved_ports":     "no ports are reserved from the ephemeral range",
	"ipv4/ipfrag_max_dist":             "not mirrored: a fragment queue is not dropped for packets of the same source arriving between its fragments",
	"ipv4/tcp_retrans_collapse":        "not mirrored: retransmissions are not merged with the next skb (tcp_retrans_try_collapse)",
	"ipv4/tcp_stdurg":                  "sockfs takes no urgent data: the URG pointer is ignored and the byte stays in the stream, where Linux takes it out (MSG_OOB) unless SO_OOBINLINE",
	"ipv4/tcp_fastopen":                "sockfs has no TCP Fast Open",
	"ipv4/tcp_ecn_option":              "Accurate ECN's TCP option: sockfs does RFC 3168 ECN only",
	"ipv4/tcp_ecn_option_beacon":       "as tcp_ecn_option",
	"ipv4/tcp_comp_sack_delay_ns":      "sockfs sends a compressed ACK at the end of the device's receive batch, not from a timer (netstack/tcp_input.go sackCompress)",
	"ipv4/tcp_comp_sack_slack_ns":      "as tcp_comp_sack_delay_ns",
	"core/netdev_max_backlog":          "sockfs has no per-CPU input backlog: a device's goroutine processes each packet to completion",
	"ipv4/ip_unprivileged_port_start":  "sockfs has no privileged ports (ip_local_port_range's check uses Linux's 1024)",
}

// RmemDefault is net.core.rmem_default (the initial sk_rcvbuf).
func (s *Sysctls) RmemDefault() int { return int(s.rmemDefault.first()) }

// WmemDefault is net.core.wmem_default (the initial sk_sndbuf).
func (s *Sysctls) WmemDefault() int { return int(s.wmemDefault.first()) }

// RmemMax is net.core.rmem_max, the cap of SO_RCVBUF.
func (s *Sysctls) RmemMax() int { return int(s.rmemMax.first()) }

// WmemMax is net.core.wmem_max, the cap of SO_SNDBUF.
func (s *Sysctls) WmemMax() int { return int(s.wmemMax.first()) }

// OptmemMax is net.core.optmem_max.
func (s *Sysctls) OptmemMax() int { return int(s.optmemMax.first()) }

// MemPcpuRsv is net.core.mem_pcpu_rsv in pages.
func (s *Sysctls) MemPcpuRsv() int { return int(s.memPcpuRsv.first()) }

// Somaxconn is net.core.somaxconn, read by every listen (__sys_listen).
func (s *Sysctls) Somaxconn() int { return int(s.somaxconn.first()) }

// TCPMem is net.ipv4.tcp_mem in pages (low, pressure, high), signed as in
// Linux.
func (s *Sysctls) TCPMem() [3]int64 { return s.tcpMem.load() }

// UDPMem is net.ipv4.udp_mem in pages.
func (s *Sysctls) UDPMem() [3]int64 { return s.udpMem.load() }

// TCPRmem is net.ipv4.tcp_rmem in bytes (min, default, max).
func (s *Sysctls) TCPRmem() [3]int { return to3(s.tcpRmem.load()) }

// TCPWmem is net.ipv4.tcp_wmem in bytes (min, default, max).
func (s *Sysctls) TCPWmem() [3]int { return to3(s.tcpWmem.load()) }

// UDPRmemMin is net.ipv4.udp_rmem_min.
func (s *Sysctls) UDPRmemMin() int { return int(s.udpRmemMin.first()) }

// UDPWmemMin is net.ipv4.udp_wmem_min.
func (s *Sysctls) UDPWmemMin() int { return int(s.udpWmemMin.first()) }

// TCPNotsentLowat is net.ipv4.tcp_notsent_lowat.
func (s *Sysctls) TCPNotsentLowat() uint32 { return uint32(s.tcpNotsentLowat.first()) }

// TCPModerateRcvbuf is net.ipv4.tcp_moderate_rcvbuf (non-zero: DRS on).
func (s *Sysctls) TCPModerateRcvbuf() uint8 { return uint8(s.tcpModerateRcvbuf.first()) }

// TCPAdvWinScale is net.ipv4.tcp_adv_win_scale (unused since 6.6).
func (s *Sysctls) TCPAdvWinScale() int { return int(s.tcpAdvWinScale.first()) }

// TCPAppWin is net.ipv4.tcp_app_win.
func (s *Sysctls) TCPAppWin() uint8 { return uint8(s.tcpAppWin.first()) }

// TCPShrinkWindow is net.ipv4.tcp_shrink_window.
func (s *Sysctls) TCPShrinkWindow() uint8 { return uint8(s.tcpShrinkWindow.first()) }

// TCPWorkaroundSignedWindows is net.ipv4.tcp_workaround_signed_windows.
func (s *Sysctls) TCPWorkaroundSignedWindows() uint8 {
	return uint8(s.tcpWorkaroundSignedWin.first())
}

// Bits of net.ipv4.tcp_recovery (include/net/tcp.h).
const (
	TCPRackLossDetection = 0x1 // TCP_RACK_LOSS_DETECTION: RACK-TLP loss detection
	TCPRackStaticReoWnd  = 0x2 // TCP_RACK_STATIC_REO_WND: no DSACK-driven reo_wnd growth
	TCPRackNoDupthresh   = 0x4 // TCP_RACK_NO_DUPTHRESH: no reo_wnd of 0 at dupthresh SACKs
)

// TCPRecovery is net.ipv4.tcp_recovery (the TCPRack* bits; Linux's default
// is TCPRackLossDetection). Read at every use, as Linux does.
func (s *Sysctls) TCPRecovery() int { return int(s.tcpRecovery.first()) }

// TCPFrto is net.ipv4.tcp_frto (Linux's default 2; any value but 0 turns
// F-RTO on, as in tcp_enter_loss), read at every RTO.
func (s *Sysctls) TCPFrto() int { return int(s.tcpFrto.first()) }

// TCPSack is net.ipv4.tcp_sack, read for every SYN sent or received.
func (s *Sysctls) TCPSack() bool { return s.tcpSack.first() != 0 }

// TCPECN is net.ipv4.tcp_ecn (0 off, 1 request and accept, 2 accept
// only), read when a SYN is sent or received.
func (s *Sysctls) TCPECN() int { return int(s.tcpECN.first()) }

// TCPECNFallback is net.ipv4.tcp_ecn_fallback, read when a SYN is
// retransmitted.
func (s *Sysctls) TCPECNFallback() bool { return s.tcpECNFallback.first() != 0 }

// TCPDsack is net.ipv4.tcp_dsack, read whenever a D-SACK block is due.
func (s *Sysctls) TCPDsack() bool { return s.tcpDsack.first() != 0 }

// TCPTimestamps is net.ipv4.tcp_timestamps (0 off, 1 on with a random
// offset per connection, 2 on without), read for every SYN.
func (s *Sysctls) TCPTimestamps() int { return int(s.tcpTimestamps.first()) }

// TCPWindowScaling is net.ipv4.tcp_window_scaling, read for every SYN.
func (s *Sysctls) TCPWindowScaling() bool { return s.tcpWindowScaling.first() != 0 }

// TCPSyncookies is net.ipv4.tcp_syncookies (0 never, 1 when the SYN queue
// is full, 2 always).
func (s *Sysctls) TCPSyncookies() int { return int(s.tcpSyncookies.first()) }

// TCPMaxSynBacklog is net.ipv4.tcp_max_syn_backlog.
func (s *Sysctls) TCPMaxSynBacklog() int { return int(s.tcpMaxSynBacklog.first()) }

// TCPAbortOnOverflow is net.ipv4.tcp_abort_on_overflow.
func (s *Sysctls) TCPAbortOnOverflow() bool { return s.tcpAbortOnOverflow.first() != 0 }

// TCPMinSndMss is net.ipv4.tcp_min_snd_mss.
func (s *Sysctls) TCPMinSndMss() int { return int(s.tcpMinSndMss.first()) }

// TCPSynLinearTimeouts is net.ipv4.tcp_syn_linear_timeouts, read at every
// SYN timeout.
func (s *Sysctls) TCPSynLinearTimeouts() int { return int(s.tcpSynLinearTimeouts.first()) }

// TCPSynRetries is net.ipv4.tcp_syn_retries.
func (s *Sysctls) TCPSynRetries() int { return int(s.tcpSynRetries.first()) }

// TCPSynackRetries is net.ipv4.tcp_synack_retries.
func (s *Sysctls) TCPSynackRetries() int { return int(s.tcpSynackRetries.first()) }

// TCPRetries2 is net.ipv4.tcp_retries2.
func (s *Sysctls) TCPRetries2() int { return int(s.tcpRetries2.first()) }

// TCPOrphanRetries is net.ipv4.tcp_orphan_retries.
func (s *Sysctls) TCPOrphanRetries() int { return int(s.tcpOrphanRetries.first()) }

// jiffies converts a stored jiffies value to a duration.
func jiffies(j int64) time.Duration { return time.Duration(j) * Jiffy }

// TCPFinTimeout is net.ipv4.tcp_fin_timeout (may be negative, as in Linux).
func (s *Sysctls) TCPFinTimeout() time.Duration { return jiffies(s.tcpFinTimeout.first()) }

// TCPKeepaliveTime is net.ipv4.tcp_keepalive_time.
func (s *Sysctls) TCPKeepaliveTime() time.Duration { return jiffies(s.tcpKeepaliveTime.first()) }

// TCPKeepaliveIntvl is net.ipv4.tcp_keepalive_intvl.
func (s *Sysctls) TCPKeepaliveIntvl() time.Duration { return jiffies(s.tcpKeepaliveIntvl.first()) }

// TCPKeepaliveProbes is net.ipv4.tcp_keepalive_probes.
func (s *Sysctls) TCPKeepaliveProbes() int { return int(s.tcpKeepaliveProbes.first()) }

// TCPRtoMin is net.ipv4.tcp_rto_min_us, which tcp_init_sock copies into
// icsk_rto_min (in jiffies, rounded up).
func (s *Sysctls) TCPRtoMin() time.Duration {
	us := s.tcpRtoMinUs.first()
	j := (us*HZ + 999999) / 1000000 // usecs_to_jiffies
	return jiffies(j)
}

// TCPRtoMax is net.ipv4.tcp_rto_max_ms, which tcp_init_sock copies into
// icsk_rto_max.
func (s *Sysctls) TCPRtoMax() time.Duration {
	return time.Duration(s.tcpRtoMaxMs.first()) * time.Millisecond
}

// TCPThinLinearTimeouts is net.ipv4.tcp_thin_linear_timeouts.
func (s *Sysctls) TCPThinLinearTimeouts() bool { return s.tcpThinLinearTimeouts.first() != 0 }

// TCPEarlyRetrans is net.ipv4.tcp_early_retrans (3 and 4: TLP on).
func (s *Sysctls) TCPEarlyRetrans() int { return int(s.tcpEarlyRetrans.first()) }

// TCPSlowStartAfterIdle is net.ipv4.tcp_slow_start_after_idle.
func (s *Sysctls) TCPSlowStartAfterIdle() bool { return s.tcpSlowStartAfterIdle.first() != 0 }

// TCPReordering is net.ipv4.tcp_reordering.
func (s *Sysctls) TCPReordering() int { return int(s.tcpReordering.first()) }

// TCPMaxReordering is net.ipv4.tcp_max_reordering.
func (s *Sysctls) TCPMaxReordering() int { return int(s.tcpMaxReordering.first()) }

// TCPMinTsoSegs is net.ipv4.tcp_min_tso_segs.
func (s *Sysctls) TCPMinTsoSegs() int { return int(s.tcpMinTsoSegs.first()) }

// TCPTsoWinDivisor is net.ipv4.tcp_tso_win_divisor.
func (s *Sysctls) TCPTsoWinDivisor() int { return int(s.tcpTsoWinDivisor.first()) }

// TCPTsoRttLog is net.ipv4.tcp_tso_rtt_log.
func (s *Sysctls) TCPTsoRttLog() int { return int(s.tcpTsoRttLog.first()) }

// TCPPacingSsRatio is net.ipv4.tcp_pacing_ss_ratio (percent).
func (s *Sysctls) TCPPacingSsRatio() int { return int(s.tcpPacingSsRatio.first()) }

// TCPPacingCaRatio is net.ipv4.tcp_pacing_ca_ratio (percent).
func (s *Sysctls) TCPPacingCaRatio() int { return int(s.tcpPacingCaRatio.first()) }

// TCPMinRttWlen is net.ipv4.tcp_min_rtt_wlen.
func (s *Sysctls) TCPMinRttWlen() time.Duration {
	return time.Duration(s.tcpMinRttWlen.first()) * time.Second
}

// TCPCompSackNr is net.ipv4.tcp_comp_sack_nr.
func (s *Sysctls) TCPCompSackNr() int { return int(s.tcpCompSackNr.first()) }

// TCPPingpongThresh is net.ipv4.tcp_pingpong_thresh.
func (s *Sysctls) TCPPingpongThresh() int { return int(s.tcpPingpongThresh.first()) }

// TCPInvalidRatelimit is net.ipv4.tcp_invalid_ratelimit.
func (s *Sysctls) TCPInvalidRatelimit() time.Duration {
	return jiffies(s.tcpInvalidRatelimit.first())
}

// TCPChallengeAckLimit is net.ipv4.tcp_challenge_ack_limit.
func (s *Sysctls) TCPChallengeAckLimit() int { return int(s.tcpChallengeAckLimit.first()) }

// TCPTwReuse is net.ipv4.tcp_tw_reuse (0 off, 1 on, 2 loopback only).
func (s *Sysctls) TCPTwReuse() int { return int(s.tcpTwReuse.first()) }

// TCPTwReuseDelay is net.ipv4.tcp_tw_reuse_delay, read at each connect
// that meets a TIME_WAIT socket.
func (s *Sysctls) TCPTwReuseDelay() time.Duration {
	return time.Duration(s.tcpTwReuseDelay.first()) * time.Millisecond
}

// TCPMaxTwBuckets is net.ipv4.tcp_max_tw_buckets.
func (s *Sysctls) TCPMaxTwBuckets() int { return int(s.tcpMaxTwBuckets.first()) }

// TCPMaxOrphans is net.ipv4.tcp_max_orphans.
func (s *Sysctls) TCPMaxOrphans() int { return int(s.tcpMaxOrphans.first()) }

// TCPRfc1337 is net.ipv4.tcp_rfc1337.
func (s *Sysctls) TCPRfc1337() bool { return s.tcpRfc1337.first() != 0 }

// TCPCongestionControl is net.ipv4.tcp_congestion_control, the algorithm
// a new socket gets (tcp_assign_congestion_control).
func (s *Sysctls) TCPCongestionControl() string { return *s.ccDefault.Load() }

// TCPCongestionAllowed reports whether name is in
// tcp_allowed_congestion_control.
func (s *Sysctls) TCPCongestionAllowed(name string) bool { return (*s.ccAllowed.Load())[name] }

// IPDefaultTTL is net.ipv4.ip_default_ttl.
func (s *Sysctls) IPDefaultTTL() uint8 { return uint8(s.ipDefaultTTL.first()) }

// IPLocalPortRange is net.ipv4.ip_local_port_range (low, high).
func (s *Sysctls) IPLocalPortRange() (int, int) {
	v := s.ipLocalPortRange.load()
	return int(v[0]), int(v[1])
}

// IPFragHighThresh is net.ipv4.ipfrag_high_thresh in bytes.
func (s *Sysctls) IPFragHighThresh() int64 { return s.ipfragHighThresh.first() }

// IP6FragHighThresh is net.ipv6.ip6frag_high_thresh in bytes.
func (s *Sysctls) IP6FragHighThresh() int64 { return s.ip6fragHighThresh.first() }

// IP6FragTime is net.ipv6.ip6frag_time.
func (s *Sysctls) IP6FragTime() time.Duration { return jiffies(s.ip6fragTime.first()) }

// ICMPv6Ratelimit is net.ipv6.icmp.ratelimit.
func (s *Sysctls) ICMPv6Ratelimit() time.Duration { return jiffies(s.icmpv6Ratelimit.first()) }

// ICMPv6EchoIgnoreAll is net.ipv6.icmp.echo_ignore_all.
func (s *Sysctls) ICMPv6EchoIgnoreAll() bool { return s.icmpv6EchoIgnoreAll.first() != 0 }

// IP6HopLimit is net.ipv6.conf.all.hop_limit.
func (s *Sysctls) IP6HopLimit() uint8 { return uint8(s.ip6HopLimit.first()) }

// IPFragTime is net.ipv4.ipfrag_time.
func (s *Sysctls) IPFragTime() time.Duration { return jiffies(s.ipfragTime.first()) }

// TCPMtuProbing is net.ipv4.tcp_mtu_probing.
func (s *Sysctls) TCPMtuProbing() int { return int(s.tcpMtuProbing.first()) }

// TCPBaseMss is net.ipv4.tcp_base_mss.
func (s *Sysctls) TCPBaseMss() int { return int(s.tcpBaseMss.first()) }

// TCPMtuProbeFloor is net.ipv4.tcp_mtu_probe_floor.
func (s *Sysctls) TCPMtuProbeFloor() int { return int(s.tcpMtuProbeFloor.first()) }

// TCPProbeThreshold is net.ipv4.tcp_probe_threshold.
func (s *Sysctls) TCPProbeThreshold() int { return int(s.tcpProbeThreshold.first()) }

// TCPProbeInterval is net.ipv4.tcp_probe_interval.
func (s *Sysctls) TCPProbeInterval() time.Duration {
	return time.Duration(s.tcpProbeInterval.first()) * time.Second
}

// TCPRetries1 is net.ipv4.tcp_retries1.
func (s *Sysctls) TCPRetries1() int { return int(s.tcpRetries1.first()) }

// IPNoPmtuDisc is net.ipv4.ip_no_pmtu_disc.
func (s *Sysctls) IPNoPmtuDisc() int { return int(s.ipNoPmtuDisc.first()) }

// RouteMinPmtu is net.ipv4.route.min_pmtu.
func (s *Sysctls) RouteMinPmtu() int { return int(s.routeMinPmtu.first()) }

// RouteMtuExpires is net.ipv4.route.mtu_expires.
func (s *Sysctls) RouteMtuExpires() time.Duration { return jiffies(s.routeMtuExpires.first()) }

// ICMPRatelimit is net.ipv4.icmp_ratelimit.
func (s *Sysctls) ICMPRatelimit() time.Duration { return jiffies(s.icmpRatelimit.first()) }

// ICMPRatemask is net.ipv4.icmp_ratemask.
func (s *Sysctls) ICMPRatemask() uint32 { return uint32(s.icmpRatemask.first()) }

// ICMPMsgsPerSec is net.ipv4.icmp_msgs_per_sec.
func (s *Sysctls) ICMPMsgsPerSec() int { return int(s.icmpMsgsPerSec.first()) }

// ICMPMsgsBurst is net.ipv4.icmp_msgs_burst.
func (s *Sysctls) ICMPMsgsBurst() int { return int(s.icmpMsgsBurst.first()) }

// ICMPEchoIgnoreAll is net.ipv4.icmp_echo_ignore_all.
func (s *Sysctls) ICMPEchoIgnoreAll() bool { return s.icmpEchoIgnoreAll.first() != 0 }

// cubicParam prefixes the keys of tcp_cubic's module parameters.
const cubicParam = "module/tcp_cubic/parameters/"

// dctcpParam prefixes the keys of tcp_dctcp's module parameters.
const dctcpParam = "module/tcp_dctcp/parameters/"

// DCTCPShiftG is tcp_dctcp's dctcp_shift_g, read at every alpha update.
func (s *Sysctls) DCTCPShiftG() uint32 { return uint32(s.dctcpShiftG.first()) }

// DCTCPAlphaOnInit is tcp_dctcp's dctcp_alpha_on_init, read when a
// connection starts DCTCP.
func (s *Sysctls) DCTCPAlphaOnInit() uint32 { return uint32(s.dctcpAlphaOnInit.first()) }

// Bits of tcp_cubic's hystart_detect (HYSTART_ACK_TRAIN, HYSTART_DELAY).
const (
	HystartAckTrain = 0x1 // exit slow start on a train of closely spaced ACKs
	HystartDelay    = 0x2 // exit slow start when the RTT has grown
)

// CubicHystart is tcp_cubic's module parameter hystart (non-zero: HyStart
// on, Linux's default). Read at every use, as Linux does.
func (s *Sysctls) CubicHystart() int { return int(s.cubicHystart.load()[0]) }

// CubicHystartDetect is tcp_cubic's hystart_detect (the Hystart* bits;
// default both).
func (s *Sysctls) CubicHystartDetect() int { return int(s.cubicHystartDetect.load()[0]) }

// CubicHystartLowWindow is tcp_cubic's hystart_low_window: the cwnd (in
// packets, default 16) below which HyStart does not look.
func (s *Sysctls) CubicHystartLowWindow() int { return int(s.cubicHystartLowWindow.load()[0]) }

// CubicHystartAckDeltaUs is tcp_cubic's hystart_ack_delta_us: the largest
// gap (default 2000 us) between two ACKs of one ACK train.
func (s *Sysctls) CubicHystartAckDeltaUs() int { return int(s.cubicHystartAckDelta.load()[0]) }

func to3(v [3]int64) [3]int { return [3]int{int(v[0]), int(v[1]), int(v[2])} }
