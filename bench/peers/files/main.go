// Command files is the benchmark peer for sockfs's file interface: it
// serves the benchmark protocol of package sockfs/bench/peer through the
// /net tree of `sockfs serve`, using the conversation files clone, ctl
// ("announce PORT"), listen and data, in reads and writes of the
// transport's largest request (1 MiB over FUSE, 1020 KiB over 9P at msize
// 1 MiB):
//
//	-dir DIR   over FUSE (serve --mount DIR): plain open(2), read(2) and
//	           write(2) on the mounted files, what dd bs=128k does;
//	-9p ADDR   over 9P2000.L (serve --9p ADDR) with the hugelgupf/p9 client.
//
// The stack itself runs in the serve daemon (-pid), whose CPU time and RSS
// are added to this process's in the stats.
//
// With -null it measures the transport's ceiling instead: the tree is
// bench/peers/nullfs's (one null file, data), and each line on standard
// input, "read N DUR" or "write N DUR", opens data N times and reads or
// writes it in the same requests on every handle at once for DUR,
// then answers one JSON line {"bytes":B,"seconds":S}.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"sockfs/bench/peer"
)

func main() {
	dir := flag.String("dir", "", "the mounted /net tree (FUSE)")
	addr9p := flag.String("9p", "", "the daemon's 9P address (instead of -dir)")
	pid := flag.Int("pid", 0, "PID of the sockfs serve daemon")
	null := flag.Bool("null", false, "measure the null file data (bench/peers/nullfs) instead of serving the benchmark protocol")
	flag.Parse()
	var fsys opener = fuseFS{*dir}
	if *addr9p != "" {
		p9fs, err := dial9P(*addr9p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "files peer:", err)
			os.Exit(1)
		}
		fsys = p9fs
	}
	if *null {
		if err := nullLoop(fsys); err != nil {
			fmt.Fprintln(os.Stderr, "files peer:", err)
			os.Exit(1)
		}
		return
	}
	err := peer.Serve(peer.Config{
		Listen: func(port int) (net.Listener, error) { return announce(fsys, port) },
		Fill: func(st *peer.Stats) {
			cpu, rss := procUsage(*pid)
			st.CPUNanos += cpu
			st.RSS += rss
			st.HeapAlloc, st.HeapInuse, st.Mallocs = 0, 0, 0 // the daemon's heap is not visible here
		},
		BufSize: max(fsys.ioSize(), 256<<10),
	}, func() { fmt.Println("ready") })
	if err != nil {
		fmt.Fprintln(os.Stderr, "files peer:", err)
		os.Exit(1)
	}
}

// procUsage returns the CPU time (utime+stime) and RSS of pid from /proc.
func procUsage(pid int) (int64, uint64) {
	if pid == 0 {
		return 0, 0
	}
	var cpu int64
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				k, _ := strconv.ParseInt(f[12], 10, 64)
				cpu = (u + k) * int64(time.Second) / 100 // USER_HZ
			}
		}
	}
	var rss uint64
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid)); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			p, _ := strconv.ParseUint(f[1], 10, 64)
			rss = p * uint64(os.Getpagesize())
		}
	}
	return cpu, rss
}

// handle is an open file of the tree.
type handle interface {
	Read(p []byte) (int, error) // 0, io.EOF at the end
	Write(p []byte) (int, error)
	Close() error
}

// opener opens a file of the tree for reading and writing.
type opener interface {
	open(path ...string) (handle, error)
	// ioSize is the most one read or write moves.
	ioSize() int
}

// fuseFS is the tree mounted at a directory: raw blocking descriptors, so
// each read and write is one read(2) or write(2) as with dd.
type fuseFS struct{ dir string }

// fuseIO is sockfs's FUSE request size (max_write, and max_pages for
// reads): a read(2) or write(2) of 1 MiB is one request.
const fuseIO = 1 << 20

func (fuseFS) ioSize() int { return fuseIO }

