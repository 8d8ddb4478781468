package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"sockfs/netview"
)

// ssStates maps the status file's state names to ss's.
var ssStates = map[string]string{
	"Closed": "UNCONN", "Listen": "LISTEN", "Syn_sent": "SYN-SENT", "Syn_received": "SYN-RECV",
	"Established": "ESTAB", "Finwait1": "FIN-WAIT-1", "Finwait2": "FIN-WAIT-2",
	"Close_wait": "CLOSE-WAIT", "Closing": "CLOSING", "Last_ack": "LAST-ACK", "Time_wait": "TIME-WAIT",
}

// ssState is ss's name for a conversation's state (UDP: UNCONN, or ESTAB
// once connected).
func ssState(c netview.Conv) string {
	if c.Proto == "udp" && c.State == "Open" {
		if c.Remote.Port != 0 {
			return "ESTAB"
		}
		return "UNCONN"
	}
	if s, ok := ssStates[c.State]; ok {
		return s
	}
	return strings.ToUpper(c.State)
}

// parseToolArgs parses fs's flags with at most one positional argument (the
// mount point) anywhere among them; it returns the mount, DefaultMount if
// none was given.
func parseToolArgs(fs *flag.FlagSet, args []string) (string, error) {
	mount, err := parseOneArg(fs, args)
	if err == nil && mount == "" {
		mount = netview.DefaultMount
	}
	return mount, err
}

// parseOneArg parses fs's flags with at most one positional argument
// anywhere among them and returns it ("" if none).
func parseOneArg(fs *flag.FlagSet, args []string) (string, error) {
	mount := ""
	for range 3 { // flags, mount, flags
		if err := fs.Parse(args); err == flag.ErrHelp {
			return "", err // the usage is printed; the command exits 0
		} else if err != nil {
			return "", usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		if mount != "" {
			return "", usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
		}
		mount, args = fs.Arg(0), fs.Args()[1:]
	}
	if fs.NArg() != 0 {
		return "", usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return mount, nil
}

// ssCmd is `sockfs ss [MOUNT] [-state S] [-port P] [-a]`.
func ssCmd(args []string) error { return ssRun(args, os.Stdout) }

func ssRun(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("ss", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockfs ss [MOUNT] [-state S] [-port P] [-a] [-proto tcp|udp]\n\n"+
			"Lists the conversations of a sockfs tree (default %s) like ss -tumi,\nreading only its files.\n\n", netview.DefaultMount)
		fs.PrintDefaults()
	}
	state := fs.String("state", "", "only this state (status name such as Established, or ss name such as estab, listen)")
	port := fs.Int("port", 0, "only conversations with this local or remote port")
	all := fs.Bool("a", false, "also list slots in state Closed (unused or released)")
	proto := fs.String("proto", "", "only tcp or udp")
	mount, err := parseToolArgs(fs, args)
	if err == flag.ErrHelp {
		return nil
	}
	if err != nil {
		return err
	}
	if err := checkSSFilters(*state, *proto, *port); err != nil {
		return err
	}
	if err := netview.CheckMount(mount); err != nil {
		return err
	}
	convs, err := netview.ReadConvs(mount)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, ssHeader)
	for _, c := range convs {
		if !*all && !c.InUse() {
			continue
		}
		if *proto != "" && c.Proto != *proto {
			continue
		}
		if *state != "" && !strings.EqualFold(*state, c.State) && !strings.EqualFold(*state, ssState(c)) {
			continue
		}
		if *port != 0 && int(c.Local.Port) != *port && int(c.Remote.Port) != *port {
			continue
		}
		fmt.Fprintln(w, ssLine(c))
	}
	return nil
}

// checkSSFilters refuses a filter no conversation can match, as ss(8)
// refuses `state bogus` ("wrong state name"): a state that is neither a
// status name nor ss's (UDP's Open included), a protocol other than tcp
// and udp, a port outside 0..65535.
func checkSSFilters(state, proto string, port int) error {
	if state != "" {
		ok := strings.EqualFold(state, "Open")
		for st, ss := range ssStates {
			ok = ok || strings.EqualFold(state, st) || strings.EqualFold(state, ss)
		}
		if !ok {
			return usageError{fmt.Errorf("wrong state name %q (a status name such as Established, or ss's such as estab)", state)}
		}
	}
	if proto != "" && proto != "tcp" && proto != "udp" {
		return usageError{fmt.Errorf("-proto %q: tcp or udp", proto)}
	}
	if port < 0 || port > 65535 {
		return usageError{fmt.Errorf("-port %d outside 0..65535", port)}
	}
	return nil
}

const ssHeader = "Netid State      Conv     Recv-Q   Send-Q   Local:Port             Peer:Port              Details"

// ssLine is one conversation: netid, state, conv, Recv-Q (qin), Send-Q
// (qout), local, peer, then the mem file as it is and, for TCP, cwnd,
// rtt:srtt/rttvar in ms and retrans:in flight/total, as ss -tmi prints
// them.
func ssLine(c netview.Conv) string {
	qin, _ := c.Field("qin")
	qout, _ := c.Field("qout")
	line := fmt.Sprintf("%-5s %-10s %-8s %-8d %-8d %-22s %-22s %s", c.Proto, ssState(c), c.Name(), qin, qout,
		c.Local, c.Remote, c.Mem.Text)
	if c.Proto == "tcp" {
		if v, ok := c.Field("cwnd"); ok {
			line += " cwnd:" + strconv.FormatInt(v, 10)
		}
		srtt, ok1 := c.Field("srtt")
		rttvar, ok2 := c.Field("rttvar")
		if ok1 && ok2 {
			line += fmt.Sprintf(" rtt:%s/%s", usToMs(srtt), usToMs(rttvar))
		}
		if v, ok := c.Field("retrans"); ok {
			out, _ := c.Field("retrans_out") // ss's retrans:in flight/total
			line += " retrans:" + strconv.FormatInt(out, 10) + "/" + strconv.FormatInt(v, 10)
		}
	}
	return line
}

// usToMs formats microseconds as ss does milliseconds (0.123).
func usToMs(us int64) string {
	return strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
}
