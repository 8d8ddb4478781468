package memctl

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestBootDefaultsFromNFBP(t *testing.T) {
	n := newTestNet(t, Options{})
	for name, want := range map[string]string{
		"ipv4/tcp_mem":                                     "287901\t383868\t575802\n",
		"ipv4/udp_mem":                                     "575802\t767736\t1151604\n",
		"ipv4/tcp_rmem":                                    "4096\t131072\t33554432\n",
		"ipv4/tcp_wmem":                                    "4096\t16384\t4194304\n",
		"core/rmem_max":                                    "4194304\n",
		"core/wmem_max":                                    "4194304\n",
		"core/rmem_default":                                "212992\n",
		"core/wmem_default":                                "212992\n",
		"core/optmem_max":                                  "131072\n",
		"core/mem_pcpu_rsv":                                "256\n",
		"ipv4/udp_rmem_min":                                "4096\n",
		"ipv4/udp_wmem_min":                                "4096\n",
		"ipv4/tcp_notsent_lowat":                           "4294967295\n",
		"ipv4/tcp_moderate_rcvbuf":                         "1\n",
		"ipv4/tcp_adv_win_scale":                           "1\n",
		"ipv4/tcp_app_win":                                 "31\n",
		"ipv4/tcp_shrink_window":                           "0\n",
		"ipv4/tcp_workaround_signed_windows":               "0\n",
		"ipv4/tcp_recovery":                                "1\n",
		"ipv4/tcp_frto":                                    "2\n",
		"ipv4/tcp_syn_linear_timeouts":                     "4\n",
		"ipv4/tcp_ecn":                                     "2\n",
		"ipv4/tcp_ecn_fallback":                            "1\n",
		"ipv4/ip_no_pmtu_disc":                             "0\n",
		"ipv4/route/min_pmtu":                              "552\n",
		"ipv4/route/mtu_expires":                           "600\n",
		"ipv4/tcp_mtu_probing":                             "0\n",
		"ipv4/tcp_base_mss":                                "1024\n",
		"ipv4/tcp_mtu_probe_floor":                         "48\n",
		"ipv4/tcp_probe_threshold":                         "8\n",
		"ipv4/tcp_probe_interval":                          "600\n",
		"ipv4/tcp_retries1":                                "3\n",
		"ipv4/tcp_pingpong_thresh":                         "1\n",
		"ipv4/tcp_tso_win_divisor":                         "3\n",
		"module/tcp_cubic/parameters/hystart":              "1\n",
		"module/tcp_cubic/parameters/hystart_detect":       "3\n",
		"module/tcp_cubic/parameters/hystart_low_window":   "16\n",
		"module/tcp_cubic/parameters/hystart_ack_delta_us": "2000\n",
	} {
		s, ok := n.Sysctls.Lookup(name)
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		eq(t, name, s.Read(), want)
	}
	eq(t, "names", len(n.Sysctls.Names()), 96)
	d := ComputeBootDefaults(&Linux612Distro, nfbp235)
	eq(t, "6 MiB tcp_rmem[2] before 6.16", d.TCPRmem[2], int64(6<<20))
	small := ComputeBootDefaults(&Linux618Min, 100)
	eq(t, "small machine tcp_mem", small.TCPMem, [3]int64{96, 128, 192})
	eq(t, "small machine tcp_wmem[2]", small.TCPWmem[2], int64(65536))
	// The machine estimate: a 23.5 GiB MemTotal lands near the VM's value.
	est := NrFreeBufferPagesFromMemTotal(24636684)
	if est < nfbp235-20000 || est > nfbp235+20000 {
		t.Errorf("estimate %d, want about %d", est, nfbp235)
	}
	if EstimateNrFreeBufferPages() <= 0 {
		t.Error("no estimate for this machine")
	}
}

