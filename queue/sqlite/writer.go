package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	"github.com/layover-dev/layover/queue"
)

// Limits of one group commit. A commit takes the sends that queued up while
// the previous one was syncing, up to these limits.
const (
	defaultMaxBatchMessages = 256
	maxBatchBytes           = 64 << 20
)

// States of a sendRequest. The writer and a Send whose context ends race to
// move a request out of requestPending; the winner decides whether it is
// stored.
const (
	requestPending int32 = iota
	requestTaken
	requestAbandoned
)

// sendRequest is one Send waiting for the writer.
type sendRequest struct {
	id         string
	body       []byte
	enqueuedAt int64
	state      atomic.Int32
	done       chan error // buffered, receives the commit's outcome once
}

// Send stores body and returns its message id once the transaction that
// contains it is synced to disk. It returns queue.ErrTooLarge for a body over
// MaxBodySize. When ctx ends before the writer has taken the body, Send
// returns ctx's error and the body is not stored. When the writer has taken
// it, Send waits for the commit and returns its outcome.
func (q *Queue) Send(ctx context.Context, body []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	if len(body) > MaxBodySize {
		return "", fmt.Errorf("send: body of %d bytes is over the limit of %d bytes: %w",
			len(body), MaxBodySize, queue.ErrTooLarge)
	}
	if body == nil {
		body = []byte{} // nil would bind as NULL
	}
	r := &sendRequest{
		id:         queue.NewMessageID(),
		body:       body,
		enqueuedAt: q.now().UnixMilli(),
		done:       make(chan error, 1),
	}
	if err := q.enqueue(ctx, r); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}

	var err error
	select {
	case err = <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(requestPending, requestAbandoned) {
			return "", fmt.Errorf("send: %w", ctx.Err())
		}
		err = <-r.done
	}
	if err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	return r.id, nil
}

// enqueue hands r to the writer. It holds off Close, which closes the
// channel, until r is in it.
func (q *Queue) enqueue(ctx context.Context, r *sendRequest) error {
	release, err := q.acquire()
	if err != nil {
		return err
	}
	defer release()
	select {
	case q.sends <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runWriter commits sends until Close closes the channel and every queued
// send is committed.
func (q *Queue) runWriter() {
	defer close(q.writerDone)
	var next *sendRequest
	for {
		first := next
		if first == nil {
			var ok bool
			if first, ok = <-q.sends; !ok {
				return
			}
		}
		var batch []*sendRequest
		batch, next = q.collectBatch(first)
		err := q.insertMessages(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

// collectBatch takes first and every send already waiting, up to the batch
// limits. It returns the send that did not fit, if any, for the next batch.
func (q *Queue) collectBatch(first *sendRequest) (batch []*sendRequest, next *sendRequest) {
	size := 0
	add := func(r *sendRequest) {
		// A send whose context ended before this point is not stored.
		if r.state.CompareAndSwap(requestPending, requestTaken) {
			batch = append(batch, r)
			size += len(r.body)
		}
	}
	add(first)
	for len(batch) < q.maxBatchMessages {
		select {
		case r, ok := <-q.sends:
			if !ok {
				return batch, nil
			}
			if len(batch) > 0 && size+len(r.body) > maxBatchBytes {
				return batch, r
			}
			add(r)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// insertMessages stores a batch in one transaction and syncs it.
func (q *Queue) insertMessages(batch []*sendRequest) error {
	if len(batch) == 0 {
		return nil
	}
	// The callers' contexts differ and each caller waits for the outcome, so
	// the commit runs to its end.
	ctx := context.Background()
	err := q.writeTx(ctx, syncFull, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO messages (id, body, enqueued_at, visible_at) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range batch {
			if _, err := stmt.ExecContext(ctx, r.id, r.body, r.enqueuedAt, r.enqueuedAt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store message: %w", err)
	}
	q.sendCommits.Add(1)
	return nil
}
