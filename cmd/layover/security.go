package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/layover-dev/layover/ingest"
)

// securityFlags registers the settings that protect the webhook server.
func (fs *flagSet) securityFlags() {
	c := fs.cfg
	fs.str(&c.APIKeysFile, "api-keys-file", "LAYOVER_API_KEYS_FILE", "",
		"file of API keys, one per line with # for comments, added to -api-keys and re-read on SIGHUP and when it changes")
	fs.str(&c.TLSCert, "tls-cert", "LAYOVER_TLS_CERT", "", "PEM certificate chain file. With -tls-key the server speaks HTTPS and reloads both files on SIGHUP")
	fs.str(&c.TLSKey, "tls-key", "LAYOVER_TLS_KEY", "", "PEM private key file of -tls-cert")
	fs.str(&c.AllowedNetworks, "allowed-networks", "LAYOVER_ALLOWED_NETWORKS", "",
		"comma-separated CIDRs allowed to POST /event-batch, such as mParticle's published ranges. Others get 403. Empty allows any address")
	fs.str(&c.TrustedProxies, "trusted-proxies", "LAYOVER_TRUSTED_PROXIES", "",
		"comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client")
	fs.integer(&c.MaxConnections, "max-connections", "LAYOVER_MAX_CONNECTIONS", ingest.DefaultMaxConnections,
		"maximum open connections, more wait in the listen backlog (0 for no limit)")
	fs.integer(&c.MaxInFlight, "max-in-flight", "LAYOVER_MAX_IN_FLIGHT", ingest.DefaultMaxInFlight,
		"maximum webhook requests being read or stored at once, more get 503 with Retry-After")
	fs.integer(&c.AuthFailureLimit, "auth-failure-limit", "LAYOVER_AUTH_FAILURE_LIMIT", ingest.DefaultAuthFailureLimit,
		"failed authentications per client address per minute before it gets 503 for the rest of the minute (0 for no limit)")
	fs.duration(&c.ReadTimeout, "read-timeout", "LAYOVER_READ_TIMEOUT", ingest.ServerReadTimeout,
		"maximum time to read a whole request, body included, before the sender is cut off (1s to 1h)")
}

// serveSecurity is the protection of the webhook server built from the
// configuration: keys, TLS certificate, source networks and limits.
type serveSecurity struct {
	keys             *ingest.KeyRing  // nil when authentication is off
	keyFile          *ingest.KeyFile  // nil without LAYOVER_API_KEYS_FILE
	certs            *ingest.CertFile // nil without TLS
	allowed          []netip.Prefix
	trusted          []netip.Prefix
	authFailureLimit int // as ingest.Options takes it: negative for no limit
}

// openSecurity validates the security settings and loads the API key file
// and the TLS certificate.
func openSecurity(c *config, keys []string, log *slog.Logger) (*serveSecurity, error) {
	if err := validateLimits(c); err != nil {
		return nil, err
	}
	sec := &serveSecurity{authFailureLimit: c.AuthFailureLimit}
	if c.AuthFailureLimit == 0 {
		sec.authFailureLimit = -1
	}
	var err error
	if sec.allowed, err = ingest.ParsePrefixes(c.AllowedNetworks); err != nil {
		return nil, usagef("LAYOVER_ALLOWED_NETWORKS: %v", err)
	}
	if sec.trusted, err = ingest.ParsePrefixes(c.TrustedProxies); err != nil {
		return nil, usagef("LAYOVER_TRUSTED_PROXIES: %v", err)
	}
	if err := sec.openKeys(c, keys, log); err != nil {
		return nil, err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, usagef("set both LAYOVER_TLS_CERT and LAYOVER_TLS_KEY (or -tls-cert and -tls-key), or neither")
	}
	if c.TLSCert != "" {
		if sec.certs, err = ingest.LoadCertFile(c.TLSCert, c.TLSKey); err != nil {
			return nil, usageError{err}
		}
	}
	return sec, nil
}

