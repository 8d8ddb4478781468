package p9

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/fs"
	"sockfs/fs/fuse"
)

func needFuse(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("FUSE mounts need root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3 (Debian package fuse3)")
	}
}

// importTree imports e's 9P server through Remote and mounts it with the
// FUSE frontend, as `sockfs import` does; it returns the mount point.
func (e *env) importTree(t *testing.T, uid uint32) (string, *Remote) {
	t.Helper()
	return importAddr(t, e.addr, uid)
}

// importAddr imports the 9P server at addr and mounts it.
func importAddr(t *testing.T, addr string, uid uint32) (string, *Remote) {
	t.Helper()
	needFuse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := Dial(ctx, addr, RemoteOptions{Uid: uid, PerUser: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := fuse.Mount(dir, r.Root())
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
		r.Close()
		if data, _ := os.ReadFile("/proc/mounts"); bytes.Contains(data, []byte(dir)) {
			t.Errorf("mount left behind:\n%s", data)
		}
	})
	return dir, r
}

// sh runs a bash script with M set to the mount point; a non-zero exit
// fails the test.
func sh(t *testing.T, m, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -e\n"+script)
	cmd.Env = append(os.Environ(), "M="+m)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script failed: %v\n--- script:\n%s\n--- output:\n%s", err, script, out)
	}
	return string(out)
}

// TestImportSysctl: cat and echo on an imported tree reach the remote
// stack's sysctls; a bad value is EINVAL and changes nothing.
func TestImportSysctl(t *testing.T) {
	e := newEnv(t)
	m, _ := e.importTree(t, 0)
	out := sh(t, m, `
ls $M
cat $M/sys/ipv4/tcp_rmem
printf '4096\t131072\t6291456\n' > $M/sys/ipv4/tcp_rmem
cat $M/sys/ipv4/tcp_rmem
if echo abc > $M/sys/ipv4/tcp_rmem 2>/dev/null; then echo ACCEPTED; fi
cat $M/sys/ipv4/tcp_rmem
`)
	want := "4096\t131072\t6291456\n4096\t131072\t6291456\n"
	if !strings.Contains(out, "tcp\n") || !strings.Contains(out, "sys\n") || !strings.HasSuffix(out, want) || strings.Contains(out, "ACCEPTED") {
		t.Fatalf("got %q", out)
	}
	// cs answers paths under the import's mount point.
	if out := sh(t, m, `exec 5<>$M/cs; echo 'tcp!198.18.0.2!http' >&5; cat <&5`); out != m+"/tcp/clone 198.18.0.2!80" {
		t.Fatalf("imported cs: %q, want %q", out, m+"/tcp/clone 198.18.0.2!80")
	}
	// The remote tree changed, not some copy.
	h := local(t, e.ta, "sys/ipv4/tcp_rmem")
	if got := readNum(t, h); got != "4096\t131072\t6291456\n" {
		t.Fatalf("remote tcp_rmem %q", got)
	}
}

// TestImportTCPClient: the shell idioms of NET-FILES.md on an imported
// tree, against a listener on the other stack.
func TestImportTCPClient(t *testing.T) {
	e := newEnv(t)
	m, _ := e.importTree(t, 0)
	e.shellClient(t, m, 7200)
}

// TestImportPlan9Server: the same through a server that speaks only plain
// 9P2000 (plan9Server: Plan 9's lib9p, as ported by plan9port, serving
// the tree), as a Plan 9 machine's /net would be imported.
func TestImportPlan9Server(t *testing.T) {
	e := newEnv(t)
	m, r := importAddr(t, plan9Server(t, e.ta.Root()), 0)
	if r.main.c.dialect != dialect9P {
		t.Fatalf("negotiated %v, want 9P2000", r.main.c.dialect)
	}
	e.shellClient(t, m, 7201)
	out := sh(t, m, `
exec 3<>$M/tcp/clone
if echo 'connect 198.18.0.2!9' >&3 2>/dev/null; then echo CONNECTED; else echo "refused: $?"; fi
`)
	if out != "refused: 1\n" {
		t.Fatalf("refused connect through the import: %q", out)
	}
}

