package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
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

type plotConfig struct {
	in, out string
	w, h    int // pixels
	title   string
}

func parsePlot(args []string) (plotConfig, error) {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockfs plot run.csv -o run.svg|run.png [-width 1200] [-height 900]\n\n"+
			"Draws a trace (sockfs trace) over time: socket memory (r, rb, w, tb, f),\ncwnd, and throughput, with TCP memory pressure shaded.\n\n")
		fs.PrintDefaults()
	}
	var c plotConfig
	fs.StringVar(&c.out, "o", "", "output file, .svg or .png")
	fs.IntVar(&c.w, "width", 1200, "width in pixels (at 96 dpi)")
	fs.IntVar(&c.h, "height", 900, "height in pixels (at 96 dpi)")
	fs.StringVar(&c.title, "title", "", "title (default: the CSV's name)")
	in, err := parseOneArg(fs, args)
	if err != nil {
		return c, err
	}
	if in == "" {
		return c, usageError{fmt.Errorf("need a CSV file")}
	}
	c.in = in
	if c.out == "" {
		return c, usageError{fmt.Errorf("need -o FILE.svg or FILE.png")}
	}
	if ext := strings.ToLower(filepath.Ext(c.out)); ext != ".svg" && ext != ".png" {
		return c, usageError{fmt.Errorf("-o %q: want .svg or .png", c.out)}
	}
	if c.w < 200 || c.h < 200 || c.w > 10000 || c.h > 10000 {
		return c, usageError{fmt.Errorf("-width and -height must be between 200 and 10000")}
	}
	if c.title == "" {
		c.title = filepath.Base(c.in)
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
	f, err := os.Open(cfg.in)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, err := readTraceCSV(f)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.in, err)
	}
	return drawTrace(tr, cfg)
}

// traceData is a trace CSV by column: numeric values, NaN-free (a missing
// value is not stored; ok[i] says whether row i had one).
type traceData struct {
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
	d := &traceData{cols: map[string][]float64{}, ok: map[string][]bool{}, text: map[string][]string{}}
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

// rate differentiates a counter column: (v[i]-v[i-1])/(t[i]-t[i-1]) * scale.
// Rates are averaged over at least minDt seconds so that 10 ms samples of a
// bursty counter give a readable line.
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
		if dt < minDt {
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

func addLine(p *plot.Plot, i int, label string, pts plotter.XYs) error {
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = plotColors[i%len(plotColors)]
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}

func newPanel(title, ylabel string, spans [][2]float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	if len(spans) > 0 {
		s := shade{spans: spans, color: color.RGBA{R: 255, G: 80, B: 80, A: 60}}
		p.Add(s)
		p.Legend.Add("TCP memory pressure", s)
	}
	return p
}

// throughput picks the best byte counter the trace has and returns its
// rate in Mbit/s with an honest label: the conversation's own byte counter
// (status's bytes_received or bytes_acked), else the busiest interface's rx and tx bytes
// (the whole device: every conversation and the headers), else segment
// rates.
func (d *traceData) throughput(p *plot.Plot) (string, error) {
	const win = 0.1 // seconds over which rates are averaged
	for _, name := range []string{"bytes_received", "bytes_acked"} {
		if d.has(name) {
			return "Mbit/s", addLine(p, 0, name+" rate (this conversation)", d.rate(name, 8e-6, win))
		}
	}
	best, bestBytes := "", -1.0
	for name := range d.cols {
		if strings.HasPrefix(name, "ipifc") && (strings.HasSuffix(name, "_rx_bytes") || strings.HasSuffix(name, "_tx_bytes")) && d.has(name) {
			v := d.cols[name]
			if total := v[len(v)-1] - v[0]; total > bestBytes || (total == bestBytes && name < best) {
				best, bestBytes = name, total
			}
		}
	}
	if best != "" {
		dev := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(best, "ipifc"), "_rx_bytes"), "_tx_bytes")
		for i, dir := range []string{"rx", "tx"} {
			name := "ipifc" + dev + "_" + dir + "_bytes"
			if err := addLine(p, i, fmt.Sprintf("ipifc/%s %s (whole device, with headers)", dev, dir), d.rate(name, 8e-6, win)); err != nil {
				return "", err
			}
		}
		return "Mbit/s", nil
	}
	for i, name := range []string{"Tcp.InSegs", "Tcp.OutSegs"} {
		if d.has(name) {
			if err := addLine(p, i, name+" rate (all TCP, segments not bytes)", d.rate(name, 1, win)); err != nil {
				return "", err
			}
		}
	}
	return "segments/s", nil
}

// drawTrace draws three panels, one above the other: memory, cwnd,
// throughput.
func drawTrace(d *traceData, cfg plotConfig) error {
	spans := d.pressureSpans()
	mem := newPanel(cfg.title+": socket memory (skmem)", "KiB", spans)
	for i, k := range []string{"r", "rb", "w", "tb", "f"} {
		if err := addLine(mem, i, k, d.xy("mem_"+k, 1.0/1024)); err != nil {
			return err
		}
	}
	// The advertised window, for a receiver the number memory limits.
	if err := addLine(mem, 5, "rcv_wnd (status)", d.xy("rcv_wnd", 1.0/1024)); err != nil {
		return err
	}
	cw := newPanel("cwnd", "segments", spans)
	if err := addLine(cw, 0, "cwnd", d.xy("cwnd", 1)); err != nil {
		return err
	}
	tp := newPanel("throughput", "", spans)
	unit, err := d.throughput(tp)
	if err != nil {
		return err
	}
	tp.Y.Label.Text = unit
	plots := [][]*plot.Plot{{mem}, {cw}, {tp}}

	w := vg.Length(cfg.w) * vg.Inch / plotDPI
	h := vg.Length(cfg.h) * vg.Inch / plotDPI
	f, err := os.Create(cfg.out)
	if err != nil {
		return err
	}
	var wt io.WriterTo
	var canvas vg.CanvasSizer
	if strings.ToLower(filepath.Ext(cfg.out)) == ".png" {
		img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
		canvas, wt = img, vgimg.PngCanvas{Canvas: img}
	} else {
		svg := vgsvg.New(w, h)
		canvas, wt = svg, svg
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
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
