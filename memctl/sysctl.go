package memctl

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sysctlKind is the proc handler a sysctl uses in Linux; it decides how a
// written value is converted, range-checked and printed.
type sysctlKind int

const (
	kindInt       sysctlKind = iota // proc_dointvec(_minmax): int
	kindUint                        // proc_douintvec(_minmax): unsigned int, one value
	kindU8                          // proc_dou8vec_minmax: u8, one value
	kindUlong                       // proc_doulongvec_minmax: unsigned long, stored in a signed long
	kindJiffies                     // proc_dointvec_jiffies: seconds, kept in jiffies
	kindMsJiffies                   // proc_dointvec_ms_jiffies: milliseconds, kept in jiffies
	kindString                      // proc_dostring (with a handler that validates the text)
	kindParamInt                    // a module parameter of type int (param_set_int: kstrtoint, a sysfs store)
	kindParamUint                   // a module parameter of type uint (param_set_uint: kstrtouint)
)

// handlerNames are the Linux proc handlers of the kinds, for the README table.
var handlerNames = [...]string{
	kindInt: "proc_dointvec", kindUint: "proc_douintvec", kindU8: "proc_dou8vec_minmax",
	kindUlong: "proc_doulongvec_minmax", kindJiffies: "proc_dointvec_jiffies",
	kindMsJiffies: "proc_dointvec_ms_jiffies", kindString: "proc_dostring",
	kindParamInt: "param_set_int", kindParamUint: "param_set_uint",
}

// HZ is CONFIG_HZ of the reference kernel (6.18 on the project's VM): the
// jiffy that proc_dointvec_jiffies and proc_dointvec_ms_jiffies round
// written values to (icmp_ratelimit 1 reads back 4).
const HZ = 250

// Jiffy is one tick of HZ.
const Jiffy = time.Second / HZ

// Sysctl is one entry of the sysctl table: a vector of one to three
// numbers, or a string, with Linux's text format and validation. Reads are
// lock-free (one atomic pointer load); writes are serialised by a mutex and
// replace the whole value at once, so a reader never sees a half-written
// vector.
type Sysctl struct {
	name           string // "ipv4/tcp_rmem"
	kind           sysctlKind
	n              int // number of values (1 to 3; 1 for a string)
	min, max       int64
	hasMin, hasMax bool
	// minOf and maxOf, when set, make another sysctl's first value the
	// minimum or maximum (ipfrag_high_thresh >= ipfrag_low_thresh).
	minOf, maxOf *Sysctl
	// check validates a whole new vector after the per-value checks
	// (ip_local_port_range's order and privileged-port rule).
	check func(v [3]int64) error
	// setString validates and applies a string write (nil: read-only);
	// getString reads a string sysctl.
	setString func(string) error
	getString func() string
	strMax    int // the table's maxlen: at most strMax-1 bytes are kept
	readOnly  bool
	// where says where the stack reads the value (README's table).
	where string

	mu sync.Mutex
	v  atomic.Pointer[[3]int64]
}

// Name returns the sysctl's path below /proc/sys/net, such as "ipv4/tcp_rmem".
func (s *Sysctl) Name() string { return s.name }

// Len returns the number of values the sysctl holds.
func (s *Sysctl) Len() int { return s.n }

// ReadOnly reports whether the file is read-only (mode 0444 in Linux).
func (s *Sysctl) ReadOnly() bool { return s.readOnly }

// load returns the current vector. Cheap: one atomic load and a copy.
func (s *Sysctl) load() [3]int64 { return *s.v.Load() }

// first returns the first value as stored (jiffies for the jiffies kinds).
func (s *Sysctl) first() int64 { return s.v.Load()[0] }

// Values returns the current values as stored (jiffies for the jiffies
// kinds).
func (s *Sysctl) Values() []int64 {
	v := s.load()
	return append([]int64(nil), v[:s.n]...)
}

