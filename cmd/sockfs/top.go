package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/netview"
)

// topCounters are the netstat counters top shows as totals and rates:
// drops, pruning, collapsing and memory pressure.
var topCounters = []string{
	"TcpExt.TCPBacklogDrop", "TcpExt.PruneCalled", "TcpExt.RcvPruned", "TcpExt.OfoPruned",
	"TcpExt.TCPRcvCollapsed", "TcpExt.TCPMemoryPressures", "TcpExt.TCPMemoryPressuresChrono",
	"TcpExt.TCPOFODrop", "TcpExt.TCPRcvQDrop", "TcpExt.TCPZeroWindowDrop", "TcpExt.TCPAbortOnMemory",
	"TcpExt.TCPWqueueTooBig", "Tcp.RetransSegs", "Udp.RcvbufErrors",
}

// pageSize is the unit of the protocols file's memory and thresholds
// (Linux's PAGE_SIZE on the machines sockfs runs on).
const pageSize = 4096

type topConfig struct {
	mount    string
	interval time.Duration
	convs    int
	dur      time.Duration
}

func parseTop(args []string) (topConfig, error) {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockfs top [MOUNT] [-i 250ms] [-n 10]\n\n"+
			"A live view of a sockfs tree (default %s), from its files: protocol memory\n"+
			"against tcp_mem, the busiest conversations by memory, drop and prune counters\nas rates. q quits.\n\n", netview.DefaultMount)
		fs.PrintDefaults()
	}
	var c topConfig
	fs.DurationVar(&c.interval, "i", 250*time.Millisecond, "refresh interval")
	fs.IntVar(&c.convs, "n", 10, "conversations to show")
	fs.DurationVar(&c.dur, "for", 0, "quit by itself after this long (0: run until q)")
	mount, err := parseToolArgs(fs, args)
	if err != nil {
		return c, err
	}
	c.mount = mount
	if c.interval < 10*time.Millisecond {
		return c, usageError{fmt.Errorf("-i must be at least 10ms")}
	}
	if c.convs < 0 {
		return c, usageError{fmt.Errorf("-n must be 0 or more")}
	}
	return c, nil
}

// topCmd is `sockfs top`.
func topCmd(args []string) error {
	cfg, err := parseTop(args)
	if err == flag.ErrHelp {
		return nil
	}
	if err != nil {
		return err
	}
	if err := netview.CheckMount(cfg.mount); err != nil {
		return err
	}
	return runTop(cfg, os.Stdin, os.Stdout)
}

// rawMode puts the terminal on fd in non-canonical, no-echo mode (signals
// still work) and returns the function that restores it. If fd is not a
// terminal it does nothing.
func rawMode(fd int) func() {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}

// termSize returns the terminal's columns and rows (80x24 if unknown).
func termSize(f *os.File) (int, int) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return 80, 24
	}
	return int(ws.Col), int(ws.Row)
}

// runTop refreshes the screen every cfg.interval until q (or Ctrl-C,
// SIGTERM, or cfg.dur). It reads keys from in in a goroutine that ends at
// q or at the end of input.
func runTop(cfg topConfig, in *os.File, out *os.File) error {
	restore := rawMode(int(in.Fd()))
	defer restore()
	quit := make(chan struct{})
	go func() {
		buf := make([]byte, 16)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return // no input (e.g. </dev/null): run until a signal or -for
			}
			if strings.ContainsAny(string(buf[:n]), "qQ\x03\x04") {
				close(quit)
				return
			}
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var end <-chan time.Time
	if cfg.dur > 0 {
		end = time.After(cfg.dur)
	}
	fmt.Fprint(out, "\x1b[?1049h\x1b[?25l") // alternate screen, hide cursor
	defer fmt.Fprint(out, "\x1b[?25h\x1b[?1049l")
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	var prev *netview.Snapshot
	for {
		snap, err := netview.Read(cfg.mount)
		w, h := termSize(out)
		var lines []string
		if err != nil {
			lines = []string{"sockfs top: " + err.Error()}
		} else {
			lines = topScreen(cfg, snap, prev, w, h)
			prev = snap
		}
		writeScreen(out, lines, w, h)
		select {
		case <-quit:
			return nil
		case <-sig:
			return nil
		case <-end:
			return nil
		case <-tick.C:
		}
	}
}

