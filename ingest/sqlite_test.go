package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// openSQLite opens a real SQLite queue in a temporary folder and closes it
// when the test ends.
func openSQLite(t *testing.T) *sqlite.Queue {
	t.Helper()
	q, err := sqlite.Open(context.Background(), t.TempDir(), queue.Options{})
	if err != nil {
		t.Fatalf("open sqlite queue: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// receiveAll receives every visible message of q, up to want of them.
func receiveAll(t *testing.T, q queue.Queue, want int) map[string][]byte {
	t.Helper()
	bodies := map[string][]byte{}
	for len(bodies) < want {
		msgs, err := q.Receive(context.Background(), queue.MaxReceiveBatch, time.Minute)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			bodies[m.ID] = m.Body
		}
	}
	return bodies
}

func TestSQLiteStoresConcurrentPosts(t *testing.T) {
	q := openSQLite(t)
	srv := httptest.NewServer(newTestHandler(t, q, testOptions(nil)))
	defer srv.Close()

	const workers, perWorker = 8, 5
	var mu sync.Mutex
	sentByID := map[string]string{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				body := fmt.Sprintf(`{"worker":%d, "i":%d}`, w, i)
				id, err := postBatch(srv.URL, body)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				sentByID[id] = body
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	stored := receiveAll(t, q, workers*perWorker)
	if len(stored) != workers*perWorker {
		t.Fatalf("queue holds %d messages, want %d", len(stored), workers*perWorker)
	}
	for id, body := range sentByID {
		if got := stored[id]; !bytes.Equal(got, []byte(body)) {
			t.Errorf("message %s = %q, want %q", id, got, body)
		}
	}
}

func TestSQLiteStoresFixtures(t *testing.T) {
	bodies := mparticleBodies(t)
	q := openSQLite(t)
	h := newTestHandler(t, q, testOptions(nil))

	sentByID := map[string][]byte{}
	for name, body := range bodies {
		rec := serve(h, newBatchRequest(gzipBytes(t, body), "X-API-Key", testKey,
			"Content-Encoding", "gzip"))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status = %d, want 200; body %s", name, rec.Code, rec.Body)
		}
		var resp storedResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%s: response %s: %v", name, rec.Body, err)
		}
		sentByID[resp.ID] = body
	}

	stored := receiveAll(t, q, len(bodies))
	if len(stored) != len(bodies) {
		t.Fatalf("queue holds %d messages, want %d", len(stored), len(bodies))
	}
	for id, body := range sentByID {
		if !bytes.Equal(stored[id], body) {
			t.Errorf("message %s differs from the posted fixture", id)
		}
	}
}

func TestSQLiteClosedQueue(t *testing.T) {
	q := openSQLite(t)
	h := newTestHandler(t, q, testOptions(nil))

	ready := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if ready.Code != http.StatusOK {
		t.Fatalf("readyz on open queue: status = %d, want 200", ready.Code)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("close queue: %v", err)
	}

	rec := serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("post to closed queue: status = %d, want 503", rec.Code)
	}
	if got := rec.Header().Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After = %q, want 5", got)
	}
	notReady := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if notReady.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz on closed queue: status = %d, want 503", notReady.Code)
	}
}
