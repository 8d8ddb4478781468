package memctl

import (
	"os"
	"strings"
	"testing"
)

const (
	readmeBegin = "<!-- sysctl:begin (generated from memctl's table: SOCKFS_UPDATE_README=1 go test ./memctl -run READMESysctlTable) -->\n"
	readmeEnd   = "<!-- sysctl:end -->"
)

// TestREADMESysctlTable checks that README's sysctl table is the one the
// code has (defaults for a machine with 23.5 GiB of memory, whose
// nr_free_buffer_pages is nfbp235); with SOCKFS_UPDATE_README=1 it
// rewrites README's copy instead.
func TestREADMESysctlTable(t *testing.T) {
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skip(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, readmeBegin), strings.Index(readme, readmeEnd)
	if i < 0 || j < i {
		t.Fatalf("README has no %q ... %q section", readmeBegin, readmeEnd)
	}
	table := SysctlTable(NewNet(Options{NrFreeBufferPages: nfbp235}).Sysctls)
	if got := readme[i+len(readmeBegin) : j]; got != table {
		if os.Getenv("SOCKFS_UPDATE_README") == "1" {
			readme = readme[:i+len(readmeBegin)] + table + readme[j:]
			if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("README's sysctl table differs from the code's; run SOCKFS_UPDATE_README=1 go test ./memctl -run READMESysctlTable")
	}
}
