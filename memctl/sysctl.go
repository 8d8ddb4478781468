package memctl

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// sysctlKind is the proc handler a sysctl uses in Linux; it decides how a
// written value is converted and range-checked.
type sysctlKind int

const (
	kindInt   sysctlKind = iota // proc_dointvec_minmax: int
	kindUint                    // proc_douintvec_minmax: unsigned int
	kindU8                      // proc_dou8vec_minmax: u8
	kindUlong                   // proc_doulongvec_minmax: unsigned long, stored in a signed long
)

// Sysctl is one entry of the sysctl table: a vector of one or three values
// with Linux's text format and validation. Reads are lock-free (one atomic
// pointer load); writes are serialised by a mutex and replace the whole
// vector at once, so a reader never sees a half-written vector.
type Sysctl struct {
	name           string // "ipv4/tcp_rmem"
	kind           sysctlKind
	n              int // number of values (1 or 3)
	min, max       int64
	hasMin, hasMax bool
	ordered        bool // a triple must satisfy v[0] <= v[1] <= v[2] (sockfs rule)

	mu sync.Mutex
	v  atomic.Pointer[[3]int64]
}

// Name returns the sysctl's path below /proc/sys/net, such as "ipv4/tcp_rmem".
func (s *Sysctl) Name() string { return s.name }

// Len returns the number of values the sysctl holds.
func (s *Sysctl) Len() int { return s.n }

// load returns the current vector. Cheap: one atomic load and a copy.
func (s *Sysctl) load() [3]int64 { return *s.v.Load() }

// Values returns the current values.
func (s *Sysctl) Values() []int64 {
	v := s.load()
	return append([]int64(nil), v[:s.n]...)
}

// Store sets the values without the range checks of Write (the ordering rule
// and the count still apply). It is for programmatic configuration and tests,
// for instance a mem_pcpu_rsv below the sysctl minimum.
func (s *Sysctl) Store(vals ...int64) error {
	if len(vals) != s.n {
		return fmt.Errorf("sysctl %s: %d values, want %d: %w", s.name, len(vals), s.n, syscall.EINVAL)
	}
	var nv [3]int64
	copy(nv[:], vals)
	if s.ordered && !(nv[0] <= nv[1] && nv[1] <= nv[2]) {
		return fmt.Errorf("sysctl %s: values not in order min <= default <= max: %w", s.name, syscall.EINVAL)
	}
	s.mu.Lock()
	s.v.Store(&nv)
	s.mu.Unlock()
	return nil
}

