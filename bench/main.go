//go:build linux

// Command bench is sockfs's side-by-side benchmark suite (issues #7 and
// #14), run by `make bench` as root. It measures, in one invocation and with
// the same kernel-side client, payloads and durations for every system:
//
//  1. kernel <-> kernel TCP over a veth pair between two namespaces (the
//     reference ceiling; the veth's offloads on: TSO, GRO, checksums);
//  2. kernel <-> gVisor netstack on a plain TUN, no offloads (system gvisor;
//     bench/peers/gvisor, a module of its own);
//  3. kernel <-> sockfs Go API on a TUN without offloads (sockfs-nooffload,
//     tun.Config.DisableOffload, as `sockfs serve --offload=false`);
//  4. kernel <-> gVisor in its best offload configuration, as runsc runs it
//     (gvisor-offload): fdbased on an AF_PACKET socket with virtio-net
//     headers on one end of a veth pair, GSO 64 KiB, GRO, recvmmsg;
//  5. kernel <-> sockfs Go API on a TUN with offloads (sockfs;
//     bench/peers/sockfs);
//  6. kernel <-> sockfs through the FUSE data file and 9P (file; when
//     `sockfs serve` has --mount and --9p; otherwise the cells say so);
//
// plus two ceilings with no stack: the TUN device's packet rate
// (tunraw; bench/peers/tunraw) and the file transports' throughput on a
// null file (file-null; bench/peers/nullfs read and written by the files
// peer exactly as the data files are). The TUN systems run at MTU 1500 and
// 65000. Everything runs in network namespaces the harness creates
// (addresses from 198.18.0.0/15) and removes afterwards, also on error or
// SIGINT/SIGTERM; every load loop is bounded in bytes and seconds. Results
// go to bench/results/latest.{json,md}.
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// allSystems are the -systems names, in the order they run.
var allSystems = []string{"kernel", "gvisor", "sockfs-nooffload", "gvisor-offload", "sockfs", "kernel6", "sockfs6", "file", "file-null", "tunraw"}

// stackSystems run the benchmark protocol on a stack behind a link the
// harness sets up (system); the others have their own runners.
var stackSystems = []string{"kernel", "gvisor", "sockfs-nooffload", "gvisor-offload", "sockfs", "kernel6", "sockfs6"}

// v6Systems are the IPv6 twins of kernel and sockfs (issue #17): the same
// peers and links over IPv6, at MTU 1500 only.
var v6Systems = map[string]bool{"kernel6": true, "sockfs6": true}

// options are the command-line settings; the defaults keep `make bench`
// under 10 minutes on a 2-core machine.
type options struct {
	dur     time.Duration // per bulk, RR and CRR run
	reps    int
	conns   int    // idle connections for the memory test
	limit   uint64 // bytes per bulk run, all streams together
	crrMax  int
	rrMax   int
	mtus    []int
	systems map[string]bool
	out     string
	root    string // the sockfs module root
	readme  string // README to update between the bench markers; "" = none
	timeout time.Duration
}

