package fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"sockfs/memctl"
	"sockfs/netstack"
)

// Qid paths are Plan 9's: proto<<17 | conv<<5 | type. proto 0 holds the
// top-level files, 1 the sysctls (conv = index in the sorted table), 2 the
// interfaces (conv = N), 3 tcp, 4 udp.
const (
	protoTop   = 0
	protoSys   = 1
	protoIpifc = 2
	protoTCP   = 3
	protoUDP   = 4

	maxConv = 1 << 12 // 12 bits of conversation index
)

// Types of the top-level files (proto 0, conv 0).
const (
	qTopDir = iota
	qSysDir
	_ // was qSysIPv4: sys/ subdirectories are numbered in proto 1 (sysDir)
	_ // was qSysCore
	qIproute
	qNetstat
	qSockstat
	qIpifcDir
	// 24.. are the files of protocols.go, cs.go, iproute.go, dns.go.
	qSnmp6     = 32 // snmp6
	qSockstat6 = 33 // sockstat6
)

// Types of the interface files (proto 2, conv N).
const (
	qIfcDir = 1 + iota
	qIfcStatus
	qIfcStats
)

func qpath(proto, conv, typ int) uint64 {
	return uint64(proto)<<17 | uint64(conv)<<5 | uint64(typ)
}

// Options configure a Tree.
type Options struct {
	// Logger receives refused writes and conversation errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// DNS are the resolvers the dns file (and cs, for names) asks through
	// the stack's own UDP, in turn; none means cs uses the host's
	// resolver and dns has nothing to ask.
	DNS []netip.AddrPort
}

// Tree is the /net tree of one stack.
type Tree struct {
	stack *netstack.Stack
	log   *slog.Logger
	root  *dirNode
	udp   *protoDir
	tcp   *protoDir
	dns   []netip.AddrPort
}

// New builds the tree over stack.
func New(stack *netstack.Stack, opts Options) *Tree {
	t := &Tree{stack: stack, log: opts.Logger, dns: opts.DNS}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.udp = newProtoDir(t, protoUDP, udpProto{stack: stack})
	t.tcp = newProtoDir(t, protoTCP, tcpProto{stack: stack})
	sys := t.sysDir()
	ipifc := t.ipifcDir()
	netstat := newText(qpath(protoTop, 0, qNetstat), "netstat", 0444, func() string {
		mib := stack.Net().MIB
		return mib.FormatSNMP(false, int(stack.Net().Sysctls.IPDefaultTTL())) + mib.FormatNetstat() + mib.FormatSNMP6Pairs()
	}, nil)
	snmp6 := newText(qpath(protoTop, 0, qSnmp6), "snmp6", 0444, func() string { return stack.Net().MIB.FormatSNMP6() }, nil)
	sockstat6 := newText(qpath(protoTop, 0, qSockstat6), "sockstat6", 0444, t.readSockstat6, nil)
	sockstat := newText(qpath(protoTop, 0, qSockstat), "sockstat", 0444, t.readSockstat, nil)
	t.root = newDir(qpath(protoTop, 0, qTopDir), "/",
		staticList(t.tcp, t.udp, ipifc, t.iprouteFile(), t.iprouteLinuxFile(), t.iprouteCacheFile(), t.arpFile(), t.ndbFile(), t.csFile(), t.dnsFile(), sockstat, sockstat6, netstat, snmp6, t.protocolsFile(), sys))
	return t
}

// Root returns the root directory (the mount's /net).
func (t *Tree) Root() Dir { return t.root }

// Logger returns the tree's logger.
func (t *Tree) Logger() *slog.Logger { return t.log }

