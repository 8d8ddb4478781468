package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"sockfs/netstack"
	"sockfs/netstack/link"
	"sockfs/tun"
)

// Exit codes of sockfs serve, so scripts can tell failures apart.
const (
	exitFailure   = 1
	exitUsage     = 2
	exitNotRoot   = 3 // not permitted to create a TUN device
	exitNoTun     = 4 // /dev/net/tun is missing
	exitNameInUse = 5 // the TUN name is taken
)

type usageError struct{ error }

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, tun.ErrNotPermitted):
		return exitNotRoot
	case errors.Is(err, tun.ErrNoTun):
		return exitNoTun
	case errors.Is(err, tun.ErrNameInUse):
		return exitNameInUse
	}
	return exitFailure
}

// serveConfig is what `sockfs serve` is told on its command line.
type serveConfig struct {
	tunName  string
	addr     netip.Prefix
	hostAddr netip.Prefix
	mtu      int
}

func parseServe(args []string) (serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := serveConfig{}
	addr := fs.String("addr", "198.18.0.2/24", "the stack's own address (CIDR)")
	host := fs.String("host-addr", "198.18.0.1/24", "the kernel side of the TUN device (CIDR); the stack's default route points at it")
	fs.StringVar(&c.tunName, "tun", "sockfs0", "name of the TUN device to create")
	fs.IntVar(&c.mtu, "mtu", 1500, "MTU of the TUN device")
	if err := fs.Parse(args); err != nil {
		return c, usageError{err}
	}
	if fs.NArg() != 0 {
		return c, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var err error
	if c.addr, err = netip.ParsePrefix(*addr); err != nil || !c.addr.Addr().Is4() {
		return c, usageError{fmt.Errorf("--addr %q: want an IPv4 CIDR like 198.18.0.2/24", *addr)}
	}
	if c.hostAddr, err = netip.ParsePrefix(*host); err != nil || !c.hostAddr.Addr().Is4() {
		return c, usageError{fmt.Errorf("--host-addr %q: want an IPv4 CIDR like 198.18.0.1/24", *host)}
	}
	if c.addr.Addr() == c.hostAddr.Addr() {
		return c, usageError{fmt.Errorf("--addr and --host-addr must differ")}
	}
	if !c.addr.Masked().Contains(c.hostAddr.Addr()) {
		return c, usageError{fmt.Errorf("--host-addr %s is not on the network of --addr %s", c.hostAddr.Addr(), c.addr)}
	}
	if c.mtu < 576 || c.mtu > 65535 {
		return c, usageError{fmt.Errorf("--mtu %d: must be between 576 and 65535", c.mtu)}
	}
	return c, nil
}

// serve runs the stack on a TUN device until SIGINT or SIGTERM, then shuts
// it down (sockets closed, TUN device removed).
func serve(args []string) error {
	cfg, err := parseServe(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := startStack(cfg, log)
	if err != nil {
		return err
	}
	log.Info("serving", "tun", cfg.tunName, "addr", cfg.addr, "host", cfg.hostAddr, "mtu", cfg.mtu)
	<-ctx.Done()
	log.Info("shutting down")
	return st.Close()
}

// startStack builds the stack: loopback, the TUN device with the stack's
// address, and a default route via the host.
func startStack(cfg serveConfig, log *slog.Logger) (*netstack.Stack, error) {
	dev, err := tun.New(tun.Config{Name: cfg.tunName, MTU: cfg.mtu, HostAddr: cfg.hostAddr})
	if err != nil {
		return nil, err
	}
	st := netstack.New(netstack.Options{Logger: log})
	fail := func(err error) (*netstack.Stack, error) {
		st.Close()
		dev.Stop()
		return nil, err
	}
	if _, err := st.AddDevice(link.NewLoopback(st.Clock(), link.DefaultLoopbackMTU)); err != nil {
		return fail(err)
	}
	nd, err := st.AddDevice(dev)
	if err != nil {
		return fail(err)
	}
	if err := st.AddAddress(nd, cfg.addr); err != nil {
		return fail(err)
	}
	if err := st.AddRoute(netstack.Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: cfg.hostAddr.Addr(), Dev: nd, Src: cfg.addr.Addr()}); err != nil {
		return fail(err)
	}
	return st, nil
}
