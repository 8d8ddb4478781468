//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// columns of the per-MTU table, in order: equally configured systems side
// by side, each header saying how its link is configured.
var columns = []struct{ system, label string }{
	{"kernel", "kernel ↔ kernel, veth (offloads on: TSO, GRO, checksums)"},
	{"gvisor", "kernel ↔ gVisor, TUN, no offloads"},
	{"sockfs-nooffload", "kernel ↔ sockfs Go API, TUN, no offloads"},
	{"gvisor-offload", "kernel ↔ gVisor, AF_PACKET on veth, offloads (GSO 64 KiB, GRO, RX checksum)"},
	{"sockfs", "kernel ↔ sockfs Go API, TUN, offloads (TSO/GSO 64 KiB, checksums)"},
	{"kernel6", "IPv6: kernel ↔ kernel, veth (offloads on)"},
	{"sockfs6", "IPv6: kernel ↔ sockfs Go API, TUN, offloads (TSO6/GSO 64 KiB, checksums)"},
	{"sockfs-fuse", "kernel ↔ sockfs FUSE data, 1 MiB read/write (TUN, offloads)"},
	{"sockfs-9p", "kernel ↔ sockfs 9P, msize 1 MiB, 1020 KiB read/write (TUN, offloads)"},
}

// columnLabel is system's column header.
func columnLabel(system string) string {
	for _, c := range columns {
		if c.system == system {
			return c.label
		}
	}
	return system
}

// wireNote says, per system, how the peer counts the wire packets that
// allocations per packet are divided by (the counts themselves are made in
// the peers: bench/peers/sockfs/main.go, bench/peers/gvisor/wire.go).
var wireNote = map[string]string{
	"gvisor":           "gVisor: wire packets counted at its link endpoint (wire.go): one per packet sent (no GSO on a TUN), received TCP packets as ceil(payload / (MTU - headers)), 1 for MTU-sized ones",
	"gvisor-offload":   "gVisor: wire packets counted at its link endpoint (wire.go): a GSO packet sent as ceil(payload / MSS) segments, a received (TSO or GRO-merged) TCP packet as ceil(payload / (MTU - headers))",
	"sockfs":           "sockfs: TUN packets with every GSO super-packet counted as its segments (tun.OffloadStats RxGSOSegs, TxGSOSegs)",
	"sockfs-nooffload": "sockfs: TUN packets (without offloads each one is a wire packet)",
	"sockfs6":          "sockfs over IPv6: as sockfs",
}

// nullSystems are the file transports' ceilings (file-null): a null file
// served by bench/peers/nullfs, measured by the files peer.
var nullSystems = []struct{ system, label, fileSystem string }{
	{"fuse-null", "FUSE null file (sockfs's FUSE server fs/fuse, its mount options, DIRECT_IO, 1 MiB read/write)", "sockfs-fuse"},
	{"9p-null", "9P null file (sockfs's 9P server core fs/p9, hugelgupf/p9 client, msize 1 MiB, 1020 KiB read/write)", "sockfs-9p"},
}

// nullMetrics are the ceiling's measurements, with the bulk metric of the
// file rows each one bounds (a peer reading data is kernel→peer).
var nullMetrics = []struct{ key, label, bulk string }{
	{"null_read_1", "read, 1 stream (Gbit/s)", "bulk_k2p_1"},
	{"null_read_4", "read, 4 streams (Gbit/s)", "bulk_k2p_4"},
	{"null_write_1", "write, 1 stream (Gbit/s)", "bulk_p2k_1"},
	{"null_write_4", "write, 4 streams (Gbit/s)", "bulk_p2k_4"},
}

// nullCPUMetrics are the machine's CPU per GB in the 1-stream ceiling
// runs (machineBusy), beside the file rows' mcpu_k2p and mcpu_p2k.
var nullCPUMetrics = []struct{ key, label string }{
	{"null_mcpu_read_1", "machine CPU per GB read, 1 stream (CPU-s/GB)"},
	{"null_mcpu_write_1", "machine CPU per GB written, 1 stream (CPU-s/GB)"},
}

