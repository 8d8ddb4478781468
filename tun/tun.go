// Package tun puts the stack on a Linux TUN device: a link.Device whose
// packets are IPv4 and IPv6 datagrams exchanged with the kernel through /dev/net/tun,
// opened directly (IFF_TUN|IFF_NO_PI, and IFF_VNET_HDR unless offloads are
// off).
//
// New creates the device in the network namespace of the calling OS thread
// and configures the kernel's side through rtnetlink: MTU, IFF_UP and the
// host's address (the kernel adds the prefix route). Removing the device is
// closing it: a non-persistent TUN disappears with its file descriptor.
//
// Why not github.com/songgao/water, which this package used before: water
// always opens the device with IFF_NO_PI only and has no way to ask for
// IFF_VNET_HDR, without which the kernel can neither hand us offloaded
// super-packets nor take partial checksums from us, so every read(2) was
// one packet of at most the MTU and the stack was bound by the packet rate
// of read(2) (about 300k packets/s at MTU 1500). Opening /dev/net/tun
// ourselves is three ioctls.
//
// Offloads (Config.DisableOffload false, the default): the device is
// opened with IFF_VNET_HDR, so every read and write starts with a struct
// virtio_net_hdr (10 bytes), and TUNSETOFFLOAD(TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6) lets
// the kernel skip checksumming what it sends us and send TCP super-packets
// of up to 64 KiB (its TSO; GRO's effect, seen from here) instead of
// MTU-sized segments. If TUNSETOFFLOAD fails the device keeps the header
// but receives plain packets (Offloads reports what is in force).
//
// Receive: one reader goroutine per device drains up to a batch of packets
// per wake-up of Go's netpoller and hands them to the Receiver together.
// Each packet is read with readv(2): its headers into a small buffer, a
// large packet's payload straight into the pages its skb references
// (rxbuf.go); the skb is laid out as tun_get_user / tun_alloc_skb lay out what a writer sends
// the kernel (see rx.go): 64 bytes of headroom (NET_SKB_PAD) and the
// packet, linear in a head of that size class while it fits a page,
// otherwise the virtio_net_hdr's hdr_len (the headers) in the head and the
// rest in page fragments, so truesize is the kernel's (a 60-byte packet is
// charged 832 bytes, a 180-byte UDP payload 1280, a 64 KiB super-packet
// about 64 KiB, not the 64 KiB a read must be able to take, nor a 128 KiB
// head) and steady state allocates nothing. A super-packet carries
// gso_size/gso_type in skb.Shared, and its partial checksum is marked
// skb.ChecksumPartial, which the stack's input trusts as Linux does for a
// local host's packets. A virtio_net_hdr the kernel would refuse from a
// writer is dropped and counted in rx_frame_errors (ipifc/N/stats).
//
// Transmit: one writev(2) per packet, straight from the skb's head and page
// fragments (a TUN write is one packet), from any number of goroutines at
// once,
// behind a virtio_net_hdr that asks the kernel to complete the checksum of
// a skb.ChecksumPartial packet (the device advertises
// link.FeatureHWCsum, Linux's NETIF_F_HW_CSUM). With offloads in force,
// Xmit also coalesces a batch's runs of consecutive MSS-sized segments of
// one TCP flow into GSO super-packets (gso_type TCPV4, gso_size the MSS;
// see gso.go): TCP still builds one skb per MSS, and its output hands a
// run to the device in one batch (netstack's xmitQueue), so one writev(2)
// carries up to 64 KiB and the kernel's TCP input runs once for it.
package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

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

// maxPacket bounds what one read can return: an IPv4 datagram (a TSO
// super-packet included: its total length is still 16 bits, as TUN's
// gso_ipv4_max_size is 64 KiB).
const maxPacket = 65535

// defaultRxBatch is the most packets handed to NetifRx in one call.
const defaultRxBatch = 64

// Device is a TUN device as a link.Device.
type Device struct {
	cfg Config

	file *os.File        // /dev/net/tun, attached to the interface
	raw  syscall.RawConn // file's, for reads and writes through the netpoller

	// vnetHdr is set when the device was opened with IFF_VNET_HDR: every
	// read and write starts with a virtio_net_hdr. rxOffload is set when
	// TUNSETOFFLOAD accepted TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6, so reads may bring
	// super-packets and partial checksums; offloadErr says why not.
	vnetHdr    bool
	rxOffload  bool
	offloadErr error
	ipv6Off    bool // the namespace has IPv6 disabled: HostAddr6 not added

	stats   link.Stats
	offl    OffloadStats
	stopped atomic.Bool
	rxBatch int // most packets per NetifRx; benchmarks lower it

	mu     sync.Mutex // serialises Open and Stop
	opened bool
	done   chan struct{} // closed when the reader has returned
}

