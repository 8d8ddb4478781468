package impair

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultLimit is the queue limit used when Config.Limit is 0: netem's
// default of 1000 packets.
const DefaultLimit = 1000

// ReorderHold bounds how long a packet picked for reordering is held back
// when Delay is 0 (see Config.Reorder): if no later packet overtakes it
// within ReorderHold it is sent anyway.
const ReorderHold = time.Millisecond

// maxDelay bounds Delay and Jitter so that deadline arithmetic cannot
// overflow; netem's limit is similar (its delays are 32-bit in the API).
const maxDelay = time.Hour

// Config is one direction's impairment, in the spirit of Linux's netem
// qdisc (net/sched/sch_netem.c). The zero Config impairs nothing ("off").
// Probabilities are fractions in [0, 1]; Parse and String use percentages.
type Config struct {
	// Loss is the probability that a packet is dropped.
	Loss float64
	// Delay is added to every packet's delivery time.
	Delay time.Duration
	// Jitter spreads Delay uniformly over [Delay-Jitter, Delay+Jitter]
	// (netem's simple jitter, clamped at 0). Packets may then overtake each
	// other, unless Rate is set: a rate-limited link stays FIFO and jitter
	// only stretches the gaps, as netem does when it rate-limits.
	Jitter time.Duration
	// Reorder is the probability that a packet is sent at once, without the
	// delay, overtaking those still queued (netem's "reorder"). With Delay 0
	// there is nothing to overtake, so instead the chosen packet is held
	// back until the next packet is scheduled and sent right behind it
	// (at most ReorderHold), so that it still arrives out of order.
	Reorder float64
	// Duplicate is the probability that a packet is sent twice; the
	// duplicate is a private copy (skb_copy) scheduled independently.
	Duplicate float64
	// Corrupt is the probability that one random bit of the packet is
	// flipped. A cloned (or paged) skb is first replaced by a private linear
	// copy, so the original, which may sit on a TCP retransmit queue sharing
	// the data, is never touched.
	Corrupt float64
	// Rate limits the link to this many bits per second (0: unlimited).
	// Each packet occupies the link for Len*8/Rate and packets queue behind
	// each other; Delay is added after serialisation.
	Rate uint64
	// Limit is the queue limit in packets (0: DefaultLimit). Packets
	// arriving when Limit packets are waiting are dropped and counted.
	Limit int
	// ECN makes Loss mark an ECN-capable packet Congestion Experienced
	// instead of dropping it (netem's "ecn"); a Not-ECT packet is still
	// dropped.
	ECN bool
	// CELimit marks an ECN-capable packet CE when at least CELimit
	// packets are waiting ahead of it (0: never; waiting counts, as Limit
	// does, packets still in their Delay): the step-marking AQM of
	// DCTCP's switches (RED with min = max = K, RFC 8257 section 3.1),
	// which netem does not have.
	CELimit int
}

func einval(format string, a ...any) error {
	return fmt.Errorf("impair: "+format+": %w", append(a, syscall.EINVAL)...)
}

// Validate reports whether every field is in range; the error wraps
// syscall.EINVAL.
func (c Config) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", c.Loss}, {"reorder", c.Reorder}, {"duplicate", c.Duplicate}, {"corrupt", c.Corrupt}} {
		if !(p.v >= 0 && p.v <= 1) { // also rejects NaN
			return einval("%s %v: out of range", p.name, p.v)
		}
	}
	if c.Delay < 0 || c.Delay > maxDelay {
		return einval("delay %v: out of range", c.Delay)
	}
	if c.Jitter < 0 || c.Jitter > maxDelay {
		return einval("jitter %v: out of range", c.Jitter)
	}
	if c.Limit < 0 {
		return einval("limit %d: out of range", c.Limit)
	}
	if c.CELimit < 0 {
		return einval("ce_limit %d: out of range", c.CELimit)
	}
	return nil
}

// limit returns the effective queue limit.
func (c Config) limit() int {
	if c.Limit == 0 {
		return DefaultLimit
	}
	return c.Limit
}

