package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/layover-dev/layover/queue"
)

// Limits of one group commit. A batch of this size is a single INSERT and
// one commit, so one disk sync on the server covers every Send in it.
const (
	maxBatchMessages = 500
	maxBatchBytes    = 16 << 20
	// batchTimeout bounds one INSERT. It does not depend on the callers'
	// contexts, so that one cancelled Send does not fail the others.
	batchTimeout = 30 * time.Second
)

type sendRequest struct {
	body []byte
	done chan sendResult // buffered, written once by the writer
}

type sendResult struct {
	id  string
	err error
}

// Send stores body and returns its message id once PostgreSQL has committed
// it. Concurrent Sends share one INSERT and one commit. It returns
// queue.ErrTooLarge for a body over MaxBodyBytes.
//
// When ctx ends after the writer took the body, Send returns ctx's error but
// the message may still be stored, so a caller that retries can store it
// twice. Layover's delivery is at least once anyway.
func (q *Queue) Send(ctx context.Context, body []byte) (string, error) {
	if err := q.checkOpen(); err != nil {
		return "", err
	}
	if len(body) > MaxBodyBytes {
		return "", fmt.Errorf("send: body of %d bytes exceeds %d: %w",
			len(body), MaxBodyBytes, queue.ErrTooLarge)
	}
	// Checked first because select picks at random among ready cases.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	req := sendRequest{body: body, done: make(chan sendResult, 1)}
	select {
	case q.sends <- req:
	case <-q.quit:
		return "", queue.ErrClosed
	case <-ctx.Done():
		return "", fmt.Errorf("send: %w", ctx.Err())
	}
	// The writer sends a result for every request it took, even while closing.
	select {
	case res := <-req.done:
		return res.id, res.err
	case <-ctx.Done():
		return "", fmt.Errorf("send: %w", ctx.Err())
	}
}

// writeLoop is the single writer goroutine. While one batch is being
// committed, new Sends wait on the unbuffered channel, and the next batch
// takes all of them at once.
func (q *Queue) writeLoop() {
	defer close(q.writerDone)
	for {
		var first sendRequest
		select {
		case first = <-q.sends:
		case <-q.quit:
			return
		}
		batch := q.collectBatch(first)
		ids, err := q.insertBatch(batch)
		for i, req := range batch {
			if err != nil {
				req.done <- sendResult{err: err}
				continue
			}
			req.done <- sendResult{id: ids[i]}
		}
	}
}

// collectBatch adds to first every Send that is already waiting, up to the
// batch limits.
func (q *Queue) collectBatch(first sendRequest) []sendRequest {
	batch := []sendRequest{first}
	size := len(first.body)
	for len(batch) < maxBatchMessages && size < maxBatchBytes {
		select {
		case req := <-q.sends:
			batch = append(batch, req)
			size += len(req.body)
		default:
			return batch
		}
	}
	return batch
}

// insertBatch inserts the bodies in one statement and returns their ids in
// the order of batch.
func (q *Queue) insertBatch(batch []sendRequest) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()

	ids := make([]string, len(batch))
	bodies := make([][]byte, len(batch))
	for i, req := range batch {
		ids[i] = queue.NewMessageID()
		bodies[i] = req.body
	}
	const insert = `
		INSERT INTO layover_messages (id, body)
		SELECT id, body FROM unnest($1::uuid[], $2::bytea[]) AS t(id, body)`
	if _, err := q.pool.Exec(ctx, insert, ids, bodies); err != nil {
		return nil, fmt.Errorf("send: insert: %w", err)
	}
	return ids, nil
}
