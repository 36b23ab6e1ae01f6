package iterable_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
)

const testKey = "client-test-key"

// simulator starts an Iterable simulator with one project of the given
// type and returns it with a client for it.
func simulator(t *testing.T, typ iterabletest.ProjectType, opts iterable.ClientOptions) (
	*iterabletest.Server, *iterable.Client,
) {
	t.Helper()
	sim := iterabletest.New(iterabletest.Options{
		Projects:  []iterabletest.Project{{APIKey: testKey, Type: typ}},
		RateLimit: -1,
	})
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { sim.Close() })

	opts.BaseURL = ts.URL
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = 1000
	}
	client, err := iterable.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}

// apiError asserts that err is an *iterable.APIError and returns it.
func apiError(t *testing.T, err error) *iterable.APIError {
	t.Helper()
	var apiErr *iterable.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *iterable.APIError", err, err)
	}
	return apiErr
}

func TestTrackBulkSuccess(t *testing.T) {
	sim, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{})
	events := []iterable.Event{
		{UserID: "u1", EventName: "screen_view", ID: "evt-1", CreatedAt: 1700000000,
			DataFields: map[string]any{"screen": "Home"}},
		{Email: "a@example.com", EventName: "session_start", ID: "evt-2"},
	}
	resp, err := client.TrackBulk(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if resp.SuccessCount != 2 || resp.FailCount != 0 {
		t.Errorf("response %+v, want 2 successes", resp)
	}
	stored := sim.Events(testKey)
	if len(stored) != 2 {
		t.Fatalf("simulator stored %d events, want 2", len(stored))
	}
	if stored[0].ID != "evt-1" || stored[0].DataFields["screen"] != "Home" || stored[0].CreatedAt != 1700000000 {
		t.Errorf("stored %+v", stored[0])
	}
}

