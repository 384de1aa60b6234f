package fcm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/internal/testenv"
)

// startNghttpd starts nghttpd, nghttp2's HTTP/2 server (Debian's
// nghttp2-server), over TLS on a free loopback port, answering every
// send to project's messages:send with a message name as FCM does, and
// returns its endpoint and a client trusting its certificate.
func startNghttpd(t *testing.T) (endpoint string, hc *http.Client) {
	t.Helper()
	bin, err := exec.LookPath("nghttpd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nghttpd", "/usr/bin/nghttpd"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if testenv.Required() {
			t.Fatal("nghttpd is not installed (deploy/local/up.sh installs nghttp2-server)")
		}
		t.Skip("nghttpd is not installed (apt-get install nghttp2-server)")
	}
	dir := t.TempDir()
	docs := filepath.Join(dir, "htdocs", "v1", "projects", project)
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, "messages:send"), []byte(`{"name":"projects/`+project+`/messages/nghttpd"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := selfSigned(t, dir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--htdocs", filepath.Join(dir, "htdocs"), "--address", "127.0.0.1", strconv.Itoa(port), keyFile, certFile)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitUntil(t, "nghttpd accepts connections", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return "https://" + addr + "/v1", &http.Client{Transport: tr}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestSendsToNghttpd: the pool's HTTP/2 connections (their frames
// coalesced into shared TLS records) work with an HTTP/2 server that is
// not Go's: nghttp2's. A burst of sends over two connections, more at
// once than their streams, all get their answer.
func TestSendsToNghttpd(t *testing.T) {
	endpoint, hc := startNghttpd(t)
	c, err := fcm.New(context.Background(), fcm.Config{ProjectID: project, Endpoint: endpoint, HTTPClient: hc,
		Connections: 2, CallTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range sendAtOnce(c, 600) {
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.ProviderID != "projects/"+project+"/messages/nghttpd" {
			t.Fatalf("answer %+v", o.res)
		}
	}
}