var bulkKeys = []string{"bulk_k2p_1", "bulk_p2k_1", "bulk_k2p_4", "bulk_p2k_4"}

// goals evaluates issues #7 and #14's targets on the medians. Throughput
// goals compare only equally configured systems, and each says which.
func (r *runner) goals() {
	var gs []Goal
	for _, mtu := range r.o.mtus {
		for _, k := range bulkKeys {
			gs = append(gs, pairedRatioGoal(fmt.Sprintf("MTU %d %s: sockfs / gVisor, both without offloads (TUN)", mtu, k),
				r.cell("sockfs-nooffload", mtu, k), r.cell("gvisor", mtu, k), 1.2))
		}
		for _, k := range bulkKeys {
			gs = append(gs, pairedRatioGoal(fmt.Sprintf("MTU %d %s: sockfs / gVisor, both with offloads (sockfs TUN, gVisor AF_PACKET on veth)", mtu, k),
				r.cell("sockfs", mtu, k), r.cell("gvisor-offload", mtu, k), 1.2))
		}
		for _, k := range bulkKeys {
			g := pairedRatioGoal(fmt.Sprintf("MTU %d %s: sockfs / kernel, both with offloads (sockfs TUN, kernel veth)", mtu, k),
				r.cell("sockfs", mtu, k), r.cell("kernel", mtu, k), 0.6)
			g.Ceiling = r.cpuCeiling("sockfs", mtu, k, r.cell("kernel", mtu, k))
			gs = append(gs, g)
		}
		for _, f := range []string{"sockfs-fuse", "sockfs-9p"} {
			for _, k := range []string{"bulk_k2p_1", "bulk_p2k_1"} {
				g := pairedRatioGoal(fmt.Sprintf("MTU %d %s: %s / sockfs Go API, both TUN with offloads", mtu, k, f),
					r.cell(f, mtu, k), r.cell("sockfs", mtu, k), 0.8)
				g.Ceiling = r.cpuCeiling(f, mtu, k, r.cell("sockfs", mtu, k))
				gs = append(gs, g)
			}
		}
		gs = append(gs, pairedRatioMaxGoal(fmt.Sprintf("MTU %d rr_p50: sockfs-fuse / sockfs Go API, 1-byte request/response latency, both TUN with offloads", mtu),
			r.cell("sockfs-fuse", mtu, "rr_p50"), r.cell("sockfs", mtu, "rr_p50"), 2))
		for _, n := range nullSystems {
			for _, m := range nullMetrics {
				if !strings.HasSuffix(m.key, "_1") {
					continue
				}
				g := ratioGoal(fmt.Sprintf("MTU %d %s: %s / %s, same transport and request size", mtu, m.bulk, n.fileSystem, n.system),
					r.cell(n.fileSystem, mtu, m.bulk), r.cell(n.system, 0, m.key), 0.8)
				g.Ceiling = r.cpuCeiling(n.fileSystem, mtu, m.bulk, r.cell(n.system, 0, m.key))
				g.KernelCeiling = r.kernelCostCeiling(n.system, mtu, m.bulk, m.key)
				gs = append(gs, g)
			}
		}
		if mtu == 1500 {
			for _, k := range []string{"bulk_k2p_1", "bulk_p2k_1"} {
				gs = append(gs, pairedRatioGoal(fmt.Sprintf("MTU %d %s: sockfs IPv6 / sockfs IPv4 (issue #17: within 10%%)", mtu, k),
					r.cell("sockfs6", mtu, k), r.cell("sockfs", mtu, k), 0.9))
			}
		}
		gs = append(gs, maxGoal(fmt.Sprintf("MTU %d sockfs heap per idle connection (B)", mtu), r.cell("sockfs", mtu, "idle_heap"), 4096))
		gs = append(gs, maxGoal(fmt.Sprintf("MTU %d sockfs allocations per wire packet (TUN, offloads)", mtu), r.cell("sockfs", mtu, "allocs_pkt"), 0.01))
	}
	for i := range gs {
		gs[i] = gs[i].finite()
	}
	r.res.Goals = gs
}

