package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/queue"
)

// testClock is a wall clock that a test moves forwards and backwards.
type testClock struct {
	offset atomic.Int64 // nanoseconds added to the system clock
}

func (c *testClock) now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()))
}

func (c *testClock) jump(d time.Duration) {
	c.offset.Add(int64(d))
}

// openClockQueue opens a queue whose clock the test controls.
func openClockQueue(t *testing.T, opts queue.Options) (*Queue, *testClock) {
	t.Helper()
	q := openTestQueue(t, t.TempDir(), opts)
	clock := &testClock{}
	q.now = clock.now
	return q, clock
}

// sendBodies stores n bodies and returns their ids.
func sendBodies(t *testing.T, q *Queue, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := q.Send(context.Background(), fmt.Appendf(nil, "body %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// receiveAll receives up to 10 messages, hidden for visibility.
func receiveAll(t *testing.T, q *Queue, visibility time.Duration) []queue.Message {
	t.Helper()
	msgs, err := q.Receive(context.Background(), queue.MaxReceiveBatch, visibility)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func receiptsOf(msgs []queue.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Receipt
	}
	return out
}

func TestClockJumpForwardRedeliversInFlight(t *testing.T) {
	q, clock := openClockQueue(t, queue.Options{})
	ctx := context.Background()
	sendBodies(t, q, 3)
	first := receiveAll(t, q, 5*time.Minute)
	if len(first) != 3 {
		t.Fatalf("first receive returned %d messages, want 3", len(first))
	}

	// The visibility timeout of the first receive passes at once.
	clock.jump(10 * time.Minute)
	second := receiveAll(t, q, 5*time.Minute)
	if len(second) != 3 {
		t.Fatalf("receive after a 10-minute jump returned %d messages, want the 3 in flight", len(second))
	}
	for _, m := range second {
		if m.ReceiveCount != 2 {
			t.Errorf("message %s has receive count %d, want 2", m.ID, m.ReceiveCount)
		}
	}
	// The first consumer's receipts are stale: its delete removes nothing.
	if err := q.Delete(ctx, receiptsOf(first)); err != nil {
		t.Fatal(err)
	}
	if st := queueStats(t, q); st.InFlight != 3 {
		t.Errorf("after a delete with stale receipts: %+v, want 3 in flight", st)
	}
	if err := q.Delete(ctx, receiptsOf(second)); err != nil {
		t.Fatal(err)
	}
	if st := queueStats(t, q); st.Visible+st.InFlight != 0 || st.Expired != 0 {
		t.Errorf("after the second consumer's delete: %+v, want an empty queue", st)
	}
}

func TestClockJumpBackwardDelays(t *testing.T) {
	q, clock := openClockQueue(t, queue.Options{})
	ctx := context.Background()
	sendBodies(t, q, 3)
	inFlight, err := q.Receive(ctx, 1, 5*time.Minute)
	if err != nil || len(inFlight) != 1 {
		t.Fatalf("receive one message: %d, %v", len(inFlight), err)
	}

	clock.jump(-time.Hour)
	// Messages become visible at their enqueue time, which now lies an
	// hour ahead, so nothing stored before the jump can be received.
	if got := receiveAll(t, q, 5*time.Minute); len(got) != 0 {
		t.Fatalf("receive right after a backward jump returned %d messages, want 0", len(got))
	}
	if st := queueStats(t, q); st.InFlight != 3 || st.Visible != 0 {
		t.Errorf("after a backward jump: %+v, want all 3 counted in flight", st)
	}
	// A message stored after the jump is visible at once, and a released
	// message too.
	sendBodies(t, q, 1)
	fresh := receiveAll(t, q, 5*time.Minute)
	if len(fresh) != 1 {
		t.Fatalf("receive of a message stored after the jump returned %d, want 1", len(fresh))
	}
	if err := q.Release(ctx, receiptsOf(fresh)); err != nil {
		t.Fatal(err)
	}
	fresh = receiveAll(t, q, 5*time.Minute)
	if len(fresh) != 1 {
		t.Fatalf("receive of a released message returned %d, want 1", len(fresh))
	}
	if err := q.Delete(ctx, receiptsOf(fresh)); err != nil {
		t.Fatal(err)
	}

	clock.jump(time.Hour) // the clock catches up
	caughtUp := receiveAll(t, q, 5*time.Minute)
	if len(caughtUp) != 2 {
		t.Errorf("receive after the clock caught up returned %d messages, want the 2 that were not in flight", len(caughtUp))
	}
	if err := q.Delete(ctx, receiptsOf(caughtUp)); err != nil {
		t.Fatal(err)
	}
	clock.jump(6 * time.Minute)
	got := receiveAll(t, q, 5*time.Minute)
	if len(got) != 1 || got[0].ID != inFlight[0].ID {
		t.Errorf("receive after the visibility timeout returned %d messages, want the one in flight", len(got))
	}
}

func TestClockJumpPastRetentionExpires(t *testing.T) {
	q, clock := openClockQueue(t, queue.Options{Retention: time.Hour, DeadRetention: time.Hour})
	sendBodies(t, q, 3)
	clock.jump(61 * time.Minute)
	if got := receiveAll(t, q, time.Minute); len(got) != 0 {
		t.Errorf("receive after a jump past the retention returned %d messages, want 0", len(got))
	}
	// NOTE: a forward jump longer than the retention expires every stored
	// message, as the same time passing would. The loss is counted.
	if st := queueStats(t, q); st.Expired != 3 {
		t.Errorf("after a jump past the retention: %+v, want 3 expired", st)
	}
}

func queueStats(t *testing.T, q *Queue) queue.Stats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestClockJumpDuringForwardRun jumps the queue's clock while a forward
// run holds messages, and checks that every event reaches Iterable, each
// id stored once, and that the queue drains.
func TestClockJumpDuringForwardRun(t *testing.T) {
	cases := []struct {
		name    string
		jump    time.Duration
		batches int // of 5 events each
		runs    int // forward runs until the queue is empty
	}{
		// 8 batches fit in one receive, so the run holds all of them when
		// the clock jumps, and receives them again before it deletes them.
		{"forward 2 minutes, past the 1-minute visibility timeout", 2 * time.Minute, 8, 1},
		// 30 batches take three receives: those not yet received when the
		// clock jumps stay hidden until it catches up.
		{"backward 1 hour", -time.Hour, 30, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testClockJumpDuringRun(t, c.jump, c.batches, c.runs)
		})
	}
}

func testClockJumpDuringRun(t *testing.T, jump time.Duration, batches, wantRuns int) {
	q, clock := openClockQueue(t, queue.Options{})
	const perBatch = 5
	for b := range batches {
		if _, err := q.Send(context.Background(), screenViewBatch(b, perBatch)); err != nil {
			t.Fatal(err)
		}
	}

	dest := newCountingDestination(t)
	dest.beforeResponse = func(n int) {
		if n == 1 {
			clock.jump(jump)
		}
	}

	counted := &receiveCounter{Queue: q, receives: map[string]int{}}
	runs := 0
	for ; runs < 4; runs++ {
		if st := queueStats(t, q); st.Visible+st.InFlight == 0 {
			break
		}
		if jump < 0 && runs == 1 {
			clock.jump(-jump) // the clock catches up before the next run
		}
		report, err := dest.forwarder(t, counted).Run(context.Background())
		if err != nil {
			t.Fatalf("run %d (%s): %v", runs+1, report, err)
		}
	}
	if runs != wantRuns {
		t.Errorf("queue drained after %d runs, want %d", runs, wantRuns)
	}

	distinct, deliveries := dest.counts()
	if distinct != batches*perBatch {
		t.Errorf("Iterable has %d distinct events, want %d", distinct, batches*perBatch)
	}
	// Only events of a message that the queue handed out again may be
	// delivered again.
	duplicated := max(0, deliveries-distinct-perBatch*counted.repeated())
	if duplicated > 0 {
		t.Errorf("%d deliveries more than the redelivered messages explain", duplicated)
	}
	if stored := len(dest.sim.Events(iterabletest.DefaultAPIKey)); stored != distinct {
		t.Errorf("Iterable stores %d events for %d distinct ids", stored, distinct)
	}
	st := queueStats(t, q)
	if st.Visible+st.InFlight != 0 || st.DeadLettered != 0 || st.Expired != 0 {
		t.Errorf("queue after the runs: %+v, want empty", st)
	}

	appendReportRow(t, map[string]any{
		"group": "clock", "scenario": fmt.Sprintf("clock jumps %s during a forward run", jump),
		"trials": 1, "batches_acknowledged": batches, "events_stored": batches * perBatch,
		"events_delivered": distinct, "deliveries": deliveries, "redelivered_upserts": deliveries - distinct,
		"duplicated_by_id": duplicated,
		"events_lost":      batches*perBatch - distinct, "dead_lettered": st.DeadLettered,
		"note": fmt.Sprintf("%d forward runs; %d receives repeated a message", runs, counted.repeated()),
	})
}

// receiveCounter counts the receives of each message.
type receiveCounter struct {
	queue.Queue
	mu       sync.Mutex
	receives map[string]int
}

func (c *receiveCounter) Receive(ctx context.Context, n int, visibility time.Duration) ([]queue.Message, error) {
	msgs, err := c.Queue.Receive(ctx, n, visibility)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.receives[m.ID]++
	}
	return msgs, err
}

// repeated returns the number of receives beyond the first of each message.
func (c *receiveCounter) repeated() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.receives {
		n += r - 1
	}
	return n
}