func main() {
	var o options
	var mtus, systems string
	flag.DurationVar(&o.dur, "dur", time.Second, "duration of each bulk, request/response and connect-rate run")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of every measurement (the median is reported)")
	flag.IntVar(&o.conns, "conns", 10000, "idle connections for the memory-per-connection test")
	limit := flag.Int64("limit", 8<<30, "most bytes moved by one bulk run")
	flag.IntVar(&o.crrMax, "crr-max", 5000, "most connections per connect-rate run")
	flag.IntVar(&o.rrMax, "rr-max", 200000, "most round trips per request/response run")
	flag.StringVar(&mtus, "mtus", "1500,65000", "MTUs to run the systems at")
	flag.StringVar(&systems, "systems", strings.Join(allSystems, ","), "systems to run")
	flag.StringVar(&o.out, "out", "bench/results", "directory for latest.json and latest.md")
	flag.StringVar(&o.root, "root", ".", "root of the sockfs module")
	flag.StringVar(&o.readme, "readme", "", "README whose generated Performance tables to replace (between the bench:begin/end markers)")
	flag.DurationVar(&o.timeout, "timeout", 14*time.Minute, "abort (cleaning up) after this long")
	render := flag.String("render", "", "measure nothing: recompute the goals of this latest.json and write the tables (-out, -readme) again")
	flag.Parse()
	o.limit = uint64(*limit)
	for _, m := range strings.Split(mtus, ",") {
		var v int
		if _, err := fmt.Sscan(m, &v); err != nil || v < 576 || v > 65535 {
			fatal(fmt.Errorf("bad -mtus entry %q", m))
		}
		o.mtus = append(o.mtus, v)
	}
	o.systems = map[string]bool{}
	for _, s := range strings.Split(systems, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSystems, s) {
			fatal(fmt.Errorf("unknown -systems entry %q (known: %s)", s, strings.Join(allSystems, ",")))
		}
		o.systems[s] = true
	}
	if *render != "" {
		if err := rerender(o, *render); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if os.Geteuid() != 0 {
		fatal(fmt.Errorf("needs root (network namespaces and TUN devices)"))
	}

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigc
		fmt.Fprintf(os.Stderr, "bench: %v: cleaning up\n", s)
		cleanAll()
		os.Exit(130)
	}()
	time.AfterFunc(o.timeout, func() {
		fmt.Fprintf(os.Stderr, "bench: over -timeout %v: cleaning up\n", o.timeout)
		cleanAll()
		os.Exit(124)
	})
	removeStale()
	err := run(o)
	cleanAll()
	if err != nil {
		fatal(err)
	}
}

// rerender reads the results of an earlier run from file, recomputes its
// goals with this build's goal list and writes its tables again, so that
// a goal added after a run is evaluated on that run's samples.
func rerender(o options, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	res := &results{}
	if err := json.Unmarshal(b, res); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	set := res.Settings
	reps, _ := set["reps"].(float64)
	dur, _ := set["duration_s"].(float64)
	limit, _ := set["bulk_limit_bytes"].(float64)
	mtus, _ := set["mtus"].([]any)
	if reps == 0 || dur == 0 || len(mtus) == 0 {
		return fmt.Errorf("%s: settings without reps, duration_s or mtus", file)
	}
	o.reps, o.dur, o.limit = int(reps), time.Duration(dur*float64(time.Second)), uint64(limit)
	o.mtus = nil
	for _, m := range mtus {
		v, _ := m.(float64)
		o.mtus = append(o.mtus, int(v))
	}
	// The -systems of that run, from the systems its cells belong to
	// (write updates the README only for a full run).
	cellSystem := map[string]string{"file": "sockfs-fuse", "file-null": "fuse-null"}
	o.systems = map[string]bool{}
	for _, s := range allSystems {
		want := cmp.Or(cellSystem[s], s)
		o.systems[s] = slices.ContainsFunc(res.Cells, func(c *Cell) bool { return c.System == want })
	}
	r := &runner{o: o, res: res}
	r.goals()
	return r.write()
}

