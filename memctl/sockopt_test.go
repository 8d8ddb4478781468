package memctl

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
)

func TestScenario01_Defaults(t *testing.T) {
	n := newTestNet(t, Options{})
	u := newUDPSock(n)
	eq(t, "udp rcvbuf", u.Rcvbuf(), 212992)
	eq(t, "udp sndbuf", u.Sndbuf(), 212992)
	eq(t, "udp buflock", u.BufLock(), 0)
	eq(t, "udp wmem_alloc raw", u.WmemAlloc(), 1)
	eq(t, "udp wmem_alloc_get", u.WmemAllocGet(), 0)
	eq(t, "udp forward_threshold", u.ForwardThreshold(), 212992>>2)
	tc := newTCPSock(n)
	eq(t, "tcp sndbuf", tc.Sndbuf(), 16384)
	eq(t, "tcp rcvbuf", tc.Rcvbuf(), 131072)
	eq(t, "tcp buflock", tc.BufLock(), 0)
	eq(t, "tcp sockets_allocated", n.TCP.SocketsAllocated(), int64(1))
}

func TestScenario02_SoRcvbufDoublingAndFloor(t *testing.T) {
	n := newTestNet(t, Options{})
	for _, c := range []struct{ set, want int }{{0, 2304}, {1, 2304}, {1152, 2304}, {1153, 2306}, {2304, 4608}, {10000, 20000}} {
		sk := newUDPSock(n)
		if err := sk.SetSockoptRcvbuf(int32(c.set), false, false); err != nil {
			t.Fatal(err)
		}
		eq(t, "rcvbuf", sk.Rcvbuf(), c.want)
		eq(t, "buflock", sk.BufLock(), 2)
		eq(t, "udp forward_threshold", sk.ForwardThreshold(), c.want>>2)
	}
}

func TestScenario03_SoSndbufFloor(t *testing.T) {
	n := newTestNet(t, Options{})
	for _, c := range []struct{ set, want int }{{0, 4608}, {1000, 4608}, {2304, 4608}, {2305, 4610}, {10000, 20000}} {
		sk := newTCPSock(n)
		if err := sk.SetSockoptSndbuf(int32(c.set), false, false); err != nil {
			t.Fatal(err)
		}
		eq(t, "sndbuf", sk.Sndbuf(), c.want)
		eq(t, "buflock", sk.BufLock(), 1)
	}
	// The seed case: SO_SNDBUF 10000 gives 20000 and the lock turns send
	// autotuning off, even with room in cwnd and no pressure.
	sk := newTCPSock(n)
	if !sk.TCPShouldExpandSndbuf(1, 10) {
		t.Fatal("unlocked socket should expand")
	}
	_ = sk.SetSockoptSndbuf(10000, false, false)
	eq(t, "sndbuf", sk.Sndbuf(), 20000)
	eq(t, "should expand", sk.TCPShouldExpandSndbuf(1, 10), false)
	// tcp_init_buffer_space skips tcp_sndbuf_expand when locked: the caller
	// checks the lock; the value set before connect stays.
	eq(t, "sndbuf after handshake", sk.Sndbuf(), 20000)
}

func TestScenario04_UnsignedCap(t *testing.T) {
	for _, c := range []struct {
		p    *Profile
		want int
	}{{&Linux618Min, 8388608}, {&Linux612Distro, 425984}} {
		n := newTestNet(t, Options{Profile: c.p})
		for _, v := range []int32{4194305, 1 << 30, 1<<31 - 1, -1, -5} {
			sk := newUDPSock(n)
			_ = sk.SetSockoptRcvbuf(v, false, false)
			_ = sk.SetSockoptSndbuf(v, false, false)
			eq(t, c.p.Name+" rcvbuf", sk.Rcvbuf(), c.want)
			eq(t, c.p.Name+" sndbuf", sk.Sndbuf(), c.want)
		}
	}
}

