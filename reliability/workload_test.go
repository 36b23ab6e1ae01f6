package reliability

import (
	"encoding/json"
	"fmt"
	"strings"
)

// outcome is what should become of one stored event.
type outcome int

const (
	wantDelivered outcome = iota // Iterable stores it
	wantRejected                 // recorded as rejected, with a reason
	wantSkipped                  // the default mapping does not forward it
)

func (o outcome) String() string {
	return [...]string{"delivered", "rejected", "skipped"}[o]
}

// identity is the user of a batch. Empty fields are left out of the batch.
type identity struct {
	UserID string
	Email  string
}

// eventSpec is one event of the workload and its expected outcome.
type eventSpec struct {
	ID     string // source_message_id, which the mapping uses as Iterable id
	Kind   string // mParticle event_type
	Name   string // Iterable eventName, "" for a skipped kind
	User   identity
	Attrs  map[string]any // custom_attributes
	Want   outcome
	Reason string // a substring of the expected rejection reason
}

// batchSpec is one webhook body and the events in it.
type batchSpec struct {
	Body   []byte
	Events []*eventSpec
}

// workload is a set of batches with an expected outcome for every event.
type workload struct {
	Batches []*batchSpec
	byID    map[string]*eventSpec
}

// batchKinds is the event sequence of every generated batch: a session with
// screen views, an app state transition and one custom event, which the
// default mapping skips because mParticle's native connection sends it.
var batchKinds = []string{
	"session_start", "screen_view", "screen_view", "application_state_transition",
	"screen_view", "custom_event", "screen_view", "session_end",
}

// iterableNames are the default mapping's event names.
var iterableNames = map[string]string{
	"session_start":                "Session Start",
	"session_end":                  "Session End",
	"screen_view":                  "Screen View",
	"application_state_transition": "Application State Transition",
}

// Reasons of the mapping's rejections, as substrings.
const (
	reasonNoIdentity   = "neither an email identity nor a customer_id"
	reasonInvalidEmail = "the email identity is invalid"
)

// baseUsers are the users of the base workload: ten users with a userId
// and an email each.
func baseUsers() []identity {
	users := make([]identity, 10)
	for i := range users {
		users[i] = identity{UserID: fmt.Sprintf("user-%02d", i+1), Email: fmt.Sprintf("user%02d@example.com", i+1)}
	}
	return users
}

// baseWorkload returns 60 batches of 8 events from ten users, plus two
// batches that the mapping rejects: one without any identity and one with
// an email that has no @. That is 496 events: 420 to deliver, 62 skipped
// custom events and 14 rejected events.
func baseWorkload() *workload {
	w := &workload{byID: map[string]*eventSpec{}}
	users := baseUsers()
	for i := range 60 {
		w.add(fmt.Sprintf("w%03d", i), users[i%len(users)])
	}
	w.addRejected("nobody", identity{}, reasonNoIdentity)
	w.addRejected("bad-email", identity{UserID: "user-bad", Email: "no-at-sign.example.com"}, reasonInvalidEmail)
	return w
}

// add appends one batch of batchKinds for user, with event ids
// "<prefix>-<n>", and returns it.
func (w *workload) add(prefix string, user identity) *batchSpec {
	b := &batchSpec{}
	for n, kind := range batchKinds {
		ev := &eventSpec{ID: fmt.Sprintf("%s-%d", prefix, n), Kind: kind, Name: iterableNames[kind], User: user}
		if ev.Name == "" {
			ev.Want = wantSkipped
		}
		b.Events = append(b.Events, ev)
		w.byID[ev.ID] = ev
	}
	w.Batches = append(w.Batches, b)
	return b
}

// addRejected appends a batch whose forwarded events are all expected to
// be rejected with reason.
func (w *workload) addRejected(prefix string, user identity, reason string) *batchSpec {
	b := w.add(prefix, user)
	for _, ev := range b.Events {
		if ev.Want == wantDelivered {
			ev.Want, ev.Reason = wantRejected, reason
		}
	}
	return b
}

