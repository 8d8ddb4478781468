package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	netfs "sockfs/fs"
	"sockfs/fs/fuse"
	"sockfs/fs/p9"
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
	addr6    netip.Prefix // invalid: no IPv6
	host6    netip.Prefix
	mtu      int
	offload  bool
	mount    string           // FUSE mount point; "" = no FUSE
	p9Addr   string           // 9P listen address; "" = no 9P
	p9TLS    *tls.Config      // from --9p-tls CERT,KEY,CLIENT-CA
	p9Allow  []netip.Prefix   // --9p-allow: client networks let in without credentials
	dns      []netip.AddrPort // --dns, else /etc/resolv.conf's nameservers
}

func parseServe(args []string) (serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := serveConfig{}
	addr := fs.String("addr", "198.18.0.2/24", "the stack's own address (CIDR)")
	host := fs.String("host-addr", "198.18.0.1/24", "the kernel side of the TUN device (CIDR); the stack's default route points at it")
	addr6 := fs.String("addr6", "fd00:5f::2/64", "the stack's own IPv6 address (CIDR; empty: no IPv6)")
	host6 := fs.String("host-addr6", "fd00:5f::1/64", "the kernel side's IPv6 address (CIDR); the stack's IPv6 default route points at it")
	fs.StringVar(&c.tunName, "tun", "sockfs0", "name of the TUN device to create")
	fs.IntVar(&c.mtu, "mtu", 1500, "MTU of the TUN device")
	fs.BoolVar(&c.offload, "offload", true, "TUN offloads: IFF_VNET_HDR, TSO super-packets and partial checksums from the kernel, checksum offload to it (--offload=false: one MTU-sized packet per read, every checksum in software)")
	fs.StringVar(&c.mount, "mount", "/mnt/sockfs", "FUSE mount point of the /net tree (empty: no FUSE)")
	fs.StringVar(&c.p9Addr, "9p", "127.0.0.1:5640", "TCP address to serve the tree over 9P: 9P2000, 9P2000.u or 9P2000.L, as the client asks (empty: no 9P)")
	tlsFlag := fs.String("9p-tls", "", "CERT,KEY,CLIENT-CA: serve 9P inside mutual TLS; clients need a certificate signed by CLIENT-CA, whose common name is the user they attach as (sockfs cert makes a first set)")
	dnsFlag := fs.String("dns", "", "ADDR[:PORT][,...]: resolvers the dns file (and cs, for names) asks through the stack's own UDP (default: the nameservers of /etc/resolv.conf)")
	allowFlag := fs.String("9p-allow", "", "CIDR[,CIDR...]: accept 9P clients only from these networks, without credentials (for trusted networks)")
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
	if *addr6 != "" {
		if c.addr6, err = netip.ParsePrefix(*addr6); err != nil || !c.addr6.Addr().Is6() || c.addr6.Addr().Is4In6() {
			return c, usageError{fmt.Errorf("--addr6 %q: want an IPv6 CIDR like fd00:5f::2/64", *addr6)}
		}
		if c.host6, err = netip.ParsePrefix(*host6); err != nil || !c.host6.Addr().Is6() || c.host6.Addr().Is4In6() {
			return c, usageError{fmt.Errorf("--host-addr6 %q: want an IPv6 CIDR like fd00:5f::1/64", *host6)}
		}
		if c.addr6.Addr() == c.host6.Addr() {
			return c, usageError{fmt.Errorf("--addr6 and --host-addr6 must differ")}
		}
		if !c.addr6.Masked().Contains(c.host6.Addr()) {
			return c, usageError{fmt.Errorf("--host-addr6 %s is not on the network of --addr6 %s", c.host6.Addr(), c.addr6)}
		}
	}
	if c.mtu < 576 || c.mtu > 65535 {
		return c, usageError{fmt.Errorf("--mtu %d: must be between 576 and 65535", c.mtu)}
	}
	if *tlsFlag != "" {
		files := strings.Split(*tlsFlag, ",")
		if len(files) != 3 || slices.Contains(files, "") {
			return c, usageError{fmt.Errorf("--9p-tls %q: want CERT,KEY,CLIENT-CA (three files)", *tlsFlag)}
		}
		if c.p9TLS, err = p9.ServerTLS(files[0], files[1], files[2]); err != nil {
			return c, usageError{fmt.Errorf("--9p-tls: %w", err)}
		}
	}
	if *dnsFlag != "" {
		for _, s := range strings.Split(*dnsFlag, ",") {
			s = strings.TrimSpace(s)
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil || !a.Is4() {
					return c, usageError{fmt.Errorf("--dns %q: want IPv4 resolver addresses, ADDR or ADDR:PORT", *dnsFlag)}
				}
				ap = netip.AddrPortFrom(a, 53)
			}
			if !ap.Addr().Is4() {
				return c, usageError{fmt.Errorf("--dns %q: want IPv4 resolver addresses, ADDR or ADDR:PORT", *dnsFlag)}
			}
			c.dns = append(c.dns, ap)
		}
	} else {
		c.dns = netfs.ResolvConf("/etc/resolv.conf")
	}
	if *allowFlag != "" {
		for _, s := range strings.Split(*allowFlag, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return c, usageError{fmt.Errorf("--9p-allow %q: want CIDRs like 198.18.1.0/24", *allowFlag)}
			}
			c.p9Allow = append(c.p9Allow, p.Masked())
		}
	}
	if c.p9Addr != "" {
		if err := check9PAddr(c.p9Addr, c.p9TLS != nil || c.p9Allow != nil); err != nil {
			return c, usageError{err}
		}
	}
	return c, nil
}

