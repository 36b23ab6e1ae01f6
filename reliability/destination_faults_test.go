package reliability

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// destCase is one destination fault of the matrix.
type destCase struct {
	name string
	// sim configures the simulator. Its rate limit is off unless set.
	sim iterabletest.Options
	// faults are injected before the first run.
	faults []iterabletest.Fault
	// prepare changes the workload or the destination before the batches
	// are stored.
	prepare func(t *testing.T, r *rig)
	// forward adjusts the forwarder options of every run.
	forward func(o *forward.Options)
	// clientTimeout bounds one trackBulk request. Default 2 seconds.
	clientTimeout time.Duration
	// scaledSleep makes retries wait a twentieth of the backoff for real,
	// so that the simulator's rate limiter refills. By default retries do
	// not wait.
	scaledSleep bool
	// maxReceiveCount of the queue. Default 5.
	maxReceiveCount int
	// afterRun checks a run's outcome and returns an error for an
	// unexpected one. The default accepts only a run without error.
	afterRun func(r *rig, run int, report forward.Report, err error) error
	// trials counts how often the fault happened. Default: the trackBulk
	// calls that returned an error to the forwarder.
	trials func(r *rig) int
	// runs is how many forward runs the queue needs to drain. Default 1:
	// a transient fault must not stop the run.
	runs         int
	mayRedeliver bool
	wantDead     int
}

// rig is one scenario: a SQLite queue with the workload, a forwarder and
// the recording destination.
type rig struct {
	c      destCase
	queue  *sqlite.Queue
	spy    *queueSpy
	dest   *destination
	client *iterable.Client
	sender *checkingSender
	work   *workload
	msgOf  map[string]string // event id -> message id

	mu    sync.Mutex
	waits []time.Duration
}

func newRig(t *testing.T, c destCase) *rig {
	t.Helper()
	ctx := context.Background()
	q, err := sqlite.Open(ctx, t.TempDir(), queue.Options{MaxReceiveCount: c.maxReceiveCount})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	simOpts := c.sim
	if simOpts.RateLimit == 0 {
		simOpts.RateLimit = -1
	}
	r := &rig{c: c, queue: q, spy: newQueueSpy(q), dest: newDestination(t, simOpts), work: baseWorkload(), msgOf: map[string]string{}}
	timeout := c.clientTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	r.client, err = iterable.NewClient(iterable.ClientOptions{
		BaseURL: r.dest.URL, APIKey: r.dest.key, RequestsPerSecond: 1000, Timeout: timeout,
	})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	r.sender = &checkingSender{inner: r.client, receiptOf: func(eventID string) string {
		return r.spy.receiptOf(r.msgOf[eventID])
	}, confirmed: map[string]string{}}
	return r
}

// store sends every batch of the workload to the queue.
func (r *rig) store(t *testing.T) {
	t.Helper()
	for i, body := range r.work.bodies() {
		id, err := r.queue.Send(context.Background(), body)
		if err != nil {
			t.Fatalf("send batch %d: %v", i, err)
		}
		for _, ev := range r.work.Batches[i].Events {
			r.msgOf[ev.ID] = id
		}
	}
}

// forwarder returns a forwarder over the spy with the case's options.
func (r *rig) forwarder(t *testing.T) *forward.Forwarder {
	t.Helper()
	m, err := mapping.New(mapping.DefaultConfig())
	if err != nil {
		t.Fatalf("mapping: %v", err)
	}
	// One request in flight: the destination wrapper serializes requests to
	// tell which request stored which events, so a second request would wait
	// behind a hung one and reach the simulator after its client gave up.
	// The forward package's tests cover several requests in flight.
	opts := forward.Options{MaxEvents: 100, Concurrency: 1, Visibility: time.Minute, Sleep: r.sleep}
	if r.c.forward != nil {
		r.c.forward(&opts)
	}
	return forward.New(r.spy, r.queue, m, r.sender, opts)
}

// sleep records a wait between retries and, for scaledSleep cases, waits a
// twentieth of it.
func (r *rig) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	if r.c.scaledSleep {
		select {
		case <-time.After(d / 20):
		case <-ctx.Done():
		}
	}
	return ctx.Err()
}

func TestDestinationFaults(t *testing.T) {
	for _, c := range destinationCases() {
		t.Run(c.name, func(t *testing.T) {
			runDestinationCase(t, c)
		})
	}
}

