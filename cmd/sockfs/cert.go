package main

import (
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"sockfs/fs/p9"
)

// certCmd is `sockfs cert --server HOST[,HOST...] [--client NAME[,...]]
// [--dir DIR]`: it makes a CA and certificates for mutual TLS on the 9P
// export, for a first setup. The server certificate is valid for the
// names and addresses given; each client certificate's common name is the
// user the server attaches that client as.
func certCmd(args []string) error {
	fl := flag.NewFlagSet("cert", flag.ContinueOnError)
	me := "root"
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	dir := fl.String("dir", "sockfs-certs", "directory to write ca.crt/key, server.crt/key and NAME.crt/key in (existing files are not overwritten)")
	server := fl.String("server", "", "host names or IP addresses the server is reached at, comma-separated (the server certificate's names)")
	clients := fl.String("client", me, "client user names, comma-separated (each certificate's common name is the user it attaches as)")
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: sockfs cert --server HOST[,HOST...] [--client NAME[,...]] [--dir DIR]\n\n"+
			"Make a CA and certificates for sockfs serve --9p-tls and sockfs import --tls.\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return usageError{err}
	}
	if fl.NArg() != 0 || *server == "" {
		fl.Usage()
		return usageError{fmt.Errorf("--server is required")}
	}
	var cl []string
	if *clients != "" {
		cl = strings.Split(*clients, ",")
	}
	if err := p9.MakeCerts(*dir, strings.Split(*server, ","), cl); err != nil {
		return err
	}
	d := *dir
	fmt.Printf("sockfs serve --9p ADDR --9p-tls %s,%s,%s\n", filepath.Join(d, "server.crt"), filepath.Join(d, "server.key"), filepath.Join(d, "ca.crt"))
	for _, c := range cl {
		fmt.Printf("sockfs import --tls %s,%s,%s ADDR DIR    # as %s\n", filepath.Join(d, c+".crt"), filepath.Join(d, c+".key"), filepath.Join(d, "ca.crt"), c)
	}
	if len(cl) > 0 {
		fmt.Fprintf(os.Stderr, "keys are in %s (mode 0600): give each client only its own .crt, .key and ca.crt\n", d)
	}
	return nil
}
