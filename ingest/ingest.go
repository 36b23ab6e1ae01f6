// Package ingest is the HTTP side of Layover: it authenticates webhook
// requests, checks their size and content, stores each body in the queue and
// responds 2xx only once the queue has stored it durably.
//
// Routes: POST /event-batch, GET /healthz, GET /readyz and GET /metrics.
// Only /event-batch requires an API key.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/layover-dev/layover/queue"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBodyBytes       = 4 << 20
	DefaultStoreTimeout       = 20 * time.Second
	DefaultReadyTimeout       = 2 * time.Second
	DefaultRetryAfter         = 5 * time.Second
	DefaultFailureLogInterval = 5 * time.Second
	DefaultMaxInFlight        = 512
)

// Options configures NewHandler. The zero value of each field selects its
// default, but APIKeys or Keys must be set unless AllowNoAuth is true.
type Options struct {
	// APIKeys lists the keys accepted on POST /event-batch. Several keys
	// are valid at once so that a key can be rotated without downtime.
	APIKeys []string
	// Keys, when set, is used instead of APIKeys: a key set that can be
	// replaced while the handler runs (see KeyRing and KeyFile).
	Keys *KeyRing
	// AllowNoAuth accepts every request when APIKeys is empty and Keys is
	// nil. When keys are set, they are required even if AllowNoAuth is true.
	AllowNoAuth bool
	// AllowedNetworks, when not empty, limits POST /event-batch to clients
	// in these networks. Others get 403 before their key is checked. The
	// health and metrics routes stay open to every address.
	AllowedNetworks []netip.Prefix
	// TrustedProxies lists the networks of reverse proxies whose
	// X-Forwarded-For header names the client. The client is the right-most
	// entry outside these networks. When empty, the peer address is the
	// client.
	TrustedProxies []netip.Prefix
	// AuthFailureLimit is how many failed authentications one client
	// address (an IPv6 /64) may have per AuthFailureWindow. Past it, the
	// client gets 503 with Retry-After, without a key check, until the
	// window ends. Default 20. A negative value turns the limit off.
	AuthFailureLimit int
	// AuthFailureWindow is the window of AuthFailureLimit. Default 1 minute.
	AuthFailureWindow time.Duration
	// MaxInFlight bounds the POST /event-batch requests being read or
	// stored at once. More get 503 with Retry-After. It bounds memory too:
	// each one holds up to MaxBodyBytes. Default 512.
	MaxInFlight int
	// MaxBodyBytes limits the request body both as sent and after gzip
	// decompression. Default 4 MiB. mParticle drops a batch that gets 413
	// instead of retrying it, so keep this above the largest batch.
	MaxBodyBytes int64
	// StoreTimeout bounds one queue Send. On timeout the response is 503.
	// Default 20 s, below the server's 30 s write timeout.
	StoreTimeout time.Duration
	// ReadyTimeout bounds the queue Stats call of GET /readyz. Default 2 s.
	ReadyTimeout time.Duration
	// RetryAfter is sent in the Retry-After header of 503 responses,
	// rounded up to whole seconds. Default 5 s.
	RetryAfter time.Duration
	// FailureLogInterval is the minimum time between two log lines about
	// the same kind of repeated failure. Default 5 s.
	FailureLogInterval time.Duration
	// Logger receives the handler's logs. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the handler's metrics and is served on
	// GET /metrics. Default: a new registry with the Go runtime and process
	// collectors. Two handlers cannot share one registry.
	Registry *prometheus.Registry
}

// handler serves the routes of the package.
type handler struct {
	queue        queue.Queue
	keys         *KeyRing
	requireAuth  bool
	allowed      []netip.Prefix
	trusted      []netip.Prefix
	authLimiter  *failureLimiter // nil when the limit is off
	inFlight     chan struct{}   // a semaphore of MaxInFlight slots
	maxBodyBytes int64
	storeTimeout time.Duration
	readyTimeout time.Duration
	retryAfter   int // seconds
	logger       *slog.Logger
	metrics      *metrics

	authLog   *throttledLog
	blockLog  *throttledLog
	limitLog  *throttledLog
	rejectLog *throttledLog
	storeLog  *throttledLog
	readyLog  *throttledLog
}