// Read returns the sysctl's text as Linux prints it: the values separated by
// tabs and a trailing newline ("4096\t131072\t33554432\n"). tcp_mem and
// udp_mem print as unsigned longs, as proc_doulongvec_minmax does.
func (s *Sysctl) Read() string {
	v := s.load()
	var b strings.Builder
	for i := 0; i < s.n; i++ {
		if i > 0 {
			b.WriteByte('\t')
		}
		switch s.kind {
		case kindUlong:
			b.WriteString(strconv.FormatUint(uint64(v[i]), 10))
		default:
			b.WriteString(strconv.FormatInt(v[i], 10))
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// Write parses text as a write(2) to the sysctl's /proc/sys file and stores
// the values. Parsing follows Linux (kernel/sysctl.c __do_proc_dointvec,
// __do_proc_doulongvec_minmax, proc_get_long): values separated by spaces,
// tabs or newlines with leading/trailing white space allowed, each parsed by
// strtoul with base 0 (0x1000 hex, 010 octal), a token of 21 or more
// characters refused, a leading '-' negating (refused for unsigned handlers),
// per-handler ranges, a white-space-only write refused and a zero-length write
// accepted with no change. Every refusal is syscall.EINVAL, wrapped with a
// readable message.
//
// Deviation, deliberate: Linux stores the values that precede a bad one, and
// silently ignores values beyond the vector or leaves the elements not
// written unchanged. sockfs validates the whole write first and applies it
// atomically: a bad value, too few or too many values, or (for tcp_rmem,
// tcp_wmem, tcp_mem, udp_mem) a triple not in min <= default <= max order is
// refused and nothing is stored, so a sysctl never holds a half-applied or
// inconsistent vector.
//
// Write is safe for concurrent use; concurrent writers are serialised and
// readers see either the old or the new vector.
func (s *Sysctl) Write(text string) error {
	if len(text) == 0 {
		return nil // proc_sys_call_handler: a zero-length write does nothing
	}
	// Linux considers at most PAGE_SIZE-1 bytes of one write.
	if len(text) > 4095 {
		text = text[:4095]
	}
	var nv [3]int64
	count := 0
	p := text
	for {
		p = skipSpaces(p)
		if p == "" {
			break
		}
		uval, neg, rest, err := procGetLong(p)
		if err != nil {
			return fmt.Errorf("sysctl %s: value %d: %v: %w", s.name, count+1, err, syscall.EINVAL)
		}
		if count == s.n {
			return fmt.Errorf("sysctl %s: more than %d value(s): %w", s.name, s.n, syscall.EINVAL)
		}
		v, err := s.convert(uval, neg)
		if err != nil {
			return fmt.Errorf("sysctl %s: value %d: %v: %w", s.name, count+1, err, syscall.EINVAL)
		}
		nv[count] = v
		count++
		p = rest
	}
	if count == 0 {
		return fmt.Errorf("sysctl %s: no value: %w", s.name, syscall.EINVAL)
	}
	if count != s.n {
		return fmt.Errorf("sysctl %s: %d value(s), want %d: %w", s.name, count, s.n, syscall.EINVAL)
	}
	if s.ordered && !(nv[0] <= nv[1] && nv[1] <= nv[2]) {
		return fmt.Errorf("sysctl %s: values not in order min <= default <= max: %w", s.name, syscall.EINVAL)
	}
	s.mu.Lock()
	s.v.Store(&nv)
	s.mu.Unlock()
	return nil
}

// convert applies the handler's conversion and range check to one parsed
// value. Mirrors do_proc_dointvec_minmax_conv, do_proc_douintvec_minmax_conv,
// proc_dou8vec_minmax and the checks of __do_proc_doulongvec_minmax.
func (s *Sysctl) convert(uval uint64, neg bool) (int64, error) {
	var v int64
	switch s.kind {
	case kindInt:
		if neg {
			if uval > 1<<31 {
				return 0, fmt.Errorf("-%d is below INT_MIN", uval)
			}
			v = -int64(uval)
		} else {
			if uval > 1<<31-1 {
				return 0, fmt.Errorf("%d is above INT_MAX", uval)
			}
			v = int64(uval)
		}
	case kindUint, kindU8:
		if neg {
			return 0, fmt.Errorf("negative value for an unsigned sysctl")
		}
		if uval > 1<<32-1 {
			return 0, fmt.Errorf("%d is above UINT_MAX", uval)
		}
		v = int64(uval)
	case kindUlong:
		if neg {
			return 0, fmt.Errorf("negative value for an unsigned long sysctl")
		}
		return int64(uval), nil // stored as a signed long: 2^64-1 becomes -1, as in Linux
	}
	if s.hasMin && v < s.min {
		return 0, fmt.Errorf("%d is below the minimum %d", v, s.min)
	}
	if s.hasMax && v > s.max {
		return 0, fmt.Errorf("%d is above the maximum %d", v, s.max)
	}
	return v, nil
}

// isSpace is the kernel's isspace for ASCII (space, \t, \n, \v, \f, \r).
// Deviation: the kernel's ctype table also counts Latin-1 NBSP (0xA0); sockfs
// takes text as UTF-8 and does not.
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// skipSpaces mirrors proc_skip_spaces.
func skipSpaces(p string) string {
	i := 0
	for i < len(p) && isSpace(p[i]) {
		i++
	}
	return p[i:]
}

// tmpBufLen is TMPBUFLEN in kernel/sysctl.c: a token is copied into 22 bytes,
// so at most 21 characters are looked at and a token that long is refused.
const tmpBufLen = 22

// procGetLong parses one token at the start of p. Mirrors proc_get_long with
// the separators proc_wspace_sep (space, tab, newline).
func procGetLong(p string) (val uint64, neg bool, rest string, err error) {
	tmp := p
	if len(tmp) > tmpBufLen-1 {
		tmp = tmp[:tmpBufLen-1]
	}
	i := 0
	if tmp[0] == '-' && len(p) > 1 {
		neg = true
		i = 1
	}
	if i >= len(tmp) || tmp[i] < '0' || tmp[i] > '9' {
		return 0, false, "", fmt.Errorf("%q is not a number", token(p))
	}
	v, n, ok := strtoulBase0(tmp[i:])
	if !ok {
		return 0, false, "", fmt.Errorf("%q overflows", token(p))
	}
	end := i + n
	if end == tmpBufLen-1 {
		return 0, false, "", fmt.Errorf("%q is too long", token(p))
	}
	if end < len(p) && p[end] != ' ' && p[end] != '\t' && p[end] != '\n' {
		return 0, false, "", fmt.Errorf("%q is not a number", token(p))
	}
	return v, neg, p[end:], nil
}

// token returns the leading non-space part of p, for error messages.
func token(p string) string {
	i := 0
	for i < len(p) && !isSpace(p[i]) && i < 40 {
		i++
	}
	return p[:i]
}

// strtoulBase0 parses an unsigned number with base detection: "0x" followed
// by a hex digit is hex, a leading 0 is octal, otherwise decimal. It returns
// the value, the number of bytes consumed and false on overflow. Mirrors
// _parse_integer_fixup_radix + _parse_integer (lib/kstrtox.c).
func strtoulBase0(s string) (uint64, int, bool) {
	base := uint64(10)
	i := 0
	if s[0] == '0' {
		if len(s) > 2 && (s[1]|0x20) == 'x' && isXdigit(s[2]) {
			base = 16
			i = 2
		} else {
			base = 8
		}
	}
	var v uint64
	overflow := false
	for ; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case (c|0x20) >= 'a' && (c|0x20) <= 'f':
			d = uint64((c|0x20)-'a') + 10
		default:
			d = 16
		}
		if d >= base {
			break
		}
		if v > (^uint64(0)-d)/base {
			overflow = true
		}
		v = v*base + d
	}
	return v, i, !overflow
}

func isXdigit(c byte) bool {
	return (c >= '0' && c <= '9') || ((c|0x20) >= 'a' && (c|0x20) <= 'f')
}