// Store sets the values as stored, without the range checks of Write (the
// count still applies). It is for programmatic configuration and tests, for
// instance a mem_pcpu_rsv below the sysctl minimum.
func (s *Sysctl) Store(vals ...int64) error {
	if len(vals) != s.n || s.kind == kindString {
		return fmt.Errorf("sysctl %s: %d values, want %d: %w", s.name, len(vals), s.n, syscall.EINVAL)
	}
	var nv [3]int64
	copy(nv[:], vals)
	s.mu.Lock()
	s.v.Store(&nv)
	s.mu.Unlock()
	return nil
}

// Read returns the sysctl's text as Linux prints it: the values separated by
// tabs and a trailing newline ("4096\t131072\t33554432\n"); tcp_mem and
// udp_mem print as unsigned longs, as proc_doulongvec_minmax does; jiffies
// print in seconds or milliseconds.
func (s *Sysctl) Read() string {
	if s.kind == kindString {
		return s.getString() + "\n"
	}
	v := s.load()
	var b strings.Builder
	for i := 0; i < s.n; i++ {
		if i > 0 {
			b.WriteByte('\t')
		}
		switch s.kind {
		case kindUlong:
			b.WriteString(strconv.FormatUint(uint64(v[i]), 10))
		case kindJiffies:
			// do_proc_dointvec_jiffies_conv: the magnitude divided.
			if v[i] < 0 {
				b.WriteString("-" + strconv.FormatInt(-v[i]/HZ, 10))
			} else {
				b.WriteString(strconv.FormatInt(v[i]/HZ, 10))
			}
		case kindMsJiffies:
			b.WriteString(strconv.FormatUint(uint64(uint32(v[i]*1000/HZ)), 10)) // jiffies_to_msecs
		default:
			b.WriteString(strconv.FormatInt(v[i], 10))
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// Write parses text as a write(2) at offset 0 to the sysctl's /proc/sys
// file and stores the value. See WriteN.
func (s *Sysctl) Write(text string) error {
	_, err := s.WriteN(text)
	return err
}

// WriteN is Write returning, like the kernel's write(2), how many bytes of
// text were consumed. Parsing follows Linux (kernel/sysctl.c
// __do_proc_dointvec, do_proc_douintvec_w, __do_proc_doulongvec_minmax,
// proc_get_long, _proc_do_string):
//
//   - int and unsigned long vectors: values separated by spaces, tabs or
//     newlines, leading white space allowed; a shorter vector sets the
//     leading values and keeps the rest; after the last value, white space
//     is consumed and anything else is left unconsumed (a short count, so
//     "1 2 3 4" to a 3-vector sets three values and consumes 6 bytes);
//   - unsigned int and u8 (one value): the first value is used and the rest
//     of the write is ignored, consumed;
//   - every number is parsed by strtoul with base 0 (0x1000 hex, 010 octal),
//     a token of 21 or more characters is refused, a leading '-' negates
//     (refused by the unsigned handlers);
//   - strings keep the first line, at most maxlen-1 bytes, and the handler
//     validates it (tcp_congestion_control: ENOENT for an unknown name);
//   - a white-space-only write is refused; a zero-length write is accepted
//     and changes nothing.
//
// Deviation, deliberate: Linux stores the values that precede a bad one in
// a vector ("8192 x" to tcp_rmem sets tcp_rmem[0] and fails); sockfs
// validates the whole write first and applies it at once, so a refused
// write changes nothing. Every refusal is syscall.EINVAL (ENOENT for an
// unknown congestion control, as Linux), wrapped with a readable message.
//
// WriteN is safe for concurrent use; concurrent writers are serialised and
// readers see either the old or the new value.
func (s *Sysctl) WriteN(text string) (int, error) {
	if len(text) == 0 {
		return 0, nil // proc_sys_call_handler: a zero-length write does nothing
	}
	if s.readOnly {
		return 0, fmt.Errorf("sysctl %s is read-only: %w", s.name, syscall.EACCES)
	}
	if s.kind == kindString {
		return s.writeString(text)
	}
	if s.kind == kindParamInt || s.kind == kindParamUint {
		return s.writeParam(text)
	}
	full := len(text)
	// Linux considers at most PAGE_SIZE-1 bytes of one write.
	if len(text) > 4095 {
		text = text[:4095]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nv := s.load()
	count := 0
	p := text
	single := s.kind == kindUint || s.kind == kindU8
	for count < s.n {
		p = skipSpaces(p)
		if p == "" {
			break
		}
		uval, neg, rest, err := procGetLong(p)
		if err != nil {
			return 0, fmt.Errorf("sysctl %s: value %d: %v: %w", s.name, count+1, err, syscall.EINVAL)
		}
		v, err := s.convert(uval, neg)
		if err != nil {
			return 0, fmt.Errorf("sysctl %s: value %d: %v: %w", s.name, count+1, err, syscall.EINVAL)
		}
		nv[count] = v
		count++
		p = rest
	}
	if count == 0 {
		return 0, fmt.Errorf("sysctl %s: no value: %w", s.name, syscall.EINVAL)
	}
	consumed := full
	if !single {
		p = skipSpaces(p)
		consumed = full - len(p)
	}
	if s.check != nil {
		if err := s.check(nv); err != nil {
			return 0, fmt.Errorf("sysctl %s: %v: %w", s.name, err, syscall.EINVAL)
		}
	}
	s.v.Store(&nv)
	return consumed, nil
}

// WriteAt is a write(2) of text at file position off, with Linux's
// positions (sysctl_writes_strict=1): it returns the bytes consumed and
// the position the next write(2) on the same descriptor starts from.
//
//   - numeric sysctls take a write only at position 0; one elsewhere is
//     consumed and ignored (proc_first_pos_non_zero_ignore). After a
//     write, the int, unsigned long and jiffies handlers have moved the
//     position on, and the unsigned int and u8 ones have not: a second
//     write(2) on the descriptor is ignored by the former and applied by
//     the latter (as the live 6.18 kernel does: `exec 3>f; echo 5 >&3;
//     echo 7 >&3` leaves tcp_fin_timeout at 5 and tcp_retries2 at 7);
//   - strings write into the current text at off, up to the first
//     newline, and the handler checks the result (_proc_do_string: "xx"
//     at 2 of "reno" makes "rexx", ENOENT); past the text's end a write
//     is ignored;
//   - module parameters are sysfs stores: every write(2) is a whole
//     value, wherever the position is.
func (s *Sysctl) WriteAt(text string, off int64) (int, int64, error) {
	switch {
	case s.kind == kindParamInt || s.kind == kindParamUint:
		n, err := s.WriteN(text)
		return n, off + int64(n), err
	case s.kind == kindString && off != 0:
		return s.writeStringAt(text, off)
	case off != 0:
		return len(text), off + int64(len(text)), nil
	}
	n, err := s.WriteN(text)
	if err != nil || s.kind == kindUint || s.kind == kindU8 {
		return n, 0, err
	}
	return n, int64(n), nil
}

// ReadsAtOffsets reports whether a read at a non-zero position gets the
// text from there (strings, module parameters); a numeric sysctl's read
// there gets end of file, as __do_proc_dointvec, do_proc_douintvec and
// __do_proc_doulongvec_minmax answer a read with *ppos set.
func (s *Sysctl) ReadsAtOffsets() bool {
	return s.kind == kindString || s.kind == kindParamInt || s.kind == kindParamUint
}

// writeStringAt is a string write at a non-zero position: the current
// text up to off, then the written line (_proc_do_string with
// sysctl_writes_strict); past the end of the text it is ignored.
func (s *Sysctl) writeStringAt(text string, off int64) (int, int64, error) {
	next := off + int64(len(text))
	s.mu.Lock()
	cur := s.getString()
	s.mu.Unlock()
	if s.strMax > 0 && len(cur) > s.strMax-1 {
		cur = cur[:s.strMax-1]
	}
	if off > int64(len(cur)) {
		return len(text), next, nil
	}
	if _, err := s.writeString(cur[:off] + text); err != nil {
		return 0, off, err
	}
	return len(text), next, nil
}

// writeParam is a sysfs store to a module parameter: the whole write is
// one number for kstrtoint or kstrtouint (base 0: 0x hex, 0 octal; a
// leading '+', or '-' for an int; one trailing newline; nothing else, not
// even blanks), EINVAL if it is not one, ERANGE if it does not fit.
// Mirrors param_set_int and param_set_uint.
func (s *Sysctl) writeParam(text string) (int, error) {
	t := strings.TrimSuffix(text, "\n")
	neg := false
	switch {
	case strings.HasPrefix(t, "-") && s.kind == kindParamInt:
		neg, t = true, t[1:]
	case strings.HasPrefix(t, "+"):
		t = t[1:]
	}
	base := 10
	switch {
	case len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X"):
		base, t = 16, t[2:]
	case len(t) > 1 && t[0] == '0':
		base, t = 8, t[1:]
	}
	u, err := strconv.ParseUint(t, base, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("sysctl %s: %q is out of range: %w", s.name, text, syscall.ERANGE)
		}
		return 0, fmt.Errorf("sysctl %s: %q is not a number: %w", s.name, text, syscall.EINVAL)
	}
	var v int64
	switch {
	case s.kind == kindParamUint && u > 1<<32-1,
		s.kind == kindParamInt && !neg && u > 1<<31-1,
		s.kind == kindParamInt && neg && u > 1<<31:
		return 0, fmt.Errorf("sysctl %s: %q is out of range: %w", s.name, text, syscall.ERANGE)
	case neg:
		v = -int64(u)
	default:
		v = int64(u)
	}
	nv := [3]int64{v}
	s.mu.Lock()
	s.v.Store(&nv)
	s.mu.Unlock()
	return len(text), nil
}

// writeString applies a proc_dostring write: the text up to the first
// newline or NUL, at most strMax-1 bytes, handed to the sysctl's handler.
// Mirrors _proc_do_string followed by the handler's check.
func (s *Sysctl) writeString(text string) (int, error) {
	line := text
	if i := strings.IndexAny(line, "\n\x00"); i >= 0 {
		line = line[:i]
	}
	if s.strMax > 0 && len(line) > s.strMax-1 {
		line = line[:s.strMax-1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.setString(line); err != nil {
		return 0, fmt.Errorf("sysctl %s: %w", s.name, err)
	}
	return len(text), nil
}

// convert applies the handler's conversion and range check to one parsed
// value. Mirrors do_proc_dointvec_minmax_conv, do_proc_douintvec_minmax_conv,
// proc_dou8vec_minmax, do_proc_dointvec_jiffies_conv,
// do_proc_dointvec_ms_jiffies_conv and the checks of
// __do_proc_doulongvec_minmax.
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
	case kindJiffies:
		if uval > (1<<31-1)/HZ {
			return 0, fmt.Errorf("%d seconds do not fit in an int of jiffies", uval)
		}
		v = int64(uval) * HZ
		if neg {
			v = -v
		}
		return v, nil // proc_dointvec_jiffies has no range
	case kindMsJiffies:
		m := uint32(uval) // msecs_to_jiffies takes an unsigned int
		if neg {
			m = uint32(-uval)
		}
		if int32(m) < 0 { // __msecs_to_jiffies: "negative" is MAX_JIFFY_OFFSET, above INT_MAX
			return 0, fmt.Errorf("%d ms is too large", uval)
		}
		v = int64((m + 1000/HZ - 1) / (1000 / HZ))
		return v, nil
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
		v = int64(uval) // stored as a signed long: 2^64-1 becomes -1, as in Linux
		if s.minOf != nil && uval < uint64(s.minOf.first()) {
			return 0, fmt.Errorf("%d is below %s (%d)", uval, s.minOf.name, s.minOf.first())
		}
		if s.maxOf != nil && uval > uint64(s.maxOf.first()) {
			return 0, fmt.Errorf("%d is above %s (%d)", uval, s.maxOf.name, s.maxOf.first())
		}
		return v, nil
	}
	if s.hasMin && v < s.min {
		return 0, fmt.Errorf("%d is below the minimum %d", v, s.min)
	}
	if s.hasMax && v > s.max {
		return 0, fmt.Errorf("%d is above the maximum %d", v, s.max)
	}
	if s.maxOf != nil && v > s.maxOf.first() {
		return 0, fmt.Errorf("%d is above %s (%d)", v, s.maxOf.name, s.maxOf.first())
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