// runDestinationCase stores the workload, runs the forwarder until the
// queue is empty and checks the outcome of every event.
func runDestinationCase(t *testing.T, c destCase) {
	r := newRig(t, c)
	if c.prepare != nil {
		c.prepare(t, r)
	}
	for _, f := range c.faults {
		if err := r.dest.sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	r.store(t)

	var total forward.Report
	runs := 0
	for runs < 12 {
		runs++
		report, err := r.forwarder(t).Run(context.Background())
		total = addReports(total, report)
		if err := r.checkRun(runs, report, err); err != nil {
			t.Fatalf("run %d (%s): %v", runs, report, err)
		}
		st, err := r.queue.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Visible+st.InFlight == 0 {
			break
		}
	}
	st, err := r.queue.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := r.queue.ListRejected(context.Background(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	trials := r.sender.failures
	if c.trials != nil {
		trials = c.trials(r)
	}
	res := checkEnd(t, endState{work: r.work, dest: r.dest, rejected: rejected, stats: st,
		duplicated: r.sender.duplicates, mayRedeliver: c.mayRedeliver, wantDead: c.wantDead}, row{
		Group: "destination", Scenario: c.name, Trials: trials,
		Acked: len(r.work.Batches), Note: fmt.Sprintf("runs=%d requests=%d retries=%d max_receive_count=%d",
			runs, r.dest.requestCount(), total.Retries, r.spy.maxReceiveCount()),
	})
	if trials == 0 && c.name != "no fault" {
		t.Errorf("the fault never happened; the scenario proves nothing")
	}
	if want := max(c.runs, 1); runs != want {
		t.Errorf("the queue drained after %d forward runs, want %d", runs, want)
	}
	record(t, res)
}

// checkingSender passes trackBulk calls to the client. It counts as
// duplicates the events that the forwarder sends again after an earlier
// call returned a response for them, while their message kept the same
// receipt, because the forwarder then had Iterable's confirmation. It also
// counts the calls that failed.
type checkingSender struct {
	inner     forward.Sender
	receiptOf func(eventID string) string

	mu         sync.Mutex
	confirmed  map[string]string // event id -> message receipt when a response covered it
	duplicates int
	failures   int
}

// TrackBulk sends events through the client.
func (s *checkingSender) TrackBulk(ctx context.Context, events []iterable.Event) (*iterable.BulkTrackResponse, error) {
	s.mu.Lock()
	for _, ev := range events {
		if receipt, ok := s.confirmed[ev.ID]; ok && receipt == s.receiptOf(ev.ID) {
			s.duplicates++
		}
	}
	s.mu.Unlock()

	resp, err := s.inner.TrackBulk(ctx, events)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failures++
		return resp, err
	}
	for _, ev := range events {
		s.confirmed[ev.ID] = s.receiptOf(ev.ID)
	}
	return resp, nil
}

// checkRun applies the case's afterRun, or accepts only a run without
// error.
func (r *rig) checkRun(run int, report forward.Report, err error) error {
	if r.c.afterRun != nil {
		return r.c.afterRun(r, run, report, err)
	}
	return err
}

// addReports sums two forward reports.
func addReports(a, b forward.Report) forward.Report {
	a.Received += b.Received
	a.Deleted += b.Deleted
	a.Released += b.Released
	a.Poison += b.Poison
	a.Delivered += b.Delivered
	a.Skipped += b.Skipped
	a.Rejected += b.Rejected
	a.Requests += b.Requests
	a.Retries += b.Retries
	return a
}

// expectError returns an afterRun that wants target from the first n runs
// and no error afterwards, and calls recover after run n.
func expectError(target error, n int, recover func(r *rig)) func(*rig, int, forward.Report, error) error {
	return func(r *rig, run int, report forward.Report, err error) error {
		if run > n {
			return err
		}
		if !errors.Is(err, target) {
			return fmt.Errorf("error %v, want %v", err, target)
		}
		if report.Released == 0 {
			return errors.New("no message released after the failed run")
		}
		if r.spy.maxReceiveCount() > 1 {
			return fmt.Errorf("a message has receive count %d: a failed run must not count toward the dead-letter limit",
				r.spy.maxReceiveCount())
		}
		if run == n {
			recover(r)
		}
		return nil
	}
}
