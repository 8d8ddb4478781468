package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sockfs/netstack"
)

// SO_RCVLOWAT's effect on rcvbuf and window_clamp, sockfs against the
// kernel: the same setsockopt sequences on fresh TCP sockets in a
// namespace (a Python helper reading SO_RCVLOWAT, SO_RCVBUF and
// TCP_WINDOW_CLAMP back) and on sockfs's sockets with the namespace's
// tcp_rmem, compared value by value.
func TestKernelRcvlowatRcvbuf(t *testing.T) {
	needRoot(t)
	needTool(t, "python3")
	ns := newNetns(t)
	seqs := [][]string{
		{"lowat 100000", "lowat 30000", "lowat 1", "lowat 0", "lowat 1073741824", "lowat -1"},
		{"rcvbuf 50000", "lowat 80000", "lowat 10000"},
		{"clamp 5000", "lowat 100000"},
		{"clamp 500000", "lowat 100000"},
	}
	py := `
import socket, sys
for line in sys.stdin:
    s = socket.socket()
    out = []
    for op in line.split(","):
        k, v = op.split()
        v = int(v)
        if k == "lowat": s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, v)
        elif k == "rcvbuf": s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, v)
        else: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, v)
        out.append("%d/%d/%d" % (s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT),
            s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), s.getsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP)))
    print(" ".join(out))
    s.close()
`
	var in strings.Builder
	for _, s := range seqs {
		in.WriteString(strings.Join(s, ",") + "\n")
	}
	cmd := ns.cmd("python3", "-c", py)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kernel helper: %v\n%s", err, out)
	}
	kernel := strings.Split(strings.TrimSpace(string(out)), "\n")
	rmem := strings.Join(strings.Fields(ns.mustRun("cat", "/proc/sys/net/ipv4/tcp_rmem")), " ")

	st := netstack.New(netstack.Options{})
	defer st.Close()
	sc, _ := st.Net().Sysctls.Lookup("ipv4/tcp_rmem")
	if err := sc.Write(rmem); err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		tp := st.NewTCP()
		var got []string
		for _, op := range s {
			var k string
			var v int
			fmt.Sscan(op, &k, &v)
			switch k {
			case "lowat":
				tp.SetRcvlowat(v)
			case "rcvbuf":
				if err := tp.SetRcvbuf(v); err != nil {
					t.Fatal(err)
				}
			default:
				if err := tp.SetWindowClamp(v); err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, fmt.Sprintf("%d/%d/%d", tp.Rcvlowat(), tp.Mem().Rcvbuf(), tp.Info().WindowClamp))
		}
		tp.Close()
		t.Logf("%s: kernel %s, sockfs %s", strings.Join(s, ", "), kernel[i], strings.Join(got, " "))
		if i >= len(kernel) || kernel[i] != strings.Join(got, " ") {
			t.Errorf("%s (lowat/rcvbuf/window_clamp after each):\nkernel %s\nsockfs %s", strings.Join(s, ", "), kernel[i], strings.Join(got, " "))
		}
	}
}

// SO_RCVLOWAT's wake-up, sockfs against the kernel: 1000 bytes arrive,
// a read of up to 10000 starts (and takes them), then 1000 bytes at a
// time; each side reports after which arrival the read returned and with
// how much. The kernel reader is a Python socket on its loopback, the
// sockfs reader a TCPConn whose peer is the kernel over the TUN.
func TestKernelRcvlowatWakeup(t *testing.T) {
	needRoot(t)
	needTool(t, "python3")
	ns := newNetns(t)
	py := `
import fcntl, socket, struct, termios, threading, time
l = socket.socket(); l.bind(("127.0.0.1", 7001)); l.listen(1)
c = socket.create_connection(("127.0.0.1", 7001)); s, _ = l.accept()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 3000)
c.sendall(b"a" * 1000); time.sleep(0.2)
res = []
th = threading.Thread(target=lambda: res.append(len(s.recv(10000)))); th.start()
while struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0" * 4))[0]:
    time.sleep(0.01)  # until the read has taken the first 1000 bytes
for i in range(5):
    time.sleep(0.2); c.sendall(b"b" * 1000); time.sleep(0.2)
    if res:
        print(i + 2, res[0]); break
`
	kernel := strings.TrimSpace(ns.mustRun("python3", "-c", py))

	st := stackInNetns(t, ns, "sfslowat0")
	ln, err := st.ListenTCP(netip.MustParseAddrPort("198.18.0.2:9003"), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	conns := make(chan *netstack.TCPConn, 1)
	start := make(chan struct{})
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			close(conns)
			return
		}
		defer c.Close()
		c.Socket().SetRcvlowat(3000)
		conns <- c
		// As in the kernel's script, the read starts once the first
		// 1000 bytes are queued: a reader asleep before they arrive is
		// not woken for fewer than SO_RCVLOWAT bytes (tcp_data_ready),
		// on Linux as here.
		<-start
		n, _ := c.Read(make([]byte, 10000))
		got <- n
	}()
	sender := ns.cmd("python3", "-c", `
import socket, sys, time
c = socket.create_connection(("198.18.0.2", 9003), timeout=5)
c.sendall(b"a" * 1000)
for line in sys.stdin:
    c.sendall(b"b" * 1000)
time.sleep(0.5)
`)
	in, _ := sender.StdinPipe()
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	defer sender.Wait()
	defer in.Close() // first: the sender exits at the end of its input
	conn := <-conns
	if conn == nil {
		t.Fatal("no connection")
	}
	for deadline := time.Now().Add(5 * time.Second); conn.Socket().Info().Qin < 1000; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first 1000 bytes did not arrive")
		}
	}
	close(start)
	// Wait until the read has taken the first 1000 bytes.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if i := conn.Socket().Info(); i.BytesReceived == 1000 && i.Qin == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the read did not take the first 1000 bytes")
		}
	}
	sockfs := "never"
	for i := 0; i < 5 && sockfs == "never"; i++ {
		in.Write([]byte("\n"))
		select {
		case n := <-got:
			sockfs = fmt.Sprintf("%d %d", i+2, n)
		case <-time.After(400 * time.Millisecond):
		}
	}
	in.Close()
	t.Logf("read returned after arrival, with bytes: kernel %q, sockfs %q", kernel, sockfs)
	if kernel != sockfs {
		t.Errorf("kernel %q, sockfs %q", kernel, sockfs)
	}
}
