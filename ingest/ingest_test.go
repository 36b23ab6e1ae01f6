package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/layover-dev/layover/queue"
)

const (
	testKey      = "key-current-7f3a"
	testOldKey   = "key-previous-91c2"
	testBatch    = `{"events":[{"data":{"event_name":"Home"},"event_type":"screen_view"}],"mpid":"-8433569"}`
	jsonMIMEType = "application/json"
)

// fakeQueue records Send calls. Setting sendErr or statsErr makes the
// matching method fail, and statsDelay makes Stats slow.
type fakeQueue struct {
	mu         sync.Mutex
	bodies     [][]byte
	sendErr    error
	statsErr   error
	statsDelay time.Duration
}

func (q *fakeQueue) Send(ctx context.Context, body []byte) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sendErr != nil {
		return "", q.sendErr
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	q.bodies = append(q.bodies, bytes.Clone(body))
	return fmt.Sprintf("msg-%d", len(q.bodies)), nil
}

func (q *fakeQueue) Stats(ctx context.Context) (queue.Stats, error) {
	q.mu.Lock()
	delay, err := q.statsDelay, q.statsErr
	q.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	return queue.Stats{}, err
}

func (q *fakeQueue) Receive(context.Context, int, time.Duration) ([]queue.Message, error) {
	return nil, errors.New("fake queue: Receive not implemented")
}

func (q *fakeQueue) Delete(context.Context, []string) error {
	return errors.New("fake queue: Delete not implemented")
}

func (q *fakeQueue) ChangeVisibility(context.Context, string, time.Duration) error {
	return errors.New("fake queue: ChangeVisibility not implemented")
}

func (q *fakeQueue) Release(context.Context, []string) error {
	return errors.New("fake queue: Release not implemented")
}

func (q *fakeQueue) Close() error { return nil }

// sent returns copies of the bodies stored so far.
func (q *fakeQueue) sent() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([][]byte(nil), q.bodies...)
}

// testOptions returns options with two keys, a private registry and a
// logger that writes JSON lines to logs.
func testOptions(logs io.Writer) Options {
	if logs == nil {
		logs = io.Discard
	}
	return Options{
		APIKeys:  []string{testKey, testOldKey},
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: prometheus.NewRegistry(),
	}
}

func newTestHandler(t testing.TB, q queue.Queue, opts Options) http.Handler {
	t.Helper()
	h, err := NewHandler(q, opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}

// newBatchRequest returns a POST /event-batch request with body and the
// given header pairs ("Name", "value", ...).
func newBatchRequest(body []byte, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/event-batch", bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// decodeError checks that rec has a JSON body {"error": "..."} with a
// non-empty message and returns the message.
func decodeError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if got := rec.Header().Get("Content-Type"); got != jsonMIMEType {
		t.Errorf("Content-Type = %q, want %q", got, jsonMIMEType)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body.String(), err)
	}
	if len(body) != 1 {
		t.Errorf("error body has keys %v, want only \"error\"", body)
	}
	message, ok := body["error"].(string)
	if !ok || message == "" {
		t.Fatalf("error body %q has no non-empty string \"error\"", rec.Body.String())
	}
	return message
}

func TestEventBatchStoresBodyByteForByte(t *testing.T) {
	q := &fakeQueue{}
	h := newTestHandler(t, q, testOptions(nil))
	// White space, key order and unicode escapes must survive unchanged.
	body := []byte("\n {\"b\": 1,  \"a\":\"\\u00e9\", \"n\": 12345678901234567890}\r\n")

	rec := serve(h, newBatchRequest(body, "Authorization", "Bearer "+testKey,
		"Content-Type", jsonMIMEType))

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != jsonMIMEType {
		t.Errorf("Content-Type = %q, want %q", got, jsonMIMEType)
	}
	var resp struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response %q is not JSON: %v", rec.Body, err)
	}
	if resp.ID != "msg-1" {
		t.Errorf("id = %q, want msg-1", resp.ID)
	}
	sent := q.sent()
	if len(sent) != 1 {
		t.Fatalf("queue got %d Send calls, want 1", len(sent))
	}
	if !bytes.Equal(sent[0], body) {
		t.Errorf("stored body = %q, want %q", sent[0], body)
	}
}