func TestScenario41_SysctlValidation(t *testing.T) {
	bad := []struct{ name, text string }{
		{"ipv4/tcp_rmem", "5000 0 300"},
		{"ipv4/tcp_rmem", "4096 131072 6291456x"},
		{"ipv4/tcp_rmem", "2147483647 2147483648 1"},
		{"ipv4/tcp_rmem", "4096,131072,6291456"},
		{"ipv4/tcp_rmem", "   \n"},
		{"ipv4/tcp_rmem", "\t"},
		{"ipv4/tcp_rmem", "1 2 3 4"},                   // below the minimum 4096
		{"ipv4/tcp_rmem", "8192 200 100"},              // 200 below the minimum (8192 not stored either)
		{"ipv4/tcp_rmem", "-0 1 2"},                    // -0 is 0, below min 1
		{"ipv4/tcp_rmem", "+1 2 3"},                    // no plus sign
		{"ipv4/tcp_rmem", "- 1 2"},                     // sign alone
		{"ipv4/tcp_rmem", "08 9 10"},                   // 8 is not octal
		{"ipv4/tcp_rmem", "1 2 0x"},                    // "0x" without digits: 0 then x
		{"ipv4/tcp_rmem", "000000000000000000001 2 3"}, // 21-character token
		{"ipv4/tcp_rmem", "1\r2 3"},                    // \r is not a separator
		{"ipv4/tcp_mem", "1 2 18446744073709551616"},
		{"ipv4/tcp_mem", "-1 2 3"},
		{"core/wmem_default", "4607"},
		{"core/rmem_max", "2303"},
		{"core/rmem_max", "2147483648"},
		{"core/mem_pcpu_rsv", "255"},
		{"ipv4/udp_rmem_min", "0"},
		{"ipv4/tcp_adv_win_scale", "32"},
		{"ipv4/tcp_adv_win_scale", "-32"},
		{"ipv4/tcp_app_win", "32"},
		{"ipv4/tcp_moderate_rcvbuf", "256"},
		{"ipv4/tcp_moderate_rcvbuf", "-1"},
		{"ipv4/tcp_shrink_window", "2"},
		{"ipv4/tcp_notsent_lowat", "4294967296"},
		{"ipv4/tcp_notsent_lowat", "-1"},
		{"core/optmem_max", "-1"},
		{"core/rmem_max", "1 2"},
		{"core/rmem_max", "abc"},
	}
	n := newTestNet(t, Options{})
	for _, c := range bad {
		s, _ := n.Sysctls.Lookup(c.name)
		before := s.Read()
		err := s.Write(c.text)
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s <- %q: err %v, want EINVAL", c.name, c.text, err)
			continue
		}
		if !strings.Contains(err.Error(), c.name) {
			t.Errorf("message %q does not name the sysctl", err)
		}
		eq(t, c.name+" unchanged after "+c.text, s.Read(), before)
	}
	good := []struct{ name, text, want string }{
		{"ipv4/tcp_rmem", "010000 0x1000 0X2000000", "4096\t4096\t33554432\n"},
		{"ipv4/tcp_rmem", "0x2000", "8192\t4096\t33554432\n"},                   // a shorter vector sets the leading values
		{"ipv4/tcp_rmem", "8192 65536\n", "8192\t65536\t33554432\n"},            // and keeps the rest
		{"ipv4/tcp_rmem", "300000 200000 100000 x", "300000\t200000\t100000\n"}, // unordered, then a short count
		{"ipv4/udp_mem", "3 2 1", "3\t2\t1\n"},
		{"ipv4/tcp_rmem", "  4096\t87380\n6291456\n", "4096\t87380\t6291456\n"},
		{"ipv4/tcp_rmem", "", "4096\t87380\t6291456\n"}, // zero-length: no change
		{"ipv4/tcp_mem", "18446744073709551615 18446744073709551615 18446744073709551615",
			"18446744073709551615\t18446744073709551615\t18446744073709551615\n"},
		{"ipv4/tcp_mem", "0 0 0", "0\t0\t0\n"},
		{"ipv4/tcp_adv_win_scale", "-31", "-31\n"},
		{"ipv4/tcp_moderate_rcvbuf", "255", "255\n"},
		{"ipv4/tcp_notsent_lowat", "4294967295\n", "4294967295\n"},
		{"core/mem_pcpu_rsv", "100000", "100000\n"},
		{"core/rmem_max", "2147483647", "2147483647\n"},
		{"ipv4/udp_rmem_min", " 1 ", "1\n"},
	}
	for _, c := range good {
		s, _ := n.Sysctls.Lookup(c.name)
		if err := s.Write(c.text); err != nil {
			t.Errorf("%s <- %q: %v", c.name, c.text, err)
			continue
		}
		eq(t, c.name+" after "+c.text, s.Read(), c.want)
	}
	if len(bad) < 20 {
		t.Fatal("need at least 20 malformed writes")
	}
}