func TestTrackBulkSendsHeaders(t *testing.T) {
	var got http.Header
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"successCount":0,"failCount":0}`))
	}))
	defer ts.Close()
	client, err := iterable.NewClient(iterable.ClientOptions{BaseURL: ts.URL, APIKey: testKey, UserAgent: "ua/1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.TrackBulk(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Api-Key": testKey, "Content-Type": "application/json", "User-Agent": "ua/1"}
	for name, value := range want {
		if got.Get(name) != value {
			t.Errorf("header %s = %q, want %q", name, got.Get(name), value)
		}
	}
}

func TestTrackBulkPartialFailure(t *testing.T) {
	sim, client := simulator(t, iterabletest.EmailBased, iterable.ClientOptions{})
	if err := sim.AddUser(testKey, iterabletest.User{Email: "known@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := sim.DisallowEventName(testKey, "blocked"); err != nil {
		t.Fatal(err)
	}
	resp, err := client.TrackBulk(context.Background(), []iterable.Event{
		{Email: "known@example.com", EventName: "ok"},
		{Email: "unknown@example.com", EventName: "ok"},
		{Email: "broken", EventName: "ok"},
		{UserID: "nobody", EventName: "ok"},
		{Email: "known@example.com", EventName: "blocked"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.SuccessCount != 1 || resp.FailCount != 4 {
		t.Errorf("successCount %d failCount %d, want 1 and 4", resp.SuccessCount, resp.FailCount)
	}
	f := resp.FailedUpdates
	checks := map[string][2][]string{
		"notFoundEmails":       {f.NotFoundEmails, {"unknown@example.com"}},
		"invalidEmails":        {f.InvalidEmails, {"broken"}},
		"notFoundUserIds":      {f.NotFoundUserIDs, {"nobody"}},
		"deprecated invalid":   {resp.InvalidEmails, {"broken"}},
		"disallowedEventNames": {resp.DisallowedEventNames, {"blocked"}},
	}
	for name, c := range checks {
		if !slices.Equal(c[0], c[1]) {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
}

func TestTrackBulkUnauthorized(t *testing.T) {
	_, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{APIKey: "wrong-secret"})
	_, err := client.TrackBulk(context.Background(), []iterable.Event{{UserID: "u", EventName: "e"}})
	if !errors.Is(err, iterable.ErrUnauthorized) {
		t.Fatalf("error %v, want ErrUnauthorized", err)
	}
	e := apiError(t, err)
	if e.Code != iterable.CodeBadAPIKey || e.Temporary() {
		t.Errorf("APIError %+v, want BadApiKey and not temporary", e)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error %q contains the API key", err)
	}
}

func TestTrackBulkBadRequest(t *testing.T) {
	_, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{})
	_, err := client.TrackBulk(context.Background(), []iterable.Event{{UserID: "u", EventName: "e", ID: "not valid"}})
	e := apiError(t, err)
	if e.StatusCode != 400 || e.Code != iterable.CodeBadJSONBody || e.Temporary() {
		t.Errorf("APIError %+v, want 400 BadJsonBody, not temporary", e)
	}
	if e.Params["obj.events[0].id"] == nil {
		t.Errorf("Params %v lack obj.events[0].id", e.Params)
	}
}

func TestTrackBulkFieldTypeMismatch(t *testing.T) {
	_, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{})
	_, err := client.TrackBulk(context.Background(), []iterable.Event{
		{UserID: "u", EventName: "e", DataFields: map[string]any{"n": 1}},
		{UserID: "u", EventName: "e", DataFields: map[string]any{"n": "one"}},
	})
	e := apiError(t, err)
	if e.Code != iterable.CodeRequestFieldsTypesMismatched {
		t.Errorf("Code = %q, want %s", e.Code, iterable.CodeRequestFieldsTypesMismatched)
	}
	if _, ok := e.Params["validationErrors"].(map[string]any)["e:::n"]; !ok {
		t.Errorf("Params %v lack validationErrors e:::n", e.Params)
	}
}

func TestTrackBulkRateLimited(t *testing.T) {
	cases := []struct {
		name       string
		body       iterabletest.RateLimitBody
		retryAfter time.Duration
		wantCode   string
		wantMsg    string
	}{
		{"json with Retry-After", iterabletest.RateLimitJSON, 3 * time.Second,
			iterable.CodeRateLimitExceeded, "Exceeded rate limit."},
		{"json without Retry-After", iterabletest.RateLimitJSON, 0,
			iterable.CodeRateLimitExceeded, "Exceeded rate limit."},
		{"text with Retry-After", iterabletest.RateLimitText, 60 * time.Second, "", iterabletest.RateLimitTextBody},
		{"text without Retry-After", iterabletest.RateLimitText, 0, "", iterabletest.RateLimitTextBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{})
			sim.SetRateLimit(1, 1)
			sim.SetRateLimitResponse(tc.body, tc.retryAfter)
			events := []iterable.Event{{UserID: "u", EventName: "e"}}
			if _, err := client.TrackBulk(context.Background(), events); err != nil {
				t.Fatalf("first request: %v", err)
			}
			_, err := client.TrackBulk(context.Background(), events)
			e := apiError(t, err)
			if e.StatusCode != 429 || !e.Temporary() {
				t.Errorf("APIError %+v, want a temporary 429", e)
			}
			if e.Code != tc.wantCode || e.Msg != tc.wantMsg {
				t.Errorf("Code %q Msg %q, want %q and %q", e.Code, e.Msg, tc.wantCode, tc.wantMsg)
			}
			if e.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %s, want %s", e.RetryAfter, tc.retryAfter)
			}
		})
	}
}

func TestTrackBulkServerErrors(t *testing.T) {
	cases := []struct {
		name    string
		fault   iterabletest.Fault
		wantMsg string
	}{
		{"503 html", iterabletest.Fault{Status: 503, Body: iterabletest.ServiceUnavailablePage},
			"503 Service Temporarily Unavailable"},
		{"502 gateway json", iterabletest.Fault{Status: 502, Body: iterabletest.BadGatewayJSON}, "Bad Gateway"},
		{"500 empty", iterabletest.Fault{Status: 500}, "Internal Server Error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{})
			tc.fault.Count = 1
			if err := sim.InjectFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			_, err := client.TrackBulk(context.Background(), []iterable.Event{{UserID: "u", EventName: "e"}})
			e := apiError(t, err)
			if e.StatusCode != tc.fault.Status || !e.Temporary() {
				t.Errorf("APIError %+v, want a temporary %d", e, tc.fault.Status)
			}
			if e.Msg != tc.wantMsg {
				t.Errorf("Msg = %q, want %q", e.Msg, tc.wantMsg)
			}
		})
	}
}

func TestTrackBulkTimeout(t *testing.T) {
	sim, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{Timeout: 100 * time.Millisecond})
	if err := sim.InjectFault(iterabletest.Fault{Hang: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := client.TrackBulk(context.Background(), []iterable.Event{{UserID: "u", EventName: "e"}})
	if err == nil {
		t.Fatal("TrackBulk returned nil error for a hung request")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("TrackBulk took %s, want about the 100ms timeout", elapsed)
	}
	var apiErr *iterable.APIError
	if errors.As(err, &apiErr) {
		t.Errorf("timeout returned an APIError: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestTrackBulkConnectionReset(t *testing.T) {
	sim, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{})
	if err := sim.InjectFault(iterabletest.Fault{Reset: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := client.TrackBulk(context.Background(), []iterable.Event{{UserID: "u", EventName: "e"}})
	if err == nil {
		t.Fatal("TrackBulk returned nil error for a reset connection")
	}
	var apiErr *iterable.APIError
	if errors.As(err, &apiErr) {
		t.Errorf("connection reset returned an APIError: %v", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q contains the API key", err)
	}
}

func TestTrackBulkCancelled(t *testing.T) {
	_, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := client.TrackBulk(ctx, []iterable.Event{{UserID: "u", EventName: "e"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestTrackBulkPacing(t *testing.T) {
	const rps, calls = 50.0, 6
	sim, client := simulator(t, iterabletest.Hybrid, iterable.ClientOptions{RequestsPerSecond: rps})
	start := time.Now()
	for i := range calls {
		if _, err := client.TrackBulk(context.Background(), []iterable.Event{{UserID: "u", EventName: "e"}}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	minimum := time.Duration(float64(calls-1) / rps * float64(time.Second))
	if elapsed < minimum {
		t.Errorf("%d calls took %s, want at least %s at %v/s", calls, elapsed, minimum, rps)
	}
	if got := sim.RequestCount(); got != calls {
		t.Errorf("RequestCount = %d, want %d", got, calls)
	}
}

func TestTrackBulkUndecodableSuccess(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>OK</html>"))
	}))
	defer ts.Close()
	client, err := iterable.NewClient(iterable.ClientOptions{BaseURL: ts.URL, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.TrackBulk(context.Background(), nil)
	var syntaxErr *json.SyntaxError
	if !errors.As(err, &syntaxErr) {
		t.Errorf("error %v, want a wrapped JSON syntax error", err)
	}
}
