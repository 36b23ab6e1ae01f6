package iterabletest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultForNextRequests(t *testing.T) {
	sim, url := startTest(t, Options{})
	err := sim.InjectFault(Fault{Status: http.StatusServiceUnavailable, Body: ServiceUnavailablePage, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		status, data, header := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
		if status != http.StatusServiceUnavailable {
			t.Fatalf("request %d: status %d, want 503", i, status)
		}
		if !strings.Contains(string(data), "<title>503") {
			t.Errorf("request %d: body %q, want the HTML page", i, data)
		}
		if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("request %d: Content-Type %q, want text/html", i, ct)
		}
	}
	if status, _, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent); status != http.StatusOK {
		t.Errorf("third request: status %d, want 200 once the fault is used up", status)
	}
	if got := sim.EventCount(DefaultAPIKey); got != 1 {
		t.Errorf("EventCount = %d, want 1: faulted requests store nothing", got)
	}
	stats := sim.Stats()
	if stats.Requests != 3 || stats.ByStatus[503] != 2 || stats.ByStatus[200] != 1 {
		t.Errorf("Stats = %+v, want 3 requests: two 503 and one 200", stats)
	}
}

func TestFaultBeforeAuthentication(t *testing.T) {
	sim, url := startTest(t, Options{})
	if err := sim.InjectFault(Fault{Status: http.StatusBadGateway, Body: BadGatewayJSON, Count: 1}); err != nil {
		t.Fatal(err)
	}
	status, data, header := postRaw(t, url, "Api-Key", "wrong-key", oneEvent)
	if status != http.StatusBadGateway || string(data) != BadGatewayJSON {
		t.Errorf("status %d body %q, want 502 %s", status, data, BadGatewayJSON)
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func TestFaultUntilCleared(t *testing.T) {
	sim, url := startTest(t, Options{RateLimit: -1})
	header := http.Header{"Retry-After": {"7"}, "Content-Type": {"text/plain"}}
	err := sim.InjectFault(Fault{Status: http.StatusTooManyRequests, Body: "Too Many Requests", Header: header})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		status, _, got := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
		if status != http.StatusTooManyRequests || got.Get("Retry-After") != "7" {
			t.Fatalf("request %d: status %d Retry-After %q, want 429 and 7", i, status, got.Get("Retry-After"))
		}
	}
	sim.ClearFaults()
	if status, _, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent); status != http.StatusOK {
		t.Errorf("after ClearFaults: status %d, want 200", status)
	}
}

func TestFaultFraction(t *testing.T) {
	sim, url := startTest(t, Options{RateLimit: -1, Seed: 42})
	if err := sim.InjectFault(Fault{Status: http.StatusInternalServerError, Fraction: 0.5}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	burst(t, url, DefaultAPIKey, n)
	failed := sim.Stats().ByStatus[500]
	// With p = 0.5 over 100 draws, 25 to 75 covers over 99.99 % of runs.
	if failed < 25 || failed > 75 {
		t.Errorf("%d of %d requests failed, want about half", failed, n)
	}
	if failed+sim.Stats().ByStatus[200] != n {
		t.Errorf("Stats %+v do not add up to %d", sim.Stats(), n)
	}
}

func TestFaultLatencyThenNormalHandling(t *testing.T) {
	sim, url := startTest(t, Options{})
	if err := sim.InjectFault(Fault{Latency: 150 * time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	status, _, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("request took %s, want at least 150ms", elapsed)
	}
	if status != http.StatusOK {
		t.Errorf("status %d, want 200 after the delay", status)
	}
	if got := sim.EventCount(DefaultAPIKey); got != 1 {
		t.Errorf("EventCount = %d, want 1", got)
	}
}

func TestFaultHangUntilClientTimeout(t *testing.T) {
	sim, url := startTest(t, Options{})
	if err := sim.InjectFault(Fault{Hang: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 100 * time.Millisecond}
	resp, err := client.Post(url+"/api/events/trackBulk", "application/json", strings.NewReader(oneEvent))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("hang fault returned status %d, want a timeout", resp.StatusCode)
	}
	var timeout interface{ Timeout() bool }
	if !errors.As(err, &timeout) || !timeout.Timeout() {
		t.Errorf("error %v, want a timeout", err)
	}
	waitFor(t, func() bool { return sim.Stats().ByStatus[0] == 1 })
}

func TestCloseReleasesHungRequests(t *testing.T) {
	sim, url := startTest(t, Options{})
	if err := sim.InjectFault(Fault{Hang: true}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/events/trackBulk",
			strings.NewReader(oneEvent))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Whether the request arrives before or after Close, it must end
	// without a response.
	time.Sleep(100 * time.Millisecond)
	sim.Close()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want the connection closed by Close", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("request still hung 3 s after Close")
	}
}

func TestFaultResetClosesConnection(t *testing.T) {
	sim, url := startTest(t, Options{})
	if err := sim.InjectFault(Fault{Reset: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/api/events/trackBulk", "application/json", strings.NewReader(oneEvent))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("reset fault returned status %d, want a connection error", resp.StatusCode)
	}
	if got := sim.Stats(); got.Requests != 1 || got.ByStatus[0] != 1 {
		t.Errorf("Stats = %+v, want one request without response", got)
	}
	if status, _, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent); status != http.StatusOK {
		t.Errorf("next request: status %d, want 200", status)
	}
}

func TestInjectFaultValidates(t *testing.T) {
	sim := New(Options{})
	bad := []Fault{
		{Status: 42},
		{Hang: true, Reset: true},
		{Hang: true, Status: 500},
		{Count: -1},
		{Fraction: 1.5},
		{Latency: -time.Second},
	}
	for _, f := range bad {
		if err := sim.InjectFault(f); err == nil {
			t.Errorf("InjectFault(%+v) returned nil, want an error", f)
		}
	}
}

func TestConcurrentRequestsAndSetters(t *testing.T) {
	sim, url := startTest(t, Options{RateLimit: -1})
	var wg sync.WaitGroup
	for worker := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
				if worker == 0 {
					_ = sim.InjectFault(Fault{Status: 500, Count: 1})
					sim.SetRateLimitResponse(RateLimitText, time.Second)
					_ = sim.AddUser(DefaultAPIKey, User{UserID: "other"})
					_ = sim.Events(DefaultAPIKey)
				}
			}
		}()
	}
	wg.Wait()
	if got := sim.RequestCount(); got != 40 {
		t.Errorf("RequestCount = %d, want 40", got)
	}
}

// waitFor polls cond for up to 2 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
