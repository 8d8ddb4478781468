package fuse

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	netfs "sockfs/fs"
	"sockfs/netstack"

	"sockfs/netstack/stacktest"
)

// pair is two stacks (198.18.0.1 and .2) joined by an in-memory pipe on a
// real clock, each tree mounted over FUSE: A at a, B at b.
type pair struct {
	a, b string
	sa   *netstack.Stack
}

func needFuse(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3")
	}
}

func newPair(t *testing.T) *pair {
	t.Helper()
	needFuse(t)
	sa, sb := stacktest.Pair(t)
	p := &pair{a: t.TempDir(), b: t.TempDir(), sa: sa}
	ma, err := Mount(p.a, netfs.New(sa, netfs.Options{}).Root())
	if err != nil {
		t.Fatal(err)
	}
	mb, err := Mount(p.b, netfs.New(sb, netfs.Options{}).Root())
	if err != nil {
		ma.Unmount()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ma.Unmount(); err != nil {
			t.Error(err)
		}
		if err := mb.Unmount(); err != nil {
			t.Error(err)
		}
		if data, _ := os.ReadFile("/proc/mounts"); bytes.Contains(data, []byte(p.a)) || bytes.Contains(data, []byte(p.b)) {
			t.Errorf("mount left behind:\n%s", data)
		}
	})
	return p
}

// sh runs a bash script with A and B set to the mount points and returns
// its stdout; a non-zero exit fails the test.
func (p *pair) sh(t *testing.T, script string) string {
	t.Helper()
	out, err := p.shErr(script)
	if err != nil {
		t.Fatalf("script failed: %v\n--- script:\n%s\n--- output:\n%s", err, script, out)
	}
	return out
}

var scriptTimeout = 20 * time.Second

func (p *pair) shErr(script string) (string, error) {
	cmd := exec.Command("bash", "-c", "set -e\n"+os.Getenv("SOCKFS_SH_DEBUG")+script)
	cmd.Env = append(os.Environ(), "A="+p.a, "B="+p.b)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(scriptTimeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), os.ErrDeadlineExceeded
	}
}

func TestSysctlRoundTrip(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
cat $A/sys/ipv4/tcp_rmem
printf '4096\t131072\t6291456\n' > $A/sys/ipv4/tcp_rmem
cat $A/sys/ipv4/tcp_rmem
echo 8192 65536 1048576 > $A/sys/ipv4/tcp_rmem
cat $A/sys/ipv4/tcp_rmem
echo 1000000 > $A/sys/core/rmem_max
cat $A/sys/core/rmem_max
ls $A/sys/ipv4 | grep -c . >/dev/null
`)
	want := "4096\t131072\t33554432\n" + "4096\t131072\t6291456\n" + "8192\t65536\t1048576\n" + "1000000\n"
	if !strings.HasSuffix(out, want[len("4096\t131072\t33554432\n"):]) {
		t.Fatalf("got %q, want ...%q", out, want)
	}
	if !strings.HasPrefix(out, "4096\t131072\t") {
		t.Fatalf("initial tcp_rmem %q not in Linux format", out)
	}
}

// TestSysctlWritesOnOneDescriptor: the positions of Linux's /proc/sys
// through the mount, as a shell meets them: a second `echo` on one
// descriptor is applied to an unsigned sysctl (Linux's unsigned handlers
// leave the position at 0) and ignored by an int one, a read at an
// offset of a number is end of file, and a string written at an offset
// joins the text there (tcp_congestion_control "re" + "xx": ENOENT).
// Every write after the first on a descriptor used to be ignored.
func TestSysctlWritesOnOneDescriptor(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
exec 3>$A/sys/ipv4/tcp_retries2; echo 5 >&3; echo 7 >&3; exec 3>&-
cat $A/sys/ipv4/tcp_retries2
exec 3>$A/sys/ipv4/tcp_fin_timeout; echo 5 >&3; echo 7 >&3; exec 3>&-
cat $A/sys/ipv4/tcp_fin_timeout
dd if=$A/sys/ipv4/tcp_fin_timeout bs=1 skip=1 status=none | wc -c
echo reno > $A/sys/ipv4/tcp_congestion_control
printf xx | dd of=$A/sys/ipv4/tcp_congestion_control bs=1 seek=2 conv=notrunc status=none 2>/dev/null || echo refused
cat $A/sys/ipv4/tcp_congestion_control
`)
	if want := "7\n5\n0\nrefused\nreno\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

var badSysctl = []string{
	"", // placeholder: replaced below by the white-space-only write
	"abc", "1 2", "1 2 3 4", "-1 2 3", "3 2 1", "4096 x 6291456", "0x", "1.5 2 3",
	"99999999999999999999999 1 2", "1\t2\tz", "--1 2 3", "1,2,3", "+ 2 3", "1 2 3 4 5",
}

