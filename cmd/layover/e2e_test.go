package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// eventsByID indexes the simulator's stored events by id.
func eventsByID(sim *iterabletest.Server) map[string]iterabletest.StoredEvent {
	byID := map[string]iterabletest.StoredEvent{}
	for _, ev := range sim.Events(iterabletest.DefaultAPIKey) {
		byID[ev.ID] = ev
	}
	return byID
}

func TestEndToEndDeliversLifecycleEvents(t *testing.T) {
	sim, simURL := startSimulator(t)
	env := testEnv(t.TempDir(), simURL)

	serve := startServe(t, env)
	for _, name := range []string{"ios-session.json", "android-object-identities.json"} {
		status, body := post(t, serve.base, webhookKey, sample(t, name))
		if status != 200 {
			t.Fatalf("POST %s: HTTP %d %s", name, status, body)
		}
		if !strings.Contains(body, `"id"`) {
			t.Errorf("POST %s: response %s has no message id", name, body)
		}
	}
	serve.stop(t)

	code, out := runLayover(t, env, "forward")
	if code != 0 {
		t.Fatalf("forward exit %d:\n%s", code, out)
	}
	byID := eventsByID(sim)

	want := []struct {
		id, name, email, userID string
		createdAt               int64
	}{
		{"3f9c2a10-5b7e-4c1d-9a8f-0d1e2f3a4b01", "Session Start", "ada@example.com", "demo-user-1001", 1764835201},
		{"3f9c2a10-5b7e-4c1d-9a8f-0d1e2f3a4b02", "Application State Transition", "ada@example.com", "demo-user-1001", 1764835201},
		{"3f9c2a10-5b7e-4c1d-9a8f-0d1e2f3a4b03", "Screen View", "ada@example.com", "demo-user-1001", 1764835203},
		{"3f9c2a10-5b7e-4c1d-9a8f-0d1e2f3a4b07", "Session End", "ada@example.com", "demo-user-1001", 1764835290},
		{"b7a1c3d5-0e2f-4a6b-8c9d-1e2f3a4b5c02", "Screen View", "", "demo-user-2002", 1764838820},
		{"b7a1c3d5-0e2f-4a6b-8c9d-1e2f3a4b5c04", "Session End", "", "demo-user-2002", 1764838842},
	}
	for _, w := range want {
		ev, ok := byID[w.id]
		if !ok {
			t.Errorf("event %s (%s) not delivered", w.id, w.name)
			continue
		}
		if ev.EventName != w.name {
			t.Errorf("event %s: name %q, want %q", w.id, ev.EventName, w.name)
		}
		if ev.Email != w.email {
			t.Errorf("event %s: email %q, want %q", w.id, ev.Email, w.email)
		}
		if ev.UserID != w.userID {
			t.Errorf("event %s: userId %q, want %q", w.id, ev.UserID, w.userID)
		}
		if ev.CreatedAt != w.createdAt {
			t.Errorf("event %s: createdAt %d, want %d (seconds)", w.id, ev.CreatedAt, w.createdAt)
		}
	}
	if ev := byID["3f9c2a10-5b7e-4c1d-9a8f-0d1e2f3a4b03"]; ev.DataFields["screenName"] != "Home" {
		t.Errorf("screen view dataFields.screenName = %v, want Home", ev.DataFields["screenName"])
	}
	if _, ok := byID["3f9c2a10-5b7e-4c1d-9a8f-0d1e2f3a4b05"]; ok {
		t.Errorf("custom event delivered, but custom events are off by default")
	}
	delivered := len(byID)
	requests := sim.Stats().Requests

	// A second run finds nothing to send.
	code, out = runLayover(t, env, "forward")
	if code != 0 {
		t.Fatalf("second forward exit %d:\n%s", code, out)
	}
	if got := sim.Stats().Requests; got != requests {
		t.Errorf("second forward sent %d requests, want none", got-requests)
	}

	// The same batch again updates the same events by id.
	serve = startServe(t, env)
	if status, body := post(t, serve.base, webhookKey, sample(t, "ios-session.json")); status != 200 {
		t.Fatalf("POST again: HTTP %d %s", status, body)
	}
	serve.stop(t)
	if code, out := runLayover(t, env, "forward"); code != 0 {
		t.Fatalf("third forward exit %d:\n%s", code, out)
	}
	if got := len(sim.Events(iterabletest.DefaultAPIKey)); got != delivered {
		t.Errorf("after redelivery the simulator has %d events, want %d", got, delivered)
	}
}

