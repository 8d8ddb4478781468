package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// plotDPI is the PNG resolution; sizes are given in pixels at this DPI.
const plotDPI = 96

// plotPanels are the panels plot can draw, in the order --panels names
// them.
var plotPanels = map[string]string{
	"mem":        "socket memory (skmem)",
	"rmem":       "the receiving runs' r, rb and rcv_wnd",
	"wmem":       "the sending runs' w and tb (sndbuf)",
	"cwnd":       "the sender's cwnd",
	"throughput": "goodput, smoothed per RTT, raw as a thin line",
	"qdelay":     "queueing delay: srtt - min_rtt",
	"rate":       "pacing_rate, delivery_rate and BBR's bw",
	"tcpmem":     "TCP's pages against tcp_mem",
	"pressure":   "pruning, collapsing and pressure counters",
}

type plotConfig struct {
	ins    []string
	labels []string
	out    string
	w, h   int // pixels
	title  string
	panels []string // nil: chosen by the side the trace measured
	// oneStack: the CSVs are traces of one stack over the same time
	// (different conversations), so the protocol-wide panels and the
	// pressure shading are drawn once, from the first.
	oneStack bool
}

func parsePlot(args []string) (plotConfig, error) {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockfs plot run.csv [more.csv ...] -o fig.svg|fig.png [--label NAME ...] [--panels a,b] [-width 1200] [-height 900]\n\n"+
			"Draws traces (sockfs trace) over time, one panel above the other, several\nruns overlaid in one figure (legend from --label, given once per CSV, or the\nfile names). TCP memory pressure is shaded. Panels:\n")
		var names []string
		for n := range plotPanels {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(fs.Output(), "  %-10s %s\n", n, plotPanels[n])
		}
		fmt.Fprintf(fs.Output(), "Default: for a sender throughput,cwnd,qdelay,mem; for a receiver mem,cwnd,throughput.\n\n")
		fs.PrintDefaults()
	}
	var c plotConfig
	fs.StringVar(&c.out, "o", "", "output file, .svg or .png")
	fs.IntVar(&c.w, "width", 1200, "width in pixels (at 96 dpi)")
	fs.IntVar(&c.h, "height", 900, "height in pixels (at 96 dpi)")
	fs.StringVar(&c.title, "title", "", "title (default: the CSV's name)")
	fs.Func("label", "legend name of the next CSV, once per CSV (default: the file names)", func(s string) error {
		c.labels = append(c.labels, s)
		return nil
	})
	fs.BoolVar(&c.oneStack, "one-stack", false, "the CSVs trace one stack at the same time: draw tcp_mem, counters and pressure once")
	panels := fs.String("panels", "", "comma-separated panels, top to bottom (default by side; see above)")
	// Flags and file names in any order.
	for rest := args; ; {
		if err := fs.Parse(rest); err == flag.ErrHelp {
			return c, err
		} else if err != nil {
			return c, usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		c.ins = append(c.ins, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(c.ins) == 0 {
		return c, usageError{fmt.Errorf("need a CSV file")}
	}
	if len(c.labels) != 0 && len(c.labels) != len(c.ins) {
		return c, usageError{fmt.Errorf("%d --label for %d CSV files: give one per file or none", len(c.labels), len(c.ins))}
	}
	if len(c.labels) == 0 {
		for _, in := range c.ins {
			c.labels = append(c.labels, strings.TrimSuffix(filepath.Base(in), filepath.Ext(in)))
		}
	}
	if c.out == "" {
		return c, usageError{fmt.Errorf("need -o FILE.svg or FILE.png")}
	}
	if ext := strings.ToLower(filepath.Ext(c.out)); ext != ".svg" && ext != ".png" {
		return c, usageError{fmt.Errorf("-o %q: want .svg or .png", c.out)}
	}
	if c.w < 200 || c.h < 200 || c.w > 10000 || c.h > 10000 {
		return c, usageError{fmt.Errorf("-width and -height must be between 200 and 10000")}
	}
	if *panels != "" {
		for _, p := range strings.Split(*panels, ",") {
			p = strings.TrimSpace(p)
			if _, ok := plotPanels[p]; !ok {
				return c, usageError{fmt.Errorf("--panels: no panel %q", p)}
			}
			c.panels = append(c.panels, p)
		}
	}
	if c.title == "" {
		c.title = strings.Join(c.labels, " vs ")
	}
	return c, nil
}

// plotCmd is `sockfs plot`.
func plotCmd(args []string) error {
	cfg, err := parsePlot(args)
	if err == flag.ErrHelp {
		return nil
	}
	if err != nil {
		return err
	}
	runs, err := readRuns(cfg)
	if err != nil {
		return err
	}
	return drawRuns(runs, cfg)
}

// readRuns reads every CSV; runs to overlay must have the same columns
// (the same trace setup), or the panels would compare different things.
func readRuns(cfg plotConfig) ([]*plotRun, error) {
	var runs []*plotRun
	for i, in := range cfg.ins {
		f, err := os.Open(in)
		if err != nil {
			return nil, err
		}
		d, err := readTraceCSV(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in, err)
		}
		if i > 0 {
			if err := sameColumns(runs[0].d.head, d.head); err != nil {
				return nil, fmt.Errorf("%s and %s cannot be overlaid: %v", cfg.ins[0], in, err)
			}
		}
		runs = append(runs, newPlotRun(cfg.labels[i], d))
	}
	return runs, nil
}

// sameColumns says how two headers differ, if they do (order aside).
func sameColumns(a, b []string) error {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var missing, extra []string
	for _, s := range a {
		if !mb[s] {
			missing = append(missing, s)
		}
	}
	for _, s := range b {
		if !ma[s] {
			extra = append(extra, s)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "the second lacks columns "+strings.Join(missing, ","))
	}
	if len(extra) > 0 {
		parts = append(parts, "the second has extra columns "+strings.Join(extra, ","))
	}
	return fmt.Errorf("%s (runs to overlay must come from the same trace setup)", strings.Join(parts, "; "))
}

// traceData is a trace CSV by column: numeric values, NaN-free (a missing
// value is not stored; ok[i] says whether row i had one).
type traceData struct {
	head []string
	t    []float64 // seconds
	cols map[string][]float64
	ok   map[string][]bool
	text map[string][]string
}

func readTraceCSV(r io.Reader) (*traceData, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("no samples")
	}
	head := rows[0]
	if head[0] != "t_ms" {
		return nil, fmt.Errorf("first column is %q, want t_ms", head[0])
	}
	d := &traceData{head: head, cols: map[string][]float64{}, ok: map[string][]bool{}, text: map[string][]string{}}
	for i, row := range rows[1:] {
		t, err := strconv.ParseFloat(row[0], 64)
		if err != nil {
			return nil, fmt.Errorf("row %d: bad t_ms %q", i+2, row[0])
		}
		d.t = append(d.t, t/1000)
		for j, name := range head[1:] {
			v, err := strconv.ParseFloat(row[j+1], 64)
			d.cols[name] = append(d.cols[name], v)
			d.ok[name] = append(d.ok[name], err == nil)
			d.text[name] = append(d.text[name], row[j+1])
		}
	}
	return d, nil
}