// cpuCeiling returns the rate system num would reach on this machine's
// CPUs if all of them were busy at the machine CPU per GB measured in
// num's 1-stream bulk run (mcpu_k2p or mcpu_p2k: the kernel client, the
// peer, the transport and softirq alike), as a ratio to den's median;
// 0 if it cannot be computed. Where it lies below a goal's target, more
// overlap of the parts cannot reach the goal: only a path that costs
// less CPU per byte can. Where it lies above the measured value, the
// path leaves CPU idle and waits somewhere. An estimate, not a bound: a
// path's CPU per byte changes with its rate (batching, idle wake-ups).
func (r *runner) cpuCeiling(num string, mtu int, bulk string, den *Cell) float64 {
	return r.ceilingOf(den, r.cell(num, mtu, mcpuKey[bulk]))
}

// kernelCostCeiling is cpuCeiling for a file path over transport null
// (a nullSystems entry) that cost only the kernel's own TCP between two
// of its sockets over a veth (the kernel row's machine CPU per GB) plus
// the null file's: what a stack as cheap as Linux's and a server that
// added nothing to its transport could reach on this machine. Where it
// lies below the target, the goal needs more CPUs, not better code.
// The ratio is to the null file's own rate (nullKey, e.g. null_read_1),
// whose CPU per GB is the matching null_mcpu_ cell.
func (r *runner) kernelCostCeiling(null string, mtu int, bulk, nullKey string) float64 {
	return r.ceilingOf(r.cell(null, 0, nullKey), r.cell("kernel", mtu, mcpuKey[bulk]), r.cell(null, 0, strings.Replace(nullKey, "null_", "null_mcpu_", 1)))
}

// mcpuKey is the machine-CPU cell of each 1-stream bulk metric.
var mcpuKey = map[string]string{"bulk_k2p_1": "mcpu_k2p", "bulk_p2k_1": "mcpu_p2k"}

// ceilingOf is the rate, as a ratio to den's median, of a path whose CPU
// per GB is the sum of costs' medians with every CPU busy; 0 if a cell
// is missing.
func (r *runner) ceilingOf(den *Cell, costs ...*Cell) float64 {
	cores, err := strconv.Atoi(r.res.Machine["cores"])
	if err != nil || cores <= 0 || !den.ok() || den.Median <= 0 {
		return 0
	}
	var perGB float64
	for _, c := range costs {
		if !c.ok() || c.Median <= 0 {
			return 0
		}
		perGB += c.Median
	}
	gbps := float64(cores) / perGB * 8 // CPU-s per 1e9 bytes → Gbit/s
	return gbps / den.Median
}

