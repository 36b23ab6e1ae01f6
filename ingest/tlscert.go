package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
)

// CertFile serves a TLS certificate loaded from a PEM certificate file and
// a PEM key file, and loads them again on Reload, so that a renewed
// certificate takes effect without a restart.
type CertFile struct {
	certPath, keyPath string
	cert              atomic.Pointer[tls.Certificate]
}

// LoadCertFile loads the certificate chain at certPath and its private key
// at keyPath. It fails when either file cannot be read or they do not match.
func LoadCertFile(certPath, keyPath string) (*CertFile, error) {
	c := &CertFile{certPath: certPath, keyPath: keyPath}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads both files again. On an error the current certificate stays
// in use.
func (c *CertFile) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", c.certPath, c.keyPath, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse TLS certificate %s: %w", c.certPath, err)
		}
	}
	c.cert.Store(&cert)
	return nil
}

// Certificate returns the certificate in use.
func (c *CertFile) Certificate() *tls.Certificate { return c.cert.Load() }

// TLSConfig returns a server configuration that takes the certificate from
// c at each handshake and accepts TLS 1.2 and newer.
func (c *CertFile) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cert.Load(), nil
		},
	}
}
