package linuxdiff

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a network namespace the test made (`ip netns add`); deleted at
// cleanup, which also removes every device left in it.
type netns struct{ name string }

var nsSeq atomic.Int32

func newNetns(t testing.TB, role string) *netns {
	t.Helper()
	ns := &netns{name: fmt.Sprintf("sockfs-ld-%d-%s%d", os.Getpid(), role, nsSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() })
	ns.mustRun(t, "ip", "link", "set", "lo", "up")
	// No IPv6 on the TUNs: nothing but the scenarios' own packets crosses
	// them (a kernel built without IPv6 has nothing to turn off).
	for _, p := range []string{"ipv6/conf/all/disable_ipv6", "ipv6/conf/default/disable_ipv6"} {
		ns.sysctl(p, "1")
	}
	return ns
}

// cmd is a command run inside the namespace. nsenter (unlike `ip netns
// exec`) keeps the mount namespace, so a FUSE mount made inside is visible
// to the test.
func (ns *netns) cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns.name, "--", name}, args...)...)
}

func (ns *netns) mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.cmd(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), ns.name, err, out)
	}
	return string(out)
}

// do runs f on an OS thread that has entered the namespace, so the sockets
// and TUN devices f creates belong to it (they stay there when used from
// other threads afterwards). The thread goes back to its own namespace;
// if it cannot, it is left locked, and the runtime ends it with the
// goroutine.
func (ns *netns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(target, unix.CLONE_NEWNET)
		unix.Close(target)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- f()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// readProc reads a /proc/net file (e.g. "netstat") of the namespace.
func (ns *netns) readProc(name string) (string, error) {
	var b []byte
	err := ns.do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return string(b), err
}

// sysctl reads /proc/sys/net/<path> of the namespace and, if val is not
// empty, writes val there; it returns the previous value.
func (ns *netns) sysctl(path, val string) (string, error) {
	var old []byte
	err := ns.do(func() (err error) {
		p := "/proc/sys/net/" + path
		if old, err = os.ReadFile(p); err != nil || val == "" {
			return err
		}
		return os.WriteFile(p, []byte(val), 0)
	})
	return strings.TrimSpace(string(old)), err
}

// vnetHdrLen is sizeof(struct virtio_net_hdr), the prefix of every packet
// read from or written to a TUN opened with IFF_VNET_HDR.
const vnetHdrLen = 10

// openTun creates the TUN device name in ns as sockfs's tun package does
// (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, TUNSETOFFLOAD TUN_F_CSUM|TUN_F_TSO4,
// so the kernel hands over TSO super-packets with partial checksums and
// takes them back the same way), gives the kernel's side addr and brings
// it up. Closing the file removes the device.
func openTun(t testing.TB, ns *netns, name, addr string) *os.File {
	t.Helper()
	var fd int
	err := ns.do(func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err == nil {
			err = unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen)
		}
		if err == nil {
			err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4)
		}
		if err != nil {
			unix.Close(fd)
		}
		return err
	})
	if err != nil {
		t.Fatalf("tun %s in %s: %v", name, ns.name, err)
	}
	// Non-blocking, so the netpoller waits for it and Close ends a Read.
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	ns.mustRun(t, "ip", "addr", "add", addr, "dev", name)
	ns.mustRun(t, "ip", "link", "set", name, "mtu", "1500", "up")
	return f
}

// relay joins two TUN devices: what the kernel of one namespace sends
// arrives at the other's, virtio_net_hdr included, so super-packets cross
// whole, as they reach sockfs from its TUN. Packets from a to b can be
// delayed (the kernel-side stand-in for sockfs's `in delay`); the delay
// line holds at most 1000 packets (netem's default limit), then the
// reader waits and the sending kernel's TUN queue drops.
type relay struct {
	a, b  *os.File
	delay atomic.Int64 // ns, a to b
	wg    sync.WaitGroup
	out   atomic.Pointer[lossReorder] // b to a: what the system under test sends
	in    atomic.Pointer[lossReorder] // a to b: losses only, before the delay line
}

type delayed struct {
	due time.Time
	p   []byte
}

func newRelay(t testing.TB, a, b *os.File) *relay {
	r := &relay{a: a, b: b}
	line := make(chan delayed, 1000)
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		defer close(line)
		r.copy(a, func(p []byte) {
			if lr := r.in.Load(); lr != nil && lr.pick() == lrLose {
				return
			}
			line <- delayed{time.Now().Add(time.Duration(r.delay.Load())), append([]byte(nil), p...)}
		})
	}()
	go func() {
		defer r.wg.Done()
		for d := range line {
			if w := time.Until(d.due); w > 0 {
				time.Sleep(w)
			}
			b.Write(d.p)
		}
	}()
	go func() {
		defer r.wg.Done()
		var held []byte
		r.copy(b, func(p []byte) {
			lr := r.out.Load()
			if lr == nil {
				a.Write(p)
				return
			}
			switch lr.pick() {
			case lrLose:
			case lrHold: // sent behind the next packet, as sockfs's reorder does with no delay
				if held == nil {
					held = append([]byte(nil), p...)
					return
				}
				a.Write(p)
			default:
				a.Write(p)
			}
			if held != nil {
				a.Write(held)
				held = nil
			}
		})
	}()
	t.Cleanup(func() { a.Close(); b.Close(); r.wg.Wait() })
	return r
}

// copy reads packets from f until it is closed and hands each to out.
func (r *relay) copy(f *os.File, out func([]byte)) {
	buf := make([]byte, vnetHdrLen+65535)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		if n > vnetHdrLen {
			out(buf[:n])
		}
	}
}

// lossReorder is the relay's impairment of what the system under test
// sends: each packet lost with probability loss, else held back behind the
// next one with probability reorder, from a seeded source (one goroutine
// draws).
type lossReorder struct {
	loss, reorder float64
	rnd           *rand.Rand
}

const (
	lrPass = iota
	lrLose
	lrHold
)

func (l *lossReorder) pick() int {
	switch x := l.rnd.Float64(); {
	case x < l.loss:
		return lrLose
	case x < l.loss+l.reorder:
		return lrHold
	}
	return lrPass
}
