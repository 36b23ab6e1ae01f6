package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/ingest"
)

// Defaults of layover serve.
const (
	defaultListen   = "127.0.0.1:8080"
	defaultSchedule = "@hourly"
	shutdownTimeout = 30 * time.Second
)

// serveFlags registers the settings of the ingest server.
func (fs *flagSet) serveFlags() {
	c := fs.cfg
	fs.str(&c.Listen, "listen", "LAYOVER_LISTEN", defaultListen, "host:port of the webhook server; use 0.0.0.0:8080 to accept outside connections")
	fs.str(&c.APIKeys, "api-keys", "LAYOVER_API_KEYS", "", "comma-separated API keys accepted on POST /event-batch (several allow rotation)")
	fs.boolean(&c.NoAuth, "insecure-no-auth", "LAYOVER_INSECURE_NO_AUTH", false, "accept webhooks without an API key")
	fs.int64(&c.MaxBodyBytes, "max-body-bytes", "LAYOVER_MAX_BODY_BYTES", ingest.DefaultMaxBodyBytes,
		"largest webhook body accepted, before and after gzip decompression")
	fs.str(&c.Schedule, "schedule", "LAYOVER_SCHEDULE", defaultSchedule,
		`when to forward: a cron expression ("0 * * * *"), "@hourly", "@every 15m", or "off"`)
	fs.securityFlags()
}

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
		"failed authentications per client address per minute before it gets 429 for the rest of the minute (0 for no limit)")
	fs.duration(&c.ReadTimeout, "read-timeout", "LAYOVER_READ_TIMEOUT", ingest.ServerReadTimeout,
		"maximum time to read a whole request, body included, before the sender is cut off")
}

// runServe runs the webhook server and the scheduled forwarder until a
// signal arrives.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	fs.serveFlags()
	fs.queueFlags()
	fs.forwardFlags()
	fs.logFlags()
	c, err := fs.parse(args)
	if err != nil {
		return err
	}
	log, err := newLogger(c, stderr)
	if err != nil {
		return err
	}
	keys := splitKeys(c.APIKeys)
	if len(keys) == 0 && c.APIKeysFile == "" && !c.NoAuth {
		return usagef("no API key configured: set LAYOVER_API_KEYS (or -api-keys) or LAYOVER_API_KEYS_FILE, or pass -insecure-no-auth to accept unauthenticated webhooks")
	}
	sec, err := openSecurity(c, keys, log)
	if err != nil {
		return err
	}
	schedule, err := parseSchedule(c.Schedule)
	if err != nil {
		return err
	}
	if c.MaxBodyBytes < 1024 {
		return usagef("invalid maximum body size %d (LAYOVER_MAX_BODY_BYTES): expected at least 1024 bytes", c.MaxBodyBytes)
	}

	eng, err := openQueue(ctx, c, true)
	if err != nil {
		return err
	}
	defer eng.Close()

	var fwd *forward.Forwarder
	if schedule != nil {
		if fwd, err = newForwarder(c, eng, log); err != nil {
			return err
		}
	}
	registry, metrics := newRegistry()
	handler, err := ingest.NewHandler(eng, ingest.Options{
		Registry:         registry,
		Keys:             sec.keys,
		AllowNoAuth:      c.NoAuth,
		MaxBodyBytes:     c.MaxBodyBytes,
		AllowedNetworks:  sec.allowed,
		TrustedProxies:   sec.trusted,
		MaxInFlight:      c.MaxInFlight,
		AuthFailureLimit: sec.authFailureLimit,
		Logger:           log, // the handler adds component=ingest itself
	})
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return usagef("listen on %s (LAYOVER_LISTEN): %v", c.Listen, err)
	}
	if c.MaxConnections > 0 {
		ln = ingest.LimitConnections(ln, c.MaxConnections)
	}
	srv := sec.server(c, handler)
	log.Info("layover serving", "version", version, "addr", ln.Addr().String(), "queue", describeQueue(c),
		"schedule", c.Schedule, "auth", sec.keys != nil, "tls", sec.certs != nil,
		"allowed_networks", len(sec.allowed))
	if c.NoAuth {
		log.Warn("authentication is off: anyone who can reach the server can store batches")
	}

	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	sec.startReloads(runCtx, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- sec.serve(srv, ln) }()
	sched := startSchedule(runCtx, schedule, fwd, eng.lockForwarder, metrics, log, stdout)

	select {
	case <-ctx.Done():
		log.Info("shutting down: no new requests; finishing in-flight writes and forward runs", "timeout", shutdownTimeout)
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			cancelRuns()
			sched.stop()
			return fmt.Errorf("webhook server: %w", err)
		}
	}
	exitOnSecondSignal(log)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("webhook server did not stop in time", "error", err)
	}
	cancelRuns() // a running forward run releases its messages and returns
	sched.stop()
	log.Info("stopped")
	return nil
}

