package memctl

import "sort"

// Sysctls is the table of memory-related sysctls of one Net. The typed getters
// are cheap (one atomic load) and read the live value, so a change is seen by
// existing sockets at the places where Linux reads the sysctl (tcp_rmem[2] at
// autotuning time, tcp_notsent_lowat at every writability check, tcp_mem at
// every schedule). Safe for concurrent use.
type Sysctls struct {
	rmemDefault, wmemDefault, rmemMax, wmemMax *Sysctl
	optmemMax, memPcpuRsv                      *Sysctl
	tcpMem, udpMem, tcpRmem, tcpWmem           *Sysctl
	udpRmemMin, udpWmemMin                     *Sysctl
	tcpNotsentLowat, tcpModerateRcvbuf         *Sysctl
	tcpAdvWinScale, tcpAppWin                  *Sysctl
	tcpShrinkWindow, tcpWorkaroundSignedWin    *Sysctl
	tcpRecovery                                *Sysctl

	// tcp_cubic's module parameters.
	cubicHystart, cubicHystartDetect            *Sysctl
	cubicHystartLowWindow, cubicHystartAckDelta *Sysctl

	byName map[string]*Sysctl
	names  []string
}

// NewSysctls builds the table with Linux's boot-time defaults for profile p
// and nr_free_buffer_pages nfbp (see BootDefaults).
func NewSysctls(p *Profile, nfbp int64) *Sysctls {
	d := ComputeBootDefaults(p, nfbp)
	s := &Sysctls{byName: make(map[string]*Sysctl)}
	minRcv, minSnd := int64(p.SockMinRcvbuf()), int64(p.SockMinSndbuf())
	mk := func(name string, kind sysctlKind, ordered bool, lim [2]*int64, vals ...int64) *Sysctl {
		c := &Sysctl{name: name, kind: kind, n: len(vals), ordered: ordered}
		if lim[0] != nil {
			c.min, c.hasMin = *lim[0], true
		}
		if lim[1] != nil {
			c.max, c.hasMax = *lim[1], true
		}
		if kind == kindU8 && (!c.hasMax || c.max > 255) {
			c.max, c.hasMax = 255, true
		}
		var v [3]int64
		copy(v[:], vals)
		c.v.Store(&v)
		s.byName[name] = c
		s.names = append(s.names, name)
		return c
	}
	i64 := func(v int64) *int64 { return &v }
	none := [2]*int64{}
	smd := int64(p.SkMemDefault())
	// net.core (net/core/sysctl_net_core.c)
	s.rmemDefault = mk("core/rmem_default", kindInt, false, [2]*int64{&minRcv, nil}, smd)
	s.wmemDefault = mk("core/wmem_default", kindInt, false, [2]*int64{&minSnd, nil}, smd)
	s.rmemMax = mk("core/rmem_max", kindInt, false, [2]*int64{&minRcv, nil}, int64(p.RmemMaxDefault))
	s.wmemMax = mk("core/wmem_max", kindInt, false, [2]*int64{&minSnd, nil}, int64(p.RmemMaxDefault))
	s.optmemMax = mk("core/optmem_max", kindInt, false, [2]*int64{i64(0), nil}, int64(p.OptmemMaxDefault))
	s.memPcpuRsv = mk("core/mem_pcpu_rsv", kindInt, false, [2]*int64{i64(int64(p.PcpuReserve)), nil}, int64(p.PcpuReserve))
	// net.ipv4 (net/ipv4/sysctl_net_ipv4.c)
	s.tcpMem = mk("ipv4/tcp_mem", kindUlong, true, none, d.TCPMem[:]...)
	s.udpMem = mk("ipv4/udp_mem", kindUlong, true, none, d.UDPMem[:]...)
	s.tcpRmem = mk("ipv4/tcp_rmem", kindInt, true, [2]*int64{i64(1), nil}, d.TCPRmem[:]...)
	s.tcpWmem = mk("ipv4/tcp_wmem", kindInt, true, [2]*int64{i64(1), nil}, d.TCPWmem[:]...)
	s.udpRmemMin = mk("ipv4/udp_rmem_min", kindInt, false, [2]*int64{i64(1), nil}, int64(p.PageSize))
	s.udpWmemMin = mk("ipv4/udp_wmem_min", kindInt, false, [2]*int64{i64(1), nil}, int64(p.PageSize))
	s.tcpNotsentLowat = mk("ipv4/tcp_notsent_lowat", kindUint, false, none, 1<<32-1)
	s.tcpModerateRcvbuf = mk("ipv4/tcp_moderate_rcvbuf", kindU8, false, none, 1)
	s.tcpAdvWinScale = mk("ipv4/tcp_adv_win_scale", kindInt, false, [2]*int64{i64(-31), i64(31)}, 1)
	s.tcpAppWin = mk("ipv4/tcp_app_win", kindU8, false, [2]*int64{i64(0), i64(31)}, 31)
	s.tcpShrinkWindow = mk("ipv4/tcp_shrink_window", kindU8, false, [2]*int64{i64(0), i64(1)}, 0)
	s.tcpWorkaroundSignedWin = mk("ipv4/tcp_workaround_signed_windows", kindU8, false, none, 0)
	s.tcpRecovery = mk("ipv4/tcp_recovery", kindInt, false, none, TCPRackLossDetection)
	// HyStart's knobs. In Linux these are not sysctls but module parameters
	// of tcp_cubic (net/ipv4/tcp_cubic.c), global and read at every use:
	// /sys/module/tcp_cubic/parameters/hystart and so on. sockfs has no
	// modules, so they live here, one set per Net, under keys that name
	// that sysfs path rather than one below /proc/sys/net.
	s.cubicHystart = mk(cubicParam+"hystart", kindInt, false, none, 1)
	s.cubicHystartDetect = mk(cubicParam+"hystart_detect", kindInt, false, none, HystartAckTrain|HystartDelay)
	s.cubicHystartLowWindow = mk(cubicParam+"hystart_low_window", kindInt, false, none, 16)
	s.cubicHystartAckDelta = mk(cubicParam+"hystart_ack_delta_us", kindInt, false, none, 2000)
	sort.Strings(s.names)
	return s
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

// RmemDefault is net.core.rmem_default (the initial sk_rcvbuf).
func (s *Sysctls) RmemDefault() int { return int(s.rmemDefault.load()[0]) }

// WmemDefault is net.core.wmem_default (the initial sk_sndbuf).
func (s *Sysctls) WmemDefault() int { return int(s.wmemDefault.load()[0]) }

// RmemMax is net.core.rmem_max, the cap of SO_RCVBUF.
func (s *Sysctls) RmemMax() int { return int(s.rmemMax.load()[0]) }

// WmemMax is net.core.wmem_max, the cap of SO_SNDBUF.
func (s *Sysctls) WmemMax() int { return int(s.wmemMax.load()[0]) }

// OptmemMax is net.core.optmem_max.
func (s *Sysctls) OptmemMax() int { return int(s.optmemMax.load()[0]) }

// MemPcpuRsv is net.core.mem_pcpu_rsv in pages.
func (s *Sysctls) MemPcpuRsv() int { return int(s.memPcpuRsv.load()[0]) }

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
func (s *Sysctls) UDPRmemMin() int { return int(s.udpRmemMin.load()[0]) }

// UDPWmemMin is net.ipv4.udp_wmem_min.
func (s *Sysctls) UDPWmemMin() int { return int(s.udpWmemMin.load()[0]) }

// TCPNotsentLowat is net.ipv4.tcp_notsent_lowat.
func (s *Sysctls) TCPNotsentLowat() uint32 { return uint32(s.tcpNotsentLowat.load()[0]) }

// TCPModerateRcvbuf is net.ipv4.tcp_moderate_rcvbuf (non-zero: DRS on).
func (s *Sysctls) TCPModerateRcvbuf() uint8 { return uint8(s.tcpModerateRcvbuf.load()[0]) }

// TCPAdvWinScale is net.ipv4.tcp_adv_win_scale (unused since 6.6).
func (s *Sysctls) TCPAdvWinScale() int { return int(s.tcpAdvWinScale.load()[0]) }

// TCPAppWin is net.ipv4.tcp_app_win.
func (s *Sysctls) TCPAppWin() uint8 { return uint8(s.tcpAppWin.load()[0]) }

// TCPShrinkWindow is net.ipv4.tcp_shrink_window.
func (s *Sysctls) TCPShrinkWindow() uint8 { return uint8(s.tcpShrinkWindow.load()[0]) }

// TCPWorkaroundSignedWindows is net.ipv4.tcp_workaround_signed_windows.
func (s *Sysctls) TCPWorkaroundSignedWindows() uint8 {
	return uint8(s.tcpWorkaroundSignedWin.load()[0])
}

// Bits of net.ipv4.tcp_recovery (include/net/tcp.h).
const (
	TCPRackLossDetection = 0x1 // TCP_RACK_LOSS_DETECTION: RACK-TLP loss detection
	TCPRackStaticReoWnd  = 0x2 // TCP_RACK_STATIC_REO_WND: no DSACK-driven reo_wnd growth
	TCPRackNoDupthresh   = 0x4 // TCP_RACK_NO_DUPTHRESH: no reo_wnd of 0 at dupthresh SACKs
)

// TCPRecovery is net.ipv4.tcp_recovery (the TCPRack* bits; Linux's default
// is TCPRackLossDetection). Read at every use, as Linux does.
func (s *Sysctls) TCPRecovery() int { return int(s.tcpRecovery.load()[0]) }

// cubicParam prefixes the keys of tcp_cubic's module parameters.
const cubicParam = "module/tcp_cubic/parameters/"

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
