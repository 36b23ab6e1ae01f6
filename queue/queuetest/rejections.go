package queuetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

func testRejections(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	rj, ok := q.(queue.Rejections)
	if !ok {
		t.Skipf("%T does not implement queue.Rejections", q)
	}

	// Whole milliseconds, so that engines storing milliseconds return the
	// same instant.
	at := time.Now().Truncate(time.Millisecond)
	want := []queue.Rejection{
		{MessageID: "m1", EventID: "e1", EventName: "screen_view", Reason: "first",
			Event: []byte(`{"eventName":"screen_view"}`), At: at},
		{MessageID: "m1", EventID: "e2", EventName: "purchase", Reason: "second",
			Event: []byte(`{"eventName":"purchase","dataFields":{"total":"x"}}`), At: at.Add(time.Second)},
		{MessageID: "m2", EventID: "e3", EventName: "Köln ✓", Reason: "third",
			Event: []byte(`{}`), At: at.Add(2 * time.Second)},
	}
	if err := rj.RecordRejected(callContext(t), want[:2]); err != nil {
		t.Fatalf("RecordRejected(2): %v", err)
	}
	if err := rj.RecordRejected(callContext(t), want[2:]); err != nil {
		t.Fatalf("RecordRejected(1): %v", err)
	}
	if err := rj.RecordRejected(callContext(t), nil); err != nil {
		t.Errorf("RecordRejected(nil): %v", err)
	}

	got, err := rj.ListRejected(callContext(t), 10)
	if err != nil {
		t.Fatalf("ListRejected(10): %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListRejected(10) returned %d rejections, want %d", len(got), len(want))
	}
	for i, g := range got {
		checkRejection(t, g, want[len(want)-1-i]) // newest first
	}

	page, err := rj.ListRejected(callContext(t), 2)
	if err != nil {
		t.Fatalf("ListRejected(2): %v", err)
	}
	if len(page) != 2 {
		t.Fatalf("ListRejected(2) returned %d rejections, want 2", len(page))
	}
	if page[0].EventID != "e3" || page[1].EventID != "e2" {
		t.Errorf("ListRejected(2) returned events %s and %s, want e3 and e2", page[0].EventID, page[1].EventID)
	}
}

// checkRejection compares every field of a listed rejection with the
// recorded one.
func checkRejection(t testing.TB, got, want queue.Rejection) {
	t.Helper()
	if got.MessageID != want.MessageID || got.EventID != want.EventID ||
		got.EventName != want.EventName || got.Reason != want.Reason {
		t.Errorf("rejection = {%s %s %q %q}, want {%s %s %q %q}",
			got.MessageID, got.EventID, got.EventName, got.Reason,
			want.MessageID, want.EventID, want.EventName, want.Reason)
	}
	if !bytes.Equal(got.Event, want.Event) {
		t.Errorf("rejection %s: Event = %s, want %s", want.EventID, got.Event, want.Event)
	}
	if !got.At.Equal(want.At) {
		t.Errorf("rejection %s: At = %v, want %v", want.EventID, got.At, want.At)
	}
}
