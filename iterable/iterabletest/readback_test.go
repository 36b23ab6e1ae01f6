package iterabletest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// getEvents calls a GET events endpoint and returns the status and events.
func getEvents(t *testing.T, rawURL, key string) (int, []map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var body struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if body.Events == nil {
		t.Fatalf("body %s has no events list", data)
	}
	return resp.StatusCode, body.Events
}

func TestGetEventsByUserID(t *testing.T) {
	_, base := startTest(t, Options{RateLimit: -1})
	var events []map[string]any
	for i := range 35 {
		events = append(events, event("eventName", "view", "userId", "user/1", "id", fmt.Sprintf("e%d", i),
			"createdAt", 1700000000+i, "dataFields", map[string]any{"i": i}))
	}
	events = append(events, event("eventName", "view", "userId", "other"))
	postEvents(t, base, DefaultAPIKey, events...)

	endpoint := base + "/api/events/byUserId/" + url.PathEscape("user/1")
	status, got := getEvents(t, endpoint, DefaultAPIKey)
	if status != http.StatusOK || len(got) != 30 {
		t.Fatalf("status %d with %d events, want 200 with the default 30", status, len(got))
	}
	if got[0]["id"] != "e34" {
		t.Errorf("first event %v, want the newest e34", got[0]["id"])
	}
	if got[0]["createdAt"] != "2023-11-14 22:13:54 +00:00" {
		t.Errorf("createdAt = %v, want Iterable's date format", got[0]["createdAt"])
	}
	if got[0]["eventType"] != "customEvent" || got[0]["userId"] != "user/1" {
		t.Errorf("event %v", got[0])
	}
	if _, n := getEvents(t, endpoint+"?limit=5", DefaultAPIKey); len(n) != 5 {
		t.Errorf("limit=5 returned %d events", len(n))
	}
	if _, n := getEvents(t, endpoint+"?limit=200", DefaultAPIKey); len(n) != 35 {
		t.Errorf("limit=200 returned %d events, want all 35", len(n))
	}
	for _, limit := range []string{"0", "201", "ten"} {
		if status, _ := getEvents(t, endpoint+"?limit="+limit, DefaultAPIKey); status != http.StatusBadRequest {
			t.Errorf("limit=%s: status %d, want 400", limit, status)
		}
	}
}

func TestGetEventsByEmail(t *testing.T) {
	_, base := startTest(t, Options{})
	postEvents(t, base, DefaultAPIKey,
		event("eventName", "open", "email", "a+b@example.com", "dataFields", map[string]any{"x": "y"}),
		event("eventName", "open", "email", "c@example.com"),
	)
	status, got := getEvents(t, base+"/api/events/"+url.PathEscape("a+b@example.com"), DefaultAPIKey)
	if status != http.StatusOK || len(got) != 1 {
		t.Fatalf("status %d with %d events, want 1", status, len(got))
	}
	data, _ := got[0]["dataFields"].(map[string]any)
	if got[0]["email"] != "a+b@example.com" || data["x"] != "y" {
		t.Errorf("event %v", got[0])
	}
	if _, none := getEvents(t, base+"/api/events/nobody@example.com", DefaultAPIKey); len(none) != 0 {
		t.Errorf("unknown email returned %d events, want 0", len(none))
	}
}

func TestGetEventsNeedsKey(t *testing.T) {
	_, base := startTest(t, Options{})
	if status, _ := getEvents(t, base+"/api/events/a@example.com", "wrong"); status != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", status)
	}
}

func TestIngestionDelayHidesNewEvents(t *testing.T) {
	sim, base := startTest(t, Options{IngestionDelay: 300 * time.Millisecond})
	postEvents(t, base, DefaultAPIKey, event("eventName", "a", "userId", "u"))
	endpoint := base + "/api/events/byUserId/u"
	if _, got := getEvents(t, endpoint, DefaultAPIKey); len(got) != 0 {
		t.Errorf("event visible at once despite the delay: %v", got)
	}
	if got := sim.EventCount(DefaultAPIKey); got != 1 {
		t.Errorf("EventCount = %d, want 1: Events ignores the delay", got)
	}
	waitFor(t, func() bool {
		_, got := getEvents(t, endpoint, DefaultAPIKey)
		return len(got) == 1
	})
}

func TestEventsReturnsACopy(t *testing.T) {
	sim, base := startTest(t, Options{})
	postEvents(t, base, DefaultAPIKey, event("eventName", "a", "userId", "u",
		"dataFields", map[string]any{"nested": map[string]any{"k": "v"}}))
	first := sim.Events(DefaultAPIKey)
	first[0].DataFields["nested"].(map[string]any)["k"] = "changed"
	first[0].EventName = "changed"
	second := sim.Events(DefaultAPIKey)
	if second[0].EventName != "a" || second[0].DataFields["nested"].(map[string]any)["k"] != "v" {
		t.Errorf("stored event changed through the copy: %+v", second[0])
	}
	if sim.Events("unknown") != nil {
		t.Error("Events(unknown) should be nil")
	}
}
