package tun

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/netstack/link"
	"sockfs/skb"
)

// kernelUDP opens a UDP socket in ns bound to 198.18.0.1:port and connected
// to 198.18.0.2:peerPort, the far end of the TUN.
func kernelUDP(b *testing.B, ns *netns, port, peerPort int) int {
	b.Helper()
	fd := ns.udpSocket(b, netip.AddrPortFrom(hostIP, uint16(port)))
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: peerIP.As4(), Port: peerPort}); err != nil {
		b.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	return fd
}

// drainers read kernel sockets in the background so that a benchmark
// measures Xmit (a socket may still drop what it cannot queue).
type drainers struct {
	b    *testing.B
	done chan struct{}
	wg   sync.WaitGroup
}

func newDrainers(b *testing.B) *drainers { return &drainers{b: b, done: make(chan struct{})} }

// socket starts draining fd.
func (d *drainers) socket(fd int) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		buf := make([]byte, 2048)
		for {
			select {
			case <-d.done:
				return
			default:
			}
			unix.Read(fd, buf)
		}
	}()
}

// stop ends the drainers, outside the timed part (which includes deferred
// calls): each notices only when its read times out (SO_RCVTIMEO).
func (d *drainers) stop() {
	d.b.StopTimer()
	close(d.done)
	d.wg.Wait()
}

// BenchmarkTunPingPong is one UDP round trip kernel -> TUN -> kernel per
// op: the receiver turns each datagram around in place (swapping addresses
// and ports leaves both checksums valid) and transmits the same skb. It
// measures the latency of the whole read/write path and its allocations.
func BenchmarkTunPingPong(b *testing.B) {
	ns := newNetns(b)
	d := newDevice(b, ns, "sfsbpp0")
	err := d.Open(link.ReceiverFunc(func(batch []*skb.SKB) {
		for i, s := range batch {
			batch[i] = nil
			p := s.Data()
			if len(p) < 28 || p[9] != unix.IPPROTO_UDP {
				s.Free()
				continue
			}
			var a [4]byte
			copy(a[:], p[12:16])
			copy(p[12:16], p[16:20])
			copy(p[16:20], a[:])
			sp, dp := binary.BigEndian.Uint16(p[20:]), binary.BigEndian.Uint16(p[22:])
			binary.BigEndian.PutUint16(p[20:], dp)
			binary.BigEndian.PutUint16(p[22:], sp)
			batch[0] = s
			d.Xmit(batch[:1])
		}
	}))
	if err != nil {
		b.Fatal(err)
	}
	fd := kernelUDP(b, ns, 7000, 7)
	msg := make([]byte, 64)
	buf := make([]byte, 2048)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := unix.Write(fd, msg); err != nil {
			b.Fatal(err)
		}
		if n, err := unix.Read(fd, buf); err != nil || n != len(msg) {
			b.Fatalf("read %d, %v", n, err)
		}
	}
}

