package linuxdiff

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// row is one line of the comparison: what the kernel and sockfs showed for
// the same traffic, the verdict, and what is wrong if anything.
type row struct {
	name, kernel, sockfs, verdict string
	problem                       string
}

// rowSet is the rows of one run of a scenario.
type rowSet struct{ rows []row }

// judge adds a row whose comparison came out ok or not. A row named in
// knownDiff is reported as known instead of failing, and fails if it now
// agrees, so the list cannot outlive the fixes. how says what "ok" meant
// when it was not plain equality.
func (rs *rowSet) judge(name, kernel, sockfs string, ok bool, how string) {
	_, known := knownDiff[name]
	r := row{name: name, kernel: kernel, sockfs: sockfs}
	switch {
	case ok && known:
		r.verdict = "agrees: remove from knownDiff"
		r.problem = fmt.Sprintf("%s: kernel %s, sockfs %s agree: remove the row from knownDiff", name, kernel, sockfs)
	case ok && how != "":
		r.verdict = "same (" + how + ")"
	case ok:
		r.verdict = "same"
	case known:
		r.verdict = "known"
	default:
		r.verdict = "DIFFERENT"
		if how != "" {
			r.verdict += " (" + how + ")"
		}
		r.problem = fmt.Sprintf("%s: kernel %s, sockfs %s", name, kernel, sockfs)
	}
	rs.rows = append(rs.rows, r)
}

// exact compares values the kernel computes deterministically.
func (rs *rowSet) exact(name string, kernel, sockfs any) {
	k, s := fmt.Sprint(kernel), fmt.Sprint(sockfs)
	rs.judge(name, k, s, k == s, "")
}

// near compares values that depend on timing (how the kernel batched
// segments and ACKs): sockfs within tol (relative) of the kernel. why is
// the reason a tolerance is needed, shown in the verdict.
func (rs *rowSet) near(name string, kernel, sockfs, tol float64, why string) {
	rs.nearShow(name, kernel, sockfs, "", "", tol, why)
}

// nearShow is near with the raw numbers behind each value shown after it.
func (rs *rowSet) nearShow(name string, kernel, sockfs float64, kernelWhat, sockfsWhat string, tol float64, why string) {
	ok := math.Abs(sockfs-kernel) <= tol*math.Abs(kernel)
	rs.judge(name, show(kernel, kernelWhat), show(sockfs, sockfsWhat), ok, fmt.Sprintf("±%g%%: %s", tol*100, why))
}

// problems lists what is wrong with the run.
func (rs *rowSet) problems() []string {
	var p []string
	for _, r := range rs.rows {
		if r.problem != "" {
			p = append(p, r.problem)
		}
	}
	return p
}

// table collects the rows of every scenario.
type table struct{ rows []row }

// add keeps the rows of a scenario's last run (the run-th) and fails t for
// each of its problems.
func (tb *table) add(t *testing.T, rs *rowSet, run int) {
	t.Helper()
	for _, r := range rs.rows {
		if run > 1 {
			r.verdict += fmt.Sprintf(" (run %d)", run)
		}
		if r.problem != "" {
			t.Error(r.problem)
		}
		tb.rows = append(tb.rows, r)
	}
}

func show(v float64, what string) string {
	s := fmt.Sprintf("%.3f", v)
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		s = fmt.Sprint(int64(v))
	}
	if what != "" {
		s += " (" + what + ")"
	}
	return s
}

// finish prints the table and writes it as markdown to $LINUXDIFF_MD if
// set. After a complete run (every scenario ran to its end) it also checks
// that every knownDiff entry names a row.
func (tb *table) finish(t *testing.T, start time.Time, complete bool) {
	seen := map[string]bool{}
	for _, r := range tb.rows {
		seen[r.name] = true
	}
	if complete {
		for name := range knownDiff {
			if !seen[name] {
				t.Errorf("knownDiff names %q, which no scenario produced", name)
			}
		}
	}
	md := tb.markdown(time.Since(start))
	t.Log("\n" + md)
	if path := os.Getenv("LINUXDIFF_MD"); path != "" {
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (tb *table) markdown(took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sockfs against the live kernel\n\n")
	fmt.Fprintf(&b, "Written by `make linuxdiff` (`integration/linuxdiff`) on kernel %s, %s, in %s.\n",
		kernelRelease(), time.Now().UTC().Format("2006-01-02"), took.Round(time.Second))
	b.WriteString(`Each scenario ran twice on this machine: once against a kernel socket whose
traffic crossed a TUN (a relay in the test joins two namespaces' TUN devices,
virtio_net_hdr and super-packets included), once against ` + "`sockfs serve`" + `
on a TUN, read through its files. The peer is the kernel both times (cubic).
A tolerance is stated where the kernel itself is not deterministic. "known"
rows are differences explained below, with the Linux function responsible
and why sockfs does not or cannot match; the test fails on any other
difference and on a known row that now agrees.

`)
	counts := map[string]int{}
	b.WriteString("| scenario | kernel | sockfs | verdict |\n|---|---|---|---|\n")
	for _, r := range tb.rows {
		counts[strings.Fields(r.verdict)[0]]++
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", esc(r.name), esc(r.kernel), esc(r.sockfs), esc(r.verdict))
	}
	fmt.Fprintf(&b, "\n%d rows: %d the same, %d known differences, %d other differences.\n",
		len(tb.rows), counts["same"], counts["known"], counts["DIFFERENT"]+counts["agrees:"])
	// The known rows, grouped by reason.
	var reasons []string
	rowsOf := map[string][]string{}
	for _, r := range tb.rows {
		if why, ok := knownDiff[r.name]; ok && r.verdict == "known" {
			if rowsOf[why] == nil {
				reasons = append(reasons, why)
			}
			rowsOf[why] = append(rowsOf[why], r.name)
		}
	}
	if len(reasons) > 0 {
		b.WriteString("\nKnown differences (`knownDiff` in the test):\n\n")
	}
	for _, why := range reasons {
		fmt.Fprintf(&b, "- %s: %s.\n", strings.Join(rowsOf[why], "; "), why)
	}
	return b.String()
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