// sysDir builds sys/ from memctl's sysctl table: a sysctl's name is its
// path below sys/ (ipv4/tcp_rmem, ipv4/route/min_pmtu, core/rmem_max, and
// module/tcp_cubic/parameters/hystart for HyStart's knobs, which Linux
// keeps in /sys/module rather than /proc/sys/net). A sysctl file's qid
// path is (protoSys, its index in the sorted table, 0); a directory's is
// (protoSys, its index among the directories, 1).
func (t *Tree) sysDir() *dirNode {
	sc := t.stack.Net().Sysctls
	files := map[string][]Node{} // directory path -> its sysctl files
	subdirs := map[string][]string{}
	for i, name := range sc.Names() {
		slash := strings.LastIndexByte(name, '/')
		if slash < 0 || i >= maxConv {
			continue
		}
		grp, leaf := name[:slash], name[slash+1:]
		s, _ := sc.Lookup(name)
		mode := fs.FileMode(0644)
		if s.ReadOnly() {
			mode = 0444
		}
		f := newText(qpath(protoSys, i, 0), leaf, mode, s.Read, nil)
		f.endAtOffset = !s.ReadsAtOffsets()
		if !s.ReadOnly() {
			f.writePos = func(_ context.Context, text string, off int64) (int, int64, error) {
				return t.writeSysctl(s, text, off)
			}
		}
		if _, seen := files[grp]; !seen {
			// A new directory: record it in each ancestor not yet seen.
			for d := grp; ; {
				files[d] = files[d] // mark seen
				parent := ""
				if j := strings.LastIndexByte(d, '/'); j >= 0 {
					parent = d[:j]
				}
				subdirs[parent] = append(subdirs[parent], d)
				if _, seen := files[parent]; seen || parent == "" {
					break
				}
				d = parent
			}
		}
		files[grp] = append(files[grp], f)
	}
	nextDir := 0
	var build func(path string) []Node
	build = func(path string) []Node {
		kids := files[path]
		dirs := subdirs[path]
		sort.Strings(dirs)
		for _, d := range dirs {
			q := qpath(protoSys, nextDir, 1)
			nextDir++
			kids = append(kids, newDir(q, d[strings.LastIndexByte(d, '/')+1:], staticList(build(d)...)))
		}
		return kids
	}
	return newDir(qpath(protoTop, 0, qSysDir), "sys", staticList(build("")...))
}

// writeSysctl is a write(2) to a sysctl file at position off: Linux's
// semantics (memctl.Sysctl.WriteAt), including the short count after the
// last value of a vector and the positions of sysctl_writes_strict=1 (a
// numeric write elsewhere than at 0 is ignored, so the rest of a short
// write, retried by stdio at the new offset, is not parsed again). It
// returns the position the next write starts from. A refusal changes
// nothing and is logged; its errno is EINVAL (ENOENT for an unknown
// congestion control, ERANGE for a module parameter too large, as in
// Linux).
func (t *Tree) writeSysctl(s *memctl.Sysctl, text string, off int64) (int, int64, error) {
	n, next, err := s.WriteAt(text, off)
	if err != nil {
		t.log.Warn("sysctl write refused", "sysctl", s.Name(), "value", text, "err", err)
		var e syscall.Errno
		if errors.As(err, &e) {
			return 0, next, e
		}
		return 0, next, syscall.EINVAL
	}
	return n, next, nil
}