// NewHandler returns the HTTP handler that stores each authenticated
// POST /event-batch body in q. It returns ErrNoAPIKeys when no key is set
// and AllowNoAuth is false, and an error naming the field for an invalid
// option or a metric name already in opts.Registry.
func NewHandler(q queue.Queue, opts Options) (http.Handler, error) {
	if q == nil {
		return nil, errors.New("new ingest handler: queue is nil")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new ingest handler: %w", err)
	}
	keys := opts.Keys
	if keys == nil {
		if keys, err = newOptionalKeyRing(opts.APIKeys); err != nil {
			return nil, fmt.Errorf("new ingest handler: Options.APIKeys: %w", err)
		}
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("new ingest handler: %w", err)
	}

	logger := opts.Logger.With("component", "ingest")
	interval := opts.FailureLogInterval
	h := &handler{
		queue:        q,
		keys:         keys,
		requireAuth:  opts.Keys != nil || len(opts.APIKeys) > 0,
		allowed:      opts.AllowedNetworks,
		trusted:      opts.TrustedProxies,
		inFlight:     make(chan struct{}, opts.MaxInFlight),
		maxBodyBytes: opts.MaxBodyBytes,
		storeTimeout: opts.StoreTimeout,
		readyTimeout: opts.ReadyTimeout,
		retryAfter:   int(math.Ceil(opts.RetryAfter.Seconds())),
		logger:       logger,
		metrics:      m,
		authLog:      newThrottledLog(logger, slog.LevelWarn, "authentication failed", interval),
		blockLog:     newThrottledLog(logger, slog.LevelWarn, "client blocked after failed authentications", interval),
		limitLog:     newThrottledLog(logger, slog.LevelWarn, "failed-authentication table is full, so new clients are not limited", interval),
		rejectLog:    newThrottledLog(logger, slog.LevelWarn, "request rejected", interval),
		storeLog:     newThrottledLog(logger, slog.LevelError, "store failed", interval),
		readyLog:     newThrottledLog(logger, slog.LevelWarn, "queue not ready", interval),
	}
	if err := registerInFlight(opts.Registry, func() int { return len(h.inFlight) }); err != nil {
		return nil, fmt.Errorf("new ingest handler: %w", err)
	}
	if opts.AuthFailureLimit > 0 {
		h.authLimiter = newFailureLimiter(opts.AuthFailureLimit, opts.AuthFailureWindow)
	}
	if !h.requireAuth {
		logger.Warn("authentication disabled: POST /event-batch accepts requests without an API key")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/event-batch", h.serveEventBatch)
	mux.HandleFunc("GET /healthz", serveHealth)
	mux.HandleFunc("GET /readyz", h.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("/", serveNotFound)
	return mux, nil
}

// withDefaults returns o with every zero field set to its default, or an
// error naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.MaxBodyBytes < 0 {
		return o, fmt.Errorf("Options.MaxBodyBytes is %d: use a positive size, or 0 for %d",
			o.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	for _, field := range []struct {
		name  string
		value time.Duration
	}{
		{"StoreTimeout", o.StoreTimeout},
		{"ReadyTimeout", o.ReadyTimeout},
		{"RetryAfter", o.RetryAfter},
		{"FailureLogInterval", o.FailureLogInterval},
	} {
		if field.value < 0 {
			return o, fmt.Errorf("Options.%s is %v: use a positive duration, or 0 for the default",
				field.name, field.value)
		}
	}
	if o.MaxInFlight < 0 {
		return o, fmt.Errorf("Options.MaxInFlight is %d: use a positive number, or 0 for %d",
			o.MaxInFlight, DefaultMaxInFlight)
	}
	if o.AuthFailureWindow < 0 {
		return o, fmt.Errorf("Options.AuthFailureWindow is %v: use a positive duration, or 0 for the default",
			o.AuthFailureWindow)
	}
	if o.Keys != nil && len(o.APIKeys) > 0 {
		return o, errors.New("both Options.Keys and Options.APIKeys are set: put every key in Keys")
	}
	if len(o.APIKeys) == 0 && o.Keys == nil && !o.AllowNoAuth {
		return o, ErrNoAPIKeys
	}

	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	o.StoreTimeout = durationOr(o.StoreTimeout, DefaultStoreTimeout)
	o.ReadyTimeout = durationOr(o.ReadyTimeout, DefaultReadyTimeout)
	o.RetryAfter = durationOr(o.RetryAfter, DefaultRetryAfter)
	o.FailureLogInterval = durationOr(o.FailureLogInterval, DefaultFailureLogInterval)
	o.AuthFailureWindow = durationOr(o.AuthFailureWindow, DefaultAuthFailureWindow)
	if o.AuthFailureLimit == 0 {
		o.AuthFailureLimit = DefaultAuthFailureLimit
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = newDefaultRegistry()
	}
	return o, nil
}

func durationOr(d, fallback time.Duration) time.Duration {
	if d == 0 {
		return fallback
	}
	return d
}

// statusResponse is the JSON body of the health responses.
type statusResponse struct {
	Status string `json:"status"`
}

// serveHealth responds 200 while the process can serve HTTP at all.
func serveHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, statusResponse{Status: "ok"})
}

// serveReady responds 200 when the queue returns its Stats within the ready
// timeout, and 503 otherwise.
func (h *handler) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.readyTimeout)
	defer cancel()
	if err := h.pingQueue(ctx); err != nil {
		h.readyLog.failure(ctx, slog.Any("error", err))
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: "queue not ready"})
		return
	}
	h.readyLog.recovered(ctx, "queue ready again")
	writeJSON(w, http.StatusOK, statusResponse{Status: "ready"})
}

// pingQueue calls Stats in its own goroutine, so that an engine that
// ignores ctx cannot hold the probe past the timeout. Such a call then
// finishes in the background.
func (h *handler) pingQueue(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		_, err := h.queue.Stats(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("queue stats: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queue stats: %w", ctx.Err())
	}
}

// serveNotFound responds to every unknown path with a JSON 404.
func serveNotFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, errNotFound, 0)
}