func fatal(err error) {
	cleanAll()
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// results is what latest.json holds.
type results struct {
	Started  time.Time         `json:"started"`
	Seconds  float64           `json:"seconds"`
	Machine  map[string]string `json:"machine"`
	Settings map[string]any    `json:"settings"`
	Cells    []*Cell           `json:"cells"`
	Goals    []Goal            `json:"goals"`
}

type runner struct {
	o    options
	bins map[string]string // peer name -> binary
	res  *results
}

func (r *runner) add(c *Cell) *Cell {
	c.summarize()
	r.res.Cells = append(r.res.Cells, c)
	return c
}

func (r *runner) cell(system string, mtu int, metric string) *Cell {
	for _, c := range r.res.Cells {
		if c.System == system && c.MTU == mtu && c.Metric == metric {
			return c
		}
	}
	return nil
}

func run(o options) error {
	start := time.Now()
	r := &runner{o: o, res: &results{Started: start.UTC(), Machine: machine(), Settings: map[string]any{
		"duration_s": o.dur.Seconds(), "reps": o.reps, "idle_conns": o.conns, "bulk_limit_bytes": o.limit,
		"crr_max": o.crrMax, "rr_max": o.rrMax, "mtus": o.mtus, "client": "Go net (kernel TCP) in the client namespace, 256 KiB writes/reads",
	}}}
	tmp, err := tempDir("sockfs-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := r.build(tmp); err != nil {
		return err
	}
	for _, mtu := range o.mtus {
		var systems []string
		for _, sys := range stackSystems {
			if o.systems[sys] && (!v6Systems[sys] || mtu == 1500) {
				systems = append(systems, sys)
			}
		}
		// Rounds: each system is measured once per round, one after the
		// other, so that what drifts on a shared machine during the run
		// touches every system alike, and a goal can compare two
		// systems round by round (pairedRatio).
		fileErr := map[string]error{}
		for round := range o.reps {
			logf("MTU %d round %d of %d", mtu, round+1, o.reps)
			for _, sys := range systems {
				r.traffic(sys, mtu)
			}
			if o.systems["file"] {
				r.fileTraffic(mtu, fileErr)
			}
		}
		for _, sys := range systems {
			r.idleMemory(sys, mtu)
		}
		if o.systems["file"] {
			r.fileNotes(mtu, fileErr)
		}
		if o.systems["tunraw"] {
			r.tunCeiling(mtu)
		}
	}
	if o.systems["file-null"] {
		r.fileCeilings()
	}
	r.goals()
	r.res.Seconds = time.Since(start).Seconds()
	return r.write()
}

// build compiles the peers: the main module's three, and the gVisor peer
// in its own module (-mod=mod lets it follow go.mod changes in sockfs,
// which it reaches through a replace directive).
func (r *runner) build(dir string) error {
	r.bins = map[string]string{}
	t0 := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./bench/peers/sockfs", "./bench/peers/kernel", "./bench/peers/tunraw")
	cmd.Dir = r.o.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build peers: %v\n%s", err, out)
	}
	for _, n := range []string{"sockfs", "kernel", "tunraw"} {
		r.bins[n] = filepath.Join(dir, n)
	}
	r.bins["sockfs-nooffload"] = r.bins["sockfs"] // with -offload=false
	r.bins["sockfs6"], r.bins["kernel6"] = r.bins["sockfs"], r.bins["kernel"]
	if r.o.systems["file-null"] {
		cmd = exec.Command("go", "build", "-o", dir+"/", "./bench/peers/files", "./bench/peers/nullfs")
		cmd.Dir = r.o.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build file peer and nullfs: %v\n%s", err, out)
		}
		r.bins["files"] = filepath.Join(dir, "files")
		r.bins["nullfs"] = filepath.Join(dir, "nullfs")
	}
	if r.o.systems["file"] {
		cmd = exec.Command("go", "build", "-o", dir+"/", "./bench/peers/files")
		cmd.Dir = r.o.root
		out, err := cmd.CombinedOutput()
		if err == nil {
			cmd = exec.Command("go", "build", "-o", filepath.Join(dir, "daemon"), "./cmd/sockfs")
			cmd.Dir = r.o.root
			out, err = cmd.CombinedOutput()
		}
		if err != nil {
			return fmt.Errorf("build file peer and sockfs: %v\n%s", err, out)
		}
		r.bins["files"] = filepath.Join(dir, "files")
		r.bins["daemon"] = filepath.Join(dir, "daemon")
	}
	if r.o.systems["gvisor"] || r.o.systems["gvisor-offload"] {
		cmd = exec.Command("go", "build", "-mod=mod", "-o", filepath.Join(dir, "gvisor"), ".")
		cmd.Dir = filepath.Join(r.o.root, "bench/peers/gvisor")
		if out, err := cmd.CombinedOutput(); err != nil {
			// Not fatal: the gVisor cells say why.
			fmt.Fprintf(os.Stderr, "bench: build gVisor peer: %v\n%s", err, out)
		} else {
			r.bins["gvisor"] = filepath.Join(dir, "gvisor")
			r.bins["gvisor-offload"] = r.bins["gvisor"] // with -mode packet
		}
	}
	logf("built peers in %.1fs", time.Since(t0).Seconds())
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// metric names, units and table labels, in table order.
var metrics = []struct{ key, unit, label string }{
	{"bulk_k2p_1", "Gbit/s", "bulk kernel→peer, 1 stream (Gbit/s)"},
	{"bulk_k2p_4", "Gbit/s", "bulk kernel→peer, 4 streams (Gbit/s)"},
	{"bulk_p2k_1", "Gbit/s", "bulk peer→kernel, 1 stream (Gbit/s)"},
	{"bulk_p2k_4", "Gbit/s", "bulk peer→kernel, 4 streams (Gbit/s)"},
	{"rr_p50", "us", "1-byte request/response p50 (µs)"},
	{"rr_p99", "us", "1-byte request/response p99 (µs)"},
	{"crr", "conn/s", "connection set-up rate (connect + 1 B each way + close, conn/s)"},
	{"idle_heap", "B/conn", "Go heap per idle established connection (B)"},
	{"idle_rss", "B/conn", "RSS per idle established connection (B)"},
	{"idle_slab", "B/conn", "kernel slab per idle connection end (B, system-wide)"},
	{"cpu_k2p", "CPU-s/GB", "peer CPU per GB received (CPU-s/GB)"},
	{"cpu_p2k", "CPU-s/GB", "peer CPU per GB sent (CPU-s/GB)"},
	{"mcpu_k2p", "CPU-s/GB", "machine CPU per GB kernel→peer, 1 stream (all CPUs: kernel client, peer, softirq; CPU-s/GB)"},
	{"mcpu_p2k", "CPU-s/GB", "machine CPU per GB peer→kernel, 1 stream (all CPUs: kernel client, peer, softirq; CPU-s/GB)"},
	{"allocs_pkt", "allocs/pkt", "peer allocations per wire packet (bulk, both ways)"},
}

