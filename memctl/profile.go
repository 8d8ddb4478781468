package memctl

// UDPAdmission selects the rule __udp_enqueue_schedule_skb uses to refuse a
// datagram for lack of receive buffer.
type UDPAdmission int

const (
	// UDPAdmitV618 is the 6.18 rule: drop when rmem+T > rcvbuf unless the
	// queue is empty, so floor(rcvbuf/T) datagrams fit (at least one).
	UDPAdmitV618 UDPAdmission = iota
	// UDPAdmitLegacy is the rule up to 6.17: drop only once rmem > rcvbuf,
	// so floor(rcvbuf/T)+1 datagrams fit.
	UDPAdmitLegacy
)

// Profile holds the version-dependent rules and the config-dependent sizes the
// accounting depends on. The zero value is not useful; start from one of the
// predefined profiles. A test that compares against another kernel builds a
// Net with that kernel's profile.
type Profile struct {
	// Name identifies the profile in test output.
	Name string
	// PageSize is PAGE_SIZE, the quantum of forward_alloc and the unit of
	// memory_allocated, tcp_mem and udp_mem.
	PageSize int
	// SKBSize is A_skb = SKB_DATA_ALIGN(sizeof(struct sk_buff)).
	SKBSize int
	// ShinfoSize is A_shinfo = SKB_DATA_ALIGN(sizeof(struct skb_shared_info)).
	ShinfoSize int
	// SmallHeadCacheSize is SKB_SMALL_HEAD_CACHE_SIZE (0: no cache, before 6.3).
	SmallHeadCacheSize int
	// MaxTCPHeader is MAX_TCP_HEADER (192 minimal config, 320 distro config).
	MaxTCPHeader int
	// PcpuReserve is SK_MEMORY_PCPU_RESERVE in pages: the default and the
	// minimum of net.core.mem_pcpu_rsv.
	PcpuReserve int
	// RmemMaxDefault is the default of net.core.rmem_max and wmem_max
	// (4 MiB from 6.18, 212992 before).
	RmemMaxDefault int
	// TCPRmemMaxCap caps the boot-time tcp_rmem[2] (32 MiB from 6.16, 6 MiB
	// before).
	TCPRmemMaxCap int
	// OptmemMaxDefault is the default of net.core.optmem_max.
	OptmemMaxDefault int
	// UDPAdmission is the UDP receive-buffer admission rule.
	UDPAdmission UDPAdmission
	// UDPMemErrorsCounted: when true (kernels before 6.18) a UDP datagram
	// dropped because udp_rmem_schedule failed bumps UdpMemErrors and
	// UdpInErrors; 6.18 counts it only in sk_drops.
	UDPMemErrorsCounted bool
}

// Predefined profiles (shared/research/linux-skmem.md sections 1.1 and 3).
var (
	// Linux618Min is Linux 6.18 on x86_64 with a minimal config, the kernel
	// the research measurements come from. It is the default.
	Linux618Min = Profile{
		Name: "L618-min", PageSize: 4096, SKBSize: 256, ShinfoSize: 320,
		SmallHeadCacheSize: 576, MaxTCPHeader: 192, PcpuReserve: 256,
		RmemMaxDefault: 4 << 20, TCPRmemMaxCap: 32 << 20, OptmemMaxDefault: 131072,
		UDPAdmission: UDPAdmitV618,
	}
	// Linux618Distro is Linux 6.18 with a distribution config (WLAN, mesh,
	// tunnels): small head 704, MAX_TCP_HEADER 320.
	Linux618Distro = Profile{
		Name: "L618-distro", PageSize: 4096, SKBSize: 256, ShinfoSize: 320,
		SmallHeadCacheSize: 704, MaxTCPHeader: 320, PcpuReserve: 256,
		RmemMaxDefault: 4 << 20, TCPRmemMaxCap: 32 << 20, OptmemMaxDefault: 131072,
		UDPAdmission: UDPAdmitV618,
	}
	// Linux612Distro approximates the 6.12 LTS with a distribution config:
	// rmem_max 212992, tcp_rmem[2] capped at 6 MiB, the legacy UDP count and
	// UdpMemErrors counted.
	Linux612Distro = Profile{
		Name: "L612-distro", PageSize: 4096, SKBSize: 256, ShinfoSize: 320,
		SmallHeadCacheSize: 704, MaxTCPHeader: 320, PcpuReserve: 256,
		RmemMaxDefault: 212992, TCPRmemMaxCap: 6 << 20, OptmemMaxDefault: 131072,
		UDPAdmission: UDPAdmitLegacy, UDPMemErrorsCounted: true,
	}
)

// TruesizeOf is SKB_TRUESIZE(x): a linear skb's truesize for x usable bytes.
func (p *Profile) TruesizeOf(x int) int { return x + p.SKBSize + p.ShinfoSize }

// TCPSkbMinTruesize is TCP_SKB_MIN_TRUESIZE (2048 + A_skb).
func (p *Profile) TCPSkbMinTruesize() int { return 2048 + p.SKBSize }

// SockMinSndbuf is SOCK_MIN_SNDBUF (2 * TCP_SKB_MIN_TRUESIZE, 4608).
func (p *Profile) SockMinSndbuf() int { return 2 * p.TCPSkbMinTruesize() }

// SockMinRcvbuf is SOCK_MIN_RCVBUF (TCP_SKB_MIN_TRUESIZE, 2304).
func (p *Profile) SockMinRcvbuf() int { return p.TCPSkbMinTruesize() }

// SkMemDefault is SK_RMEM_DEFAULT = SK_WMEM_DEFAULT = SKB_TRUESIZE(256)*256
// (212992 on x86_64).
func (p *Profile) SkMemDefault() int { return p.TruesizeOf(256) * 256 }

// pageShift is log2(PageSize).
func (p *Profile) pageShift() uint {
	s := uint(0)
	for 1<<s < p.PageSize {
		s++
	}
	return s
}