func TestEventBatchAuthForms(t *testing.T) {
	tests := []struct {
		name   string
		header []string
	}{
		{"bearer", []string{"Authorization", "Bearer " + testKey}},
		{"bearer previous key", []string{"Authorization", "Bearer " + testOldKey}},
		{"bearer lowercase scheme", []string{"Authorization", "bearer " + testKey}},
		{"basic", []string{"Authorization", basicAuth("mparticle", testKey)}},
		{"basic empty user", []string{"Authorization", basicAuth("", testOldKey)}},
		{"basic colon in key", []string{"Authorization", basicAuth("u", "a:b")}},
		{"x-api-key", []string{"X-API-Key", testKey}},
		{"wrong bearer valid x-api-key", []string{
			"Authorization", "Bearer nope", "X-API-Key", testKey}},
		{"valid bearer wrong x-api-key", []string{
			"Authorization", "Bearer " + testKey, "X-API-Key", "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQueue{}
			opts := testOptions(nil)
			opts.APIKeys = append(opts.APIKeys, "a:b")
			h := newTestHandler(t, q, opts)

			rec := serve(h, newBatchRequest([]byte(testBatch), tt.header...))

			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			if n := len(q.sent()); n != 1 {
				t.Errorf("queue got %d Send calls, want 1", n)
			}
		})
	}
}

func TestEventBatchAuthRejected(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		reason string
	}{
		{"missing", nil, authReasonMissing},
		{"wrong bearer", []string{"Authorization", "Bearer wrong-key"}, authReasonInvalid},
		{"key prefix", []string{"Authorization", "Bearer " + testKey[:5]}, authReasonInvalid},
		{"key with suffix", []string{"Authorization", "Bearer " + testKey + "x"}, authReasonInvalid},
		{"empty bearer", []string{"Authorization", "Bearer "}, authReasonInvalid},
		{"wrong basic password", []string{"Authorization", basicAuth(testKey, "x")}, authReasonInvalid},
		{"basic without colon", []string{"Authorization",
			"Basic " + base64.StdEncoding.EncodeToString([]byte(testKey))}, authReasonInvalid},
		{"basic not base64", []string{"Authorization", "Basic %%%"}, authReasonInvalid},
		{"unknown scheme", []string{"Authorization", "Token " + testKey}, authReasonInvalid},
		{"key without scheme", []string{"Authorization", testKey}, authReasonInvalid},
		{"wrong x-api-key", []string{"X-API-Key", "wrong-key"}, authReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQueue{}
			var logs bytes.Buffer
			h := newTestHandler(t, q, testOptions(&logs))

			rec := serve(h, newBatchRequest([]byte(testBatch), tt.header...))

			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", rec.Code, rec.Body)
			}
			challenges := rec.Header().Values("WWW-Authenticate")
			if len(challenges) != 2 {
				t.Errorf("WWW-Authenticate = %q, want a Bearer and a Basic challenge", challenges)
			}
			message := decodeError(t, rec)
			if strings.Contains(message, testKey) {
				t.Errorf("error message %q contains the key", message)
			}
			if n := len(q.sent()); n != 0 {
				t.Errorf("queue got %d Send calls, want 0", n)
			}
			if strings.Contains(logs.String(), testKey) {
				t.Errorf("logs contain the key: %s", logs.String())
			}
			if !strings.Contains(logs.String(), `"reason":"`+tt.reason+`"`) {
				t.Errorf("logs lack reason %q: %s", tt.reason, logs.String())
			}
		})
	}
}

