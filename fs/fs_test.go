package fs

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"sockfs/netstack/impair"
	"sockfs/netstack/link"
	"syscall"
	"testing"
	"time"

	"sockfs/netstack"
	"sockfs/netstack/clock"
)

func newTestTree(t *testing.T) *Tree {
	t.Helper()
	clk := clock.NewReal()
	s := netstack.New(netstack.Options{Clock: clk, Seed: 1})
	t.Cleanup(func() { s.Close(); clk.Close() })
	return New(s, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func walk(t *testing.T, d Dir, names ...string) Node {
	t.Helper()
	var n Node = d
	for _, name := range names {
		c, err := n.(Dir).Lookup(name)
		if err != nil {
			t.Fatalf("lookup %s: %v", name, err)
		}
		n = c
	}
	return n
}

func open(t *testing.T, tr *Tree, uid uint32, flags int, path ...string) (Handle, error) {
	t.Helper()
	return walk(t, tr.Root(), path...).(File).Open(context.Background(), OpenReq{Flags: flags, Uid: uid, Gid: uid})
}

// TestConvOwnership: the opener owns the conversation (and its
// directory); another uid gets EACCES on ctl and data, root may open
// them.
func TestConvOwnership(t *testing.T) {
	tr := newTestTree(t)
	ctl, err := open(t, tr, 1000, syscall.O_RDWR, "udp", "clone")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Release()
	if st := walk(t, tr.Root(), "udp", "0", "data").Stat(); st.Uid != 1000 || st.Mode != 0660 {
		t.Fatalf("data stat %+v", st)
	}
	if st := walk(t, tr.Root(), "udp", "0").Stat(); st.Uid != 1000 || st.Mode != fs.ModeDir|0555 {
		t.Fatalf("conversation directory stat %+v, want the owner's, 0555 (Plan 9's ipgen)", st)
	}
	for _, f := range []string{"ctl", "data", "err"} {
		if _, err := open(t, tr, 1001, syscall.O_RDWR, "udp", "0", f); !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s by another uid: %v, want EACCES", f, err)
		}
	}
	h, err := open(t, tr, 0, syscall.O_RDWR, "udp", "0", "data")
	if err != nil {
		t.Fatalf("root: %v", err)
	}
	h.Release()
	if _, err := open(t, tr, 1001, syscall.O_RDONLY, "udp", "0", "status"); err != nil {
		t.Fatalf("status by another uid: %v", err)
	}
}

// TestConvWstat: the owner (or root) changes a conversation's mode and
// owner through ctl or data, as Plan 9's ipwstat allows; another uid, or
// any other file, gets EPERM and changes nothing; a mode that opens the
// conversation to others lets them open it, and the last close restores
// 0660. Wstat was accepted and ignored for everyone.
func TestConvWstat(t *testing.T) {
	tr := newTestTree(t)
	ctl, err := open(t, tr, 1000, syscall.O_RDWR, "udp", "clone")
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string) Wstatter { return walk(t, tr.Root(), "udp", "0", name).(Wstatter) }
	mode := func(m fs.FileMode) *fs.FileMode { return &m }
	uid := func(u uint32) *uint32 { return &u }
	if err := file("ctl").Wstat(1001, nil, mode(0666)); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("wstat by another uid: %v, want EPERM", err)
	}
	if err := file("status").Wstat(1000, nil, mode(0666)); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("wstat of status: %v, want EPERM", err)
	}
	if st := walk(t, tr.Root(), "udp", "0", "data").Stat(); st.Mode != 0660 || st.Uid != 1000 {
		t.Fatalf("refused wstats changed data's stat: %+v", st)
	}
	if _, err := open(t, tr, 1001, syscall.O_RDONLY, "udp", "0", "data"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("data by another uid at 0660: %v", err)
	}
	if err := file("data").Wstat(1000, nil, mode(0664)); err != nil {
		t.Fatal(err)
	}
	if st := walk(t, tr.Root(), "udp", "0", "ctl").Stat(); st.Mode != 0664 {
		t.Fatalf("ctl mode %v after wstat 0664", st.Mode)
	}
	h, err := open(t, tr, 1001, syscall.O_RDONLY, "udp", "0", "data")
	if err != nil {
		t.Fatalf("reading data at 0664 as another uid: %v", err)
	}
	h.Release()
	if _, err := open(t, tr, 1001, syscall.O_RDWR, "udp", "0", "data"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("writing data at 0664 as another uid: %v", err)
	}
	if err := file("ctl").Wstat(0, uid(1002), nil); err != nil {
		t.Fatalf("root gives the conversation away: %v", err)
	}
	if st := walk(t, tr.Root(), "udp", "0", "err").Stat(); st.Uid != 1002 {
		t.Fatalf("err owner %d after wstat", st.Uid)
	}
	if st := walk(t, tr.Root(), "udp", "0").Stat(); st.Uid != 1002 {
		t.Fatalf("the conversation's directory belongs to %d, want its owner 1002", st.Uid)
	}
	if err := file("ctl").Wstat(1000, nil, mode(0600)); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("the old owner's wstat: %v, want EPERM", err)
	}
	ctl.Release()
	if st := walk(t, tr.Root(), "udp", "0", "data").Stat(); st.Mode != 0660 {
		t.Fatalf("data mode %v after the last close, want 0660", st.Mode)
	}
}

