package linuxdiff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel as the system under test: sockets in namespace sut (198.18.0.2
// on its TUN), which the relay joins to namespace peer (198.18.0.1), as
// sockfs's TUN joins it to the kernel in its own namespace.
type kernelSUT struct {
	ns, peerNs *netns
	relay      *relay
}

func (k *kernelSUT) name() string { return "kernel" }
func (k *kernelSUT) peer() *netns { return k.peerNs }

// socket makes a non-blocking socket in the SUT's namespace; TCP ones use
// cubic, which sockfs runs (a namespace other than the host's cannot
// change the default, bbr here).
func (k *kernelSUT) socket(typ int) (*kernelSock, error) {
	var fd int
	err := k.ns.do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, "cubic"); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("TCP_CONGESTION cubic: %w", err)
		}
	}
	return &kernelSock{fd: fd}, nil
}

// addrPort is addr:port (addr is peerAddr or sutAddr).
func addrPort(addr string, port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))
}

func sockaddr(addr string, port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: netip.MustParseAddr(addr).As4()}
}

func (k *kernelSUT) udpOpen(port int) (udpSock, error) {
	s, err := k.socket(unix.SOCK_DGRAM)
	if err == nil {
		if err = unix.Bind(s.fd, sockaddr(sutAddr, port)); err != nil {
			s.Close()
		}
	}
	return s, err
}

func (k *kernelSUT) tcpListen(port int) (tcpListener, error) {
	s, err := k.socket(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	if err = unix.Bind(s.fd, sockaddr(sutAddr, port)); err == nil {
		err = unix.Listen(s.fd, 8)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (k *kernelSUT) tcpDial(port int) (tcpSock, error) {
	s, err := k.socket(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	err = unix.Connect(s.fd, sockaddr(peerAddr, port))
	if errors.Is(err, unix.EINPROGRESS) {
		err = s.wait(unix.POLLOUT, 10*time.Second)
		if err == nil {
			err = errnoOr(unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR))
		}
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return s, nil
}

func (k *kernelSUT) tcpRedial(first, second int) (tcpSock, error, error) {
	s, err := k.socket(unix.SOCK_STREAM)
	if err != nil {
		return nil, err, err
	}
	if err := unix.SetNonblock(s.fd, false); err != nil {
		s.Close()
		return nil, err, err
	}
	err1 := unix.Connect(s.fd, sockaddr(peerAddr, first))
	err2 := unix.Connect(s.fd, sockaddr(peerAddr, second))
	if err2 != nil {
		s.Close()
		return nil, err1, err2
	}
	return s, err1, unix.SetNonblock(s.fd, true)
}

func errnoOr(v int, err error) error {
	if err == nil && v != 0 {
		err = syscall.Errno(v)
	}
	return err
}

// setBuf is setsockopt(SO_RCVBUF or SO_SNDBUF, v) then getsockopt on a
// fresh socket of proto ("tcp" or "udp").
func (k *kernelSUT) setBuf(proto string, rcv bool, v int) (int, error) {
	typ := unix.SOCK_DGRAM
	if proto == "tcp" {
		typ = unix.SOCK_STREAM
	}
	s, err := k.socket(typ)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	opt := unix.SO_SNDBUF
	if rcv {
		opt = unix.SO_RCVBUF
	}
	if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, opt, v); err != nil {
		return 0, err
	}
	return unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, opt)
}

func (k *kernelSUT) mib() (map[string]int64, error) {
	var all strings.Builder
	for _, f := range []string{"snmp", "netstat"} {
		s, err := k.ns.readProc(f)
		if err != nil {
			return nil, err
		}
		all.WriteString(s)
	}
	return parseMIB(all.String()), nil
}

func (k *kernelSUT) impairIn(d time.Duration) error {
	k.relay.delay.Store(int64(d))
	return nil
}

func (k *kernelSUT) impairInLoss(loss float64) error {
	if loss == 0 {
		k.relay.in.Store(nil)
	} else {
		k.relay.in.Store(&lossReorder{loss: loss, rnd: rand.New(rand.NewPCG(17, 1))})
	}
	return nil
}

func (k *kernelSUT) impairOut(loss, reorder float64) error {
	if loss == 0 && reorder == 0 {
		k.relay.out.Store(nil)
	} else {
		k.relay.out.Store(&lossReorder{loss: loss, reorder: reorder, rnd: rand.New(rand.NewPCG(16, 1))})
	}
	return nil
}

func (k *kernelSUT) sysctl(path, val string) (string, error) { return k.ns.sysctl(path, val) }

// parseMIB reads /proc/net/snmp and /proc/net/netstat's format (a line of
// names, then a line of values, per group) into "Group:Name" -> value.
func parseMIB(s string) map[string]int64 {
	m := map[string]int64{}
	lines := strings.Split(s, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) < 2 || len(names) != len(vals) || names[0] != vals[0] {
			continue
		}
		if _, err := strconv.ParseInt(vals[1], 10, 64); err != nil {
			continue
		}
		for j := 1; j < len(names); j++ {
			v, _ := strconv.ParseInt(vals[j], 10, 64)
			m[names[0]+names[j]] = v
		}
		i++
	}
	return m
}

// kernelSock is a kernel socket of the SUT, non-blocking.
type kernelSock struct{ fd int }

func (s *kernelSock) Close() error { return unix.Close(s.fd) }

// wait polls for ev for at most d.
func (s *kernelSock) wait(ev int16, d time.Duration) error {
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: ev}}
	for deadline := time.Now().Add(d); ; {
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.ETIMEDOUT
		}
		return nil
	}
}