// Parse reads a netem-like description: clauses in any order, each at most
// once, separated by spaces:
//
//	delay TIME [JITTER]     e.g. "delay 50ms", "delay 50ms 5ms"
//	loss PCT                e.g. "loss 1%", "loss 0.5%"
//	reorder PCT
//	duplicate PCT
//	corrupt PCT
//	rate RATE               bit, kbit, mbit, gbit, tbit (bits/s, powers of
//	                        1000) or bps, kbps, mbps, gbps (bytes/s)
//	limit PACKETS           a positive integer
//	ecn                     loss marks ECN-capable packets CE instead
//	ce_limit PACKETS        mark ECN-capable packets CE when that many wait
//	off                     alone: no impairment (the zero Config)
//
// Times take Go's units (ns, us, µs, ms, s, m, h; decimals allowed).
// Percentages are 0 to 100, decimals allowed, the % sign optional. Keywords
// and units are case-insensitive. Errors wrap syscall.EINVAL, so a write of
// a bad line to an impair file fails with EINVAL.
func Parse(s string) (Config, error) {
	var c Config
	f := strings.Fields(s)
	if len(f) == 0 {
		return c, einval("empty description (use \"off\")")
	}
	if len(f) == 1 && strings.EqualFold(f[0], "off") {
		return c, nil
	}
	seen := map[string]bool{}
	for i := 0; i < len(f); {
		kw := strings.ToLower(f[i])
		switch kw {
		case "delay", "loss", "reorder", "duplicate", "corrupt", "rate", "limit", "ce_limit", "ecn":
		case "off":
			return Config{}, einval("off cannot be combined with other clauses")
		default:
			return Config{}, einval("unknown clause %q", f[i])
		}
		if seen[kw] {
			return Config{}, einval("%s given twice", kw)
		}
		seen[kw] = true
		i++
		if kw == "ecn" { // a flag, no value
			c.ECN = true
			continue
		}
		arg := func() (string, error) {
			if i >= len(f) {
				return "", einval("%s: missing value", kw)
			}
			a := f[i]
			i++
			return a, nil
		}
		a, err := arg()
		if err != nil {
			return Config{}, err
		}
		switch kw {
		case "delay":
			if c.Delay, err = parseDuration(kw, a); err != nil {
				return Config{}, err
			}
			if i < len(f) && startsNumeric(f[i]) {
				if c.Jitter, err = parseDuration("jitter", f[i]); err != nil {
					return Config{}, err
				}
				i++
			}
		case "loss", "reorder", "duplicate", "corrupt":
			p, err := parsePercent(kw, a)
			if err != nil {
				return Config{}, err
			}
			switch kw {
			case "loss":
				c.Loss = p
			case "reorder":
				c.Reorder = p
			case "duplicate":
				c.Duplicate = p
			default:
				c.Corrupt = p
			}
		case "rate":
			if c.Rate, err = parseRate(a); err != nil {
				return Config{}, err
			}
		case "limit", "ce_limit":
			n, err := strconv.Atoi(a)
			if err != nil || n <= 0 {
				return Config{}, einval("%s %s: want a positive number of packets", kw, a)
			}
			if kw == "limit" {
				c.Limit = n
			} else {
				c.CELimit = n
			}
		}
		// A trailing value the clause did not take (e.g. a correlation).
		if i < len(f) && startsNumeric(f[i]) {
			return Config{}, einval("%s: unexpected %q (correlations are not supported)", kw, f[i])
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func startsNumeric(s string) bool {
	return s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '.' || s[0] == '-' || s[0] == '+')
}

func parseDuration(name, s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.ToLower(s))
	if err != nil {
		return 0, einval("%s %s: not a duration (e.g. 50ms)", name, s)
	}
	if d < 0 || d > maxDelay {
		return 0, einval("%s %s: out of range", name, s)
	}
	return d, nil
}

func parsePercent(name, s string) (float64, error) {
	num := strings.TrimSuffix(s, "%")
	dots := strings.Count(num, ".")
	if num == "" || num == "." || dots > 1 || strings.Trim(num, "0123456789.") != "" {
		return 0, einval("%s %s: not a percentage", name, s)
	}
	// Dividing by 100 in decimal keeps String's output exact on the way back.
	v, err := strconv.ParseFloat(num+"e-2", 64)
	if err != nil {
		return 0, einval("%s %s: not a percentage", name, s)
	}
	if !(v >= 0 && v <= 1) {
		return 0, einval("%s %s: out of range", name, s)
	}
	return v, nil
}

var rateUnits = []struct {
	suffix string
	mult   float64
}{ // longest suffixes first
	{"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}, {"tbit", 1e12}, {"bit", 1},
	{"kbps", 8e3}, {"mbps", 8e6}, {"gbps", 8e9}, {"tbps", 8e12}, {"bps", 8},
}

func parseRate(s string) (uint64, error) {
	l := strings.ToLower(s)
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(l, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || num == "" || strings.ContainsAny(num, "einxp_") {
			return 0, einval("rate %s: not a rate (e.g. 100mbit)", s)
		}
		bps := math.Round(v * u.mult)
		if !(bps >= 1 && bps < 1<<63) {
			return 0, einval("rate %s: out of range", s)
		}
		return uint64(bps), nil
	}
	return 0, einval("rate %s: missing or unknown unit (bit, kbit, mbit, gbit, bps, kbps, mbps)", s)
}

// String returns the canonical description, which Parse accepts back to the
// same Config: clauses in the order delay, loss, reorder, duplicate, corrupt,
// rate, limit, ecn, ce_limit, zero fields omitted; "off" for the zero Config.
func (c Config) String() string {
	if c == (Config{}) {
		return "off"
	}
	var b strings.Builder
	add := func(s ...string) {
		for _, x := range s {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(x)
		}
	}
	if c.Delay != 0 || c.Jitter != 0 {
		add("delay", formatDuration(c.Delay))
		if c.Jitter != 0 {
			add(formatDuration(c.Jitter))
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", c.Loss}, {"reorder", c.Reorder}, {"duplicate", c.Duplicate}, {"corrupt", c.Corrupt}} {
		if p.v != 0 {
			add(p.name, formatPercent(p.v))
		}
	}
	if c.Rate != 0 {
		add("rate", formatRate(c.Rate))
	}
	if c.Limit != 0 {
		add("limit", strconv.Itoa(c.Limit))
	}
	if c.ECN {
		add("ecn")
	}
	if c.CELimit != 0 {
		add("ce_limit", strconv.Itoa(c.CELimit))
	}
	return b.String()
}

func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d%time.Microsecond == 0:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// formatPercent prints probability p as a percentage that parses back to
// exactly p: the shortest decimal for p with its point moved two places
// (Parse moves it back by parsing with an "e-2" exponent, so no binary
// multiplication or division rounds either way).
func formatPercent(p float64) string {
	if p == 0 {
		return "0%"
	}
	e := strconv.FormatFloat(p, 'e', -1, 64) // d.ddde±XX
	mant, exp, _ := strings.Cut(e, "e")
	x, _ := strconv.Atoi(exp)
	digits := strings.Replace(mant, ".", "", 1)
	point := 1 + x + 2 // digits before the decimal point in the percentage
	var out string
	switch {
	case point <= 0:
		out = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		out = digits + strings.Repeat("0", point-len(digits))
	default:
		out = digits[:point] + "." + digits[point:]
	}
	return out + "%"
}

func formatRate(r uint64) string {
	switch {
	case r%1e12 == 0:
		return strconv.FormatUint(r/1e12, 10) + "tbit"
	case r%1e9 == 0:
		return strconv.FormatUint(r/1e9, 10) + "gbit"
	case r%1e6 == 0:
		return strconv.FormatUint(r/1e6, 10) + "mbit"
	case r%1e3 == 0:
		return strconv.FormatUint(r/1e3, 10) + "kbit"
	}
	return strconv.FormatUint(r, 10) + "bit"
}
