package fs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// testResolver answers on sb's 198.18.0.2:53 until the test ends:
// host.test. has A 198.18.0.77 and MX 10 mail.test.; dual.test. A
// 198.18.0.78 and AAAA fd00:5f::78; v6.test. only AAAA fd00:5f::79; every
// other name does not exist.
func testResolver(t *testing.T, tb *Tree) {
	u := tb.stack.NewUDP()
	if err := u.Bind(netip.MustParseAddrPort("198.18.0.2:53")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; u.Close() })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := u.RecvFrom(ctx, buf)
			if err != nil {
				return
			}
			var q dnsmessage.Message
			if q.Unpack(buf[:n]) != nil || len(q.Questions) != 1 {
				continue
			}
			r := dnsmessage.Message{Header: dnsmessage.Header{ID: q.Header.ID, Response: true}, Questions: q.Questions}
			qq := q.Questions[0]
			hdr := dnsmessage.ResourceHeader{Name: qq.Name, Class: dnsmessage.ClassINET, TTL: 60}
			name := qq.Name.String()
			switch {
			case name == "dual.test." && qq.Type == dnsmessage.TypeA:
				r.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.AResource{A: [4]byte{198, 18, 0, 78}}}}
			case (name == "dual.test." || name == "v6.test.") && qq.Type == dnsmessage.TypeAAAA:
				a := netip.MustParseAddr("fd00:5f::78")
				if name == "v6.test." {
					a = netip.MustParseAddr("fd00:5f::79")
				}
				r.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}}}
			case name == "dual.test." || name == "v6.test.":
				// no record of that type
			case name != "host.test.":
				r.Header.RCode = dnsmessage.RCodeNameError
			case qq.Type == dnsmessage.TypeA:
				r.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.AResource{A: [4]byte{198, 18, 0, 77}}}}
			case qq.Type == dnsmessage.TypeMX:
				r.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.MXResource{Pref: 10, MX: dnsmessage.MustNewName("mail.test.")}}}
			}
			if pkt, err := r.Pack(); err == nil {
				u.SendTo(ctx, pkt, from)
			}
		}
	}()
}

// TestDNSFile: queries through the stack's UDP to a resolver on the other
// stack, answers in Plan 9's form, one per read; cs and connect resolve
// names through it; bad queries are EINVAL, unknown names ENOENT, a
// resolver that does not answer ETIMEDOUT.
func TestDNSFile(t *testing.T) {
	ta, tb := treePair(t)
	testResolver(t, tb)
	tr := New(ta.stack, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DNS: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:53")}})
	query := func(file, q string) ([]string, error) {
		h, err := open(t, tr, 0, syscall.O_RDWR, file)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release()
		if _, err := h.Write(context.Background(), []byte(q), 0); err != nil {
			return nil, err
		}
		var out []string
		buf := make([]byte, 512)
		for {
			n, err := h.Read(context.Background(), buf, 0)
			if err != nil || n == 0 {
				return out, err
			}
			out = append(out, string(buf[:n]))
		}
	}
	for q, want := range map[string]string{
		"host.test":       "host.test ip 198.18.0.77",
		"host.test. ip\n": "host.test ip 198.18.0.77",
		"host.test mx":    "host.test mx 10 mail.test",
	} {
		if got, err := query("dns", q); err != nil || strings.Join(got, "|") != want {
			t.Errorf("dns %q: %q, %v; want %q", q, got, err, want)
		}
	}
	if got, err := query("cs", "tcp!host.test!http"); err != nil || len(got) != 1 || got[0] != "/net/tcp/clone 198.18.0.77!80" {
		t.Errorf("cs: %q, %v", got, err)
	}
	// A name's IPv6 addresses too, after its IPv4 ones, as Plan 9's cs
	// gives every ip of a name.
	for q, want := range map[string]string{
		"tcp!dual.test!80": "/net/tcp/clone 198.18.0.78!80|/net/tcp/clone fd00:5f::78!80",
		"tcp!v6.test!80":   "/net/tcp/clone fd00:5f::79!80",
	} {
		if got, err := query("cs", q); err != nil || strings.Join(got, "|") != want {
			t.Errorf("cs %q: %q, %v; want %q", q, got, err, want)
		}
	}
	for q, want := range map[string]syscall.Errno{
		"": syscall.EINVAL, "host.test frob": syscall.EINVAL, "a b c": syscall.EINVAL,
		"nosuch.test": syscall.ENOENT, "host.test ipv6": syscall.ENOENT,
	} {
		if _, err := query("dns", q); !errors.Is(err, want) {
			t.Errorf("dns %q: %v, want %v", q, err, want)
		}
	}
	// A name the resolver does not know: connect says so, with the
	// resolver's ENOENT (it said "bad ip address syntax", EINVAL). The
	// texts end as ndb/dns's do, which Go's net package on Plan 9 matches
	// (handlePlan9DNSError): a name that does not exist, a name without
	// the record asked for.
	c := clone(t, tr, "tcp")
	if err := c.cmd("connect nosuch.test!80"); !errors.Is(err, syscall.ENOENT) || c.read("err") != `unknown host "nosuch.test": nosuch.test: dns: name does not exist`+"\n" {
		t.Errorf("connect to an unknown name: %v, err file %q", err, c.read("err"))
	}
	for file, q := range map[string]string{"cs": "net!nosuch.test!1", "dns": "nosuch.test"} {
		if _, err := query(file, q); !strings.HasSuffix(ErrText(err), "dns: name does not exist") {
			t.Errorf("%s %q: %q", file, q, ErrText(err))
		}
	}
	if _, err := query("dns", "host.test ipv6"); !strings.HasSuffix(ErrText(err), "dns: resource does not exist; negrcode") {
		t.Errorf("dns for a record the name lacks: %q", ErrText(err))
	}
	// A resolver that does not answer (nothing listens on port 54: the
	// port unreachable makes the try fail at once, or it times out).
	silent := New(ta.stack, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DNS: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:54")}})
	h, _ := open(t, silent, 0, syscall.O_RDWR, "dns")
	defer h.Release()
	if _, err := h.Write(context.Background(), []byte("host.test"), 0); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("silent resolver: %v, want ETIMEDOUT", err)
	}
}
