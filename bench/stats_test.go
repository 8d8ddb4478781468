package main

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{2, 2, 9}, 2},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 || in[1] != 1 {
		t.Error("median sorted its argument in place")
	}
}

func TestPercentile(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1)
	}
	if p := percentile(s, 0.5); p != 50 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(s, 0.99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile([]float64{7}, 0.99); p != 7 {
		t.Errorf("p99 of one = %v", p)
	}
}

func TestCellText(t *testing.T) {
	c := &Cell{Samples: []float64{1.21, 0.9, 1.5}}
	c.summarize()
	if c.Median != 1.21 || c.Min != 0.9 || c.Max != 1.5 {
		t.Fatalf("summary %+v", c)
	}
	if got := c.text(); got != "1.21 (0.900–1.50)" {
		t.Errorf("text = %q", got)
	}
	same := &Cell{Samples: []float64{4096, 4096, 4096}}
	same.summarize()
	if got := same.text(); got != "4096" {
		t.Errorf("no-spread text = %q", got)
	}
	missing := &Cell{Note: "serve has no --9p flag"}
	if got := missing.text(); got != "— (serve has no --9p flag)" {
		t.Errorf("missing text = %q", got)
	}
}

func TestMdTable(t *testing.T) {
	got := mdTable([]string{"metric", "a"}, [][]string{{"x", "1 | 2"}})
	want := "| metric | a |\n| --- | --- |\n| x | 1 \\| 2 |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestGoals(t *testing.T) {
	a := &Cell{System: "sockfs", Metric: "m", Samples: []float64{2.4}}
	b := &Cell{System: "gvisor", Metric: "m", Samples: []float64{2}}
	a.summarize()
	b.summarize()
	g := ratioGoal("x", a, b, 1.2)
	if g.Pass == nil || !*g.Pass || math.Abs(g.Value-1.2) > 1e-9 {
		t.Errorf("ratio goal %+v", g)
	}
	g = ratioGoal("x", a, &Cell{Note: "n/a"}, 1.2)
	if g.Pass != nil || g.Note == "" {
		t.Errorf("unmeasured goal %+v", g)
	}
	if r := g.row(); r[5] != "not measured" {
		t.Errorf("row %v", r)
	}
	m := maxGoal("heap", &Cell{Samples: []float64{5000}, Median: 5000}, 4096)
	if m.Pass == nil || *m.Pass {
		t.Errorf("max goal %+v", m)
	}
	// NaN must not reach the JSON encoder.
	if _, err := json.Marshal(results{Goals: []Goal{g.finite()}}); err != nil {
		t.Error(err)
	}
	if !strings.Contains(m.row()[5], "FAIL") {
		t.Errorf("row %v", m.row())
	}
}

func TestFootnotes(t *testing.T) {
	var f footnotes
	a := f.cell(&Cell{Note: "no --9p"})
	b := f.cell(&Cell{Note: "no --9p"})
	m := &Cell{Samples: []float64{2}, Note: "softirq not charged"}
	m.summarize()
	c := f.cell(m)
	if a != "— [1]" || b != "— [1]" || c != "2.00 [2]" {
		t.Errorf("cells %q %q %q", a, b, c)
	}
	if got := f.String(); got != "[1] no --9p  \n[2] softirq not charged  \n" {
		t.Errorf("notes %q", got)
	}
}

