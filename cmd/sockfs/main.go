// Command sockfs runs the sockfs userspace TCP/IP stack and its tools.
//
//	sockfs serve [flags]          run the stack on a TUN device, its /net tree
//	                              mounted over FUSE and served over 9P
//	sockfs import ADDR DIR        mount a remote sockfs's tree (9P) at DIR
//	sockfs cert --server HOST     make a CA and certificates for 9P over mutual TLS
//	sockfs ss [MOUNT]             conversations, like ss -tmi
//	sockfs top [MOUNT]            live memory, pressure and drop view
//	sockfs trace [MOUNT] ...      sample a conversation into CSV
//	sockfs plot run.csv -o F      draw a trace as SVG or PNG
//
// Each takes -h for its flags. The tools read only a mount's files.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: sockfs <command> [flags]

commands:
  serve    run the stack on a TUN device (sockfs serve -h for flags)
  import   mount a remote sockfs's tree (9P) at a directory: sockfs import ADDR DIR
  cert     make a CA and certificates for 9P over mutual TLS: sockfs cert --server HOST
  ss       list conversations of a mount like ss -tmi (reads the files only)
  trace    sample a conversation and the memory counters of a mount into CSV
  plot     draw a trace CSV (memory, cwnd, throughput) as SVG or PNG
  top      live view of a mount's memory, pressure, drops and busiest conversations
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "ss":
		err = ssCmd(os.Args[2:])
	case "trace":
		err = traceCmd(os.Args[2:])
	case "plot":
		err = plotCmd(os.Args[2:])
	case "top":
		err = topCmd(os.Args[2:])
	case "import":
		os.Exit(runImport(os.Args[2:]))
	case "cert":
		err = certCmd(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "sockfs: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sockfs %s: %v\n", os.Args[1], err)
		os.Exit(exitCode(err))
	}
}
