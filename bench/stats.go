package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Cell is one measured quantity of one system: every repetition's sample,
// and their median and spread. A cell that could not be measured has no
// samples and says why in Note.
type Cell struct {
	System  string    `json:"system"`
	MTU     int       `json:"mtu"`
	Metric  string    `json:"metric"`
	Unit    string    `json:"unit"`
	Samples []float64 `json:"samples,omitempty"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Note    string    `json:"note,omitempty"`
}

// summarize fills Median, Min and Max from Samples.
func (c *Cell) summarize() {
	if len(c.Samples) == 0 {
		return
	}
	c.Median = median(c.Samples)
	c.Min = slices.Min(c.Samples)
	c.Max = slices.Max(c.Samples)
}

// ok reports whether the cell holds a measurement.
func (c *Cell) ok() bool { return c != nil && len(c.Samples) > 0 }

// median of xs (the mean of the middle two for an even count); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the q-quantile (0..1) of sorted by the nearest-rank
// method; NaN for none.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// num formats v with three significant digits (no exponent below 1e9).
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// text renders a cell for the table: "median (min–max)", the single value
// when there is one sample or no spread, or "— (note)" when not measured.
func (c *Cell) text() string {
	if c == nil {
		return ""
	}
	if !c.ok() {
		if c.Note == "" {
			return "—"
		}
		return "— (" + c.Note + ")"
	}
	s := num(c.Median)
	if len(c.Samples) > 1 && num(c.Min) != num(c.Max) {
		s += " (" + num(c.Min) + "–" + num(c.Max) + ")"
	}
	if c.Note != "" {
		s += " [" + c.Note + "]"
	}
	return s
}

// mdTable renders a markdown table; a "|" inside a cell is escaped.
func mdTable(header []string, rows [][]string) string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

// Goal is one of issue #7's targets, evaluated on medians.
type Goal struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`          // the ratio or quantity measured
	Target string  `json:"target"`         // e.g. ">= 1.2"
	Pass   *bool   `json:"pass,omitempty"` // nil when not measurable
	Note   string  `json:"note,omitempty"` // why not measurable
	Num    string  `json:"numerator,omitempty"`
	Den    string  `json:"denominator,omitempty"`
	Paired bool    `json:"paired,omitempty"` // median of round-by-round ratios
	// Ceiling is the numerator's CPU ceiling as a ratio to the
	// denominator (runner.cpuCeiling); 0 where not computed.
	Ceiling float64 `json:"cpu_ceiling,omitempty"`
	// KernelCeiling is the ceiling of the same path at the kernel's TCP
	// cost plus the transport's (runner.kernelCostCeiling); 0 where not
	// computed.
	KernelCeiling float64 `json:"kernel_cost_ceiling,omitempty"`
}

// ratioGoal compares num/den with min; either cell missing makes the goal
// unmeasured.
func ratioGoal(name string, num, den *Cell, min float64) Goal {
	g := Goal{Name: name, Target: fmt.Sprintf(">= %g", min), Value: math.NaN()}
	if num != nil {
		g.Num = num.System + "/" + num.Metric
	}
	if den != nil {
		g.Den = den.System + "/" + den.Metric
	}
	switch {
	case !num.ok():
		g.Note = "numerator not measured"
	case !den.ok():
		g.Note = "denominator not measured"
	case den.Median == 0:
		g.Note = "denominator is 0"
	default:
		g.Value = num.Median / den.Median
		p := g.Value >= min
		g.Pass = &p
	}
	return g
}

// pairedRatioGoal compares two systems measured in the same rounds
// (bench/main.go runs every system once per round): its value is the
// median of the round-by-round ratios num[i]/den[i], so that a round in
// which the shared machine was slow for both counts as one ratio instead
// of pulling one median down. With unequal sample counts (a round failed)
// it falls back to ratioGoal's ratio of medians.
func pairedRatioGoal(name string, num, den *Cell, min float64) Goal {
	g := ratioGoal(name, num, den, min)
	if g.Pass != nil {
		if v, ok := pairedRatio(num, den); ok {
			g.Value, g.Paired = v, true
			p := v >= min
			g.Pass = &p
		}
	}
	return g
}

// pairedRatioMaxGoal is pairedRatioGoal for a ratio that must stay at or
// below max (a latency against another system's).
func pairedRatioMaxGoal(name string, num, den *Cell, max float64) Goal {
	g := ratioGoal(name, num, den, 0)
	g.Target = fmt.Sprintf("<= %g", max)
	if g.Pass != nil {
		if v, ok := pairedRatio(num, den); ok {
			g.Value, g.Paired = v, true
		}
		p := g.Value <= max
		g.Pass = &p
	}
	return g
}

// pairedRatio is the median of num[i]/den[i] over rounds, if both cells
// have a sample from every round and no denominator is 0.
func pairedRatio(num, den *Cell) (float64, bool) {
	if len(num.Samples) != len(den.Samples) {
		return 0, false
	}
	rs := make([]float64, 0, len(den.Samples))
	for i, d := range den.Samples {
		if d <= 0 {
			return 0, false
		}
		rs = append(rs, num.Samples[i]/d)
	}
	return median(rs), len(rs) > 0
}

// maxGoal checks that a quantity's median is at most limit.
func maxGoal(name string, c *Cell, limit float64) Goal {
	g := Goal{Name: name, Target: "<= " + num(limit), Value: math.NaN()}
	if c != nil {
		g.Num = c.System + "/" + c.Metric
	}
	if !c.ok() {
		g.Note = "not measured"
		return g
	}
	g.Value = c.Median
	p := c.Median <= limit
	g.Pass = &p
	return g
}

func (g Goal) row() []string {
	res := "not measured"
	if g.Pass != nil {
		res = "FAIL"
		if *g.Pass {
			res = "pass"
		}
	}
	v := num(g.Value)
	if g.Paired {
		v += " [r]"
	}
	if g.Note != "" {
		v = "— (" + g.Note + ")"
	}
	return []string{g.Name, v, orDash(g.Ceiling), orDash(g.KernelCeiling), g.Target, res}
}

// orDash renders a value that 0 means is absent.
func orDash(x float64) string {
	if x > 0 {
		return num(x)
	}
	return "—"
}

// finite returns g with a NaN Value replaced by 0 (JSON has no NaN; Pass
// and Note say whether the value means anything).
func (g Goal) finite() Goal {
	if math.IsNaN(g.Value) {
		g.Value = 0
	}
	return g
}

// footnotes numbers the notes of one table, so that a reason shared by a
// whole column is written once under the table instead of in every cell.
type footnotes struct{ list []string }

func (f *footnotes) ref(note string) string {
	for i, x := range f.list {
		if x == note {
			return fmt.Sprintf("[%d]", i+1)
		}
	}
	f.list = append(f.list, note)
	return fmt.Sprintf("[%d]", len(f.list))
}

// cell renders c like text, with its note as a footnote reference.
func (f *footnotes) cell(c *Cell) string {
	if c == nil {
		return ""
	}
	if c.Note == "" {
		return c.text()
	}
	plain := *c
	plain.Note = ""
	if !c.ok() {
		return "— " + f.ref(c.Note)
	}
	return plain.text() + " " + f.ref(c.Note)
}

// String lists the notes, one per line.
func (f *footnotes) String() string {
	var b strings.Builder
	for i, n := range f.list {
		fmt.Fprintf(&b, "[%d] %s  \n", i+1, n)
	}
	return b.String()
}
