//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/bench/peer"
)

// The kernel's end of every benchmark: Go's net package in the client
// namespace, identical for every system. Sockets are created on a thread
// inside the namespace (netns.do) and used from any goroutine afterwards.

const ioTimeout = 30 * time.Second

// client talks to one peer.
type client struct {
	ns   *netns
	addr netip.Addr
	ctl  net.Conn
	ctlr *bufio.Reader
}

func newClient(ns *netns, addr netip.Addr) (*client, error) {
	c := &client{ns: ns, addr: addr}
	var err error
	err = ns.do(func() error {
		c.ctl, err = c.dialOnThread(peer.PortControl)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.ctlr = bufio.NewReader(c.ctl)
	return c, nil
}

// dialOnThread dials the peer; call it inside ns.do.
func (c *client) dialOnThread(port int) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	return d.Dial("tcp", netip.AddrPortFrom(c.addr, uint16(port)).String())
}

// dialN opens n connections to port from the client namespace, using
// workers parallel dialers.
func (c *client) dialN(port, n, workers int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			errs[w] = c.ns.do(func() error {
				for i := w; i < n; i += workers {
					cn, err := c.dialOnThread(port)
					if err != nil {
						return fmt.Errorf("dial %d of %d: %w", i, n, err)
					}
					conns[i] = cn
				}
				return nil
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// command sends one control line and returns the answer.
func (c *client) command(cmd string) (string, error) {
	c.ctl.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.ctl, cmd+"\n"); err != nil {
		return "", err
	}
	line, err := c.ctlr.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("control %q: %w", cmd, err)
	}
	return line[:len(line)-1], nil
}

func (c *client) stats() (peer.Stats, error) {
	var st peer.Stats
	line, err := c.command("stats")
	if err != nil {
		return st, err
	}
	err = json.Unmarshal([]byte(line), &st)
	return st, err
}

func (c *client) quit() {
	c.command("quit")
	c.ctl.Close()
}

var zeros = make([]byte, 256<<10)

// bulkResult is one bulk run: bytes moved and the time it took.
type bulkResult struct {
	bytes   uint64
	seconds float64
}

func (r bulkResult) gbps() float64 { return float64(r.bytes) * 8 / r.seconds / 1e9 }

// bulkStreams runs one bulk measurement on streams connections to port:
// each connection's stream function moves at most per bytes until end and
// reports how many count. The time is from the start to the last stream's
// return, or at most dur if capped (a reader stops at end by itself, a
// sender waits for the peer's count after it).
func (c *client) bulkStreams(port, streams int, dur time.Duration, limit uint64, capped bool,
	stream func(cn net.Conn, per uint64, end time.Time) (uint64, error)) (bulkResult, error) {
	conns, err := c.dialN(port, streams, streams)
	if err != nil {
		return bulkResult{}, err
	}
	defer closeAll(conns)
	per := limit / uint64(streams)
	counts := make([]uint64, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(dur)
	for i, cn := range conns {
		wg.Go(func() { counts[i], errs[i] = stream(cn, per, end) })
	}
	wg.Wait()
	el := time.Since(start)
	if capped {
		el = min(el, dur)
	}
	if err := errors.Join(errs...); err != nil {
		return bulkResult{}, err
	}
	var total uint64
	for _, n := range counts {
		total += n
	}
	return bulkResult{total, el.Seconds()}, nil
}

// bulkToPeer sends from the kernel to the peer's sink on streams
// connections for dur (at most limit bytes in all), then half-closes and
// waits for the peer's count of bytes received: the time runs until the
// last stream's count arrives, so data still queued is not counted as
// delivered.
func (c *client) bulkToPeer(streams int, dur time.Duration, limit uint64) (bulkResult, error) {
	return c.bulkStreams(peer.PortSink, streams, dur, limit, false, func(cn net.Conn, per uint64, end time.Time) (uint64, error) {
		cn.SetDeadline(end.Add(ioTimeout))
		var sent uint64
		for sent < per && time.Now().Before(end) {
			p := zeros[:min(uint64(len(zeros)), per-sent)]
			n, err := cn.Write(p)
			sent += uint64(n)
			if err != nil {
				return 0, err
			}
		}
		cn.(*net.TCPConn).CloseWrite()
		var b [8]byte
		if _, err := io.ReadFull(cn, b[:]); err != nil {
			return 0, fmt.Errorf("sink count: %w", err)
		}
		count := binary.BigEndian.Uint64(b[:])
		if count != sent {
			return count, fmt.Errorf("sink received %d of %d bytes", count, sent)
		}
		return count, nil
	})
}

// bulkFromPeer asks the peer's source for at most limit bytes in all on
// streams connections and reads for dur; the bytes read in that time count.
func (c *client) bulkFromPeer(streams int, dur time.Duration, limit uint64) (bulkResult, error) {
	return c.bulkStreams(peer.PortSource, streams, dur, limit, true, func(cn net.Conn, per uint64, end time.Time) (uint64, error) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], per)
		cn.SetDeadline(end.Add(ioTimeout))
		if _, err := cn.Write(b[:]); err != nil {
			return 0, err
		}
		cn.SetReadDeadline(end)
		buf := make([]byte, 256<<10)
		var got uint64
		for got < per {
			n, err := cn.Read(buf)
			got += uint64(n)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() || err == io.EOF && got == per {
					return got, nil
				}
				return got, err
			}
		}
		return got, nil
	})
}