// exitOnSecondSignal makes a second SIGINT or SIGTERM end the process at
// once, for an operator who does not want to wait for the shutdown.
func exitOnSecondSignal(log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		log.Warn("second signal: exiting without waiting")
		os.Exit(exitFailure)
	}()
}

func splitKeys(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// parseSchedule parses LAYOVER_SCHEDULE; "off" returns nil.
func parseSchedule(spec string) (cron.Schedule, error) {
	if strings.EqualFold(strings.TrimSpace(spec), "off") {
		return nil, nil
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, usagef(`invalid schedule %q (LAYOVER_SCHEDULE): %v; expected a cron expression such as "0 * * * *", "@hourly", "@every 15m" or "off"`, spec, err)
	}
	return s, nil
}

// scheduler runs the forwarder on a schedule, never two runs at once.
type scheduler struct {
	cron *cron.Cron
	mu   sync.Mutex // held during a run
}

func startSchedule(ctx context.Context, s cron.Schedule, fwd *forward.Forwarder,
	lock func(context.Context) (func(), bool, error), metrics *forwardMetrics, log *slog.Logger, stdout io.Writer) *scheduler {
	sc := &scheduler{cron: cron.New()}
	if s == nil || fwd == nil {
		log.Info("forwarding is off (LAYOVER_SCHEDULE=off); run layover forward to drain the queue")
		return sc
	}
	log = log.With("component", "schedule")
	sc.cron.Schedule(s, cron.FuncJob(func() {
		if !sc.mu.TryLock() {
			log.Warn("previous forward run is still going; skipping this one")
			return
		}
		defer sc.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if lock != nil {
			unlock, ok, err := lock(ctx)
			if err != nil {
				log.Error("taking the forwarder lock failed; skipping this run", "error", err)
				return
			}
			if !ok {
				log.Info("another layover process is forwarding from this queue; skipping this run")
				return
			}
			defer unlock()
		}
		log.Info("forward run starting")
		report, err := forwardOnce(ctx, fwd, stdout)
		metrics.observe(report, err)
		if err != nil {
			log.Error("forward run ended with an error", "error", err)
		}
	}))
	sc.cron.Start()
	log.Info("forward schedule started", "next_run", s.Next(time.Now()).Format(time.RFC3339))
	return sc
}

// stop stops the schedule and waits for a running forward run to end.
func (sc *scheduler) stop() {
	<-sc.cron.Stop().Done()
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
	case c.ReadTimeout <= 0:
		return usagef("invalid read timeout %v (LAYOVER_READ_TIMEOUT): expected a positive duration such as 30s", c.ReadTimeout)
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

// startReloads polls the key file for changes and, on SIGHUP, reloads the
// key file and the TLS certificate, until ctx ends. Without either, SIGHUP
// keeps its default action of ending the process.
func (sec *serveSecurity) startReloads(ctx context.Context, log *slog.Logger) {
	if sec.keyFile != nil {
		go sec.keyFile.Watch(ctx, ingest.DefaultKeyFilePollInterval)
	}
	if sec.keyFile == nil && sec.certs == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
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