// open retries on EINTR, as os.Open does: a blocked open of `listen` is
// interrupted (FUSE INTERRUPT, answered with EINTR, nothing consumed)
// whenever a signal reaches the thread, Go's own preemption signal
// included. Treating that as fatal once ended the peer mid-run, and its
// listeners' closes reset the calls queued on them.
func (f fuseFS) open(path ...string) (handle, error) {
	name := filepath.Join(append([]string{f.dir}, path...)...)
	fd, err := unix.Open(name, unix.O_RDWR|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(name, unix.O_RDWR|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(path...), err)
	}
	return fdHandle(fd), nil
}

type fdHandle int

func (h fdHandle) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(h), p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (h fdHandle) Write(p []byte) (int, error) {
	for {
		n, err := unix.Write(int(h), p)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

func (h fdHandle) Close() error { return unix.Close(int(h)) }

func readLine(h handle) (string, error) {
	buf := make([]byte, 64)
	n, err := h.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// fileListener is an announced conversation: Accept opens its listen file.
type fileListener struct {
	fs   opener
	ctl  handle
	conv string
	port int
	once sync.Once
}

func announce(fs opener, port int) (net.Listener, error) {
	ctl, err := fs.open("tcp", "clone")
	if err != nil {
		return nil, err
	}
	conv, err := readLine(ctl)
	if err == nil {
		_, err = ctl.Write([]byte("announce " + strconv.Itoa(port)))
	}
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("announce %d: %w", port, err)
	}
	return &fileListener{fs: fs, ctl: ctl, conv: conv, port: port}, nil
}

func (l *fileListener) Accept() (net.Conn, error) {
	lh, err := l.fs.open("tcp", l.conv, "listen")
	if err != nil {
		return nil, err
	}
	conv, err := readLine(lh)
	if err != nil {
		lh.Close()
		return nil, err
	}
	dh, err := l.fs.open("tcp", conv, "data")
	if err != nil {
		lh.Close()
		return nil, err
	}
	return &fileConn{ctl: lh, data: dh, conv: conv, io: l.fs.ioSize()}, nil
}

func (l *fileListener) Close() error {
	l.once.Do(func() { l.ctl.Close() })
	return nil
}

func (l *fileListener) Addr() net.Addr { return &net.TCPAddr{Port: l.port} }

// fileConn is an accepted conversation: its ctl (from listen) and data.
type fileConn struct {
	ctl, data handle
	conv      string
	io        int // the opener's ioSize
	once      sync.Once
}

// maxIO is the most one 9P read or write moves: 1020 KiB, in one message
// at msize 1 MiB (maxIO + 4 KiB), the msize sockfs's 9P server offers
// (fs/p9.DefaultMsize) and `sockfs import` asks for by default, so the 9P
// rows measure what the project's own client gets. hugelgupf/p9 cuts
// reads and writes into payloads of msize less its largest header,
// rounded down to 512 bytes: 1020 KiB moves in one Tread or Twrite.
// (Until session 13 this was 128 KiB at msize 132 KiB; docs/performance.md,
// "msize 1 MiB", compares the two.)
const maxIO = 1<<20 - 4<<10

func (c *fileConn) Read(p []byte) (int, error) {
	return c.data.Read(p[:min(len(p), c.io)])
}

func (c *fileConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := c.data.Write(p[done:min(len(p), done+c.io)])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (c *fileConn) Close() error {
	c.once.Do(func() {
		c.data.Close()
		c.ctl.Close()
	})
	return nil
}

func (c *fileConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fileConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fileConn) SetDeadline(time.Time) error      { return errNoDeadline }
func (c *fileConn) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (c *fileConn) SetWriteDeadline(time.Time) error { return errNoDeadline }

var errNoDeadline = errors.New("files peer: no deadlines")

// SetNoDelay turns Nagle off through the conversation's ctl, as the other
// peers do for their echo connections.
func (c *fileConn) SetNoDelay(on bool) error {
	cmd := "nodelay off"
	if on {
		cmd = "nodelay on"
	}
	_, err := c.ctl.Write([]byte(cmd))
	return err
}
