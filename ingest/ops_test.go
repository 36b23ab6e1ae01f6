package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/layover-dev/layover/queue"
)

func TestHealthz(t *testing.T) {
	q := &fakeQueue{statsErr: errors.New("database is locked")}
	h := newTestHandler(t, q, testOptions(nil))

	rec := serve(h, httptest.NewRequest(http.MethodGet, "/healthz", nil))

	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200 even when the queue fails", rec.Code)
	}
	if got := strings.TrimSpace(rec.Body.String()); got != `{"status":"ok"}` {
		t.Errorf("body = %s, want {\"status\":\"ok\"}", got)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name   string
		queue  *fakeQueue
		status int
	}{
		{"queue ok", &fakeQueue{}, http.StatusOK},
		{"stats fails", &fakeQueue{statsErr: errors.New("disk I/O error")}, http.StatusServiceUnavailable},
		{"stats slow", &fakeQueue{statsDelay: 2 * time.Second}, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(nil)
			opts.ReadyTimeout = 100 * time.Millisecond
			h := newTestHandler(t, tt.queue, opts)

			start := time.Now()
			rec := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			elapsed := time.Since(start)

			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if elapsed > time.Second {
				t.Errorf("readyz took %v, want about the 100ms ready timeout at most", elapsed)
			}
			if tt.status != http.StatusOK {
				decodeError(t, rec)
			}
		})
	}
}

func TestReadyzRecoveryLogged(t *testing.T) {
	q := &fakeQueue{statsErr: errors.New("disk I/O error")}
	var logs bytes.Buffer
	h := newTestHandler(t, q, testOptions(&logs))

	serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	q.mu.Lock()
	q.statsErr = nil
	q.mu.Unlock()
	rec := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))

	if rec.Code != http.StatusOK {
		t.Errorf("status after recovery = %d, want 200", rec.Code)
	}
	if !strings.Contains(logs.String(), `"msg":"queue not ready"`) {
		t.Errorf("logs lack the failure: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"queue ready again"`) {
		t.Errorf("logs lack the recovery: %s", logs.String())
	}
}

