package netview

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Conv is one conversation directory, tcp/N or udp/N.
type Conv struct {
	Proto  string // "tcp" or "udp"
	N      int
	State  string // first word of status: Established, Listen, Open, Closed, ...
	Status Status // the name value pairs of status after the state
	Local  Addr
	Remote Addr
	Mem    Skmem
}

// Name is "tcp/N" or "udp/N".
func (c Conv) Name() string { return c.Proto + "/" + strconv.Itoa(c.N) }

// InUse reports whether the slot holds a live conversation: any state but
// Closed. (A released conversation keeps its addresses until the slot is
// reused, so a port alone says nothing.)
func (c Conv) InUse() bool { return c.State != "Closed" }

// Field returns the integer status field called name (qin, qout, cwnd, ...).
func (c Conv) Field(name string) (int64, bool) { return c.Status.Get(name) }

// ReadConv reads mount/proto/n/{status,local,remote,mem}.
func ReadConv(mount, proto string, n int) (Conv, error) {
	dir := filepath.Join(mount, proto, strconv.Itoa(n))
	c := Conv{Proto: proto, N: n}
	st, err := readText(filepath.Join(dir, "status"))
	if err != nil {
		return c, err
	}
	if c.State, c.Status, err = ParseStatus(st); err != nil {
		return c, fmt.Errorf("%s/status: %w", c.Name(), err)
	}
	for _, f := range []struct {
		name string
		dst  *Addr
	}{{"local", &c.Local}, {"remote", &c.Remote}} {
		text, err := readText(filepath.Join(dir, f.name))
		if err != nil {
			return c, err
		}
		if *f.dst, err = ParseAddr(text); err != nil {
			return c, fmt.Errorf("%s/%s: %w", c.Name(), f.name, err)
		}
	}
	mem, err := readText(filepath.Join(dir, "mem"))
	if err != nil {
		return c, err
	}
	if c.Mem, err = ParseSkmem(mem); err != nil {
		return c, fmt.Errorf("%s/mem: %w", c.Name(), err)
	}
	return c, nil
}

// Status is the ordered name value pairs of a status file. Values are kept
// as text; Get parses the integer ones.
type Status struct {
	Names  []string
	Values []string
}

// Get returns the integer value of name, if present and an integer.
func (s Status) Get(name string) (int64, bool) {
	for i, n := range s.Names {
		if n == name {
			v, err := strconv.ParseInt(s.Values[i], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// knownIntFields are the status fields that must be integers
// (NET-FILES.md); any other field is kept as it is.
var knownIntFields = map[string]bool{
	"qin": true, "qout": true, "srtt": true, "rttvar": true, "rto": true, "cwnd": true,
	"ssthresh": true, "snd_wnd": true, "rcv_wnd": true, "rcv_ssthresh": true,
	"window_clamp": true, "mss": true, "retrans": true,
}

// ParseStatus parses a status line: a state word, then name value pairs.
func ParseStatus(text string) (state string, st Status, err error) {
	text = strings.TrimSuffix(text, "\n")
	if strings.Contains(text, "\n") {
		return "", st, fmt.Errorf("more than one line in %q", text)
	}
	f := strings.Fields(text)
	if len(f) == 0 {
		return "", st, fmt.Errorf("empty status")
	}
	state, f = f[0], f[1:]
	if len(f)%2 != 0 {
		return "", st, fmt.Errorf("odd number of name value words in %q", text)
	}
	seen := map[string]bool{}
	for i := 0; i < len(f); i += 2 {
		name, val := f[i], f[i+1]
		if seen[name] {
			return "", st, fmt.Errorf("field %q twice", name)
		}
		seen[name] = true
		if knownIntFields[name] {
			if _, err := strconv.ParseInt(val, 10, 64); err != nil {
				return "", st, fmt.Errorf("field %s: bad number %q", name, val)
			}
		}
		st.Names = append(st.Names, name)
		st.Values = append(st.Values, val)
	}
	return state, st, nil
}

// Addr is a Plan 9 address, addr!port. Host is "::" when unset.
type Addr struct {
	Host string
	Port uint16
}

// ParseAddr parses `addr!port\n`.
func ParseAddr(text string) (Addr, error) {
	text = strings.TrimSuffix(text, "\n")
	host, port, ok := strings.Cut(text, "!")
	if !ok || host == "" {
		return Addr{}, fmt.Errorf("bad address %q", text)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Addr{}, fmt.Errorf("bad port in %q", text)
	}
	return Addr{Host: host, Port: uint16(p)}, nil
}

// Unset reports whether neither address nor port is set.
func (a Addr) Unset() bool { return (a.Host == "::" || a.Host == "") && a.Port == 0 }

// String is ss's form, host:port, with "*" for an unset host.
func (a Addr) String() string {
	h := a.Host
	if h == "::" || h == "" {
		h = "*"
	} else if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(a.Port))
}

// Skmem is the mem file: ss -m's skmem:(...).
type Skmem struct {
	R, RB, T, TB, F, W, O, BL, D int64
	Extra                        map[string]int64 // fields this version does not know
	Text                         string           // the line as read, without the newline
}

// skmemKeys are the known fields, in file order.
var skmemKeys = []string{"r", "rb", "t", "tb", "f", "w", "o", "bl", "d"}

func (m *Skmem) field(key string) *int64 {
	switch key {
	case "r":
		return &m.R
	case "rb":
		return &m.RB
	case "t":
		return &m.T
	case "tb":
		return &m.TB
	case "f":
		return &m.F
	case "w":
		return &m.W
	case "o":
		return &m.O
	case "bl":
		return &m.BL
	case "d":
		return &m.D
	}
	return nil
}

// Get returns the field called key (r, rb, t, tb, f, w, o, bl, d, or an
// extra one).
func (m Skmem) Get(key string) (int64, bool) {
	if p := m.field(key); p != nil {
		return *p, true
	}
	v, ok := m.Extra[key]
	return v, ok
}

// SkmemKeys returns the known field names in file order.
func SkmemKeys() []string { return append([]string(nil), skmemKeys...) }

// ParseSkmem parses `skmem:(r0,rb0,t0,tb0,f0,w0,o0,bl0,d0)`. Every known
// field must be present exactly once; unknown ones go to Extra.
func ParseSkmem(text string) (Skmem, error) {
	line := strings.TrimSuffix(text, "\n")
	m := Skmem{Text: line}
	body, ok := strings.CutPrefix(line, "skmem:(")
	if !ok || !strings.HasSuffix(body, ")") {
		return m, fmt.Errorf("not skmem:(...): %q", line)
	}
	body = strings.TrimSuffix(body, ")")
	seen := map[string]bool{}
	for _, item := range strings.Split(body, ",") {
		i := strings.IndexFunc(item, func(r rune) bool { return r == '-' || (r >= '0' && r <= '9') })
		if i <= 0 {
			return m, fmt.Errorf("bad skmem item %q", item)
		}
		key := item[:i]
		v, err := strconv.ParseInt(item[i:], 10, 64)
		if err != nil {
			return m, fmt.Errorf("bad skmem value in %q", item)
		}
		if seen[key] {
			return m, fmt.Errorf("skmem field %q twice", key)
		}
		seen[key] = true
		if p := m.field(key); p != nil {
			*p = v
			continue
		}
		if m.Extra == nil {
			m.Extra = map[string]int64{}
		}
		m.Extra[key] = v
	}
	for _, k := range skmemKeys {
		if !seen[k] {
			return m, fmt.Errorf("skmem field %q missing in %q", k, line)
		}
	}
	return m, nil
}
