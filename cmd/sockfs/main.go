// Command sockfs runs the sockfs userspace TCP/IP stack.
//
//	sockfs serve [flags]    run the stack on a TUN device
//
// Run `sockfs serve -h` for the flags.
package main

import (
	"fmt"
	"os"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: sockfs <command> [flags]

commands:
  serve    run the stack on a TUN device (sockfs serve -h for flags)
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
