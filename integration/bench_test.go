package integration

import (
	"fmt"
	"io"
	"net/netip"
	"sockfs/tun"
	"testing"
	"time"
)

// BenchmarkTUNBulk measures bulk TCP throughput between the kernel and
// sockfs over the TUN device (MTU 1500), each direction, with the TUN's
// offloads on and off, with socat as the kernel's end. Each op moves 64
// MiB; the Gbit/s metric is what to read. The stack runs in the test
// process, so -cpuprofile profiles it: docs/performance.md.
// Run: go test -run '^$' -bench TUNBulk ./integration (as root).
func BenchmarkTUNBulk(b *testing.B) {
	needRoot(b)
	needTool(b, "socat")
	const size = 64 << 20
	for _, mode := range []string{"offload", "no-offload"} {
		for _, dir := range []string{"kernel-to-sockfs", "sockfs-to-kernel"} {
			b.Run(mode+"/"+dir, func(b *testing.B) {
				benchTUNBulk(b, mode == "offload", dir, size)
			})
		}
	}
}

func benchTUNBulk(b *testing.B, offload bool, dir string, size int64) {
	ns := newNetns(b)
	st := stackInNetnsCfg(b, ns, "sfsbench0", tun.Config{DisableOffload: !offload})
	ln, err := st.ListenTCP(netip.MustParseAddrPort("198.18.0.2:5201"), 16)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if dir == "kernel-to-sockfs" {
				io.Copy(io.Discard, c)
			} else {
				io.CopyN(c, zeroReader{}, size)
			}
			c.Close()
		}
	}()
	b.SetBytes(size)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var out string
		var err error
		if dir == "kernel-to-sockfs" {
			out, err = ns.run("socat", "-u", fmt.Sprintf("OPEN:/dev/zero,readbytes=%d", size), "TCP:198.18.0.2:5201")
		} else {
			out, err = ns.run("socat", "-u", "TCP:198.18.0.2:5201", "OPEN:/dev/null")
		}
		if err != nil {
			b.Fatalf("socat: %v\n%s", err, out)
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(size)*8*float64(b.N)/el.Seconds()/1e9, "Gbit/s")
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
