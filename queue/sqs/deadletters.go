package sqs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/layover-dev/layover/queue"
)

// SQS has no call that reads a message without receiving it, so the
// dead-letter methods receive messages from the dead-letter queue. These
// constants shape those receives.
const (
	// deadVisibilitySeconds hides the dead-letter messages that a call has
	// received until it deletes them or makes them visible again.
	deadVisibilitySeconds = 60
	// deadWaitSeconds makes each receive long-poll, which queries every
	// SQS server, so that a short-poll sampling miss on a dead-letter queue
	// with few messages does not end a scan early. Only the last, empty
	// receive of a call waits the full second.
	deadWaitSeconds = 1
	// maxDeadScan is the maximum number of dead-letter messages that
	// ListDead and GetDead read in one call. It bounds their time and
	// memory.
	maxDeadScan = 10_000
	// restoreTimeout bounds making scanned messages visible again, which
	// runs even when the caller's context is done.
	restoreTimeout = 10 * time.Second
)

// ListDead returns up to limit messages of the dead-letter queue, ordered by
// enqueue time and then id, starting after the message with id after ("" for
// the first page). It returns an error wrapping queue.ErrNotFound when no
// message has id after.
//
// Listing receives every dead-letter message (at most 10,000), about 2
// requests per 10 messages, and then makes them visible again. Messages are
// ordered by SentTimestamp, which SQS keeps when it moves a message to a
// standard dead-letter queue, and ties by id, which sorts by creation time.
func (q *Queue) ListDead(
	ctx context.Context, after string, limit int,
) ([]queue.DeadMessage, error) {
	if err := q.checkDeadLetters(); err != nil {
		return nil, err
	}
	var all []queue.DeadMessage
	err := q.scanDead(ctx, func(m types.Message) bool {
		all = append(all, q.deadMessage(m))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("list dead: %w", err)
	}
	slices.SortFunc(all, func(a, b queue.DeadMessage) int {
		return cmp.Or(a.EnqueuedAt.Compare(b.EnqueuedAt), cmp.Compare(a.ID, b.ID))
	})
	start := 0
	if after != "" {
		i := slices.IndexFunc(all, func(m queue.DeadMessage) bool { return m.ID == after })
		if i < 0 {
			return nil, fmt.Errorf("list dead after %q: %w", after, queue.ErrNotFound)
		}
		start = i + 1
	}
	end := min(start+max(limit, 0), len(all))
	return all[start:end], nil
}

// GetDead returns the dead-letter message with id, or an error wrapping
// queue.ErrNotFound. Like ListDead it receives dead-letter messages until it
// finds id and then makes them visible again.
func (q *Queue) GetDead(ctx context.Context, id string) (queue.DeadMessage, error) {
	if err := q.checkDeadLetters(); err != nil {
		return queue.DeadMessage{}, err
	}
	var found *queue.DeadMessage
	err := q.scanDead(ctx, func(m types.Message) bool {
		if messageOrigin(m).id != id {
			return true
		}
		dead := q.deadMessage(m)
		found = &dead
		return false
	})
	if err != nil {
		return queue.DeadMessage{}, fmt.Errorf("get dead %q: %w", id, err)
	}
	if found == nil {
		return queue.DeadMessage{}, fmt.Errorf("get dead %q: %w", id, queue.ErrNotFound)
	}
	return *found, nil
}

// Redrive moves up to limit dead-letter messages back to the queue and
// returns how many it moved. It receives 10 at a time, sends copies with
// SendMessageBatch, which gives them a receive count of 0, and deletes the
// originals with DeleteMessageBatch. A copy keeps the message id and
// enqueue time that Receive returns, but SQS restarts its retention period.
//
// NOTE: StartMessageMoveTask would move messages without passing their bodies
// through Layover, but it runs asynchronously and fauxqs 1.9 does not
// implement it.
func (q *Queue) Redrive(ctx context.Context, limit int) (int, error) {
	if err := q.checkDeadLetters(); err != nil {
		return 0, err
	}
	moved := 0
	for moved < limit {
		messages, err := q.receiveDead(ctx, min(maxBatchEntries, limit-moved))
		if err != nil || len(messages) == 0 {
			return moved, wrapErr("redrive", err)
		}
		n, err := q.moveToQueue(ctx, messages)
		moved += n
		if err != nil {
			return moved, fmt.Errorf("redrive: %w", err)
		}
	}
	return moved, nil
}

// moveToQueue sends copies of dead-letter messages to the queue, deletes
// the originals whose copies were stored and makes the others visible again.
func (q *Queue) moveToQueue(ctx context.Context, messages []types.Message) (int, error) {
	copies := make([]copyMessage, len(messages))
	for i, m := range messages {
		copies[i] = q.newCopy(storedBody(m), messageOrigin(m))
	}
	sent, sendErr := q.sendBatches(ctx, q.url, copies)
	var moved, kept []string
	for i, m := range messages {
		if sent[i] {
			moved = append(moved, aws.ToString(m.ReceiptHandle))
		} else {
			kept = append(kept, aws.ToString(m.ReceiptHandle))
		}
	}
	deleteErr := q.deleteBatches(ctx, q.deadURL, moved)
	restoreErr := q.changeVisibilityBatches(ctx, q.deadURL, kept, 0)
	return len(moved), errors.Join(sendErr, deleteErr, restoreErr)
}

// PurgeDead deletes every dead-letter message and returns how many it
// deleted. It receives and deletes 10 at a time, because PurgeQueue returns
// no count and SQS accepts it only once every 60 seconds.
func (q *Queue) PurgeDead(ctx context.Context) (int, error) {
	if err := q.checkDeadLetters(); err != nil {
		return 0, err
	}
	purged := 0
	for {
		messages, err := q.receiveDead(ctx, maxBatchEntries)
		if err != nil || len(messages) == 0 {
			return purged, wrapErr("purge dead", err)
		}
		receipts := make([]string, len(messages))
		for i, m := range messages {
			receipts[i] = aws.ToString(m.ReceiptHandle)
		}
		if err := q.deleteBatches(ctx, q.deadURL, receipts); err != nil {
			return purged, fmt.Errorf("purge dead: %w", err)
		}
		purged += len(messages)
	}
}

func (q *Queue) checkDeadLetters() error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if q.deadURL == "" {
		return ErrNoDeadLetterQueue
	}
	return nil
}