func (t *Tree) readRoutes() string {
	var b strings.Builder
	for _, r := range t.stack.Routes() {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// writeRoutes (iproute.linux) takes `add CIDR [via GW] dev NAME` or
// `del CIDR`.
func (t *Tree) writeRoutes(_ context.Context, text string) error {
	err := t.routeCmd(strings.Fields(text))
	if err != nil {
		t.log.Warn("iproute write refused", "cmd", strings.TrimSpace(text), "err", err)
	}
	return err
}

func (t *Tree) routeCmd(f []string) error {
	if len(f) < 2 {
		return fmt.Errorf("short route request: %w", syscall.EINVAL)
	}
	dst, err := netip.ParsePrefix(f[1])
	if f[1] == "default" {
		// ip(8) takes the family from the gateway: `default via
		// fd00::1` is ::/0.
		dst, err = netip.MustParsePrefix("0.0.0.0/0"), nil
		for i := 2; i+1 < len(f); i++ {
			if gw, gerr := netip.ParseAddr(f[i+1]); f[i] == "via" && gerr == nil && gw.Is6() && !gw.Is4In6() {
				dst = netip.MustParsePrefix("::/0")
			}
		}
	}
	if err != nil || dst.Addr().Is4In6() {
		return fmt.Errorf("bad prefix %q: %w", f[1], syscall.EINVAL)
	}
	if dst != dst.Masked() {
		return fmt.Errorf("invalid prefix %s for its length (host bits set): %w", dst, syscall.EINVAL)
	}
	switch f[0] {
	case "del", "remove":
		// `via GW` and `dev D` may follow, as ip(8) takes them; the
		// prefix alone names the route (one per prefix here).
		for rest := f[2:]; len(rest) > 0; rest = rest[2:] {
			if len(rest) < 2 || rest[0] != "via" && rest[0] != "dev" {
				return fmt.Errorf("bad args to del (want del PREFIX [via GW] [dev D]): %w", syscall.EINVAL)
			}
		}
		return t.stack.DelRoute(dst)
	case "add":
		r := netstack.Route{Dst: dst}
		rest := f[2:]
		for len(rest) > 0 {
			if len(rest) < 2 {
				return fmt.Errorf("bad args to add: %w", syscall.EINVAL)
			}
			switch rest[0] {
			case "via":
				gw, err := netip.ParseAddr(rest[1])
				if err != nil || gw.Is4() != dst.Addr().Is4() {
					return fmt.Errorf("bad gateway %q: %w", rest[1], syscall.EINVAL)
				}
				r.Gateway = gw
			case "dev":
				for _, d := range t.stack.Devices() {
					if d.Name() == rest[1] {
						r.Dev = d
					}
				}
				if r.Dev == nil {
					return fmt.Errorf("no device %q: %w", rest[1], syscall.EINVAL)
				}
			default:
				return fmt.Errorf("bad args to add: %w", syscall.EINVAL)
			}
			rest = rest[2:]
		}
		if r.Dev == nil && r.Gateway.IsValid() {
			// No dev: the interface on whose network the gateway
			// is (fib_check_nh looks the gateway up).
			r.Dev = t.devOnNetwork(r.Gateway)
			if r.Dev == nil {
				return fmt.Errorf("gateway %s is on no interface's network: %w", r.Gateway, syscall.ENETUNREACH)
			}
		}
		if r.Dev == nil {
			return fmt.Errorf("add needs dev or via: %w", syscall.EINVAL)
		}
		return t.stack.AddRoute(r)
	}
	return fmt.Errorf("unknown route request %q: %w", f[0], syscall.EINVAL)
}

// devOnNetwork returns the device one of whose networks (an address with
// its prefix, not a host address) contains a, or nil.
func (t *Tree) devOnNetwork(a netip.Addr) *netstack.NetDevice {
	for _, d := range t.stack.Devices() {
		for _, p := range d.Addrs() {
			if p.Bits() < p.Addr().BitLen() && p.Contains(a) {
				return d
			}
		}
	}
	return nil
}

// readSockstat6 is /proc/net/sockstat6: the conversations bound to an
// IPv6 address (or ::, dual-stack ones included, as Linux counts an
// AF_INET6 socket there whatever it carries) and IPv6 reassembly. Mirrors
// sockstat6_seq_show.
func (t *Tree) readSockstat6() string {
	tcp6, udp6 := t.tcp.counts6(), t.udp.counts6()
	q, mem := t.stack.Frag6Stats()
	return fmt.Sprintf("TCP6: inuse %d\nUDP6: inuse %d\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse %d memory %d\n", tcp6, udp6, q, mem)
}

// readSockstat is /proc/net/sockstat. "sockets: used" counts the
// conversations users hold open (Linux counts struct sockets there,
// sock_inuse_get); each protocol's inuse is the stack's count of sockets
// in its lookup tables (sock_prot_inuse_get): TCP's listeners and
// connections, calls not yet accepted and orphans still closing included,
// TIME_WAIT and closed conversations not; UDP's bound sockets.
func (t *Tree) readSockstat() string {
	n := t.stack.Net()
	return n.Sockstat(memctl.SockstatInfo{
		SocketsUsed: t.tcp.used() + t.udp.used(),
		TCPInuse:    int(n.TCP.Inuse()),
		UDPInuse:    int(n.UDP.Inuse()),
	})
}

// ipifcDir lists one directory per device: N is the position in the
// stack's device list (0 = the first device).
func (t *Tree) ipifcDir() *dirNode {
	cache := map[int]*dirNode{}
	ifc := func(n int) *dirNode {
		if d, ok := cache[n]; ok {
			return d
		}
		dev := func() *netstack.NetDevice {
			ds := t.stack.Devices()
			if n < len(ds) {
				return ds[n]
			}
			return nil
		}
		status := newText(qpath(protoIpifc, n, qIfcStatus), "status", 0444, func() string {
			d := dev()
			if d == nil {
				return ""
			}
			st := d.Device().Stats().Snapshot()
			var b strings.Builder
			fmt.Fprintf(&b, "device %s maxtu %d pktin %d pktout %d errin %d errout %d\n",
				d.Name(), d.MTU(), st.RxPackets, st.TxPackets, st.RxErrors, st.TxErrors)
			for _, a := range d.Addrs() {
				// Plan 9's ipifcstate line: local, mask, remote (the
				// network, or a point-to-point address's peer), valid
				// and preferred lifetimes, five fields, as libip's
				// readipifc wants them (it stops at a shorter line).
				// The mask is %M of Plan 9's v4-in-v6 mask (a /24 is
				// /120, as in iproute); lifetimes are ~0, permanent.
				remote, bits := a.Masked().Addr(), a.Bits()
				if peer, ok := d.Peer(a.Addr()); ok {
					remote, bits = peer.Addr(), peer.Bits()
				}
				if a.Addr().Is4() {
					bits += 96
				}
				fmt.Fprintf(&b, "\t%-40s %-10s %-40s %-12d %-12d\n", a.Addr(), "/"+strconv.Itoa(bits), remote, uint32(math.MaxUint32), uint32(math.MaxUint32))
			}
			return b.String()
		}, nil)
		stats := newText(qpath(protoIpifc, n, qIfcStats), "stats", 0444, func() string {
			d := dev()
			if d == nil {
				return ""
			}
			st := d.Device().Stats().Snapshot()
			return fmt.Sprintf("rx_packets: %d\nrx_bytes: %d\nrx_errors: %d\nrx_dropped: %d\n"+
				"tx_packets: %d\ntx_bytes: %d\ntx_errors: %d\ntx_dropped: %d\nrx_frame_errors: %d\n",
				st.RxPackets, st.RxBytes, st.RxErrors, st.RxDropped,
				st.TxPackets, st.TxBytes, st.TxErrors, st.TxDropped, st.RxFrameErrors)
		}, nil)
		d := newDir(qpath(protoIpifc, n, qIfcDir), strconv.Itoa(n), staticList(t.ipifcCtl(n, dev), status, stats, t.impairFile(n, dev)))
		cache[n] = d
		return d
	}
	var mu sync.Mutex
	return newDir(qpath(protoTop, 0, qIpifcDir), "ipifc", func() []Node {
		mu.Lock()
		defer mu.Unlock()
		var out []Node
		for i := range t.stack.Devices() {
			if i < maxConv {
				out = append(out, ifc(i))
			}
		}
		return out
	})
}
