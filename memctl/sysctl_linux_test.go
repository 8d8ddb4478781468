package memctl

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// kernelSysctl is a per-namespace /proc/sys/net of the running kernel,
// reached from one OS thread that entered a network namespace the test
// created, so nothing outside that namespace changes.
type kernelSysctl struct {
	req  chan func()
	done chan struct{}
}

func newKernelSysctl(t *testing.T) *kernelSysctl {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8)")
	}
	name := fmt.Sprintf("sockfs-sysctl-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	k := &kernelSysctl{req: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		ready <- err
		if err != nil {
			return
		}
		for {
			select {
			case f := <-k.req:
				f()
			case <-k.done:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		t.Fatalf("setns: %v", err)
	}
	t.Cleanup(func() {
		close(k.done)
		exec.Command("ip", "netns", "del", name).Run()
	})
	return k
}

// do runs f in the namespace's thread.
func (k *kernelSysctl) do(f func()) {
	c := make(chan struct{})
	k.req <- func() { f(); close(c) }
	<-c
}

func (k *kernelSysctl) read(name string) (string, bool) {
	var b []byte
	var err error
	k.do(func() { b, err = os.ReadFile("/proc/sys/net/" + name) })
	return string(b), err == nil
}

// write is one write(2) at offset 0: the bytes consumed or the errno.
func (k *kernelSysctl) write(name, text string) (int, syscall.Errno) {
	var n int
	var errno syscall.Errno
	k.do(func() {
		fd, err := unix.Open("/proc/sys/net/"+name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errno = err.(syscall.Errno)
			return
		}
		defer unix.Close(fd)
		n, err = unix.Write(fd, []byte(text))
		if err != nil {
			errno = err.(syscall.Errno)
		}
	})
	return n, errno
}

// sysctlInputs are written to every numeric sysctl: the accepted values and
// the refusals must be the kernel's.
var sysctlInputs = []string{
	"", " ", "\n", "\t\n", "1", "1\n", "7\n\n", " 7", "\n7", "+1", "-0", "-1", "0", "2", "3", "4", "5",
	"8", "47", "48", "127", "128", "255", "256", "300", "301", "1000", "1001", "1023", "1024",
	"4095", "4096", "8192", "65535", "65536", "86400", "86401", "3145727", "3145728", "4194304",
	"2147483", "2147484", "8589934", "8589935", "2147483647", "2147483648", "-2147483648",
	"-2147483649", "4294967295", "4294967296", "9223372036854775808", "18446744073709551615",
	"18446744073709551616", "99999999999999999999", "000000000000000000001", "0x10", "0X2000",
	"010", "08", "0x", "1x", "1 x", "1,2", "1 2", "1\t2\n3\n", "1 -2 3", "5\x00", "5\x00junk",
	"1\r2", "8192 65536", "8192 65536 1048576", "8192 65536 1048576 5", "8192 65536 1048576 x",
	"8192 x", "65536 16384 8192", "2000 3000", "2000 2000", "3000 2000", "1023 2000", "1024 65535",
	"2000 65536", "4096 4096 4095",
}

// congestionInputs are written to tcp_congestion_control (cubic is left
// out: a child namespace may only choose what the host allows).
var congestionInputs = []string{"", "reno", "reno\n", "reno\nfoo", "foo", " reno", "reno ", "\n",
	"reno cubic", "Reno", "renoxxxxxxxxxxxxxxxxxx", "\x00reno"}

// TestSysctlWritesAsLinux writes the same inputs to each sysctl that Linux
// has per network namespace, in a namespace of the running kernel and in
// sockfs, from the same starting value, and compares what each accepts,
// how many bytes the write consumed and what it reads back afterwards.
// The one deliberate difference: a refused vector write changes nothing in
// sockfs, where Linux keeps the values before the bad one.
func TestSysctlWritesAsLinux(t *testing.T) {
	k := newKernelSysctl(t)
	n := newTestNet(t, Options{})
	compared, partial := 0, 0
	for _, name := range n.Sysctls.Names() {
		s, _ := n.Sysctls.Lookup(name)
		if strings.HasPrefix(name, "module/") {
			continue
		}
		orig, ok := k.read(name)
		if !ok {
			continue // global in Linux: not visible in a child namespace
		}
		if s.kind != kindString && s.Read() != orig {
			t.Errorf("%s: default %q, Linux %q", name, s.Read(), orig)
		}
		if _, e := k.write(name, orig); e == syscall.EACCES && s.kind != kindString {
			continue // global in Linux: read-only in a child namespace
		}
		inputs := sysctlInputs
		if s.kind == kindString {
			if s.ReadOnly() {
				if _, e := k.write(name, "reno"); e != syscall.EACCES && e != syscall.EPERM {
					t.Errorf("%s: kernel accepted a write", name)
				}
				if _, err := s.WriteN("reno"); !errors.Is(err, syscall.EACCES) {
					t.Errorf("%s: sockfs accepted a write: %v", name, err)
				}
				continue
			}
			inputs = congestionInputs
			if _, e := k.write(name, "reno"); e == syscall.EACCES {
				continue // global in Linux: read-only in a child namespace
			} else if e != 0 {
				t.Fatalf("%s: kernel refused reno: %v", name, e)
			}
			orig = "reno\n"
		}
		for _, in := range inputs {
			if err := s.Write(orig); err != nil {
				t.Fatalf("%s: sockfs refused the kernel's value %q: %v", name, orig, err)
			}
			kn, ke := k.write(name, in)
			kafter, _ := k.read(name)
			if kafter != orig {
				k.write(name, orig)
			}
			sn, err := s.WriteN(in)
			var se syscall.Errno
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("%s: error %v carries no errno", name, err)
			}
			safter := s.Read()
			compared++
			switch {
			case se != ke:
				t.Errorf("%s <- %q: sockfs %v (%v), Linux %v", name, in, se, err, ke)
			case ke == 0 && (sn != kn || safter != kafter):
				t.Errorf("%s <- %q: sockfs consumed %d and reads %q, Linux %d and %q", name, in, sn, safter, kn, kafter)
			case ke != 0 && safter != orig:
				t.Errorf("%s <- %q: refused, but sockfs changed to %q", name, in, safter)
			case ke != 0 && kafter != orig:
				partial++ // Linux kept the values before the bad one (see WriteN)
			}
		}
		if err := s.Write(orig); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d writes compared, %d of them partly applied by Linux and refused whole by sockfs", compared, partial)
	if compared < 2000 {
		t.Errorf("only %d writes compared", compared)
	}
}

// fdOp is one step on an open sysctl file: a seek to pos (if seek), then
// a write of text.
type fdOp struct {
	seek bool
	pos  int64
	text string
}

// writesOnOneFd runs ops on one descriptor of the kernel's file and
// returns each write's errno and the value read afterwards.
func (k *kernelSysctl) writesOnOneFd(name string, ops []fdOp) ([]syscall.Errno, string) {
	var errs []syscall.Errno
	k.do(func() {
		fd, err := unix.Open("/proc/sys/net/"+name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, err.(syscall.Errno))
			return
		}
		defer unix.Close(fd)
		for _, op := range ops {
			if op.seek {
				unix.Seek(fd, op.pos, 0)
			}
			var e syscall.Errno
			if _, err := unix.Write(fd, []byte(op.text)); err != nil {
				e = err.(syscall.Errno)
			}
			errs = append(errs, e)
		}
	})
	after, _ := k.read(name)
	return errs, after
}