func unitOf(key string) string {
	for _, m := range metrics {
		if m.key == key {
			return m.unit
		}
	}
	return ""
}

// sameStack maps a system to the one running the same stack on another
// link configuration (whose idle-memory figures stand for both).
var sameStack = map[string]string{"gvisor-offload": "gvisor", "sockfs-nooffload": "sockfs", "kernel6": "kernel", "sockfs6": "sockfs"}

// peerAddr is the address the peer of system listens on: the far end of
// the veth for the kernel, the stack behind the TUN otherwise.
func peerAddr(system string) netip.Addr {
	switch system {
	case "kernel":
		return netip.MustParseAddr("198.18.1.2")
	case "kernel6":
		return netip.MustParseAddr("fd00:5f:1::2")
	case "sockfs6":
		return netip.MustParseAddr("fd00:5f::2")
	}
	return netip.MustParseAddr("198.18.0.2")
}

// fail records err in the cells of system at mtu that have no
// measurement (a system that cannot be measured must not hide the others).
func (r *runner) fail(system string, mtu int, err error) {
	logf("%s MTU %d: %v", system, mtu, err)
	for _, m := range metrics {
		if c := r.cell(system, mtu, m.key); c == nil {
			r.add(&Cell{System: system, MTU: mtu, Metric: m.key, Unit: m.unit, Note: shortErr(err)})
		} else if !c.ok() && c.Note == "" {
			c.Note = shortErr(err)
		}
	}
}

// traffic measures one round of one stack's traffic metrics at one MTU,
// on a peer of its own.
func (r *runner) traffic(system string, mtu int) {
	logf("%s MTU %d", system, mtu)
	if err := r.session(system, mtu, func(c *client) error { return r.measure(c, system, mtu, 1) }); err != nil {
		r.fail(system, mtu, err)
	}
}

// idleMemory measures one stack's memory per idle connection at one MTU.
func (r *runner) idleMemory(system string, mtu int) {
	// Memory per idle connection: a fresh peer for every repetition, so
	// that tables grown by an earlier repetition (Go maps do not shrink) are
	// charged to the connections that grew them. The offload variants run
	// the same stack as their twins, whose column has the figures.
	if twin := sameStack[system]; twin != "" {
		for _, k := range []string{"idle_heap", "idle_rss", "idle_slab"} {
			r.add(&Cell{System: system, MTU: mtu, Metric: k, Unit: unitOf(k), Note: "same stack as " + columnLabel(twin) + "; not measured again"})
		}
		return
	}
	if err := r.idle(system, mtu); err != nil {
		r.fail(system, mtu, err)
	}
}

