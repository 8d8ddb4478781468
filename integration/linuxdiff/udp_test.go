package linuxdiff

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpPayloads has both sides of every kmalloc bucket boundary a datagram
// received from a TUN can cross at MTU 1500. tun_get_user → tun_alloc_skb
// puts the IP packet (payload + 28) in a linear head after NET_SKB_PAD +
// NET_IP_ALIGN (64 + 0 on x86_64) of headroom, so the head is
// SKB_HEAD_ALIGN(payload + 92): the 576-byte small-head cache up to 164 B,
// kmalloc-1k up to 612 B, kmalloc-2k up to 1636 B. 228/229 and 676/677 are
// the same boundaries without the headroom.
var udpPayloads = []int{1, 100, 164, 165, 180, 228, 229, 612, 613, 640, 676, 677, 1000, 1472}

// udpSent is more than any payload size fits in the default rcvbuf (212992
// / 832 = 256) and less than the sending TUN's queue (500 packets), which
// would drop the rest before the socket.
const udpSent = 300

// udpSweep sends udpSent datagrams of each size into a socket that never
// reads: truesize per skb (r / queued), queued, forward_alloc and drops
// must be the kernel's.
func udpSweep(t *testing.T, sides [2]sut, rs *rowSet) {
	for _, size := range udpPayloads {
		var got [2]string
		for j, side := range sides {
			v, err := udpFill(side, nextPort(), size)
			if err != nil {
				t.Fatalf("%s, udp %d B: %v", side.name(), size, err)
			}
			got[j] = v
		}
		rs.exact(fmt.Sprintf("udp %d B into an unread socket", size), got[0], got[1])
	}
}

func udpFill(side sut, port, size int) (string, error) {
	return udpFillN(side, port, size, udpSent)
}

// udpFillN sends sent datagrams of size bytes to port and reports the
// truesize per queued datagram, the count queued, and r, f and d.
func udpFillN(side sut, port, size, sent int) (string, error) {
	rx, err := side.udpOpen(port)
	if err != nil {
		return "", err
	}
	defer rx.Close()
	tx, err := peerUDP(side.peer(), port)
	if err != nil {
		return "", err
	}
	defer tx.Close()
	p := make([]byte, size)
	for i := 0; i < sent; i++ {
		if _, err := tx.Write(p); err != nil {
			return "", fmt.Errorf("send: %w", err)
		}
	}
	m, err := settle(200*time.Millisecond, 5*time.Second, rx.mem)
	if err != nil {
		return "", err
	}
	n, err := rx.drain()
	if err != nil {
		return "", err
	}
	if n+m.d != sent || n == 0 {
		return "", fmt.Errorf("%d queued + %d dropped of %d sent: datagrams lost before the socket", n, m.d, sent)
	}
	return fmt.Sprintf("truesize %d, %d queued, r%d f%d d%d", m.r/n, n, m.r, m.f, m.d), nil
}

// bufValues are SO_RCVBUF / SO_SNDBUF edges: below and at the minimums
// (SOCK_MIN_RCVBUF 2304, SOCK_MIN_SNDBUF 4608), ordinary sizes, around
// rmem_max/wmem_max (4 MiB by default in 6.18) and -1, which
// sk_setsockopt compares as unsigned (so: the maximum).
var bufValues = []int{0, 1, 1000, 2304, 4608, 65536, 262144, 4194305, 8388608, -1}

// bufEdges sets each value on fresh TCP and UDP sockets and reads it back.
func bufEdges(t *testing.T, sides [2]sut, rs *rowSet) {
	for _, opt := range []string{"SO_RCVBUF", "SO_SNDBUF"} {
		for _, v := range bufValues {
			var got [2]string
			for j, side := range sides {
				var parts []string
				for _, proto := range []string{"tcp", "udp"} {
					r, err := side.setBuf(proto, opt == "SO_RCVBUF", v)
					var errno syscall.Errno
					switch {
					case errors.As(err, &errno):
						parts = append(parts, proto+" "+unix.ErrnoName(errno))
					case err != nil:
						t.Fatalf("%s %s %s %d: %v", side.name(), proto, opt, v, err)
					default:
						parts = append(parts, fmt.Sprintf("%s %d", proto, r))
					}
				}
				got[j] = strings.Join(parts, ", ")
			}
			rs.exact(fmt.Sprintf("%s %d", opt, v), got[0], got[1])
		}
	}
}