// BenchmarkTunRx measures the bare receive path: the kernel queues a burst
// of 92-byte UDP packets on the TUN while the receiver is held, then the
// timer runs while the reader drains them, so senders do not compete with
// the reader for the CPU. An op is one packet; allocs/op is the receive
// path's. It compares a plain Read of the file (one packet per call), Open's reader
// delivering one packet per NetifRx, and batches of up to 64.
func BenchmarkTunRx(b *testing.B) {
	for _, v := range []struct {
		name        string
		batch, size int
		plain       bool // a plain loop on the file's Read instead of Open
	}{
		{"file-read/size=92", 1, 64, true},
		{"batch=1/size=92", 1, 64, false},
		{"batch=64/size=92", 64, 64, false},
		{"file-read/size=1428", 1, 1400, true},
		{"batch=1/size=1428", 1, 1400, false},
		{"batch=64/size=1428", 64, 1400, false},
	} {
		batch := v.batch
		b.Run(v.name, func(b *testing.B) {
			const burst = 4000 // below the txqueuelen set here
			ns := newNetns(b)
			d := newDevice(b, ns, "sfsbrx0")
			if out, err := ns.run("ip", "link", "set", "dev", "sfsbrx0", "txqueuelen", "10000"); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			d.rxBatch = batch
			var got, calls atomic.Int64
			var hold atomic.Bool
			held, release := make(chan struct{}), make(chan struct{})
			rx := link.ReceiverFunc(func(bs []*skb.SKB) {
				if hold.Swap(false) {
					held <- struct{}{}
					<-release
				}
				for i, s := range bs {
					bs[i] = nil
					s.Free()
				}
				got.Add(int64(len(bs)))
				calls.Add(1)
			})
			if v.plain {
				go func() {
					buf := make([]byte, vnetHdrLen+maxPacket)
					hl := 0
					if d.vnetHdr {
						hl = vnetHdrLen
					}
					bs := make([]*skb.SKB, 1)
					for {
						n, err := d.file.Read(buf)
						if err != nil {
							return
						}
						s := skb.Alloc(n - hl)
						s.PutData(buf[hl:n])
						bs[0] = s
						rx(bs)
					}
				}()
			} else if err := d.Open(rx); err != nil {
				b.Fatal(err)
			}
			fd := kernelUDP(b, ns, 7100, 9)
			msg := make([]byte, v.size)
			b.ReportAllocs()
			b.ResetTimer()
			b.StopTimer()
			var drained time.Duration
			for left := b.N; left > 0; {
				n := min(left, burst)
				left -= n
				// Plug the reader with one packet, queue n more behind it.
				hold.Store(true)
				want := got.Load() + 1 + int64(n)
				unix.Write(fd, msg)
				<-held
				for range n {
					unix.Write(fd, msg)
				}
				start := time.Now()
				b.StartTimer()
				release <- struct{}{}
				deadline := start.Add(5 * time.Second)
				for got.Load() < want && time.Now().Before(deadline) {
					runtime.Gosched()
				}
				b.StopTimer()
				drained += time.Since(start)
				if got.Load() < want {
					b.Fatalf("drained %d of %d", got.Load(), want)
				}
			}
			b.ReportMetric(float64(b.N)/drained.Seconds(), "rx-pkt/s")
			b.ReportMetric(float64(got.Load())/float64(calls.Load()), "pkt/batch")
		})
	}
}

// BenchmarkTunTx transmits 92-byte UDP packets to a kernel socket, one
// Xmit of a 64-packet batch at a time; an op is one packet.
func BenchmarkTunTx(b *testing.B) {
	ns := newNetns(b)
	d := newDevice(b, ns, "sfsbtx0")
	drain := newDrainers(b)
	drain.socket(kernelUDP(b, ns, 7200, 4000))
	defer drain.stop()
	tmpl := udpPacket(make([]byte, 128), netip.AddrPortFrom(peerIP, 4000), netip.AddrPortFrom(hostIP, 7200), make([]byte, 64))
	batch := make([]*skb.SKB, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		s := skb.Alloc(len(tmpl))
		s.PutData(tmpl)
		batch = append(batch, s)
		if len(batch) == cap(batch) || i == b.N-1 {
			d.Xmit(batch)
			batch = batch[:0]
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx-pkt/s")
	if s := d.Stats().Snapshot(); s.TxErrors+s.TxDropped != 0 {
		b.Errorf("stats %+v", s)
	}
}

// BenchmarkTunTxParallel transmits 1428-byte UDP packets from
// GOMAXPROCS goroutines at once, each to its own kernel socket (drained by
// its own reader) in Xmits of 16-packet batches; an op is one packet. A TUN
// write runs the kernel's input path in the writer (tun_get_user hands the
// packet to netif_receive_skb), so this measures whether writers on
// different CPUs overlap (see tryWritev).
func BenchmarkTunTxParallel(b *testing.B) {
	ns := newNetns(b)
	d := newDevice(b, ns, "sfsbtxp0")
	procs := runtime.GOMAXPROCS(0)
	tmpls := make([][]byte, procs)
	drain := newDrainers(b)
	for i := range procs {
		drain.socket(kernelUDP(b, ns, 7300+i, 4300+i))
		tmpls[i] = udpPacket(make([]byte, 1500), netip.AddrPortFrom(peerIP, uint16(4300+i)), netip.AddrPortFrom(hostIP, uint16(7300+i)), make([]byte, 1400))
	}
	defer drain.stop()
	var next atomic.Int32
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		tmpl := tmpls[int(next.Add(1)-1)%procs]
		batch := make([]*skb.SKB, 0, 16)
		for more := true; more; {
			more = pb.Next()
			if more {
				s := skb.Alloc(len(tmpl))
				s.PutData(tmpl)
				batch = append(batch, s)
			}
			if len(batch) == cap(batch) || !more && len(batch) > 0 {
				d.Xmit(batch)
				batch = batch[:0]
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx-pkt/s")
	if s := d.Stats().Snapshot(); s.TxErrors+s.TxDropped != 0 {
		b.Errorf("stats %+v", s)
	}
}