// serve runs the stack on a TUN device, with its /net tree mounted over FUSE
// at --mount and served over 9P on --9p, until SIGINT or SIGTERM; then
// it unmounts (lazily if files are still open), stops 9P and shuts the stack
// down (sockets closed, TUN device removed). A stale mount left at --mount by
// a killed daemon is recovered first; a live one is an error.
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
	tree := netfs.New(st, netfs.Options{Logger: log, DNS: cfg.dns})

	var mp *fuse.MountPoint
	if cfg.mount != "" {
		if err := fuse.RecoverStale(cfg.mount); err != nil {
			st.Close()
			return err
		}
		if err := os.MkdirAll(cfg.mount, 0755); err != nil {
			st.Close()
			return fmt.Errorf("mount point: %w", err)
		}
		if mp, err = fuse.Mount(cfg.mount, tree.Root()); err != nil {
			st.Close()
			return err
		}
		log.Info("mounted", "dir", mp.Dir)
	}

	p9done := make(chan error, 1)
	p9ctx, p9cancel := context.WithCancel(context.Background())
	if cfg.p9Addr != "" {
		ln, err := net.Listen("tcp", cfg.p9Addr)
		if err != nil {
			p9cancel()
			if mp != nil {
				mp.Unmount()
			}
			st.Close()
			return fmt.Errorf("9p: %w", err)
		}
		opts := p9.Options{Logger: log}
		if cfg.p9Allow != nil {
			ln = p9.AllowListener(ln, cfg.p9Allow, log)
			log.Warn("9P clients from --9p-allow networks are let in without credentials: anyone there may use this machine's stack", "allow", cfg.p9Allow)
		}
		if cfg.p9TLS != nil {
			ln = p9.TLSListener(ln, cfg.p9TLS)
			opts.Attach = p9.CertUser
			log.Info("9P over mutual TLS: clients attach as their certificate's common name")
		}
		log.Info("serving 9P (9P2000, 9P2000.u, 9P2000.L)", "addr", ln.Addr())
		go func() {
			err := p9.Serve(p9ctx, ln, tree.Root(), opts)
			if err != nil && p9ctx.Err() == nil {
				log.Error("9P server stopped", "err", err)
			}
			p9done <- err
		}()
	} else {
		p9done <- nil
	}

	log.Info("serving", "tun", cfg.tunName, "addr", cfg.addr, "host", cfg.hostAddr, "addr6", cfg.addr6, "host6", cfg.host6, "mtu", cfg.mtu)
	var fuseDone <-chan error
	if mp != nil {
		fuseDone = mp.Done()
	}
	select {
	case <-ctx.Done():
	case err := <-fuseDone:
		// Someone unmounted us (fusermount3 -u): keep the stack running
		// for 9P, as the mount alone is gone.
		log.Warn("FUSE server stopped", "err", err)
		mp = nil
		<-ctx.Done()
	}
	log.Info("shutting down")
	var errs []error
	if mp != nil {
		if err := mp.Unmount(); err != nil {
			errs = append(errs, err)
		} else {
			log.Info("unmounted", "dir", mp.Dir)
		}
	}
	p9cancel()
	select {
	case <-p9done:
	case <-time.After(2 * time.Second):
		log.Warn("9P server still draining connections; exiting anyway")
	}
	errs = append(errs, st.Close())
	return errors.Join(errs...)
}

// check9PAddr refuses a 9P address that is not loopback unless the export
// is authenticated (mutual TLS, or an allow-list of client networks).
func check9PAddr(addr string, authenticated bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--9p %q: %v", addr, err)
	}
	if authenticated || host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return fmt.Errorf("--9p %q: not a loopback address: remote clients need --9p-tls CERT,KEY,CLIENT-CA (mutual TLS; sockfs cert makes certificates) or --9p-allow CIDR (trusted networks, no credentials)", addr)
	}
	return nil
}

// startStack builds the stack: loopback, the TUN device with the stack's
// address, and a default route via the host.
func startStack(cfg serveConfig, log *slog.Logger) (*netstack.Stack, error) {
	dev, err := tun.New(tun.Config{Name: cfg.tunName, MTU: cfg.mtu, HostAddr: cfg.hostAddr, HostAddr6: cfg.host6, DisableOffload: !cfg.offload})
	if err != nil {
		return nil, err
	}
	switch vnet, rx, why := dev.Offloads(); {
	case why != nil:
		log.Warn("TUN receive offloads refused; plain packets from the kernel", "tun", cfg.tunName, "err", why, "tx_csum_offload", vnet)
	default:
		log.Info("TUN offloads", "tun", cfg.tunName, "vnet_hdr", vnet, "rx_tso_csum", rx)
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
	if cfg.addr6.IsValid() && dev.IPv6Disabled() {
		log.Warn("IPv6 is disabled in this namespace (disable_ipv6): serving IPv4 only", "tun", cfg.tunName)
	} else if cfg.addr6.IsValid() {
		if err := st.AddAddress(nd, cfg.addr6); err != nil {
			return fail(err)
		}
		if err := st.AddRoute(netstack.Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gateway: cfg.host6.Addr(), Dev: nd, Src: cfg.addr6.Addr()}); err != nil {
			return fail(err)
		}
	}
	return st, nil
}
