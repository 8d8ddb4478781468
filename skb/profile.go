package skb

// Profile holds the config-dependent sizes that decide truesize. Linux's
// values depend on the architecture and the kernel config (MAX_SKB_FRAGS,
// MAX_HEADER, the small-head cache added in 6.3), so they are parameters here;
// a test can switch profiles to compare against another kernel.
type Profile struct {
	// Name identifies the profile in test output.
	Name string
	// SKBSize is A_skb = SKB_DATA_ALIGN(sizeof(struct sk_buff)).
	SKBSize int
	// ShinfoSize is A_shinfo = SKB_DATA_ALIGN(sizeof(struct skb_shared_info)).
	ShinfoSize int
	// SmallHeadCacheSize is SKB_SMALL_HEAD_CACHE_SIZE (6.3+); 0 means no
	// small-head cache (kernels before 6.3 take small heads from kmalloc-512).
	SmallHeadCacheSize int
	// MaxTCPHeader is MAX_TCP_HEADER, the headroom TCP reserves.
	MaxTCPHeader int
}

// Profiles matching the kernels the research notes measured
// (shared/research/linux-skmem.md, section 1.1).
var (
	// Linux618Min is Linux 6.18 on x86_64 with a minimal config (the research
	// VM): small head 576, MAX_TCP_HEADER 192. It is the default.
	Linux618Min = Profile{Name: "L618-min", SKBSize: 256, ShinfoSize: 320, SmallHeadCacheSize: 576, MaxTCPHeader: 192}
	// Linux618Distro is Linux 6.18 with a distribution config (WLAN, tunnels):
	// small head 704, MAX_TCP_HEADER 320.
	Linux618Distro = Profile{Name: "L618-distro", SKBSize: 256, ShinfoSize: 320, SmallHeadCacheSize: 704, MaxTCPHeader: 320}
	// LinuxPre63 has no small-head cache (kernels 6.0-6.2).
	LinuxPre63 = Profile{Name: "pre-6.3", SKBSize: 256, ShinfoSize: 320, SmallHeadCacheSize: 0, MaxTCPHeader: 192}
)

// profile is the one in force. It is process-wide because truesize is a
// property of the allocator, as in the kernel; SetProfile is for tests.
var profile = Linux618Min

// CurrentProfile returns the profile in force.
func CurrentProfile() Profile { return profile }

// SetProfile switches the profile and returns the previous one. It is not safe
// to call while skbs are being allocated concurrently; tests call it before
// building a stack and restore the old value afterwards.
func SetProfile(p Profile) Profile {
	old := profile
	profile = p
	return old
}

// cacheLine is SMP_CACHE_BYTES on x86_64.
const cacheLine = 64

// PageSize is the page size all accounting is done in.
const PageSize = 4096

// DataAlign rounds x up to a cache line. Mirrors SKB_DATA_ALIGN.
func DataAlign(x int) int { return (x + cacheLine - 1) &^ (cacheLine - 1) }

// HeadAlign is the size of the allocation that holds x data bytes plus the
// shared info behind them. Mirrors SKB_HEAD_ALIGN.
func (p Profile) HeadAlign(x int) int { return DataAlign(x) + p.ShinfoSize }

// TruesizeOf is the truesize of a linear skb whose usable head is x bytes.
// Mirrors SKB_TRUESIZE.
func (p Profile) TruesizeOf(x int) int { return x + p.SKBSize + p.ShinfoSize }

// WithOverhead is the usable part of an allocation of x bytes. Mirrors
// SKB_WITH_OVERHEAD.
func (p Profile) WithOverhead(x int) int { return x - p.ShinfoSize }

// HeadObjSize is the size of the head allocation alloc_skb(size) really makes:
// the small-head cache when SKB_HEAD_ALIGN(size) fits in it, otherwise the
// kmalloc bucket (512 ... 8192) or, above that, a power-of-two number of pages.
// Mirrors kmalloc_reserve / kmalloc_size_roundup (net/core/skbuff.c).
func (p Profile) HeadObjSize(size int) int {
	obj := p.HeadAlign(size)
	if p.SmallHeadCacheSize > 0 && obj <= p.SmallHeadCacheSize {
		return p.SmallHeadCacheSize
	}
	return kmallocRoundup(obj)
}

// AllocTruesize is the truesize of a fresh skb from Alloc(size).
// Mirrors the truesize set by __finalize_skb_around: obj + A_skb.
func (p Profile) AllocTruesize(size int) int { return p.HeadObjSize(size) + p.SKBSize }

// kmallocRoundup returns the SLUB bucket for n bytes on x86_64: powers of two
// from 512 (the smaller ones never hold an skb head) up to 8192, then whole
// page orders. Mirrors kmalloc_size_roundup.
func kmallocRoundup(n int) int {
	c := 512
	for c < n {
		c <<= 1
	}
	return c
}