// preadAt is a read of the kernel's file at off.
func (k *kernelSysctl) preadAt(name string, off int64) string {
	var out string
	k.do(func() {
		fd, err := unix.Open("/proc/sys/net/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		b := make([]byte, 4096)
		n, _ := unix.Pread(fd, b, off)
		out = string(b[:max(n, 0)])
	})
	return out
}

// TestSysctlPositionsAsLinux: writes after the first on one descriptor,
// writes after a seek and reads at a non-zero offset do what they do in
// the running kernel's per-namespace /proc/sys/net, sysctl by sysctl:
// sockfs's WriteAt is chained through the positions it returns, as the
// files chain a descriptor's writes. sockfs ignored every write but at
// offset 0 (a second `echo` on a descriptor of an unsigned sysctl is
// applied by Linux), wrote strings only from the start, and read numbers
// at any offset.
func TestSysctlPositionsAsLinux(t *testing.T) {
	k := newKernelSysctl(t)
	n := newTestNet(t, Options{})
	compared := 0
	for _, name := range n.Sysctls.Names() {
		s, _ := n.Sysctls.Lookup(name)
		if strings.HasPrefix(name, "module/") || s.ReadOnly() {
			continue
		}
		orig, ok := k.read(name)
		if !ok {
			continue
		}
		seqs := [][]fdOp{
			{{text: "5\n"}, {text: "7\n"}},
			{{text: "5\n"}, {seek: true, pos: 0, text: "7\n"}},
			{{seek: true, pos: 1, text: "7\n"}},
			{{text: "5"}, {text: "7"}},
		}
		if s.kind == kindString {
			if _, e := k.write(name, "reno"); e != 0 {
				continue // read-only in a child namespace
			}
			orig = "reno\n"
			seqs = [][]fdOp{
				{{seek: true, pos: 2, text: "xx\n"}},
				{{seek: true, pos: 2, text: "no\n"}},
				{{seek: true, pos: 10, text: "xx\n"}},
				{{text: "reno\n"}, {text: "xx\n"}},
			}
		} else if _, e := k.write(name, orig); e != 0 {
			continue // read-only in a child namespace
		}
		for _, seq := range seqs {
			if err := s.Write(orig); err != nil {
				t.Fatal(err)
			}
			k.write(name, orig)
			kerrs, kafter := k.writesOnOneFd(name, seq)
			var serrs []syscall.Errno
			var pos int64
			for _, op := range seq {
				if op.seek {
					pos = op.pos
				}
				_, next, err := s.WriteAt(op.text, pos)
				var e syscall.Errno
				if err != nil && !errors.As(err, &e) {
					t.Fatalf("%s: error %v carries no errno", name, err)
				}
				serrs = append(serrs, e)
				pos = next
			}
			compared++
			if fmt.Sprint(serrs) != fmt.Sprint(kerrs) || s.Read() != kafter {
				t.Errorf("%s, writes %+v on one descriptor: sockfs %v and reads %q, Linux %v and %q", name, seq, serrs, s.Read(), kerrs, kafter)
			}
		}
		k.write(name, orig)
		if err := s.Write(orig); err != nil {
			t.Fatal(err)
		}
		want := k.preadAt(name, 1)
		got := ""
		if s.ReadsAtOffsets() {
			got = s.Read()[1:]
		}
		if got != want {
			t.Errorf("%s read at offset 1: sockfs %q, Linux %q", name, got, want)
		}
	}
	if compared < 200 {
		t.Errorf("only %d sequences compared", compared)
	}
}