// OffloadStats count what the offloads did, beside link.Stats (which count
// a super-packet as one packet of its full length, as Linux's counters do
// for a GRO'd skb).
type OffloadStats struct {
	RxGSOPackets    atomic.Uint64 // super-packets received (gso_type TCPV4)
	RxGSOSegs       atomic.Uint64 // the MSS-sized segments they stand for
	RxCsumPartial   atomic.Uint64 // packets received with VIRTIO_NET_HDR_F_NEEDS_CSUM
	RxCsumValid     atomic.Uint64 // packets received with VIRTIO_NET_HDR_F_DATA_VALID
	TxCsumOffloaded atomic.Uint64 // packets sent with VIRTIO_NET_HDR_F_NEEDS_CSUM
	TxGSOPackets    atomic.Uint64 // super-packets sent (gso_type TCPV4), coalesced from a batch
	TxGSOSegs       atomic.Uint64 // the segments they were coalesced from (gso_segs)
}

// OffloadStats returns the device's offload counters. Safe for concurrent
// use.
func (d *Device) OffloadStats() *OffloadStats { return &d.offl }

// IPv6Disabled reports whether the kernel refused Config.HostAddr6
// because IPv6 is disabled in the device's namespace (disable_ipv6): the
// kernel side then has no IPv6, and the stack should not offer it.
func (d *Device) IPv6Disabled() bool { return d.ipv6Off }

// Offloads reports what is in force: vnetHdr (IFF_VNET_HDR, so transmit
// checksum offload), rx (TUNSETOFFLOAD accepted: super-packets and partial
// checksums on receive), and, if rx offloads were wanted but refused, why.
func (d *Device) Offloads() (vnetHdr, rx bool, why error) {
	return d.vnetHdr, d.rxOffload, d.offloadErr
}

// Features reports link.FeatureHWCsum when the device takes partial
// checksums (IFF_VNET_HDR), and link.FeatureTSO when it also takes GSO
// packets (offloads in force: see Xmit). Mirrors the netdev features TUN
// sets.
func (d *Device) Features() link.Features {
	switch {
	case d.vnetHdr && d.rxOffload:
		return link.FeatureHWCsum | link.FeatureTSO
	case d.vnetHdr:
		return link.FeatureHWCsum
	}
	return 0
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
// A refused TUNSETOFFLOAD is not an error: see Offloads.
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
	// TUNSETIFF would attach to a persistent TUN of that name: refuse any
	// existing interface first; EBUSY below covers the race with another
	// creator.
	switch _, err := nl.linkByName(cfg.Name); {
	case err == nil:
		return nil, nameInUse(cfg.Name, nil)
	case !errors.Is(err, unix.ENODEV):
		return nil, fmt.Errorf("tun: look up %q: %w", cfg.Name, err)
	}

	d := &Device{cfg: cfg, rxBatch: defaultRxBatch}
	fd, err := d.open()
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
	// A non-blocking descriptor makes os.NewFile register it with the
	// netpoller, which RawRead and RawWrite wait in.
	d.file = os.NewFile(uintptr(fd), "/dev/net/tun")
	if d.raw, err = d.file.SyscallConn(); err != nil {
		d.file.Close()
		return nil, fmt.Errorf("tun: %s: %w", cfg.Name, err)
	}
	if d.ipv6Off, err = configure(nl, cfg); err != nil {
		d.file.Close()
		return nil, err
	}
	return d, nil
}

// open opens /dev/net/tun (close-on-exec, so no child keeps the interface
// alive after Stop; non-blocking, for the netpoller) and creates the
// interface with TUNSETIFF, then asks for offloads. It returns the
// descriptor, or closes it on failure.
func (d *Device) open() (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(d.cfg.Name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if !d.cfg.DisableOffload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF: %w", err)
	}
	if d.cfg.DisableOffload {
		return fd, nil
	}
	d.vnetHdr = true
	// The header is sizeof(struct virtio_net_hdr) (10) by default; set it
	// anyway, so a kernel default that ever changed cannot shift our data.
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	// TUN_F_TSO4 and TUN_F_TSO6 need TUN_F_CSUM (set_offload refuses TSO
	// without it). No TUN_F_TSO_ECN: the kernel then segments the rare
	// CWR super-packet itself.
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		d.offloadErr = fmt.Errorf("TUNSETOFFLOAD(TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6): %w", err)
		return fd, nil
	}
	d.rxOffload = true
	return fd, nil
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
// the Receiver, a super-packet counting once with its whole length
// (RxDropped: packets neither IPv4 nor IPv6; RxFrameErrors: a virtio_net_hdr the
// kernel would refuse from a writer, or one we did not ask for; RxErrors: a
// failed or short read),
// Tx when write(2) succeeded (TxDropped: too long or device stopped;
// TxErrors: write failed). Safe for concurrent use.
func (d *Device) Stats() *link.Stats { return &d.stats }

// Open starts the reader goroutine, which hands batches of received IP
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
