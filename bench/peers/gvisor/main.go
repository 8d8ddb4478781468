// Command gvisor is the benchmark peer for gVisor's netstack, in one of two
// link configurations (-mode):
//
//   - tun: a TUN device opened with gVisor's link/tun and the ordinary
//     fdbased endpoint on its descriptor. No GSO, no GRO, no checksum
//     offload: a TUN has none without IFF_VNET_HDR, and fdbased negotiates
//     GSO only when its descriptor is a socket. This is "gVisor (no
//     offloads)", the peer equally configured with `sockfs serve
//     --offload=false`.
//   - packet: gVisor's best offload configuration, the way runsc runs it:
//     fdbased on an AF_PACKET socket (ETH_P_ALL, PACKET_VNET_HDR, 4 MiB
//     socket buffers) bound to one end (-dev) of a veth pair whose other end
//     carries the kernel side's address; Ethernet framing with ARP, recvmmsg
//     dispatch, host GSO up to 64 KiB (the kernel segments, or hands the
//     super-packet to the kernel's TCP whole), GRO, and receive checksum
//     offload (the kernel's partial checksums are trusted, as runsc's
//     --rx-checksum-offload default does; transmit checksums stay in
//     software for non-GSO packets, runsc's --tx-checksum-offload default).
//     The harness creates the veth pair; the gVisor end has no address and
//     no IPv6, so the kernel neither answers nor routes there.
//
// Either way the stack has IPv4 and TCP with SACK and receive-buffer
// moderation on, and the gonet adapters serve the benchmark protocol of
// package sockfs/bench/peer. It lives in a module of its own so that sockfs
// itself does not depend on gVisor; the harness (go run ./bench) builds it.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"sockfs/bench/peer"
)

const nicID = 1

// gsoMaxSize is the largest GSO packet handed to the kernel in packet
// mode: a veth's gso_max_size, which runsc reads from the interface.
const gsoMaxSize = 65536

// sockBuf is the AF_PACKET socket's send and receive buffer in packet mode
// (runsc forces 4 MiB past rmem_max/wmem_max).
const sockBuf = 4 << 20

func main() {
	mode := flag.String("mode", "tun", "link: tun (plain TUN, no offloads) or packet (AF_PACKET on -dev with GSO, GRO and checksum offload)")
	name := flag.String("tun", "gvb0", "TUN device to create (tun mode)")
	dev := flag.String("dev", "", "existing interface (a veth end) to bind the AF_PACKET socket to (packet mode)")
	mtu := flag.Int("mtu", 1500, "MTU of the link")
	addr := flag.String("addr", "198.18.0.2/24", "the stack's address")
	host := flag.String("host", "198.18.0.1/24", "the kernel side's address (tun mode; in packet mode the harness sets it on the other veth end)")
	flag.Parse()
	var ep stack.LinkEndpoint
	var err error
	switch *mode {
	case "tun":
		ep, err = tunEndpoint(*name, *mtu, *host)
	case "packet":
		ep, err = packetEndpoint(*dev, *mtu)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err == nil {
		err = run(ep, netip.MustParsePrefix(*addr))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gvisor peer:", err)
		os.Exit(1)
	}
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %v: %v: %s", args, err, out)
	}
	return nil
}

// tunEndpoint creates the TUN device and puts fdbased on it, without
// offloads.
func tunEndpoint(name string, mtu int, host string) (stack.LinkEndpoint, error) {
	fd, err := tun.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open tun %s: %w", name, err)
	}
	if err := ip("link", "set", "dev", name, "mtu", strconv.Itoa(mtu), "up"); err != nil {
		return nil, err
	}
	if err := ip("addr", "add", host, "dev", name); err != nil {
		return nil, err
	}
	ep, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: uint32(mtu)})
	if err != nil {
		return nil, fmt.Errorf("fdbased: %w", err)
	}
	return ep, nil
}

// htons converts a 16-bit protocol number to network byte order, as
// AF_PACKET's socket(2) and sockaddr_ll want it.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetEndpoint opens an AF_PACKET socket on dev with virtio-net headers
// and puts fdbased on it with GSO, GRO, recvmmsg and receive checksum
// offload.
func packetEndpoint(dev string, mtu int) (stack.LinkEndpoint, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	// Protocol 0 receives nothing until bind, so no packet can be queued
	// before PACKET_VNET_HDR is on (it would arrive without the header).
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("PACKET_VNET_HDR: %w", err)
	}
	for _, opt := range []int{unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, sockBuf); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("socket buffer: %w", err)
		}
	}
	all := htons(unix.ETH_P_ALL)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: all, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind to %s: %w", dev, err)
	}
	ep, err := fdbased.New(&fdbased.Options{
		FDs:                []int{fd},
		MTU:                uint32(mtu),
		EthernetHeader:     true,
		Address:            tcpip.LinkAddress(ifi.HardwareAddr),
		PacketDispatchMode: fdbased.RecvMMsg,
		GSOMaxSize:         gsoMaxSize,
		RXChecksumOffload:  true,
		GRO:                true,
	})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fdbased: %w", err)
	}
	return ep, nil
}

func run(link stack.LinkEndpoint, addr netip.Prefix) error {
	ep := newWireCounter(link)
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	defer s.Close()
	sack := tcpip.TCPSACKEnabled(true)
	if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); e != nil {
		return fmt.Errorf("SACK: %v", e)
	}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate); e != nil {
		return fmt.Errorf("moderate rcvbuf: %v", e)
	}
	if e := s.CreateNIC(nicID, ep); e != nil {
		return fmt.Errorf("CreateNIC: %v", e)
	}
	a := tcpip.AddrFrom4(addr.Addr().As4())
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: a, PrefixLen: addr.Bits()},
	}
	if e := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
		return fmt.Errorf("AddProtocolAddress: %v", e)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	defer runtime.KeepAlive(link)
	return peer.Serve(peer.Config{
		Listen: func(port int) (net.Listener, error) {
			return gonet.ListenTCP(s, tcpip.FullAddress{NIC: nicID, Addr: a, Port: uint16(port)}, ipv4.ProtocolNumber)
		},
		Packets: ep.wirePackets,
		GC:      true,
	}, func() { fmt.Println("ready") })
}