func TestSysctlMalformedWritesEINVAL(t *testing.T) {
	p := newPair(t)
	before := p.sh(t, `cat $A/sys/ipv4/tcp_rmem`)
	for i, v := range badSysctl {
		script := `echo '` + v + `' > $A/sys/ipv4/tcp_rmem`
		if i == 0 {
			script = `printf ' \t \n' > $A/sys/ipv4/tcp_rmem`
		}
		out, err := p.shErr(script)
		if err == nil {
			t.Errorf("write %q succeeded", v)
		} else if !strings.Contains(out, "Invalid argument") {
			t.Errorf("write %q: %q, want Invalid argument", v, out)
		}
	}
	if after := p.sh(t, `cat $A/sys/ipv4/tcp_rmem`); after != before {
		t.Fatalf("tcp_rmem changed from %q to %q", before, after)
	}
}

var badCtl = []string{
	"bogus", "connect", "connect 198.18.0.2", "connect 198.18.0.2!x", "connect 1.2.3!7",
	"connect 198.18.0.2!7 1!2!3 extra", "announce", "announce x", "announce 1 2",
	"rcvbuf", "rcvbuf abc", "sndbuf 2147483648", "ttl 300", "headers now", "connect 198.18.0.2!70000",
}

func TestCtlMalformedWritesEINVAL(t *testing.T) {
	p := newPair(t)
	for _, c := range badCtl {
		out, err := p.shErr(`
exec 3<>$A/udp/clone; n=$(cat <&3)
mem=$(cat $A/udp/$n/mem)
if echo '` + c + `' >&3 2>/tmp/sockfs-ctl-err.$$; then echo ACCEPTED; exit 1; fi
cat /tmp/sockfs-ctl-err.$$; rm -f /tmp/sockfs-ctl-err.$$
echo "err: $(cat $A/udp/$n/err)"
[ "$(cat $A/udp/$n/mem)" = "$mem" ]
cat $A/udp/$n/local
`)
		if err != nil {
			t.Errorf("ctl %q: %v\n%s", c, err, out)
			continue
		}
		if !strings.Contains(out, "Invalid argument") {
			t.Errorf("ctl %q: %q, want Invalid argument", c, out)
		}
		if !strings.Contains(out, "err: ") || strings.Contains(out, "err: \n") {
			t.Errorf("ctl %q: no message in err: %q", c, out)
		}
		if c == "bogus" && !strings.Contains(out, "err: unknown control request") {
			t.Errorf("unknown command: %q", out)
		}
		if !strings.HasSuffix(out, "::!0\n") {
			t.Errorf("ctl %q changed the conversation: %q", c, out)
		}
	}
}

// TestUDPDatagramsThroughFiles sends datagrams both ways between the two
// mounts and checks that each read returns exactly one datagram.
func TestUDPDatagramsThroughFiles(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
exec 3<>$B/udp/clone; nb=$(cat <&3)
echo 'announce 7000' >&3
cat $B/udp/$nb/local
exec 4<>$A/udp/clone; na=$(cat <&4)
echo 'connect 198.18.0.2!7000' >&4
cat $A/udp/$na/remote
exec 5>$A/udp/$na/data
printf 'one' >&5
printf 'two two' >&5
printf 'three' >&5
exec 6<>$B/udp/$nb/data
echo "[$(dd bs=65536 count=1 status=none <&6)]"
echo "[$(dd bs=65536 count=1 status=none <&6)]"
echo "[$(dd bs=65536 count=1 status=none <&6)]"
echo 'headers' >&3
exec 7<$A/udp/$na/data
exec 3<&- 6<&-
`)
	for _, w := range []string{"::!7000\n", "198.18.0.2!7000\n", "[one]\n[two two]\n[three]\n"} {
		if !strings.Contains(out, w) {
			t.Fatalf("output %q lacks %q", out, w)
		}
	}
	// The other way: B connects to A's port and A reads one datagram per read.
	out = p.sh(t, `
exec 3<>$A/udp/clone; na=$(cat <&3)
echo 'announce 7001' >&3
exec 4<>$B/udp/clone; nb=$(cat <&4)
echo 'connect 198.18.0.1:7001' >&4
exec 5>$B/udp/$nb/data
printf 'alpha' >&5; printf 'beta' >&5
exec 6<$A/udp/$na/data
echo "[$(dd bs=65536 count=1 status=none <&6)][$(dd bs=65536 count=1 status=none <&6)]"
`)
	if !strings.Contains(out, "[alpha][beta]") {
		t.Fatalf("got %q", out)
	}
}

func TestUDPRcvbufFile(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
exec 3<>$A/udp/clone; n=$(cat <&3)
echo 262144 > $A/udp/$n/rcvbuf
cat $A/udp/$n/rcvbuf
cat $A/udp/$n/mem
echo 'sndbuf 100000' >&3
cat $A/udp/$n/sndbuf
`)
	if !strings.Contains(out, "524288\n") || !strings.Contains(out, ",rb524288,") || !strings.Contains(out, "200000\n") {
		t.Fatalf("got %q", out)
	}
	if !strings.Contains(out, "skmem:(r0,rb524288,t0,tb") {
		t.Fatalf("mem format: %q", out)
	}
}

