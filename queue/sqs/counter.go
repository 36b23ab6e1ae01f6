package sqs

import (
	"context"
	"maps"
	"sync"

	"github.com/aws/smithy-go/middleware"
)

// Counter counts the SQS requests a client sends, by operation name
// ("SendMessage", "ReceiveMessage", ...). Each retry attempt counts as a
// request. It is safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int64
}

// AddTo installs the counter in an SDK middleware stack. It has the type of
// an entry in sqs.Options.APIOptions.
func (c *Counter) AddTo(stack *middleware.Stack) error {
	// The Finalize step runs once per attempt after the retry middleware,
	// so retried requests are counted too.
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("LayoverRequestCounter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
			middleware.FinalizeOutput, middleware.Metadata, error,
		) {
			c.add(middleware.GetOperationName(ctx))
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *Counter) add(operation string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int64)
	}
	c.counts[operation]++
}

// Counts returns a copy of the request counts by operation name.
func (c *Counter) Counts() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Total returns the number of requests counted over all operations.
func (c *Counter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total int64
	for _, n := range c.counts {
		total += n
	}
	return total
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
}
