// Package iterabletest is an in-process simulator of Iterable's event API
// for tests, demos and dry runs. It serves POST /api/events/trackBulk with
// Iterable's authentication, size limit, strict JSON types, project types,
// per-event failure lists, field type registry, upsert by id and rate
// limit, and GET /api/events/{email} and /api/events/byUserId/{userId} to
// read stored events back. Faults can be injected at runtime.
//
// The package does not import testing, so commands can embed it. A Server
// is an http.Handler: mount it with httptest.NewServer, or call Start.
package iterabletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/layover-dev/layover/iterable"
)

// Simulator defaults. A zero value in Options selects them.
const (
	// DefaultAPIKey is the key of the single hybrid project that a Server
	// has when Options.Projects is empty.
	DefaultAPIKey = "iterabletest-key"
	// DefaultRateLimit is Iterable's published trackBulk limit, in requests
	// per second per project.
	DefaultRateLimit = 10.0
	// DefaultRateBurst is the number of requests a project may send at once
	// before the rate limit applies.
	DefaultRateBurst = 10
	// DefaultMaxBodyBytes is the request size above which trackBulk returns
	// 413. Iterable publishes 4 MB for users/bulkUpdate but no limit for
	// trackBulk, so the simulator assumes the same one.
	DefaultMaxBodyBytes = 4 << 20
)

// Options configures a Server. The zero value is a usable simulator with
// one hybrid project whose key is DefaultAPIKey.
type Options struct {
	// Projects are the projects the simulator serves, one per API key.
	// Default: one hybrid project with key DefaultAPIKey.
	Projects []Project
	// RateLimit is the trackBulk limit in requests per second per project.
	// Default DefaultRateLimit. A negative value turns rate limiting off.
	RateLimit float64
	// RateBurst is how many requests a project may send at once.
	// Default DefaultRateBurst.
	RateBurst int
	// RateLimitBody selects the body of a 429 response. Default JSON.
	RateLimitBody RateLimitBody
	// RetryAfter, when positive, is sent as the Retry-After header of a 429,
	// in whole seconds. Default: no header.
	RetryAfter time.Duration
	// MaxBodyBytes is the largest trackBulk body accepted.
	// Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// IngestionDelay is how long a stored event stays hidden from the GET
	// endpoints, as Iterable processes bulk events asynchronously. Default 0.
	IngestionDelay time.Duration
	// DetectDates makes strings in a recognised date format set a field's
	// type to "date" instead of "string". Default false.
	DetectDates bool
	// DiscardEvents keeps no accepted event, for load tests that would
	// otherwise hold every event in memory. Responses, users, field types
	// and Stats work as usual, but Events finds nothing. Default false.
	DiscardEvents bool
	// Seed seeds the random choice of fractional faults. Default: random.
	Seed uint64
	// Logger receives start-up and per-request debug logs. Default: none.
	Logger *slog.Logger
}

// Server is the simulator. It is safe for concurrent use, and every setter
// takes effect for the next request.
type Server struct {
	mu       sync.Mutex
	projects []*project
	byKey    map[string]*project
	limits   rateSettings
	maxBody  int64
	delay    time.Duration
	dates    bool
	discard  bool
	faults   []*activeFault
	rng      *rand.Rand
	stats    Stats

	logger    *slog.Logger
	mux       *http.ServeMux
	done      chan struct{}
	closeOnce sync.Once
	http      *http.Server
}

// New returns a simulator configured by opts. It panics when a project has
// an empty or duplicate API key or an unknown type, because that is a bug
// in the calling code.
func New(opts Options) *Server {
	s := &Server{
		byKey:   make(map[string]*project),
		maxBody: opts.MaxBodyBytes,
		delay:   opts.IngestionDelay,
		dates:   opts.DetectDates,
		discard: opts.DiscardEvents,
		logger:  opts.Logger,
		done:    make(chan struct{}),
		stats:   Stats{ByStatus: make(map[int]int)},
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.limits = newRateSettings(opts)

	projects := opts.Projects
	if len(projects) == 0 {
		projects = []Project{{APIKey: DefaultAPIKey, Type: Hybrid}}
	}
	for _, p := range projects {
		if err := s.AddProject(p); err != nil {
			panic(err)
		}
	}

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+iterable.TrackBulkPath, s.handleTrackBulk)
	s.mux.HandleFunc("GET /api/events/byUserId/{userId}", s.handleGetByUserID)
	s.mux.HandleFunc("GET /api/events/{email}", s.handleGetByEmail)
	s.mux.HandleFunc("/", handleNotFound)
	return s
}

// ServeHTTP serves the simulated API, so a Server can be mounted in
// httptest.NewServer or any other http.Server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Start listens on addr, which must be a loopback address such as
// "127.0.0.1:0" (the default when addr is empty), and serves in the
// background until Close. It returns the base URL to give to a client.
func (s *Server) Start(addr string) (baseURL string, err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("iterabletest: invalid listen address %q: %w", addr, err)
	}
	if !IsLoopbackHost(host) {
		return "", fmt.Errorf("iterabletest: invalid listen address %q: "+
			"use a loopback address such as 127.0.0.1:0", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("iterabletest: listen: %w", err)
	}

	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if err := s.startable(); err != nil {
		s.mu.Unlock()
		ln.Close()
		return "", err
	}
	s.http = srv
	s.mu.Unlock()

	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("iterable simulator stopped", "error", err)
		}
	}()
	baseURL = "http://" + ln.Addr().String()
	s.logger.Info("iterable simulator listening", "base_url", baseURL)
	return baseURL, nil
}

// IsLoopbackHost reports whether host, the host part of a listen address,
// is "localhost" or a loopback IP address: the only hosts Start accepts.
func IsLoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// startable returns why Start may not run, or nil. Server.mu must be held.
func (s *Server) startable() error {
	select {
	case <-s.done:
		return errors.New("iterabletest: server closed")
	default:
	}
	if s.http != nil {
		return errors.New("iterabletest: server already started")
	}
	return nil
}

// Close releases requests held by hang and latency faults and, after
// Start, stops the listener and closes open connections. It is safe to
// call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		srv := s.http
		s.mu.Unlock()
		if srv != nil {
			err = srv.Close()
		}
	})
	return err
}

// sleep waits for d and reports false when the request or the server
// ended first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// errorBody is Iterable's error response (IterableApiResponse).
type errorBody struct {
	Msg    string         `json:"msg"`
	Code   string         `json:"code"`
	Params map[string]any `json:"params"`
}

// writeJSON sends v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// writeError sends Iterable's error body with the given status.
func writeError(w http.ResponseWriter, status int, code, msg string, params map[string]any) {
	writeJSON(w, status, errorBody{Msg: msg, Code: code, Params: params})
}

// handleNotFound returns 404 for paths and methods the simulator does not
// serve.
func handleNotFound(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	writeError(w, http.StatusNotFound, "NotFound",
		fmt.Sprintf("[%s %s] not served by the Iterable simulator", r.Method, r.URL.Path), nil)
}
