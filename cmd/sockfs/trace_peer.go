package main

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// peerFields are the columns a --peer sampler adds, each prefixed peer_:
// the fields of `ss -ti` for the other end of the conversation (the kernel
// sender when sockfs receives), in the units of the conversation's own
// columns: srtt and min_rtt in microseconds, rates in bits per second.
var peerFields = []string{"cwnd", "ssthresh", "srtt", "rttvar", "min_rtt", "pacing_rate",
	"delivery_rate", "bytes_acked", "bytes_received", "retrans", "unacked", "congestion"}

// peerCongestion are the algorithm names ss prints as a bare word.
var peerCongestion = map[string]bool{"reno": true, "cubic": true, "bbr": true, "dctcp": true,
	"bic": true, "htcp": true, "vegas": true, "westwood": true, "illinois": true}

// parseSSInfo reads the output of `ss -ti` (or -tin, -tinH) and returns
// the fields of the first socket it lists, named as peerFields. Tokens it
// does not know are skipped, so newer ss versions parse too.
func parseSSInfo(out string) map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	ms := func(v string) (string, bool) { // "50.123" ms -> "50123" us
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "", false
		}
		return strconv.FormatInt(int64(f*1000+0.5), 10), true
	}
	f := strings.Fields(out)
	sockets := 0
	for i := 0; i < len(f); i++ {
		tok := f[i]
		switch tok {
		case "ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK", "CLOSING":
			// A state word starts a socket's line; only the first socket counts.
			sockets++
			if sockets > 1 {
				return m
			}
			continue
		case "pacing_rate", "delivery_rate":
			if i+1 < len(f) {
				if bps, ok := parseSSBw(f[i+1]); ok {
					set(tok, strconv.FormatFloat(bps, 'f', -1, 64))
				}
				i++
			}
			continue
		}
		if peerCongestion[tok] {
			set("congestion", tok)
			continue
		}
		k, v, ok := strings.Cut(tok, ":")
		if !ok {
			continue
		}
		switch k {
		case "cwnd", "ssthresh", "bytes_acked", "bytes_received", "unacked":
			if _, err := strconv.ParseUint(v, 10, 64); err == nil {
				set(k, v)
			}
		case "rtt": // rtt:srtt/rttvar in ms
			a, b, _ := strings.Cut(v, "/")
			if us, ok := ms(a); ok {
				set("srtt", us)
			}
			if us, ok := ms(b); ok {
				set("rttvar", us)
			}
		case "minrtt":
			if us, ok := ms(v); ok {
				set("min_rtt", us)
			}
		case "retrans": // retrans:retrans_out/total_retrans
			if _, b, ok := strings.Cut(v, "/"); ok {
				set("retrans", b)
			}
		}
	}
	return m
}

// peerSampler runs cmd (through sh -c) every interval and keeps the fields
// of its latest output. Stop ends it; the loop is also bounded by ctx.
type peerSampler struct {
	mu     sync.Mutex
	latest map[string]string
	done   chan struct{}
	cancel context.CancelFunc
}

// startPeerSampler starts the sampling goroutine; each run of cmd is given
// at most 2 s.
func startPeerSampler(ctx context.Context, cmd string, every time.Duration) *peerSampler {
	ctx, cancel := context.WithCancel(ctx)
	ps := &peerSampler{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(ps.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			out, err := exec.CommandContext(rctx, "sh", "-c", cmd).Output()
			rcancel()
			if err == nil {
				m := parseSSInfo(string(out))
				ps.mu.Lock()
				ps.latest = m
				ps.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return ps
}

// row returns the latest values in peerFields order ("" where unknown).
func (ps *peerSampler) row() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := make([]string, len(peerFields))
	for i, k := range peerFields {
		r[i] = ps.latest[k]
	}
	return r
}

func (ps *peerSampler) stop() {
	ps.cancel()
	<-ps.done
}
