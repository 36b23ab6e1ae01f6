package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layover-dev/layover/internal/testenv"
)

// tlsClient returns a client that trusts only the given certificates.
func tlsClient(certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DisableKeepAlives: true,
		},
	}
}

// startServeTLS starts layover serve with env and waits until GET /readyz
// over HTTPS returns 200. It returns the process with an https:// base.
func startServeTLS(t *testing.T, env []string, client *http.Client) *serveProcess {
	t.Helper()
	p := launchServe(t, env, "https")
	if err := waitReadyWith(context.Background(), client, p.base+"/readyz", 20*time.Second); err != nil {
		t.Fatalf("serve not ready over HTTPS: %v\n%s", err, p.log.String())
	}
	return p
}

// TestServeTLS runs serve with a self-signed certificate. A batch posted
// over HTTPS is stored, and plain HTTP and TLS 1.1 are rejected. After the
// files are replaced and SIGHUP is sent, new connections get the new
// certificate from the same process.
func TestServeTLS(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := testenv.WriteSelfSignedCert(t, certPath, keyPath, "layover-first")
	client := tlsClient(first)
	serve := startServeTLS(t, testEnv(t.TempDir(), simURL,
		"LAYOVER_TLS_CERT="+certPath, "LAYOVER_TLS_KEY="+keyPath), client)

	status := postWith(t, client, serve.base)
	if status != http.StatusOK {
		t.Errorf("POST over HTTPS: HTTP %d, want 200", status)
	}
	plain := strings.Replace(serve.base, "https://", "http://", 1)
	resp, err := http.Get(plain + "/healthz")
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: HTTP %d, want 400", resp.StatusCode)
	}
	old := &tls.Config{RootCAs: certPool(first), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(serve.base, "https://"), old)
	if err == nil {
		conn.Close()
		t.Error("TLS 1.1 handshake succeeded, want TLS 1.2 at least")
	} else {
		t.Logf("TLS 1.1 handshake: %v", err)
	}

	second := testenv.WriteSelfSignedCert(t, certPath, keyPath, "layover-second")
	serve.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, serve, "tls certificate reloaded", 5*time.Second)
	conn, err = tls.Dial("tcp", strings.TrimPrefix(serve.base, "https://"), &tls.Config{RootCAs: certPool(second)})
	if err != nil {
		t.Fatalf("handshake after SIGHUP with the new certificate: %v", err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "layover-second" {
		t.Errorf("certificate after SIGHUP = %q, want layover-second", got)
	}
	conn.Close()
	if status := postWith(t, tlsClient(second), serve.base); status != http.StatusOK {
		t.Errorf("POST after the reload: HTTP %d, want 200", status)
	}
	serve.stop(t)
}

func certPool(cert *x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// postWith posts a small batch with the test key through client.
func postWith(t *testing.T, client *http.Client, base string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/event-batch", bytes.NewReader([]byte(`{"events":[]}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+webhookKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", base, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