// markdown renders the results.
func (r *runner) markdown() string {
	var b strings.Builder
	res := r.res
	fmt.Fprintf(&b, "# sockfs benchmarks\n\n")
	fmt.Fprintf(&b, "Run %s, %.0f s in all. Machine: %s, %s CPUs, kernel %s, %s (load average at start %s).\n",
		res.Started.Format("2006-01-02 15:04 UTC"), res.Seconds, res.Machine["cpu"], res.Machine["cores"],
		res.Machine["kernel"], res.Machine["go"], res.Machine["loadavg_at_start"])
	fmt.Fprintf(&b, "Each cell: median of %d runs (min–max); every run %v (bulk runs also at most %d MiB). "+
		"The kernel side is the same Go client for every system. Each column header says how the system's link is configured: "+
		"\"offloads\" on a TUN is IFF_VNET_HDR with TUNSETOFFLOAD (the kernel hands the stack TSO super-packets up to 64 KiB, the stack hands it GSO packets, no payload checksums either way); "+
		"gVisor's offloads are those runsc uses (fdbased on an AF_PACKET socket with virtio-net headers on a veth, host GSO 64 KiB, GRO, receive checksum offload), since its fdbased endpoint has none on a TUN; "+
		"\"no offloads\" is one MTU-sized packet per read(2)/write(2) with every checksum in software. The bare-TUN ceiling uses no offloads. "+
		"Goals compare only equally configured systems.\n\n",
		r.o.reps, r.o.dur, r.o.limit>>20)
	for _, mtu := range r.o.mtus {
		// Only the systems this run measured (-systems) get a column.
		header := []string{"metric"}
		var shown []string
		for _, c := range columns {
			for _, m := range metrics {
				if r.cell(c.system, mtu, m.key) != nil {
					header = append(header, c.label)
					shown = append(shown, c.system)
					break
				}
			}
		}
		if len(shown) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## MTU %d\n\n", mtu)
		var rows [][]string
		var notes footnotes
		for _, m := range metrics {
			row := []string{m.label}
			any := false
			for _, sys := range shown {
				x := r.cell(sys, mtu, m.key)
				if x != nil {
					any = true
				}
				row = append(row, notes.cell(x))
			}
			if any {
				rows = append(rows, row)
			}
		}
		b.WriteString(mdTable(header, rows))
		b.WriteString("\n" + notes.String() + "\n")
	}
	var trows [][]string
	var tnotes footnotes
	for _, mtu := range r.o.mtus {
		for _, mode := range []string{"rx", "tx"} {
			pps, gb := r.cell("tunraw", mtu, "tun_"+mode+"_pps"), r.cell("tunraw", mtu, "tun_"+mode+"_gbps")
			if pps == nil {
				continue
			}
			what := "bare reader (kernel UDP with GSO → TUN → read(2))"
			if mode == "tx" {
				what = "bare writer (write(2) → TUN → kernel IP/UDP input to an unread socket)"
			}
			trows = append(trows, []string{fmt.Sprint(mtu), what, tnotes.cell(pps), tnotes.cell(gb)})
		}
	}
	if len(trows) > 0 {
		b.WriteString("## TUN ceiling (no stack)\n\n")
		b.WriteString(mdTable([]string{"MTU", "path", "packets/s", "Gbit/s at MTU-sized packets"}, trows))
		b.WriteString("\n" + tnotes.String() + "\n")
	}
	if rows, notes := r.nullTable(); len(rows) > 0 {
		b.WriteString("## File transport ceiling (null file, no stack)\n\n")
		b.WriteString("A file that serves zeros from memory and discards writes, on the same transport as the file rows and read or written by the same files peer in the same requests (1 MiB over FUSE, 1020 KiB at msize 1 MiB over 9P): what FUSE and 9P carry at best.\n\n")
		header := []string{"transport"}
		for _, m := range nullMetrics {
			header = append(header, m.label)
		}
		for _, m := range nullCPUMetrics {
			header = append(header, m.label)
		}
		b.WriteString(mdTable(header, rows))
		b.WriteString("\n" + notes.String())
		if len(notes.list) > 0 {
			b.WriteString("\n")
		}
	}
	b.WriteString("## Goals\n\n")
	var grows [][]string
	for _, g := range res.Goals {
		grows = append(grows, g.row())
	}
	b.WriteString("Every system is measured once per round, the systems one after the other, for as many rounds as repetitions. " +
		"A value marked [r] is the median of the round-by-round ratios of the two systems' samples; the others (the null-file ceilings, measured apart) are ratios of medians.\n\n")
	b.WriteString("CPU ceiling: the rate the numerator's path would reach with every CPU busy at the machine CPU per GB measured in its 1-stream run " +
		"(kernel client, peer, transport and softirq alike), as a ratio to the denominator. Below the target, no better overlap of the parts meets the goal on this machine: " +
		"only a path that costs less CPU per byte can. Above the measured value, the path leaves CPU idle. An estimate: CPU per byte changes with the rate. " +
		"At kernel cost (the null-file goals): the same for a path that cost only what the kernel's own TCP costs between two of its sockets over a veth (the kernel column's machine CPU per GB) " +
		"plus what the null file costs, i.e. a stack as cheap as Linux's and a server that adds nothing to its transport. Below the target, the goal needs more CPUs than this machine has, not better code.\n\n")
	b.WriteString(mdTable([]string{"goal", "measured", "CPU ceiling", "at kernel cost", "target", "result"}, grows))
	b.WriteString("\nReproduce: `make bench` (root). JSON with every sample: `bench/results/latest.json`.\n")
	return b.String()
}

