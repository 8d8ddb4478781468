package netview

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Protocol is one line of the protocols file: a protocol's memory pool and
// its *_mem thresholds, in pages.
type Protocol struct {
	Name     string // TCP, UDP
	Sockets  int64  // sockets in use (sock_prot_inuse_get)
	Memory   int64  // pages charged to the pool (sk_memory_allocated)
	Pressure string // "yes", "no", or "NI" (no pressure state)
	Low      int64  // *_mem[0]
	PressAt  int64  // *_mem[1]: pressure is entered above it
	High     int64  // *_mem[2]
	Extra    map[string]string
}

// UnderPressure reports whether Pressure is "yes".
func (p Protocol) UnderPressure() bool { return p.Pressure == "yes" }

// protocolColumns are the columns this version knows, as the header names
// them.
var protocolColumns = []string{"protocol", "sockets", "memory", "press", "low", "pressure", "high"}

// ReadProtocols reads mount/protocols.
func ReadProtocols(mount string) ([]Protocol, error) {
	text, err := readText(filepath.Join(mount, "protocols"))
	if err != nil {
		return nil, err
	}
	ps, err := ParseProtocols(text)
	if err != nil {
		return nil, fmt.Errorf("protocols: %w", err)
	}
	return ps, nil
}

// ParseProtocols parses the protocols file: a header naming the columns,
// then one line per protocol. Columns are found by name, so new columns
// (kept in Extra) and a new order are accepted; every known column must be
// there.
func ParseProtocols(text string) ([]Protocol, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return nil, fmt.Errorf("empty")
	}
	head := strings.Fields(lines[0])
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, c := range protocolColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("no column %q in header %q", c, lines[0])
		}
	}
	var out []Protocol
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != len(head) {
			return nil, fmt.Errorf("line %q has %d fields, header %d", l, len(f), len(head))
		}
		p := Protocol{Name: f[col["protocol"]], Pressure: f[col["press"]]}
		switch p.Pressure {
		case "yes", "no", "NI":
		default:
			return nil, fmt.Errorf("bad pressure state %q", p.Pressure)
		}
		for _, x := range []struct {
			name string
			dst  *int64
		}{{"sockets", &p.Sockets}, {"memory", &p.Memory}, {"low", &p.Low}, {"pressure", &p.PressAt}, {"high", &p.High}} {
			v, err := strconv.ParseInt(f[col[x.name]], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: bad %s %q", p.Name, x.name, f[col[x.name]])
			}
			*x.dst = v
		}
		for i, h := range head {
			if !known(protocolColumns, h) {
				if p.Extra == nil {
					p.Extra = map[string]string{}
				}
				p.Extra[h] = f[i]
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func known(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Netstat is the netstat file (Linux's /proc/net/snmp and /proc/net/netstat
// format): group -> counter -> value.
type Netstat map[string]map[string]int64

// Get returns group's counter name (Get("TcpExt", "PruneCalled")).
func (n Netstat) Get(group, name string) (int64, bool) {
	v, ok := n[group][name]
	return v, ok
}

// GetKey is Get with "Group.Name" (TcpExt.PruneCalled).
func (n Netstat) GetKey(key string) (int64, bool) {
	g, name, ok := strings.Cut(key, ".")
	if !ok {
		return 0, false
	}
	return n.Get(g, name)
}

// Keys returns every counter as "Group.Name", sorted.
func (n Netstat) Keys() []string {
	var out []string
	for g, m := range n {
		for name := range m {
			out = append(out, g+"."+name)
		}
	}
	sort.Strings(out)
	return out
}

// ReadNetstat reads mount/netstat.
func ReadNetstat(mount string) (Netstat, error) {
	text, err := readText(filepath.Join(mount, "netstat"))
	if err != nil {
		return nil, err
	}
	n, err := ParseNetstat(text)
	if err != nil {
		return nil, fmt.Errorf("netstat: %w", err)
	}
	return n, nil
}

// ParseNetstat parses pairs of lines `Group: names...` / `Group: values...`.
// A group may come in several pairs (IcmpMsg does); values are integers
// (Linux prints some SNMP ones signed, e.g. Tcp MaxConn -1).
func ParseNetstat(text string) (Netstat, error) {
	n := Netstat{}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines)%2 != 0 {
		return nil, fmt.Errorf("odd number of lines (%d)", len(lines))
	}
	for i := 0; i < len(lines); i += 2 {
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || !strings.HasSuffix(names[0], ":") {
			return nil, fmt.Errorf("line %d: no group in %q", i+1, lines[i])
		}
		if len(vals) == 0 || vals[0] != names[0] {
			return nil, fmt.Errorf("line %d: group %q not followed by its values", i+1, names[0])
		}
		if len(names) != len(vals) {
			return nil, fmt.Errorf("group %s: %d names, %d values", names[0], len(names), len(vals))
		}
		g := strings.TrimSuffix(names[0], ":")
		if n[g] == nil {
			n[g] = map[string]int64{}
		}
		for j := 1; j < len(names); j++ {
			v, err := strconv.ParseInt(vals[j], 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(vals[j], 10, 64)
				if uerr != nil {
					return nil, fmt.Errorf("%s %s: bad value %q", g, names[j], vals[j])
				}
				v = int64(u)
			}
			n[g][names[j]] = v
		}
	}
	return n, nil
}

// Sockstat is the sockstat file: line label -> field -> value
// (Sockstat["TCP"]["mem"], Sockstat["sockets"]["used"]).
type Sockstat map[string]map[string]int64

// ReadSockstat reads mount/sockstat.
func ReadSockstat(mount string) (Sockstat, error) {
	text, err := readText(filepath.Join(mount, "sockstat"))
	if err != nil {
		return nil, err
	}
	s, err := ParseSockstat(text)
	if err != nil {
		return nil, fmt.Errorf("sockstat: %w", err)
	}
	return s, nil
}

// ParseSockstat parses lines `LABEL: name value name value ...`.
func ParseSockstat(text string) (Sockstat, error) {
	s := Sockstat{}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") || len(f)%2 != 1 {
			return nil, fmt.Errorf("bad line %q", l)
		}
		g := strings.TrimSuffix(f[0], ":")
		s[g] = map[string]int64{}
		for i := 1; i < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s %s: bad value %q", g, f[i], f[i+1])
			}
			s[g][f[i]] = v
		}
	}
	return s, nil
}