func TestMetricsEndpoint(t *testing.T) {
	q := &fakeQueue{}
	h := newTestHandler(t, q, testOptions(nil))
	serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey))
	serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", "wrong"))
	serve(h, newBatchRequest([]byte(testBatch)))
	serve(h, newBatchRequest([]byte(`[]`), "X-API-Key", testKey))

	rec := serve(h, httptest.NewRequest(http.MethodGet, "/metrics", nil))

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	text := rec.Body.String()
	for _, want := range []string{
		`layover_ingest_requests_total{code="200"} 1`,
		`layover_ingest_requests_total{code="401"} 2`,
		`layover_ingest_requests_total{code="400"} 1`,
		`layover_ingest_auth_failures_total{reason="invalid"} 1`,
		`layover_ingest_auth_failures_total{reason="missing"} 1`,
		"layover_ingest_stored_bytes_total " + strconv.Itoa(len(testBatch)),
		"layover_ingest_store_duration_seconds_count 1",
		"layover_ingest_canceled_total 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMetricsDefaultRegistry(t *testing.T) {
	opts := testOptions(nil)
	opts.Registry = nil
	first := newTestHandler(t, &fakeQueue{}, opts)
	second := newTestHandler(t, &fakeQueue{}, opts)

	for i, h := range []http.Handler{first, second} {
		rec := serve(h, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("handler %d: status = %d, want 200", i, rec.Code)
		}
		if !strings.Contains(rec.Body.String(), "go_goroutines") {
			t.Errorf("handler %d: metrics lack the Go runtime collector", i)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := newTestHandler(t, &fakeQueue{}, testOptions(nil))

	rec := serve(h, httptest.NewRequest(http.MethodPost, "/events", nil))

	if rec.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", rec.Code)
	}
	decodeError(t, rec)
}

func TestNewHandlerErrors(t *testing.T) {
	shared := prometheus.NewRegistry()
	if _, err := NewHandler(&fakeQueue{}, Options{APIKeys: []string{"k"}, Registry: shared}); err != nil {
		t.Fatalf("first handler on shared registry: %v", err)
	}
	tests := []struct {
		name string
		q    queue.Queue
		opts Options
		want string
	}{
		{"no keys", &fakeQueue{}, Options{}, "no API key configured"},
		{"nil queue", nil, Options{APIKeys: []string{"k"}}, "queue is nil"},
		{"empty key", &fakeQueue{}, Options{APIKeys: []string{"k", ""}}, "API key 2 of 2 is empty"},
		{"padded key", &fakeQueue{}, Options{APIKeys: []string{" k"}}, "white space"},
		{"negative size", &fakeQueue{}, Options{APIKeys: []string{"k"}, MaxBodyBytes: -1},
			"Options.MaxBodyBytes is -1"},
		{"negative timeout", &fakeQueue{}, Options{APIKeys: []string{"k"}, StoreTimeout: -1},
			"Options.StoreTimeout is -1ns"},
		{"shared registry", &fakeQueue{}, Options{APIKeys: []string{"k"}, Registry: shared},
			"register ingest metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHandler(tt.q, tt.opts)
			if err == nil {
				t.Fatalf("NewHandler returned no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}

	if _, err := NewHandler(&fakeQueue{}, Options{}); !errors.Is(err, ErrNoAPIKeys) {
		t.Errorf("error without keys = %v, want ErrNoAPIKeys", err)
	}
}

func TestAuthFailureLogThrottled(t *testing.T) {
	var logs bytes.Buffer
	opts := testOptions(&logs)
	opts.FailureLogInterval = time.Hour
	h := newTestHandler(t, &fakeQueue{}, opts)

	for range 5 {
		serve(h, newBatchRequest([]byte(testBatch), "Authorization", "Bearer guessed-key"))
	}

	if n := strings.Count(logs.String(), `"msg":"authentication failed"`); n != 1 {
		t.Errorf("authentication failure logged %d times, want 1 within the interval", n)
	}
	if strings.Contains(logs.String(), "guessed-key") {
		t.Errorf("logs contain the presented key: %s", logs.String())
	}
}

func TestThrottledLogCounts(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	throttled := newThrottledLog(logger, slog.LevelWarn, "send failed", 5*time.Second)
	now := time.Unix(1_700_000_000, 0)
	throttled.now = func() time.Time { return now }
	ctx := context.Background()

	throttled.failure(ctx) // logged, count 1
	for range 3 {
		now = now.Add(time.Second)
		throttled.failure(ctx) // held back
	}
	now = now.Add(3 * time.Second)
	throttled.failure(ctx) // 6 s after the first line: logged, count 4
	throttled.failure(ctx) // held back
	throttled.recovered(ctx, "send recovered")
	throttled.recovered(ctx, "send recovered") // no failure since: silent

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{`"count":1`, `"count":4`, `"held_count":1`}
	if len(lines) != len(want) {
		t.Fatalf("got %d log lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, fragment := range want {
		if !strings.Contains(lines[i], fragment) {
			t.Errorf("line %d = %s, want it to contain %s", i, lines[i], fragment)
		}
	}
}

func TestNewServerTimeouts(t *testing.T) {
	srv := NewServer("127.0.0.1:0", http.NotFoundHandler())

	if srv.Addr != "127.0.0.1:0" {
		t.Errorf("Addr = %q", srv.Addr)
	}
	if srv.ReadHeaderTimeout != 5*time.Second {
		t.Errorf("ReadHeaderTimeout = %v, want 5s", srv.ReadHeaderTimeout)
	}
	if srv.ReadTimeout != 30*time.Second {
		t.Errorf("ReadTimeout = %v, want 30s", srv.ReadTimeout)
	}
	if srv.WriteTimeout != 30*time.Second {
		t.Errorf("WriteTimeout = %v, want 30s", srv.WriteTimeout)
	}
	if srv.IdleTimeout != 2*time.Minute {
		t.Errorf("IdleTimeout = %v, want 2m", srv.IdleTimeout)
	}
	if srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("MaxHeaderBytes = %d, want 64 KiB", srv.MaxHeaderBytes)
	}
	if srv.ErrorLog == nil {
		t.Error("ErrorLog is nil, want a slog bridge")
	}
}

func TestAllowNoAuth(t *testing.T) {
	q := &fakeQueue{}
	opts := testOptions(io.Discard)
	opts.APIKeys = nil
	opts.AllowNoAuth = true
	h := newTestHandler(t, q, opts)

	rec := serve(h, newBatchRequest([]byte(testBatch)))

	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200 without a key", rec.Code)
	}
	if n := len(q.sent()); n != 1 {
		t.Errorf("queue got %d Send calls, want 1", n)
	}
}

func TestAllowNoAuthWithKeys(t *testing.T) {
	opts := testOptions(nil)
	opts.AllowNoAuth = true
	h := newTestHandler(t, &fakeQueue{}, opts)

	rec := serve(h, newBatchRequest([]byte(testBatch)))

	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401 because keys are configured", rec.Code)
	}
}