// TestUDPInterruptedReadConsumesNothing: Ctrl-C (SIGINT) ends a blocked read
// within about a second, and a datagram sent afterwards is read in full.
func TestUDPInterruptedReadConsumesNothing(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
exec 3<>$A/udp/clone; na=$(cat <&3)
echo 'announce 7003' >&3
start=$(date +%s%N)
if timeout -s INT 1 cat $A/udp/$na/data; then echo "cat ended normally"; exit 1; fi
end=$(date +%s%N)
echo "elapsed_ms $(( (end - start) / 1000000 ))"
exec 4<>$B/udp/clone; nb=$(cat <&4)
echo 'connect 198.18.0.1!7003' >&4
printf 'after-interrupt-datagram' > $B/udp/$nb/data
echo "[$(dd bs=65536 count=1 status=none <$A/udp/$na/data)]"
`)
	if !strings.Contains(out, "[after-interrupt-datagram]") {
		t.Fatalf("got %q", out)
	}
	var ms int
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "elapsed_ms ") {
			ms = atoi(strings.TrimPrefix(l, "elapsed_ms "))
		}
	}
	if ms < 900 || ms > 2000 {
		t.Fatalf("interrupted read took %d ms", ms)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestUDPPoll: select() on data reports not readable while the queue is
// empty and readable once a datagram arrives.
func TestUDPPoll(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
exec 3<>$A/udp/clone; na=$(cat <&3)
echo 'announce 7004' >&3
exec 4<>$B/udp/clone; nb=$(cat <&4)
echo 'connect 198.18.0.1!7004' >&4
fifo=$(mktemp -u); mkfifo $fifo
( cat $fifo >/dev/null; sleep 0.3; printf 'wake' > $B/udp/$nb/data ) &
python3 - $A/udp/$na/data $fifo <<'EOF'
import os, select, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
r, _, _ = select.select([fd], [], [], 0)
print("initial", "readable" if r else "empty", flush=True)
with open(sys.argv[2], "w") as f:
    f.write("go\n")
t0 = time.time()
r, _, _ = select.select([fd], [], [], 5)
print("later", "readable" if r else "timeout", "after_ms", int((time.time() - t0) * 1000))
print("data", os.read(fd, 65536).decode())
r, _, _ = select.select([fd], [], [], 0.2)
print("drained", "readable" if r else "empty")
EOF
wait; rm -f $fifo
`)
	for _, w := range []string{"initial empty\n", "later readable", "data wake\n", "drained empty\n"} {
		if !strings.Contains(out, w) {
			t.Fatalf("output %q lacks %q", out, w)
		}
	}
}

