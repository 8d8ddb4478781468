package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"sockfs/fs/fuse"
	"sockfs/fs/p9"
)

// runImport is `sockfs import [flags] ADDR DIR`: it attaches to the sockfs
// tree served over 9P2000.L at ADDR (sockfs serve --9p), or to a server
// that speaks only plain 9P2000 (a Plan 9 machine's /net exported with
// exportfs), and mounts it at DIR through FUSE, like Plan 9's import of a
// remote /net. Every file
// operation on DIR becomes a 9P request; interrupting a blocked one (Ctrl-C
// on a cat of data, a FUSE INTERRUPT) flushes the remote request. It runs
// until SIGINT or SIGTERM, or until DIR is unmounted, and unmounts DIR on
// the way out. With --per-user (the default) each local user's opens reach
// the server as that user (one connection and attach per user, since
// 9P2000.L carries one identity per attach), so conversation ownership works
// as on a local mount; walks and stats are made as --uid. (In 9P2000 the
// user goes by name: the local name of the uid.) (The FUSE
// frontend mounts without allow_other, so today only the importing user
// can use DIR, and --per-user matters only once other users are let in.)
func runImport(args []string) int {
	fl := flag.NewFlagSet("import", flag.ContinueOnError)
	uid := fl.Uint("uid", uint(os.Geteuid()), "user the remote server walks and stats as (and opens as, without --per-user)")
	perUser := fl.Bool("per-user", true, "open files on the server as the local user who opens them")
	aname := fl.String("aname", "", "remote directory to import (attach name); empty: the whole tree")
	msize := fl.Uint("msize", p9.DefaultMsize, "9P message size to ask for")
	tlsFlag := fl.String("tls", "", "CERT,KEY,SERVER-CA: speak 9P inside mutual TLS (a server with --9p-tls); the server must have a certificate signed by SERVER-CA for ADDR's host, and attaches as CERT's common name")
	verbose := fl.Bool("v", false, "log debug messages")
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: sockfs import [flags] ADDR DIR\n\n"+
			"Mount the sockfs tree served over 9P at ADDR (host:port) on DIR through FUSE.\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fl.NArg() != 2 {
		fl.Usage()
		return 2
	}
	addr, dir := fl.Arg(0), fl.Arg(1)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *msize < 8192 || *msize > 4<<20 {
		fmt.Fprintf(os.Stderr, "sockfs import: --msize %d out of range [8192, 4194304]\n", *msize)
		return 2
	}
	var tc *tls.Config
	if *tlsFlag != "" {
		files := strings.Split(*tlsFlag, ",")
		if len(files) != 3 || slices.Contains(files, "") {
			fmt.Fprintf(os.Stderr, "sockfs import: --tls %q: want CERT,KEY,SERVER-CA\n", *tlsFlag)
			return 2
		}
		var err error
		if tc, err = p9.ClientTLS(files[0], files[1], files[2]); err != nil {
			fmt.Fprintf(os.Stderr, "sockfs import: --tls: %v\n", err)
			return 2
		}
	}
	// A mount point left stale by a killed import (ENOTCONN) is
	// recovered first, as serve does; a live mount is refused.
	if err := fuse.RecoverStale(dir); err != nil {
		fmt.Fprintf(os.Stderr, "sockfs import: %v\n", err)
		return 1
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "sockfs import: %s is not a directory\n", dir)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	remote, err := p9.Dial(dctx, addr, p9.RemoteOptions{Uid: uint32(*uid), PerUser: *perUser, Aname: *aname, Msize: uint32(*msize), TLS: tc})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sockfs import: %s: %v\n", addr, err)
		return 1
	}
	defer remote.Close()
	m, err := fuse.Mount(dir, remote.Root())
	if err != nil {
		fmt.Fprintf(os.Stderr, "sockfs import: %v\n", err)
		return 1
	}
	log.Info("imported", "addr", addr, "dir", m.Dir)
	select {
	case <-ctx.Done():
		log.Info("signal: unmounting", "dir", m.Dir)
	case <-remote.Lost():
		// The server went away (a restart, a network failure): every
		// file would fail with EIO from now on, and an import cannot
		// take up the old conversations again, so it says so and
		// unmounts; run it again to import the new server.
		log.Error("connection to the server lost: unmounting", "addr", addr, "err", remote.LostErr(), "dir", m.Dir)
		m.Unmount()
		return 1
	case err := <-m.Done():
		// Unmounted from outside (fusermount3 -u): nothing left to do.
		if err != nil {
			log.Warn("FUSE server stopped", "err", err)
			return 1
		}
		return 0
	}
	if err := m.Unmount(); err != nil {
		fmt.Fprintf(os.Stderr, "sockfs import: %v\n", err)
		return 1
	}
	return 0
}
