package main

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotRun is one trace in a figure, with which side of the transfer its
// conversation was.
type plotRun struct {
	label string
	d     *traceData
	// sender: the conversation's bytes_acked grew more than its
	// bytes_received (sockfs sent); else it received, and the sender's
	// figures come from peer_* columns when the trace has them.
	sender bool
}

func newPlotRun(label string, d *traceData) *plotRun {
	return &plotRun{label: label, d: d, sender: d.growth("bytes_acked") > d.growth("bytes_received")}
}

// senderCol is the column with the sender's view of field: the
// conversation's own when sockfs sent, else the peer's (ss -ti) if
// sampled; "" if the trace has neither.
func (r *plotRun) senderCol(field string) string {
	if r.sender {
		if r.d.has(field) {
			return field
		}
		return ""
	}
	if r.d.has("peer_" + field) {
		return "peer_" + field
	}
	return ""
}

// rttWindow is the run's typical RTT in seconds (the median srtt of the
// sender), the window throughput is averaged over; 100 ms if unknown
// (known false).
func (r *plotRun) rttWindow() (secs float64, known bool) {
	if c := r.senderCol("srtt"); c != "" {
		if m := r.d.median(c); m > 0 {
			return m / 1e6, true
		}
	}
	return 0.1, false
}

// shade is a plotter that fills the full height of the data area over
// spans of x: the memory pressure episodes.
type shade struct {
	spans [][2]float64
	color color.Color
}

func (s shade) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	c.SetColor(s.color)
	for _, sp := range s.spans {
		x0, x1 := trX(sp[0]), trX(sp[1])
		if x1-x0 < 1 {
			x1 = x0 + 1
		}
		x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
		if x1 <= x0 {
			continue
		}
		var path vg.Path
		path.Move(vg.Point{X: x0, Y: c.Min.Y})
		path.Line(vg.Point{X: x1, Y: c.Min.Y})
		path.Line(vg.Point{X: x1, Y: c.Max.Y})
		path.Line(vg.Point{X: x0, Y: c.Max.Y})
		path.Close()
		c.Fill(path)
	}
}

func (s shade) Thumbnail(c *draw.Canvas) {
	c.SetColor(s.color)
	c.Fill(c.Rectangle.Path())
}

var plotColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 255}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 255},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 255}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 255},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 255}, color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 255},
}

// faded is c at a low opacity, for raw lines behind smoothed ones.
func faded(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	// Premultiplied, as color.RGBA is.
	f := float64(a) / 255
	return color.RGBA{R: uint8(float64(r>>8) * f), G: uint8(float64(g>>8) * f), B: uint8(float64(b>>8) * f), A: a}
}

// cleanTicks are gonum's default ticks labelled without trailing zeros
// ("250", not "250.00").
type cleanTicks struct{}

func (cleanTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(math.Round(ts[i].Value*1e6)/1e6, 'f', -1, 64)
		}
	}
	return ts
}

// seriesDashes tell a run's series apart in an overlay, where the color
// is the run's.
var seriesDashes = [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)},
	{vg.Points(8), vg.Points(3), vg.Points(2), vg.Points(3)}}

// panel is one plot of the figure; legend counts its entries, so that
// makeRoom can keep the legend clear of the data.
type panel struct {
	p      *plot.Plot
	runs   []*plotRun
	title  string
	legend int
	log    bool
	// oneStack: the runs share the protocol-wide columns (plotConfig).
	oneStack bool
	// first: the top panel, whose legend explains the shading.
	first bool
	// global: the panel draws protocol-wide columns of one stack, so
	// its series are colored as a single run's.
	global bool
}

// globalRuns are the runs whose protocol-wide columns (protocols,
// netstat) the panel draws: all, or the first when they are one stack's.
func (pn *panel) globalRuns() []*plotRun {
	if pn.oneStack {
		return pn.runs[:1]
	}
	return pn.runs
}

func newPanelFor(runs []*plotRun, title string) *panel {
	p := plot.New()
	p.X.Label.Text = "time (s)"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Y.Tick.Marker = cleanTicks{}
	p.X.Tick.Marker = cleanTicks{}
	p.Add(plotter.NewGrid())
	return &panel{p: p, runs: runs, title: title}
}

func (pn *panel) overlay() bool { return len(pn.runs) > 1 }

