package reliability

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
)

// responseAction is what the destination does with a response after the
// simulator produced it.
type responseAction int

const (
	sendResponse responseAction = iota
	// dropResponse resets the connection instead of sending the response,
	// as when the network or the client fails after Iterable stored the
	// events.
	dropResponse
)

// afterStoreHook runs after the simulator handled trackBulk request n
// (counted from 1) and stored the events with ids stored. It decides what
// happens to the response, and may return a function that runs once the
// response was sent.
type afterStoreHook func(n int, stored []string) (responseAction, func())

// destination is the Iterable simulator behind a handler that records, for
// every event id, each time the simulator stored it. Requests run one at a
// time, so each stored event belongs to exactly one request.
type destination struct {
	sim *iterabletest.Server
	key string
	URL string

	// afterStore, when set, buffers each trackBulk response and calls the
	// hook before sending it.
	afterStore afterStoreHook
	// invalidUserIDs makes the destination take events of these userIds out
	// of each request and report them in failedUpdates.invalidUserIds, as
	// Iterable does for a userId it considers malformed.
	invalidUserIDs map[string]bool

	mu       sync.Mutex
	requests int
	accepted map[string]int // event id -> times stored
}

// newDestination starts a simulator with opts behind a recording handler on
// 127.0.0.1.
func newDestination(t testing.TB, opts iterabletest.Options) *destination {
	t.Helper()
	key := iterabletest.DefaultAPIKey
	if len(opts.Projects) > 0 {
		key = opts.Projects[0].APIKey
	}
	d := &destination{sim: iterabletest.New(opts), key: key, accepted: map[string]int{}}
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		d.sim.Close() // releases hung requests, so that srv.Close does not wait for them
		srv.Close()
	})
	d.URL = srv.URL
	return d
}

// setAfterStore sets the hook for the following requests. Passing nil
// removes it.
func (d *destination) setAfterStore(hook afterStoreHook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.afterStore = hook
}

// ServeHTTP passes every request to the simulator and records what the
// simulator stored for trackBulk requests.
func (d *destination) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != iterable.TrackBulkPath {
		d.sim.ServeHTTP(w, r)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests++
	before := d.snapshot()
	if d.afterStore == nil && d.invalidUserIDs == nil {
		// The simulator writes to w itself, so that its reset and hang
		// faults act on the real connection. They end the handler with a
		// panic, and the deferred call still records what was stored.
		defer func() { d.record(d.storedSince(before)) }()
		d.sim.ServeHTTP(w, r)
		return
	}
	d.serveBuffered(w, r, before)
}

// serveBuffered runs the simulator into a buffer, applies the configured
// rewrites and hook, and then sends or drops the response.
func (d *destination) serveBuffered(w http.ResponseWriter, r *http.Request, before map[string]time.Time) {
	invalid := d.removeInvalidUsers(r)
	rec := httptest.NewRecorder()
	d.sim.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK && len(invalid) > 0 {
		addInvalidUserIDs(rec, invalid)
	}
	stored := d.storedSince(before)
	action, after := sendResponse, func() {}
	if d.afterStore != nil {
		var hookAfter func()
		action, hookAfter = d.afterStore(d.requests, stored)
		if hookAfter != nil {
			after = hookAfter
		}
	}
	d.record(stored)
	if action == dropResponse {
		resetConnection(w)
		after()
		return
	}
	for name, values := range rec.Header() {
		w.Header()[name] = values
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	http.NewResponseController(w).Flush()
	after()
}

// removeInvalidUsers takes the events of invalidUserIDs out of the request
// body and returns their userIds, one per removed event.
func (d *destination) removeInvalidUsers(r *http.Request) []string {
	if len(d.invalidUserIDs) == 0 {
		return nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil
	}
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if json.Unmarshal(data, &req) != nil {
		r.Body = io.NopCloser(bytes.NewReader(data))
		return nil
	}

	var remaining []json.RawMessage
	var removed []string
	for _, raw := range req.Events {
		var ev struct {
			UserID string `json:"userId"`
		}
		if json.Unmarshal(raw, &ev) == nil && d.invalidUserIDs[ev.UserID] {
			removed = append(removed, ev.UserID)
			continue
		}
		remaining = append(remaining, raw)
	}

	body, _ := json.Marshal(map[string]any{"events": remaining})
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return removed
}

// addInvalidUserIDs lists userIds in a 200 trackBulk response as malformed
// and counts them as failed.
func addInvalidUserIDs(rec *httptest.ResponseRecorder, userIDs []string) {
	var resp map[string]any
	if json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
		return
	}
	failed, _ := resp["failedUpdates"].(map[string]any)
	if failed == nil {
		failed = map[string]any{}
		resp["failedUpdates"] = failed
	}
	list, _ := failed["invalidUserIds"].([]any)
	for _, id := range userIDs {
		list = append(list, id)
	}
	failed["invalidUserIds"] = list
	resp["invalidUserIds"] = list
	count, _ := resp["failCount"].(float64)
	resp["failCount"] = int(count) + len(userIDs)
	body, _ := json.Marshal(resp)
	rec.Body = bytes.NewBuffer(body)
}

// resetConnection closes the client's connection with a TCP reset.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// snapshot returns the update time of every stored event.
func (d *destination) snapshot() map[string]time.Time {
	events := d.sim.Events(d.key)
	times := make(map[string]time.Time, len(events))
	for _, e := range events {
		times[e.ID] = e.UpdatedAt
	}
	return times
}

// storedSince returns the ids that the simulator stored or updated since
// the snapshot before.
func (d *destination) storedSince(before map[string]time.Time) []string {
	var ids []string
	for id, at := range d.snapshot() {
		if prev, ok := before[id]; !ok || !prev.Equal(at) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// record counts one more store of each id. d.mu must be held.
func (d *destination) record(ids []string) {
	for _, id := range ids {
		d.accepted[id]++
	}
}

// deliveryCounts returns how often the simulator stored the ids for which
// include returns true, and how many of those stores repeated an id.
// needed, when set, marks the ids whose repeats were needed; the repeats of
// other ids come back as duplicated.
func (d *destination) deliveryCounts(include, needed func(id string) bool) (deliveries, repeats, duplicated int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, n := range d.accepted {
		if !include(id) {
			continue
		}
		deliveries += n
		repeats += n - 1
		if needed != nil && !needed(id) {
			duplicated += n - 1
		}
	}
	return deliveries, repeats, duplicated
}

// storedIDs returns how often each id occurs in the simulator's store,
// which upserts by id, so every count should be 1.
func (d *destination) storedIDs() map[string]int {
	counts := map[string]int{}
	for _, e := range d.sim.Events(d.key) {
		counts[e.ID]++
	}
	return counts
}

// requestCount returns the number of trackBulk requests received.
func (d *destination) requestCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests
}
