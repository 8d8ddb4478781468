package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// senderCSV writes a synthetic trace of a sending conversation: bytes_acked
// at mbps, srtt rtt ms over a min_rtt of base ms, cwnd growing by one per
// sample, pressure from 0.3 s to 0.6 s. extra adds a column.
func senderCSV(t *testing.T, dir, name string, mbps float64, rtt, base int, extra string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("t_ms,state,cwnd,ssthresh,srtt,min_rtt,bytes_acked,bytes_received,pacing_rate,delivery_rate,congestion,mem_r,mem_rb,mem_w,mem_tb,mem_f,tcp_pressure_state,tcp_memory,tcp_mem_low,tcp_mem_pressure,tcp_mem_high,TcpExt.TCPMemoryPressures,TcpExt.PruneCalled")
	if extra != "" {
		b.WriteString("," + extra)
	}
	b.WriteString("\n")
	for i := 0; i < 200; i++ {
		press := 0
		if i >= 30 && i < 60 {
			press = 1
		}
		acked := int64(float64(i) * mbps * 1e6 / 8 / 100) // 10 ms samples
		fmt.Fprintf(&b, "%d.000,Established,%d,2147483647,%d,%d,%d,1,%g,%g,%s,0,131072,%d,87040,4096,%d,%d,100,200,300,%d,%d",
			i*10, 10+i, rtt*1000, base*1000, acked, mbps*1.2e6, mbps*1e6, name, 4096*i%65536, press, 150+press*100, min(i/30, 2), i)
		if extra != "" {
			b.WriteString(",7")
		}
		b.WriteString("\n")
	}
	path := filepath.Join(dir, name+".csv")
	if err := os.WriteFile(path, []byte(b.String()), 0644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPlotOverlay overlays three sender runs: the legend is built from the
// labels (or the file names), each run's goodput is its own, and the
// default panels for a sender are throughput, cwnd, queueing delay and
// memory.
func TestPlotOverlay(t *testing.T) {
	dir := t.TempDir()
	a := senderCSV(t, dir, "cubic", 50, 60, 40, "")
	b := senderCSV(t, dir, "bbr", 90, 42, 40, "")
	c := senderCSV(t, dir, "reno", 30, 80, 40, "")
	svg := filepath.Join(dir, "fig.svg")
	if err := plotCmd([]string{a, b, c, "--label", "CUBIC", "--label", "BBR", "--label", "Reno", "-o", svg}); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CUBIC acked, per 60 ms RTT", "BBR acked, per 42 ms RTT", "Reno acked, per 80 ms RTT",
		"CUBIC cwnd", "Reno srtt - min_rtt", "BBR w", "queueing delay", "CUBIC vs BBR vs Reno"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
	// Without --label, the file names.
	if err := plotCmd([]string{a, b, "-o", svg, "--panels", "throughput,rate"}); err != nil {
		t.Fatal(err)
	}
	out, _ = os.ReadFile(svg)
	for _, want := range []string{"cubic acked", "bbr acked", "bbr pacing_rate", "cubic delivery_rate"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if bytes.Contains(out, []byte("cwnd")) {
		t.Error("--panels throughput,rate drew a cwnd panel")
	}

	// The runs' goodput, smoothed per RTT, is each run's own rate.
	runs, err := readRuns(plotConfig{ins: []string{a, b}, labels: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{50, 90} {
		r := runs[i]
		if !r.sender {
			t.Fatalf("run %d not seen as the sender", i)
		}
		col, _ := r.throughputCol()
		win, known := r.rttWindow()
		pts := r.d.rate(col, 8e-6, win)
		if col != "bytes_acked" || !known || len(pts) < 10 {
			t.Fatalf("run %d: column %q window %v (%v), %d points", i, col, win, known, len(pts))
		}
		for _, p := range pts {
			if p.Y < want*0.97 || p.Y > want*1.03 {
				t.Fatalf("run %d: %v Mbit/s at %v s, want %v", i, p.Y, p.X, want)
			}
		}
	}
}

// TestPlotOverlayRejects: runs with different columns, a label count that
// does not match, an unknown panel.
func TestPlotOverlayRejects(t *testing.T) {
	dir := t.TempDir()
	a := senderCSV(t, dir, "a", 50, 60, 40, "")
	b := senderCSV(t, dir, "b", 50, 60, 40, "peer_cwnd")
	out := filepath.Join(dir, "x.png")
	err := plotCmd([]string{a, b, "-o", out})
	if err == nil || !strings.Contains(err.Error(), "cannot be overlaid") || !strings.Contains(err.Error(), "extra columns peer_cwnd") {
		t.Errorf("mismatched columns: %v", err)
	}
	err = plotCmd([]string{b, a, "-o", out})
	if err == nil || !strings.Contains(err.Error(), "lacks columns peer_cwnd") {
		t.Errorf("mismatched columns, the other way: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a rejected overlay wrote its output")
	}
	if err := plotCmd([]string{a, a, "--label", "one", "-o", out}); err == nil || !strings.Contains(err.Error(), "1 --label for 2 CSV files") {
		t.Errorf("one label for two files: %v", err)
	}
	if err := plotCmd([]string{a, "--panels", "cwnd,bogus", "-o", out}); err == nil || !strings.Contains(err.Error(), `no panel "bogus"`) {
		t.Errorf("unknown panel: %v", err)
	}
}

// TestPlotReceiverSide: a receiving run's cwnd and queueing delay come from
// the peer's columns (ss -ti) when the trace has them, and the title says
// whose cwnd a receiver-only trace shows.
func TestPlotReceiverSide(t *testing.T) {
	var b strings.Builder
	b.WriteString("t_ms,cwnd,srtt,bytes_acked,bytes_received,peer_cwnd,peer_srtt,peer_min_rtt\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "%d,10,0,1,%d,%d,%d,50000\n", i*10, i*12500, 20+i, 50000+i*100)
	}
	d, err := readTraceCSV(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	r := newPlotRun("rx", d)
	if r.sender {
		t.Fatal("a receiver seen as the sender")
	}
	if c := r.senderCol("cwnd"); c != "peer_cwnd" {
		t.Errorf("sender's cwnd from %q", c)
	}
	if w, known := r.rttWindow(); !known || w < 0.0515 || w > 0.0535 {
		t.Errorf("RTT window %v (%v), want the peer's median srtt 52.5 ms", w, known)
	}
	path := filepath.Join(t.TempDir(), "rx.csv")
	os.WriteFile(path, []byte(b.String()), 0644)
	svg := filepath.Join(filepath.Dir(path), "rx.svg")
	if err := plotCmd([]string{path, "-o", svg, "--panels", "cwnd,qdelay,throughput"}); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(svg)
	for _, want := range []string{"cwnd (kernel sender, ss -ti)", "received, per 52 ms RTT", "srtt - min_rtt"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
}
