package iterabletest

import (
	"net/http"
	"testing"
	"time"
)

const oneEvent = `{"events":[{"eventName":"a","userId":"u"}]}`

// burst sends n requests at once and returns their statuses in order.
func burst(t *testing.T, url, key string, n int) []int {
	t.Helper()
	statuses := make([]int, n)
	for i := range statuses {
		statuses[i], _, _ = postRaw(t, url, "Api-Key", key, oneEvent)
	}
	return statuses
}

func TestRateLimitJSONBody(t *testing.T) {
	_, url := startTest(t, Options{RateLimit: 1, RateBurst: 2})
	statuses := burst(t, url, DefaultAPIKey, 2)
	for i, status := range statuses {
		if status != http.StatusOK {
			t.Errorf("request %d within burst: status %d", i, status)
		}
	}
	status, data, header := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
	if status != http.StatusTooManyRequests {
		t.Fatalf("third request: status %d, want 429", status)
	}
	want := `{"msg":"Exceeded rate limit.","code":"RateLimitExceeded","params":null}` + "\n"
	if string(data) != want {
		t.Errorf("body %q, want %q", data, want)
	}
	if got := header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q, want none by default", got)
	}
}

func TestRateLimitTextBodyWithRetryAfter(t *testing.T) {
	sim, url := startTest(t, Options{RateLimit: 1, RateBurst: 1, RateLimitBody: RateLimitText,
		RetryAfter: 1500 * time.Millisecond})
	burst(t, url, DefaultAPIKey, 1)
	status, data, header := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
	if status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", status)
	}
	if string(data) != RateLimitTextBody {
		t.Errorf("body %q, want %q", data, RateLimitTextBody)
	}
	if got := header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (1.5 s rounded up)", got)
	}
	if got := header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}

	sim.SetRateLimitResponse(RateLimitJSON, 0)
	_, _, header = postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
	if got := header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After after reset = %q, want none", got)
	}
}

func TestRateLimitIsPerProject(t *testing.T) {
	_, url := startTest(t, Options{RateLimit: 1, RateBurst: 1,
		Projects: []Project{{APIKey: "k1"}, {APIKey: "k2"}}})
	if got := burst(t, url, "k1", 2); got[1] != http.StatusTooManyRequests {
		t.Errorf("k1 second request: status %d, want 429", got[1])
	}
	if got := burst(t, url, "k2", 1); got[0] != http.StatusOK {
		t.Errorf("k2 first request: status %d, want 200", got[0])
	}
}

func TestRateLimitCanBeTurnedOff(t *testing.T) {
	sim, url := startTest(t, Options{RateLimit: -1})
	for i, status := range burst(t, url, DefaultAPIKey, 30) {
		if status != http.StatusOK {
			t.Fatalf("request %d: status %d with rate limiting off", i, status)
		}
	}
	sim.SetRateLimit(1, 1)
	if got := burst(t, url, DefaultAPIKey, 2); got[1] != http.StatusTooManyRequests {
		t.Errorf("after SetRateLimit(1, 1): statuses %v, want a 429 second", got)
	}
	sim.SetRateLimit(-1, 0)
	if got := burst(t, url, DefaultAPIKey, 3); got[2] != http.StatusOK {
		t.Errorf("after SetRateLimit(-1, 0): statuses %v, want all 200", got)
	}
}

func TestDefaultRateLimitAllowsTenPerSecond(t *testing.T) {
	limits := newRateSettings(Options{})
	start := time.Now()
	for i := range DefaultRateBurst {
		if !limits.allow(1, start) {
			t.Fatalf("request %d of the burst was limited", i)
		}
	}
	if limits.allow(1, start) {
		t.Error("request 11 at the same instant was allowed")
	}
	if !limits.allow(1, start.Add(100*time.Millisecond)) {
		t.Error("request 100ms later was limited, want one token refilled")
	}
	if limits.allow(1, start.Add(150*time.Millisecond)) {
		t.Error("request 150ms later was allowed, want the bucket empty again")
	}
	if !limits.allow(2, start) {
		t.Error("another project shares the first project's bucket")
	}
}

func TestRateLimitRefills(t *testing.T) {
	_, url := startTest(t, Options{RateLimit: 20, RateBurst: 1})
	burst(t, url, DefaultAPIKey, 1)
	time.Sleep(60 * time.Millisecond)
	if got := burst(t, url, DefaultAPIKey, 1); got[0] != http.StatusOK {
		t.Errorf("after refill: status %d, want 200", got[0])
	}
}
