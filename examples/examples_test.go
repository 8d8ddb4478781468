// Package examples holds the worked experiments of `make examples`; its
// test runs each script briefly, so that none rots between runs of the
// full experiments.
package examples

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runScripts enables TestExampleScripts: on this 2-core machine, shared and
// loaded, the three scripts take 25-40 s together, too long for `make
// test`; `make examples-smoke` runs it.
var runScripts = flag.Bool("examples", false, "run the experiment scripts briefly (root)")

// TestExampleScripts runs every experiment script with short runs (1-2 s),
// side by side, against a freshly built sockfs (25-40 s in all), and
// checks that each wrote its traces and a figure that decodes; the scripts
// clean up after themselves (the namespace, the TUN device, the mount),
// which the test checks too.
func TestExampleScripts(t *testing.T) {
	if !*runScripts {
		t.Skip("the experiment scripts run with -examples (make examples-smoke)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: TUN device, FUSE mount, network namespace")
	}
	for _, tool := range []string{"ip", "python3", "fusermount3", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	bin := filepath.Join(t.TempDir(), "sockfs")
	if out, err := exec.Command("go", "build", "-o", bin, "sockfs/cmd/sockfs").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cases := []struct {
		script string
		env    []string
		files  []string
	}{
		{"rmem-experiment.sh", []string{"SECS=1", "RUNS=small"}, []string{"rmem-small.csv", "rmem-small.png"}},
		{"cc-experiment.sh", []string{"SECS=2", "ALGS=cubic bbr", "LINKS=queue"},
			[]string{"cc-queue-cubic.csv", "cc-queue-bbr.csv", "cc-queue.png", "cc-summary.txt"}},
		{"pressure-experiment.sh", []string{"SECS=2", "PERIOD=1", "CONNS=20"},
			[]string{"pressure-recv.csv", "pressure-send.csv", "pressure.png"}},
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.script, ".sh"), func(t *testing.T) {
			// Each script has its own addresses and names: they run at once.
			t.Parallel()
			out := t.TempDir()
			cmd := exec.Command("./"+c.script, out)
			cmd.Env = append(append(os.Environ(), "SOCKFS="+bin), c.env...)
			start := time.Now()
			log, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", c.script, err, log)
			}
			t.Logf("%s: %v", c.script, time.Since(start).Round(time.Millisecond))
			for _, f := range c.files {
				path := filepath.Join(out, f)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%s wrote no %s:\n%s", c.script, f, log)
				}
				switch filepath.Ext(f) {
				case ".csv":
					if n := strings.Count(string(data), "\n"); n < 20 {
						t.Errorf("%s: %d lines", f, n)
					}
				case ".png":
					if _, err := png.Decode(bytes.NewReader(data)); err != nil {
						t.Errorf("%s: %v", f, err)
					}
				}
			}
			// What the script made is gone: no namespace, no mount of
			// its name left behind.
			ns, _ := exec.Command("ip", "netns", "list").Output()
			mounts, _ := os.ReadFile("/proc/mounts")
			name := map[string]string{"rmem-experiment.sh": "rmem", "cc-experiment.sh": "cc", "pressure-experiment.sh": "mp"}[c.script]
			pid := cmd.ProcessState.Pid()
			if tag := "sockfs-" + name + "-" + strconv.Itoa(pid); strings.Contains(string(ns), tag) {
				t.Errorf("namespace %s left behind", tag)
			}
			if strings.Contains(string(mounts), "/tmp/sockfs-"+name+"-mnt.") {
				t.Errorf("a mount of %s left behind:\n%s", c.script, mounts)
			}
		})
	}
}
