package forward

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
)

func TestRunDeliversAndDeletes(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{})
	fx.send(t, screenViews("u1", "a", 5, nil), screenViews("u2", "b", 5, nil), screenViews("u3", "c", 5, nil))

	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Delivered != 15 {
		t.Errorf("delivered %d, want 15", report.Delivered)
	}
	if report.Deleted != 3 {
		t.Errorf("deleted %d, want 3", report.Deleted)
	}
	if report.Requests != 1 {
		t.Errorf("requests %d, want 1: 15 events fit in one request", report.Requests)
	}
	if got := fx.sim.EventCount(iterabletest.DefaultAPIKey); got != 15 {
		t.Errorf("simulator stored %d events, want 15", got)
	}
	if st := fx.stats(t); st.Visible != 0 || st.InFlight != 0 {
		t.Errorf("queue after run: %+v, want empty", st)
	}

	again, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if again.Requests != 0 {
		t.Errorf("second run sent %d requests, want 0", again.Requests)
	}
}

func TestRunPacksManyMessagesPerRequest(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{})
	for i := range 40 {
		fx.send(t, screenViews("u", "m"+string(rune('a'+i%26))+strings.Repeat("x", i/26), 10, nil))
	}
	fx.opts.MaxEvents = 100
	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Requests != 4 {
		t.Errorf("requests %d, want 4 (400 events, 100 per request)", report.Requests)
	}
	if report.Deleted != 40 {
		t.Errorf("deleted %d, want 40", report.Deleted)
	}
	if got := fx.sim.EventCount(iterabletest.DefaultAPIKey); got != 400 {
		t.Errorf("simulator stored %d events, want 400", got)
	}
}

func TestRunRecordsPartialFailures(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{
		Forgotten:            []iterabletest.User{{UserID: "gone"}},
		DisallowedEventNames: []string{"Session Start"},
	}, queue.Options{})
	session := []byte(`{"user_identities":{"customer_id":"ok"},"events":[` +
		`{"event_type":"session_start","data":{"source_message_id":"s-1","timestamp_unixtime_ms":1764835200000}}]}`)
	fx.send(t, screenViews("ok", "ok", 3, nil), screenViews("gone", "gone", 2, nil), session)

	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Delivered != 3 {
		t.Errorf("delivered %d, want 3", report.Delivered)
	}
	if report.Rejected != 3 {
		t.Errorf("rejected %d, want 3 (2 forgotten, 1 disallowed)", report.Rejected)
	}
	if report.Deleted != 3 {
		t.Errorf("deleted %d, want 3: rejected events are resolved", report.Deleted)
	}
	rejected, err := fx.queue.ListRejected(context.Background(), 10)
	if err != nil {
		t.Fatalf("list rejected: %v", err)
	}
	reasons := map[string]string{}
	for _, r := range rejected {
		reasons[r.EventID] = r.Reason
	}
	if !strings.Contains(reasons["gone-0"], "forgottenUserIds") {
		t.Errorf("reason for gone-0 = %q, want forgottenUserIds", reasons["gone-0"])
	}
	if !strings.Contains(reasons["s-1"], "disallowedEventNames") {
		t.Errorf("reason for s-1 = %q, want disallowedEventNames", reasons["s-1"])
	}
}

