//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// nullP9Addr is where nullfs serves 9P inside its namespace.
const nullP9Addr = "127.0.0.1:5641"

// fileCeilings measures the file transports' ceilings (file-null): nullfs
// serves a null file over FUSE or 9P, and the files peer reads and writes
// it with the handles, request size and 9P msize it uses on the data
// files, 1 and 4 streams, reps times each. The cells have MTU 0: no
// network is involved.
func (r *runner) fileCeilings() {
	for _, n := range nullSystems {
		logf("%s", n.system)
		cells := map[string]*Cell{}
		for _, m := range nullMetrics {
			cells[m.key] = r.add(&Cell{System: n.system, Metric: m.key, Unit: "Gbit/s"})
		}
		for _, m := range nullCPUMetrics {
			cells[m.key] = r.add(&Cell{System: n.system, Metric: m.key, Unit: "CPU-s/GB"})
		}
		err := r.nullSession(n.system, func(p *proc) error {
			for _, m := range nullMetrics {
				c := cells[m.key]
				op, streams, _ := strings.Cut(strings.TrimPrefix(m.key, "null_"), "_")
				cpu := cells["null_mcpu_"+op+"_"+streams] // 1 stream only
				for range r.o.reps {
					busy0, ok0 := machineBusy()
					gbps, gb, err := nullOnce(p, op, streams, r.o.dur)
					if err != nil {
						return fmt.Errorf("%s: %w", m.key, err)
					}
					busy1, ok1 := machineBusy()
					c.Samples = append(c.Samples, gbps)
					if cpu != nil && ok0 && ok1 && gb > 0 {
						cpu.Samples = append(cpu.Samples, (busy1-busy0)/gb)
					}
				}
				c.summarize()
				logf("  %s %s", m.key, c.text())
				if cpu != nil {
					cpu.summarize()
					logf("  %s %s", cpu.Metric, cpu.text())
				}
			}
			return nil
		})
		if err != nil {
			logf("%s: %v", n.system, err)
			for _, c := range cells {
				if !c.ok() {
					c.Note = shortErr(err)
				}
			}
		}
	}
}

// nullOnce has the files peer move data for dur and returns Gbit/s and
// the gigabytes moved.
func nullOnce(p *proc, op, streams string, dur time.Duration) (float64, float64, error) {
	if _, err := fmt.Fprintf(p.stdin, "%s %s %s\n", op, streams, dur); err != nil {
		return 0, 0, err
	}
	line, err := p.line(dur + 30*time.Second)
	if err != nil {
		return 0, 0, err
	}
	var res struct{ Bytes, Seconds float64 }
	if err := json.Unmarshal([]byte(line), &res); err != nil || res.Seconds == 0 {
		return 0, 0, fmt.Errorf("files peer said %q", line)
	}
	return res.Bytes * 8 / res.Seconds / 1e9, res.Bytes / 1e9, nil
}

// nullSession starts nullfs (FUSE at a fresh mount point, or 9P on
// loopback) in a fresh namespace, as the file rows' daemon runs, and the
// files peer in -null mode on it, runs f with the peer, and stops both.
func (r *runner) nullSession(system string, f func(p *proc) error) error {
	if r.bins["nullfs"] == "" {
		return fmt.Errorf("nullfs did not build")
	}
	ns, err := newNetns()
	if err != nil {
		return err
	}
	defer ns.del()
	var srvArgs, peerArgs []string
	if system == "fuse-null" {
		dir, err := tempDir("sockfs-bench-null" + mountSuffix)
		if err != nil {
			return err
		}
		defer os.Remove(dir)
		srvArgs, peerArgs = []string{"-fuse", dir}, []string{"-null", "-dir", dir}
	} else {
		srvArgs, peerArgs = []string{"-9p", nullP9Addr}, []string{"-null", "-9p", nullP9Addr}
	}
	srv, err := startPeer(ns, r.bins["nullfs"], srvArgs...)
	if err != nil {
		return err
	}
	defer srv.stop() // closes its stdin: it unmounts and exits
	p, err := startPeer(ns, r.bins["files"], peerArgs...)
	if err != nil {
		return err
	}
	defer p.stop()
	settle()
	return p.explain(f(p))
}
