// Command gvisor is the benchmark peer for gVisor's netstack, set up the way
// a typical user would: a TUN device opened with gVisor's link/tun, the
// ordinary fdbased link endpoint on its descriptor (no GSO, no GRO, no
// checksum offload: a TUN has none without IFF_VNET_HDR), IPv4 and TCP with
// SACK and receive-buffer moderation on, and the gonet adapters serving the
// benchmark protocol of package sockfs/bench/peer. It lives in a module of
// its own so that sockfs itself does not depend on gVisor; the harness
// (go run ./bench) builds it.
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

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"sockfs/bench/peer"
)

const nicID = 1

func main() {
	name := flag.String("tun", "gvb0", "TUN device to create")
	mtu := flag.Int("mtu", 1500, "MTU of the TUN device")
	addr := flag.String("addr", "198.18.0.2/24", "the stack's address")
	host := flag.String("host", "198.18.0.1/24", "the kernel side's address")
	flag.Parse()
	if err := run(*name, *mtu, netip.MustParsePrefix(*addr), *host); err != nil {
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

func run(name string, mtu int, addr netip.Prefix, host string) error {
	fd, err := tun.Open(name)
	if err != nil {
		return fmt.Errorf("open tun %s: %w", name, err)
	}
	if err := ip("link", "set", "dev", name, "mtu", strconv.Itoa(mtu), "up"); err != nil {
		return err
	}
	if err := ip("addr", "add", host, "dev", name); err != nil {
		return err
	}
	ep, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: uint32(mtu)})
	if err != nil {
		return fmt.Errorf("fdbased: %w", err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
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
	defer runtime.KeepAlive(fd)
	return peer.Serve(peer.Config{
		Listen: func(port int) (net.Listener, error) {
			return gonet.ListenTCP(s, tcpip.FullAddress{NIC: nicID, Addr: a, Port: uint16(port)}, ipv4.ProtocolNumber)
		},
		Packets: func() uint64 {
			st := s.NICInfo()[nicID].Stats
			return st.Rx.Packets.Value() + st.Tx.Packets.Value()
		},
		GC: true,
	}, func() { fmt.Println("ready") })
}