func (s *kernelSock) accept(d time.Duration) (tcpSock, error) {
	if err := s.wait(unix.POLLIN, d); err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	fd, _, err := unix.Accept4(s.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &kernelSock{fd: fd}, nil
}

// mem is getsockopt(SO_MEMINFO): the u32 array sk_get_meminfo fills, which
// is what ss -m prints.
func (s *kernelSock) mem() (skmem, error) {
	var m [9]uint32 // SK_MEMINFO_VARS
	l := uint32(unsafe.Sizeof(m))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&m[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return skmem{}, fmt.Errorf("SO_MEMINFO: %w", e)
	}
	return skmem{r: int(m[0]), rb: int(m[1]), t: int(m[2]), tb: int(m[3]), f: int(m[4]),
		w: int(m[5]), bl: int(m[7]), d: int(m[8])}, nil
}

func (s *kernelSock) info() (tcpSample, error) {
	m, err := s.mem()
	if err != nil {
		return tcpSample{}, err
	}
	ti, err := unix.GetsockoptTCPInfo(s.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return tcpSample{}, err
	}
	qin, err := unix.IoctlGetInt(s.fd, unix.SIOCINQ)
	if err != nil {
		return tcpSample{}, err
	}
	qout, err := unix.IoctlGetInt(s.fd, unix.SIOCOUTQ)
	if err != nil {
		return tcpSample{}, err
	}
	return tcpSample{skmem: m, qin: qin, qout: qout, rcvWnd: int(ti.Rcv_wnd),
		rcvSsthresh: int(ti.Rcv_ssthresh), cwnd: int(ti.Snd_cwnd),
		rcvRtt: int(ti.Rcv_rtt), rcvSpace: int(ti.Rcv_space)}, nil
}

// drain reads every queued datagram and returns how many there were.
func (s *kernelSock) drain() (int, error) {
	buf := make([]byte, 65536)
	for n := 0; ; n++ {
		_, _, err := unix.Recvfrom(s.fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (s *kernelSock) write(p []byte) (int, error) {
	n, err := unix.Write(s.fd, p)
	if n < 0 {
		n = 0
	}
	if err == unix.EAGAIN {
		err = errWouldBlock
	}
	return n, err
}

func (s *kernelSock) read(p []byte) (int, error) { return readResult(unix.Read(s.fd, p)) }

// readResult maps a non-blocking read(2)'s result to tcpSock.read's.
func readResult(n int, err error) (int, error) {
	switch {
	case err == unix.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

var errWouldBlock = errors.New("would block")

// The kernel peer at 198.18.0.1, in the namespace of the TUN's kernel side
// (the relay's other end, or sockfs's own namespace).

// peerDial connects from ns to the SUT's port, with cubic.
func peerDial(ns *netns, port int) (*net.TCPConn, error) {
	var c net.Conn
	err := ns.do(func() (err error) {
		d := net.Dialer{Timeout: 10 * time.Second, Control: cubic}
		c, err = d.Dial("tcp4", addrPort(sutAddr, port).String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// peerListen listens in ns on 198.18.0.1:port, with cubic.
func peerListen(ns *netns, port int) (*net.TCPListener, error) {
	var l net.Listener
	err := ns.do(func() (err error) {
		lc := net.ListenConfig{Control: cubic}
		l, err = lc.Listen(context.Background(), "tcp4", addrPort(peerAddr, port).String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return l.(*net.TCPListener), nil
}

func cubic(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, "cubic")
	})
	if err == nil {
		err = serr
	}
	return err
}

// peerUDP is a UDP socket in ns aimed at the SUT's port.
func peerUDP(ns *netns, port int) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := ns.do(func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addrPort(sutAddr, port)))
		return err
	})
	return c, err
}
