// Command kernel is the benchmark peer for the reference system: the Linux
// kernel's own TCP through Go's net package, serving the benchmark protocol
// of package sockfs/bench/peer on -addr in the current network namespace
// (the far end of a veth pair the harness creates).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"sockfs/bench/peer"
)

func main() {
	addr := flag.String("addr", "198.18.1.2", "address to listen on")
	flag.Parse()
	err := peer.Serve(peer.Config{
		Listen: func(port int) (net.Listener, error) {
			return net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(port)))
		},
		GC: true,
	}, func() { fmt.Println("ready") })
	if err != nil {
		fmt.Fprintln(os.Stderr, "kernel peer:", err)
		os.Exit(1)
	}
}
