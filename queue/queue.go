// Package queue defines the durable message queue that Layover stores
// webhook bodies in, with the semantics of Amazon SQS: visibility timeouts,
// a fresh receipt per receive, receive counts and a dead-letter queue.
//
// Engines live in sub-packages (queue/sqlite, queue/postgres, queue/sqs) and
// all pass the contract suite in queue/queuetest.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults shared by every engine. A zero value in Options means the default.
const (
	DefaultMaxReceiveCount   = 5
	DefaultRetention         = 4 * 24 * time.Hour
	DefaultDeadRetention     = 14 * 24 * time.Hour
	DefaultVisibilityTimeout = 5 * time.Minute
	// MaxReceiveBatch is the largest number of messages one Receive returns,
	// as in SQS.
	MaxReceiveBatch = 10
)

// Sentinel errors that callers branch on.
var (
	// ErrStaleReceipt is returned by ChangeVisibility when the receipt does not
	// belong to the latest receive of a message that is still in flight.
	ErrStaleReceipt = errors.New("queue: receipt is stale or unknown")
	// ErrNotFound is returned when a dead-lettered message id does not exist.
	ErrNotFound = errors.New("queue: message not found")
	// ErrTooLarge is returned by Send when a body exceeds the engine's limit.
	ErrTooLarge = errors.New("queue: message body too large")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrLocked is returned by Open when another process holds the queue.
	ErrLocked = errors.New("queue: locked by another process")
)

// Options configures an engine. The zero value selects every default.
type Options struct {
	// MaxReceiveCount is how many receives a message may have; the receive
	// after that moves it to the dead-letter queue. Default 5.
	MaxReceiveCount int
	// Retention is how long a message is kept after it was enqueued.
	// Default 4 days.
	Retention time.Duration
	// DeadRetention is how long a dead-lettered message is kept after it was
	// first enqueued. Default 14 days.
	DeadRetention time.Duration
	// FollowStoredRetention makes the queue expire messages by the
	// retentions that its storage recorded from the last queue opened
	// without this option, instead of Retention and DeadRetention, when
	// such a record exists. Operator commands set it, so that a shell's
	// shorter default cannot expire messages that the server keeps. The
	// SQLite and PostgreSQL engines record retentions. SQS keeps its own,
	// so the SQS engine ignores this field.
	FollowStoredRetention bool
}

// Names under which the engines record the server's retentions, in
// milliseconds, for queues opened with FollowStoredRetention.
const (
	RecordedRetention     = "retention_ms"
	RecordedDeadRetention = "dead_retention_ms"
)

// noExpiry is the retention of a queue that follows recorded retentions
// when none are recorded yet: long enough that nothing expires.
const noExpiry = 100 * 365 * 24 * time.Hour