func TestSysctlLiveValues(t *testing.T) {
	n := newTestNet(t, Options{})
	sk := newTCPSock(n)
	sk.SetSndbuf(1)
	mustWrite(t, n, "ipv4/tcp_wmem", "4096 16384 100000")
	sk.TCPSndbufExpand(1460, 1460, 100, 3, 2) // wants far more than 100000
	eq(t, "capped by the live tcp_wmem[2]", sk.Sndbuf(), 100000)
	mustWrite(t, n, "ipv4/tcp_mem", "0 1 2")
	eq(t, "tcp_mem", n.Sysctls.TCPMem(), [3]int64{0, 1, 2})
	eq(t, "limit read live", n.TCP.MemLimit(2), int64(2))
	// tcp_mem of 2^64-1 is -1 as a long: every allocation is over the limit.
	mustWrite(t, n, "ipv4/tcp_mem", "18446744073709551615 18446744073709551615 18446744073709551615")
	s2 := newTCPSock(n)
	s2.rmemAlloc.Store(1 << 20)
	eq(t, "over -1", s2.RmemSchedule(1), false)
}

func FuzzSysctlWrite(f *testing.F) {
	for _, s := range []string{"1 2 3", "0x10 010 5", "-1", " \n", "99999999999999999999999"} {
		f.Add(s)
	}
	n := NewNet(Options{NrFreeBufferPages: nfbp235})
	f.Fuzz(func(t *testing.T, text string) {
		for _, name := range []string{"ipv4/tcp_rmem", "ipv4/tcp_mem", "ipv4/tcp_app_win"} {
			s, _ := n.Sysctls.Lookup(name)
			before := s.Read()
			if err := s.Write(text); err != nil {
				if s.Read() != before {
					t.Fatalf("%s changed on error", name)
				}
				continue
			}
			// A successful write reads back as a valid write of itself.
			after := s.Read()
			if err := s.Write(after); err != nil || s.Read() != after {
				t.Fatalf("%s: read-back %q does not round-trip: %v", name, after, err)
			}
		}
	})
}

// TestModuleParamWrites: tcp_cubic's and tcp_dctcp's knobs are module
// parameters in Linux, sysfs files parsed by kstrtoint and kstrtouint
// (param_set_int, param_set_uint), not /proc/sys handlers: a leading '+'
// and one trailing newline are taken, blanks or a second number are
// EINVAL, a number too large ERANGE, and every write(2) is a whole value
// wherever the position is. They were parsed as proc_dointvec, which took
// " 7" and "7 2" and refused "+7". (The table is the live kernel's sysfs
// behaviour, seen on a per-namespace kstrto file, tx_queue_len.)
func TestModuleParamWrites(t *testing.T) {
	n := newTestNet(t, Options{})
	for _, c := range []struct {
		name, in string
		errno    syscall.Errno
		after    string
	}{
		{"module/tcp_cubic/parameters/hystart_detect", "+2\n", 0, "2\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "0x1", 0, "1\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "-1\n", 0, "-1\n"},
		{"module/tcp_cubic/parameters/hystart_detect", " 2\n", syscall.EINVAL, "3\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "2 3\n", syscall.EINVAL, "3\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "2\n\n", syscall.EINVAL, "3\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "2\t\n", syscall.EINVAL, "3\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "", 0, "3\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "2147483648", syscall.ERANGE, "3\n"},
		{"module/tcp_cubic/parameters/hystart_detect", "99999999999999999999", syscall.ERANGE, "3\n"},
		{"module/tcp_dctcp/parameters/dctcp_shift_g", "4294967295\n", 0, "4294967295\n"},
		{"module/tcp_dctcp/parameters/dctcp_shift_g", "4294967296", syscall.ERANGE, "4\n"},
		{"module/tcp_dctcp/parameters/dctcp_shift_g", "-1", syscall.EINVAL, "4\n"},
	} {
		s, _ := n.Sysctls.Lookup(c.name)
		def := s.Read()
		_, err := s.WriteN(c.in)
		var e syscall.Errno
		errors.As(err, &e)
		if e != c.errno || s.Read() != c.after {
			t.Errorf("%s <- %q: %v, reads %q; want %v and %q", c.name, c.in, err, s.Read(), c.errno, c.after)
		}
		if err := s.Write(def); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := n.Sysctls.Lookup("module/tcp_cubic/parameters/hystart_low_window")
	if _, next, err := s.WriteAt("8\n", 1); err != nil || next != 3 || s.Read() != "8\n" {
		t.Fatalf("a write at offset 1: %v, next %d, reads %q; want it applied", err, next, s.Read())
	}
}