// screenViewBatch returns a webhook body with n screen views of one user,
// with event ids "c<batch>-<i>".
func screenViewBatch(batch, n int) []byte {
	var events []string
	for i := range n {
		events = append(events, fmt.Sprintf(`{"event_type":"screen_view","data":{"screen_name":"Screen %d",`+
			`"source_message_id":"c%03d-%d","timestamp_unixtime_ms":1764835200000}}`, i, batch, i))
	}
	return fmt.Appendf(nil, `{"user_identities":[{"identity_type":"customer_id","identity":"user-%d"}],"events":[%s]}`,
		batch%7, strings.Join(events, ","))
}

// countingDestination is an Iterable simulator behind a handler that
// counts, per event id, the 200 responses to requests that carried it,
// and calls beforeResponse before it sends the response to request n.
type countingDestination struct {
	sim            *iterabletest.Server
	client         *iterable.Client
	beforeResponse func(n int)

	mu       sync.Mutex
	requests int
	accepted map[string]int
}

func newCountingDestination(t *testing.T) *countingDestination {
	t.Helper()
	d := &countingDestination{sim: iterabletest.New(iterabletest.Options{RateLimit: -1}), accepted: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(srv.Close)
	var err error
	d.client, err = iterable.NewClient(iterable.ClientOptions{
		BaseURL: srv.URL, APIKey: iterabletest.DefaultAPIKey, RequestsPerSecond: 1000, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *countingDestination) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	d.sim.ServeHTTP(rec, r)
	d.mu.Lock()
	d.requests++
	n := d.requests
	if rec.Code == http.StatusOK {
		var req struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		}
		_ = json.Unmarshal(body, &req)
		for _, ev := range req.Events {
			d.accepted[ev.ID]++
		}
	}
	d.mu.Unlock()
	if d.beforeResponse != nil {
		d.beforeResponse(n)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// counts returns the number of distinct ids accepted and of acceptances.
func (d *countingDestination) counts() (distinct, deliveries int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.accepted {
		distinct++
		deliveries += n
	}
	return distinct, deliveries
}

// forwarder returns a forwarder on q with small requests and a 1-minute
// visibility timeout.
func (d *countingDestination) forwarder(t *testing.T, q queue.Queue) *forward.Forwarder {
	t.Helper()
	m, err := mapping.New(mapping.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return forward.New(q, nil, m, d.client, forward.Options{MaxEvents: 20, Visibility: time.Minute})
}

// appendReportRow appends one JSON line to the file named by
// LAYOVER_RELIABILITY_REPORT, when it is set, in the format of the
// reliability package's report.
func appendReportRow(t *testing.T, row map[string]any) {
	t.Helper()
	t.Logf("%v", row)
	path := os.Getenv("LAYOVER_RELIABILITY_REPORT")
	if path == "" {
		return
	}
	line, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
}
