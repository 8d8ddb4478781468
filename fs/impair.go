package fs

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	"sockfs/netstack"
	"sockfs/netstack/impair"
)

// qIfcImpair is the impair file's type within an ipifc/N directory.
const qIfcImpair = qIfcStats + 1

// impairFile is ipifc/N/impair: the netem-like impairment of one device
// (an extension; Plan 9 has no such file). Reading gives one line per
// direction with the settings and counters:
//
//	in delay 50ms loss 1% sent 10 delivered 9 lost 1 ...
//	out off sent 0 ...
//
// Writing sets them, in netem's words (package impair's Parse), for both
// directions or, after a leading "in" or "out", for one:
//
//	echo 'delay 50ms 5ms loss 1%' > impair     both directions
//	echo 'out rate 100mbit' > impair           only what the device sends
//	echo off > impair                          no impairment
//
// A bad line fails with EINVAL, is logged, and changes neither direction.
func (t *Tree) impairFile(n int, dev func() *netstack.NetDevice) Node {
	read := func() string {
		d := dev()
		if d == nil {
			return ""
		}
		var b strings.Builder
		for _, dir := range []netstack.Direction{netstack.In, netstack.Out} {
			cfg, c := d.Impair(dir)
			fmt.Fprintf(&b, "%s %s sent %d delivered %d lost %d duplicated %d corrupted %d reordered %d queuedrops %d queued %d marked %d\n",
				dir, cfg, c.Sent, c.Delivered, c.Lost, c.Duplicated, c.Corrupted, c.Reordered, c.QueueDrops, c.Queued, c.Marked)
		}
		return b.String()
	}
	write := func(_ context.Context, text string) error {
		d := dev()
		if d == nil {
			return syscall.ENXIO // the device went away
		}
		err := setImpair(d, text)
		if err != nil {
			t.log.Warn("impair write refused", "ifc", d.Name(), "value", strings.TrimSpace(text), "err", err)
		}
		return err
	}
	return newText(qpath(protoIpifc, n, qIfcImpair), "impair", 0644, read, write)
}

// setImpair parses one impair line and applies it, all or nothing.
func setImpair(d *netstack.NetDevice, text string) error {
	line := strings.TrimSpace(text)
	dirs := []netstack.Direction{netstack.In, netstack.Out}
	if f := strings.Fields(line); len(f) > 0 {
		switch strings.ToLower(f[0]) {
		case "in":
			dirs, line = dirs[:1], strings.Join(f[1:], " ")
		case "out":
			dirs, line = dirs[1:], strings.Join(f[1:], " ")
		}
	}
	cfg, err := impair.Parse(line)
	if err != nil {
		return err
	}
	// Parse validated cfg, so SetImpair cannot fail half way.
	for _, dir := range dirs {
		if err := d.SetImpair(dir, cfg); err != nil {
			return err
		}
	}
	return nil
}