// Ifc is one ipifc/N directory.
type Ifc struct {
	N      int
	Device string // device name from status
	MTU    int64
	Stats  map[string]int64 // the stats file: rx_bytes, tx_bytes, ...
}

// ReadIfcs reads every ipifc/N/{status,stats}.
func ReadIfcs(mount string) ([]Ifc, error) {
	ns, err := ConvDirs(mount, "ipifc")
	if err != nil {
		return nil, err
	}
	var out []Ifc
	for _, n := range ns {
		ifc, err := ReadIfc(mount, n)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		out = append(out, ifc)
	}
	return out, nil
}

// ReadIfc reads ipifc/n/status (its first line: device NAME maxtu N ...)
// and ipifc/n/stats (name: value lines).
func ReadIfc(mount string, n int) (Ifc, error) {
	dir := filepath.Join(mount, "ipifc", strconv.Itoa(n))
	ifc := Ifc{N: n, Stats: map[string]int64{}}
	st, err := readText(filepath.Join(dir, "status"))
	if err != nil {
		return ifc, err
	}
	first, _, _ := strings.Cut(st, "\n")
	f := strings.Fields(first)
	for i := 0; i+1 < len(f); i += 2 {
		switch f[i] {
		case "device":
			ifc.Device = f[i+1]
		case "maxtu":
			ifc.MTU, _ = strconv.ParseInt(f[i+1], 10, 64)
		}
	}
	if ifc.Device == "" {
		return ifc, fmt.Errorf("ipifc/%d/status: no device in %q", n, first)
	}
	stats, err := readText(filepath.Join(dir, "stats"))
	if err != nil {
		return ifc, err
	}
	for _, l := range strings.Split(strings.TrimSuffix(stats, "\n"), "\n") {
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			if strings.TrimSpace(l) == "" {
				continue
			}
			return ifc, fmt.Errorf("ipifc/%d/stats: bad line %q", n, l)
		}
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return ifc, fmt.Errorf("ipifc/%d/stats: bad value in %q", n, l)
		}
		ifc.Stats[strings.TrimSpace(name)] = v
	}
	return ifc, nil
}
