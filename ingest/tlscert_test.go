package ingest

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/layover-dev/layover/internal/testenv"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 with the
// given common name, and its key, as PEM files in dir.
func writeSelfSigned(t *testing.T, dir, commonName string) (certPath, keyPath string) {
	t.Helper()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testenv.WriteSelfSignedCert(t, certPath, keyPath, commonName)
	return certPath, keyPath
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
