package fs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unicode"
)

// trimCmd drops at most one trailing newline (Plan 9's parsecmd).
func trimCmd(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSpace(s)
}

// tokenize splits a ctl command on blanks and tabs, with rc-style single
// quotes (” inside quotes is a quote). Mirrors tokenize(2).
func tokenize(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			cur.WriteByte('\'')
			i++
		case c == '\'':
			in, have = !in, true
		case !in && (c == ' ' || c == '\t' || c == '\r'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if in {
		return nil, fmt.Errorf("unbalanced quote: %w", syscall.EINVAL)
	}
	if have {
		out = append(out, cur.String())
	}
	return out, nil
}

// ctlWrite runs one ctl command (one write = one command; no line
// splitting). A failure is returned as an errno and recorded in err.
func ctlWrite(ctx context.Context, r *ref, text string) error {
	f, err := tokenize(strings.TrimSuffix(text, "\n"))
	if err == nil && len(f) == 0 {
		err = fmt.Errorf("short control request: %w", syscall.EINVAL)
	}
	if err == nil {
		ctx = context.WithValue(ctx, ctlProtoKey{}, r.s.pd)
		err = ctlRun(context.WithValue(ctx, ctlOwnerKey{}, r.s.owner), r.conv, f)
	}
	if err != nil && Errno(err) != syscall.EINTR {
		r.s.setErr(r.conv, err, "ctl "+strings.TrimSpace(text))
	}
	return err
}

// ctlProtoKey carries the conversation's protocol directory, and through
// it the tree, to the verbs: connect resolves names as its cs does and
// takes restricted ports in the protocol's turn.
type ctlProtoKey struct{}

// ctlOwnerKey carries the conversation owner's uid to the verbs: a
// conversation owned by root acts with CAP_NET_ADMIN (TCP_CONGESTION
// outside tcp_allowed_congestion_control).
type ctlOwnerKey struct{}

// ctlPrivileged reports whether the conversation belongs to root.
func ctlPrivileged(ctx context.Context) bool {
	uid, ok := ctx.Value(ctlOwnerKey{}).(uint32)
	return ok && uid == 0
}

func ctlRun(ctx context.Context, c Conv, f []string) error {
	switch f[0] {
	case "connect":
		if len(f) < 2 || len(f) > 3 {
			return fmt.Errorf("bad args to connect: %w", syscall.EINVAL)
		}
		raddr, err := parseAddr(f[1], false)
		if err != nil {
			if raddr, err = resolveAddr(ctx, f[1], err); err != nil {
				return err
			}
		}
		var laddr netip.AddrPort
		restricted := isRestricted(f[1])
		if len(f) == 3 {
			local, r := strings.CutSuffix(f[2], "!r")
			if laddr, err = parseAddr(local, true); err != nil {
				return err
			}
			restricted = restricted || r
		}
		if restricted && laddr.Port() == 0 {
			pd, _ := ctx.Value(ctlProtoKey{}).(*protoDir)
			return connectRestricted(ctx, c, pd, raddr, laddr)
		}
		return c.Connect(ctx, raddr, laddr)
	case "announce", "bind":
		if len(f) != 2 {
			return fmt.Errorf("bad args to %s: %w", f[0], syscall.EINVAL)
		}
		laddr, err := parseAddr(f[1], true)
		if err != nil {
			return err
		}
		if f[0] == "bind" {
			return c.Bind(laddr)
		}
		return c.Announce(ctx, laddr)
	case "ignoreadvice":
		// ip(3): ICMP advice (unreachables) no longer aborts the
		// conversation or sets its error.
		a, ok := c.(interface{ SetIgnoreAdvice() })
		if !ok {
			break
		}
		if len(f) != 1 {
			return fmt.Errorf("bad args to ignoreadvice: %w", syscall.EINVAL)
		}
		a.SetIgnoreAdvice()
		return nil
	case "hangup":
		if len(f) != 1 {
			return fmt.Errorf("bad args to hangup: %w", syscall.EINVAL)
		}
		return c.Hangup()
	case "close":
		if len(f) != 1 {
			return fmt.Errorf("bad args to close: %w", syscall.EINVAL)
		}
		return c.Close()
	case "rcvbuf", "sndbuf":
		if len(f) != 2 {
			return fmt.Errorf("bad args to %s: %w", f[0], syscall.EINVAL)
		}
		return setBuf(c, f[0], f[1])
	}
	return c.Ctl(ctx, f)
}

// Restricted ports: a dial string ending in !r (tcp!host!513!r, or a
// local port of `[laddr!]0!r`) asks Plan 9 for a local port from 600 to
// 1023, which its setlport hands out in turn per protocol (the ports BSD
// services such as rlogin trusted). Any other port keeps the stack's
// ephemeral range.
const rportLo, rportHi = 600, 1024

// isRestricted reports whether a remote dial-string address carries the
// !r word after its port (a local one ends in it: `[laddr!]lport!r`).
func isRestricted(s string) bool {
	words := strings.Split(s, "!")
	return len(words) > 2 && slices.Contains(words[2:], "r")
}

// connectRestricted connects c from the next free port of the restricted
// range, as setlport's restricted branch picks one: the ports are tried in
// turn from where the protocol's last pick stopped, a port bound by another
// conversation (EADDRINUSE from the bind, which leaves c as it was) is
// passed over, and "address in use" is the answer when all 424 are taken.
func connectRestricted(ctx context.Context, c Conv, pd *protoDir, raddr, laddr netip.AddrPort) error {
	a := laddr.Addr()
	if !a.IsValid() || a.IsUnspecified() {
		a = netip.IPv4Unspecified()
		if raddr.Addr().Is6() {
			a = netip.IPv6Unspecified()
		}
	}
	var next *atomic.Uint32
	if pd != nil {
		next = &pd.nextrport
	} else {
		next = new(atomic.Uint32)
	}
	const n = rportHi - rportLo
	start := next.Load()
	for i := uint32(0); i < n; i++ {
		p := rportLo + (start+i)%n
		err := c.Connect(ctx, raddr, netip.AddrPortFrom(a, uint16(p)))
		if Errno(err) == syscall.EADDRINUSE {
			continue
		}
		next.Store((p - rportLo + 1) % n)
		return err
	}
	return fmt.Errorf("no free restricted port: %w", syscall.EADDRINUSE)
}

// parseAddr parses a dial-string address: addr!port (trailing !words
// ignored; addr IPv4 or IPv6, as in tcp!fd00:5f::1!80, optionally in
// brackets, tcp![fd00:5f::1]!80), host:port, [v6]:port, *!port, or (local
// only) a bare port. An unset local address is the IPv6 wildcard ::, which
// takes both families (Plan 9's announce * does, its stack being IPv6 with
// IPv4 mapped; the v6only verb restricts it). Names are left to
// resolveAddr.
func parseAddr(s string, local bool) (netip.AddrPort, error) {
	var host, port string
	switch {
	case strings.Contains(s, "!"):
		parts := strings.Split(s, "!")
		host, port = parts[0], parts[1]
	case strings.HasPrefix(s, "["):
		i := strings.Index(s, "]:")
		if i < 0 {
			return netip.AddrPort{}, fmt.Errorf("malformed address %q: %w", s, syscall.EINVAL)
		}
		host, port = s[1:i], s[i+2:]
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	case local:
		port = s
	default:
		return netip.AddrPort{}, fmt.Errorf("malformed address %q: %w", s, syscall.EINVAL)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad numeric port %q: %w", port, syscall.EINVAL)
	}
	var a netip.Addr
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if host != "" && host != "*" {
		if a, err = netip.ParseAddr(host); err != nil || a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("bad ip address syntax %q: %w", host, syscall.EINVAL)
		}
		a = a.Unmap()
	} else if !local {
		return netip.AddrPort{}, fmt.Errorf("malformed address %q: %w", s, syscall.EINVAL)
	} else {
		a = netip.IPv6Unspecified()
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// resolveAddr retries a remote address parseAddr refused as cs would
// translate it: a host name (resolved by the daemon) or a service name, in
// `host!service` or `host:service` form. perr is parseAddr's error, returned
// if s is not of that form or does not translate. It may block while the
// name is resolved; ctx cancels it.
func resolveAddr(ctx context.Context, s string, perr error) (netip.AddrPort, error) {
	host, svc, ok := strings.Cut(s, "!")
	if !ok {
		if strings.Count(s, ":") != 1 {
			return netip.AddrPort{}, perr
		}
		host, svc, _ = strings.Cut(s, ":")
	}
	if i := strings.Index(svc, "!"); i >= 0 {
		svc = svc[:i]
	}
	if host == "" || host == "*" || svc == "" {
		return netip.AddrPort{}, perr
	}
	t := &Tree{}
	if pd, _ := ctx.Value(ctlProtoKey{}).(*protoDir); pd != nil {
		t = pd.t
	}
	lines, err := t.csTranslate(ctx, "", "tcp!"+host+"!"+svc)
	if err != nil {
		if Errno(err) == syscall.EINTR || strings.ContainsFunc(host, unicode.IsLetter) {
			return netip.AddrPort{}, err // a name cs could not translate: its reason
		}
		return netip.AddrPort{}, perr
	}
	_, dial, _ := strings.Cut(lines[0], " ")
	return parseAddr(dial, false)
}

// errStrings are the Plan 9 error texts of the errnos (NET-FILES.md).
var errStrings = map[syscall.Errno]string{
	syscall.ECONNREFUSED:  "connection refused",
	syscall.ETIMEDOUT:     "connection timed out",
	syscall.ECONNRESET:    "connection reset",
	syscall.EADDRINUSE:    "address in use",
	syscall.EADDRNOTAVAIL: "not a local IP address",
	syscall.EHOSTUNREACH:  "no route",
	syscall.ENETUNREACH:   "no route",
	syscall.EPIPE:         "i/o on hungup channel",
	syscall.EINTR:         "interrupted",
	syscall.EAGAIN:        "would block",
	syscall.EBUSY:         "no free devices",
	syscall.EACCES:        "permission denied",
	syscall.EISCONN:       "connection in use",
	syscall.ENOTCONN:      "not connected",
	syscall.EMSGSIZE:      "message too long",
}

// ErrText is the err file's text for err: the message the stack or the
// parser gave (Plan 9 strings such as "unknown control request"), else the
// Plan 9 string of the errno. The 9P server sends it as the error string
// of 9P2000 and 9P2000.u.
func ErrText(err error) string {
	e := Errno(err)
	var bare syscall.Errno
	if !errors.As(err, &bare) || err.Error() == bare.Error() {
		if s, ok := errStrings[e]; ok {
			return s
		}
		return e.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "+e.Error()); i > 0 {
		msg = msg[:i]
	}
	return msg
}
