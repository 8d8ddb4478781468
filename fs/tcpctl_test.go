package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/memctl"
	"sockfs/netstack"
	"sockfs/netstack/clock"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"sockfs/netview"
)

// treePair is two stacks, A 198.18.0.1 and B 198.18.0.2, joined by an
// in-memory pipe on a real clock, each with its tree.
func treePair(t *testing.T) (ta, tb *Tree) {
	t.Helper()
	clk := clock.NewReal()
	sa := netstack.New(netstack.Options{Clock: clk, Seed: 1})
	sb := netstack.New(netstack.Options{Clock: clk, Seed: 2})
	t.Cleanup(func() { sa.Close(); sb.Close(); clk.Close() })
	pa, pb := link.NewPipe(clk, 0, impair.Config{}, impair.Config{}, 1)
	da, _ := sa.AddDevice(pa)
	db, _ := sb.AddDevice(pb)
	sa.AddAddress(da, netip.MustParsePrefix("198.18.0.1/24"))
	sb.AddAddress(db, netip.MustParsePrefix("198.18.0.2/24"))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(sa, Options{Logger: log}), New(sb, Options{Logger: log})
}

// conv is an open conversation of a test: its ctl handle and number.
type conv struct {
	t     *testing.T
	tr    *Tree
	ctl   Handle
	n     string
	proto string // "" = tcp
}

func (c *conv) dir() string {
	if c.proto == "" {
		return "tcp"
	}
	return c.proto
}

func clone(t *testing.T, tr *Tree, proto string) *conv {
	t.Helper()
	h, err := open(t, tr, 0, syscall.O_RDWR, proto, "clone")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Release)
	buf := make([]byte, 16)
	n, _ := h.Read(context.Background(), buf, 0)
	return &conv{t: t, tr: tr, ctl: h, n: string(buf[:n]), proto: proto}
}

func (c *conv) cmd(text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.ctl.Write(ctx, []byte(text+"\n"), 0)
	return err
}

func (c *conv) must(text string) {
	c.t.Helper()
	if err := c.cmd(text); err != nil {
		c.t.Fatalf("%q: %v (err file %q)", text, err, c.read("err"))
	}
}

// read reads a whole small file of the conversation.
func (c *conv) read(name string) string {
	c.t.Helper()
	h, err := open(c.t, c.tr, 0, syscall.O_RDONLY, c.dir(), c.n, name)
	if err != nil {
		c.t.Fatal(err)
	}
	defer h.Release()
	buf := make([]byte, 4096)
	n, _ := h.Read(context.Background(), buf, 0)
	return string(buf[:n])
}

func (c *conv) state() string { return strings.Fields(c.read("status"))[0] }

func (c *conv) data() Handle {
	c.t.Helper()
	h, err := open(c.t, c.tr, 0, syscall.O_RDWR, c.dir(), c.n, "data")
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(h.Release)
	return h
}

// accept opens listen on c and returns the call.
func (c *conv) accept() *conv {
	c.t.Helper()
	h, err := open(c.t, c.tr, 0, syscall.O_RDWR, c.dir(), c.n, "listen")
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(h.Release)
	buf := make([]byte, 16)
	n, _ := h.Read(context.Background(), buf, 0)
	return &conv{t: c.t, tr: c.tr, ctl: h, n: string(buf[:n]), proto: c.proto}
}

func readTimeout(h Handle, p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.Read(ctx, p, 0)
}

