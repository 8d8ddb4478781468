package integration

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/fs"
)

// pingOK reports whether one ping from the namespace's kernel (args
// before the destination) is answered.
func pingOK(ns *netns, args ...string) bool {
	_, err := ns.run("ping", append([]string{"-n", "-q", "-c", "1", "-W", "1"}, args...)...)
	return err == nil
}

// snmpIP returns one of the Ip: counters of the namespace's kernel.
func snmpIP(t *testing.T, ns *netns, name string) int {
	t.Helper()
	lines := strings.Split(ns.mustRun("cat", "/proc/net/snmp"), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "Ip: ") && strings.HasPrefix(lines[i+1], "Ip: ") {
			names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j := range names {
				if names[j] == name && j < len(vals) {
					v, _ := strconv.Atoi(vals[j])
					return v
				}
			}
		}
	}
	t.Fatalf("no Ip: %s in /proc/net/snmp", name)
	return 0
}

// TestAdminFilesKernel: Plan 9's iproute and ipifc ctl, written through
// FUSE, change what the stack does with the kernel of a namespace as the
// peer: a route added with Plan 9's arguments lets sockfs answer pings
// from an address only reachable through it, and stops when removed; an
// address added in ipifc/N/ctl answers pings until removed; `mtu 576`
// makes sockfs fragment a 1028-byte echo reply (the kernel reassembles
// it); a point-to-point address answers its peer through the route to
// it; bad input is EINVAL, logged, and changes nothing.
func TestAdminFilesKernel(t *testing.T) {
	needRoot(t)
	needTool(t, "ping")
	ns := newNetns(t)
	st := stackInNetns(t, ns, "sfadm0")
	logs := new(lockedBuffer)
	mnt := mountTree(t, fs.New(st, fs.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	var ifc string
	for i := 0; i < 4 && ifc == ""; i++ {
		b, err := readRaw(filepath.Join(mnt, "ipifc", strconv.Itoa(i), "status"))
		if err == nil && strings.HasPrefix(string(b), "device tun") {
			ifc = filepath.Join(mnt, "ipifc", strconv.Itoa(i))
		}
	}
	if ifc == "" {
		t.Fatal("no ipifc directory for the TUN device")
	}
	write := func(file, line string) error { return writeRaw(filepath.Join(mnt, file), []byte(line+"\n")) }
	read := func(file string) string {
		b, err := readRaw(filepath.Join(mnt, file))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	n := filepath.Base(ifc)

	// iproute: 198.18.77.1 lives on the kernel's lo, reachable only
	// through a route via 198.18.0.1.
	ns.mustRun("ip", "addr", "add", "198.18.77.1/32", "dev", "lo")
	from77 := []string{"-I", "198.18.77.1", "198.18.0.2"}
	if pingOK(ns, from77...) {
		t.Fatal("ping from 198.18.77.1 answered before the route")
	}
	if err := write("iproute", "add 198.18.77.0 255.255.255.0 198.18.0.1"); err != nil {
		t.Fatal(err)
	}
	if r := read("iproute"); !strings.Contains(r, "198.18.77.0     /120 198.18.0.1      4    none   "+n+"\n") {
		t.Fatalf("iproute:\n%s", r)
	}
	if !pingOK(ns, from77...) {
		t.Fatalf("ping from 198.18.77.1 not answered through the route; iproute:\n%s", read("iproute"))
	}
	if err := write("iproute", "add 198.18.78.0 255.255.255.0 203.0.113.1"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("nexthop on no network: %v, want EINVAL", err)
	}
	if err := write("iproute", "remove 198.18.77.0 255.255.255.0"); err != nil {
		t.Fatal(err)
	}
	if pingOK(ns, from77...) {
		t.Fatal("ping from 198.18.77.1 answered after remove")
	}

	// ipifc/N/ctl add and remove.
	ctl := filepath.Join("ipifc", n, "ctl")
	if err := write(ctl, "add 198.18.0.9 255.255.255.0"); err != nil {
		t.Fatal(err)
	}
	if !pingOK(ns, "198.18.0.9") {
		t.Fatal("added address 198.18.0.9 does not answer")
	}
	if err := write(ctl, "remove 198.18.0.9 255.255.255.0"); err != nil {
		t.Fatal(err)
	}
	if pingOK(ns, "198.18.0.9") {
		t.Fatal("removed address 198.18.0.9 still answers")
	}

	// A point-to-point address (Plan 9's add local mask remote, the
	// remote off local's network): the kernel's 198.18.90.1 reaches
	// sockfs's 198.18.90.2 by a host route through the TUN, and sockfs's
	// reply finds its way back only by the route to its peer.
	ns.mustRun("ip", "addr", "add", "198.18.90.1/32", "dev", "lo")
	ns.mustRun("ip", "route", "add", "198.18.90.2/32", "dev", "sfadm0", "src", "198.18.90.1")
	if err := write(ctl, "add 198.18.90.2 255.255.255.255"); err != nil {
		t.Fatal(err)
	}
	if pingOK(ns, "-I", "198.18.90.1", "198.18.90.2") {
		t.Fatal("198.18.90.2 answered 198.18.90.1 with no route to it")
	}
	if err := write(ctl, "remove 198.18.90.2 255.255.255.255"); err != nil {
		t.Fatal(err)
	}
	if err := write(ctl, "add 198.18.90.2 255.255.255.255 198.18.90.1"); err != nil {
		t.Fatal(err)
	}
	if r := read("iproute"); !strings.Contains(r, "198.18.90.1     /128 198.18.90.2     4ip   ifc   "+n+"\n") {
		t.Fatalf("iproute:\n%s", r)
	}
	if !pingOK(ns, "-I", "198.18.90.1", "198.18.90.2") {
		t.Fatalf("point-to-point 198.18.90.2 does not answer its peer; iproute:\n%s", read("iproute"))
	}
	if err := write(ctl, "remove 198.18.90.1 255.255.255.255"); err != nil {
		t.Fatal(err)
	}
	if pingOK(ns, "-I", "198.18.90.1", "198.18.90.2") {
		t.Fatal("removed point-to-point address still answers")
	}

	// mtu: the reply to a 1000-byte ping leaves in fragments.
	before := snmpIP(t, ns, "ReasmOKs")
	if !pingOK(ns, "-s", "1000", "198.18.0.2") || snmpIP(t, ns, "ReasmOKs") != before {
		t.Fatal("at mtu 1500 a 1028-byte reply came fragmented, or not at all")
	}
	if err := write(ctl, "mtu 576"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read(filepath.Join("ipifc", n, "status")), " maxtu 576 ") {
		t.Fatalf("status: %s", read(filepath.Join("ipifc", n, "status")))
	}
	if !pingOK(ns, "-s", "1000", "198.18.0.2") {
		t.Fatal("1000-byte ping not answered at mtu 576")
	}
	if got := snmpIP(t, ns, "ReasmOKs"); got != before+1 {
		t.Fatalf("kernel reassembled %d datagrams, want 1", got-before)
	}

	// arp: the kernel answered pings over the TUN, and still nothing is
	// cached (no link layer); flush is accepted, add refused.
	if a := read("arp"); a != "" {
		t.Fatalf("arp after pings: %q", a)
	}
	if err := write("arp", "flush"); err != nil {
		t.Fatal(err)
	}
	if err := write("arp", "add ether 198.18.0.1 0a0b0c0d0e0f"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("arp add: %v, want EINVAL", err)
	}

	// Bad input: EINVAL, a reason in the log, nothing changed.
	status := read(filepath.Join("ipifc", n, "status"))
	for _, bad := range []string{"mtu 10", "add 198.18.0.10 255.0.255.0", "remove 198.18.0.77 255.255.255.0", "frob"} {
		if err := write(ctl, bad); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%q: %v, want EINVAL", bad, err)
		}
	}
	if s := read(filepath.Join("ipifc", n, "status")); s != status {
		t.Fatalf("refused writes changed status:\n%s\n%s", status, s)
	}
	for _, w := range []string{"ipifc ctl write refused", `bad mtu \"10\" (want 68..1500)`, "iproute write refused", "is on no interface's network"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
}

// TestFilesUDPListen: Plan 9's UDP announce and listen through the
// daemon's FUSE mount, with the kernel's sockets as the remotes: each
// sender gets a conversation of its own, whose remote is the sender, and
// the reply written to its data reaches that sender.
func TestFilesUDPListen(t *testing.T) {
	needTool(t, "python3")
	d := startFiles(t, "sfudpl0")
	outf := filepath.Join(t.TempDir(), "replies")
	out, stderr, err := d.script(30*time.Second, "udplisten.sh", "OUT="+outf)
	if err != nil {
		t.Fatalf("udplisten.sh: %v\n%s%s\ndaemon:\n%s", err, out, stderr, d.log)
	}
	replies, _ := os.ReadFile(outf)
	calls := strings.Split(strings.TrimSpace(out), "\n")
	lines := strings.Split(strings.TrimSpace(string(replies)), "\n")
	if len(calls) != 2 || len(lines) != 2 {
		t.Fatalf("calls %q, replies %q", out, replies)
	}
	seen := map[string]bool{}
	for i, name := range []string{"A", "B"} {
		port, reply, _ := strings.Cut(lines[i], " ")
		f := strings.Fields(calls[i])
		if reply != "echo:hello-"+name || len(f) != 3 || f[2] != "198.18.0.1!"+port || seen[f[1]] {
			t.Fatalf("call %q, reply %q: want a new conversation whose remote is 198.18.0.1!%s, replying echo:hello-%s", calls[i], lines[i], port, name)
		}
		seen[f[1]] = true
	}
}

// TestDNSFileDnsmasq: the dns file resolves through the stack's own UDP,
// over the TUN, to a dnsmasq in the namespace with a fixed host entry;
// cs turns a dial string with that name into the address; a name
// dnsmasq does not know (it is authoritative for .test) is ENOENT.
func TestDNSFileDnsmasq(t *testing.T) {
	needRoot(t)
	needTool(t, "dnsmasq")
	ns := newNetns(t)
	st := stackInNetns(t, ns, "sfdns0")
	dns := ns.cmd("dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address=198.18.0.1", "--port=53", "--pid-file=", "--user=root",
		"--host-record=host.test,198.18.0.77", "--local=/test/", "--log-facility=-", "--log-queries")
	dnsLog := new(lockedBuffer)
	dns.Stdout, dns.Stderr = dnsLog, dnsLog
	if err := dns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Process.Kill(); dns.Wait() })
	mnt := mountTree(t, fs.New(st, fs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		DNS: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:53")}}))
	// Plain blocking syscalls: os.File would put a FUSE file that
	// answers POLL in this process's netpoller.
	query := func(file, q string) (string, error) {
		fd, err := syscall.Open(filepath.Join(mnt, file), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if _, err := syscall.Write(fd, []byte(q)); err != nil {
			return "", err
		}
		buf := make([]byte, 512)
		n, err := syscall.Read(fd, buf)
		return string(buf[:max(n, 0)]), err
	}
	var got string
	var err error
	for i := 0; i < 10; i++ { // until dnsmasq listens
		if got, err = query("dns", "host.test ip"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || got != "host.test ip 198.18.0.77" {
		t.Fatalf("dns: %q, %v\ndnsmasq:\n%s", got, err, dnsLog)
	}
	if got, err := query("cs", "tcp!host.test!http"); err != nil || got != mnt+"/tcp/clone 198.18.0.77!80" {
		t.Fatalf("cs: %q, %v", got, err)
	}
	if _, err := query("dns", "nosuch.test ip"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("unknown name: %v, want ENOENT", err)
	}
	// Plan 9's idiom (csquery, Go's net on Plan 9): write the query, seek
	// to 0, read the answers; cs was a stream file and the seek ESPIPE.
	seekRead := func(file, q string) (string, error) {
		fd, err := syscall.Open(filepath.Join(mnt, file), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd) // before the mount's cleanup, also on failure
		if _, err := syscall.Write(fd, []byte(q)); err != nil {
			return "", err
		}
		if _, err := syscall.Seek(fd, 0, 0); err != nil {
			return "", fmt.Errorf("seek to 0: %w", err)
		}
		buf := make([]byte, 512)
		n, err := syscall.Read(fd, buf)
		return string(buf[:max(n, 0)]), err
	}
	if got, err := seekRead("cs", "tcp!198.18.0.1!http"); err != nil || got != mnt+"/tcp/clone 198.18.0.1!80" {
		t.Errorf("cs, written, seeked to 0, read: %q %v", got, err)
	}
	if got, err := seekRead("dns", "host.test ip"); err != nil || got != "host.test ip 198.18.0.77" {
		t.Errorf("dns, written, seeked to 0, read: %q %v", got, err)
	}
}
