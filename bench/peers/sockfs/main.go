// Command sockfs is the benchmark peer for sockfs's Go API: it creates a TUN
// device in the current network namespace (the harness starts it inside
// one), puts a sockfs stack on it and serves the benchmark protocol of
// package sockfs/bench/peer through netstack's net.Listener. It is built and
// run by `go run ./bench` (make bench), not by hand.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"

	"sockfs/bench/peer"
	"sockfs/netstack"
	"sockfs/netstack/link"
	"sockfs/tun"
)

func main() {
	name := flag.String("tun", "sfsb0", "TUN device to create")
	mtu := flag.Int("mtu", 1500, "MTU of the TUN device")
	addr := flag.String("addr", "198.18.0.2/24", "the stack's address")
	host := flag.String("host", "198.18.0.1/24", "the kernel side's address")
	offload := flag.Bool("offload", true, "TUN offloads (IFF_VNET_HDR, TSO super-packets, checksum offload); false is tun.Config.DisableOffload, as `sockfs serve --offload=false`")
	flag.Parse()
	// Diagnosis only: SOCKFS_PEER_MEMPROFILE=prefix records every
	// allocation and writes prefix.PID (go tool pprof -sample_index=
	// alloc_objects) when the peer is told to quit.
	if prefix := os.Getenv("SOCKFS_PEER_MEMPROFILE"); prefix != "" {
		runtime.MemProfileRate = 1
		defer func() {
			if f, err := os.Create(fmt.Sprintf("%s.%d", prefix, os.Getpid())); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if err := run(*name, *mtu, netip.MustParsePrefix(*addr), netip.MustParsePrefix(*host), *offload); err != nil {
		fmt.Fprintln(os.Stderr, "sockfs peer:", err)
		os.Exit(1)

	}
}

func run(name string, mtu int, addr, host netip.Prefix, offload bool) error {
	cfg := tun.Config{Name: name, MTU: mtu, HostAddr: host, DisableOffload: !offload}
	if host.Addr().Is6() { // the IPv6 rows: the kernel side's address is IPv6
		cfg.HostAddr, cfg.HostAddr6 = netip.Prefix{}, host
	}
	dev, err := tun.New(cfg)
	if err != nil {
		return err
	}
	st := netstack.New(netstack.Options{})
	defer st.Close()
	if _, err := st.AddDevice(link.NewLoopback(st.Clock(), link.DefaultLoopbackMTU)); err != nil {
		return err
	}
	nd, err := st.AddDevice(dev)
	if err != nil {
		return err
	}
	if err := st.AddAddress(nd, addr); err != nil {
		return err
	}
	stats, offl := dev.Stats(), dev.OffloadStats()
	// Wire packets, what the harness divides allocations by: link.Stats
	// count a GSO super-packet once (as Linux's counters count a GRO'd
	// skb), so each one is replaced by the segments it stands for:
	// RxGSOSegs (its payload in gso_size pieces) and TxGSOSegs (gso_segs).
	// Without offloads both GSO counters stay 0 and this is the packet
	// count.
	wire := func() uint64 {
		rx := stats.RxPackets.Load() - offl.RxGSOPackets.Load() + offl.RxGSOSegs.Load()
		tx := stats.TxPackets.Load() - offl.TxGSOPackets.Load() + offl.TxGSOSegs.Load()
		return rx + tx
	}
	return peer.Serve(peer.Config{
		Listen: func(port int) (net.Listener, error) {
			return st.ListenTCP(netip.AddrPortFrom(addr.Addr(), uint16(port)), 4096)
		},
		Packets: wire,
		GC:      true,
	}, func() { fmt.Println("ready") })
}
