// Command tunraw measures the TUN device's own ceiling: a bare reader or
// writer of /dev/net/tun (IFF_TUN|IFF_NO_PI, one packet per read(2) or
// write(2), no stack behind it). It creates the device in the current
// network namespace, configures the kernel side with ip(8), prints "ready",
// waits for a line on stdin, runs for -dur and prints one JSON line
// {"packets":N,"seconds":S}.
//
//	-mode rx: read(2) and discard whatever the kernel routes into the TUN
//	          (the harness's UDP senders in the namespace feed it).
//	-mode tx: write(2) one prebuilt MTU-sized UDP datagram from -src to
//	          -dst:-port over and over (the harness's socket absorbs them).
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	name := flag.String("tun", "sfsraw0", "TUN device to create")
	mtu := flag.Int("mtu", 1500, "MTU")
	mode := flag.String("mode", "rx", "rx or tx")
	host := flag.String("host", "198.18.0.1/24", "kernel side address")
	src := flag.String("src", "198.18.0.2", "source address of transmitted packets")
	port := flag.Int("port", 9999, "UDP destination port of transmitted packets")
	dur := flag.Duration("dur", time.Second, "measurement time")
	flag.Parse()
	if err := run(*name, *mtu, *mode, *host, netip.MustParseAddr(*src), *port, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "tunraw:", err)
		os.Exit(1)
	}
}

func openTun(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var ifr [unix.IFNAMSIZ + 64]byte
	copy(ifr[:], name)
	binary.NativeEndian.PutUint16(ifr[unix.IFNAMSIZ:], unix.IFF_TUN|unix.IFF_NO_PI)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF: %w", e)
	}
	return fd, nil
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %v: %v: %s", args, err, out)
	}
	return nil
}

func run(name string, mtu int, mode, host string, src netip.Addr, port int, dur time.Duration) error {
	runtime.LockOSThread()
	fd, err := openTun(name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := ip("link", "set", "dev", name, "mtu", strconv.Itoa(mtu), "up"); err != nil {
		return err
	}
	if err := ip("addr", "add", host, "dev", name); err != nil {
		return err
	}
	dst := netip.MustParsePrefix(host).Addr()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	var n uint64
	start := time.Now()
	end := start.Add(dur)
	switch mode {
	case "rx":
		n, err = rx(fd, end)
	case "tx":
		n, err = tx(fd, end, udpPacket(mtu, src, dst, port))
	default:
		err = errors.New("unknown -mode " + mode)
	}
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"packets": n, "seconds": secs, "kernel_tx_dropped": txDropped(name)})
}

// rx reads packets until end. The descriptor is non-blocking so that an
// idle device cannot hold the loop past end; poll(2) waits when it is empty.
func rx(fd int, end time.Time) (uint64, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return 0, err
	}
	buf := make([]byte, 65536)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	var n uint64
	for i := 0; ; i++ {
		if i&63 == 0 && time.Now().After(end) {
			return n, nil
		}
		_, err := unix.Read(fd, buf)
		switch err {
		case nil:
			n++
		case unix.EAGAIN:
			if time.Now().After(end) {
				return n, nil
			}
			unix.Poll(pfd, 50)
		case unix.EINTR:
		default:
			return n, err
		}
	}
}

// tx writes pkt until end; every write is one packet into the kernel.
func tx(fd int, end time.Time, pkt []byte) (uint64, error) {
	var n uint64
	for i := 0; ; i++ {
		if i&63 == 0 && time.Now().After(end) {
			return n, nil
		}
		if _, err := unix.Write(fd, pkt); err != nil && err != unix.EINTR {
			return n, err
		}
		n++
	}
}

// udpPacket builds an IPv4/UDP datagram of size bytes with a valid header
// checksum and UDP checksum 0 (none, allowed over IPv4).
func udpPacket(size int, src, dst netip.Addr, port int) []byte {
	p := make([]byte, size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	p[6] = 0x40 // DF
	p[8] = 64
	p[9] = unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], 40000)
	binary.BigEndian.PutUint16(p[22:], uint16(port))
	binary.BigEndian.PutUint16(p[24:], uint16(size-20))
	return p
}

// txDropped is the kernel's count of packets it could not queue to the TUN
// (the reader was too slow), from /proc/net/dev of this namespace.
func txDropped(name string) uint64 {
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		dev, rest, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(dev) != name {
			continue
		}
		f := strings.Fields(rest)
		if len(f) >= 12 {
			v, _ := strconv.ParseUint(f[11], 10, 64)
			return v
		}
	}
	return 0
}
