package p9

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Remote use of the 9P export is authenticated in one of two ways (the
// daemon refuses a non-loopback address with neither):
//
//   - mutual TLS (ServerTLS, ClientTLS): both ends present certificates
//     signed by a CA the other trusts, and the client certificate's common
//     name is the attaching user (CertUser), whatever Tattach says;
//   - an allow-list of client networks (AllowListener), for networks
//     trusted as a whole: no credentials, and the daemon says so in its
//     log.
//
// MakeCerts writes a CA and certificates for a first setup.

// loadPair loads a certificate and key, and a CA bundle into a pool.
func loadPair(certFile, keyFile, caFile string) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("CA %s: no PEM certificate in it", caFile)
	}
	return cert, pool, nil
}

// ServerTLS is the server's side of mutual TLS (sockfs serve --9p-tls
// CERT,KEY,CLIENT-CA): TLS 1.3, and a client certificate signed by the
// CA in clientCAFile is required.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, pool, err := loadPair(certFile, keyFile, clientCAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// ClientTLS is the client's side (sockfs import --tls
// CERT,KEY,SERVER-CA): it presents the certificate and accepts only a
// server certificate signed by the CA in serverCAFile and valid for the
// name or address dialled.
func ClientTLS(certFile, keyFile, serverCAFile string) (*tls.Config, error) {
	cert, pool, err := loadPair(certFile, keyFile, serverCAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// CertUser is an Options.Attach for connections accepted through a
// ServerTLS listener: the attaching user is the verified client
// certificate's common name (a user of this host, or a decimal uid;
// nobody if neither), whatever uname and n_uname say. A connection
// without a verified certificate is refused.
func CertUser(nc net.Conn, uname string, nuname uint32) (uint32, error) {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return 0, errors.New("not a TLS connection")
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return 0, errors.New("no verified client certificate")
	}
	return hostUsers.uid(st.PeerCertificates[0].Subject.CommonName), nil
}

// allowListener accepts connections only from its networks.
type allowListener struct {
	net.Listener
	allow []netip.Prefix
	log   *slog.Logger
}

// AllowListener wraps ln so that Accept returns only connections from
// the allow networks; others are closed at once and logged.
func AllowListener(ln net.Listener, allow []netip.Prefix, log *slog.Logger) net.Listener {
	return &allowListener{Listener: ln, allow: allow, log: log}
}

func (l *allowListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
		if err == nil && l.allowed(ap.Addr().Unmap()) {
			return nc, nil
		}
		l.log.Warn("9p: connection refused: not in --9p-allow", "client", nc.RemoteAddr().String())
		nc.Close()
	}
}

func (l *allowListener) allowed(a netip.Addr) bool {
	for _, p := range l.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TLSListener is tls.NewListener(ln, cfg) that also answers a client
// speaking plain 9P to it: its Tversion (size, type 100, NOTAG) gets an
// Rerror saying 9P goes inside TLS here, and the connection is closed.
// Without it, a 9P2000.L Tversion of 21 bytes read as a TLS alert record
// header (type 21) announcing 100 bytes, and the handshake waited for
// them until its timeout (10 s) while the client waited for an answer.
func TLSListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return tls.NewListener(plainGuardListener{ln}, cfg)
}

type plainGuardListener struct{ net.Listener }

func (l plainGuardListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &plainGuard{Conn: nc, br: bufio.NewReaderSize(nc, 512)}, nil
}

// plainGuard looks at a connection's first bytes before TLS reads them.
type plainGuard struct {
	net.Conn
	br      *bufio.Reader
	checked bool
}

// errPlain9P ends the handshake of a client that spoke plain 9P.
var errPlain9P = errors.New("plain 9P on the TLS port")

// plainTLSText is the Rerror's text for a plain 9P client.
const plainTLSText = "this server speaks 9P inside mutual TLS (sockfs import --tls CERT,KEY,CA)"

func (g *plainGuard) Read(p []byte) (int, error) {
	if !g.checked {
		g.checked = true
		// A TLS record starts with a type of 20-23 and a version of 3.x,
		// so no TLS client's bytes 4-6 are 100 (Tversion), 0xff, 0xff.
		if h, err := g.br.Peek(hdrLen); err == nil && h[4] == msgTversion && le.Uint16(h[5:]) == noTag {
			var e enc
			e.start(msgRerror, noTag)
			e.str(plainTLSText)
			g.Conn.Write(e.finish())
			return 0, errPlain9P
		}
	}
	return g.br.Read(p)
}

// MakeCerts writes, in dir, a CA (ca.crt, ca.key) and certificates signed
// by it: server.crt and server.key, valid for hosts (names or IP
// addresses); and NAME.crt and NAME.key for each client name, whose
// common name is the user the server attaches it as. Keys are ECDSA
// P-256, written 0600; certificates are valid for a year. Existing files
// are not overwritten.
func MakeCerts(dir string, hosts, clients []string) error {
	if len(hosts) == 0 {
		return errors.New("no server host names or addresses")
	}
	if err := os.MkdirAll(dir, 0755); err != nil {
		return err
	}
	names := []string{"ca", "server"}
	names = append(names, clients...)
	for _, n := range names {
		for _, ext := range []string{".crt", ".key"} {
			if _, err := os.Stat(filepath.Join(dir, n+ext)); err == nil {
				return fmt.Errorf("%s exists: not overwriting", filepath.Join(dir, n+ext))
			}
		}
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "sockfs 9P CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	if err := writePair(dir, "ca", caDER, caKey); err != nil {
		return err
	}
	leaf := func(name string, usage x509.ExtKeyUsage, dns []string, ips []net.IP, cn string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.AddDate(1, 0, 0),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     dns,
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		return writePair(dir, name, der, key)
	}
	var dns []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	if err := leaf("server", x509.ExtKeyUsageServerAuth, dns, ips, hosts[0]); err != nil {
		return err
	}
	for _, c := range clients {
		if c == "" || c == "ca" || c == "server" || filepath.Base(c) != c {
			return fmt.Errorf("bad client name %q", c)
		}
		if err := leaf(c, x509.ExtKeyUsageClientAuth, nil, nil, c); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// writePair writes name.crt (PEM certificate) and name.key (PEM PKCS#8
// key, mode 0600) in dir.
func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), crt, 0644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0600)
}
