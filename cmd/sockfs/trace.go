package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sockfs/netview"
)

// traceCounters are the netstat counters trace samples unless told
// otherwise: segments, and every counter of drops, pruning and memory
// pressure.
var traceCounters = []string{
	"Tcp.InSegs", "Tcp.OutSegs", "Tcp.RetransSegs", "Tcp.InErrs",
	"TcpExt.PruneCalled", "TcpExt.RcvPruned", "TcpExt.OfoPruned", "TcpExt.TCPRcvCollapsed",
	"TcpExt.TCPBacklogDrop", "TcpExt.TCPMemoryPressures", "TcpExt.TCPMemoryPressuresChrono",
	"TcpExt.TCPOFOQueue", "TcpExt.TCPOFODrop", "TcpExt.TCPRcvQDrop", "TcpExt.TCPZeroWindowDrop",
	"TcpExt.TCPAbortOnMemory", "TcpExt.TCPWqueueTooBig", "Udp.RcvbufErrors",
}

// tcpStatusFields are the TCP status fields of NET-FILES.md, the columns
// trace writes whatever the conversation's state when tracing starts.
// After them come tcp_info's fields as ss -i names them; those that status
// prints only when they have a value (BBR's model, the rates) still get a
// column, empty while absent, so that runs with different algorithms have
// the same columns.
var tcpStatusFields = []string{"qin", "qout", "srtt", "rttvar", "rto", "cwnd", "ssthresh",
	"snd_wnd", "rcv_wnd", "rcv_ssthresh", "window_clamp", "mss", "retrans",
	"bytes_acked", "bytes_received", "congestion", "ca_state", "min_rtt", "rcv_rtt", "rcv_space", "pmtu",
	"unacked", "sacked", "lost", "retrans_out", "reordering", "ato", "rcvmss", "advmss",
	"snd_wscale", "rcv_wscale", "delivered", "delivered_ce", "notsent", "data_segs_out", "app_limited",
	"pacing_rate", "delivery_rate",
	"bbr_mode", "bbr_bw", "bbr_mrtt", "bbr_pacing_gain", "bbr_cwnd_gain"}

// rateFields are the status fields status prints in ss's units
// ("12.3Mbps"); trace writes them in bits per second, so that a CSV column
// is a number.
var rateFields = map[string]bool{"pacing_rate": true, "delivery_rate": true, "bbr_bw": true}

// parseSSBw reads a bandwidth as ss prints it (sprint_bw: "%.1fGbps",
// "Mbps", "Kbps" or "%gbps") and returns bits per second.
func parseSSBw(s string) (float64, bool) {
	mult := 1.0
	num := strings.TrimSuffix(s, "bps")
	if num == s {
		return 0, false
	}
	switch {
	case strings.HasSuffix(num, "G"):
		mult, num = 1e9, strings.TrimSuffix(num, "G")
	case strings.HasSuffix(num, "M"):
		mult, num = 1e6, strings.TrimSuffix(num, "M")
	case strings.HasSuffix(num, "K"):
		mult, num = 1e3, strings.TrimSuffix(num, "K")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v * mult, true
}

// statusValue is the CSV text of one status field: rates become bits per
// second (an unparseable one is left empty rather than written as text).
func statusValue(name, v string) string {
	if rateFields[name] && v != "" {
		bps, ok := parseSSBw(v)
		if !ok {
			return ""
		}
		return strconv.FormatFloat(bps, 'f', -1, 64)
	}
	return v
}

type traceConfig struct {
	mount    string
	proto    string // "" = no conversation
	conv     int
	every    time.Duration
	dur      time.Duration
	out      string
	counters []string
	// peer is a command whose output is `ss -ti` for the other end of
	// the conversation, run every peerEvery; its fields become peer_*
	// columns.
	peer      string
	peerEvery time.Duration
	// warn receives warnings (a conversation that does not exist yet);
	// nil is standard error.
	warn io.Writer
}

func parseTrace(args []string) (traceConfig, error) {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockfs trace [MOUNT] [--conv tcp/N] [--every 10ms] [--for 30s] [-o run.csv]\n\n"+
			"Samples a conversation's status and mem, the protocols file, chosen netstat\ncounters and the interfaces' byte counters into CSV, one column per field;\nt_ms is milliseconds since the start (monotonic).\n\n")
		fs.PrintDefaults()
	}
	var c traceConfig
	conv := fs.String("conv", "", "conversation to sample, tcp/N or udp/N (empty: only the global files)")
	fs.DurationVar(&c.every, "every", 10*time.Millisecond, "sampling interval")
	fs.DurationVar(&c.dur, "for", 30*time.Second, "how long to sample")
	fs.StringVar(&c.out, "o", "-", "output CSV file (- = stdout)")
	fs.StringVar(&c.peer, "peer", "", "command printing `ss -ti` of the other end (run with sh -c), e.g. 'ip netns exec NS ss -tinH dport = :5001'; adds peer_* columns")
	fs.DurationVar(&c.peerEvery, "peer-every", 100*time.Millisecond, "how often to run --peer")
	counters := fs.String("counters", strings.Join(traceCounters, ","), "netstat counters to sample, Group.Name, comma-separated")
	mount, err := parseToolArgs(fs, args)
	if err != nil {
		return c, err
	}
	c.mount = mount
	if *conv != "" {
		proto, n, ok := strings.Cut(*conv, "/")
		num, err := strconv.Atoi(n)
		if !ok || (proto != "tcp" && proto != "udp") || err != nil || num < 0 {
			return c, usageError{fmt.Errorf("--conv %q: want tcp/N or udp/N", *conv)}
		}
		c.proto, c.conv = proto, num
	}
	if c.every < time.Millisecond || c.dur <= 0 {
		return c, usageError{fmt.Errorf("--every must be at least 1ms and --for positive")}
	}
	if c.peer != "" && c.peerEvery < 10*time.Millisecond {
		return c, usageError{fmt.Errorf("--peer-every must be at least 10ms")}
	}
	for _, k := range strings.Split(*counters, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if !strings.Contains(k, ".") {
				return c, usageError{fmt.Errorf("--counters: %q is not Group.Name", k)}
			}
			c.counters = append(c.counters, k)
		}
	}
	return c, nil
}