// xy returns the points of column name that have a value.
func (d *traceData) xy(name string, scale float64) plotter.XYs {
	var pts plotter.XYs
	for i, v := range d.cols[name] {
		if d.ok[name][i] {
			pts = append(pts, plotter.XY{X: d.t[i], Y: v * scale})
		}
	}
	return pts
}

func (d *traceData) has(name string) bool {
	for _, ok := range d.ok[name] {
		if ok {
			return true
		}
	}
	return false
}

// growth is how much a counter column rose from its first value to its
// last.
func (d *traceData) growth(name string) float64 {
	first, last, seen := 0.0, 0.0, false
	for i, v := range d.cols[name] {
		if d.ok[name][i] {
			if !seen {
				first, seen = v, true
			}
			last = v
		}
	}
	return last - first
}

// median is the median of a column's values above zero (0 if none).
func (d *traceData) median(name string) float64 {
	var vs []float64
	for i, v := range d.cols[name] {
		if d.ok[name][i] && v > 0 {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0
	}
	sort.Float64s(vs)
	return vs[len(vs)/2]
}

// rate differentiates a counter column: (v[i]-v[i-1])/(t[i]-t[i-1]) * scale.
// Rates are averaged over at least minDt seconds (0: every sample).
func (d *traceData) rate(name string, scale, minDt float64) plotter.XYs {
	var pts plotter.XYs
	li := -1
	for i, v := range d.cols[name] {
		if !d.ok[name][i] {
			continue
		}
		if li < 0 {
			li = i
			continue
		}
		dt := d.t[i] - d.t[li]
		if dt < minDt || dt <= 0 {
			continue
		}
		pts = append(pts, plotter.XY{X: (d.t[i] + d.t[li]) / 2, Y: (v - d.cols[name][li]) / dt * scale})
		li = i
	}
	return pts
}

// pressureSpans are the [start, end] times where tcp_pressure_state is 1.
func (d *traceData) pressureSpans() [][2]float64 {
	var spans [][2]float64
	in := false
	for i, v := range d.cols["tcp_pressure_state"] {
		on := d.ok["tcp_pressure_state"][i] && v == 1
		switch {
		case on && !in:
			spans = append(spans, [2]float64{d.t[i], d.t[i]})
			in = true
		case on && in:
			spans[len(spans)-1][1] = d.t[i]
		case !on && in:
			spans[len(spans)-1][1] = d.t[i]
			in = false
		}
	}
	return spans
}

// pressureLeft counts the samples where tcp_pressure_state went from 1 to
// 0: pressure episodes seen to end (one shorter than the sampling interval
// is not seen; TCPMemoryPressures counts every entry).
func (d *traceData) pressureLeft() int {
	n, prev := 0, false
	for i, v := range d.cols["tcp_pressure_state"] {
		on := d.ok["tcp_pressure_state"][i] && v == 1
		if prev && !on && d.ok["tcp_pressure_state"][i] {
			n++
		}
		prev = on
	}
	return n
}

// drawRuns draws cfg's panels one above the other.
func drawRuns(runs []*plotRun, cfg plotConfig) error {
	names := cfg.panels
	if names == nil {
		if runs[0].sender {
			names = []string{"throughput", "cwnd", "qdelay", "mem"}
			if !runs[0].d.has("min_rtt") && !runs[0].d.has("peer_min_rtt") {
				names = []string{"throughput", "cwnd", "mem"}
			}
		} else {
			names = []string{"mem", "cwnd", "throughput"}
		}
	}
	w := vg.Length(cfg.w) * vg.Inch / plotDPI
	h := vg.Length(cfg.h) * vg.Inch / plotDPI
	panelH := h / vg.Length(len(names))
	// One time axis for every panel: the span of all the runs, whatever
	// each panel's data covers (a --peer column starts late).
	t0, t1 := math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		t0, t1 = min(t0, r.d.t[0]), max(t1, r.d.t[len(r.d.t)-1])
	}
	var plots [][]*plot.Plot
	for i, name := range names {
		pn := newPanelFor(runs, cfg.title)
		pn.oneStack, pn.first = cfg.oneStack, i == 0
		if err := pn.draw(name); err != nil {
			return err
		}
		pn.makeRoom(panelH)
		if t1 > t0 {
			pn.p.X.Min, pn.p.X.Max = t0, t1
		}
		plots = append(plots, []*plot.Plot{pn.p})
	}

	f, err := os.Create(cfg.out)
	if err != nil {
		return err
	}
	var wt io.WriterTo
	var canvas vg.CanvasSizer
	if strings.ToLower(filepath.Ext(cfg.out)) == ".png" {
		img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
		// A white background: PNG viewers in dark mode show transparency black.
		img.SetColor(color.White)
		img.Fill(vg.Rectangle{Max: vg.Point{X: w, Y: h}}.Path())
		canvas, wt = img, vgimg.PngCanvas{Canvas: img}
	} else {
		svg := vgsvg.New(w, h)
		canvas, wt = svg, svg
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	cs := plot.Align(plots, tiles, dc)
	for r := range plots {
		plots[r][0].Draw(cs[r][0])
	}
	if _, err := wt.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