// TestGoalsCompareEqualConfigs checks that no throughput goal divides a
// system with offloads by one without (or the other way round), that the
// file rows are held to their null-file ceilings, and that a partial run's
// tables show only the systems it measured.
func TestGoalsCompareEqualConfigs(t *testing.T) {
	offloads := map[string]bool{"kernel": true, "gvisor": false, "sockfs-nooffload": false, "gvisor-offload": true,
		"sockfs": true, "sockfs-fuse": true, "sockfs-9p": true, "fuse-null": true, "9p-null": true, "kernel6": true, "sockfs6": true}
	r := &runner{o: options{mtus: []int{1500}}, res: &results{}}
	for _, c := range columns {
		for _, m := range metrics {
			r.add(&Cell{System: c.system, MTU: 1500, Metric: m.key, Samples: []float64{1}})
		}
	}
	for _, n := range nullSystems {
		for _, m := range nullMetrics {
			r.add(&Cell{System: n.system, Metric: m.key, Samples: []float64{2}})
		}
	}
	r.goals()
	nulls := 0
	for _, g := range r.res.Goals {
		if g.Pass == nil {
			t.Errorf("goal %q not measured", g.Name)
		}
		if g.Den == "" {
			continue
		}
		num, _, _ := strings.Cut(g.Num, "/")
		den, _, _ := strings.Cut(g.Den, "/")
		on, ok1 := offloads[num]
		don, ok2 := offloads[den]
		if !ok1 || !ok2 || on != don {
			t.Errorf("goal %q compares %s with %s", g.Name, g.Num, g.Den)
		}
		if strings.HasSuffix(den, "-null") {
			nulls++
		}
	}
	if nulls != 4 {
		t.Errorf("%d goals against the null files, want 4 (FUSE and 9P, read and write)", nulls)
	}
	for _, sys := range []string{"gvisor", "gvisor-offload", "sockfs", "sockfs-nooffload"} {
		if wireNote[sys] == "" {
			t.Errorf("no note on how %s counts wire packets", sys)
		}
	}

	partial := &runner{o: options{mtus: []int{1500}}, res: &results{}}
	partial.add(&Cell{System: "gvisor-offload", MTU: 1500, Metric: "bulk_k2p_1", Samples: []float64{9}})
	md := partial.markdown()
	if !strings.Contains(md, columnLabel("gvisor-offload")) || strings.Contains(md, columnLabel("sockfs")) {
		t.Errorf("partial run's table:\n%s", md)
	}
}

// TestPairedRatioGoal: the paired value is the median of the per-round
// ratios, not the ratio of the medians; unequal sample counts fall back.
func TestPairedRatioGoal(t *testing.T) {
	num, den := cellPair([]float64{10, 1, 6}, []float64{5, 1, 10})
	// Ratios 2, 1, 0.6: median 1. Ratio of medians: 6/5 = 1.2.
	g := pairedRatioGoal("g", num, den, 1.1)
	if !g.Paired || g.Value != 1 || g.Pass == nil || *g.Pass {
		t.Fatalf("paired goal %+v, want value 1, failing 1.1", g)
	}
	if r := g.row(); r[1] != "1.00 [r]" {
		t.Errorf("row value %q", r[1])
	}
	den.Samples = den.Samples[:2]
	den.summarize()
	g = pairedRatioGoal("g", num, den, 1.1)
	if g.Paired || g.Value != 6.0/3.0 {
		t.Fatalf("unequal counts: %+v, want the ratio of medians 2", g)
	}
}

// TestPairedRatioMaxGoal: a latency ratio passes at or below its limit.
func TestPairedRatioMaxGoal(t *testing.T) {
	num, den := cellPair([]float64{150, 210, 120}, []float64{60, 70, 65})
	// Ratios 2.5, 3, 1.85: median 2.5.
	g := pairedRatioMaxGoal("g", num, den, 2)
	if !g.Paired || g.Value != 2.5 || g.Pass == nil || *g.Pass || g.Target != "<= 2" {
		t.Fatalf("goal %+v, want 2.5 failing <= 2", g)
	}
	g = pairedRatioMaxGoal("g", num, den, 3)
	if g.Pass == nil || !*g.Pass {
		t.Fatalf("goal %+v, want 2.5 passing <= 3", g)
	}
}

// cellPair makes two summarized cells of one metric from their samples.
func cellPair(a, b []float64) (num, den *Cell) {
	num = &Cell{System: "a", Metric: "m", Samples: a}
	den = &Cell{System: "b", Metric: "m", Samples: b}
	num.summarize()
	den.summarize()
	return num, den
}

