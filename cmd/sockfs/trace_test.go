package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockfs/netview"
	"sockfs/netview/mounttest"
)

// TestTraceCSV traces an accepted conversation on a real mount while the
// peer sends 32 KiB (less than the receive window, so no write blocks)
// that nobody reads, and checks the columns, the time column and the
// values against the files.
func TestTraceCSV(t *testing.T) {
	p := mounttest.New(t)
	_, server, client := p.TCP(t, 8080)
	sent := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte("y"), 4<<10)
		for i := 0; i < 8; i++ {
			if _, err := client.Write(chunk); err != nil {
				sent <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		sent <- nil
	}()
	cfg := traceConfig{mount: p.A, proto: "tcp", conv: server.N, every: 10 * time.Millisecond,
		dur: 600 * time.Millisecond, counters: traceCounters}
	var out bytes.Buffer
	start := time.Now()
	n, err := runTrace(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("trace for 600ms took %v", el)
	}
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client writes blocked")
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// At least a few samples: on a loaded machine under -race one sample
	// of five files can take 100 ms (this is not a speed test).
	if len(rows)-1 != n || n < 3 || n > 61 {
		t.Fatalf("%d samples (%d rows) in 600ms at 10ms", n, len(rows)-1)
	}
	head := rows[0]
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, want := range []string{"t_ms", "state", "qin", "qout", "cwnd", "srtt", "retrans", "rcv_wnd",
		"mem_r", "mem_rb", "mem_t", "mem_tb", "mem_f", "mem_w", "mem_o", "mem_bl", "mem_d",
		"tcp_sockets", "tcp_memory", "tcp_pressure_state", "tcp_mem_low", "tcp_mem_pressure", "tcp_mem_high",
		"udp_memory", "TcpExt.PruneCalled", "TcpExt.TCPBacklogDrop", "TcpExt.TCPMemoryPressures",
		"Tcp.InSegs", "ipifc0_rx_bytes", "ipifc0_tx_bytes"} {
		if _, ok := col[want]; !ok {
			t.Errorf("no column %q in %q", want, head)
		}
	}
	if head[0] != "t_ms" {
		t.Fatalf("first column %q", head[0])
	}
	prev := -1.0
	maxQin, maxR := 0.0, 0.0
	for i, r := range rows[1:] {
		if len(r) != len(head) {
			t.Fatalf("row %d has %d fields, header %d", i, len(r), len(head))
		}
		tm, err := strconv.ParseFloat(r[0], 64)
		if err != nil || tm <= prev {
			t.Fatalf("row %d: t_ms %q after %v", i, r[0], prev)
		}
		prev = tm
		if r[col["state"]] != "Established" {
			t.Errorf("row %d: state %q", i, r[col["state"]])
		}
		q, _ := strconv.ParseFloat(r[col["qin"]], 64)
		m, _ := strconv.ParseFloat(r[col["mem_r"]], 64)
		maxQin, maxR = max(maxQin, q), max(maxR, m)
		for _, c := range []string{"tcp_mem_high", "mem_rb", "cwnd", "TcpExt.PruneCalled", "ipifc0_rx_bytes"} {
			if _, err := strconv.ParseInt(r[col[c]], 10, 64); err != nil {
				t.Fatalf("row %d: %s = %q", i, c, r[col[c]])
			}
		}
	}
	if prev > 1500 {
		t.Errorf("last sample at %v ms for a 600ms trace", prev)
	}
	if maxQin < 16<<10 || maxR < 16<<10 {
		t.Errorf("qin peaked at %v and mem_r at %v with 32 KiB sent and unread", maxQin, maxR)
	}
	// The thresholds come from the protocols file.
	ps, err := netview.ReadProtocols(p.A)
	if err != nil {
		t.Fatal(err)
	}
	last := rows[len(rows)-1]
	if last[col["tcp_mem_high"]] != strconv.FormatInt(ps[0].High, 10) || last[col["tcp_mem_low"]] != strconv.FormatInt(ps[0].Low, 10) {
		t.Errorf("tcp_mem %s/%s, protocols %+v", last[col["tcp_mem_low"]], last[col["tcp_mem_high"]], ps[0])
	}
	final := strings.TrimSpace(server.File(t, "status"))
	if !strings.Contains(final, " qin "+last[col["qin"]]+" ") {
		t.Logf("status at end %q, last sample qin %s (may differ if still arriving)", final, last[col["qin"]])
	}

	// plot the same trace, PNG and SVG.
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "run.csv")
	if err := os.WriteFile(csvPath, out.Bytes(), 0644); err != nil {
		t.Fatal(err)
	}
	// runTrace consumed out; rebuild it from rows.
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.WriteAll(rows)
	if err := os.WriteFile(csvPath, buf.Bytes(), 0644); err != nil {
		t.Fatal(err)
	}
	checkPlots(t, csvPath, 900, 700)
}

