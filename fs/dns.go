package fs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// qDNS is the dns file's type among the top-level files.
const qDNS = 27

// dnsTry is how long one resolver has to answer one query.
const dnsTry = 2 * time.Second

// ResolvConf returns the nameservers of a resolv.conf file (port 53), in
// order; none if the file is missing or lists none.
func ResolvConf(path string) []netip.AddrPort {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.AddrPort
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) >= 2 && w[0] == "nameserver" {
			if a, err := netip.ParseAddr(w[1]); err == nil && a.Unmap().Is4() {
				out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
			}
		}
	}
	return out
}

// dnsTypes are the record types a query may name, by Plan 9's names.
var dnsTypes = map[string]dnsmessage.Type{
	"ip": dnsmessage.TypeA, "ipv6": dnsmessage.TypeAAAA, "cname": dnsmessage.TypeCNAME,
	"mx": dnsmessage.TypeMX, "ns": dnsmessage.TypeNS, "ptr": dnsmessage.TypePTR,
	"txt": dnsmessage.TypeTXT,
}

// dnsFile is `dns`, Plan 9's ndb/dns reduced to a file: write a query
// `name [type]` (type ip, the default, ipv6, cname, mx, ns, ptr or txt; a
// ptr query may name the address, 198.18.0.1 ptr), then read the answers,
// one per read, as `name type value` (Plan 9's ndb form: `example.com ip
// 93.184.216.34`, `example.com mx 10 mail.example.com`); 0 (EOF) when none
// is left. The query goes out through this stack's own UDP to the
// resolvers the tree was given (the host's /etc/resolv.conf or --dns),
// each in turn. A malformed query is EINVAL, a name that does not exist
// ENOENT, no answer from any resolver ETIMEDOUT; the reason is in the
// daemon log. Each open has its own answers.
func (t *Tree) dnsFile() Node {
	return &dnsNode{t: t}
}

type dnsNode struct{ t *Tree }

func (f *dnsNode) Qid() Qid { return Qid{Path: qpath(protoTop, 0, qDNS)} }

// Stat: seekable, as cs (Plan 9's clients seek to 0 before reading).
func (f *dnsNode) Stat() Stat { return Stat{Name: "dns", Mode: 0666} }

func (f *dnsNode) Open(context.Context, OpenReq) (Handle, error) {
	return &replyHandle{query: func(ctx context.Context, q string) ([]string, error) {
		lines, err := f.t.dnsQuery(ctx, q)
		if err != nil {
			f.t.log.Warn("dns query failed", "query", q, "err", err)
		}
		return lines, err
	}}, nil
}

// errNoName is a resolver's NXDOMAIN, as ndb/dns words it.
var errNoName = errors.New(errTextNoName)

// dnsQuery runs a Plan 9 dns query (`name [type]`) and returns the answer
// lines.
func (t *Tree) dnsQuery(ctx context.Context, q string) ([]string, error) {
	f := strings.Fields(q)
	if len(f) < 1 || len(f) > 2 {
		return nil, fmt.Errorf("malformed query %q (want name [type]): %w", q, syscall.EINVAL)
	}
	tname := "ip"
	if len(f) == 2 {
		tname = f[1]
	}
	typ, ok := dnsTypes[tname]
	if !ok {
		return nil, fmt.Errorf("unknown type %q: %w", tname, syscall.EINVAL)
	}
	name := f[0]
	if a, err := netip.ParseAddr(name); err == nil && typ == dnsmessage.TypePTR && a.Is4() {
		b := a.As4()
		name = fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0])
	}
	rrs, err := t.resolve(ctx, name, typ)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if l := dnsLine(rr); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: %s: %w", f[0], tname, errTextNoRecord, syscall.ENOENT)
	}
	return out, nil
}

// dnsLine formats a resource record in Plan 9's ndb form; "" for a type
// it does not show.
func dnsLine(rr dnsmessage.Resource) string {
	name := strings.TrimSuffix(rr.Header.Name.String(), ".")
	switch b := rr.Body.(type) {
	case *dnsmessage.AResource:
		return fmt.Sprintf("%s ip %s", name, netip.AddrFrom4(b.A))
	case *dnsmessage.AAAAResource:
		return fmt.Sprintf("%s ipv6 %s", name, netip.AddrFrom16(b.AAAA))
	case *dnsmessage.CNAMEResource:
		return fmt.Sprintf("%s cname %s", name, strings.TrimSuffix(b.CNAME.String(), "."))
	case *dnsmessage.MXResource:
		return fmt.Sprintf("%s mx %d %s", name, b.Pref, strings.TrimSuffix(b.MX.String(), "."))
	case *dnsmessage.NSResource:
		return fmt.Sprintf("%s ns %s", name, strings.TrimSuffix(b.NS.String(), "."))
	case *dnsmessage.PTRResource:
		return fmt.Sprintf("%s ptr %s", name, strings.TrimSuffix(b.PTR.String(), "."))
	case *dnsmessage.TXTResource:
		return fmt.Sprintf("%s txt %s", name, strconv.Quote(strings.Join(b.TXT, "")))
	}
	return ""
}

// resolve asks the tree's resolvers, in turn, for name's records of typ,
// over this stack's UDP. It returns the answer section.
func (t *Tree) resolve(ctx context.Context, name string, typ dnsmessage.Type) ([]dnsmessage.Resource, error) {
	if len(t.dns) == 0 {
		return nil, fmt.Errorf("no resolvers (none in /etc/resolv.conf, no --dns): %w", syscall.ENOENT)
	}
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	n, err := dnsmessage.NewName(name)
	if err != nil || len(name) < 2 {
		return nil, fmt.Errorf("bad name %q: %w", name, syscall.EINVAL)
	}
	var last error = syscall.ETIMEDOUT
	for _, srv := range t.dns {
		for try := 0; try < 2; try++ {
			rrs, err := t.exchange(ctx, srv, n, typ)
			if err == nil || errors.Is(err, errNoName) {
				if err != nil {
					return nil, fmt.Errorf("%s: %w: %w", strings.TrimSuffix(name, "."), errNoName, syscall.ENOENT)
				}
				return rrs, nil
			}
			if ctx.Err() != nil {
				return nil, syscall.EINTR
			}
			last = fmt.Errorf("resolver %s: %w", srv, err)
		}
	}
	// The errno is ETIMEDOUT whatever the last try's was (its own
	// deadline's EAGAIN, a refusal): no resolver answered.
	return nil, fmt.Errorf("%v (%w)", last, syscall.ETIMEDOUT)
}

// exchange sends one query to srv from a fresh socket of the stack and
// waits dnsTry for its answer.
func (t *Tree) exchange(ctx context.Context, srv netip.AddrPort, n dnsmessage.Name, typ dnsmessage.Type) ([]dnsmessage.Resource, error) {
	id := uint16(time.Now().UnixNano())
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: n, Type: typ, Class: dnsmessage.ClassINET}},
	}
	pkt, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	u := t.stack.NewUDP()
	defer u.Close()
	if err := u.Connect(srv); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dnsTry)
	defer cancel()
	if _, err := u.SendTo(ctx, pkt, netip.AddrPort{}); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		k, _, err := u.RecvFrom(ctx, buf)
		if err != nil {
			return nil, err
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:k]) != nil || m.Header.ID != id || !m.Header.Response {
			continue
		}
		switch m.Header.RCode {
		case dnsmessage.RCodeSuccess:
			return m.Answers, nil
		case dnsmessage.RCodeNameError:
			return nil, errNoName
		}
		return nil, fmt.Errorf("resolver answered %v", m.Header.RCode)
	}
}
