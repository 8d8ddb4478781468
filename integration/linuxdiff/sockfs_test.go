package linuxdiff

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sockfsSUT is `sockfs serve` on a TUN in its own namespace, driven through
// its FUSE mount; the kernel of that namespace is the peer at 198.18.0.1.
type sockfsSUT struct {
	ns    *netns
	mnt   string
	ipifc string // the TUN's ipifc/N directory
}

func (s *sockfsSUT) name() string { return "sockfs" }
func (s *sockfsSUT) peer() *netns { return s.ns }

// startSockfs runs `sockfs serve` in a new namespace with its tree mounted
// in a temporary directory (no 9P), with serveArgs added to its command line,
// and waits until the tree and the stack
// answer. Cleanup stops it with SIGTERM (SIGKILL after 10 s) and removes a
// mount left behind.
func startSockfs(t *testing.T, bin string, serveArgs ...string) *sockfsSUT {
	t.Helper()
	s := &sockfsSUT{ns: newNetns(t, "s"), mnt: t.TempDir()}
	t.Cleanup(func() {
		if mounted(s.mnt) {
			exec.Command("fusermount3", "-uz", s.mnt).Run()
		}
	})
	logf, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the daemon has its own descriptor
	log := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	cmd := s.ns.cmd(bin, append([]string{"serve", "--tun", "ldsockfs0", "--mount", s.mnt, "--9p", ""}, serveArgs...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("sockfs serve ignored SIGTERM\n%s", log())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(filepath.Join(s.mnt, "tcp", "clone")); err == nil {
			if err := s.ns.cmd("ping", "-c", "1", "-W", "1", sutAddr).Run(); err == nil {
				break
			}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("sockfs serve exited: %v\n%s", err, log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sockfs serve did not come up\n%s", log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 8 && s.ipifc == ""; i++ {
		dir := filepath.Join(s.mnt, "ipifc", strconv.Itoa(i))
		if b, err := readFile(filepath.Join(dir, "status")); err == nil && strings.HasPrefix(b, "device tun") {
			s.ipifc = dir
		}
	}
	if s.ipifc == "" {
		t.Fatal("no ipifc directory for the TUN device")
	}
	return s
}

// mounted reports whether dir is a mount point in /proc/self/mountinfo.
func mounted(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// File I/O on the mount goes through plain system calls: blocking FUSE
// calls must not tie up Go's netpoller, and O_NONBLOCK has to reach the
// daemon as is.

// unsignalled runs f, system calls on the mount, on a thread that blocks
// every signal. FUSE turns a signal that arrives while the daemon works on
// a request into an INTERRUPT, which sockfs answers with EINTR (as it
// should, for Ctrl-C); the runtime's own signals (SIGURG for preemption,
// SIGCHLD from the namespace commands) must not do that to the test.
func unsignalled(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		panic(err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	f()
}

func openFile(path string, flags int) (fd int, err error) {
	unsignalled(func() { fd, err = unix.Open(path, flags|unix.O_CLOEXEC, 0) })
	return fd, err
}

func sysRead(fd int, p []byte) (n int, err error) {
	unsignalled(func() { n, err = unix.Read(fd, p) })
	return n, err
}

func sysWrite(fd int, p []byte) (n int, err error) {
	unsignalled(func() { n, err = unix.Write(fd, p) })
	return n, err
}

func readFile(path string) (string, error) {
	fd, err := openFile(path, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return readAll(fd)
}

func readAll(fd int) (string, error) {
	var out []byte
	buf := make([]byte, 8192)
	for {
		n, err := sysRead(fd, buf)
		switch {
		case err != nil:
			return string(out), err
		case n == 0:
			return string(out), nil
		default:
			out = append(out, buf[:n]...)
		}
	}
}

func writeFile(path, text string) error {
	fd, err := openFile(path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = sysWrite(fd, []byte(text))
	return err
}

// conv is a conversation held open by its ctl descriptor.
type conv struct {
	dir  string // <mount>/<proto>/<n>
	ctl  int
	data int // O_NONBLOCK, opened on first use
}

// openConv makes a conversation of the protocol directory protoDir from a
// descriptor that is its ctl (from clone or listen).
func openConv(protoDir string, ctl int) (*conv, error) {
	n, err := readAll(ctl)
	if err != nil {
		unix.Close(ctl)
		return nil, err
	}
	return &conv{dir: filepath.Join(protoDir, strings.TrimSpace(n)), ctl: ctl, data: -1}, nil
}

func (s *sockfsSUT) clone(proto string) (*conv, error) {
	fd, err := openFile(filepath.Join(s.mnt, proto, "clone"), unix.O_RDWR)
	if err != nil {
		return nil, err
	}
	return openConv(filepath.Join(s.mnt, proto), fd)
}

// cmd writes a ctl request; a refusal carries the conversation's err text.
func (c *conv) cmd(req string) error {
	if _, err := sysWrite(c.ctl, []byte(req)); err != nil {
		why, _ := readFile(filepath.Join(c.dir, "err"))
		return fmt.Errorf("%s: %w (%s)", req, err, strings.TrimSpace(why))
	}
	return nil
}

func (c *conv) Close() error {
	if c.data >= 0 {
		unix.Close(c.data)
	}
	return unix.Close(c.ctl)
}

func (c *conv) dataFd() (int, error) {
	if c.data < 0 {
		fd, err := openFile(filepath.Join(c.dir, "data"), unix.O_RDWR|unix.O_NONBLOCK)
		if err != nil {
			return -1, err
		}
		c.data = fd
	}
	return c.data, nil
}

func (c *conv) mem() (skmem, error) {
	b, err := readFile(filepath.Join(c.dir, "mem"))
	if err != nil {
		return skmem{}, err
	}
	return parseSkmem(b)
}

// parseSkmem reads ss -m's skmem:(r..,rb..,t..,tb..,f..,w..,o..,bl..,d..).
func parseSkmem(s string) (skmem, error) {
	var m skmem
	var o int
	_, err := fmt.Sscanf(strings.TrimSpace(s), "skmem:(r%d,rb%d,t%d,tb%d,f%d,w%d,o%d,bl%d,d%d)",
		&m.r, &m.rb, &m.t, &m.tb, &m.f, &m.w, &o, &m.bl, &m.d)
	if err != nil {
		return m, fmt.Errorf("mem %q: %w", s, err)
	}
	return m, nil
}

// info reads mem and status (`State qin N qout N ... rcv_wnd N
// rcv_ssthresh N ...`).
func (c *conv) info() (tcpSample, error) {
	m, err := c.mem()
	if err != nil {
		return tcpSample{}, err
	}
	st, err := readFile(filepath.Join(c.dir, "status"))
	if err != nil {
		return tcpSample{}, err
	}
	f := strings.Fields(st)
	v := map[string]int{}
	for i := 1; i+1 < len(f); i += 2 {
		v[f[i]], _ = strconv.Atoi(f[i+1])
	}
	return tcpSample{skmem: m, qin: v["qin"], qout: v["qout"], rcvWnd: v["rcv_wnd"],
		rcvSsthresh: v["rcv_ssthresh"], cwnd: v["cwnd"], rcvRtt: v["rcv_rtt"], rcvSpace: v["rcv_space"]}, nil
}

func (c *conv) drain() (int, error) {
	fd, err := c.dataFd()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 65536)
	for n := 0; ; n++ {
		_, err := sysRead(fd, buf)
		if err == unix.EAGAIN {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (c *conv) write(p []byte) (int, error) {
	fd, err := c.dataFd()
	if err != nil {
		return 0, err
	}
	n, err := sysWrite(fd, p)
	if n < 0 {
		n = 0
	}
	if err == unix.EAGAIN {
		err = errWouldBlock
	}
	return n, err
}

func (c *conv) read(p []byte) (int, error) {
	fd, err := c.dataFd()
	if err != nil {
		return 0, err
	}
	return readResult(sysRead(fd, p))
}

// accept opens listen, which becomes the ctl of the next call; O_NONBLOCK
// (EAGAIN while no call is queued) keeps the wait bounded.
func (c *conv) accept(d time.Duration) (tcpSock, error) {
	path := filepath.Join(c.dir, "listen")
	for deadline := time.Now().Add(d); ; {
		fd, err := openFile(path, unix.O_RDONLY|unix.O_NONBLOCK)
		if err == nil {
			return openConv(filepath.Dir(c.dir), fd)
		}
		if err != unix.EAGAIN || time.Now().After(deadline) {
			return nil, fmt.Errorf("open listen: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// open makes a conversation of proto and sends it req.
func (s *sockfsSUT) open(proto, req string) (*conv, error) {
	c, err := s.clone(proto)
	if err == nil {
		if err = c.cmd(req); err != nil {
			c.Close()
		}
	}
	return c, err
}

func (s *sockfsSUT) udpOpen(port int) (udpSock, error) {
	return s.open("udp", fmt.Sprintf("announce %d", port))
}

// tcpListen announces with the backlog the kernel's listener gets (8).
func (s *sockfsSUT) tcpListen(port int) (tcpListener, error) {
	c, err := s.clone("tcp")
	if err != nil {
		return nil, err
	}
	for _, req := range []string{"backlog 8", fmt.Sprintf("announce %d", port)} {
		if err = c.cmd(req); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (s *sockfsSUT) tcpDial(port int) (tcpSock, error) {
	return s.open("tcp", fmt.Sprintf("connect %s!%d", peerAddr, port))
}

func (s *sockfsSUT) tcpRedial(first, second int) (tcpSock, error, error) {
	c, err := s.clone("tcp")
	if err != nil {
		return nil, err, err
	}
	err1 := c.cmd(fmt.Sprintf("connect %s!%d", peerAddr, first))
	if err2 := c.cmd(fmt.Sprintf("connect %s!%d", peerAddr, second)); err2 != nil {
		c.Close()
		return nil, err1, err2
	}
	return c, err1, nil
}

// setBuf writes v to a fresh conversation's rcvbuf or sndbuf (setsockopt)
// and reads it back (getsockopt).
func (s *sockfsSUT) setBuf(proto string, rcv bool, v int) (int, error) {
	c, err := s.clone(proto)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	file := filepath.Join(c.dir, "sndbuf")
	if rcv {
		file = filepath.Join(c.dir, "rcvbuf")
	}
	if err := writeFile(file, strconv.Itoa(v)+"\n"); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return 0, errno
		}
		return 0, err
	}
	b, err := readFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(b))
}

func (s *sockfsSUT) mib() (map[string]int64, error) {
	b, err := readFile(filepath.Join(s.mnt, "netstat"))
	return parseMIB(b), err
}

func (s *sockfsSUT) impairIn(d time.Duration) error {
	line := "off"
	if d > 0 {
		line = fmt.Sprintf("in delay %dus", d.Microseconds())
	}
	return writeFile(filepath.Join(s.ipifc, "impair"), line+"\n")
}

func (s *sockfsSUT) impairInLoss(loss float64) error {
	line := "in off"
	if loss > 0 {
		line = fmt.Sprintf("in loss %g%%", 100*loss)
	}
	return writeFile(filepath.Join(s.ipifc, "impair"), line+"\n")
}

func (s *sockfsSUT) impairOut(loss, reorder float64) error {
	line := "out off"
	if loss > 0 || reorder > 0 {
		line = fmt.Sprintf("out loss %g%% reorder %g%%", 100*loss, 100*reorder)
	}
	return writeFile(filepath.Join(s.ipifc, "impair"), line+"\n")
}

// sysctl reads sys/<path> (netstat holds snmp's groups as well) and writes val there unless it is empty. Linux
// separates vectors with tabs; so does the file.
func (s *sockfsSUT) sysctl(path, val string) (string, error) {
	p := filepath.Join(s.mnt, "sys", path)
	old, err := readFile(p)
	if err != nil || val == "" {
		return strings.TrimSpace(old), err
	}
	return strings.TrimSpace(old), writeFile(p, strings.Join(strings.Fields(val), "\t")+"\n")
}