// session sets up the system's namespaces and peer, runs f with a client
// connected to the peer's control port, and tears everything down.
func (r *runner) session(system string, mtu int, f func(c *client) error) error {
	bin := r.bins[system]
	if bin == "" {
		return fmt.Errorf("%s peer did not build", system)
	}
	ns, err := newNetnsV6(v6Systems[system])
	if err != nil {
		return err
	}
	defer ns.del()
	var p *proc
	switch system {
	case "kernel":
		var nsB *netns
		if nsB, err = newNetns(); err != nil {
			return err
		}
		defer nsB.del()
		if err = vethPair(ns, nsB, mtu); err != nil {
			return err
		}
		p, err = startPeer(nsB, bin, "-addr", "198.18.1.2")
	case "kernel6":
		var nsB *netns
		if nsB, err = newNetnsV6(true); err != nil {
			return err
		}
		defer nsB.del()
		if err = vethPair(ns, nsB, mtu); err != nil {
			return err
		}
		if err = ns.run("ip", "addr", "add", "fd00:5f:1::1/64", "dev", "vb0", "nodad"); err != nil {
			return err
		}
		if err = nsB.run("ip", "addr", "add", "fd00:5f:1::2/64", "dev", "vb1", "nodad"); err != nil {
			return err
		}
		p, err = startPeer(nsB, bin, "-addr", "fd00:5f:1::2")
	case "sockfs6":
		p, err = startPeer(ns, bin, "-tun", "sfsb0", "-mtu", itoa(mtu), "-addr", "fd00:5f::2/64", "-host", "fd00:5f::1/64")
	case "gvisor":
		p, err = startPeer(ns, bin, "-mode", "tun", "-tun", "gvb0", "-mtu", itoa(mtu))
	case "gvisor-offload":
		if err = packetVeth(ns, mtu); err != nil {
			return err
		}
		p, err = startPeer(ns, bin, "-mode", "packet", "-dev", gvisorVethEnd, "-mtu", itoa(mtu))
	case "sockfs":
		p, err = startPeer(ns, bin, "-tun", "sfsb0", "-mtu", itoa(mtu))
	case "sockfs-nooffload":
		p, err = startPeer(ns, bin, "-tun", "sfsb0", "-mtu", itoa(mtu), "-offload=false")
	default:
		err = fmt.Errorf("unknown system %q", system)
	}
	if err != nil {
		return err
	}
	defer p.stop()
	c, err := newClient(ns, peerAddr(system))
	if err != nil {
		return err
	}
	defer c.quit()
	settle()
	return f(c)
}

// settle waits, at most 5 s, until the machine's CPUs are at least 90%
// idle over a 200 ms window, so that what the last session left running
// (the kernel's clean-up of a deleted network namespace and of its
// thousands of TIME_WAIT sockets, a peer exiting) does not run during the
// next system's measurements.
func settle() {
	start := time.Now()
	prev, ok := cpuTimes()
	for ok && time.Since(start) < 5*time.Second {
		time.Sleep(200 * time.Millisecond)
		cur, ok2 := cpuTimes()
		if !ok2 {
			return
		}
		total, idle := cur[0]-prev[0], cur[1]-prev[1]
		prev = cur
		if total > 0 && float64(idle) >= 0.9*float64(total) {
			if w := time.Since(start); w > time.Second {
				logf("  waited %.1fs for the CPUs to settle", w.Seconds())
			}
			return
		}
	}
	if ok {
		logf("  CPUs still busy after 5s; measuring anyway")
	}
}

// userHZ is the unit of /proc/stat's CPU times (USER_HZ, 100 on every
// Linux architecture that has it).
const userHZ = 100

// machineBusy returns the CPU time all CPUs spent busy (user, nice,
// system, irq and softirq in /proc/stat; not idle, iowait or steal), in
// seconds: whatever the machine did, the kernel side's client and the
// softirq work that no process is charged for included.
func machineBusy() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseBusy(string(b))
}

// parseBusy reads the busy time out of /proc/stat's text.
func parseBusy(stat string) (float64, bool) {
	f, ok := cpuFields(stat)
	return float64(f[0]+f[1]+f[2]+f[5]+f[6]) / userHZ, ok
}

// cpuTimes returns the total and idle (idle + iowait) jiffies of all CPUs
// from /proc/stat.
func cpuTimes() ([2]uint64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return [2]uint64{}, false
	}
	f, ok := cpuFields(string(b))
	var total uint64
	for _, v := range f {
		total += v
	}
	return [2]uint64{total, f[3] + f[4]}, ok
}

