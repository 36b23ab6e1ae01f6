package sqlite

import (
	"context"
	"database/sql"
	"errors"
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
// send is committed, then closes the syncer's channel. Each commit is
// written without a sync and handed to runSyncer, which syncs the log and
// notifies the senders, so the writer commits the next group while the disk
// syncs the last.
func (q *Queue) runWriter() {
	defer close(q.committed)
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
		if len(batch) == 0 {
			continue
		}
		if err := q.insertMessages(batch); err != nil {
			notify(batch, err)
			continue
		}
		q.committed <- batch
	}
}

// runSyncer syncs the log for each group that runWriter committed and
// notifies its senders. The channel between them has no buffer: while one
// group syncs, the writer commits the next and then waits, and the sends
// that arrive meanwhile join one larger group.
//
// After a failed sync every later send fails too, because Linux may drop
// the pages that did not reach the disk and report success on the next
// sync, so no later sync can prove anything durable.
func (q *Queue) runSyncer() {
	defer close(q.writerDone)
	for batch := range q.committed {
		err := q.syncFailed()
		if err == nil {
			if err = q.log.sync(); err != nil {
				err = fmt.Errorf("%w: %w", errLogSync, err)
				q.syncErr.Store(&err)
				q.logger.Error("syncing the write-ahead log failed, so every later send fails until layover restarts",
					"error", err)
			}
		}
		notify(batch, err)
	}
}

// errLogSync marks a failed sync of the write-ahead log.
var errLogSync = errors.New("sync write-ahead log failed; check the disk and restart layover")

// syncFailed returns the error of the first failed sync, or nil.
func (q *Queue) syncFailed() error {
	if p := q.syncErr.Load(); p != nil {
		return *p
	}
	return nil
}

// notify sends err, nil for success, to every send of batch.
func notify(batch []*sendRequest, err error) {
	for _, r := range batch {
		r.done <- err
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

// insertMessages stores a batch in one transaction without a sync. The
// caller syncs the log before it reports success.
func (q *Queue) insertMessages(batch []*sendRequest) error {
	if err := q.syncFailed(); err != nil {
		return err
	}
	// The callers' contexts differ and each caller waits for the outcome, so
	// the commit runs to its end.
	ctx := context.Background()
	err := q.writeTx(ctx, syncNormal, func(tx *sql.Tx) error {
		insertMessage := q.stmt(ctx, tx, queryInsertMessage)
		insertBody := q.stmt(ctx, tx, queryInsertBody)
		for _, r := range batch {
			if err := insertOne(ctx, insertMessage, insertBody, r.id, r.body, r.enqueuedAt); err != nil {
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

// insertOne stores one message with its body, visible at enqueuedAt. It
// stores a nil body as an empty blob, because the driver binds nil as NULL
// and reads an empty blob back as nil, as Redrive does.
func insertOne(ctx context.Context, insertMessage, insertBody *sql.Stmt, id string, body []byte,
	enqueuedAt int64) error {
	if body == nil {
		body = []byte{}
	}
	res, err := insertMessage.ExecContext(ctx, id, enqueuedAt, enqueuedAt)
	if err != nil {
		return err
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, err = insertBody.ExecContext(ctx, seq, body)
	return err
}
