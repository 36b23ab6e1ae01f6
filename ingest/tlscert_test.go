package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 with the
// given common name, and its key, as PEM files in dir.
func writeSelfSigned(t *testing.T, dir, commonName string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "PRIVATE KEY", keyDER)
	return certPath, keyPath
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertFileReload(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := writeSelfSigned(t, dir, "first")
	certs, err := LoadCertFile(certPath, keyPath)
	if err != nil {
		t.Fatalf("LoadCertFile: %v", err)
	}
	config := certs.TLSConfig()
	if config.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", config.MinVersion)
	}
	served, err := config.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || served.Leaf.Subject.CommonName != "first" {
		t.Fatalf("GetCertificate = %v, %v; want the first certificate", served, err)
	}

	writeSelfSigned(t, dir, "second")
	if err := certs.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if served, _ := config.GetCertificate(&tls.ClientHelloInfo{}); served.Leaf.Subject.CommonName != "second" {
		t.Errorf("after Reload the certificate is %q, want second", served.Leaf.Subject.CommonName)
	}

	if err := os.WriteFile(keyPath, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := certs.Reload(); err == nil {
		t.Error("Reload with a broken key succeeded, want an error")
	}
	if got := certs.Certificate().Leaf.Subject.CommonName; got != "second" {
		t.Errorf("after a failed Reload the certificate is %q, want second kept", got)
	}
	if _, err := LoadCertFile(certPath, filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("LoadCertFile with a missing key succeeded")
	}
}
