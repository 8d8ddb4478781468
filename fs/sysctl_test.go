package fs

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

// sysWrite is one write(2) to a sys/ file at offset off.
func sysWrite(t *testing.T, tr *Tree, text string, off int64, path ...string) (int, error) {
	t.Helper()
	h, err := open(t, tr, 0, syscall.O_WRONLY, path...)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	return h.(interface {
		Write(context.Context, []byte, int64) (int, error)
	}).Write(context.Background(), []byte(text), off)
}

func sysRead(t *testing.T, tr *Tree, path ...string) string {
	t.Helper()
	h, err := open(t, tr, 0, syscall.O_RDONLY, path...)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	buf := make([]byte, 4096)
	n, _ := h.(interface {
		Read(context.Context, []byte, int64) (int, error)
	}).Read(context.Background(), buf, 0)
	return string(buf[:n])
}

// TestSysctlFileWrites: the sys/ files take writes as Linux's /proc/sys
// does: `echo 8192 > tcp_rmem` sets the first value; a vector followed by
// more consumes only the vector (a short count) and the retried rest, at a
// non-zero offset, is ignored, so `echo 1 2 > somaxconn` leaves 1; an
// unknown congestion control is ENOENT; the available list is read-only.
func TestSysctlFileWrites(t *testing.T) {
	tr := newTestTree(t)
	rmem := []string{"sys", "ipv4", "tcp_rmem"}
	max := sysRead(t, tr, rmem...)[len("4096\t131072\t"):]
	if n, err := sysWrite(t, tr, "8192\n", 0, rmem...); n != 5 || err != nil {
		t.Fatalf("write 8192: %d %v", n, err)
	}
	if got := sysRead(t, tr, rmem...); got != "8192\t131072\t"+max {
		t.Fatalf("tcp_rmem %q", got)
	}
	som := []string{"sys", "core", "somaxconn"}
	if n, err := sysWrite(t, tr, "1 2\n", 0, som...); n != 2 || err != nil {
		t.Fatalf("write '1 2': %d %v, want a short count of 2", n, err)
	}
	if n, err := sysWrite(t, tr, "2\n", 2, som...); n != 2 || err != nil {
		t.Fatalf("rest at offset 2: %d %v", n, err)
	}
	if got := sysRead(t, tr, som...); got != "1\n" {
		t.Fatalf("somaxconn %q", got)
	}
	if _, err := sysWrite(t, tr, "4095\n", 0, rmem...); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("tcp_rmem 4095: %v", err)
	}
	cc := []string{"sys", "ipv4", "tcp_congestion_control"}
	if _, err := sysWrite(t, tr, "vegas\n", 0, cc...); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("vegas: %v, want ENOENT", err)
	}
	if _, err := sysWrite(t, tr, "reno\n", 0, cc...); err != nil || sysRead(t, tr, cc...) != "reno\n" {
		t.Fatalf("reno: %v %q", err, sysRead(t, tr, cc...))
	}
	if _, err := open(t, tr, 0, syscall.O_WRONLY, "sys", "ipv4", "tcp_available_congestion_control"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("open available for writing: %v", err)
	}
	if got := sysRead(t, tr, "sys", "ipv4", "tcp_available_congestion_control"); got != "reno bbr cubic dctcp\n" {
		t.Fatalf("available %q", got)
	}
}

// TestTCPCtlSockoptVerbs: the setsockopt verbs take their values with
// Linux's ranges (EINVAL), an unknown algorithm is ENOENT, and a
// conversation not owned by root may only choose an allowed one (EPERM).
func TestTCPCtlSockoptVerbs(t *testing.T) {
	tr := newTestTree(t)
	if _, err := sysWrite(t, tr, "reno\n", 0, "sys", "ipv4", "tcp_allowed_congestion_control"); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []uint32{1000, 0} {
		ctl, err := open(t, tr, uid, syscall.O_RDWR, "tcp", "clone")
		if err != nil {
			t.Fatal(err)
		}
		w := func(cmd string) error {
			_, err := ctl.(interface {
				Write(context.Context, []byte, int64) (int, error)
			}).Write(context.Background(), []byte(cmd+"\n"), 0)
			return err
		}
		for cmd, want := range map[string]error{
			"window_clamp 5000": nil, "user_timeout 1000": nil, "user_timeout -1": syscall.EINVAL,
			"maxseg 1000": nil, "maxseg 50": syscall.EINVAL, "quickack on": nil, "quickack 2": syscall.EINVAL,
			"keepidle 10": nil, "keepidle 0": syscall.EINVAL, "keepintvl 32768": syscall.EINVAL,
			"keepcnt 127": nil, "keepcnt 128": syscall.EINVAL, "congestion reno": nil,
			"congestion vegas": syscall.ENOENT, "congestion": syscall.EINVAL,
			"rcvlowat 1000": nil, "rcvlowat -1": nil, "rcvlowat x": syscall.EINVAL, "rcvlowat": syscall.EINVAL,
			"rcvlowat 2147483648": syscall.EINVAL, "rcvlowat 1 2": syscall.EINVAL,
		} {
			if err := w(cmd); !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Errorf("uid %d %q: %v, want %v", uid, cmd, err, want)
			}
		}
		want := error(syscall.EPERM)
		if uid == 0 {
			want = nil
		}
		if err := w("congestion cubic"); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("uid %d congestion cubic: %v, want %v", uid, err, want)
		}
		ctl.Release()
	}
}
