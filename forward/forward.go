// Package forward drains the queue into Iterable. It receives stored
// webhook bodies, maps their events and packs events from many messages
// into trackBulk requests. A message is deleted only once every one of its
// events is delivered, skipped by the mapping or recorded as rejected.
package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/queue"
)

// Defaults for Options. A zero field means its default.
const (
	DefaultMaxEvents       = 1000
	DefaultConcurrency     = 4
	DefaultMaxRequestBytes = 3 << 20 // Iterable's bulk limit is 4 MB; stay well under it
	DefaultVisibility      = 5 * time.Minute
	DefaultMaxAttempts     = 6
	DefaultRetryBudget     = 2 * time.Minute
	DefaultMaxBackoff      = 30 * time.Second
	DefaultDeleteTimeout   = 30 * time.Second
)

// ErrDestinationUnavailable is returned by Run when Iterable kept returning
// 429 or 5xx, or did not respond, for longer than the retry budget. The
// messages of the run are released without counting toward the dead-letter
// limit.
var ErrDestinationUnavailable = errors.New("forward: Iterable is unavailable")

// Sender sends one trackBulk request; *iterable.Client implements it.
type Sender interface {
	TrackBulk(ctx context.Context, events []iterable.Event) (*iterable.BulkTrackResponse, error)
}

// EncodedSender is a Sender that also sends events already encoded as
// JSON objects, each as json.Marshal encodes an iterable.Event. The
// forwarder encodes every event to size its requests, and with an
// EncodedSender it sends that encoding instead of encoding the events
// again. *iterable.Client implements it.
type EncodedSender interface {
	Sender
	TrackBulkJSON(ctx context.Context, events []json.RawMessage) (*iterable.BulkTrackResponse, error)
}

var _ EncodedSender = (*iterable.Client)(nil)

// Options configures a Forwarder. The zero value selects every default.
type Options struct {
	// MaxEvents is the most events in one trackBulk request. Default 1000.
	MaxEvents int
	// Concurrency is the most trackBulk requests in flight at once. The
	// client paces them all, so more only hides Iterable's response time.
	// Default 4.
	Concurrency int
	// MaxRequestBytes caps the JSON size of one request. Default 3 MiB.
	MaxRequestBytes int
	// Visibility is how long received messages stay hidden from other
	// consumers while a run works on them. Default 5 minutes.
	Visibility time.Duration
	// MaxAttempts is how often one request is tried on 429, 5xx and network
	// errors before the run gives up. Default 6.
	MaxAttempts int
	// RetryBudget bounds the total time a run spends waiting between
	// retries. Default 2 minutes.
	RetryBudget time.Duration
	// MaxBackoff caps one wait between retries, Retry-After included.
	// Default 30 seconds.
	MaxBackoff time.Duration
	// MaxRunTime stops receiving new messages after this long; 0 means drain
	// until the queue is empty.
	MaxRunTime time.Duration
	// Logger receives progress and errors; nil discards them.
	Logger *slog.Logger
	// Sleep waits between retries; nil uses a timer. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o Options) withDefaults() Options {
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.Visibility <= 0 {
		o.Visibility = DefaultVisibility
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryBudget <= 0 {
		o.RetryBudget = DefaultRetryBudget
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

// Forwarder drains a queue into Iterable. Run is not safe for concurrent
// use; the schedule in cmd/layover never starts overlapping runs.
type Forwarder struct {
	queue   queue.Queue
	rejects queue.Rejections // nil: rejections are only logged
	mapper  *mapping.Mapper
	sender  Sender
	opts    Options
}

// New returns a Forwarder. rejects may be nil, in which case rejected events
// are logged at warning level instead of stored.
func New(q queue.Queue, rejects queue.Rejections, m *mapping.Mapper, s Sender, opts Options) *Forwarder {
	return &Forwarder{queue: q, rejects: rejects, mapper: m, sender: s, opts: opts.withDefaults()}
}

// Report counts what one run did.
type Report struct {
	Received  int // messages received
	Deleted   int // messages deleted after every event was resolved
	Empty     int // deleted messages that held no event to resolve
	Released  int // messages made visible again for a later run
	Poison    int // messages left for their visibility timeout (undecodable)
	Delivered int // events Iterable accepted
	Skipped   int // events the mapping does not forward
	Rejected  int // events recorded as rejected
	Requests  int // trackBulk requests sent, retries included
	Retries   int // requests repeated after 429, 5xx or a network error
}

// LogAttrs returns the counts as slog key-value pairs, so that a JSON log
// line carries each of them as a number field of its own.
func (r Report) LogAttrs() []any {
	return []any{
		slog.Int("received", r.Received), slog.Int("deleted", r.Deleted), slog.Int("empty", r.Empty),
		slog.Int("released", r.Released), slog.Int("poison", r.Poison), slog.Int("delivered", r.Delivered),
		slog.Int("skipped", r.Skipped), slog.Int("rejected", r.Rejected), slog.Int("requests", r.Requests),
		slog.Int("retries", r.Retries),
	}
}

func (r Report) String() string {
	return fmt.Sprintf("received=%d deleted=%d empty=%d released=%d poison=%d delivered=%d skipped=%d rejected=%d requests=%d retries=%d",
		r.Received, r.Deleted, r.Empty, r.Released, r.Poison, r.Delivered, r.Skipped, r.Rejected, r.Requests, r.Retries)
}

// Run drains the queue once. It returns nil when the queue is empty (or
// MaxRunTime passed) and every received message was resolved or left as
// poison. It returns an error wrapping ErrDestinationUnavailable or
// iterable.ErrUnauthorized when Iterable cannot take events now; the held
// messages are then released for the next run.
func (f *Forwarder) Run(ctx context.Context) (Report, error) {
	r := &run{f: f, log: f.opts.Logger, started: time.Now()}
	err := r.drain(ctx)
	if err != nil {
		r.releaseAll()
	}
	r.flushDeletes(true)
	if r.deleteErr != nil && err == nil {
		err = r.deleteErr
	}
	return r.report, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