// receiveDead receives up to n dead-letter messages and hides them for
// deadVisibilitySeconds.
func (q *Queue) receiveDead(ctx context.Context, n int) ([]types.Message, error) {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.deadURL),
		MaxNumberOfMessages:         int32(n),
		VisibilityTimeout:           deadVisibilitySeconds,
		WaitTimeSeconds:             deadWaitSeconds,
		MessageSystemAttributeNames: receiveSystemAttributes,
		MessageAttributeNames:       attributeNames,
	}, q.callOptions)
	if err != nil {
		return nil, fmt.Errorf("receive from dead-letter queue: %w", err)
	}
	return out.Messages, nil
}

// scanDead receives dead-letter messages and calls visit once for each until
// visit returns false, the queue returns none, or maxDeadScan messages were
// read. It then makes every message it received visible again.
func (q *Queue) scanDead(ctx context.Context, visit func(types.Message) bool) (err error) {
	var receipts []string
	defer func() {
		restoreCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
		defer cancel()
		err = errors.Join(err, q.changeVisibilityBatches(restoreCtx, q.deadURL, receipts, 0))
	}()
	seen := make(map[string]bool)
	for len(seen) < maxDeadScan {
		messages, err := q.receiveDead(ctx, maxBatchEntries)
		if err != nil {
			return err
		}
		newMessages := 0
		for _, m := range messages {
			receipts = append(receipts, aws.ToString(m.ReceiptHandle))
		}
		for _, m := range messages {
			// A message received twice became visible again during a
			// long scan; it was already visited.
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)] = true
			newMessages++
			if !visit(m) {
				return nil
			}
		}
		if newMessages == 0 {
			return nil
		}
	}
	return nil
}

// deadMessage converts a message received from the dead-letter queue.
// SQS moves a message on the receive after its maxReceiveCount-th, so
// ReceiveCount is maxReceiveCount. The message's own SQS receive count also
// includes the receive that moved it and the receives of listings. SQS does
// not record when it moved a message, so DeadAt is the enqueue time, the
// earliest it can have been.
func (q *Queue) deadMessage(m types.Message) queue.DeadMessage {
	received := receivedMessage(m)
	return queue.DeadMessage{
		ID:           received.ID,
		Body:         received.Body,
		ReceiveCount: q.maxReceiveCount,
		EnqueuedAt:   received.EnqueuedAt,
		DeadAt:       received.EnqueuedAt,
		Reason: fmt.Sprintf("received more than %d times (maxReceiveCount of the SQS redrive policy)",
			q.maxReceiveCount),
	}
}

// wrapErr returns err with prefix, or nil when err is nil.
func wrapErr(prefix string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