// TestRerender: -render recomputes a saved run's goals with the current
// goal list (a goal the run did not have is evaluated on its samples) and
// writes the tables again, measuring nothing.
func TestRerender(t *testing.T) {
	dir := t.TempDir()
	num, den := cellPair([]float64{150, 210, 120}, []float64{60, 70, 65})
	num.System, num.MTU, num.Metric, num.Unit = "sockfs-fuse", 1500, "rr_p50", "us"
	den.System, den.MTU, den.Metric, den.Unit = "sockfs", 1500, "rr_p50", "us"
	res := results{
		Settings: map[string]any{"reps": 3, "duration_s": 1, "bulk_limit_bytes": 1 << 30, "mtus": []int{1500}},
		Cells:    []*Cell{num, den},
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	file := dir + "/old.json"
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rerender(options{out: dir}, file); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(dir + "/latest.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "| MTU 1500 rr_p50: sockfs-fuse / sockfs Go API, 1-byte request/response latency, both TUN with offloads | 2.50 [r] | — | — | <= 2 | FAIL |"
	if !strings.Contains(string(md), want) {
		t.Fatalf("latest.md lacks %q:\n%s", want, md)
	}
}

// TestCPUCeiling: a file row's CPU ceiling is the machine's cores over
// its measured CPU per GB, in Gbit/s, against the denominator's median;
// at kernel cost, over the kernel row's CPU per GB plus the null file's.
// Both are shown beside the goal, and missing inputs leave them out.
func TestCPUCeiling(t *testing.T) {
	cell := func(sys string, mtu int, metric string, v float64) *Cell {
		return &Cell{System: sys, MTU: mtu, Metric: metric, Samples: []float64{v}, Median: v}
	}
	r := &runner{o: options{mtus: []int{1500}}, res: &results{
		Machine: map[string]string{"cores": "2"},
		Cells: []*Cell{
			cell("sockfs-9p", 1500, "bulk_k2p_1", 5),
			cell("sockfs-9p", 1500, "mcpu_k2p", 2), // 2 cores / 2 CPU-s per GB = 1 GB/s = 8 Gbit/s
			cell("9p-null", 0, "null_read_1", 16),
			cell("kernel", 1500, "mcpu_k2p", 0.5),
			cell("9p-null", 0, "null_mcpu_read_1", 0.5), // 2 / (0.5 + 0.5) = 2 GB/s = 16 Gbit/s
			cell("sockfs-9p", 1500, "bulk_p2k_1", 5),    // no mcpu_p2k: no ceiling
			cell("9p-null", 0, "null_write_1", 16),
		},
	}}
	r.goals()
	var read, write *Goal
	for i, g := range r.res.Goals {
		switch g.Name {
		case "MTU 1500 bulk_k2p_1: sockfs-9p / 9p-null, same transport and request size":
			read = &r.res.Goals[i]
		case "MTU 1500 bulk_p2k_1: sockfs-9p / 9p-null, same transport and request size":
			write = &r.res.Goals[i]
		}
	}
	if read == nil || write == nil {
		t.Fatal("9P null-file goals missing")
	}
	if read.Ceiling != 0.5 {
		t.Errorf("read ceiling = %v, want 8/16 = 0.5", read.Ceiling)
	}
	if read.KernelCeiling != 1 {
		t.Errorf("read ceiling at kernel cost = %v, want 16/16 = 1", read.KernelCeiling)
	}
	if row := read.row(); row[1] != "0.312" || row[2] != "0.500" || row[3] != "1.00" {
		t.Errorf("read row = %q, want measured 0.312, ceiling 0.500, at kernel cost 1.00", row)
	}
	if write.Ceiling != 0 || write.KernelCeiling != 0 || write.row()[2] != "—" || write.row()[3] != "—" {
		t.Errorf("write ceilings = %v, %v (%q) without mcpu_p2k, want none", write.Ceiling, write.KernelCeiling, write.row())
	}
}

// TestParseBusy: the machine's busy time is user+nice+system+irq+softirq
// of /proc/stat's first line, in USER_HZ; idle, iowait, steal and the
// guest times (already inside user and nice) are not busy.
func TestParseBusy(t *testing.T) {
	stat := "cpu  100 20 300 9000 50 7 13 40 500 60\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
	got, ok := parseBusy(stat)
	if want := float64(100+20+300+7+13) / userHZ; !ok || got != want {
		t.Fatalf("parseBusy = %v, %v; want %v", got, ok, want)
	}
	for _, bad := range []string{"", "cpu 1 2 3", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 x 4 5 6 7 8"} {
		if _, ok := parseBusy(bad); ok {
			t.Errorf("parseBusy(%q) accepted", bad)
		}
	}
}