func TestScenario05_ForceVariants(t *testing.T) {
	n := newTestNet(t, Options{})
	for _, c := range []struct {
		v            int32
		wantR, wantS int
	}{{-1, 2304, 4608}, {1<<31 - 1, 2147483646, 2147483646}, {1 << 30, 2147483646, 2147483646}, {4194305, 8388610, 8388610}} {
		sk := newUDPSock(n)
		if err := sk.SetSockoptRcvbuf(c.v, true, true); err != nil {
			t.Fatal(err)
		}
		if err := sk.SetSockoptSndbuf(c.v, true, true); err != nil {
			t.Fatal(err)
		}
		eq(t, "rcvbuf", sk.Rcvbuf(), c.wantR)
		eq(t, "sndbuf", sk.Sndbuf(), c.wantS)
	}
	sk := newUDPSock(n)
	if err := sk.SetSockoptRcvbuf(100000, true, false); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("rcvbufforce without capability: %v", err)
	}
	if err := sk.SetSockoptSndbuf(100000, true, false); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("sndbufforce without capability: %v", err)
	}
	eq(t, "rcvbuf unchanged", sk.Rcvbuf(), 212992)
	eq(t, "sndbuf unchanged", sk.Sndbuf(), 212992)
	eq(t, "no lock", sk.BufLock(), 0)
}

func TestScenario06_Optlen(t *testing.T) {
	if _, err := ParseSockoptInt([]byte{1, 2}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("2-byte optval: %v", err)
	}
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, 5000)
	v, err := ParseSockoptInt(b)
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNet(t, Options{})
	sk := newUDPSock(n)
	_ = sk.SetSockoptRcvbuf(v, false, false)
	eq(t, "rcvbuf", sk.Rcvbuf(), 10000)
}

func TestScenario07_SoBufLock(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	sk.SetUserlocks(SockBindportLock)
	for _, v := range []int32{0, 1, 2, 3} {
		if err := sk.SetSockoptBufLock(v); err != nil {
			t.Fatal(err)
		}
		eq(t, "buflock", sk.BufLock(), v)
		eq(t, "bindport lock kept", sk.Userlocks()&SockBindportLock, uint32(SockBindportLock))
	}
	for _, v := range []int32{4, -1} {
		if err := sk.SetSockoptBufLock(v); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("SO_BUF_LOCK %d: %v", v, err)
		}
	}
	// SO_SNDBUF then SO_BUF_LOCK 0 turns autotuning back on.
	_ = sk.SetSockoptSndbuf(65536, false, false)
	eq(t, "locked", sk.TCPShouldExpandSndbuf(0, 10), false)
	_ = sk.SetSockoptBufLock(0)
	eq(t, "unlocked", sk.TCPShouldExpandSndbuf(0, 10), true)
}

func TestScenario10_SoReserveMem(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	if err := sk.SetSockoptReserveMem(65536); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Fatalf("65536: %v", err)
	}
	if err := sk.SetSockoptReserveMem(-1); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("-1: %v", err)
	}
}

func TestScenario12_DefaultBufferIdentity(t *testing.T) {
	p := Linux618Min
	eq(t, "SKB_TRUESIZE(256)", p.TruesizeOf(256), 832)
	eq(t, "SK_RMEM_DEFAULT", p.SkMemDefault(), 212992)
	n := newTestNet(t, Options{})
	eq(t, "rmem_default", n.Sysctls.RmemDefault(), 212992)
	eq(t, "wmem_default", n.Sysctls.WmemDefault(), 212992)
	eq(t, "SOCK_MIN_SNDBUF", p.SockMinSndbuf(), 4608)
	eq(t, "SOCK_MIN_RCVBUF", p.SockMinRcvbuf(), 2304)
}

func TestCloneInheritsBuffers(t *testing.T) {
	n := newTestNet(t, Options{})
	l := newTCPSock(n)
	_ = l.SetSockoptRcvbuf(50000, false, false)
	l.ForcedMemSchedule(100)
	c := l.Clone()
	eq(t, "rcvbuf", c.Rcvbuf(), 100000)
	eq(t, "sndbuf", c.Sndbuf(), 16384)
	eq(t, "locks", c.BufLock(), int32(SockRcvbufLock))
	eq(t, "fwd", c.ForwardAlloc(), 0)
	eq(t, "wmem_alloc", c.WmemAlloc(), 1)
}
