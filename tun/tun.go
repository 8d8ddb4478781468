// Package tun puts the stack on a Linux TUN device: a link.Device whose
// packets are IPv4 datagrams exchanged with the kernel through /dev/net/tun
// (IFF_TUN|IFF_NO_PI, opened with github.com/songgao/water).
//
// New creates the device in the network namespace of the calling OS thread
// and configures the kernel's side through rtnetlink: MTU, IFF_UP and the
// host's address (the kernel adds the prefix route). Removing the device is
// closing it: a non-persistent TUN disappears with its file descriptor.
//
// Receive: one reader goroutine per device drains up to a batch of packets
// per wake-up of Go's netpoller and hands them to the Receiver together.
// Each packet is read into the reader's 64 KiB scratch buffer and copied
// into an skb of its own size class, so truesize is honest (a 60-byte packet
// is charged 832 bytes, not 64 KiB) and steady state allocates nothing.
//
// Transmit: one writev(2) per packet, straight from the skb's head and page
// fragments (a TUN write is one packet), from any number of goroutines.
//
// Offloads: water always sets IFF_NO_PI and cannot set IFF_VNET_HDR, so a
// read or write carries exactly one packet of at most the MTU. The
// link.Device interface is batch-shaped already; a later move to opening
// /dev/net/tun directly with IFF_VNET_HDR and TUNSETOFFLOAD (TSO/GRO
// super-packets described by skb.Shared's GSO fields, partial checksums
// completed in userspace) changes this package only.
package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"

	"sockfs/netstack/link"
)

// Errors New returns for the three usual reasons a device cannot be made;
// tell them apart with errors.Is (the errno, when there is one, matches too).
var (
	ErrNameInUse    = errors.New("tun: interface name in use")
	ErrNoTun        = errors.New("tun: /dev/net/tun is missing")
	ErrNotPermitted = errors.New("tun: not permitted (needs root or CAP_NET_ADMIN)")
)

// devError is an error with its own message that matches both a sentinel
// and, if set, the underlying cause.
type devError struct {
	msg   string
	kind  error
	cause error
}

func (e *devError) Error() string { return e.msg }
func (e *devError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// maxPacket bounds what one read can return: an IPv4 datagram.
const maxPacket = 65535

// defaultRxBatch is the most packets handed to NetifRx in one call.
const defaultRxBatch = 64

// Device is a TUN device as a link.Device.
type Device struct {
	cfg Config

	// ifce is kept reachable for the device's lifetime: the *os.File inside
	// it has a finalizer that would close the descriptor (and so remove the
	// interface) once nothing refers to it.
	ifce *water.Interface
	file *os.File        // ifce's file
	raw  syscall.RawConn // file's, for reads and writes through the netpoller

	stats   link.Stats
	stopped atomic.Bool
	rxBatch int // most packets per NetifRx; benchmarks lower it

	mu     sync.Mutex // serialises Open and Stop
	opened bool
	done   chan struct{} // closed when the reader has returned
}

// New creates the TUN device cfg describes, in the network namespace of the
// calling OS thread (a caller that switched namespaces with setns must keep
// its goroutine locked to that thread), and configures the kernel's side:
// MTU, IFF_UP and HostAddr. The device starts stopped: call Open.
//
// Errors wrap ErrNoTun (no /dev/net/tun), ErrNotPermitted (no CAP_NET_ADMIN;
// also EPERM) or ErrNameInUse (an interface of that name exists, whatever
// its type: TUNSETIFF would otherwise attach to a persistent TUN of that
// name or fail with EBUSY or EINVAL). Invalid configurations wrap EINVAL.
func New(cfg Config) (*Device, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return nil, &devError{"tun: /dev/net/tun is missing (load the tun module or create the node)", ErrNoTun, err}
	}
	if !hasNetAdmin() {
		return nil, &devError{fmt.Sprintf("tun: create %q: operation not permitted (needs root or CAP_NET_ADMIN)", cfg.Name), ErrNotPermitted, unix.EPERM}
	}
	nl, err := dialRtnl()
	if err != nil {
		return nil, fmt.Errorf("tun: %w", err)
	}
	defer nl.Close()
	// The check comes first because water leaks its descriptor when
	// TUNSETIFF fails; EBUSY below covers the race with another creator.
	switch _, err := nl.linkByName(cfg.Name); {
	case err == nil:
		return nil, nameInUse(cfg.Name, nil)
	case !errors.Is(err, unix.ENODEV):
		return nil, fmt.Errorf("tun: look up %q: %w", cfg.Name, err)
	}

	// water opens /dev/net/tun without O_CLOEXEC: hold ForkLock (as the
	// syscall package does for such opens) until close-on-exec is set, so
	// that no child process inherits the descriptor and keeps the
	// interface alive after Stop.
	syscall.ForkLock.RLock()
	ifce, err := water.New(water.Config{
		DeviceType:             water.TUN,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: cfg.Name},
	})
	var file *os.File
	var raw syscall.RawConn
	if err == nil {
		file, _ = ifce.ReadWriteCloser.(*os.File)
		if file == nil {
			err = fmt.Errorf("water returned a %T, not an *os.File", ifce.ReadWriteCloser)
		} else if raw, err = file.SyscallConn(); err == nil {
			err = raw.Control(func(fd uintptr) { syscall.CloseOnExec(int(fd)) })
		}
		if err != nil {
			ifce.Close()
		}
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, &devError{fmt.Sprintf("tun: create %q: %v (needs root or CAP_NET_ADMIN)", cfg.Name, err), ErrNotPermitted, err}
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return nil, &devError{fmt.Sprintf("tun: open /dev/net/tun: %v", err), ErrNoTun, err}
		case errors.Is(err, unix.EBUSY):
			return nil, nameInUse(cfg.Name, err)
		}
		return nil, fmt.Errorf("tun: create %q: %w", cfg.Name, err)
	}
	if err := configure(nl, cfg); err != nil {
		ifce.Close()
		return nil, err
	}
	return &Device{cfg: cfg, ifce: ifce, file: file, raw: raw, rxBatch: defaultRxBatch}, nil
}