// writeScreen draws lines from the top left, each cut to w columns,
// clearing what is left of the previous frame.
func writeScreen(out io.Writer, lines []string, w, h int) {
	var b strings.Builder
	b.WriteString("\x1b[H")
	for i, l := range lines {
		if i >= h {
			break
		}
		if len(l) > w {
			l = l[:w]
		}
		b.WriteString(l)
		b.WriteString("\x1b[K")
		if i < h-1 && i < len(lines)-1 {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\x1b[J")
	io.WriteString(out, b.String())
}

// memBar draws used against the thresholds on a scale of high: '#' up to
// used, '|' at low and pressure, ']' at high.
func memBar(used, low, press, high int64, width int) string {
	if high <= 0 || width < 10 {
		return ""
	}
	pos := func(v int64) int { return int(min(v, high) * int64(width-1) / high) }
	bar := []byte(strings.Repeat(".", width))
	for i := 0; i <= pos(used) && used > 0; i++ {
		bar[i] = '#'
	}
	bar[pos(low)] = 'L'
	bar[pos(press)] = 'P'
	bar[width-1] = 'H'
	return "[" + string(bar) + "]"
}

// topScreen renders one frame. prev, if not nil, is the previous snapshot
// for rates.
func topScreen(cfg topConfig, s, prev *netview.Snapshot, w, h int) []string {
	var l []string
	add := func(format string, a ...any) { l = append(l, fmt.Sprintf(format, a...)) }
	add("sockfs top  %s  %s  every %v  (q quits)", cfg.mount, s.Time.Format("15:04:05"), cfg.interval)
	add("")
	add("PROTOCOL MEMORY (pages of %d bytes; L low, P pressure, H high)", pageSize)
	for _, p := range s.Protocols {
		name := strings.ToLower(p.Name)
		add("%-4s sockets %-6d memory %d pages (%d KiB)  pressure: %s", p.Name, p.Sockets, p.Memory, p.Memory*pageSize/1024, p.Pressure)
		add("     %s_mem  low %d  pressure %d  high %d", name, p.Low, p.PressAt, p.High)
		if bar := memBar(p.Memory, p.Low, p.PressAt, p.High, min(60, w-10)); bar != "" {
			pct := 0.0
			if p.High > 0 {
				pct = float64(p.Memory) * 100 / float64(p.High)
			}
			add("     %s %5.1f%% of high", bar, pct)
		}
	}
	if st := s.Sockstat; st != nil {
		add("sockstat: TCP inuse %d orphan %d tw %d alloc %d mem %d | UDP inuse %d mem %d",
			st["TCP"]["inuse"], st["TCP"]["orphan"], st["TCP"]["tw"], st["TCP"]["alloc"], st["TCP"]["mem"],
			st["UDP"]["inuse"], st["UDP"]["mem"])
	}
	// The counters that are not 0 get a row each; those still at 0
	// share one, so that the conversations fit a 24-row terminal.
	var counters, zero []string
	for _, k := range topCounters {
		v, ok := s.Netstat.GetKey(k)
		if !ok {
			continue
		}
		if v == 0 {
			zero = append(zero, k[strings.IndexByte(k, '.')+1:])
			continue
		}
		rate := "-"
		if prev != nil {
			if pv, ok := prev.Netstat.GetKey(k); ok {
				if dt := s.Time.Sub(prev.Time).Seconds(); dt > 0 {
					rate = fmt.Sprintf("%.1f", float64(v-pv)/dt)
				}
			}
		}
		counters = append(counters, fmt.Sprintf("%-34s %14d %12s", k, v, rate))
	}
	if len(zero) > 0 {
		counters = append(counters, "at 0: "+strings.Join(zero, " "))
	}
	var convs []netview.Conv
	for _, c := range s.Convs {
		if c.InUse() {
			convs = append(convs, c)
		}
	}
	// Rows left for conversations (two each) below the counters and the
	// three header rows; if not even one fits, the counters give way.
	want := min(cfg.convs, len(convs))
	room := h - len(l) - 2 - len(counters) - 3
	if want > 0 && room < 2 {
		cut := min(len(counters), 2-room+1)
		counters = append(counters[:len(counters)-cut], fmt.Sprintf("(%d more counter rows: a taller window shows them)", cut))
		room = h - len(l) - 2 - len(counters) - 3
	}
	add("")
	add("%-34s %14s %12s", "DROPS AND PRUNING (netstat)", "total", "per second")
	l = append(l, counters...)
	add("")
	memOf := func(c netview.Conv) int64 { return c.Mem.R + c.Mem.W + c.Mem.F }
	sort.SliceStable(convs, func(i, j int) bool { return memOf(convs[i]) > memOf(convs[j]) })
	n := min(want, max(room/2, min(want, 1)))
	add("BUSIEST CONVERSATIONS BY MEMORY (r+w+f bytes)  %d of %d", n, len(convs))
	add("%-8s %-10s %-21s %-21s %8s %8s %9s", "Conv", "State", "Local", "Peer", "Recv-Q", "Send-Q", "r+w+f")
	for _, c := range convs[:n] {
		qin, _ := c.Field("qin")
		qout, _ := c.Field("qout")
		add("%-8s %-10s %-21s %-21s %8d %8d %9d", c.Name(), ssState(c), c.Local, c.Remote, qin, qout, memOf(c))
		add("         %s", c.Mem.Text)
	}
	return l
}
