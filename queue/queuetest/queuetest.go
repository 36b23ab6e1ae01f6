// Package queuetest is the contract suite that every queue engine passes.
//
// An engine's test calls Run with a function that opens a new, empty queue
// and closes it in t.Cleanup. Engines that also implement queue.DeadLetters
// or queue.Rejections get those methods tested too. Sub-tests run in
// parallel, so the open function must be safe for concurrent use, and Close
// must be safe to call twice because the Closed sub-test closes the queue
// before the cleanup does.
package queuetest

import (
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// DefaultMaxBodySize is the body size that the SizeLimit sub-test sends when
// the engine does not advertise a limit: 1 MiB, the limit of Amazon SQS.
const DefaultMaxBodySize = 1 << 20

// BodySizeLimiter is implemented by engines that advertise the largest body
// Send accepts. SizeLimit then sends a body of exactly that size, and one
// byte more, which must fail with queue.ErrTooLarge.
type BodySizeLimiter interface {
	MaxBodySize() int
}

// Option adapts the suite to an engine whose backing service cannot show a
// behaviour. Each option takes the reason, which the test log shows.
type Option func(*config)

type config struct {
	skip                  map[string]string
	noOldestAge           string
	noExpiredCount        string
	releaseResetsCount    bool
	maxBodySize           int
	earlyVisibility       time.Duration
	earlyVisibilityReason string
}

// Skip skips the sub-test called name (see Run for the names) with reason.
func Skip(name, reason string) Option {
	return func(c *config) { c.skip[name] = reason }
}

// WithoutOldestAge skips the checks of Stats.OldestAge.
func WithoutOldestAge(reason string) Option {
	return func(c *config) { c.noOldestAge = reason }
}

// WithoutExpiredCount skips the checks of Stats.Expired.
func WithoutExpiredCount(reason string) Option {
	return func(c *config) { c.noExpiredCount = reason }
}

// ReleaseResetsReceiveCount expects a released message to come back with a
// receive count of 1. This fits an engine that releases a message by sending
// its body again as a new message, instead of taking back one receive.
func ReleaseResetsReceiveCount() Option {
	return func(c *config) { c.releaseResetsCount = true }
}

// WithEarlyVisibility lets VisibilityTimeout accept a message that becomes
// visible again up to d before its visibility timeout ends, as measured
// from before the receive request. It fits an engine whose backing service
// keeps deadlines on a coarser clock than the test's. The default is 0.
func WithEarlyVisibility(d time.Duration, reason string) Option {
	return func(c *config) {
		c.earlyVisibility = d
		c.earlyVisibilityReason = reason
	}
}

// WithMaxBodySize sets the body size that SizeLimit sends to an engine that
// does not implement BodySizeLimiter. The default is DefaultMaxBodySize.
func WithMaxBodySize(n int) Option {
	return func(c *config) { c.maxBodySize = n }
}

// suite is the engine's open function and the options, shared by every
// sub-test.
type suite struct {
	openQueue func(t testing.TB, opts queue.Options) queue.Queue
	config
}

// open opens a new queue for one sub-test.
func (s *suite) open(t testing.TB, opts queue.Options) queue.Queue {
	t.Helper()
	return s.openQueue(t, opts)
}

// Run runs the contract suite. The sub-tests are SendReceive, ReceiveBatch,
// DeleteBatch, SizeLimit, CanceledSend, Closed, VisibilityTimeout,
// StaleReceipt, ChangeVisibility, ReceiveCount, Release,
// ReleaseAvoidsDeadLetter, ReceiveZeroVisibility, DeadLetter, Redrive,
// PurgeDead, ListDeadPaging, Retention, DeadRetention, Stats,
// ConcurrentConsumers and Rejections.
func Run(t *testing.T, open func(t testing.TB, opts queue.Options) queue.Queue, options ...Option) {
	s := &suite{
		openQueue: open,
		config:    config{skip: map[string]string{}, maxBodySize: DefaultMaxBodySize},
	}
	for _, option := range options {
		option(&s.config)
	}

	tests := []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"SendReceive", testSendReceive},
		{"ReceiveBatch", testReceiveBatch},
		{"DeleteBatch", testDeleteBatch},
		{"SizeLimit", testSizeLimit},
		{"CanceledSend", testCanceledSend},
		{"Closed", testClosed},
		{"VisibilityTimeout", testVisibilityTimeout},
		{"StaleReceipt", testStaleReceipt},
		{"ChangeVisibility", testChangeVisibility},
		{"ReceiveCount", testReceiveCount},
		{"Release", testRelease},
		{"ReleaseAvoidsDeadLetter", testReleaseAvoidsDeadLetter},
		{"ReceiveZeroVisibility", testReceiveZeroVisibility},
		{"DeadLetter", testDeadLetter},
		{"Redrive", testRedrive},
		{"PurgeDead", testPurgeDead},
		{"ListDeadPaging", testListDeadPaging},
		{"Retention", testRetention},
		{"DeadRetention", testDeadRetention},
		{"Stats", testStats},
		{"ConcurrentConsumers", testConcurrentConsumers},
		{"Rejections", testRejections},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if reason, ok := s.skip[tc.name]; ok {
				t.Skip(reason)
			}
			t.Parallel()
			tc.run(t, s)
		})
	}
}
