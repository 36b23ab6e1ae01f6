package main

import (
	"bytes"
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
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeCertificate writes a self-signed certificate for 127.0.0.1 with the
// given common name and its key as PEM files, and returns the certificate.
func writeCertificate(t *testing.T, certPath, keyPath, commonName string) *x509.Certificate {
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
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

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
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{base: "https://" + addr, log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(layoverBinary(t), "serve")
	p.cmd.Env = append(env, "LAYOVER_LISTEN="+addr)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready over HTTPS: %v\n%s", err, p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeTLS runs serve with a self-signed certificate. A batch posted
// over HTTPS is stored, and plain HTTP and TLS 1.1 are rejected. After the
// files are replaced and SIGHUP is sent, new connections get the new
// certificate from the same process.
func TestServeTLS(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCertificate(t, certPath, keyPath, "layover-first")
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

	second := writeCertificate(t, certPath, keyPath, "layover-second")
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
