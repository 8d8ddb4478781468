package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// nullLoop answers the harness's "read N DUR" and "write N DUR" lines (see
// the package comment) until standard input closes.
func nullLoop(fs opener) error {
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var op, ds string
		var streams int
		if _, err := fmt.Sscan(sc.Text(), &op, &streams, &ds); err != nil {
			return fmt.Errorf("command %q: %w", sc.Text(), err)
		}
		dur, err := time.ParseDuration(ds)
		if err != nil || streams < 1 || op != "read" && op != "write" {
			return fmt.Errorf("command %q: want read|write STREAMS DURATION", sc.Text())
		}
		n, secs, err := nullRun(fs, op == "write", streams, dur)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(map[string]float64{"bytes": float64(n), "seconds": secs})
		fmt.Println(string(b))
	}
	return sc.Err()
}

// nullRun opens data streams times, then reads (or writes) fs.ioSize() bytes at
// a time on every handle until dur has passed, and returns the bytes moved
// and the time taken.
func nullRun(fs opener, write bool, streams int, dur time.Duration) (uint64, float64, error) {
	hs := make([]handle, streams)
	defer func() {
		for _, h := range hs {
			if h != nil {
				h.Close()
			}
		}
	}()
	for i := range hs {
		h, err := fs.open("data")
		if err != nil {
			return 0, 0, err
		}
		hs[i] = h
	}
	counts := make([]uint64, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(dur)
	for i, h := range hs {
		wg.Go(func() {
			buf := make([]byte, fs.ioSize())
			for time.Now().Before(end) {
				var n int
				var err error
				if write {
					n, err = h.Write(buf)
				} else {
					n, err = h.Read(buf)
				}
				counts[i] += uint64(n)
				if err == nil && n == 0 {
					err = errors.New("null file: no progress")
				}
				if err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var total uint64
	for _, c := range counts {
		total += c
	}
	return total, secs, errors.Join(errs...)
}