// line adds pts: in an overlay, colored by run and dashed by series; in a
// single run, colored by series.
func (pn *panel) line(run, series int, label string, pts plotter.XYs, width float64) error {
	if len(pts) == 0 {
		return nil
	}
	if pn.log {
		var pos plotter.XYs
		for _, pt := range pts {
			if pt.Y > 0 {
				pos = append(pos, pt)
			}
		}
		if len(pos) == 0 {
			return nil
		}
		pts = pos
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Width = vg.Points(width)
	if pn.overlay() && !pn.global {
		l.Color = plotColors[run%len(plotColors)]
		l.Dashes = seriesDashes[series%len(seriesDashes)]
		label = pn.runs[run].label + " " + label
	} else {
		l.Color = plotColors[series%len(plotColors)]
	}
	pn.p.Add(l)
	if label != "" {
		pn.p.Legend.Add(label, l)
		pn.legend++
	}
	return nil
}

// thin adds a raw series under a smoothed one: same color, faded, no
// legend entry of its own.
func (pn *panel) thin(run, series int, pts plotter.XYs) error {
	if len(pts) < 2 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	c := plotColors[series%len(plotColors)]
	if pn.overlay() {
		c = plotColors[run%len(plotColors)]
	}
	l.Color = faded(c, 70)
	l.Width = vg.Points(0.4)
	pn.p.Add(unranged{l})
	return nil
}

// unranged hides a plotter's data range, so that the axes fit the other
// lines: the raw per-sample rate's spikes are clipped at the top rather
// than squashing the smoothed lines to the bottom.
type unranged struct{ plot.Plotter }

// shadePressure shades each run's memory pressure episodes.
func (pn *panel) shadePressure() {
	for i, r := range pn.globalRuns() {
		spans := r.d.pressureSpans()
		if len(spans) == 0 {
			continue
		}
		c, label := faded(color.RGBA{R: 255, G: 80, B: 80, A: 255}, 60), "TCP memory pressure"
		if pn.overlay() && !pn.oneStack {
			c, label = faded(plotColors[i%len(plotColors)], 40), r.label+": TCP memory pressure"
		}
		s := shade{spans: spans, color: c}
		pn.p.Add(s)
		if pn.first {
			// Said once, in the top panel.
			pn.p.Legend.Add(label, s)
			pn.legend++
		}
	}
}

// makeRoom raises the top of the y axis so that the legend, in the top
// left corner, sits above the data rather than on it. panelH is the
// panel's height on the page.
func (pn *panel) makeRoom(panelH vg.Length) {
	if pn.legend == 0 {
		return
	}
	lineH := pn.p.Legend.TextStyle.Height("Mg") + pn.p.Legend.Padding
	dataH := panelH - 3*pn.p.Title.TextStyle.Height("Mg") - 3*pn.p.X.Label.TextStyle.Height("Mg")
	if dataH <= 0 {
		return
	}
	f := float64(vg.Length(pn.legend)*lineH+vg.Points(4)) / float64(dataH)
	f = math.Min(f, 0.75)
	y := &pn.p.Y
	if math.IsInf(y.Max, 0) || math.IsInf(y.Min, 0) || y.Max <= y.Min {
		return
	}
	if pn.log {
		f = math.Min(f, 0.5)
		lo, hi := math.Log10(y.Min), math.Log10(y.Max)
		y.Max = math.Pow(10, lo+(hi-lo)/(1-f))
		return
	}
	y.Max = y.Min + (y.Max-y.Min)/(1-f)
}

// draw fills the panel called name.
func (pn *panel) draw(name string) error {
	pn.shadePressure()
	var err error
	switch name {
	case "mem":
		err = pn.mem()
	case "rmem":
		err = pn.sideMem(false)
	case "wmem":
		err = pn.sideMem(true)
	case "cwnd":
		err = pn.cwnd()
	case "throughput":
		err = pn.throughput()
	case "qdelay":
		err = pn.qdelay()
	case "rate":
		err = pn.rates()
	case "tcpmem":
		err = pn.tcpmem()
	case "pressure":
		err = pn.pressure()
	default:
		err = fmt.Errorf("no panel %q", name)
	}
	if pn.p.Y.Min > 0 && !pn.log {
		pn.p.Y.Min = 0
	}
	return err
}

func (pn *panel) setTitle(what string) { pn.p.Title.Text = pn.title + ": " + what }

// mem: one run shows every skmem field and rcv_wnd; an overlay shows, per
// run, what bounds its side: r and rb for a receiver, w and tb for a
// sender.
func (pn *panel) mem() error {
	pn.setTitle("socket memory (skmem)")
	pn.p.Y.Label.Text = "KiB"
	if !pn.overlay() {
		r := pn.runs[0]
		for i, k := range []string{"r", "rb", "w", "tb", "f"} {
			if err := pn.line(0, i, k, r.d.xy("mem_"+k, 1.0/1024), 1.2); err != nil {
				return err
			}
		}
		// The advertised window, for a receiver the number memory limits.
		return pn.line(0, 5, "rcv_wnd (status)", r.d.xy("rcv_wnd", 1.0/1024), 1.2)
	}
	for i, r := range pn.runs {
		keys := []string{"r", "rb"}
		if r.sender {
			keys = []string{"w", "tb"}
		}
		for j, k := range keys {
			if err := pn.line(i, j, k, r.d.xy("mem_"+k, 1.0/1024), 1.2); err != nil {
				return err
			}
		}
	}
	return nil
}

// sideMem: the memory of the runs of one side: a sender's wmem_queued and
// sndbuf (which sk_stream_moderate_sndbuf shrinks under pressure and
// tcp_new_space grows), or a receiver's rmem_alloc, rcvbuf and advertised
// window (which pruning and collapsing keep under rcvbuf).
func (pn *panel) sideMem(sender bool) error {
	keys, labels := []string{"mem_r", "mem_rb", "rcv_wnd"}, []string{"r (rmem_alloc)", "rb (rcvbuf)", "rcv_wnd"}
	pn.setTitle("receiver's memory")
	if sender {
		keys, labels = []string{"mem_w", "mem_tb"}, []string{"w (wmem_queued)", "tb (sndbuf)"}
		pn.setTitle("sender's memory")
	}
	pn.p.Y.Label.Text = "KiB"
	for i, r := range pn.runs {
		if r.sender != sender {
			continue
		}
		for j, k := range keys {
			if err := pn.line(i, j, labels[j], r.d.xy(k, 1.0/1024), 1.2); err != nil {
				return err
			}
		}
	}
	return nil
}

// cwnd: the sender's congestion window, from the conversation when
// sockfs sent and from the peer's ss -ti when it received.
func (pn *panel) cwnd() error {
	pn.p.Y.Label.Text = "segments"
	cols, labels := make([]string, len(pn.runs)), make([]string, len(pn.runs))
	var series []plotter.XYs
	for i, r := range pn.runs {
		c := r.senderCol("cwnd")
		label := "cwnd"
		switch {
		case c == "" && r.d.has("cwnd"):
			// No sample of the sender: say whose cwnd this is.
			c, label = "cwnd", "cwnd of sockfs, the receiver (not the sender's)"
		case strings.HasPrefix(c, "peer_"):
			label = "cwnd (kernel sender, ss -ti)"
		}
		cols[i], labels[i] = c, label
		series = append(series, r.d.xy(c, 1))
	}
	pn.logIfSpread(series)
	for i, r := range pn.runs {
		c := cols[i]
		if c == "" {
			continue
		}
		if err := pn.line(i, 0, labels[i], series[i], 1.2); err != nil {
			return err
		}
		if pn.overlay() {
			continue
		}
		// ssthresh, once it is below its initial "infinity".
		var pts plotter.XYs
		sc := strings.TrimSuffix(c, "cwnd") + "ssthresh"
		for _, pt := range r.d.xy(sc, 1) {
			if pt.Y < 1<<20 {
				pts = append(pts, pt)
			}
		}
		if err := pn.line(i, 1, "ssthresh", pts, 0.8); err != nil {
			return err
		}
	}
	pn.setTitle("the sender's cwnd")
	return nil
}

// logSpread is how far apart (a factor) the runs' medians may be before a
// panel switches to a log scale, so that a run 50 times slower than
// another is not a flat line at zero.
const logSpread = 20

// logIfSpread puts the panel on a log scale when the medians of series
// (above zero) differ by more than logSpread. Call it before adding lines.
func (pn *panel) logIfSpread(series []plotter.XYs) {
	lo, hi := math.Inf(1), 0.0
	for _, pts := range series {
		var ys []float64
		for _, p := range pts {
			if p.Y > 0 {
				ys = append(ys, p.Y)
			}
		}
		if len(ys) == 0 {
			continue
		}
		sort.Float64s(ys)
		m := ys[len(ys)/2]
		lo, hi = min(lo, m), max(hi, m)
	}
	if hi > 0 && hi/lo > logSpread {
		pn.log = true
		pn.p.Y.Scale = plot.LogScale{}
		pn.p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		pn.p.Y.Label.Text += " (log)"
	}
}

// throughputCol is the byte counter of the run's goodput: bytes_acked of a
// sender, bytes_received of a receiver (status, tcp_info's counters).
func (r *plotRun) throughputCol() (string, string) {
	if r.sender && r.d.has("bytes_acked") {
		return "bytes_acked", "acked"
	}
	if r.d.has("bytes_received") {
		return "bytes_received", "received"
	}
	return "", ""
}

// throughput: the conversation's goodput averaged over one RTT (the
// sender's median srtt), with the per-sample rate as a thin line; without
// tcp_info's byte counters, the busiest interface or segment rates.
func (pn *panel) throughput() error {
	pn.p.Y.Label.Text = "Mbit/s"
	smooth, labels, cols := make([]plotter.XYs, len(pn.runs)), make([]string, len(pn.runs)), make([]string, len(pn.runs))
	for i, r := range pn.runs {
		col, what := r.throughputCol()
		if col == "" {
			if pn.overlay() {
				return fmt.Errorf("%s: no bytes_acked or bytes_received column to compare", r.label)
			}
			return pn.deviceThroughput(r)
		}
		win, known := r.rttWindow()
		cols[i], smooth[i] = col, r.d.rate(col, 8e-6, win)
		labels[i] = fmt.Sprintf("%s, per %.0f ms RTT", what, win*1000)
		if !known {
			labels[i] = fmt.Sprintf("%s, per %.0f ms (RTT unknown)", what, win*1000)
		}
	}
	pn.logIfSpread(smooth)
	for i, r := range pn.runs {
		if !pn.log { // on a log scale the raw samples' zeros would be gaps
			if err := pn.thin(i, 0, r.d.rate(cols[i], 8e-6, 0)); err != nil {
				return err
			}
		}
		if err := pn.line(i, 0, labels[i], smooth[i], 1.6); err != nil {
			return err
		}
	}
	pn.setTitle("throughput (thin: every sample)")
	if pn.log {
		pn.setTitle("throughput, per RTT")
	}
	return nil
}

// deviceThroughput is the fallback of a trace without tcp_info's byte
// counters: the busiest interface's rx and tx bytes (the whole device:
// every conversation and the headers), else segment rates.
func (pn *panel) deviceThroughput(r *plotRun) error {
	const win = 0.1
	pn.setTitle("throughput")
	d := r.d
	best, bestBytes := "", -1.0
	for name := range d.cols {
		if strings.HasPrefix(name, "ipifc") && (strings.HasSuffix(name, "_rx_bytes") || strings.HasSuffix(name, "_tx_bytes")) && d.has(name) {
			if total := d.growth(name); total > bestBytes || (total == bestBytes && name < best) {
				best, bestBytes = name, total
			}
		}
	}
	if best != "" {
		dev := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(best, "ipifc"), "_rx_bytes"), "_tx_bytes")
		for i, dir := range []string{"rx", "tx"} {
			name := "ipifc" + dev + "_" + dir + "_bytes"
			if err := pn.line(0, i, fmt.Sprintf("ipifc/%s %s (whole device, with headers)", dev, dir), d.rate(name, 8e-6, win), 1.2); err != nil {
				return err
			}
		}
		return nil
	}
	pn.p.Y.Label.Text = "segments/s"
	for i, name := range []string{"Tcp.InSegs", "Tcp.OutSegs"} {
		if d.has(name) {
			if err := pn.line(0, i, name+" rate (all TCP, segments not bytes)", d.rate(name, 1, win), 1.2); err != nil {
				return err
			}
		}
	}
	return nil
}

