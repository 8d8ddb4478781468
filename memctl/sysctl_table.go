package memctl

import (
	"sort"
	"strings"
)

// SysctlTable renders the sysctl table of s as Markdown for README: every
// sysctl with its Linux handler, default (s's current values), range and
// where sockfs reads it, then the sysctls of AbsentSysctls with the reason
// each is absent. TestREADMESysctlTable keeps README's copy equal to it.
func SysctlTable(s *Sysctls) string {
	var b strings.Builder
	b.WriteString("| sysctl | handler | default | range | read by |\n|---|---|---|---|---|\n")
	cell := func(v string) string { return strings.ReplaceAll(v, "|", "\\|") }
	for _, name := range s.Names() {
		c, _ := s.Lookup(name)
		def := strings.TrimSuffix(strings.ReplaceAll(c.Read(), "\t", " "), "\n")
		rng := c.Range()
		if c.ReadOnly() {
			rng = "read-only"
		}
		b.WriteString("| `" + name + "` | " + c.Handler() + " | " + cell(def) + " | " + rng + " | " + cell(c.Where()) + " |\n")
	}
	b.WriteString("\nAbsent, and why:\n\n| sysctl | why |\n|---|---|\n")
	var absent []string
	for n := range AbsentSysctls {
		absent = append(absent, n)
	}
	sort.Strings(absent)
	for _, n := range absent {
		b.WriteString("| `" + n + "` | " + cell(AbsentSysctls[n]) + " |\n")
	}
	return b.String()
}
