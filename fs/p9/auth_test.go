package p9

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockfs/fs"
)

// tlsEnv serves e's tree on 127.0.0.1 behind mutual TLS with certificates
// from MakeCerts (clients "root" and "nobody"); it returns the address and
// the directory of the certificates.
func (e *env) tlsServer(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := MakeCerts(dir, []string{"127.0.0.1", "localhost"}, []string{"root", "nobody"}); err != nil {
		t.Fatal(err)
	}
	if err := MakeCerts(dir, []string{"127.0.0.1"}, nil); err == nil {
		t.Fatal("MakeCerts overwrote existing files")
	}
	cfg, err := ServerTLS(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, tls.NewListener(ln, cfg), e.ta.Root(), Options{Attach: CertUser, HandshakeTimeout: time.Second})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), dir
}

func clientTLS(t *testing.T, dir, name string) *tls.Config {
	t.Helper()
	cfg, err := ClientTLS(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTLSAttachAsCertificate: over mutual TLS the attaching user is the
// client certificate's common name, whatever uid the client asks for: a
// conversation cloned with the "root" certificate is root's even when the
// client says uid 4242, and the "nobody" certificate may not write a
// sysctl.
func TestTLSAttachAsCertificate(t *testing.T) {
	e := newEnv(t)
	addr, dir := e.tlsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Dial(ctx, addr, RemoteOptions{Uid: 4242, TLS: clientTLS(t, dir, "root")})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctl := remoteOpen(t, r, "tcp/clone", syscall.O_RDWR)
	defer ctl.Release()
	buf := make([]byte, 32)
	k, err := ctl.Read(ctx, buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	var data fs.Node = e.ta.Root()
	for _, name := range []string{"tcp", string(buf[:k]), "data"} {
		data, _ = data.(fs.Dir).Lookup(name)
	}
	if uid := data.Stat().Uid; uid != 0 {
		t.Fatalf("conversation owner %d, want 0 (the certificate's root)", uid)
	}

	rn, err := Dial(ctx, addr, RemoteOptions{Uid: 0, TLS: clientTLS(t, dir, "nobody")})
	if err != nil {
		t.Fatal(err)
	}
	defer rn.Close()
	var n fs.Node = rn.Root()
	for _, name := range []string{"sys", "ipv4", "tcp_rmem"} {
		if n, err = n.(fs.Dir).Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.(fs.File).Open(ctx, fs.OpenReq{Flags: syscall.O_WRONLY}); err != syscall.EACCES {
		t.Fatalf("sysctl open for writing as the nobody certificate: %v, want EACCES", err)
	}
}

// TestTLSRefusesWithoutCertificate: no attach for a client without a
// certificate, with one from another CA, or speaking 9P without TLS.
func TestTLSRefusesWithoutCertificate(t *testing.T) {
	e := newEnv(t)
	addr, dir := e.tlsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	noCert := clientTLS(t, dir, "root")
	noCert.Certificates = nil
	if r, err := Dial(ctx, addr, RemoteOptions{TLS: noCert}); err == nil {
		r.Close()
		t.Fatal("attached without a client certificate")
	}

	other := t.TempDir()
	if err := MakeCerts(other, []string{"127.0.0.1"}, []string{"root"}); err != nil {
		t.Fatal(err)
	}
	foreign := clientTLS(t, other, "root")
	foreign.RootCAs = clientTLS(t, dir, "root").RootCAs // trusts the real server
	if r, err := Dial(ctx, addr, RemoteOptions{TLS: foreign}); err == nil {
		r.Close()
		t.Fatal("attached with a certificate of another CA")
	} else if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "tls: ") {
		// The user sees why (sockfs import printed only "input/output
		// error").
		t.Errorf("refused certificate: %q, want EIO naming the TLS alert", err)
	}

	// Plain 9P on the TLS port is never answered, and the connection is
	// closed once the handshake times out (1 s here).
	rc := &rawConn{nc: dialTCP(t, addr), d: dialectL}
	rc.send(t, tversion(65536, "9P2000.L"))
	if r, err := rc.tryRecv(10 * time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("plain 9P on the TLS port: %v %v, want the connection closed", r, err)
	}
}

// TestAllowListener: a connection from outside --9p-allow's networks is
// closed before any 9P; one from inside is served.
func TestAllowListener(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		allow  string
		served bool
	}{{"10.0.0.0/8", false}, {"127.0.0.0/8", true}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		al := AllowListener(ln, []netip.Prefix{netip.MustParsePrefix(c.allow)}, log)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, al, e.ta.Root(), Options{}) }()
		rc := &rawConn{nc: dialTCP(t, ln.Addr().String()), d: dialect9P}
		rc.send(t, tversion(65536, "9P2000"))
		r, err := rc.tryRecv(5 * time.Second)
		if served := err == nil && r.typ() == msgRversion; served != c.served {
			t.Fatalf("allow %s: served %v, want %v (%v)", c.allow, served, c.served, err)
		}
		cancel()
		<-done
	}
}