// TestConversationReuseLowestFirst: after every handle closes, the number
// is reused, lowest first.
func TestConversationReuseLowestFirst(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
exec 3<>$A/udp/clone; echo "a=$(cat <&3)"
exec 4<>$A/udp/clone; echo "b=$(cat <&4)"
exec 5<>$A/udp/clone; echo "c=$(cat <&5)"
exec 6<$A/udp/0/data
exec 3<&-
exec 7<>$A/udp/clone; echo "d=$(cat <&7)"
exec 6<&- 4<&-
for i in 1 2 3 4 5 6 7 8 9 10; do
  exec 8<>$A/udp/clone; n=$(cat <&8)
  [ "$n" = 0 ] && break
  exec 8<&-; sleep 0.05
done
echo "e=$n"
exec 9<>$A/udp/clone; echo "f=$(cat <&9)"
ls $A/udp | tr '\n' ' '; echo
cat $A/udp/1/status
`)
	for _, w := range []string{"a=0\n", "b=1\n", "c=2\n", "d=3\n", "e=0\n", "f=1\n", "0 1 2 3 clone stats", "Open qin 0 qout 0"} {
		if !strings.Contains(out, w) {
			t.Fatalf("output %q lacks %q", out, w)
		}
	}
}

func TestTopLevelFiles(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
cat $A/iproute.linux
echo 'add 10.1.0.0/16 via 198.18.0.2 dev pipe0' > $A/iproute.linux
cat $A/iproute.linux
if echo 'add 10.2.0.0/16 dev nosuch' > $A/iproute.linux 2>/dev/null; then echo BAD; fi
echo 'del 10.1.0.0/16' > $A/iproute.linux
cat $A/iproute.linux
echo 'add 198.18.77.0 255.255.255.0 198.18.0.2' > $A/iproute
cat $A/iproute
if echo 'add 198.18.78.0 255.0.255.0 198.18.0.2' > $A/iproute 2>/dev/null; then echo BAD; fi
exec 5<>$A/cs; echo 'tcp!198.18.0.2!http' >&5; echo "cs: $(cat <&5)"; exec 5<&-
cat $A/ipifc/0/status
head -1 $A/netstat; grep -c TcpExt: $A/netstat
cat $A/sockstat
cat $A/udp/stats
`)
	for _, w := range []string{"198.18.0.0/24 dev pipe0", "10.1.0.0/16 via 198.18.0.2 dev pipe0",
		"device pipe0 maxtu 1500", "198.18.77.0     /120 198.18.0.2      4    none", "\t198.18.0.1                               /120       198.18.0.0 ", "Ip: Forwarding", "sockets: used", "InDatagrams: "} {
		if !strings.Contains(out, w) {
			t.Fatalf("output %q lacks %q", out, w)
		}
	}
	if want := "cs: " + p.a + "/tcp/clone 198.18.0.2!80\n"; !strings.Contains(out, want) {
		t.Fatalf("output %q lacks %q (cs answers paths under the mount point)", out, want)
	}
	if strings.Contains(out, "BAD") || strings.Count(out, "10.1.0.0/16") != 1 {
		t.Fatalf("route validation: %q", out)
	}
}

// TestTCPThroughFiles: announce/listen on B, connect from A, data both
// ways, EOF at the peer's FIN.
func TestTCPThroughFiles(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
exec 3<>$B/tcp/clone; nb=$(cat <&3)
echo 'announce 8080' >&3
cat $B/tcp/$nb/status | cut -d' ' -f1
( exec 4<>$B/tcp/$nb/listen; nc=$(cat <&4)
  exec 5<$B/tcp/$nc/data
  head -c 5 <&5 > /tmp/sockfs-tcp-srv.$$
  printf 'pong' > $B/tcp/$nc/data
) &
exec 6<>$A/tcp/clone; na=$(cat <&6)
echo 'connect 198.18.0.2!8080' >&6
cut -d' ' -f1 $A/tcp/$na/status
exec 7<$A/tcp/$na/data 8>$A/tcp/$na/data
printf 'hello' >&8
echo "[$(cat <&7)]"
wait
cat /tmp/sockfs-tcp-srv.$$; echo; rm -f /tmp/sockfs-tcp-srv.$$
`)
	for _, w := range []string{"Listen\n", "Established\n", "[pong]\n", "hello\n"} {
		if !strings.Contains(out, w) {
			t.Fatalf("output %q lacks %q", out, w)
		}
	}
}

// TestLargeWriteSentWhileOpen: a 1 MiB write(2) to data, one FUSE WRITE
// whose segments go to the device only after its reply
// (netfs.PushAfterReply), all reaches the peer while the writer keeps the
// file open and writes nothing more. The send buffer holds the whole write,
// so the write never waits for space (which would push); without the push
// after the reply the data would sit in the write queue with nothing in
// flight, no ACK or timer to send it, and the peer would wait forever.
func TestLargeWriteSentWhileOpen(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
tmp=$(mktemp); head -c 1048576 /dev/urandom > $tmp
exec 3<>$B/tcp/clone; nb=$(cat <&3)
echo 'announce 8081' >&3
( exec 4<>$B/tcp/$nb/listen; nc=$(cat <&4)
  head -c 1048576 $B/tcp/$nc/data | md5sum > $tmp.got
) &
exec 6<>$A/tcp/clone; na=$(cat <&6)
echo 'connect 198.18.0.2!8081' >&6
echo 8388608 > $A/sys/core/wmem_max; echo 4194304 > $A/tcp/$na/sndbuf
exec 8>$A/tcp/$na/data
dd if=$tmp bs=1M count=1 iflag=fullblock >&8 2>/dev/null
wait
echo "sent $(md5sum < $tmp)"; echo "got $(cat $tmp.got)"
rm -f $tmp $tmp.got
`)
	var sent, got string
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "sent "); ok {
			sent = s
		} else if g, ok := strings.CutPrefix(l, "got "); ok {
			got = g
		}
	}
	if sent == "" || sent != got {
		t.Fatalf("sent %q, peer got %q:\n%s", sent, got, out)
	}
}
