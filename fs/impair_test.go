package fs

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"sockfs/netstack"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
)

// TestImpairFile writes good and bad lines to an ipifc impair file: good
// ones change exactly the directions they name and read back in canonical
// form; bad ones fail with EINVAL and change nothing.
func TestImpairFile(t *testing.T) {
	tr := newTestTree(t)
	pa, pb := link.NewPipe(tr.stack.Clock(), link.DefaultPipeMTU, impair.Config{}, impair.Config{}, 1)
	defer pb.Stop()
	dev, err := tr.stack.AddDevice(pa)
	if err != nil {
		t.Fatal(err)
	}
	f := tr.impairFile(0, func() *netstack.NetDevice { return dev }).(File)
	h, err := f.Open(context.Background(), OpenReq{Flags: syscall.O_RDWR})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	read := func() (in, out string) {
		buf := make([]byte, 4096)
		n, err := h.Read(context.Background(), buf, 0)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(buf[:n])), "\n")
		if len(lines) != 2 {
			t.Fatalf("impair reads %q", buf[:n])
		}
		cut := func(l string) string { s, _, _ := strings.Cut(l, " sent "); return s }
		return cut(lines[0]), cut(lines[1])
	}
	good := []struct{ write, in, out string }{
		{"delay 50ms 5ms\n", "in delay 50ms 5ms", "out delay 50ms 5ms"},
		{"out loss 1%", "in delay 50ms 5ms", "out loss 1%"},
		{"IN reorder 2% delay 10ms", "in delay 10ms reorder 2%", "out loss 1%"},
		{"duplicate 1% corrupt 0.1% rate 100mbit", "in duplicate 1% corrupt 0.1% rate 100mbit", "out duplicate 1% corrupt 0.1% rate 100mbit"},
		{"out off", "in duplicate 1% corrupt 0.1% rate 100mbit", "out off"},
		{"off\n", "in off", "out off"},
		{"in loss 10% limit 50", "in loss 10% limit 50", "out off"},
	}
	for _, g := range good {
		if _, err := h.Write(context.Background(), []byte(g.write), 0); err != nil {
			t.Fatalf("write %q: %v", g.write, err)
		}
		if in, out := read(); in != g.in || out != g.out {
			t.Fatalf("after %q: %q / %q, want %q / %q", g.write, in, out, g.in, g.out)
		}
	}
	bad := []string{"", "in", "out", "sideways loss 1%", "loss", "loss 101%", "loss -1%", "loss x",
		"delay 5parsecs", "delay -5ms", "rate 10furlongs", "limit 0", "off loss 1%", "loss 1% loss 2%",
		"in out loss 1%", "loss 1% 25%", "jitter 5ms"}
	for _, b := range bad {
		_, err := h.Write(context.Background(), []byte(b), 0)
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("write %q: %v, want EINVAL", b, err)
		}
		if in, out := read(); in != "in loss 10% limit 50" || out != "out off" {
			t.Fatalf("bad write %q changed the settings: %q / %q", b, in, out)
		}
	}
	if cfg, _ := dev.Impair(netstack.In); cfg.Loss != 0.10 || cfg.Limit != 50 {
		t.Fatalf("device in-config %+v", cfg)
	}
	if cfg, _ := dev.Impair(netstack.Out); cfg != (impair.Config{}) {
		t.Fatalf("device out-config %+v", cfg)
	}
}