func TestRunIsolatesFieldTypeConflict(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{})
	// Iterable fixes a field's type with the first value it receives.
	seed := []iterable.Event{{UserID: "seed", EventName: "Screen View", DataFields: map[string]any{"referrer": 7}}}
	if _, err := fx.client.TrackBulk(context.Background(), seed); err != nil {
		t.Fatalf("seed field type: %v", err)
	}
	fx.send(t, screenViews("u", "t", 40, map[int]string{17: `{"referrer":"push"}`}))

	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Delivered != 39 {
		t.Errorf("delivered %d, want 39", report.Delivered)
	}
	if report.Rejected != 1 {
		t.Errorf("rejected %d, want 1", report.Rejected)
	}
	rejected, _ := fx.queue.ListRejected(context.Background(), 10)
	if len(rejected) != 1 || rejected[0].EventID != "t-17" {
		t.Fatalf("rejected = %+v, want event t-17", rejected)
	}
	if !strings.Contains(rejected[0].Reason, iterable.CodeRequestFieldsTypesMismatched) {
		t.Errorf("reason %q does not name %s", rejected[0].Reason, iterable.CodeRequestFieldsTypesMismatched)
	}
	if st := fx.stats(t); st.Visible+st.InFlight != 0 {
		t.Errorf("queue after run: %+v, want empty", st)
	}
}

func TestRunUnauthorizedReleasesMessages(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{})
	fx.send(t, screenViews("u", "k", 3, nil))
	if err := fx.sim.RevokeKey(iterabletest.DefaultAPIKey); err != nil {
		t.Fatal(err)
	}
	report, err := fx.forwarder(t).Run(context.Background())
	if !errors.Is(err, iterable.ErrUnauthorized) {
		t.Fatalf("run error %v, want ErrUnauthorized", err)
	}
	if report.Deleted != 0 || report.Released != 1 {
		t.Errorf("report %s, want nothing deleted and 1 released", report)
	}
	msgs, err := fx.queue.Receive(context.Background(), 10, time.Minute)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive after run: %d messages, %v", len(msgs), err)
	}
	if msgs[0].ReceiveCount != 1 {
		t.Errorf("receive count %d after an unauthorized run, want 1: the run's receive must not count", msgs[0].ReceiveCount)
	}
}

func TestRunRetriesRateLimit(t *testing.T) {
	cases := []struct {
		name      string
		fault     iterabletest.Fault
		wantWaits []time.Duration
	}{
		{"plain text", iterabletest.Fault{Status: 429, Body: "Rate limit exceeded. Please try again later.", Count: 2}, nil},
		{"JSON with Retry-After", iterabletest.Fault{Status: 429, Count: 1,
			Body:   `{"msg":"Exceeded rate limit.","code":"RateLimitExceeded","params":null}`,
			Header: http.Header{"Retry-After": {"3"}}}, []time.Duration{3 * time.Second}},
		{"HTML 503", iterabletest.Fault{Status: 503, Body: iterabletest.ServiceUnavailablePage, Count: 2}, nil},
		{"connection reset", iterabletest.Fault{Reset: true, Count: 1}, nil},
		{"timeout", iterabletest.Fault{Hang: true, Count: 1}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, iterabletest.Project{}, queue.Options{})
			fx.send(t, screenViews("u", "r", 4, nil))
			if err := fx.sim.InjectFault(c.fault); err != nil {
				t.Fatal(err)
			}
			report, err := fx.forwarder(t).Run(context.Background())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if report.Delivered != 4 {
				t.Errorf("delivered %d, want 4", report.Delivered)
			}
			if report.Retries == 0 {
				t.Errorf("no retries recorded")
			}
			if c.wantWaits != nil {
				if got := fx.waits.all(); len(got) != 1 || got[0] != c.wantWaits[0] {
					t.Errorf("waits %v, want %v from Retry-After", got, c.wantWaits)
				}
			}
		})
	}
}

func TestRunOutageNeverDeadLetters(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{MaxReceiveCount: 2})
	fx.send(t, screenViews("u", "o", 3, nil), screenViews("v", "p", 3, nil))
	if err := fx.sim.InjectFault(iterabletest.Fault{Status: 503, Body: iterabletest.ServiceUnavailablePage}); err != nil {
		t.Fatal(err)
	}
	fx.opts.MaxAttempts = 3
	for run := range 6 {
		report, err := fx.forwarder(t).Run(context.Background())
		if !errors.Is(err, ErrDestinationUnavailable) {
			t.Fatalf("run %d: error %v, want ErrDestinationUnavailable", run, err)
		}
		if report.Released != 2 {
			t.Errorf("run %d: released %d, want 2", run, report.Released)
		}
	}
	if st := fx.stats(t); st.DeadLettered != 0 || st.Visible != 2 {
		t.Fatalf("after 6 failed runs: %+v, want 2 visible and none dead-lettered", st)
	}

	fx.sim.ClearFaults()
	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run after recovery: %v", err)
	}
	if report.Delivered != 6 || report.Deleted != 2 {
		t.Errorf("after recovery: %s, want 6 delivered and 2 deleted", report)
	}
}

