package integration

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	plainBuildOnce sync.Once
	plainBin       string
	plainBuildErr  error
)

// sockfsBinPlain builds cmd/sockfs without -race, for benchmarks.
func sockfsBinPlain(t testing.TB) string {
	t.Helper()
	plainBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sockfs-it-bin-plain")
		if err != nil {
			plainBuildErr = err
			return
		}
		plainBin = filepath.Join(dir, "sockfs")
		out, err := exec.Command("go", "build", "-o", plainBin, "../cmd/sockfs").CombinedOutput()
		if err != nil {
			plainBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if plainBuildErr != nil {
		t.Fatal(plainBuildErr)
	}
	return plainBin
}

// kernelSender starts socat in ns listening on 198.18.0.1:port, sending
// size zero bytes to the one client that connects, then exiting.
func kernelSender(b *testing.B, ns *netns, port, size int) *exec.Cmd {
	b.Helper()
	cmd := ns.cmd("socat", "-u", fmt.Sprintf("OPEN:/dev/zero,readbytes=%d", size),
		fmt.Sprintf("TCP-LISTEN:%d,bind=198.18.0.1,reuseaddr", port))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// Until it listens.
	for i := 0; i < 100; i++ {
		if out, _ := ns.run("ss", "-Htln", fmt.Sprintf("sport = :%d", port)); len(out) > 0 {
			return cmd
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("socat did not listen")
	return nil
}

// BenchmarkFilesCatVsAPI receives 64 MiB per op from the kernel (socat over
// the TUN device, MTU 1500) into sockfs, read two ways on the same kind of
// connection: `cat tcp/N/data > /dev/null` through the FUSE mount of a
// `sockfs serve` (built without -race), and io.Copy(io.Discard, conn) on
// the Go API of a stack in the test process. Read the MB/s (and Gbit/s)
// side by side (Gbit/s = MB/s * 8 / 1000):
//
//	go test -run '^$' -bench FilesCatVsAPI ./integration
func BenchmarkFilesCatVsAPI(b *testing.B) {
	needRoot(b)
	needTool(b, "socat")
	const size = 64 << 20
	b.Run("cat-data", func(b *testing.B) {
		d := startFilesBin(b, "sfsfbch0", sockfsBinPlain(b))
		b.SetBytes(size)
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			port := 7500 + i%100
			snd := kernelSender(b, d.ns, port, size)
			ctl, err := os.OpenFile(filepath.Join(d.mnt, "tcp", "clone"), os.O_RDWR, 0)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 16)
			n, _ := ctl.Read(buf)
			b.StartTimer()
			if _, err := fmt.Fprintf(ctl, "connect 198.18.0.1!%d", port); err != nil {
				b.Fatal(err)
			}
			cat := exec.Command("sh", "-c", fmt.Sprintf("cat %s > /dev/null", filepath.Join(d.mnt, "tcp", string(buf[:n]), "data")))
			if out, err := cat.CombinedOutput(); err != nil {
				b.Fatalf("cat: %v %s", err, out)
			}
			b.StopTimer()
			ctl.Close()
			snd.Wait()
			b.StartTimer()
		}
	})
	b.Run("go-api", func(b *testing.B) {
		ns := newNetns(b)
		st := stackInNetns(b, ns, "sfsfbch1")
		b.SetBytes(size)
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			port := 7600 + i%100
			snd := kernelSender(b, ns, port, size)
			b.StartTimer()
			c, err := st.DialTCP(context.Background(), netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(port)))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, c); err != nil || n != size {
				b.Fatalf("copy: %d, %v", n, err)
			}
			b.StopTimer()
			c.Close()
			snd.Wait()
			b.StartTimer()
		}
	})
}

// catData connects a conversation of the tree mounted at dir to the
// kernel's sender on port and reads it to the end with cat, as a user
// would; it returns how long the cat took.
func catData(b *testing.B, dir string, port int) time.Duration {
	b.Helper()
	ctl, err := os.OpenFile(filepath.Join(dir, "tcp", "clone"), os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Close()
	buf := make([]byte, 16)
	n, _ := ctl.Read(buf)
	if _, err := fmt.Fprintf(ctl, "connect 198.18.0.1!%d", port); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cat := exec.Command("sh", "-c", fmt.Sprintf("cat %s > /dev/null", filepath.Join(dir, "tcp", string(buf[:n]), "data")))
	if out, err := cat.CombinedOutput(); err != nil {
		b.Fatalf("cat: %v %s", err, out)
	}
	return time.Since(start)
}

// BenchmarkImportCatVsLocal is issue 15's import measurement: 100 MiB
// from the kernel (socat over the TUN device, MTU 1500) read with cat from
// a conversation's data file, alternately through the daemon's own FUSE
// mount and through `sockfs import` of the same daemon's 9P export (on
// the namespace's loopback, so both run on this machine), each op one
// transfer of each. It reports both rates in MB/s and their ratio
// (import/local, the median of the per-op ratios):
//
//	go test -run '^$' -bench ImportCatVsLocal -benchtime 5x ./integration
func BenchmarkImportCatVsLocal(b *testing.B) {
	needRoot(b)
	needTool(b, "socat")
	needTool(b, "fusermount3")
	const size = 100 << 20
	bin := sockfsBinPlain(b)
	ns := newNetns(b)
	mnt := b.TempDir()
	b.Cleanup(func() {
		if mounted(mnt) {
			exec.Command("fusermount3", "-uz", mnt).Run()
		}
	})
	d := &filesDaemon{t: b, ns: ns, bin: bin, tun: "sfsfimp0", mnt: mnt, nine: "127.0.0.1:5640"}
	d.start()
	im := startImportBin(b, bin, ns, "127.0.0.1:5640")
	var local, imported time.Duration
	var ratios []float64
	b.ResetTimer()
	for i := range b.N {
		var took [2]time.Duration
		for j, dir := range []string{mnt, im.dir} {
			port := 7700 + (2*i+j)%200
			snd := kernelSender(b, ns, port, size)
			took[j] = catData(b, dir, port)
			b.StopTimer()
			snd.Wait()
			b.StartTimer()
		}
		local += took[0]
		imported += took[1]
		ratios = append(ratios, took[0].Seconds()/took[1].Seconds())
	}
	b.StopTimer()
	slices.Sort(ratios)
	b.ReportMetric(float64(b.N)*size/1e6/local.Seconds(), "local-MB/s")
	b.ReportMetric(float64(b.N)*size/1e6/imported.Seconds(), "import-MB/s")
	b.ReportMetric(ratios[len(ratios)/2], "import/local")
}
