package integration

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var pingReceived = regexp.MustCompile(`(\d+) received`)

func pingCount(t *testing.T, out string) string {
	t.Helper()
	m := pingReceived.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ping summary in:\n%s", out)
	}
	return m[1]
}

// The kernel pings the stack over the TUN device: plain, and with a 4000-byte
// payload that is fragmented on the way in and on the way out.
func TestServePing(t *testing.T) {
	needRoot(t)
	needTool(t, "ping")
	ns := newNetns(t)
	startServe(t, ns, "sfsping0")
	out, _ := ns.run("ping", "-c", "5", "-i", "0.2", "-W", "2", "198.18.0.2")
	if n := pingCount(t, out); n != "5" {
		t.Fatalf("ping: %s of 5 received\n%s", n, out)
	}
	out, _ = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "4000", "198.18.0.2")
	if n := pingCount(t, out); n != "3" {
		t.Fatalf("4000-byte ping: %s of 3 received\n%s", n, out)
	}
}

// SIGTERM removes the TUN device; a second daemon asking for a name that is
// taken fails with a clear message and its own exit code.
func TestServeLifecycle(t *testing.T) {
	needRoot(t)
	needTool(t, "ping")
	ns := newNetns(t)
	d := startServe(t, ns, "sfslife0")

	second := ns.cmd(sockfsBin(t), "serve", "--tun", "sfslife0")
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("second serve with the same name: %v (want exit code 5)\n%s", err, out)
	}
	if !strings.Contains(string(out), "sfslife0") || !strings.Contains(string(out), "already exists") {
		t.Fatalf("unclear message for a taken name: %s", out)
	}

	if err := d.stop(t); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, d.stderr)
	}
	if out, err := ns.run("ip", "link", "show", "sfslife0"); err == nil {
		t.Fatalf("TUN device still present after SIGTERM:\n%s", out)
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--addr", "nonsense"},
		{"--mtu", "100"},
		{"--addr", "198.18.0.2/24", "--host-addr", "10.1.1.1/24"},
		{"--addr6", "198.18.0.2/24"},
		{"--addr6", "fd00:5f::2/64", "--host-addr6", "fd00:60::1/64"},
		{"--host-addr6", "fd00:5f::2/64"}, // the same as --addr6's default
		{"extra"},
	} {
		out, err := exec.Command(sockfsBin(t), append([]string{"serve"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("serve %v: %v, want exit code 2\n%s", args, err, out)
		}
	}
}