func (r *runner) write() error {
	if err := os.MkdirAll(r.o.out, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r.res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.o.out, "latest.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := r.markdown()
	if err := os.WriteFile(filepath.Join(r.o.out, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	if r.o.readme != "" {
		for _, sys := range allSystems {
			if !r.o.systems[sys] {
				logf("partial run (-systems): %s not updated", r.o.readme)
				return nil
			}
		}
		return updateReadme(r.o.readme, md)
	}
	return nil
}

// nullTable is the file-null ceiling table's rows.
func (r *runner) nullTable() ([][]string, *footnotes) {
	var rows [][]string
	notes := &footnotes{}
	for _, n := range nullSystems {
		row := []string{n.label}
		any := false
		for _, m := range nullMetrics {
			c := r.cell(n.system, 0, m.key)
			any = any || c != nil
			row = append(row, notes.cell(c))
		}
		for _, m := range nullCPUMetrics {
			row = append(row, notes.cell(r.cell(n.system, 0, m.key)))
		}
		if any {
			rows = append(rows, row)
		}
	}
	return rows, notes
}

// Markers around the generated part of the README's Performance section.
const (
	readmeBegin = "<!-- bench:begin (generated by make bench from bench/results/latest.md) -->"
	readmeEnd   = "<!-- bench:end -->"
)

// updateReadme replaces the text between the markers in path with md's
// body (its title dropped, headings moved down two levels). A README
// without the markers is left alone.
func updateReadme(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, readmeBegin), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		logf("%s has no %q marker; not updated", path, readmeBegin)
		return nil
	}
	return os.WriteFile(path, []byte(s[:i+len(readmeBegin)]+"\n"+readmeBody(md)+s[j:]), 0o644)
}

// readmeBody turns latest.md into the README's part: no title, "## X"
// headings become "#### X".
func readmeBody(md string) string {
	var out []string
	for _, l := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(l, "# "):
			continue
		case strings.HasPrefix(l, "## "):
			l = "##" + l
		}
		out = append(out, l)
	}
	return strings.TrimLeft(strings.Join(out, "\n"), "\n")
}

// fileSystems measures sockfs through its file interface: `sockfs serve`
// in the namespace with either --mount (FUSE) or --9p, and the files peer
// serving the benchmark protocol on the conversation files.
// fileTraffic measures one round of the file systems' traffic metrics at
// one MTU; errs keeps each system's last error for fileNotes.
func (r *runner) fileTraffic(mtu int, errs map[string]error) {
	if ok, _ := serveFlags(r.o.root); !ok {
		return
	}
	for _, sys := range []string{"sockfs-fuse", "sockfs-9p"} {
		logf("%s MTU %d", sys, mtu)
		if err := r.fileSession(sys, mtu, func(c *client) error { return r.measure(c, sys, mtu, 1) }); err != nil {
			logf("%s MTU %d: %v", sys, mtu, err)
			errs[sys] = err
		}
	}
}