func TestRunLeavesPoisonForDeadLetter(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{MaxReceiveCount: 2})
	fx.send(t, []byte(`{"events": "not a list"`), screenViews("u", "g", 2, nil))
	fx.opts.Visibility = time.Second
	for range 3 {
		if _, err := fx.forwarder(t).Run(context.Background()); err != nil {
			t.Fatalf("run: %v", err)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	st := fx.stats(t)
	if st.DeadLettered != 1 {
		t.Errorf("dead-lettered %d, want the undecodable message", st.DeadLettered)
	}
	if got := fx.sim.EventCount(iterabletest.DefaultAPIKey); got != 2 {
		t.Errorf("simulator stored %d events, want 2 from the good message", got)
	}
}

func TestRunCountsBatchWithoutEvents(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{})
	fx.send(t, []byte(`{"hello": 1}`), screenViews("u", "g", 2, nil))
	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Empty != 1 {
		t.Errorf("Empty = %d, want 1 for the batch without events (%s)", report.Empty, report)
	}
	if report.Deleted != 2 {
		t.Errorf("Deleted = %d, want both batches (%s)", report.Deleted, report)
	}
	if !strings.Contains(report.String(), "empty=1") {
		t.Errorf("report %q does not show the empty batch", report)
	}
	if st := fx.stats(t); st.Visible != 0 || st.InFlight != 0 {
		t.Errorf("queue after the run: %+v, want empty", st)
	}
}

func TestRunKeepsBatchWithObjectEvents(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{MaxReceiveCount: 2})
	objectEvents := []byte(`{"mpid":"7","events":{"event_type":"screen_view","data":{"screen_name":"Home"}}}`)
	fx.send(t, objectEvents, screenViews("u", "g", 2, nil))
	var logs bytes.Buffer
	fx.opts.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	fx.opts.Visibility = time.Second

	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Poison != 1 {
		t.Errorf("Poison = %d, want 1 for the batch whose events is an object (%s)", report.Poison, report)
	}
	if report.Empty != 0 {
		t.Errorf("Empty = %d, want 0: the batch is undecodable, not empty (%s)", report.Empty, report)
	}
	if report.Deleted != 1 {
		t.Errorf("Deleted = %d, want 1, only the good batch (%s)", report.Deleted, report)
	}
	if st := fx.stats(t); st.InFlight != 1 || st.DeadLettered != 0 {
		t.Errorf("queue after the first run: %+v, want the batch in flight", st)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"message cannot be decoded`) {
		t.Errorf("no error logged for the undecodable batch; logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "events is neither an array nor null") {
		t.Errorf("logged error does not name the events member; logs:\n%s", logs.String())
	}

	// After the maximum receive count the queue dead-letters the batch.
	for range 2 {
		time.Sleep(1100 * time.Millisecond)
		if _, err := fx.forwarder(t).Run(context.Background()); err != nil {
			t.Fatalf("run: %v", err)
		}
	}
	if st := fx.stats(t); st.DeadLettered != 1 {
		t.Errorf("dead-lettered %d, want the batch whose events is an object", st.DeadLettered)
	}
	if got := fx.sim.EventCount(iterabletest.DefaultAPIKey); got != 2 {
		t.Errorf("simulator stored %d events, want 2 from the good batch", got)
	}
}