func nameInUse(name string, cause error) error {
	return &devError{fmt.Sprintf("tun: interface %q already exists", name), ErrNameInUse, cause}
}

// hasNetAdmin reports whether the process has CAP_NET_ADMIN in its
// effective set, which TUNSETIFF needs to create a device.
func hasNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3 takes two
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true // let TUNSETIFF decide
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

// Name is the kernel's name for the device.
func (d *Device) Name() string { return d.cfg.Name }

// Kind returns "tun": the stack names it tunN.
func (d *Device) Kind() string { return "tun" }

// MTU returns the MTU the device was created with. Changing the kernel
// side's MTU later (ip link set mtu) is not seen here.
func (d *Device) MTU() int { return d.cfg.MTU }

// Stats returns the device's live counters: Rx when a packet is handed to
// the Receiver (RxDropped: non-IPv4 packets; RxErrors: a failed read),
// Tx when write(2) succeeded (TxDropped: too long or device stopped;
// TxErrors: write failed). Safe for concurrent use.
func (d *Device) Stats() *link.Stats { return &d.stats }

// Open starts the reader goroutine, which hands batches of received IPv4
// packets to rx until Stop (see the package comment). It fails with EBUSY if
// the device is open, EBADF once stopped (a stopped TUN is gone from the
// kernel and cannot be reopened) and EINVAL if rx is nil. Safe for
// concurrent use with the other methods; it does not block.
func (d *Device) Open(rx link.Receiver) error {
	if rx == nil {
		return fmt.Errorf("tun: %s: nil receiver: %w", d.cfg.Name, unix.EINVAL)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped.Load() {
		return fmt.Errorf("tun: %s: device stopped: %w", d.cfg.Name, unix.EBADF)
	}
	if d.opened {
		return fmt.Errorf("tun: %s: already open: %w", d.cfg.Name, unix.EBUSY)
	}
	d.opened = true
	d.done = make(chan struct{})
	go d.reader(rx, d.done)
	return nil
}

// Stop closes the device, which removes the interface from the kernel
// (together with its address and routes), and waits for the reader to
// return; packets queued in the kernel are lost. It may block for the
// duration of a NetifRx call in progress, so it must not be called from
// inside the Receiver. Transmits racing with Stop are counted as TxDropped.
// Stopping a stopped device does nothing. Safe for concurrent use.
func (d *Device) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped.Swap(true) {
		return nil
	}
	// Close evicts the reader from the netpoller and returns only once
	// close(2) has run (Go waits for in-flight I/O to drop the descriptor),
	// and the kernel unregisters a non-persistent TUN within close(2).
	err := d.file.Close()
	if d.done != nil {
		<-d.done
	}
	if err != nil {
		return fmt.Errorf("tun: %s: close: %w", d.cfg.Name, err)
	}
	return nil
}
