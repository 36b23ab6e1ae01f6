package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
)

// concurrencyMeter counts the requests in flight at a handler.
type concurrencyMeter struct {
	next http.Handler
	mu   sync.Mutex
	now  int
	max  int
}

func (m *concurrencyMeter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.now++
	m.max = max(m.max, m.now)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.now--
		m.mu.Unlock()
	}()
	m.next.ServeHTTP(w, r)
}

func TestRunKeepsRequestsInFlight(t *testing.T) {
	fx := newFixture(t, iterabletest.Project{}, queue.Options{})
	if err := fx.sim.InjectFault(iterabletest.Fault{Latency: 150 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	meter := &concurrencyMeter{next: fx.sim}
	srv := httptest.NewServer(meter)
	t.Cleanup(srv.Close)
	client, err := iterable.NewClient(iterable.ClientOptions{
		BaseURL: srv.URL, APIKey: iterabletest.DefaultAPIKey, RequestsPerSecond: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.client = client
	for i := range 8 {
		fx.send(t, screenViews("u", "c"+string(rune('a'+i)), 10, nil))
	}
	fx.opts.MaxEvents = 10
	fx.opts.Concurrency = 3

	report, err := fx.forwarder(t).Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Requests != 8 || report.Delivered != 80 || report.Deleted != 8 {
		t.Errorf("report %s, want 8 requests, 80 delivered, 8 deleted", report)
	}
	if meter.max < 2 {
		t.Errorf("at most %d request in flight, want overlapping requests", meter.max)
	}
	if meter.max > 3 {
		t.Errorf("%d requests in flight, more than Concurrency 3", meter.max)
	}
}
