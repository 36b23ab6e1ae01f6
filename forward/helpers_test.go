package forward

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// fixture is a forwarder wired to a real SQLite queue and a simulator.
type fixture struct {
	queue  *sqlite.Queue
	sim    *iterabletest.Server
	client *iterable.Client
	opts   Options
	waits  *waitLog
}

// waitLog records the waits between retries instead of sleeping.
type waitLog struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (w *waitLog) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.waits = append(w.waits, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waitLog) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.waits...)
}

func newFixture(t *testing.T, project iterabletest.Project, qopts queue.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	q, err := sqlite.Open(ctx, t.TempDir(), qopts)
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	if project.APIKey == "" {
		project.APIKey = iterabletest.DefaultAPIKey
	}
	sim := iterabletest.New(iterabletest.Options{RateLimit: -1, Projects: []iterabletest.Project{project}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	client, err := iterable.NewClient(iterable.ClientOptions{
		BaseURL: url, APIKey: project.APIKey, RequestsPerSecond: 1000, Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	waits := &waitLog{}
	return &fixture{queue: q, sim: sim, client: client, waits: waits,
		opts: Options{Sleep: waits.sleep, Visibility: time.Minute}}
}

// forwarder returns a Forwarder with the default mapping.
func (fx *fixture) forwarder(t *testing.T) *Forwarder {
	t.Helper()
	m, err := mapping.New(mapping.DefaultConfig())
	if err != nil {
		t.Fatalf("mapping: %v", err)
	}
	return New(fx.queue, fx.queue, m, fx.client, fx.opts)
}

// send stores bodies in the queue.
func (fx *fixture) send(t *testing.T, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if _, err := fx.queue.Send(context.Background(), b); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func (fx *fixture) stats(t *testing.T) queue.Stats {
	t.Helper()
	st, err := fx.queue.Stats(context.Background())
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st
}

// screenViews returns a batch body with n screen views of one user. Each
// event's source_message_id is "<prefix>-<i>", so ids are predictable.
func screenViews(userID, prefix string, n int, attrs map[int]string) []byte {
	var events []string
	for i := range n {
		custom := "{}"
		if a, ok := attrs[i]; ok {
			custom = a
		}
		events = append(events, fmt.Sprintf(
			`{"event_type":"screen_view","data":{"screen_name":"Screen %d","source_message_id":"%s-%d",`+
				`"timestamp_unixtime_ms":1764835200000,"custom_attributes":%s}}`, i, prefix, i, custom))
	}
	return fmt.Appendf(nil, `{"environment":"production","user_identities":[{"identity_type":"customer_id","identity":%q}],"events":[%s]}`,
		userID, strings.Join(events, ","))
}
