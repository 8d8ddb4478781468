// Package link is sockfs's device layer: the Device interface the stack
// transmits through and receives from (Linux's struct net_device with its
// net_device_ops), the counters every device keeps (rtnl_link_stats64), and
// two in-memory devices: Loopback ("lo") and Pipe, a veth-like pair joined
// through seeded impairment for simulation. The TUN device lives in package
// tun and implements the same interface.
//
// No device here starts a goroutine: in-memory devices deliver from
// callbacks of the clock they are given (the clock's one timer goroutine for
// clock.Real, the driving goroutine for clock.Sim), never synchronously from
// Xmit, so a transmitting caller may hold socket locks.
package link

import (
	"sync/atomic"

	"sockfs/skb"
)

// maxBatch bounds the packets handed to a Receiver in one NetifRx call.
const maxBatch = 64

// Device is a network device: an object with a method set, as Linux's
// net_device with its net_device_ops.
type Device interface {
	// Kind names the type of device: "lo", "pipe", "tun". The stack names
	// devices Kind followed by a number (lo stays "lo").
	Kind() string
	// MTU is the largest packet, in bytes of IP datagram, the device sends.
	MTU() int
	// Open starts delivering received packets to rx. Mirrors ndo_open.
	Open(rx Receiver) error
	// Stop stops delivering and frees anything queued. Mirrors ndo_stop.
	Stop() error
	// Xmit transmits a batch, taking ownership of every skb: each is
	// delivered or freed (drops counted in Stats). It must not block for
	// long and must not call any Receiver synchronously (callers may hold
	// socket locks). Mirrors ndo_start_xmit, batched.
	Xmit(batch []*skb.SKB)
	// Stats returns the device's live counters.
	Stats() *Stats
}

// Features are a device's offload capabilities. Mirrors netdev_features_t
// (only the bits the stack acts on).
type Features uint32

// FeatureHWCsum: the device completes transport checksums of packets marked
// skb.ChecksumPartial, so the stack leaves them as the pseudo-header sum.
// Mirrors NETIF_F_HW_CSUM.
const FeatureHWCsum Features = 1 << 0

// FeatureTSO: the device takes TCP/IPv4 GSO packets (gso_size, gso_segs
// and gso_type set, checksum partial) and cuts them itself; without it the
// stack cuts them in software before Xmit. Mirrors NETIF_F_TSO.
const FeatureTSO Features = 1 << 1

// Featurer is implemented by devices with offloads; a Device without it has
// none. Features must not change while the device is attached.
type Featurer interface {
	Features() Features
}

// FeaturesOf returns dev's features (0 for a device without offloads).
func FeaturesOf(dev Device) Features {
	if f, ok := dev.(Featurer); ok {
		return f.Features()
	}
	return 0
}

// Receiver is the stack's netif_rx entry point for one device. The device
// calls NetifRx from its own goroutine (a reader, or the clock's timer
// path) with a batch of IPv4 datagrams, each starting at skb.Data(), passing
// ownership of the skbs but not of the slice, which the device reuses after
// NetifRx returns. Calls for one device never overlap.
type Receiver interface {
	NetifRx(batch []*skb.SKB)
}

// ReceiverFunc adapts a function to the Receiver interface.
type ReceiverFunc func(batch []*skb.SKB)

// NetifRx calls f(batch).
func (f ReceiverFunc) NetifRx(batch []*skb.SKB) { f(batch) }

// Stats are a device's counters, named as Linux's rtnl_link_stats64. Each
// is atomic; read them individually or take a Snapshot.
type Stats struct {
	RxPackets atomic.Uint64 // packets delivered to the Receiver
	RxBytes   atomic.Uint64
	TxPackets atomic.Uint64 // packets accepted for transmission
	TxBytes   atomic.Uint64
	RxErrors  atomic.Uint64
	TxErrors  atomic.Uint64
	RxDropped atomic.Uint64 // received but dropped (device stopped)
	TxDropped atomic.Uint64 // refused at transmit (too big, device or peer down)
	// RxFrameErrors counts received frames whose framing was malformed
	// (a TUN's virtio_net_hdr the kernel would refuse), as rx_frame_errors.
	RxFrameErrors atomic.Uint64
}

// StatsSnapshot is a copy of Stats at one moment (each counter read
// atomically, the set not as one transaction).
type StatsSnapshot struct {
	RxPackets, RxBytes, TxPackets, TxBytes   uint64
	RxErrors, TxErrors, RxDropped, TxDropped uint64
	RxFrameErrors                            uint64
}

// Snapshot reads every counter.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		RxPackets: s.RxPackets.Load(), RxBytes: s.RxBytes.Load(),
		TxPackets: s.TxPackets.Load(), TxBytes: s.TxBytes.Load(),
		RxErrors: s.RxErrors.Load(), TxErrors: s.TxErrors.Load(),
		RxDropped: s.RxDropped.Load(), TxDropped: s.TxDropped.Load(),
		RxFrameErrors: s.RxFrameErrors.Load(),
	}
}

// countRx adds a batch to the receive counters.
func (s *Stats) countRx(batch []*skb.SKB) {
	var n uint64
	for _, b := range batch {
		n += uint64(b.Len())
	}
	s.RxPackets.Add(uint64(len(batch)))
	s.RxBytes.Add(n)
}

// dropRx frees a batch that arrived while the device was down.
func (s *Stats) dropRx(batch []*skb.SKB) {
	for _, b := range batch {
		b.Free()
	}
	s.RxDropped.Add(uint64(len(batch)))
}