// TestDataNonblockAndInterrupt: a non-blocking read of an empty queue is
// EAGAIN, a cancelled blocking read is EINTR.
func TestDataNonblockAndInterrupt(t *testing.T) {
	tr := newTestTree(t)
	ctl, err := open(t, tr, 0, syscall.O_RDWR, "udp", "clone")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Release()
	if _, err := ctl.Write(context.Background(), []byte("announce 9\n"), 0); err != nil {
		t.Fatal(err)
	}
	data, err := open(t, tr, 0, syscall.O_RDWR, "udp", "0", "data")
	if err != nil {
		t.Fatal(err)
	}
	defer data.Release()
	buf := make([]byte, 100)
	if _, err := data.Read(WithNonblock(context.Background()), buf, 0); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("nonblocking read: %v", err)
	}
	// Only a cancel, no deadline: on a loaded machine the timer may fire
	// late, and a deadline racing it would make the error ETIMEDOUT.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := data.Read(ctx, buf, 0); !errors.Is(err, syscall.EINTR) {
		t.Fatalf("cancelled read: %v", err)
	}
	if ev := data.Poll(PollIn|PollOut, nil); ev != PollOut {
		t.Fatalf("poll %v, want PollOut", ev)
	}
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.2!80": "198.18.0.2:80", "198.18.0.2!80!r": "198.18.0.2:80",
		"198.18.0.2:80": "198.18.0.2:80", "[::1]:80": "[::1]:80",
		"fd00:5f::1!80": "[fd00:5f::1]:80", "[fd00:5f::1]!80": "[fd00:5f::1]:80",
		"::ffff:198.18.0.2!80": "198.18.0.2:80",
	} {
		got, err := parseAddr(in, false)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("parseAddr(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"80", "*!80", "!80"} {
		got, err := parseAddr(in, true)
		if err != nil || got.Port() != 80 || got.Addr() != netip.IPv6Unspecified() {
			t.Errorf("local parseAddr(%q) = %v, %v (want the dual-stack wildcard)", in, got, err)
		}
	}
	for _, in := range []string{"x!80", "1.2.3.4!99999", "1.2.3.4", "80", "a:b:c", "fe80::1%eth0!80", "[fd00::1!80"} {
		if _, err := parseAddr(in, false); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("parseAddr(%q) = %v, want EINVAL", in, err)
		}
	}
}

// TestUDPHeadersMode: an announced conversation in headers mode reads the
// 52-byte Udphdr before each datagram and replies through it.
func TestUDPHeadersMode(t *testing.T) {
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
	ta, tb := New(sa, Options{Logger: log}), New(sb, Options{Logger: log})
	ctx := context.Background()

	srv, _ := open(t, tb, 0, syscall.O_RDWR, "udp", "clone")
	defer srv.Release()
	for _, c := range []string{"announce 7\n", "headers\n"} {
		if _, err := srv.Write(ctx, []byte(c), 0); err != nil {
			t.Fatal(c, err)
		}
	}
	sdata, _ := open(t, tb, 0, syscall.O_RDWR, "udp", "0", "data")
	defer sdata.Release()
	cli, _ := open(t, ta, 0, syscall.O_RDWR, "udp", "clone")
	defer cli.Release()
	if _, err := cli.Write(ctx, []byte("connect 198.18.0.2!7 5000"), 0); err != nil {
		t.Fatal(err)
	}
	cdata, _ := open(t, ta, 0, syscall.O_RDWR, "udp", "0", "data")
	defer cdata.Release()
	if _, err := cdata.Write(ctx, []byte("ping"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := sdata.Read(rctx, buf, 0)
	if err != nil || n != udpHdrLen+4 || string(buf[udpHdrLen:n]) != "ping" {
		t.Fatalf("read %d %v %q", n, err, buf[:n])
	}
	if ra := netip.AddrFrom16([16]byte(buf[0:16])).Unmap(); ra != netip.MustParseAddr("198.18.0.1") ||
		binary.BigEndian.Uint16(buf[48:50]) != 5000 || binary.BigEndian.Uint16(buf[50:52]) != 7 {
		t.Fatalf("header % x", buf[:udpHdrLen])
	}
	reply := append(append([]byte{}, buf[:udpHdrLen]...), "pong"...)
	if n, err := sdata.Write(ctx, reply, 0); err != nil || n != len(reply) {
		t.Fatalf("write %d %v", n, err)
	}
	n, err = cdata.Read(rctx, buf, 0)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("reply %q %v", buf[:n], err)
	}
}

// TestSysModuleCubicParameters: HyStart's knobs, tcp_cubic module
// parameters in Linux, are files under sys/module/tcp_cubic/parameters;
// a write reaches the stack's table and a bad one is EINVAL and changes
// nothing.
func TestSysModuleCubicParameters(t *testing.T) {
	tr := newTestTree(t)
	path := []string{"sys", "module", "tcp_cubic", "parameters", "hystart"}
	h, err := open(t, tr, 0, syscall.O_RDWR, path...)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	buf := make([]byte, 16)
	n, _ := h.Read(context.Background(), buf, 0)
	if got := string(buf[:n]); got != "1\n" {
		t.Fatalf("hystart reads %q, want the default 1", got)
	}
	if _, err := h.Write(context.Background(), []byte("0\n"), 0); err != nil {
		t.Fatal(err)
	}
	sc := tr.stack.Net().Sysctls
	s, _ := sc.Lookup("module/tcp_cubic/parameters/hystart")
	if got := s.Read(); got != "0\n" {
		t.Fatalf("after writing 0 the table says %q", got)
	}
	if _, err := h.Write(context.Background(), []byte("many\n"), 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("bad write: %v, want EINVAL", err)
	}
	if got := s.Read(); got != "0\n" {
		t.Fatalf("a bad write changed the value to %q", got)
	}
	for _, name := range []string{"hystart_detect", "hystart_low_window", "hystart_ack_delta_us"} {
		walk(t, tr.Root(), append(path[:4:4], name)...)
	}
}