// openKeys builds the key ring from LAYOVER_API_KEYS and, when set, the
// key file. It leaves sec.keys nil when there is no key.
func (sec *serveSecurity) openKeys(c *config, keys []string, log *slog.Logger) error {
	var err error
	switch {
	case c.APIKeysFile != "":
		if sec.keyFile, err = ingest.OpenKeyFile(c.APIKeysFile, keys, log); err != nil {
			return usagef("LAYOVER_API_KEYS_FILE: %v", err)
		}
		sec.keys = sec.keyFile.Ring()
		log.Info("api keys loaded", "path", c.APIKeysFile, "key_count", sec.keys.Len())
		if info, err := os.Stat(c.APIKeysFile); err == nil && info.Mode().Perm()&0o077 != 0 {
			log.Warn("api key file is readable by other users, restrict it with chmod 600",
				"path", c.APIKeysFile, "mode", info.Mode().Perm().String())
		}
	case len(keys) > 0:
		if sec.keys, err = ingest.NewKeyRing(keys); err != nil {
			return usagef("LAYOVER_API_KEYS: %v", err)
		}
	}
	return nil
}

// validateLimits checks the connection, request and timeout limits.
func validateLimits(c *config) error {
	switch {
	case c.MaxConnections < 0:
		return usagef("invalid maximum connections %d (LAYOVER_MAX_CONNECTIONS): expected 0 for no limit, or more", c.MaxConnections)
	case c.MaxInFlight < 1:
		return usagef("invalid maximum requests in flight %d (LAYOVER_MAX_IN_FLIGHT): expected 1 or more", c.MaxInFlight)
	case c.AuthFailureLimit < 0:
		return usagef("invalid failed-authentication limit %d (LAYOVER_AUTH_FAILURE_LIMIT): expected 0 for no limit, or more", c.AuthFailureLimit)
	case c.ReadTimeout < time.Second || c.ReadTimeout > time.Hour:
		// The write timeout adds the store timeout to the read timeout, so
		// an enormous value would overflow.
		return usagef("invalid read timeout %s (LAYOVER_READ_TIMEOUT): expected 1s to 1h, such as 30s", c.ReadTimeout)
	}
	return nil
}

// server returns the webhook server for handler with the configured read
// timeout and TLS certificate.
func (sec *serveSecurity) server(c *config, handler http.Handler) *http.Server {
	srv := ingest.NewServer(c.Listen, handler)
	srv.ReadTimeout = c.ReadTimeout
	if c.ReadTimeout > srv.WriteTimeout {
		// The write deadline starts once the headers are read, so it must
		// leave time to store the body and respond after a slow read.
		srv.WriteTimeout = c.ReadTimeout + ingest.DefaultStoreTimeout
	}
	if sec.certs != nil {
		srv.TLSConfig = sec.certs.TLSConfig()
	}
	return srv
}

// serve serves HTTPS when a certificate is configured, and HTTP otherwise.
func (sec *serveSecurity) serve(srv *http.Server, ln net.Listener) error {
	if sec.certs != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// startReloads polls the key file for changes and, on each signal from
// hup, reloads the key file and the TLS certificate, until ctx ends.
func (sec *serveSecurity) startReloads(ctx context.Context, hup <-chan os.Signal, log *slog.Logger) {
	if sec.keyFile != nil {
		go sec.keyFile.Watch(ctx, ingest.DefaultKeyFilePollInterval)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				sec.reload(ctx, log)
			}
		}
	}()
}

// reload reloads the key file and the TLS certificate, keeping the current
// ones when a file is broken.
func (sec *serveSecurity) reload(ctx context.Context, log *slog.Logger) {
	if sec.keyFile == nil && sec.certs == nil {
		log.Info("SIGHUP received: nothing to reload, because neither LAYOVER_API_KEYS_FILE nor LAYOVER_TLS_CERT is set")
		return
	}
	log.Info("SIGHUP received: reloading the API key file and the TLS certificate")
	if sec.keyFile != nil {
		if err := sec.keyFile.Reload(ctx); err != nil {
			log.Error("api key reload failed, keeping the current keys", "error", err)
		}
	}
	if sec.certs == nil {
		return
	}
	if err := sec.certs.Reload(); err != nil {
		log.Error("tls certificate reload failed, keeping the current certificate", "error", err)
		return
	}
	leaf := sec.certs.Certificate().Leaf
	log.Info("tls certificate reloaded", "subject", leaf.Subject.String(),
		"not_after", leaf.NotAfter.Format(time.RFC3339))
}