func checkPlots(t *testing.T, csvPath string, w, h int) {
	t.Helper()
	dir := filepath.Dir(csvPath)
	pngPath, svgPath := filepath.Join(dir, "run.png"), filepath.Join(dir, "run.svg")
	if err := plotCmd([]string{csvPath, "-o", pngPath, "-width", strconv.Itoa(w), "-height", strconv.Itoa(h)}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("png is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	if err := plotCmd([]string{"-o", svgPath, csvPath}); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "socket memory", "cwnd", "throughput", "Mbit/s"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
}

// TestPlotPressureShading: a synthetic trace with a pressure episode gives
// one span and a legend entry for it.
func TestPlotPressureShading(t *testing.T) {
	var b strings.Builder
	b.WriteString("t_ms,state,cwnd,mem_r,mem_rb,mem_w,mem_tb,mem_f,tcp_pressure_state,ipifc1_rx_bytes,ipifc1_tx_bytes\n")
	for i := 0; i < 100; i++ {
		press := 0
		if i >= 30 && i < 60 {
			press = 1
		}
		fmt.Fprintf(&b, "%d.000,Established,%d,%d,131072,0,87040,4096,%d,%d,%d\n", i*10, 10+i, i*1000, press, i*125000, i*1000)
	}
	d, err := readTraceCSV(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	spans := d.pressureSpans()
	if len(spans) != 1 || spans[0][0] != 0.3 || spans[0][1] != 0.6 {
		t.Fatalf("spans %v", spans)
	}
	// 125000 bytes per 10 ms is 100 Mbit/s.
	pts := d.rate("ipifc1_rx_bytes", 8e-6, 0.1)
	if len(pts) == 0 || pts[0].Y < 99.9 || pts[0].Y > 100.1 {
		t.Fatalf("rate %v", pts)
	}
	path := filepath.Join(t.TempDir(), "syn.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0644); err != nil {
		t.Fatal(err)
	}
	checkPlots(t, path, 1000, 800)
	svg, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "run.svg"))
	for _, want := range []string{"TCP memory pressure", "ipifc/1 rx (whole device, with headers)"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if err := plotCmd([]string{path, "-o", "x.gif"}); err == nil {
		t.Error("-o x.gif accepted")
	}
	if err := plotCmd([]string{"-o", "x.png"}); err == nil {
		t.Error("no CSV accepted")
	}
}

func TestTraceFlags(t *testing.T) {
	c, err := parseTrace([]string{"/m", "--conv", "tcp/3", "--every", "10ms", "--for", "30s", "-o", "run.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if c.mount != "/m" || c.proto != "tcp" || c.conv != 3 || c.every != 10*time.Millisecond || c.dur != 30*time.Second || c.out != "run.csv" {
		t.Fatalf("config %+v", c)
	}
	c, err = parseTrace([]string{"--conv", "udp/0"})
	if err != nil || c.mount != netview.DefaultMount || c.proto != "udp" {
		t.Fatalf("config %+v %v", c, err)
	}
	for _, bad := range [][]string{{"--conv", "tcp"}, {"--conv", "raw/1"}, {"--conv", "tcp/x"}, {"--every", "0s"},
		{"--counters", "PruneCalled"}, {"/a", "/b"}} {
		if _, err := parseTrace(bad); err == nil {
			t.Errorf("parseTrace(%q) accepted", bad)
		}
	}
}

// TestTraceRefusesUnknownCounters: a counter netstat does not have is a
// usage error before anything is sampled (it gave an empty column and exit
// 0), and a failed trace leaves no empty CSV behind; a conversation that
// does not exist yet is traced (empty columns) with a warning.
func TestTraceRefusesUnknownCounters(t *testing.T) {
	p := mounttest.New(t)
	cfg := traceConfig{mount: p.A, every: 10 * time.Millisecond, dur: 50 * time.Millisecond,
		counters: []string{"TcpExt.PruneCalled", "Bogus.Thing"}}
	var out bytes.Buffer
	if n, err := runTrace(context.Background(), cfg, &out); !errors.As(err, new(usageError)) || n != 0 ||
		!strings.Contains(err.Error(), "netstat has no Bogus.Thing") {
		t.Fatalf("%d samples, %v; want a usage error naming Bogus.Thing", n, err)
	}
	// A conversation that does not exist (yet) is traced, with a warning.
	var warn bytes.Buffer
	cfg = traceConfig{mount: p.A, proto: "tcp", conv: 99, every: 10 * time.Millisecond,
		dur: 30 * time.Millisecond, counters: traceCounters, warn: &warn}
	if n, err := runTrace(context.Background(), cfg, &out); err != nil || n == 0 ||
		!strings.Contains(warn.String(), "tcp/99 does not exist (yet)") {
		t.Errorf("tracing tcp/99: %d samples, %v, warning %q", n, err, warn.String())
	}
	csv := filepath.Join(t.TempDir(), "run.csv")
	if err := traceCmd([]string{p.A, "--counters", "Bogus.Thing", "--for", "50ms", "-o", csv}); err == nil {
		t.Fatal("traceCmd accepted Bogus.Thing")
	}
	if _, err := os.Stat(csv); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", csv, err)
	}
}