// rejectWhere changes the expectation of every event that would be
// delivered and matches to a rejection with reason.
func (w *workload) rejectWhere(match func(*eventSpec) bool, reason string) {
	for _, b := range w.Batches {
		for _, ev := range b.Events {
			if ev.Want == wantDelivered && match(ev) {
				ev.Want, ev.Reason = wantRejected, reason
			}
		}
	}
}

// events returns every event of the workload in batch order.
func (w *workload) events() []*eventSpec {
	var all []*eventSpec
	for _, b := range w.Batches {
		all = append(all, b.Events...)
	}
	return all
}

// count returns how many events expect o.
func (w *workload) count(o outcome) int {
	n := 0
	for _, ev := range w.events() {
		if ev.Want == o {
			n++
		}
	}
	return n
}

// countReason returns how many events expect a rejection with reason.
func (w *workload) countReason(reason string) int {
	n := 0
	for _, ev := range w.events() {
		if ev.Want == wantRejected && ev.Reason == reason {
			n++
		}
	}
	return n
}

// bodies encodes every batch that has no body yet and returns the bodies
// in batch order. Encoding is deferred so that scenarios can add
// attributes to events first.
func (w *workload) bodies() [][]byte {
	out := make([][]byte, len(w.Batches))
	for i, b := range w.Batches {
		if b.Body == nil {
			b.Body = encodeBatch(i, b.Events, nil)
		}
		out[i] = b.Body
	}
	return out
}

// baseTime is the event time of the workload: 2025-12-04T08:00:00Z.
const baseTime = 1764835200000

// encodeBatch returns the mParticle webhook body of one batch, shaped like
// the outbound webhook payload of an iOS app. extra adds top-level fields,
// such as padding.
func encodeBatch(n int, events []*eventSpec, extra map[string]any) []byte {
	user := events[0].User
	var identities []map[string]any
	if user.UserID != "" {
		identities = append(identities, map[string]any{"identity_type": "customer_id", "identity": user.UserID})
	}
	if user.Email != "" {
		identities = append(identities, map[string]any{"identity_type": "email", "identity": user.Email})
	}

	session := 8825516342909913000 + int64(n)
	var encoded []map[string]any
	for i, ev := range events {
		encoded = append(encoded, map[string]any{"event_type": ev.Kind, "data": eventData(ev, session, baseTime+int64(n)*60000+int64(i)*1000)})
	}
	batch := map[string]any{
		"schema_version":        2,
		"environment":           "production",
		"mpid":                  -4521783302183924000 - int64(n),
		"timestamp_unixtime_ms": baseTime + int64(n)*60000,
		"user_identities":       identities,
		"device_info":           map[string]any{"platform": "iOS", "os_version": "18.1"},
		"application_info":      map[string]any{"application_name": "Demo Shop", "application_version": "4.2.0"},
		"source_info":           map[string]any{"channel": "native", "is_historical": false},
		"events":                encoded,
	}
	for k, v := range extra {
		batch[k] = v
	}

	body, err := json.Marshal(batch)
	if err != nil {
		panic(err) // only maps of JSON values reach here
	}
	return body
}

// eventData returns the data object of one event.
func eventData(ev *eventSpec, session, at int64) map[string]any {
	data := map[string]any{
		"source_message_id":     ev.ID,
		"session_id":            session,
		"timestamp_unixtime_ms": at,
		"custom_attributes":     ev.Attrs,
	}
	switch ev.Kind {
	case "screen_view":
		data["screen_name"] = "Screen " + ev.ID[strings.LastIndex(ev.ID, "-")+1:]
	case "application_state_transition":
		data["application_transition_type"] = "application_foreground"
		data["is_first_run"] = false
	case "session_end":
		data["session_duration_ms"] = 89000
	case "custom_event":
		data["event_name"] = "Wishlist Added"
		data["custom_event_type"] = "user_preference"
	}
	return data
}