// shellClient runs the client idioms on mount m against a listener on B
// at port, which answers "reply:" and what it read.
func (e *env) shellClient(t *testing.T, m string, port int) {
	t.Helper()
	bctl := local(t, e.tb, "tcp/clone")
	write(t, bctl, "announce "+strconv.Itoa(port))
	bn := readNum(t, bctl)
	acc := make(chan string, 1)
	go func() { acc <- echoOnce(e.tb, bn) }()
	out := sh(t, m, `
exec 3<>$M/tcp/clone; n=$(cat <&3)
echo "conv $n"
echo 'connect 198.18.0.2!`+strconv.Itoa(port)+`' >&3
head -c 11 $M/tcp/$n/status; echo
exec 4<$M/tcp/$n/data 5>$M/tcp/$n/data
printf 'ping' >&5
dd bs=100 count=1 status=none <&4; echo
exec 5>&- 4<&- 3<&-
`)
	if got := <-acc; got != "ping" {
		t.Fatalf("B got %q", got)
	}
	if !strings.Contains(out, "reply:ping\n") || !strings.Contains(out, "Established") {
		t.Fatalf("got %q", out)
	}
}

// echoOnce accepts one call on tcp/n of tr, reads once and answers
// "reply:" and what it read; it returns what it read or an error text.
func echoOnce(tr *fs.Tree, n string) string {
	var node fs.Node = tr.Root()
	for _, name := range []string{"tcp", n, "listen"} {
		c, err := node.(fs.Dir).Lookup(name)
		if err != nil {
			return err.Error()
		}
		node = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	lh, err := node.(fs.File).Open(ctx, fs.OpenReq{Flags: syscall.O_RDWR})
	if err != nil {
		return "listen: " + err.Error()
	}
	defer lh.Release()
	buf := make([]byte, 100)
	k, err := lh.Read(ctx, buf, 0)
	if err != nil {
		return err.Error()
	}
	var dn fs.Node = tr.Root()
	for _, name := range []string{"tcp", string(buf[:k]), "data"} {
		if dn, err = dn.(fs.Dir).Lookup(name); err != nil {
			return err.Error()
		}
	}
	d, err := dn.(fs.File).Open(ctx, fs.OpenReq{Flags: syscall.O_RDWR})
	if err != nil {
		return err.Error()
	}
	defer d.Release()
	k, err = d.Read(ctx, buf, 0)
	if err != nil {
		return err.Error()
	}
	if _, err := d.Write(ctx, []byte("reply:"+string(buf[:k])), 0); err != nil {
		return err.Error()
	}
	return string(buf[:k])
}

// TestImportInterruptFlushes: Ctrl-C on a cat of an imported data file
// ends it promptly (FUSE INTERRUPT -> ctx -> Tflush -> EINTR on the
// server), and the datagram sent afterwards goes whole to the next reader.
func TestImportInterruptFlushes(t *testing.T) {
	e := newEnv(t)
	m, _ := e.importTree(t, 0)
	actl := local(t, e.ta, "udp/clone")
	write(t, actl, "announce 7300")
	n := readNum(t, actl)
	out := sh(t, m, `
start=$(date +%s%N)
if timeout -s INT 1 cat $M/udp/`+n+`/data; then echo "cat ended normally"; exit 1; fi
end=$(date +%s%N)
echo "elapsed_ms $(( (end - start) / 1000000 ))"
`)
	var ms int
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "elapsed_ms "); ok {
			ms, _ = strconv.Atoi(v)
		}
	}
	if ms < 900 || ms > 2500 {
		t.Fatalf("interrupted cat took %d ms:\n%s", ms, out)
	}
	bctl := local(t, e.tb, "udp/clone")
	write(t, bctl, "connect 198.18.0.1!7300")
	write(t, local(t, e.tb, "udp/"+readNum(t, bctl)+"/data"), "after-interrupt-datagram")
	out = sh(t, m, `echo "[$(dd bs=65536 count=1 status=none <$M/udp/`+n+`/data)]"`)
	if out != "[after-interrupt-datagram]\n" {
		t.Fatalf("next reader got %q", out)
	}
}