// qdelay: srtt - min_rtt of the sender, the delay its data spends queued
// beyond the path's base RTT (srtt is smoothed over about 8 samples).
func (pn *panel) qdelay() error {
	pn.setTitle("queueing delay: srtt - min_rtt of the sender")
	pn.p.Y.Label.Text = "ms"
	for i, r := range pn.runs {
		sc, mc := r.senderCol("srtt"), r.senderCol("min_rtt")
		if sc == "" || mc == "" {
			continue
		}
		var pts plotter.XYs
		for j := range r.d.t {
			if r.d.ok[sc][j] && r.d.ok[mc][j] && r.d.cols[mc][j] > 0 {
				pts = append(pts, plotter.XY{X: r.d.t[j], Y: (r.d.cols[sc][j] - r.d.cols[mc][j]) / 1000})
			}
		}
		if err := pn.line(i, 0, "srtt - min_rtt", pts, 1.2); err != nil {
			return err
		}
	}
	return nil
}

// rates: the sender's pacing_rate and delivery_rate (tcp_info) and, for
// BBR, its bandwidth estimate.
func (pn *panel) rates() error {
	pn.setTitle("pacing_rate, delivery_rate, BBR bw")
	pn.p.Y.Label.Text = "Mbit/s"
	type ser struct {
		run, n int
		label  string
		pts    plotter.XYs
	}
	var all []ser
	var delivery []plotter.XYs
	for i, r := range pn.runs {
		for j, k := range []string{"delivery_rate", "pacing_rate", "bbr_bw"} {
			if c := r.senderCol(k); c != "" {
				all = append(all, ser{i, j, k, r.d.xy(c, 1e-6)})
				if j == 0 {
					delivery = append(delivery, all[len(all)-1].pts)
				}
			}
		}
	}
	pn.logIfSpread(delivery)
	for _, s := range all {
		if err := pn.line(s.run, s.n, s.label, s.pts, 1); err != nil {
			return err
		}
	}
	return nil
}