// waitState polls the status file until its first word is want.
func (c *conv) waitState(want string) {
	c.t.Helper()
	for i := 0; i < 200; i++ {
		if c.state() == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("state %s, want %s", c.state(), want)
}

// connected returns an established pair: a on A connected to b on B.
func connected(t *testing.T, ta, tb *Tree, port string) (a, b *conv) {
	t.Helper()
	srv := clone(t, tb, "tcp")
	srv.must("announce " + port)
	a = clone(t, ta, "tcp")
	a.must("connect 198.18.0.2!" + port)
	return a, srv.accept()
}

// TestTCPCtlOptions: every option verb is accepted on an established
// conversation, and the buffer ones show in mem.
func TestTCPCtlOptions(t *testing.T) {
	ta, tb := treePair(t)
	a, _ := connected(t, ta, tb, "8001")
	if a.state() != "Established" {
		t.Fatalf("state %s", a.state())
	}
	for _, c := range []string{"nodelay on", "nodelay off", "cork on", "cork off",
		"keepalive", "keepalive 5000", "notsent_lowat 16384", "ttl 64", "tos 0",
		"linger 5", "linger off", "rcvbuf 65536", "sndbuf 32768"} {
		a.must(c)
	}
	if m := a.read("mem"); !strings.Contains(m, ",rb131072,") || !strings.Contains(m, ",tb65536,") {
		t.Fatalf("mem after rcvbuf/sndbuf: %s", m)
	}
	if got := a.read("rcvbuf"); got != "131072\n" {
		t.Fatalf("rcvbuf file %q", got)
	}
	if err := a.cmd("frobnicate"); !errors.Is(err, syscall.EINVAL) || a.read("err") != "unknown control request\n" {
		t.Fatalf("unknown verb: %v, err file %q", err, a.read("err"))
	}
}

// TestBufKnobsUnsigned: rcvbuf and sndbuf take setsockopt's int, compared
// as unsigned with rmem_max / wmem_max: -1 (or any negative value) is the
// maximum, doubled, as `echo -1 > rcvbuf` gives 8388608 on Linux with the
// default 4194304; a value outside an int is EINVAL, with the reason in
// err, and changes nothing. Both files and the ctl verbs, TCP and UDP.
func TestBufKnobsUnsigned(t *testing.T) {
	ta, _ := treePair(t)
	sys := ta.stack.Net().Sysctls
	for _, proto := range []string{"tcp", "udp"} {
		c := clone(t, ta, proto)
		write := func(file, text string) error {
			h, err := open(t, ta, 0, syscall.O_WRONLY, proto, c.n, file)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Release()
			_, err = h.Write(context.Background(), []byte(text+"\n"), 0)
			return err
		}
		read := func(file string) string {
			h, _ := open(t, ta, 0, syscall.O_RDONLY, proto, c.n, file)
			defer h.Release()
			buf := make([]byte, 256)
			n, _ := h.Read(context.Background(), buf, 0)
			return string(buf[:n])
		}
		for _, k := range []struct{ file, text, want string }{
			{"rcvbuf", "-1", strconv.Itoa(2*sys.RmemMax()) + "\n"},
			{"sndbuf", "-1", strconv.Itoa(2*sys.WmemMax()) + "\n"},
			{"rcvbuf", "65536", "131072\n"},
			{"rcvbuf", "-2147483648", strconv.Itoa(2*sys.RmemMax()) + "\n"},
		} {
			if err := write(k.file, k.text); err != nil || read(k.file) != k.want {
				t.Errorf("%s: %s %s: %v, reads %q, want %q", proto, k.file, k.text, err, read(k.file), k.want)
			}
		}
		if err := c.cmd("sndbuf -5"); err != nil || read("sndbuf") != strconv.Itoa(2*sys.WmemMax())+"\n" {
			t.Errorf("%s: ctl sndbuf -5: %v, sndbuf %q", proto, err, read("sndbuf"))
		}
		before := read("rcvbuf")
		for text, why := range map[string]string{"2147483648": "out of the range of an int",
			"-2147483649": "out of the range of an int", "1e6": "not a decimal integer", "": "not a decimal integer"} {
			if err := write("rcvbuf", text); !errors.Is(err, syscall.EINVAL) || read("rcvbuf") != before {
				t.Errorf("%s: rcvbuf %q: %v, rcvbuf %q", proto, text, err, read("rcvbuf"))
			}
			if want := fmt.Sprintf("bad rcvbuf value %q (%s)\n", text, why); read("err") != want {
				t.Errorf("%s: rcvbuf %q: err %q, want %q", proto, text, read("err"), want)
			}
		}
	}
}

// TestTCPCtlBindAnnounceBacklog: bind fixes the local port a connect uses;
// announce 0 picks a port; backlog is accepted before announce.
func TestTCPCtlBindAnnounceBacklog(t *testing.T) {
	ta, tb := treePair(t)
	srv := clone(t, tb, "tcp")
	srv.must("backlog 2")
	srv.must("announce 0")
	local := srv.read("local")
	port := strings.TrimSpace(local[strings.LastIndex(local, "!")+1:])
	if port == "0" || srv.state() != "Listen" {
		t.Fatalf("announce 0: local %q state %s", local, srv.state())
	}
	a := clone(t, ta, "tcp")
	a.must("bind 5555")
	a.must("connect 198.18.0.2!" + port)
	if got := a.read("local"); got != "198.18.0.1!5555\n" {
		t.Fatalf("local after bind: %q", got)
	}
	if got := a.read("remote"); got != "198.18.0.2!"+port+"\n" {
		t.Fatalf("remote: %q", got)
	}
	b := srv.accept()
	if got := b.read("remote"); got != "198.18.0.1!5555\n" {
		t.Fatalf("call's remote: %q", got)
	}
}

// TestTCPCtlShutdownAndClose: `shutdown wr` and `close` send FIN (the
// peer reads EOF) while the files stay open.
func TestTCPCtlShutdownAndClose(t *testing.T) {
	ta, tb := treePair(t)
	for _, verb := range []string{"shutdown wr", "close"} {
		port := map[string]string{"shutdown wr": "8002", "close": "8003"}[verb]
		a, b := connected(t, ta, tb, port)
		ad, bd := a.data(), b.data()
		if _, err := ad.Write(context.Background(), []byte("bye"), 0); err != nil {
			t.Fatal(err)
		}
		a.must(verb)
		buf := make([]byte, 100)
		n, err := readTimeout(bd, buf)
		if err != nil || string(buf[:n]) != "bye" {
			t.Fatalf("%s: peer read %q %v", verb, buf[:n], err)
		}
		if n, err := readTimeout(bd, buf); n != 0 || err != nil {
			t.Fatalf("%s: peer read %d %v, want EOF", verb, n, err)
		}
		b.waitState("Close_wait")
		if verb == "shutdown wr" {
			// The read side still works.
			bd.Write(context.Background(), []byte("late"), 0)
			n, err := readTimeout(ad, buf)
			if err != nil || string(buf[:n]) != "late" {
				t.Fatalf("after shutdown wr: read %q %v", buf[:n], err)
			}
		}
	}
	a := clone(t, ta, "tcp")
	if err := a.cmd("shutdown sideways"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("bad shutdown: %v", err)
	}
}

// TestTCPCtlHangup: hangup resets the connection: the peer's read gets
// ECONNRESET and its err file says "connection reset"; a write on the
// hung-up side fails.
func TestTCPCtlHangup(t *testing.T) {
	ta, tb := treePair(t)
	a, b := connected(t, ta, tb, "8004")
	ad, bd := a.data(), b.data()
	a.must("hangup")
	buf := make([]byte, 10)
	if _, err := readTimeout(bd, buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read after hangup: %v, want ECONNRESET", err)
	}
	if got := b.read("err"); got != "connection reset\n" {
		t.Fatalf("peer err file %q", got)
	}
	if _, err := ad.Write(context.Background(), []byte("x"), 0); !errors.Is(err, syscall.EPIPE) || a.read("err") != "i/o on hungup channel\n" {
		t.Fatalf("write after hangup: %v, err file %q; want EPIPE, i/o on hungup channel", err, a.read("err"))
	}
	if a.state() != "Closed" {
		t.Fatalf("state after hangup %s", a.state())
	}
}

// TestTCPLingerZeroReleaseResets: with `linger 0` the last close resets
// instead of sending FIN.
func TestTCPLingerZeroReleaseResets(t *testing.T) {
	ta, tb := treePair(t)
	srv := clone(t, tb, "tcp")
	srv.must("announce 8005")
	h, _ := open(t, ta, 0, syscall.O_RDWR, "tcp", "clone")
	if _, err := h.Write(context.Background(), []byte("connect 198.18.0.2!8005"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(context.Background(), []byte("linger 0"), 0); err != nil {
		t.Fatal(err)
	}
	b := srv.accept()
	bd := b.data()
	h.Release()
	buf := make([]byte, 10)
	if _, err := readTimeout(bd, buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read after linger-0 close: %v, want ECONNRESET", err)
	}
}

// TestTCPErrnos: the Errors section's mapping, with the text in err.
func TestTCPErrnos(t *testing.T) {
	ta, tb := treePair(t)
	a := clone(t, ta, "tcp")
	if err := a.cmd("connect 198.18.0.2!9"); !errors.Is(err, syscall.ECONNREFUSED) || a.read("err") != "connection refused\n" {
		t.Fatalf("refused: %v %q", err, a.read("err"))
	}
	c := clone(t, ta, "tcp")
	if err := c.cmd("connect 10.9.9.9!80"); !(errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)) || c.read("err") != "no route\n" {
		t.Fatalf("no route: %v %q", err, c.read("err"))
	}
	s1 := clone(t, tb, "tcp")
	s1.must("announce 8006")
	s2 := clone(t, tb, "tcp")
	if err := s2.cmd("announce 8006"); !errors.Is(err, syscall.EADDRINUSE) || s2.read("err") != "address in use\n" {
		t.Fatalf("in use: %v %q", err, s2.read("err"))
	}
	// Another uid.
	if _, err := open(t, tb, 1000, syscall.O_RDWR, "tcp", s1.n, "ctl"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("other uid: %v", err)
	}
}

// TestCs: dial strings translate to clone paths, Plan 9 style.
func TestCs(t *testing.T) {
	ta, _ := treePair(t)
	for q, want := range map[string]string{
		"tcp!198.18.0.1!80":    "/net/tcp/clone 198.18.0.1!80",
		"net!198.18.0.2!http":  "/net/tcp/clone 198.18.0.2!80",
		"udp!localhost!9":      "/net/udp/clone 127.0.0.1!9",
		"tcp!*!564\n":          "/net/tcp/clone 564",
		"tcp!fd00:5f::2!80":    "/net/tcp/clone fd00:5f::2!80",
		"tcp![fd00:5f::2]!80":  "/net/tcp/clone fd00:5f::2!80",    // as connect takes it (it was a name to look up)
		"tcp!198.18.0.1!513!r": "/net/tcp/clone 198.18.0.1!513!r", // the fourth field passed on, as Plan 9's cs does
		"tcp!198.18.0.1!rcpu":  "/net/tcp/clone 198.18.0.1!17019",
	} {
		h, err := open(t, ta, 0, syscall.O_RDWR, "cs")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Write(context.Background(), []byte(q), 0); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		buf := make([]byte, 200)
		n, _ := h.Read(context.Background(), buf, 0)
		if string(buf[:n]) != want {
			t.Errorf("cs %q = %q, want %q", q, buf[:n], want)
		}
		if n, _ := h.Read(context.Background(), buf, 0); n != 0 {
			t.Errorf("cs %q: second read %q, want EOF", q, buf[:n])
		}
		h.Release()
	}
	// Paths as the client sees the tree: under its mount point.
	h, err := walk(t, ta.Root(), "cs").(File).Open(context.Background(), OpenReq{Flags: syscall.O_RDWR, Root: "/mnt/net/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(context.Background(), []byte("udp!198.18.0.2!9"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	if n, _ := h.Read(context.Background(), buf, 0); string(buf[:n]) != "/mnt/net/udp/clone 198.18.0.2!9" {
		t.Errorf("cs under /mnt/net: %q", buf[:n])
	}
	h.Release()
	for _, q := range []string{"tcp", "il!1.2.3.4!80", "tcp!1.2.3.4!nosuchservice", "tcp!1.2.3.4!99999", "a!b!c!d", "tcp!1.2.3.4", "tcp!1!2!3!4"} {
		h, _ := open(t, ta, 0, syscall.O_RDWR, "cs")
		_, err := h.Write(context.Background(), []byte(q), 0)
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("cs %q: %v, want EINVAL", q, err)
		}
		// A service that does not translate (or none): the text ends
		// as Plan 9's cs's, which Go's net package on Plan 9 matches.
		if (strings.Contains(q, "service") || q == "tcp!1.2.3.4") && !strings.HasSuffix(ErrText(err), "can't translate service") {
			t.Errorf("cs %q: %q, want Plan 9's \"can't translate service\"", q, ErrText(err))
		}
		h.Release()
	}
}

// readIpifc reads the file name of interface 0.
func readIpifc(t *testing.T, tr *Tree, name string) string {
	t.Helper()
	h, err := open(t, tr, 0, syscall.O_RDONLY, "ipifc", "0", name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	buf := make([]byte, 4096)
	n, _ := h.Read(context.Background(), buf, 0)
	return string(buf[:n])
}

// TestIpifcStats: the stats file shows the device's counters under
// rtnl_link_stats64's names, rx_frame_errors (a TUN's malformed
// virtio_net_hdr) included.
func TestIpifcStats(t *testing.T) {
	ta, _ := treePair(t)
	if s := readIpifc(t, ta, "stats"); !strings.Contains(s, "\nrx_frame_errors: 0\n") || !strings.HasPrefix(s, "rx_packets: ") {
		t.Fatalf("stats:\n%s", s)
	}
	ta.stack.Devices()[0].Device().Stats().RxFrameErrors.Add(3)
	if s := readIpifc(t, ta, "stats"); !strings.Contains(s, "\nrx_frame_errors: 3\n") {
		t.Errorf("stats after 3 frame errors:\n%s", s)
	}
}

// TestIpifcCtl: `add addr mask` and `add addr/bits` add addresses (shown in
// status); malformed requests fail and change nothing (TestIpifcCtlPlan9
// has the other verbs).
func TestIpifcCtl(t *testing.T) {
	ta, _ := treePair(t)
	write := func(text string) error {
		h, err := open(t, ta, 0, syscall.O_WRONLY, "ipifc", "0", "ctl")
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release()
		_, err = h.Write(context.Background(), []byte(text), 0)
		return err
	}
	status := func() string { return readIpifc(t, ta, "status") }
	if err := write("add 198.19.0.1 255.255.255.0\n"); err != nil {
		t.Fatal(err)
	}
	if err := write("add 198.19.1.1/16"); err != nil {
		t.Fatal(err)
	}
	before := status()
	for _, w := range []string{ifcLine("198.19.0.1", "/120", "198.19.0.0"), ifcLine("198.19.1.1", "/112", "198.19.0.0")} {
		if !strings.Contains(before, w) {
			t.Fatalf("status lacks %q:\n%s", w, before)
		}
	}
	for text, want := range map[string]syscall.Errno{
		"add": syscall.EINVAL, "add 1.2.3": syscall.EINVAL, "add 198.19.2.1 255.0.255.0": syscall.EINVAL,
		"add 198.19.0.1/24": syscall.EINVAL, "frob": syscall.EINVAL, "mtu 1": syscall.EINVAL,
		"remove 198.19.9.1 255.255.255.0": syscall.EINVAL,
	} {
		if err := write(text); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", text, err, want)
		}
	}
	if after := status(); after != before {
		t.Fatalf("refused writes changed status:\n%s\n%s", before, after)
	}
	if _, err := open(t, ta, 1000, syscall.O_WRONLY, "ipifc", "0", "ctl"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("non-root write open: %v", err)
	}
}

// TestConnectByName: connect takes names as cs translates them (here
// localhost and a service name): the stack's loopback answers.
func TestConnectByName(t *testing.T) {
	ta := loopbackTree(t)
	srv := clone(t, ta, "tcp")
	srv.must("announce 80")
	a := clone(t, ta, "tcp")
	a.must("connect localhost!http")
	if got := a.read("remote"); got != "127.0.0.1!80\n" {
		t.Fatalf("remote %q", got)
	}
	b := clone(t, ta, "tcp")
	if err := b.cmd("connect localhost!nosuchservice"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("unknown service: %v", err)
	}
}

// TestTCPStatusCongestion: status names the algorithm and, for BBR, its
// model as ss -i shows it (mode, bw, min_rtt, gains) and the pacing rate,
// all name value pairs that netview parses; `congestion bbr` switches an
// established conversation, which starts in STARTUP with min_rtt from the
// connection's.
func TestTCPStatusCongestion(t *testing.T) {
	ta, tb := treePair(t)
	a, _ := connected(t, ta, tb, "8002")
	if st := a.read("status"); !strings.Contains(st, " congestion cubic") || strings.Contains(st, "bbr_") {
		t.Fatalf("cubic status %q", st)
	}
	a.must("congestion bbr")
	st := a.read("status")
	for _, w := range []string{" congestion bbr", " bbr_mode STARTUP", " bbr_bw ", " bbr_mrtt ",
		" bbr_pacing_gain 0 bbr_cwnd_gain 0", " pacing_rate "} { // gains: set from the first ACK on (bbr_main)
		if !strings.Contains(st, w) {
			t.Errorf("bbr status lacks %q: %q", w, st)
		}
	}
	if _, _, err := netview.ParseStatus(st); err != nil {
		t.Errorf("status does not parse: %v", err)
	}
}

// TestTCPStatusDCTCP: with tcp_congestion_control dctcp on both sides the
// connection negotiates ECN (DCTCP asks whatever tcp_ecn says) and status
// shows `ecn on` and DCTCP's state (alpha starts at 1024); `congestion
// dctcp` on a connection without ECN falls back to dctcp-reno, as Linux's
// dctcp_init does.
func TestTCPStatusDCTCP(t *testing.T) {
	ta, tb := treePair(t)
	for _, tr := range []*Tree{ta, tb} {
		if _, err := sysWrite(t, tr, "dctcp\n", 0, "sys", "ipv4", "tcp_congestion_control"); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := connected(t, ta, tb, "8003")
	st := a.read("status")
	for _, w := range []string{" congestion dctcp ", " ecn on", " dctcp_ce_state 0 dctcp_alpha 1024 "} {
		if !strings.Contains(st, w) {
			t.Errorf("dctcp status lacks %q: %q", w, st)
		}
	}
	if _, _, err := netview.ParseStatus(st); err != nil {
		t.Errorf("status does not parse: %v", err)
	}
	for _, tr := range []*Tree{ta, tb} {
		if _, err := sysWrite(t, tr, "cubic\n", 0, "sys", "ipv4", "tcp_congestion_control"); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := connected(t, ta, tb, "8004")
	c.must("congestion dctcp")
	if st := c.read("status"); !strings.Contains(st, " congestion dctcp-reno ") || strings.Contains(st, " ecn on") {
		t.Errorf("dctcp without ECN: %q", st)
	}
}

// TestTCPRcvlowat: `rcvlowat N` grows rcvbuf to hold a window of N bytes
// (tcp_set_rcvlowat) and a blocked `data` read then waits for N bytes
// queued: the peer's 3 bytes are not returned until 2 more arrive.
func TestTCPRcvlowat(t *testing.T) {
	ta, tb := treePair(t)
	a, b := connected(t, ta, tb, "8005")
	a.must("rcvlowat 100000")
	if rb := strings.TrimSpace(a.read("rcvbuf")); rb != "200000" {
		t.Fatalf("rcvbuf after rcvlowat 100000: %s, want 200000", rb)
	}
	a.must("rcvlowat 5")
	ad, bd := a.data(), b.data()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 10)
		n, _ := ad.Read(context.Background(), buf, 0)
		got <- string(buf[:n])
	}()
	time.Sleep(100 * time.Millisecond) // the read blocks on an empty queue first
	bd.Write(context.Background(), []byte("abc"), 0)
	select {
	case s := <-got:
		t.Fatalf("read returned %q with 3 of 5 bytes", s)
	case <-time.After(200 * time.Millisecond):
	}
	bd.Write(context.Background(), []byte("de"), 0)
	select {
	case s := <-got:
		if s != "abcde" {
			t.Fatalf("read %q, want abcde", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read not woken at 5 bytes")
	}
}

// TestTCPStatusCAStateMinRTT: status gives tcpi_ca_state by name and
// tcpi_min_rtt in microseconds, the handshake's RTT sample on a fresh
// connection (at most srtt, which starts at that sample).
func TestTCPStatusCAStateMinRTT(t *testing.T) {
	ta, tb := treePair(t)
	a, _ := connected(t, ta, tb, "8003")
	st := a.read("status")
	_, s, err := netview.ParseStatus(st)
	if err != nil {
		t.Fatalf("status does not parse: %v", err)
	}
	ca := ""
	for i, n := range s.Names {
		if n == "ca_state" {
			ca = s.Values[i]
		}
	}
	if ca != "Open" {
		t.Errorf("ca_state %q on a fresh connection: %q", ca, st)
	}
	minRTT, ok1 := s.Get("min_rtt")
	srtt, ok2 := s.Get("srtt")
	if !ok1 || !ok2 || minRTT <= 0 || minRTT > srtt {
		t.Errorf("min_rtt %d srtt %d: %q", minRTT, srtt, st)
	}
}

// TestConnectAgainAfterRefused: a conversation whose connect was refused
// connects again on the same ctl and carries data both ways; its first
// write used to fail with EPIPE (the socket stayed shut down by the
// failure) while the peer held an established connection.
func TestConnectAgainAfterRefused(t *testing.T) {
	ta, tb := treePair(t)
	srv := clone(t, tb, "tcp")
	srv.must("announce 8011")
	a := clone(t, ta, "tcp")
	if err := a.cmd("connect 198.18.0.2!8012"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to a closed port: %v", err)
	}
	a.must("connect 198.18.0.2!8011")
	b := srv.accept()
	ad, bd := a.data(), b.data()
	if _, err := ad.Write(context.Background(), []byte("ping"), 0); err != nil {
		t.Fatalf("write after reconnecting: %v (err file %q)", err, a.read("err"))
	}
	buf := make([]byte, 16)
	if n, err := readTimeout(bd, buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if _, err := bd.Write(context.Background(), []byte("pong"), 0); err != nil {
		t.Fatal(err)
	}
	if n, err := readTimeout(ad, buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// TestSockstatInuseCountsHashedSockets: sockstat's TCP inuse and
// protocols' sockets column count what the stack's lookup tables hold
// (sock_prot_inuse_get), not the conversations with open files: a
// listener's calls not yet accepted count, a conversation whose connect
// was refused does not, though its ctl is open. They used to count open
// conversations with a local port.
func TestSockstatInuseCountsHashedSockets(t *testing.T) {
	ta, tb := treePair(t)
	srv := clone(t, tb, "tcp")
	srv.must("announce 8021")
	for i := 0; i < 3; i++ {
		clone(t, ta, "tcp").must("connect 198.18.0.2!8021")
	}
	refused := clone(t, ta, "tcp")
	if err := refused.cmd("connect 198.18.0.2!8022"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to a closed port: %v", err)
	}
	inuse := func(tr *Tree) string {
		for _, l := range strings.Split(sysRead(t, tr, "sockstat"), "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[0] == "TCP:" {
				return f[2]
			}
		}
		return ""
	}
	// B: the listener and its three queued calls; A: the three callers.
	var got string
	for i := 0; i < 100; i++ { // the callers' final ACKs reach B
		if got = inuse(tb); got == "4" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != "4" || inuse(ta) != "3" {
		t.Fatalf("TCP inuse: B %s (want 4: a listener, 3 calls), A %s (want 3)", got, inuse(ta))
	}
	if p := strings.Fields(strings.Split(sysRead(t, tb, "protocols"), "\n")[1]); p[0] != "TCP" || p[1] != "4" {
		t.Fatalf("protocols TCP row %v, want 4 sockets", p)
	}
}

// TestCtlErrorTexts: an unknown congestion control's err names the file
// that lists the available ones (it read just "congestion nope").
func TestCtlErrorTexts(t *testing.T) {
	ta, _ := treePair(t)
	a := clone(t, ta, "tcp")
	want := `no congestion control "nope" (tcp_available_congestion_control lists them)`
	if err := a.cmd("congestion nope"); !errors.Is(err, syscall.ENOENT) || a.read("err") != want+"\n" {
		t.Errorf("congestion nope: %v, err file %q; want ENOENT and %q", err, a.read("err"), want)
	}
}

// TestConnectAfterHangup: a hung-up conversation is not Idle, so connect
// and announce say "connection in use" (EISCONN), as Plan 9 refuses them;
// they said "bad file descriptor".
func TestConnectAfterHangup(t *testing.T) {
	ta, tb := treePair(t)
	a, _ := connected(t, ta, tb, "8031")
	a.must("hangup")
	for _, cmd := range []string{"connect 198.18.0.2!8031", "announce 8032"} {
		if err := a.cmd(cmd); !errors.Is(err, syscall.EISCONN) || a.read("err") != "connection in use\n" {
			t.Errorf("%q after hangup: %v, err file %q", cmd, err, a.read("err"))
		}
	}
}

// TestNoResolversNoLookup: a tree without resolvers translates no names:
// cs answers ENOENT ("no resolvers") without asking anyone. It asked the
// host's resolver, outside the stack (from a test: off the machine).
func TestNoResolversNoLookup(t *testing.T) {
	ta, _ := treePair(t)
	a := clone(t, ta, "tcp")
	if err := a.cmd("connect nosuchhost!80"); !errors.Is(err, syscall.ENOENT) ||
		a.read("err") != `unknown host "nosuchhost": no resolvers (none in /etc/resolv.conf, no --dns)`+"\n" {
		t.Fatalf("connect to a name without resolvers: %v, err file %q", err, a.read("err"))
	}
}

// TestConnectToAnyIsSelf: a connect to 0.0.0.0 reaches this host, as
// Linux routes daddr 0 to the loopback address (ip_route_output; UDP the
// same); it sent a datagram addressed to 0.0.0.0 out of the TUN and
// remote read "::!9".
func TestConnectToAnyIsSelf(t *testing.T) {
	ta := loopbackTree(t)
	srv := clone(t, ta, "tcp")
	srv.must("announce 8041")
	a := clone(t, ta, "tcp")
	a.must("connect 0.0.0.0!8041")
	if got := a.read("remote"); got != "127.0.0.1!8041\n" {
		t.Fatalf("tcp remote %q, want 127.0.0.1!8041", got)
	}
	u := clone(t, ta, "udp")
	u.must("connect 0.0.0.0!9")
	if got := u.read("remote"); got != "127.0.0.1!9\n" {
		t.Fatalf("udp remote %q, want 127.0.0.1!9", got)
	}
}

// loopbackTree is the first tree of a pair, its stack given a loopback
// device.
func loopbackTree(t *testing.T) *Tree {
	t.Helper()
	ta, _ := treePair(t)
	if _, err := ta.stack.AddDevice(link.NewLoopback(ta.stack.Clock(), link.DefaultLoopbackMTU)); err != nil {
		t.Fatal(err) // a loopback device gets 127.0.0.1/8 and ::1
	}
	return ta
}

// TestLocalOfWildcards: `local` of an IPv4-only wildcard announce reads
// 0.0.0.0!P, as Plan 9's eipfmt prints its v4-mapped zero address; the
// dual-stack wildcard (`*`) reads ::!P. Both read ::!P before.
func TestLocalOfWildcards(t *testing.T) {
	ta, _ := treePair(t)
	for _, k := range []struct{ announce, want string }{
		{"0.0.0.0!8051", "0.0.0.0!8051\n"},
		{"*!8052", "::!8052\n"},
	} {
		c := clone(t, ta, "tcp")
		c.must("announce " + k.announce)
		if got := c.read("local"); got != k.want {
			t.Errorf("announce %s: local %q, want %q", k.announce, got, k.want)
		}
	}
}

// TestConnectRestrictedPort: `connect addr!port!r` takes its local port
// from Plan 9's restricted range, 600 to 1023 in turn (setlport), passing
// over a port another conversation holds; without !r the port stays
// ephemeral, and UDP follows the same rule.
func TestConnectRestrictedPort(t *testing.T) {
	ta, tb := treePair(t)
	srv := clone(t, tb, "tcp")
	srv.must("announce 8013")
	lport := func(c *conv) int {
		_, p, _ := strings.Cut(strings.TrimSpace(c.read("local")), "!")
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("local %q", c.read("local"))
		}
		return n
	}
	a := clone(t, ta, "tcp")
	a.must("connect 198.18.0.2!8013!r")
	if p := lport(a); p != 600 {
		t.Fatalf("first restricted port %d, want 600", p)
	}
	holder := clone(t, ta, "tcp")
	holder.must("announce 601") // the next in turn is taken
	b := clone(t, ta, "tcp")
	b.must("connect 198.18.0.2!8013 0!r") // !r on the local port asks the same
	if p := lport(b); p != 602 {
		t.Fatalf("restricted port beside a held 601: %d, want 602", p)
	}
	plain := clone(t, ta, "tcp")
	plain.must("connect 198.18.0.2!8013")
	if p := lport(plain); p < 1024 {
		t.Fatalf("a connect without !r took port %d", p)
	}
	u := clone(t, ta, "udp")
	u.must("connect 198.18.0.2!53!r")
	if p := lport(u); p < rportLo || p >= rportHi {
		t.Fatalf("UDP restricted port %d", p)
	}
}

// TestDataLengthIsQueued: data's stat length is the bytes a read would
// get now, as Plan 9's ip3gen reports qlen of the read queue: TCP's unread
// bytes (none for a listener with calls waiting), every queued UDP
// datagram's bytes; a read takes them off. It was always 0.
func TestDataLengthIsQueued(t *testing.T) {
	ta, tb := treePair(t)
	length := func(c *conv) int64 {
		return walk(t, c.tr.Root(), c.dir(), c.n, "data").Stat().Length
	}
	waitLength := func(c *conv, want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for length(c) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s/%s/data length %d, want %d", c.dir(), c.n, length(c), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	srv := clone(t, tb, "tcp")
	srv.must("announce 8014")
	a := clone(t, ta, "tcp")
	a.must("connect 198.18.0.2!8014")
	waitLength(srv, 0) // a call waits: not data
	b := srv.accept()
	if _, err := a.data().Write(context.Background(), []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	waitLength(b, 5)
	bd := b.data()
	if n, err := readTimeout(bd, make([]byte, 2)); n != 2 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	waitLength(b, 3)

	u := clone(t, tb, "udp")
	u.must("announce 8015")
	w := clone(t, ta, "udp")
	w.must("connect 198.18.0.2!8015")
	wd := w.data()
	for _, d := range []string{"abc", "defg"} {
		if _, err := wd.Write(context.Background(), []byte(d), 0); err != nil {
			t.Fatal(err)
		}
	}
	waitLength(u, 7)
	if n, err := readTimeout(u.data(), make([]byte, 64)); n != 3 || err != nil {
		t.Fatalf("UDP read %d, %v", n, err)
	}
	waitLength(u, 4)
}

// TestCloseInEveryState: `close` succeeds on a conversation that is not
// connected (fresh, refused, hung up), as Plan 9's tcpclose does in every
// state; Go's net package on Plan 9 writes it before closing its files
// and stops at an error. It failed with ENOTCONN or EBADF.
func TestCloseInEveryState(t *testing.T) {
	ta, tb := treePair(t)
	fresh := clone(t, ta, "tcp")
	fresh.must("close")
	refused := clone(t, ta, "tcp")
	if err := refused.cmd("connect 198.18.0.2!8041"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to a closed port: %v", err)
	}
	refused.must("close")
	a, _ := connected(t, ta, tb, "8042")
	a.must("hangup")
	a.must("close")
}

// TestAnnounceWhenNotIdle: announce on a connected conversation is
// "connection in use" (EISCONN), as Plan 9's announcectlmsg answers a
// conversation that is not Idle; it was EINVAL from the second bind.
func TestAnnounceWhenNotIdle(t *testing.T) {
	ta, tb := treePair(t)
	a, _ := connected(t, ta, tb, "8043")
	if err := a.cmd("announce 8044"); !errors.Is(err, syscall.EISCONN) || a.read("err") != "connection in use\n" {
		t.Fatalf("announce on a connected conversation: %v, err file %q", err, a.read("err"))
	}
}

// TestListenHungup: a listen waiting on an announcement that is hung up
// fails with Plan 9's "listen hungup" (ipopen). It said "invalid argument".
func TestListenHungup(t *testing.T) {
	_, tb := treePair(t)
	srv := clone(t, tb, "tcp")
	srv.must("announce 8045")
	done := make(chan error, 1)
	go func() {
		h, err := open(t, tb, 0, syscall.O_RDWR, "tcp", srv.n, "listen")
		if err == nil {
			h.Release()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the listen waits
	srv.must("hangup")
	select {
	case err := <-done:
		if err == nil || ErrText(err) != "listen hungup" {
			t.Fatalf("listen after hangup: %v (text %q)", err, ErrText(err))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("listen still waiting 5 s after hangup")
	}
}

// TestIgnoreAdvice: with `ignoreadvice` (ip(3)), a connected UDP
// conversation's port unreachable sets no error, where without it the
// next write fails with ECONNREFUSED; the verb takes no arguments.
func TestIgnoreAdvice(t *testing.T) {
	ta, tb := treePair(t)
	unreachs := func() uint64 { return tb.stack.Net().MIB.Get(memctl.IcmpOutDestUnreachs) }
	for _, ignore := range []bool{false, true} {
		sent := unreachs()
		u := clone(t, ta, "udp")
		if ignore {
			if err := u.cmd("ignoreadvice 1"); !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("ignoreadvice with an argument: %v", err)
			}
			u.must("ignoreadvice")
		}
		u.must("connect 198.18.0.2!9")
		d := u.data()
		if _, err := d.Write(context.Background(), []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		var err error
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err = d.Write(context.Background(), []byte("x"), 0); err != nil {
				break
			}
		}
		if ignore && (err != nil || unreachs() == sent) {
			t.Fatalf("with ignoreadvice: write %v after %d port unreachables", err, unreachs()-sent)
		}
		if !ignore && !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("without ignoreadvice: write %v, want ECONNREFUSED after the port unreachable", err)
		}
	}
}

// TestTimeWaitSlotReused: a released conversation in TIME_WAIT gives its
// slot to the next clone, as Linux's timewait sock holds no descriptor,
// while the stack keeps the timewait sock (sockstat's tw). The slot was
// held for the whole 60 s, so 4096 short connections a minute blocked
// clone with "no free devices".
func TestTimeWaitSlotReused(t *testing.T) {
	ta, tb := treePair(t)
	a, b := connected(t, ta, tb, "8046")
	a.must("close") // our FIN first: we end in TIME_WAIT
	b.must("close")
	a.waitState("Time_wait")
	a.ctl.Release() // its only file: the conversation is released (the cleanup's second Release does nothing)
	c := clone(t, ta, "tcp")
	if c.n != a.n {
		t.Fatalf("clone took conversation %s, want the TIME_WAIT one's slot %s", c.n, a.n)
	}
	if s := sysRead(t, ta, "sockstat"); !strings.Contains(s, " tw 1 ") {
		t.Fatalf("sockstat lost the timewait sock:\n%s", s)
	}
}

// TestUDPHeadersWriteFromLaddr: in headers mode, a write's header laddr,
// if it is one of this host's addresses, is the datagram's source, as
// Plan 9's udpkick takes it: an echo of a datagram that came to a second
// address answers from it, so the sender's connected conversation takes
// the answer. It went out from the route's address and was dropped.
func TestUDPHeadersWriteFromLaddr(t *testing.T) {
	ta, tb := treePair(t)
	if err := fileWrite(t, tb, "add 198.18.0.3 255.255.255.0", "ipifc", "0", "ctl"); err != nil {
		t.Fatal(err)
	}
	srv := clone(t, tb, "udp")
	srv.must("headers")
	srv.must("announce 7")
	sd := srv.data()
	cli := clone(t, ta, "udp")
	cli.must("connect 198.18.0.3!7")
	cd := cli.data()
	if _, err := cd.Write(context.Background(), []byte("ping"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	n, err := readTimeout(sd, buf)
	if err != nil || n != udpHdrLen+4 {
		t.Fatalf("server read %d, %v", n, err)
	}
	if la := netip.AddrFrom16([16]byte(buf[16:32])).Unmap(); la != netip.MustParseAddr("198.18.0.3") {
		t.Fatalf("header laddr %v, want 198.18.0.3", la)
	}
	reply := append(buf[:udpHdrLen:udpHdrLen], "pong"...) // the header as it came
	if _, err := sd.Write(context.Background(), reply, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := readTimeout(cd, buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("client read %q, %v: the answer did not come from 198.18.0.3", buf[:n], err)
	}
}

// TestTCPStatusScoreboard: status carries the rest of ss -tmi's tcp_info
// (unacked, sacked, lost, retrans_out, reordering, ato, the MSSs and
// window scales, delivered, delivered_ce, notsent, data_segs_out), and
// rates as ss -n prints them, exact bits per second. A writer ahead of a
// receiver that does not read shows bytes not sent and segments delivered.
func TestTCPStatusScoreboard(t *testing.T) {
	ta, tb := treePair(t)
	a, b := connected(t, ta, tb, "8047")
	b.must("rcvbuf 4096")
	ad := a.data()
	go ad.Write(context.Background(), make([]byte, 256<<10), 0) // blocks once the window closes
	var s netview.Status
	var text string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		text = a.read("status")
		_, s, _ = netview.ParseStatus(text)
		if n, _ := s.Get("notsent"); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bytes left unsent: %q", text)
		}
	}
	for _, f := range []string{"unacked", "sacked", "lost", "retrans_out", "reordering", "ato", "rcvmss",
		"advmss", "snd_wscale", "rcv_wscale", "delivered", "delivered_ce", "notsent", "data_segs_out"} {
		if _, ok := s.Get(f); !ok {
			t.Errorf("status lacks %s: %q", f, text)
		}
	}
	if d, _ := s.Get("delivered"); d <= 0 {
		t.Errorf("delivered %d after the receiver took data: %q", d, text)
	}
	if o, _ := s.Get("data_segs_out"); o <= 0 {
		t.Errorf("data_segs_out %d: %q", o, text)
	}
	if m, _ := s.Get("advmss"); m != 1448 { // 1460 less the timestamps' 12, as tcp_rcv_synsent_state_process takes them off
		t.Errorf("advmss %d, want 1448: %q", m, text)
	}
	for i, n := range s.Names {
		if n == "pacing_rate" && !regexp.MustCompile(`^[0-9]+bps$`).MatchString(s.Values[i]) {
			t.Errorf("pacing_rate %q, want ss -n's exact bits per second", s.Values[i])
		}
	}
	a.must("hangup") // the writer returns
}