func TestEndToEndScheduledForward(t *testing.T) {
	sim, simURL := startSimulator(t)
	env := testEnv(t.TempDir(), simURL, "LAYOVER_SCHEDULE=@every 1s")
	serve := startServe(t, env)
	if status, body := post(t, serve.base, webhookKey, sample(t, "ios-session.json")); status != 200 {
		t.Fatalf("POST: HTTP %d %s", status, body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(sim.Events(iterabletest.DefaultAPIKey)) < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("scheduled forward delivered %d events within 15s, want 6\n%s",
				len(sim.Events(iterabletest.DefaultAPIKey)), serve.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The run records its metrics after the simulator has the events,
	// when it has deleted the batch, so /metrics may lag for a moment.
	var metrics []byte
	for {
		resp, err := http.Get(serve.base + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		metrics, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(metrics), `layover_forward_events_total{outcome="delivered"} 6`) ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		`layover_forward_events_total{outcome="delivered"} 6`,
		`layover_forward_runs_total{outcome="ok"}`,
		`layover_ingest_requests_total`,
		`layover_queue_visible_messages 0`,
		`layover_queue_dead_lettered_messages 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	serve.stop(t)
}

func TestIngestRejectsInvalidRequests(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	env := testEnv(dir, simURL, "LAYOVER_MAX_BODY_BYTES=4096")
	serve := startServe(t, env)

	big := []byte(`{"events":[],"pad":"` + strings.Repeat("x", 5000) + `"}`)
	cases := []struct {
		name string
		key  string
		body []byte
		want int
	}{
		{"missing key", "", []byte(`{}`), 401},
		{"wrong key", "not-the-key", []byte(`{}`), 401},
		{"oversized body", webhookKey, big, 413},
		{"JSON array", webhookKey, []byte(`[{"events":[]}]`), 400},
		{"invalid JSON", webhookKey, []byte(`{"events":`), 400},
	}
	for _, c := range cases {
		status, body := post(t, serve.base, c.key, c.body)
		if status != c.want {
			t.Errorf("%s: HTTP %d, want %d (%s)", c.name, status, c.want, body)
		}
		if !json.Valid([]byte(body)) {
			t.Errorf("%s: error body is not JSON: %s", c.name, body)
		}
	}
	serve.stop(t)
	_, out := runLayover(t, env, "queue", "stats")
	if !strings.Contains(out, "visible:        0") {
		t.Errorf("rejected requests stored messages:\n%s", out)
	}
	if !strings.Contains(out, "oldest message: none") {
		t.Errorf("queue stats of an empty queue gives an age for its oldest message:\n%s", out)
	}
}

// TestKillDuringIngestKeepsAcknowledged SIGKILLs serve while clients POST
// and checks that every batch that got a 2xx is in the queue afterwards.
func TestKillDuringIngestKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 20 serve processes")
	}
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	env := testEnv(dir, simURL)
	acked := map[string]bool{}
	for round := range 20 {
		serve := startServe(t, env)
		ids := make(chan string, 10000)
		stop := make(chan struct{})
		done := make(chan struct{})
		for client := range 8 {
			go func() {
				defer func() { done <- struct{}{} }()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					body := fmt.Appendf(nil, `{"round":%d,"client":%d,"n":%d,"events":[]}`, round, client, n)
					id, ok := tryPost(serve.base, body)
					if ok {
						ids <- id
					}
				}
			}()
		}
		time.Sleep(time.Duration(100+round*10) * time.Millisecond)
		serve.kill()
		close(stop)
		for range 8 {
			<-done
		}
		close(ids)
		for id := range ids {
			acked[id] = true
		}
	}
	if len(acked) == 0 {
		t.Fatal("no POST was acknowledged; the test proves nothing")
	}
	stored := storedIDs(t, dir)
	lost := 0
	for id := range acked {
		if !stored[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged batches are missing from the queue", lost, len(acked))
	}
	t.Logf("20 kills: %d acknowledged batches, %d stored, %d lost", len(acked), len(stored), lost)
}

// storedIDs receives every message of the SQLite queue in dir and returns
// their ids.
func storedIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	q, err := sqlite.Open(ctx, dir, queue.Options{})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	ids := map[string]bool{}
	for {
		msgs, err := q.Receive(ctx, queue.MaxReceiveBatch, time.Hour)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(msgs) == 0 {
			return ids
		}
		for _, m := range msgs {
			ids[m.ID] = true
		}
	}
}

// tryPost posts a body and returns the stored message id on a 2xx. Errors
// are expected while the server is being killed.
func tryPost(base string, body []byte) (string, bool) {
	req, err := http.NewRequest(http.MethodPost, base+"/event-batch", bytes.NewReader(body))
	if err != nil {
		return "", false
	}
	req.Header.Set("Authorization", "Bearer "+webhookKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var answer struct {
		ID string `json:"id"`
	}
	if resp.StatusCode/100 != 2 || json.NewDecoder(resp.Body).Decode(&answer) != nil {
		return "", false
	}
	return answer.ID, true
}