// tcpmem: TCP's memory in pages (protocols) against the tcp_mem
// thresholds of the first run.
func (pn *panel) tcpmem() error {
	pn.setTitle("TCP memory (protocols) against tcp_mem")
	pn.global = pn.oneStack
	pn.p.Y.Label.Text = "pages"
	for i, r := range pn.globalRuns() {
		if err := pn.line(i, 0, "tcp memory", r.d.xy("tcp_memory", 1), 1.4); err != nil {
			return err
		}
	}
	d := pn.runs[0].d
	gray := color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 255}
	for j, k := range []string{"low", "pressure", "high"} {
		col := "tcp_mem_" + k
		if !d.has(col) {
			continue
		}
		v := d.cols[col][len(d.cols[col])-1]
		pts := plotter.XYs{{X: d.t[0], Y: v}, {X: d.t[len(d.t)-1], Y: v}}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = gray
		l.Dashes = seriesDashes[j+1]
		pn.p.Add(l)
		pn.p.Legend.Add(fmt.Sprintf("tcp_mem %s %.0f", k, v), l)
		pn.legend++
	}
	return nil
}

// pressureCounters are the netstat counters of the pressure panel.
var pressureCounters = []string{"TcpExt.TCPMemoryPressures", "TcpExt.PruneCalled", "TcpExt.RcvPruned",
	"TcpExt.TCPRcvCollapsed", "TcpExt.OfoPruned", "TcpExt.TCPRcvQDrop"}