// cpuFields returns the eight times of /proc/stat's first line, the "cpu"
// line summing all CPUs: user, nice, system, idle, iowait, irq, softirq
// and steal, in USER_HZ (the guest times after them are already inside
// user and nice).
func cpuFields(stat string) ([8]uint64, bool) {
	var t [8]uint64
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return t, false
	}
	for i := range t {
		v, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return [8]uint64{}, false
		}
		t[i] = v
	}
	return t, true
}

// vethPair links namespaces a (198.18.1.1/24) and b (198.18.1.2/24).
func vethPair(a, b *netns, mtu int) error {
	for _, args := range [][]string{
		{"ip", "link", "add", "vb0", "mtu", itoa(mtu), "type", "veth", "peer", "name", "vb1", "mtu", itoa(mtu), "netns", "/run/netns/" + b.name},
		{"ip", "addr", "add", "198.18.1.1/24", "dev", "vb0"},
		{"ip", "link", "set", "vb0", "up"},
	} {
		if err := a.run(args...); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"ip", "addr", "add", "198.18.1.2/24", "dev", "vb1"},
		{"ip", "link", "set", "vb1", "up"},
	} {
		if err := b.run(args...); err != nil {
			return err
		}
	}
	return nil
}

// gvisorVethEnd is the veth end gVisor's AF_PACKET socket is bound to in
// gvisor-offload; its twin, gvk0, is the kernel side.
const gvisorVethEnd = "gvp0"

// packetVeth makes the link of gvisor-offload inside ns: a veth pair whose
// kernel end (gvk0) has 198.18.0.1/24 and whose other end is gVisor's. The
// gVisor end has no address and no IPv6 and never answers ARP, so the
// kernel neither replies nor routes there (forwarding is off in a new
// namespace): only gVisor, reading every frame through its packet socket,
// answers for 198.18.0.2. The veth's offloads stay at their defaults (TSO,
// GSO, GRO, checksums on), so the kernel hands gVisor its TSO packets
// whole and takes gVisor's GSO packets whole.
func packetVeth(ns *netns, mtu int) error {
	for _, args := range [][]string{
		{"ip", "link", "add", "gvk0", "mtu", itoa(mtu), "type", "veth", "peer", "name", gvisorVethEnd, "mtu", itoa(mtu)},
		{"sysctl", "-qw", "net.ipv6.conf." + gvisorVethEnd + ".disable_ipv6=1"},
		{"sysctl", "-qw", "net.ipv4.conf." + gvisorVethEnd + ".arp_ignore=8"},
		{"ip", "addr", "add", "198.18.0.1/24", "dev", "gvk0"},
		{"ip", "link", "set", gvisorVethEnd, "up"},
		{"ip", "link", "set", "gvk0", "up"},
	} {
		if err := ns.run(args...); err != nil {
			return err
		}
	}
	return nil
}

