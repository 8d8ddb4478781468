package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"sockfs/netview"
	"sockfs/netview/mounttest"
)

// ssRows runs ss with args and returns its rows (fields) keyed by Conv.
func ssRows(t *testing.T, args ...string) (map[string][]string, string) {
	t.Helper()
	var out bytes.Buffer
	if err := ssRun(args, &out); err != nil {
		t.Fatalf("ss %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if lines[0] != ssHeader {
		t.Fatalf("header %q", lines[0])
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 8 {
			t.Fatalf("short line %q", l)
		}
		rows[f[2]] = f
	}
	return rows, out.String()
}

// waitField polls a conversation's status until field has value want.
func waitField(t *testing.T, mount, proto string, n int, field string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := netview.ReadConv(mount, proto, n)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := c.Field(field)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%d %s = %d, want %d", proto, n, field, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSSColumns: a listener, an accepted connection holding 1000 unread
// bytes and a UDP conversation, all made through the files, appear with the
// right columns; skmem is the mem file's text.
func TestSSColumns(t *testing.T) {
	p := mounttest.New(t)
	listener, server, client := p.TCP(t, 8080)
	udp := mounttest.Clone(t, p.A, "udp")
	udp.Cmd(t, "announce 7000")
	if _, err := client.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
		t.Fatal(err)
	}
	waitField(t, p.A, "tcp", server.N, "qin", 1000)
	clientLocal := strings.TrimSpace(client.File(t, "local"))
	peer := strings.Replace(clientLocal, "!", ":", 1)

	// mem can change between two reads (timers reclaim forward_alloc), so
	// compare a few times until one ss run and the file agree.
	var rows map[string][]string
	var out string
	matched := false
	srvName := fmt.Sprintf("tcp/%d", server.N)
	for range 20 {
		rows, out = ssRows(t, p.A)
		mem := strings.TrimSpace(server.File(t, "mem"))
		if r, ok := rows[srvName]; ok && r[7] == mem {
			matched = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !matched {
		t.Fatalf("skmem of %s never matched its mem file:\n%s\nmem: %s", srvName, out, server.File(t, "mem"))
	}
	r := rows[srvName]
	want := []string{"tcp", "ESTAB", srvName, "1000", "0", "198.18.0.1:8080", peer}
	for i, w := range want {
		if r[i] != w {
			t.Errorf("column %d = %q, want %q (line %q)", i, r[i], w, r)
		}
	}
	st := server.File(t, "status")
	var cwnd, retrans int64
	for _, f := range r[8:] {
		switch {
		case strings.HasPrefix(f, "cwnd:"):
			fmt.Sscanf(f, "cwnd:%d", &cwnd)
		case strings.HasPrefix(f, "retrans:"):
			fmt.Sscanf(f, "retrans:%d", &retrans)
		case strings.HasPrefix(f, "rtt:"):
			var a, b float64
			if n, _ := fmt.Sscanf(f, "rtt:%g/%g", &a, &b); n != 2 || a <= 0 {
				t.Errorf("rtt column %q", f)
			}
		}
	}
	if !strings.Contains(st, fmt.Sprintf(" cwnd %d ", cwnd)) || cwnd == 0 {
		t.Errorf("cwnd:%d, status %q", cwnd, st)
	}
	if !strings.Contains(st, fmt.Sprintf(" retrans %d", retrans)) {
		t.Errorf("retrans:%d, status %q", retrans, st)
	}
	l := rows[fmt.Sprintf("tcp/%d", listener.N)]
	if l == nil || l[1] != "LISTEN" || l[5] != "*:8080" || l[6] != "*:0" {
		t.Errorf("listener row %q\n%s", l, out)
	}
	u := rows[fmt.Sprintf("udp/%d", udp.N)]
	if u == nil || u[0] != "udp" || u[1] != "UNCONN" || u[5] != "*:7000" || !strings.HasPrefix(u[7], "skmem:(r0,rb") {
		t.Errorf("udp row %q\n%s", u, out)
	}
	if len(rows) != 3 {
		t.Errorf("want 3 conversations, got:\n%s", out)
	}

	// Filters.
	rows, out = ssRows(t, "-state", "listen", p.A)
	if len(rows) != 1 || rows[fmt.Sprintf("tcp/%d", listener.N)] == nil {
		t.Errorf("-state listen:\n%s", out)
	}
	rows, out = ssRows(t, p.A, "-state", "Established")
	if len(rows) != 1 || rows[srvName] == nil {
		t.Errorf("-state Established:\n%s", out)
	}
	rows, out = ssRows(t, "-port", "7000", p.A)
	if len(rows) != 1 || rows[fmt.Sprintf("udp/%d", udp.N)] == nil {
		t.Errorf("-port 7000:\n%s", out)
	}
	rows, out = ssRows(t, "-port", "9999", p.A)
	if len(rows) != 0 {
		t.Errorf("-port 9999:\n%s", out)
	}
	// The client side, on the other mount: connected to 8080, nothing queued.
	rows, out = ssRows(t, p.B, "-port", "8080")
	c := rows[fmt.Sprintf("tcp/%d", client.N)]
	if len(rows) != 1 || c == nil || c[1] != "ESTAB" || c[6] != "198.18.0.1:8080" || c[4] != "0" {
		t.Errorf("client side:\n%s", out)
	}
}

func TestSSNotAMount(t *testing.T) {
	var out bytes.Buffer
	if err := ssRun([]string{t.TempDir()}, &out); err == nil || !strings.Contains(err.Error(), "not a sockfs tree") {
		t.Fatalf("err %v", err)
	}
	if err := ssRun([]string{"a", "b"}, &out); err == nil {
		t.Fatal("two mounts accepted")
	}
}

// TestSSBadFilters: a filter nothing can match is a usage error, as ss(8)
// says "wrong state name" for `state bogus`; it printed an empty table
// and exited 0. Names of both kinds, and UDP's Open, are accepted.
func TestSSBadFilters(t *testing.T) {
	for _, args := range [][]string{{"-state", "bogus"}, {"-proto", "sctp"}, {"-port", "99999"}, {"-port", "-1"}} {
		err := ssRun(append(args, t.TempDir()), io.Discard)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	for _, st := range []string{"estab", "Established", "TIME-WAIT", "listen", "open", "unconn"} {
		if err := checkSSFilters(st, "", 0); err != nil {
			t.Errorf("-state %s: %v", st, err)
		}
	}
}
