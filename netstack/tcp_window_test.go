package netstack

import (
	"testing"

	"sockfs/memctl"
	"sockfs/netstack/clock"
	"sockfs/skb"
)

// bareSock is an unconnected socket on a fresh stack with the default
// 6.18 sysctls, for checking the memory formulas on crafted state.
func bareSock(t *testing.T) (*TCPSock, func(rmem int)) {
	t.Helper()
	s := New(Options{Clock: clock.NewSim(), Seed: 3})
	setLinuxDefaults(t, s.net)
	tp := s.NewTCP()
	var held *skb.SKB
	setRmem := func(rmem int) {
		tp.lockSock()
		defer tp.releaseSock()
		if held != nil {
			held.Free()
			held = nil
		}
		if rmem > 0 {
			held = skb.Alloc(1)
			held.SetTruesize(rmem)
			tp.sk.ForcedMemSchedule(rmem)
			memctl.SetOwnerR(held, tp.sk)
		}
	}
	t.Cleanup(func() { setRmem(0); tp.Abort(); s.Close() })
	return tp, setRmem
}

// Scenario 35: wscale 0, mss 1448, allowed 65536. free 4000 (< allowed/16)
// selects 0, and since the offered window cannot shrink, the old one is
// kept and TCPWantZeroWindowAdv counted. free 30000 with rcv_ssthresh 64088
// and rcv_wnd 29000 keeps 29000 (within one mss).
func TestTCPSelectWindowScenario35(t *testing.T) {
	tp, setRmem := bareSock(t)
	tp.rcvMss, tp.advmss, tp.rcvWscale = 1448, 1448, 0
	tp.windowClamp, tp.rcvSsthresh = 65535, 64088
	setRmem(131072 - 8000) // win_from_space(8000) = 4000
	if w := tp.selectWindowRaw(); w != 0 {
		t.Fatalf("free 4000: window %d, want 0", w)
	}
	tp.rcvNxt, tp.rcvWup, tp.rcvWnd = 5000, 4000, 20000 // 19000 still offered
	if w := tp.selectWindow(); w != 19000 {
		t.Fatalf("selectWindow %d, want the 19000 already offered", w)
	}
	if tp.stack.mib.Get(memctl.TcpExtTCPWantZeroWindowAdv) != 1 {
		t.Fatal("TCPWantZeroWindowAdv not counted")
	}
	setRmem(131072 - 60000) // free 30000
	tp.rcvSsthresh, tp.rcvWnd = 64088, 29000
	if w := tp.selectWindowRaw(); w != 29000 {
		t.Fatalf("free 30000: window %d, want 29000", w)
	}
}

// Scenario 33: DRS arithmetic with ratio 128, space 14480, tcp_rmem[2]
// 32 MiB: copied 40000 gives rcvbuf 723976, window_clamp 361988, space
// 40000; locked, only space changes.
func TestTCPRcvbufGrowScenario33(t *testing.T) {
	for _, locked := range []bool{false, true} {
		tp, _ := bareSock(t)
		if locked {
			tp.sk.SetSockoptRcvbuf(65536, false, false)
		}
		before := tp.sk.Rcvbuf()
		tp.rcvqSpace = 14480
		tp.rcvbufGrow(40000)
		if tp.rcvqSpace != 40000 {
			t.Fatalf("space %d", tp.rcvqSpace)
		}
		if locked {
			if tp.sk.Rcvbuf() != before {
				t.Fatalf("locked rcvbuf moved to %d", tp.sk.Rcvbuf())
			}
			continue
		}
		if tp.sk.Rcvbuf() != 723976 || tp.windowClamp != 361988 {
			t.Fatalf("rcvbuf %d window_clamp %d, want 723976 361988", tp.sk.Rcvbuf(), tp.windowClamp)
		}
	}
}

// Scenario 34: tcp_clamp_window raises an unlocked rcvbuf to what is queued;
// locked, rcvbuf stays and rcv_ssthresh drops to min(window_clamp, 2*advmss).
func TestTCPClampWindowScenario34(t *testing.T) {
	tp, setRmem := bareSock(t)
	tp.advmss, tp.windowClamp, tp.rcvSsthresh = 1448, 64088, 64088
	setRmem(200000)
	tp.clampWindow()
	if tp.sk.Rcvbuf() != 200000 || tp.rcvSsthresh != 64088 {
		t.Fatalf("unlocked: rcvbuf %d rcv_ssthresh %d, want 200000 64088", tp.sk.Rcvbuf(), tp.rcvSsthresh)
	}
	tp2, setRmem2 := bareSock(t)
	tp2.sk.SetSockoptRcvbuf(65536, false, false)
	tp2.advmss, tp2.windowClamp, tp2.rcvSsthresh = 1448, 64088, 64088
	setRmem2(200000)
	tp2.clampWindow()
	if tp2.sk.Rcvbuf() != 131072 || tp2.rcvSsthresh != 2896 {
		t.Fatalf("locked: rcvbuf %d rcv_ssthresh %d, want 131072 2896", tp2.sk.Rcvbuf(), tp2.rcvSsthresh)
	}
}
