package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/ingest"
	"github.com/layover-dev/layover/queue/sqlite"
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
		fmt.Sprintf("largest webhook body accepted, before and after gzip decompression (1024 to %d bytes)", sqlite.MaxBodySize))
	fs.str(&c.Schedule, "schedule", "LAYOVER_SCHEDULE", defaultSchedule,
		`when to forward: a cron expression ("0 * * * *"), "@hourly", "@every 15m", or "off"`)
	fs.securityFlags()
}

// runServe runs the webhook server and the scheduled forwarder until a
// signal arrives.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// SIGHUP reloads the key file and the TLS certificate. Catching it from
	// the start keeps a reload sent during start-up from ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

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
	sec, schedule, setup, err := checkServeConfig(c, log)
	if err != nil {
		return err
	}
	// Listening before the queue opens makes a busy port fail before the
	// data folder is created.
	ln, err := listenWebhook(c)
	if err != nil {
		return err
	}
	defer ln.Close() // also closed by the server's shutdown; the second close does nothing

	eng, err := openQueue(ctx, c, true)
	if err != nil {
		return err
	}
	defer eng.Close()

	var fwd *forward.Forwarder
	if schedule != nil {
		fwd = newForwarder(c, setup, eng, log)
	}
	registry, metrics := newRegistry()
	registry.MustRegister(newQueueCollector(eng, log.With("component", "metrics")))
	srv, err := newWebhookServer(c, ln, eng, sec, registry, log)
	if err != nil {
		return err
	}

	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	sec.startReloads(runCtx, hup, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- sec.serve(srv, ln) }()
	sched := startSchedule(runCtx, schedule, fwd, eng.lockForwarder, metrics, log)

	select {
	case <-ctx.Done():
		log.Info("shutting down: no new requests, in-flight writes finish, "+
			"and a running forward run stops and leaves its batches for the next run", "timeout", shutdownTimeout)
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

// checkServeConfig validates the settings that serve needs before it opens
// the queue: listen address, keys, security, queue, schedule and body
// size. It returns the forwarder's setup when the schedule is on.
func checkServeConfig(c *config, log *slog.Logger) (*serveSecurity, cron.Schedule, *forwardSetup, error) {
	if strings.TrimSpace(c.Listen) == "" {
		// net.Listen takes an empty address as every interface on a random port.
		return nil, nil, nil, usagef("missing listen address (LAYOVER_LISTEN): expected host:port such as %s, or 0.0.0.0:8080 to accept outside connections", defaultListen)
	}
	keys := splitKeys(c.APIKeys)
	if len(keys) == 0 && c.APIKeysFile == "" && !c.NoAuth {
		return nil, nil, nil, usagef("no API key configured: set LAYOVER_API_KEYS (or -api-keys) or LAYOVER_API_KEYS_FILE, or pass -insecure-no-auth to accept unauthenticated webhooks")
	}
	sec, err := openSecurity(c, keys, log)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := checkQueueSettings(c, true); err != nil {
		return nil, nil, nil, err
	}
	schedule, err := parseSchedule(c.Schedule)
	if err != nil {
		return nil, nil, nil, err
	}

	var setup *forwardSetup
	if schedule == nil {
		_, err = checkForwardSettings(c) // so that a bad value shows before the first layover forward
	} else {
		// An SQS queue's own attributes set its retention, not LAYOVER_RETENTION.
		if !isSQSQueue(c.Queue) {
			if err := checkScheduleGaps(schedule, c.Schedule, c.Retention, time.Now()); err != nil {
				return nil, nil, nil, err
			}
		}
		setup, err = checkForwardConfig(c)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	// The SQLite and PostgreSQL engines store at most sqlite.MaxBodySize
	// bytes. A higher limit would let serve read a body and then respond 413,
	// which mParticle does not retry.
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > sqlite.MaxBodySize {
		return nil, nil, nil, usagef("invalid maximum body size %d (LAYOVER_MAX_BODY_BYTES): expected 1024 to %d bytes, the largest body the queue stores",
			c.MaxBodyBytes, sqlite.MaxBodySize)
	}
	return sec, schedule, setup, nil
}

// listenWebhook opens the webhook listener on LAYOVER_LISTEN, limited to
// LAYOVER_MAX_CONNECTIONS connections.
func listenWebhook(c *config) (net.Listener, error) {
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, usagef("listen on %s (LAYOVER_LISTEN): %v; expected a free host:port such as 127.0.0.1:8080 or 0.0.0.0:8080", c.Listen, err)
	}
	if c.MaxConnections > 0 {
		ln = ingest.LimitConnections(ln, c.MaxConnections)
	}
	return ln, nil
}

// newWebhookServer builds the ingest handler and the server for ln.
func newWebhookServer(c *config, ln net.Listener, eng *engine, sec *serveSecurity, registry *prometheus.Registry,
	log *slog.Logger) (*http.Server, error) {
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
		return nil, usageError{err}
	}
	log.Info("layover serving", "version", version, "addr", ln.Addr().String(), "queue", describeQueue(c),
		"schedule", c.Schedule, "auth", sec.keys != nil, "tls", sec.certs != nil,
		"allowed_networks", len(sec.allowed))
	if c.NoAuth {
		log.Warn("authentication is off: anyone who can reach the server can store batches")
	}
	return sec.server(c, handler), nil
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