// rr runs 1-byte request/response on one connection to the echo port for
// dur (at most maxN round trips) and returns the sorted latencies in µs.
func (c *client) rr(dur time.Duration, maxN int) ([]float64, error) {
	conns, err := c.dialN(peer.PortEcho, 1, 1)
	if err != nil {
		return nil, err
	}
	cn := conns[0]
	defer cn.Close()
	end := time.Now().Add(dur)
	cn.SetDeadline(end.Add(ioTimeout))
	lat := make([]float64, 0, maxN)
	var b [1]byte
	for len(lat) < maxN {
		t0 := time.Now()
		if t0.After(end) {
			break
		}
		if _, err := cn.Write(b[:]); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(cn, b[:]); err != nil {
			return nil, err
		}
		lat = append(lat, float64(time.Since(t0).Nanoseconds())/1e3)
	}
	slices.Sort(lat)
	return lat, nil
}

// crr opens connections to the echo port one after another for dur (at
// most maxN): connect, 1-byte request and response, close. It returns the
// rate in connections per second.
func (c *client) crr(dur time.Duration, maxN int) (float64, error) {
	var n int
	var el time.Duration
	err := c.ns.do(func() error {
		start := time.Now()
		end := start.Add(dur)
		var b [1]byte
		for n < maxN && time.Now().Before(end) {
			cn, err := c.dialOnThread(peer.PortEcho)
			if err != nil {
				return fmt.Errorf("connection %d: %w", n, err)
			}
			cn.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := cn.Write(b[:]); err != nil {
				cn.Close()
				return err
			}
			if _, err := io.ReadFull(cn, b[:]); err != nil {
				cn.Close()
				return err
			}
			cn.Close()
			n++
		}
		el = time.Since(start)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(n) / el.Seconds(), nil
}

// idleResult is the peer's memory growth for n idle connections.
type idleResult struct {
	heapPerConn float64 // Go heap (after GC) per connection, bytes
	rssPerConn  float64
	slabPerConn float64 // kernel slab (/proc/meminfo, system-wide) per connection
	setupSecs   float64
}

// idle opens n connections to the hold port, waits until the peer holds
// them all, measures, then closes them on both sides.
func (c *client) idle(n int) (idleResult, error) {
	var r idleResult
	before, err := c.stats()
	if err != nil {
		return r, err
	}
	slab0 := slabBytes()
	start := time.Now()
	conns, err := c.dialN(peer.PortHold, n, 8)
	if err != nil {
		return r, err
	}
	defer func() {
		closeAll(conns)
		c.command("release")
	}()
	r.setupSecs = time.Since(start).Seconds()
	var after peer.Stats
	for deadline := time.Now().Add(ioTimeout); ; {
		if after, err = c.stats(); err != nil {
			return r, err
		}
		if after.Held-before.Held >= n {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("peer holds %d of %d connections", after.Held, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.slabPerConn = float64(slabBytes()-slab0) / float64(n)
	r.heapPerConn = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
	r.rssPerConn = (float64(after.RSS) - float64(before.RSS)) / float64(n)
	return r, nil
}

// slabBytes is the kernel's Slab figure from /proc/meminfo, in bytes. It is
// system-wide, so on a shared machine it carries other processes' noise.
func slabBytes() int64 {
	b, err := readFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range splitLines(b) {
		var kb int64
		if _, err := fmt.Sscanf(l, "Slab: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

// udpBlast sends size-byte UDP datagrams from the client namespace to dst
// from senders goroutines until stop is closed (the TUN ceiling's feed).
func udpBlast(ns *netns, dst netip.AddrPort, size, senders int, stop chan struct{}) error {
	var conns []net.Conn
	err := ns.do(func() error {
		for range senders {
			cn, err := net.Dial("udp4", dst.String())
			if err != nil {
				return err
			}
			cn.(*net.UDPConn).SetWriteBuffer(4 << 20)
			conns = append(conns, cn)
		}
		return nil
	})
	if err != nil {
		closeAll(conns)
		return err
	}
	// UDP GSO (UDP_SEGMENT): one send(2) carries up to 64 datagrams, which
	// the kernel segments before the TUN, so the feed costs the sender far
	// less CPU per packet than the reader spends, and the reader is what
	// the measurement sees (the tunraw peer reports the kernel's drops).
	nseg := max(1, min(64, 65000/size))
	if nseg > 1 {
		for _, cn := range conns {
			rc, err := cn.(*net.UDPConn).SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, size)
			})
			if serr != nil {
				nseg = 1
			}
		}
	}
	msg := make([]byte, size*nseg)
	for _, cn := range conns {
		go func() {
			defer cn.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cn.Write(msg) // ENOBUFS and ECONNREFUSED are expected
			}
		}()
	}
	return nil
}

// udpSink binds a UDP socket on port in the client namespace, so that the
// bare writer's datagrams go through the kernel's IP and UDP input to a
// socket (and no ICMP port unreachable comes back), and holds it until
// stop is closed. It reads nothing: once its buffer is full the kernel
// drops at the socket, the cheapest end, and the harness's own reads do
// not compete with the writer for the CPU.
func udpSink(ns *netns, port int, stop chan struct{}) (chan uint64, error) {
	var pc *net.UDPConn
	err := ns.do(func() error {
		var err error
		pc, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		return nil, err
	}
	res := make(chan uint64, 1)
	go func() {
		<-stop
		pc.Close()
		res <- 0
	}()
	return res, nil
}

func itoa(i int) string { return strconv.Itoa(i) }