func shortErr(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// warmupDur is each direction's unmeasured warm-up transfer in measure.
const warmupDur = 500 * time.Millisecond

// measure runs the traffic metrics of one system (bulk, CPU, allocations,
// request/response, connection rate), reps repetitions each, on one peer.
func (r *runner) measure(c *client, system string, mtu, reps int) error {
	o := r.o
	get := func(key string) *Cell {
		if x := r.cell(system, mtu, key); x != nil {
			return x
		}
		return r.add(&Cell{System: system, MTU: mtu, Metric: key, Unit: unitOf(key)})
	}
	// Warm-up, not measured: four streams each way for warmupDur, so that
	// each peer's pools and buffers have their working size before the
	// first sample, as a long-running daemon's do. Every round starts a
	// fresh peer process, and without it the first bulk sample of each
	// round paid for filling the pools: at MTU 65000, where sockfs's
	// receive queues grow to tcp_rmem[2] (32 MiB) and a wire packet is
	// 64 KiB, that alone was about 0.02 allocations per wire packet.
	if _, err := c.bulkToPeer(4, warmupDur, o.limit); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := c.bulkFromPeer(4, warmupDur, o.limit); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	// The allocations of one "stats" exchange itself (JSON, GC
	// bookkeeping), subtracted from every allocs-per-packet sample.
	b0, err := c.stats()
	if err != nil {
		return err
	}
	b1, err := c.stats()
	if err != nil {
		return err
	}
	statsMallocs := float64(b1.Mallocs - b0.Mallocs)
	for _, b := range []struct {
		key     string
		toPeer  bool
		streams int
		cpu     string
	}{
		{"bulk_k2p_1", true, 1, "cpu_k2p"},
		{"bulk_k2p_4", true, 4, ""},
		{"bulk_p2k_1", false, 1, "cpu_p2k"},
		{"bulk_p2k_4", false, 4, ""},
	} {
		cell := get(b.key)
		for range reps {
			s0, err := c.stats()
			if err != nil {
				return err
			}
			var res bulkResult
			busy0, busyOK := machineBusy()
			if b.toPeer {
				res, err = c.bulkToPeer(b.streams, o.dur, o.limit)
			} else {
				res, err = c.bulkFromPeer(b.streams, o.dur, o.limit)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", b.key, err)
			}
			busy1, busyOK1 := machineBusy()
			s1, err := c.stats()
			if err != nil {
				return err
			}
			cell.Samples = append(cell.Samples, res.gbps())
			if b.cpu != "" && res.bytes > 0 {
				cc := get(b.cpu)
				cc.Samples = append(cc.Samples, float64(s1.CPUNanos-s0.CPUNanos)/1e9/(float64(res.bytes)/1e9))
				if busyOK && busyOK1 {
					mc := get("m" + b.cpu)
					mc.Samples = append(mc.Samples, (busy1-busy0)/(float64(res.bytes)/1e9))
				}
			}
			// Packets are wire packets, each peer counting a GSO or
			// GRO super-packet as the segments it stands for (wireNote).
			if s1.Packets > s0.Packets {
				ac := get("allocs_pkt")
				ac.Samples = append(ac.Samples, max(0, float64(s1.Mallocs-s0.Mallocs)-statsMallocs)/float64(s1.Packets-s0.Packets))
			}
		}
		cell.summarize()
		logf("  %s %s", b.key, cell.text())
	}
	for _, k := range []string{"cpu_k2p", "cpu_p2k", "mcpu_k2p", "mcpu_p2k", "allocs_pkt"} {
		get(k).summarize()
	}
	if note := wireNote[system]; note != "" {
		get("allocs_pkt").Note = note + "; after an unmeasured warm-up of " + warmupDur.String() + " each way on 4 streams"
	}
	if system == "kernel" {
		get("allocs_pkt").Note = "kernel: no Go allocations per packet"
		get("cpu_k2p").Note = "peer process only; softirq work is not charged to it"
		get("cpu_p2k").Note = "peer process only; softirq work is not charged to it"
	}

	p50, p99 := get("rr_p50"), get("rr_p99")
	for range reps {
		lat, err := c.rr(o.dur, o.rrMax)
		if err != nil {
			return fmt.Errorf("rr: %w", err)
		}
		p50.Samples = append(p50.Samples, percentile(lat, 0.50))
		p99.Samples = append(p99.Samples, percentile(lat, 0.99))
	}
	p50.summarize()
	p99.summarize()
	logf("  rr p50 %s p99 %s", p50.text(), p99.text())

	crr := get("crr")
	for range reps {
		rate, err := c.crr(o.dur, o.crrMax)
		if err != nil {
			return fmt.Errorf("crr: %w", err)
		}
		crr.Samples = append(crr.Samples, rate)
	}
	crr.summarize()
	logf("  crr %s", crr.text())

	return nil
}

// idle measures memory per idle established connection, one fresh peer
// per repetition.
func (r *runner) idle(system string, mtu int) error {
	get := func(key string) *Cell {
		if x := r.cell(system, mtu, key); x != nil {
			return x
		}
		return r.add(&Cell{System: system, MTU: mtu, Metric: key, Unit: unitOf(key)})
	}
	heap, rss, slab := get("idle_heap"), get("idle_rss"), get("idle_slab")
	for range r.o.reps {
		err := r.session(system, mtu, func(c *client) error {
			res, err := c.idle(r.o.conns)
			if err != nil {
				return fmt.Errorf("idle: %w", err)
			}
			heap.Samples = append(heap.Samples, res.heapPerConn)
			rss.Samples = append(rss.Samples, res.rssPerConn)
			slab.Samples = append(slab.Samples, res.slabPerConn)
			logf("  idle %d conns: set up in %.2fs, heap %.0f B/conn", r.o.conns, res.setupSecs, res.heapPerConn)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if system == "kernel" {
		// Both ends of each connection are kernel sockets here.
		for i := range slab.Samples {
			slab.Samples[i] /= 2
		}
		heap.Note = "Go heap of the peer process; the sockets live in the kernel (see slab)"
	} else {
		slab.Note = "includes the client's kernel sockets and other processes on the machine"
	}
	heap.summarize()
	rss.summarize()
	slab.summarize()
	return nil
}

// tunCeiling measures packets per second through a bare TUN reader and
// writer (no stack), at MTU-sized packets.
func (r *runner) tunCeiling(mtu int) {
	for _, mode := range []string{"rx", "tx"} {
		key := "tun_" + mode + "_pps"
		cell := r.add(&Cell{System: "tunraw", MTU: mtu, Metric: key, Unit: "pkt/s"})
		gb := &Cell{System: "tunraw", MTU: mtu, Metric: "tun_" + mode + "_gbps", Unit: "Gbit/s"}
		var dropped float64
		for range r.o.reps {
			pps, drops, err := r.tunOnce(mtu, mode)
			dropped += drops
			if err != nil {
				cell.Note = shortErr(err)
				logf("tunraw %s MTU %d: %v", mode, mtu, err)
				break
			}
			cell.Samples = append(cell.Samples, pps)
			gb.Samples = append(gb.Samples, pps*float64(mtu)*8/1e9)
		}
		if mode == "rx" && len(cell.Samples) > 0 {
			if dropped > 0 {
				cell.Note = "the kernel dropped packets at the full TUN queue, so the reader is the limit"
			} else {
				cell.Note = "no drops at the TUN queue: the kernel's UDP sender may be the limit"
			}
		}
		cell.summarize()
		r.add(gb)
		logf("tunraw %s MTU %d: %s pkt/s, %s Gbit/s", mode, mtu, cell.text(), gb.text())
	}
}

func (r *runner) tunOnce(mtu int, mode string) (pps, dropped float64, err error) {
	ns, err := newNetns()
	if err != nil {
		return 0, 0, err
	}
	defer ns.del()
	stop := make(chan struct{})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	var sunk chan uint64
	if mode == "tx" {
		if sunk, err = udpSink(ns, 9999, stop); err != nil {
			return 0, 0, err
		}
	}
	p, err := startPeer(ns, r.bins["tunraw"], "-mode", mode, "-mtu", itoa(mtu), "-dur", r.o.dur.String())
	if err != nil {
		return 0, 0, err
	}
	defer p.stop()
	if mode == "rx" {
		if err := udpBlast(ns, netip.MustParseAddrPort("198.18.0.2:9999"), mtu-28, 1, stop); err != nil {
			return 0, 0, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := p.stdin.Write([]byte("go\n")); err != nil {
		return 0, 0, err
	}
	line, err := p.line(r.o.dur + 10*time.Second)
	if err != nil {
		return 0, 0, err
	}
	close(stop)
	if sunk != nil {
		<-sunk
	}
	var res struct {
		Packets float64 `json:"packets"`
		Seconds float64 `json:"seconds"`
		Dropped float64 `json:"kernel_tx_dropped"`
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil || res.Seconds == 0 {
		return 0, 0, fmt.Errorf("tunraw said %q", line)
	}
	if mode == "rx" {
		logf("  tunraw rx: %.0f packets read, %.0f dropped by the kernel (TUN queue full)", res.Packets, res.Dropped)
	}
	return res.Packets / res.Seconds, res.Dropped, nil
}

// machine describes where the numbers came from.
func machine() map[string]string {
	m := map[string]string{"go": runtime.Version(), "gomaxprocs": itoa(runtime.GOMAXPROCS(0))}
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, l := range splitLines(out) {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "Model name":
				m["cpu"] = strings.TrimSpace(v)
			case "CPU(s)":
				m["cores"] = strings.TrimSpace(v)
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m["kernel"] = strings.TrimSpace(string(out))
	}
	if b, err := readFile("/proc/loadavg"); err == nil {
		m["loadavg_at_start"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func splitLines(b []byte) []string { return strings.Split(strings.TrimSpace(string(b)), "\n") }