// fileNotes completes the file systems' cells at one MTU after their
// rounds: why a cell is empty, and what the CPU cells include.
func (r *runner) fileNotes(mtu int, errs map[string]error) {
	ok, why := serveFlags(r.o.root)
	for _, sys := range []string{"sockfs-fuse", "sockfs-9p"} {
		for _, m := range metrics {
			c := r.cell(sys, mtu, m.key)
			if c == nil {
				c = r.add(&Cell{System: sys, MTU: mtu, Metric: m.key, Unit: m.unit})
			}
			switch {
			case !ok:
				c.Note = why
			case m.key == "allocs_pkt" || strings.HasPrefix(m.key, "idle_"):
				c.Note = "same stack as the Go API column; not measured through files"
			case errs[sys] != nil && !c.ok():
				c.Note = shortErr(errs[sys])
			case strings.HasPrefix(m.key, "cpu_"):
				c.Note = "serve daemon + file peer"
			}
		}
	}
}

// p9Addr is where the daemon serves 9P inside the benchmark namespace.
const p9Addr = "127.0.0.1:5640"

// fileSession runs sockfs serve in a fresh namespace with FUSE
// (sockfs-fuse) or 9P (sockfs-9p) only, the files peer on it, and f with a
// client of the peer.
func (r *runner) fileSession(sys string, mtu int, f func(c *client) error) error {
	ns, err := newNetns()
	if err != nil {
		return err
	}
	defer ns.del()
	dir, err := tempDir("sockfs-bench-mnt")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	args := []string{"serve", "--tun", "sfsf0", "--mtu", itoa(mtu)}
	if sys == "sockfs-fuse" {
		args = append(args, "--mount", dir, "--9p", "")
	} else {
		args = append(args, "--mount", "", "--9p", p9Addr)
	}
	d := ns.cmd(r.bins["daemon"], args...)
	var derr strings.Builder
	d.Stdout, d.Stderr = &derr, &derr
	if err := d.Start(); err != nil {
		return err
	}
	cleanup.Lock()
	cleanup.procs[d.Process.Pid] = d
	cleanup.Unlock()
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	defer func() {
		d.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			d.Process.Kill()
			<-done
		}
		cleanup.Lock()
		delete(cleanup.procs, d.Process.Pid)
		cleanup.Unlock()
		if sys == "sockfs-fuse" {
			exec.Command("umount", "-l", dir).Run() // only if serve left it mounted
		}
	}()
	ready := func() bool {
		if sys == "sockfs-fuse" {
			_, err := os.Stat(filepath.Join(dir, "tcp", "clone"))
			return err == nil
		}
		return ns.do(func() error {
			c, err := net.DialTimeout("tcp", p9Addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}) == nil
	}
	for deadline := time.Now().Add(20 * time.Second); !ready(); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("sockfs serve exited: %v: %s", err, derr.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sockfs serve not ready after 20 s: %s", derr.String())
		}
	}
	peerArgs := []string{"-pid", itoa(d.Process.Pid), "-dir", dir}
	if sys == "sockfs-9p" {
		peerArgs = []string{"-pid", itoa(d.Process.Pid), "-9p", p9Addr}
	}
	p, err := startPeer(ns, r.bins["files"], peerArgs...)
	if err != nil {
		return err
	}
	defer p.stop()
	c, err := newClient(ns, peerAddr("sockfs"))
	if err != nil {
		return err
	}
	defer c.quit()
	settle()
	return p.explain(f(c))
}

// serveFlags reports whether `sockfs serve` has --mount and --9p, and if
// not why.
func serveFlags(root string) (bool, string) {
	b, err := os.ReadFile(filepath.Join(root, "cmd/sockfs/serve.go"))
	if err != nil {
		return false, "cmd/sockfs/serve.go not found"
	}
	s := string(b)
	if !strings.Contains(s, `"mount"`) || !strings.Contains(s, `"9p"`) {
		return false, "sockfs serve has no --mount/--9p yet"
	}
	return true, ""
}
