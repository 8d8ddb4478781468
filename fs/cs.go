package fs

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/net/dns/dnsmessage"
)

// qCs is the cs file's type among the top-level files.
const qCs = 25

// csServices are the service names cs knows besides numbers (Plan 9's
// /lib/ndb/common names the same ports, its own services included).
var csServices = map[string]uint16{
	"echo": 7, "discard": 9, "daytime": 13, "ftp": 21, "ssh": 22, "telnet": 23,
	"smtp": 25, "domain": 53, "dns": 53, "http": 80, "www": 80, "pop3": 110,
	"ntp": 123, "imap": 143, "https": 443, "9fs": 564, "9p": 564, "ticket": 567,
	"iperf3": 5201, "exportfs": 17007, "rexexec": 17009, "ncpu": 17010,
	"cpu": 17013, "rcpu": 17019, "venti": 17034,
}

// Plan 9's texts for a translation that fails, which programs match on
// (Go's net package on Plan 9 looks for these endings): cs's for a service
// and ndb/dns's for a name that does not exist or has no such record.
const (
	errTextService  = "can't translate service"
	errTextNoName   = "dns: name does not exist"
	errTextNoRecord = "dns: resource does not exist; negrcode"
)

// csFile is `cs`, Plan 9's connection server reduced to a file: write a
// dial string `net!host!service` (net tcp, udp or net, meaning tcp; host an
// address, `*`, or a name the daemon resolves; service a number or a
// well-known name), then read the translations, one per read, as
// `<root>/<proto>/clone <addr>!<port>`, where root is where the client
// sees the tree (the FUSE mount point; /net for a 9P client, as Plan 9
// binds it). A bad dial string is EINVAL and is logged. Each open has its
// own translation.
func (t *Tree) csFile() Node {
	return &csNode{t: t}
}

type csNode struct{ t *Tree }

func (f *csNode) Qid() Qid { return Qid{Path: qpath(protoTop, 0, qCs)} }

// Stat: cs is not a stream file, so that it can be seeked: Plan 9's
// clients write a query, seek to 0 and read the answers (csquery; Go's
// net package on Plan 9), and over FUSE a stream file's lseek is ESPIPE.
// The answers ignore the offset: each read gives the next line.
func (f *csNode) Stat() Stat { return Stat{Name: "cs", Mode: 0666} }

func (f *csNode) Open(_ context.Context, req OpenReq) (Handle, error) {
	root := strings.TrimSuffix(req.Root, "/")
	if req.Root == "" {
		root = "/net"
	}
	return &replyHandle{query: func(ctx context.Context, q string) ([]string, error) {
		lines, err := f.t.csTranslate(ctx, root, q)
		if err != nil {
			f.t.log.Warn("cs: can't translate address", "query", q, "err", err)
		}
		return lines, err
	}}, nil
}

// replyHandle is an open cs or dns: a write runs a query (it may block
// while a name is resolved; ctx cancels that), then each read returns
// the next line of its reply; 0 (EOF) when none is left.
type replyHandle struct {
	baseHandle
	query func(ctx context.Context, q string) ([]string, error)
	mu    sync.Mutex
	lines []string
}

func (h *replyHandle) Write(ctx context.Context, p []byte, _ int64) (int, error) {
	lines, err := h.query(ctx, trimCmd(string(p)))
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	h.lines = lines
	h.mu.Unlock()
	return len(p), nil
}

func (h *replyHandle) Read(_ context.Context, p []byte, _ int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.lines) == 0 {
		return 0, nil
	}
	line := h.lines[0]
	h.lines = h.lines[1:]
	return copy(p, line), nil
}

// lookupIP resolves host to its addresses through the stack's own UDP
// (the dns file's resolvers), as Plan 9's cs asks ndb/dns for a name's
// ip attributes: the A records' addresses, then the AAAA records', asked
// for at once. The A query decides (a name that does not exist, no
// resolver answering); a failed AAAA query only leaves out IPv6
// addresses. A tree without resolvers translates no names (resolve's
// ENOENT, "no resolvers"): it used to ask the host's resolver, outside
// the stack, so a test's tree could send a query off the machine.
func (t *Tree) lookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	aaaa := make(chan []dnsmessage.Resource, 1)
	go func() {
		rrs, _ := t.resolve(ctx, host, dnsmessage.TypeAAAA)
		aaaa <- rrs
	}()
	rrs, err := t.resolve(ctx, host, dnsmessage.TypeA)
	rrs6 := <-aaaa
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rr := range append(rrs, rrs6...) {
		switch a := rr.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(a.A))
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(a.AAAA))
		}
	}
	return out, nil
}

// csTranslate translates dial string q into clone paths under root. A
// fourth field (tcp!host!513!r) is passed on after the port, as Plan 9's
// cs does, for connect to read.
func (t *Tree) csTranslate(ctx context.Context, root, q string) ([]string, error) {
	f := strings.Split(q, "!")
	if len(f) < 3 || len(f) > 4 {
		if len(f) == 2 {
			return nil, fmt.Errorf("%s: no service: %s: %w", q, errTextService, syscall.EINVAL)
		}
		return nil, fmt.Errorf("malformed dial string %q: %w", q, syscall.EINVAL)
	}
	rest := ""
	if len(f) == 4 {
		rest = "!" + f[3]
	}
	proto := f[0]
	switch proto {
	case "net":
		proto = "tcp"
	case "tcp", "udp":
	default:
		return nil, fmt.Errorf("unknown network %q: %w", f[0], syscall.EINVAL)
	}
	host, svc := f[1], f[2]
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1] // tcp![fd00::1]!80, as connect takes it
	}
	port, ok := csServices[svc]
	if !ok {
		n, err := strconv.ParseUint(svc, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", svc, errTextService, syscall.EINVAL)
		}
		port = uint16(n)
	}
	var addrs []netip.Addr
	switch {
	case host == "*" || host == "":
		addrs = []netip.Addr{{}}
	case host == "localhost":
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a.Unmap()}
			break
		}
		ips, err := t.lookupIP(ctx, host)
		if err != nil || len(ips) == 0 {
			if ctx.Err() != nil {
				return nil, syscall.EINTR
			}
			if err != nil && Errno(err) != syscall.EINVAL {
				// The resolver's answer says why: "name does not
				// exist" (ENOENT), a timeout (ETIMEDOUT), no resolvers.
				return nil, fmt.Errorf("unknown host %q: %w", host, err)
			}
			return nil, fmt.Errorf("unknown host %q: %s %s: %s: %w", host, host, "ip", errTextNoRecord, syscall.ENOENT)
		}
		for _, a := range ips {
			addrs = append(addrs, a.Unmap())
		}
	}
	var out []string
	for _, a := range addrs {
		if !a.IsValid() {
			out = append(out, fmt.Sprintf("%s/%s/clone %d%s", root, proto, port, rest))
			continue
		}
		out = append(out, fmt.Sprintf("%s/%s/clone %s!%d%s", root, proto, a, port, rest))
	}
	return out, nil
}
