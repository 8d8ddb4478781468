// Package peer is the server side of the benchmark protocol that every
// system under test speaks: the kernel's own stack, gVisor's netstack and
// sockfs each run this same code over their own net.Listener, so the only
// thing that differs between the systems is the stack beneath the
// listeners. The client side (always the Linux kernel's TCP) lives in
// package main of bench/.
//
// Ports, all TCP on the peer's address:
//
//	5000 control  line protocol: "stats" answers one JSON Stats line,
//	              "release" closes every held connection and answers "ok",
//	              "quit" answers "bye" and makes Serve return.
//	5001 sink     reads and discards until EOF, then writes the 8-byte
//	              big-endian count of bytes received and closes.
//	5002 source   reads an 8-byte big-endian byte limit, then writes zeros
//	              until the limit or until the client goes away.
//	5003 echo     writes back whatever it reads, until EOF.
//	5004 hold     accepts and keeps the connection without a goroutine,
//	              so the heap per idle connection is the stack's own.
//
// The peer program prints "ready" on stdout once every port listens.
// This package imports only the standard library, so the gVisor peer (a
// separate module) can use it without pulling in the rest of sockfs.
package peer

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Ports of the benchmark protocol.
const (
	PortControl = 5000
	PortSink    = 5001
	PortSource  = 5002
	PortEcho    = 5003
	PortHold    = 5004
)

// bufSize is the read and write size of the sink and source loops (the
// same for every socket system; Config.BufSize can raise it for a file
// transport whose requests are larger).
const bufSize = 256 << 10

// Stats is the peer process's answer to "stats". Heap figures are taken
// after two forced collections, so they count live objects only.
type Stats struct {
	HeapAlloc  uint64 `json:"heap_alloc"` // runtime.MemStats.HeapAlloc after GC
	HeapInuse  uint64 `json:"heap_inuse"` // runtime.MemStats.HeapInuse after GC
	Mallocs    uint64 `json:"mallocs"`    // runtime.MemStats.Mallocs (cumulative)
	RSS        uint64 `json:"rss"`        // resident set size, bytes (/proc/self/statm)
	CPUNanos   int64  `json:"cpu_ns"`     // user+system CPU of the process (getrusage)
	Packets    uint64 `json:"packets"`    // link packets in+out (0 when unknown)
	Held       int    `json:"held"`       // connections held on PortHold
	Goroutines int    `json:"goroutines"` // runtime.NumGoroutine
	Accepted   uint64 `json:"accepted"`   // connections accepted on all ports
	Extra      string `json:"extra,omitempty"`
}

// Config tells Serve how to listen and where the link counters are.
type Config struct {
	// Listen returns a listener on the peer's address and port.
	Listen func(port int) (net.Listener, error)
	// Packets returns the link's packet count (received plus sent) since
	// start; nil when the stack does not expose one.
	Packets func() uint64
	// GC controls whether "stats" forces collections first; true for
	// every Go stack (the heap numbers need it).
	GC bool
	// Fill, if set, amends the stats last (a peer whose stack runs in
	// another process adds that process's CPU and memory).
	Fill func(*Stats)
	// BufSize, if not 0, replaces bufSize: the files peer over FUSE reads
	// and writes 1 MiB, its request size.
	BufSize int
}

type server struct {
	cfg      Config
	mu       sync.Mutex
	held     []net.Conn
	accepted uint64
	lns      []net.Listener
	quit     chan struct{}
	once     sync.Once
}

// Serve listens on every port, calls ready, and serves until a "quit"
// arrives on the control port or a listener fails. It closes its listeners
// and held connections before returning.
func Serve(cfg Config, ready func()) error {
	s := &server{cfg: cfg, quit: make(chan struct{})}
	handlers := map[int]func(net.Conn){
		PortControl: s.control,
		PortSink:    func(c net.Conn) { sink(c, s.bufSize()) },
		PortSource:  func(c net.Conn) { source(c, s.bufSize()) },
		PortEcho:    echo,
		PortHold:    nil,
	}
	errc := make(chan error, len(handlers))
	for _, port := range []int{PortControl, PortSink, PortSource, PortEcho, PortHold} {
		ln, err := cfg.Listen(port)
		if err != nil {
			s.closeAll()
			return err
		}
		s.lns = append(s.lns, ln)
		h := handlers[port]
		go func() { errc <- s.acceptLoop(ln, h) }()
	}
	ready()
	var err error
	select {
	case <-s.quit:
	case err = <-errc:
	}
	s.closeAll()
	return err
}

func (s *server) closeAll() {
	for _, ln := range s.lns {
		ln.Close()
	}
	s.release()
}

func (s *server) acceptLoop(ln net.Listener, h func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.quit:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.mu.Lock()
		s.accepted++
		if h == nil {
			s.held = append(s.held, c)
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		go h(c)
	}
}

func (s *server) release() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, c := range held {
		c.Close()
	}
}

func (s *server) control(c net.Conn) {
	defer c.Close()
	r := bufio.NewScanner(c)
	for r.Scan() {
		var reply []byte
		switch r.Text() {
		case "stats":
			reply, _ = json.Marshal(s.stats())
		case "release":
			s.release()
			reply = []byte("ok")
		case "quit":
			c.Write([]byte("bye\n"))
			s.once.Do(func() { close(s.quit) })
			return
		default:
			reply = []byte("error: unknown command")
		}
		if _, err := c.Write(append(reply, '\n')); err != nil {
			return
		}
	}
}

func (s *server) stats() Stats {
	if s.cfg.GC {
		runtime.GC()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := Stats{
		HeapAlloc:  ms.HeapAlloc,
		HeapInuse:  ms.HeapInuse,
		Mallocs:    ms.Mallocs,
		RSS:        rss(),
		CPUNanos:   cpuNanos(),
		Goroutines: runtime.NumGoroutine(),
	}
	if s.cfg.Packets != nil {
		st.Packets = s.cfg.Packets()
	}
	s.mu.Lock()
	st.Held = len(s.held)
	st.Accepted = s.accepted
	s.mu.Unlock()
	if s.cfg.Fill != nil {
		s.cfg.Fill(&st)
	}
	return st
}

// cpuNanos is the process's user plus system CPU time.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func (s *server) bufSize() int {
	if s.cfg.BufSize > 0 {
		return s.cfg.BufSize
	}
	return bufSize
}

func sink(c net.Conn, size int) {
	defer c.Close()
	buf := make([]byte, size)
	var n uint64
	for {
		m, err := c.Read(buf)
		n += uint64(m)
		if err != nil {
			break
		}
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	c.Write(b[:])
}

func source(c net.Conn, size int) {
	defer c.Close()
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	limit := binary.BigEndian.Uint64(b[:])
	buf := make([]byte, size)
	for limit > 0 {
		p := buf
		if uint64(len(p)) > limit {
			p = p[:limit]
		}
		m, err := c.Write(p)
		limit -= uint64(m)
		if err != nil {
			return
		}
	}
}

func echo(c net.Conn) {
	defer c.Close()
	// Same as Go's kernel sockets, which have TCP_NODELAY from the start.
	if nd, ok := c.(interface{ SetNoDelay(bool) error }); ok {
		nd.SetNoDelay(true)
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// rss reads the resident set size from /proc/self/statm (pages).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
