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
	if len(keys) == 0 && !c.NoAuth {
		return usagef("no API key configured: set LAYOVER_API_KEYS (or -api-keys), or pass -insecure-no-auth to accept unauthenticated webhooks")
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
		Registry:     registry,
		APIKeys:      keys,
		AllowNoAuth:  c.NoAuth,
		MaxBodyBytes: c.MaxBodyBytes,
		Logger:       log, // the handler adds component=ingest itself
	})
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return usagef("listen on %s (LAYOVER_LISTEN): %v", c.Listen, err)
	}
	srv := ingest.NewServer(c.Listen, handler)
	log.Info("layover serving", "version", version, "addr", ln.Addr().String(), "queue", describeQueue(c),
		"schedule", c.Schedule, "auth", len(keys) > 0)
	if c.NoAuth {
		log.Warn("authentication is off: anyone who can reach the server can store batches")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
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