// pressure: the counters of memory pressure and pruning, cumulative from
// the start of the trace, on a log scale (collapses number in thousands
// where pressure entries number a few); the title gives how often
// pressure was entered and left and for how long.
func (pn *panel) pressure() error {
	pn.log = true
	pn.global = pn.oneStack
	pn.p.Y.Scale = plot.LogScale{}
	pn.p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	pn.p.Y.Label.Text = "count since start (log)"
	var notes []string
	for i, r := range pn.globalRuns() {
		for j, k := range pressureCounters {
			if !r.d.has(k) {
				continue
			}
			var pts plotter.XYs
			base := math.NaN()
			for n, v := range r.d.cols[k] {
				if !r.d.ok[k][n] {
					continue
				}
				if math.IsNaN(base) {
					base = v
				}
				pts = append(pts, plotter.XY{X: r.d.t[n], Y: v - base})
			}
			label := fmt.Sprintf("%s %.0f", strings.TrimPrefix(k, "TcpExt."), r.d.growth(k))
			if err := pn.line(i, j, label, pts, 1.2); err != nil {
				return err
			}
		}
		note := fmt.Sprintf("pressure entered %.0f, left %d", r.d.growth("TcpExt.TCPMemoryPressures"), r.d.pressureLeft())
		if r.d.has("TcpExt.TCPMemoryPressuresChrono") {
			note += fmt.Sprintf(", %.1f s under pressure", r.d.growth("TcpExt.TCPMemoryPressuresChrono")/1000)
		}
		if pn.overlay() && !pn.oneStack {
			note = r.label + ": " + note
		}
		notes = append(notes, note)
	}
	pn.setTitle(strings.Join(notes, "; "))
	if pn.p.Y.Min <= 0 || math.IsInf(pn.p.Y.Min, 0) {
		pn.p.Y.Min = 0.8
	}
	if pn.p.Y.Max < 10 {
		pn.p.Y.Max = 10
	}
	return nil
}
