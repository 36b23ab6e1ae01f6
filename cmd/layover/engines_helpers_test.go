package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
)

// deliveryRecorder wraps the Iterable simulator. For every trackBulk
// request it records which event ids the request carries, counts how many
// requests carried each id, and notes an overlap when a request carries an
// id that another request still in flight also carries. It also tracks how
// many trackBulk requests are in flight at once.
type deliveryRecorder struct {
	next http.Handler
	// delay holds each request before the simulator handles it, so that two
	// forward runs that overlap also overlap here.
	delay time.Duration

	mu         sync.Mutex
	inFlight   map[string]int // event id to requests in flight carrying it
	deliveries map[string]int // event id to requests that carried it
	overlaps   []string       // ids seen in two requests at once
	active     int            // trackBulk requests in flight
	maxActive  int
}

// startRecordedSimulator starts an Iterable simulator behind a
// deliveryRecorder on 127.0.0.1 and returns both and the base URL.
func startRecordedSimulator(t testing.TB, delay time.Duration) (*iterabletest.Server, *deliveryRecorder, string) {
	t.Helper()
	sim := iterabletest.New(iterabletest.Options{RateLimit: -1})
	rec := &deliveryRecorder{
		next:       sim,
		delay:      delay,
		inFlight:   map[string]int{},
		deliveries: map[string]int{},
	}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return sim, rec, srv.URL
}

func (d *deliveryRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != iterable.TrackBulkPath {
		d.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	ids := trackBulkIDs(body)
	d.enter(ids)
	defer d.leave(ids)
	time.Sleep(d.delay)
	d.next.ServeHTTP(w, r)
}

// trackBulkIDs returns the event ids of a trackBulk body, or none when the
// body does not decode. The simulator returns 400 for such a body.
func trackBulkIDs(body []byte) []string {
	var req struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	ids := make([]string, 0, len(req.Events))
	for _, ev := range req.Events {
		ids = append(ids, ev.ID)
	}
	return ids
}

func (d *deliveryRecorder) enter(ids []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active++
	d.maxActive = max(d.maxActive, d.active)
	for _, id := range ids {
		if d.inFlight[id] > 0 {
			d.overlaps = append(d.overlaps, id)
		}
		d.inFlight[id]++
		d.deliveries[id]++
	}
}

func (d *deliveryRecorder) leave(ids []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active--
	for _, id := range ids {
		d.inFlight[id]--
	}
}

// snapshot returns a copy of the deliveries per id, the overlapping ids and
// the largest number of trackBulk requests that were in flight at once.
func (d *deliveryRecorder) snapshot() (deliveries map[string]int, overlaps []string, maxActive int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	deliveries = make(map[string]int, len(d.deliveries))
	for id, n := range d.deliveries {
		deliveries[id] = n
	}
	return deliveries, slices.Clone(d.overlaps), d.maxActive
}

// screenViewBatch returns an mParticle webhook batch of screen_view events
// for the user customerID, one per id in ids, each with that id as its
// source_message_id. A positive pad adds a custom attribute of pad
// bytes to every event, to make large bodies.
func screenViewBatch(customerID string, ids []string, pad int) []byte {
	type eventData struct {
		SourceMessageID  string            `json:"source_message_id"`
		ScreenName       string            `json:"screen_name"`
		TimestampMS      int64             `json:"timestamp_unixtime_ms"`
		CustomAttributes map[string]string `json:"custom_attributes,omitempty"`
	}
	type event struct {
		EventType string    `json:"event_type"`
		Data      eventData `json:"data"`
	}
	var attrs map[string]string
	if pad > 0 {
		attrs = map[string]string{"note": strings.Repeat("x", pad)}
	}
	const start = 1764835200000 // 2025-12-04T08:00:00Z
	events := make([]event, len(ids))
	for i, id := range ids {
		events[i] = event{EventType: "screen_view", Data: eventData{
			SourceMessageID:  id,
			ScreenName:       fmt.Sprintf("Screen %d", i%7),
			TimestampMS:      start + int64(i)*1000,
			CustomAttributes: attrs,
		}}
	}
	body, err := json.Marshal(map[string]any{
		"schema_version":        2,
		"environment":           "production",
		"timestamp_unixtime_ms": start,
		"user_identities": []map[string]any{
			{"identity_type": "customer_id", "identity": customerID},
		},
		"events": events,
	})
	if err != nil {
		panic(err) // the values above always encode
	}
	return body
}

// eventIDs returns n event ids of the form prefix-0 ... prefix-(n-1).
func eventIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ids
}

// postBatch posts one webhook body and returns an error unless the
// response is 200. Unlike post it does not fail the test, so goroutines can
// call it.
func postBatch(base string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, base+"/event-batch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+webhookKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /event-batch: HTTP %d %s", resp.StatusCode, respBody)
	}
	return nil
}

// missingIDs returns the ids in want that the simulator has not stored.
func missingIDs(sim *iterabletest.Server, want []string) []string {
	stored := eventsByID(sim)
	var missing []string
	for _, id := range want {
		if _, ok := stored[id]; !ok {
			missing = append(missing, id)
		}
	}
	return missing
}

// waitDelivered waits until the simulator has stored every id in want, and
// fails the test with the first missing ids after timeout.
func waitDelivered(t testing.TB, sim *iterabletest.Server, want []string, timeout time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := missingIDs(sim, want)
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events not delivered within %s, first %v\n%s",
				len(missing), len(want), timeout, missing[:min(5, len(missing))], logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