// SettleRetention reconciles o with the retentions that storage recorded,
// given in milliseconds by name (RecordedRetention, RecordedDeadRetention).
// Without FollowStoredRetention it returns true, so that the engine records
// o's retentions, and it logs a warning when they replace other values.
// With it, o takes the recorded retentions and the engine records nothing.
// When none or only one is recorded, as in storage from before this
// record, o expires nothing. A recorded value that openQueue would refuse
// is an error, because following it could expire every message.
func (o *Options) SettleRetention(recorded map[string]int64, logger *slog.Logger) (bool, error) {
	retentionMs, haveRetention := recorded[RecordedRetention]
	deadMs, haveDead := recorded[RecordedDeadRetention]
	// Larger values would overflow a Duration, so they are made negative,
	// which the check below refuses.
	const maxMs = math.MaxInt64 / int64(time.Millisecond)
	if retentionMs > maxMs {
		retentionMs = -1
	}
	if deadMs > maxMs {
		deadMs = -1
	}
	retention := time.Duration(retentionMs) * time.Millisecond
	dead := time.Duration(deadMs) * time.Millisecond

	if !o.FollowStoredRetention {
		if haveRetention && haveDead && (retention != o.Retention || dead != o.DeadRetention) {
			logger.Warn("replacing the recorded retention, which other commands follow",
				"recorded", retention.String(), "recorded_dead", dead.String(),
				"retention", o.Retention.String(), "dead_retention", o.DeadRetention.String())
		}
		return true, nil
	}

	if !haveRetention || !haveDead {
		logger.Warn("no retention recorded by layover serve yet, so this command expires nothing. " +
			"Start layover serve once to record LAYOVER_RETENTION and LAYOVER_DEAD_RETENTION")
		o.Retention, o.DeadRetention = noExpiry, noExpiry
		return false, nil
	}
	if retention < time.Minute || dead < retention {
		return false, fmt.Errorf("invalid recorded retention %s and dead retention %s: expected at least 1m, "+
			"and the dead retention at least as long: start layover serve once with valid LAYOVER_RETENTION "+
			"and LAYOVER_DEAD_RETENTION to record them again", retention, dead)
	}
	if retention != o.Retention || dead != o.DeadRetention {
		logger.Warn("using the retention recorded by layover serve instead of this command's",
			"recorded", retention.String(), "recorded_dead", dead.String(),
			"given", o.Retention.String(), "given_dead", o.DeadRetention.String())
	}
	o.Retention, o.DeadRetention = retention, dead
	return false, nil
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.MaxReceiveCount <= 0 {
		o.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.DeadRetention <= 0 {
		o.DeadRetention = DefaultDeadRetention
	}
	return o
}

// Message is one stored webhook body as returned by Receive.
type Message struct {
	ID           string
	Body         []byte
	Receipt      string // valid until the next receive of this message
	ReceiveCount int    // including the receive that returned it
	EnqueuedAt   time.Time
}

// DeadMessage is a message in the dead-letter queue.
type DeadMessage struct {
	ID           string
	Body         []byte
	ReceiveCount int
	EnqueuedAt   time.Time
	DeadAt       time.Time
	Reason       string
}

// Stats is a snapshot of a queue's counters.
type Stats struct {
	Visible      int64         // ready to be received
	InFlight     int64         // received and not yet deleted or visible again
	DeadLettered int64         // in the dead-letter queue
	Expired      int64         // removed by retention since the queue was created
	OldestAge    time.Duration // age of the oldest message not dead-lettered
}

// Queue is the interface every engine implements.
type Queue interface {
	// Send stores body durably and returns the message id. It returns only
	// after the write is synced (or acknowledged by the remote engine).
	// Once Send has returned without an error it no longer reads body, so
	// the caller may reuse it. After an error it may still read it for a
	// while.
	Send(ctx context.Context, body []byte) (string, error)
	// Receive returns up to max messages (at most MaxReceiveBatch) and hides
	// them for visibility. Messages whose receive count would exceed the
	// maximum are moved to the dead-letter queue instead of being returned.
	Receive(ctx context.Context, max int, visibility time.Duration) ([]Message, error)
	// Delete removes the messages whose receipts are current. A stale receipt
	// deletes nothing and is not an error.
	Delete(ctx context.Context, receipts []string) error
	// ChangeVisibility hides an in-flight message for timeout from now; zero
	// makes it visible at once. It returns ErrStaleReceipt for a stale receipt.
	ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error
	// Release makes in-flight messages visible at once and takes back the
	// receive that returned them, so that a destination outage never counts
	// toward the dead-letter limit. Stale receipts are ignored.
	Release(ctx context.Context, receipts []string) error
	// Stats returns the queue's counters.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the engine's resources.
	Close() error
}

// DeadLetters is the dead-letter queue of an engine, for operators.
type DeadLetters interface {
	// ListDead returns up to limit dead messages with ids after the given id,
	// oldest first ("" starts at the beginning).
	ListDead(ctx context.Context, after string, limit int) ([]DeadMessage, error)
	// GetDead returns one dead message, or ErrNotFound.
	GetDead(ctx context.Context, id string) (DeadMessage, error)
	// Redrive moves up to limit dead messages back to the queue with a fresh
	// receive count and returns how many it moved. Callers loop until 0.
	Redrive(ctx context.Context, limit int) (int, error)
	// PurgeDead deletes every dead message and returns how many it deleted.
	PurgeDead(ctx context.Context) (int, error)
}

// Rejection records an event that the destination will never accept, with
// the reason, so that a person can list it. Nothing is dropped silently.
type Rejection struct {
	MessageID string
	EventID   string
	EventName string
	Reason    string
	Event     []byte // the event as it was sent or would have been sent (JSON)
	At        time.Time
}

// Rejections stores rejected events.
type Rejections interface {
	// RecordRejected stores rejections durably before the caller deletes the
	// messages they came from.
	RecordRejected(ctx context.Context, rejections []Rejection) error
	// ListRejected returns up to limit rejections, newest first.
	ListRejected(ctx context.Context, limit int) ([]Rejection, error)
}