func TestEventBatchStoreFailure(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"disk full", errors.New("write /data/queue.db: no space left on device")},
		{"closed queue", queue.ErrClosed},
		{"timeout", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQueue{sendErr: tt.err}
			var logs bytes.Buffer
			h := newTestHandler(t, q, testOptions(&logs))

			rec := serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey))

			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503; body %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After = %q, want 5", got)
			}
			message := decodeError(t, rec)
			if strings.Contains(message, "/data") {
				t.Errorf("error message %q exposes the storage error", message)
			}
			logged := logs.String()
			if !strings.Contains(logged, `"msg":"store failed"`) {
				t.Errorf("logs lack the store failure: %s", logged)
			}
			if !strings.Contains(logged, tt.err.Error()) {
				t.Errorf("logs lack the error %q: %s", tt.err, logged)
			}
			if strings.Contains(logged, "screen_view") || strings.Contains(logged, testKey) {
				t.Errorf("logs contain the body or the key: %s", logged)
			}
		})
	}
}

func TestEventBatchStoreRecovery(t *testing.T) {
	q := &fakeQueue{sendErr: errors.New("disk I/O error")}
	var logs bytes.Buffer
	h := newTestHandler(t, q, testOptions(&logs))

	for range 3 {
		serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey))
	}
	q.mu.Lock()
	q.sendErr = nil
	q.mu.Unlock()
	rec := serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey))

	if rec.Code != http.StatusOK {
		t.Fatalf("status after recovery = %d, want 200", rec.Code)
	}
	if n := strings.Count(logs.String(), `"msg":"store failed"`); n != 1 {
		t.Errorf("store failure logged %d times, want 1 within the interval", n)
	}
	if !strings.Contains(logs.String(), `"msg":"store recovered","component":"ingest","held_count":2`) {
		t.Errorf("logs lack the recovery with held_count 2: %s", logs.String())
	}
}

func TestEventBatchQueueTooLarge(t *testing.T) {
	q := &fakeQueue{sendErr: fmt.Errorf("sqlite send: %w", queue.ErrTooLarge)}
	h := newTestHandler(t, q, testOptions(nil))

	rec := serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey))

	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413; body %s", rec.Code, rec.Body)
	}
	decodeError(t, rec)
}

func TestEventBatchClientCanceled(t *testing.T) {
	q := &fakeQueue{}
	var logs bytes.Buffer
	h := newTestHandler(t, q, testOptions(&logs))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newBatchRequest([]byte(testBatch), "X-API-Key", testKey).WithContext(ctx)

	rec := serve(h, r)

	// net/http sends 200 for a handler that writes nothing, so the handler
	// must write an error even when no one reads it.
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
	decodeError(t, rec)
	if n := len(q.sent()); n != 0 {
		t.Errorf("queue got %d Send calls, want 0", n)
	}
	if !strings.Contains(logs.String(), `"level":"DEBUG","msg":"request canceled"`) {
		t.Errorf("logs lack the debug line: %s", logs.String())
	}
}

func TestEventBatchConcurrentPosts(t *testing.T) {
	q := &fakeQueue{}
	srv := httptest.NewServer(newTestHandler(t, q, testOptions(nil)))
	defer srv.Close()

	const workers, perWorker = 8, 10
	ids := make(chan string, workers*perWorker)
	errs := make(chan error, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id, err := postBatch(srv.URL, fmt.Sprintf(`{"worker":%d,"i":%d}`, w, i))
				if err != nil {
					errs <- err
					continue
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)
	close(errs)

	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %q returned twice", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*perWorker {
		t.Errorf("got %d distinct ids, want %d", len(seen), workers*perWorker)
	}
	if n := len(q.sent()); n != workers*perWorker {
		t.Errorf("queue got %d Send calls, want %d", n, workers*perWorker)
	}
}

// postBatch posts body to baseURL and returns the id of the stored message.
func postBatch(baseURL, body string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, baseURL+"/event-batch", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", jsonMIMEType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("decode response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d for %s", resp.StatusCode, body)
	}
	return out.ID, nil
}
