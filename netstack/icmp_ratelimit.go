package netstack

import (
	"net/netip"
	"sockfs/memctl"
	"sync"
	"time"
)

// ICMP error rate limiting, as Linux does it (net/ipv4/icmp.c): a global
// token bucket shared by all destinations (sysctls icmp_msgs_per_sec, burst
// icmp_msgs_burst) and a per-destination bucket (icmp_ratelimit per
// message, with a burst of six). Only the types in icmp_ratemask (default
// 6168: unreachable, quench, time exceeded, parameter problem) are limited;
// echo replies never are. The sysctls are read at every check, as Linux
// does.
const (
	xrlimBurstFactor = 6
	// icmpPeerMax bounds the per-destination table; beyond it the oldest
	// entries are forgotten (Linux's inet_peer cache is bounded likewise).
	icmpPeerMax = 4096
)

type icmpRateLimiter struct {
	sys        *memctl.Sysctls
	mib        *memctl.MIB
	mu         sync.Mutex
	credit     int
	lastRefill int64 // nanotime
	peers      map[netip.Addr]*icmpPeer
}

type icmpPeer struct {
	tokens int64 // nanoseconds of credit
	last   int64 // nanotime of the last check
}

func (r *icmpRateLimiter) init(now int64, sys *memctl.Sysctls, mib *memctl.MIB) {
	r.sys, r.mib = sys, mib
	r.credit = sys.ICMPMsgsBurst()
	r.lastRefill = now
	r.peers = make(map[netip.Addr]*icmpPeer)
}

// allow reports whether an ICMP message of type typ to dst may be sent now.
// Mirrors icmp_global_allow followed by icmpv4_xrlim_allow /
// inet_peer_xrlim_allow; a refusal counts Icmp OutRateLimitGlobal or
// OutRateLimitHost.
func (r *icmpRateLimiter) allow(typ uint8, dst netip.Addr, now int64) bool {
	if typ > 31 || r.sys.ICMPRatemask()&(1<<typ) == 0 { // icmpv4_mask_allow
		return true
	}
	return r.allowLimited(dst, now, int64(r.sys.ICMPRatelimit()), memctl.IcmpOutRateLimitHost)
}

// allow6 is allow for ICMPv6: the global bucket is the same one (Linux's
// icmpv6_global_allow calls icmp_global_allow), the per-destination
// interval is net.ipv6.icmp.ratelimit, scaled down for a destination
// reached through a route shorter than /128 by (128 - plen) >> 5 halvings,
// none for loopback; the mask is Linux's default icmpv6 ratemask
// "0-1,3-127" (every error but packet too big; informational messages
// never). A refusal counts IcmpOutRateLimitGlobal (as Linux's v6 path
// does) or Icmp6OutRateLimitHost. Mirrors icmpv6_mask_allow,
// icmpv6_global_allow and icmpv6_xrlim_allow.
func (r *icmpRateLimiter) allow6(typ uint8, dst netip.Addr, plen int, now int64) bool {
	if typ >= 128 || typ == 2 || dst.IsLoopback() {
		return true
	}
	tmo := int64(r.sys.ICMPv6Ratelimit())
	if plen < 128 {
		tmo >>= (128 - plen) >> 5
	}
	return r.allowLimited(dst, now, tmo, memctl.Icmp6OutRateLimitHost)
}

// allowLimited takes a token from the global bucket and one ratelimit
// period from dst's bucket, counting a refusal of the latter in host.
func (r *icmpRateLimiter) allowLimited(dst netip.Addr, now, ratelimit int64, host memctl.Counter) bool {
	perSec, burst := int64(r.sys.ICMPMsgsPerSec()), r.sys.ICMPMsgsBurst()
	r.mu.Lock()
	defer r.mu.Unlock()
	// Global bucket: refill msgs_per_sec per second of elapsed time.
	if elapsed := now - r.lastRefill; elapsed > 0 {
		add := int(elapsed * perSec / int64(time.Second))
		if add > 0 {
			r.credit = min(r.credit+add, burst)
			r.lastRefill = now
		}
	}
	if r.credit <= 0 {
		r.mib.Inc(memctl.IcmpOutRateLimitGlobal)
		return false
	}
	// Per-destination bucket, in time units: each message costs one
	// ratelimit period and the bucket holds at most six.
	p := r.peers[dst]
	if p == nil {
		if len(r.peers) >= icmpPeerMax {
			for k := range r.peers { // forget an arbitrary old peer
				delete(r.peers, k)
				break
			}
		}
		p = &icmpPeer{tokens: xrlimBurstFactor * ratelimit, last: now}
		r.peers[dst] = p
	}
	tokens := p.tokens + (now - p.last)
	if max := xrlimBurstFactor * ratelimit; tokens > max {
		tokens = max
	}
	p.last = now
	if tokens < ratelimit {
		p.tokens = tokens
		r.mib.Inc(host)
		return false
	}
	p.tokens = tokens - ratelimit
	r.credit--
	return true
}
