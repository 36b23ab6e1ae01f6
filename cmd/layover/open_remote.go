package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/postgres"
	"github.com/layover-dev/layover/queue/sqs"
)

// openRemote opens a PostgreSQL queue from a postgres:// URL or an SQS
// queue from its queue URL.
func openRemote(ctx context.Context, url string, opts queue.Options) (*engine, error) {
	switch {
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		q, err := postgres.Open(ctx, url, opts)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL queue: %w", err)
		}
		return &engine{Queue: q, dead: q, rejects: q, name: "postgres", lockForwarder: q.TryLockForwarder}, nil
	case isSQSQueue(url):
		q, err := sqs.Open(ctx, url, opts)
		if err != nil {
			return nil, fmt.Errorf("open SQS queue %s: %w", url, err)
		}
		return &engine{Queue: q, dead: q, name: "sqs"}, nil
	}
	return nil, usagef("invalid queue %q (LAYOVER_QUEUE): expected empty for the embedded SQLite queue, "+
		"a postgres:// URL, or an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/layover", url)
}