// traceCmd is `sockfs trace`.
func traceCmd(args []string) error {
	cfg, err := parseTrace(args)
	if err == flag.ErrHelp {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := io.Writer(os.Stdout)
	if cfg.out != "-" {
		f, err := os.Create(cfg.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	n, err := runTrace(ctx, cfg, w)
	if cfg.out != "-" {
		if n == 0 && err != nil {
			os.Remove(cfg.out) // nothing traced: no empty file left behind
			return err
		}
		fmt.Fprintf(os.Stderr, "sockfs trace: %d samples to %s\n", n, cfg.out)
	}
	return err
}

// tracer knows the columns, fixed at the first sample.
type tracer struct {
	cfg     traceConfig
	peer    *peerSampler // nil without --peer
	status  []string     // status field names
	protos  []string     // protocol names from protocols
	ifcs    []int        // ipifc numbers
	columns []string
}

func newTracer(cfg traceConfig) (*tracer, error) {
	if err := netview.CheckMount(cfg.mount); err != nil {
		return nil, err
	}
	tr := &tracer{cfg: cfg}
	tr.columns = []string{"t_ms"}
	if cfg.proto != "" {
		if cfg.proto == "tcp" {
			tr.status = append(tr.status, tcpStatusFields...)
		} else {
			tr.status = []string{"qin", "qout"}
		}
		// Fields the tree has beyond the known ones (a newer sockfs).
		if c, err := netview.ReadConv(cfg.mount, cfg.proto, cfg.conv); err == nil {
			for _, name := range c.Status.Names {
				if !known(tr.status, name) {
					tr.status = append(tr.status, name)
				}
			}
		} else if errors.Is(err, os.ErrNotExist) {
			w := cfg.warn
			if w == nil {
				w = os.Stderr
			}
			fmt.Fprintf(w, "sockfs trace: %s/%d does not exist (yet): its columns stay empty until it does\n", cfg.proto, cfg.conv)
		} else {
			return nil, err
		}
		tr.columns = append(tr.columns, "state")
		tr.columns = append(tr.columns, tr.status...)
		for _, k := range netview.SkmemKeys() {
			tr.columns = append(tr.columns, "mem_"+k)
		}
	}
	ps, err := netview.ReadProtocols(cfg.mount)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		l := strings.ToLower(p.Name)
		tr.protos = append(tr.protos, p.Name)
		tr.columns = append(tr.columns, l+"_sockets", l+"_memory", l+"_pressure_state", l+"_mem_low", l+"_mem_pressure", l+"_mem_high")
	}
	// A counter netstat does not have would be an empty column for good.
	ns, err := netview.ReadNetstat(cfg.mount)
	if err != nil {
		return nil, err
	}
	for _, k := range cfg.counters {
		if _, ok := ns.GetKey(k); !ok {
			return nil, usageError{fmt.Errorf("--counters: netstat has no %s", k)}
		}
	}
	tr.columns = append(tr.columns, tr.cfg.counters...)
	if cfg.peer != "" {
		for _, k := range peerFields {
			tr.columns = append(tr.columns, "peer_"+k)
		}
	}
	if ifcs, err := netview.ReadIfcs(cfg.mount); err == nil {
		for _, ifc := range ifcs {
			tr.ifcs = append(tr.ifcs, ifc.N)
			tr.columns = append(tr.columns, fmt.Sprintf("ipifc%d_rx_bytes", ifc.N), fmt.Sprintf("ipifc%d_tx_bytes", ifc.N))
		}
	}
	return tr, nil
}

func known(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sample reads the files once and returns the row (t_ms filled by the
// caller). A file that cannot be read leaves its columns empty; only a
// failure to read the global files is an error.
func (tr *tracer) sample() ([]string, error) {
	row := []string{""}
	itoa := func(v int64) string { return strconv.FormatInt(v, 10) }
	if tr.cfg.proto != "" {
		c, err := netview.ReadConv(tr.cfg.mount, tr.cfg.proto, tr.cfg.conv)
		if err != nil {
			row = append(row, make([]string, 1+len(tr.status)+len(netview.SkmemKeys()))...)
		} else {
			row = append(row, c.State)
			for _, name := range tr.status {
				v := ""
				for i, n := range c.Status.Names {
					if n == name {
						v = c.Status.Values[i]
					}
				}
				row = append(row, statusValue(name, v))
			}
			for _, k := range netview.SkmemKeys() {
				v, _ := c.Mem.Get(k)
				row = append(row, itoa(v))
			}
		}
	}
	ps, err := netview.ReadProtocols(tr.cfg.mount)
	if err != nil {
		return nil, err
	}
	for _, name := range tr.protos {
		var p netview.Protocol
		found := false
		for _, x := range ps {
			if x.Name == name {
				p, found = x, true
			}
		}
		if !found {
			row = append(row, "", "", "", "", "", "")
			continue
		}
		press := ""
		switch p.Pressure {
		case "yes":
			press = "1"
		case "no":
			press = "0"
		}
		row = append(row, itoa(p.Sockets), itoa(p.Memory), press, itoa(p.Low), itoa(p.PressAt), itoa(p.High))
	}
	ns, err := netview.ReadNetstat(tr.cfg.mount)
	if err != nil {
		return nil, err
	}
	for _, k := range tr.cfg.counters {
		if v, ok := ns.GetKey(k); ok {
			row = append(row, itoa(v))
		} else {
			row = append(row, "")
		}
	}
	if tr.peer != nil {
		row = append(row, tr.peer.row()...)
	}
	for _, n := range tr.ifcs {
		ifc, err := netview.ReadIfc(tr.cfg.mount, n)
		if err != nil {
			row = append(row, "", "")
			continue
		}
		row = append(row, itoa(ifc.Stats["rx_bytes"]), itoa(ifc.Stats["tx_bytes"]))
	}
	return row, nil
}

// runTrace samples every cfg.every until cfg.dur has passed or ctx ends,
// writing CSV to w; it returns the number of samples written. The loop is
// bounded by time and by count (cfg.dur/cfg.every + 1 samples).
func runTrace(ctx context.Context, cfg traceConfig, w io.Writer) (int, error) {
	tr, err := newTracer(cfg)
	if err != nil {
		return 0, err
	}
	if cfg.peer != "" {
		tr.peer = startPeerSampler(ctx, cfg.peer, cfg.peerEvery)
		defer tr.peer.stop()
	}
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	if err := cw.Write(tr.columns); err != nil {
		return 0, err
	}
	start := time.Now()
	end := start.Add(cfg.dur)
	maxSamples := int(cfg.dur/cfg.every) + 1
	tick := time.NewTicker(cfg.every)
	defer tick.Stop()
	lastFlush := start
	lastT := -1.0
	n := 0
	for n < maxSamples {
		row, err := tr.sample()
		if err != nil {
			cw.Flush()
			bw.Flush()
			return n, err
		}
		t := float64(time.Since(start).Microseconds()) / 1000
		if t <= lastT {
			t = lastT + 0.001
		}
		lastT = t
		row[0] = strconv.FormatFloat(t, 'f', 3, 64)
		if err := cw.Write(row); err != nil {
			return n, err
		}
		n++
		if time.Since(lastFlush) > time.Second {
			cw.Flush()
			if err := bw.Flush(); err != nil {
				return n, err
			}
			lastFlush = time.Now()
		}
		stopped := false
		select {
		case <-ctx.Done():
			stopped = true
		case <-tick.C:
		}
		if stopped || !time.Now().Before(end) {
			break
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return n, err
	}
	return n, bw.Flush()
}
