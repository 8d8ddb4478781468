package integration

import (
	"fmt"
	"strings"
	"testing"

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
