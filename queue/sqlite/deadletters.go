package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/layover-dev/layover/queue"
)

// ListDead returns up to limit dead messages with ids after the given id,
// oldest first ("" starts at the beginning). Message ids sort by enqueue
// time, so the id order is the age order.
func (q *Queue) ListDead(ctx context.Context, after string, limit int) ([]queue.DeadMessage, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list dead messages: limit is %d, want at least 1", limit)
	}
	release, err := q.acquire()
	if err != nil {
		return nil, fmt.Errorf("list dead messages: %w", err)
	}
	defer release()

	deadCutoff := q.now().Add(-q.opts.DeadRetention).UnixMilli()
	rows, err := q.readDB.QueryContext(ctx, `
SELECT id, body, receive_count, enqueued_at, dead_at, reason
FROM dead_messages
WHERE id > ? AND enqueued_at > ?
ORDER BY id
LIMIT ?`, after, deadCutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead messages: %w", err)
	}
	defer rows.Close()

	var list []queue.DeadMessage
	for rows.Next() {
		d, err := scanDead(rows)
		if err != nil {
			return nil, fmt.Errorf("list dead messages: %w", err)
		}
		list = append(list, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead messages: %w", err)
	}
	return list, nil
}

// GetDead returns one dead message, or an error wrapping queue.ErrNotFound.
func (q *Queue) GetDead(ctx context.Context, id string) (queue.DeadMessage, error) {
	release, err := q.acquire()
	if err != nil {
		return queue.DeadMessage{}, fmt.Errorf("get dead message: %w", err)
	}
	defer release()

	deadCutoff := q.now().Add(-q.opts.DeadRetention).UnixMilli()
	row := q.readDB.QueryRowContext(ctx, `
SELECT id, body, receive_count, enqueued_at, dead_at, reason
FROM dead_messages
WHERE id = ? AND enqueued_at > ?`, id, deadCutoff)
	d, err := scanDead(row)
	if errors.Is(err, sql.ErrNoRows) {
		return queue.DeadMessage{}, fmt.Errorf("get dead message %s: %w", id, queue.ErrNotFound)
	}
	if err != nil {
		return queue.DeadMessage{}, fmt.Errorf("get dead message %s: %w", id, err)
	}
	return d, nil
}

// scanDead reads one row of dead_messages.
func scanDead(row interface{ Scan(dest ...any) error }) (queue.DeadMessage, error) {
	var (
		d                  queue.DeadMessage
		enqueuedAt, deadAt int64
	)
	if err := row.Scan(&d.ID, &d.Body, &d.ReceiveCount, &enqueuedAt, &deadAt, &d.Reason); err != nil {
		return queue.DeadMessage{}, err
	}
	d.EnqueuedAt = time.UnixMilli(enqueuedAt)
	d.DeadAt = time.UnixMilli(deadAt)
	return d, nil
}

// Redrive moves up to limit dead messages, oldest first, back to the queue
// and returns how many it moved. As in Amazon SQS, each moved message gets a
// new id and enqueue time, so its retention starts again, and a receive
// count of 0.
func (q *Queue) Redrive(ctx context.Context, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("redrive: limit is %d, want at least 1", limit)
	}
	release, err := q.acquire()
	if err != nil {
		return 0, fmt.Errorf("redrive: %w", err)
	}
	defer release()

	var moved []string
	err = q.inWriteTx(ctx, func(tx *sql.Tx) error {
		now := q.now()
		if err := q.expire(ctx, tx, now); err != nil {
			return err
		}
		ids, err := selectDeadIDs(ctx, tx, limit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := q.redriveOne(ctx, tx, id, now.UnixMilli()); err != nil {
				return err
			}
		}
		moved = ids
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redrive: %w", err)
	}
	if len(moved) > 0 {
		q.logger.Info("dead messages moved back to the queue", "messages", len(moved),
			"first_message_id", moved[0])
	}
	return len(moved), nil
}

// selectDeadIDs returns the ids of the limit oldest dead messages.
func selectDeadIDs(ctx context.Context, tx *sql.Tx, limit int) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM dead_messages ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// redriveOne moves the dead message id back to the queue under a new id.
func (q *Queue) redriveOne(ctx context.Context, tx *sql.Tx, id string, nowMillis int64) error {
	var body []byte
	err := tx.QueryRowContext(ctx, `SELECT body FROM dead_messages WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not found: nothing to move
	}
	if err != nil {
		return fmt.Errorf("move dead message %s: %w", id, err)
	}
	insertMessage := q.stmt(ctx, tx, queryInsertMessage)
	insertBody := q.stmt(ctx, tx, queryInsertBody)
	if err := insertOne(ctx, insertMessage, insertBody, queue.NewMessageID(), body, nowMillis); err != nil {
		return fmt.Errorf("move dead message %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM dead_messages WHERE id = ?`, id); err != nil {
		return fmt.Errorf("move dead message %s: %w", id, err)
	}
	return nil
}

// PurgeDead deletes every dead message and returns how many it deleted.
// Dead messages past their retention count as expired, not as purged.
func (q *Queue) PurgeDead(ctx context.Context) (int, error) {
	release, err := q.acquire()
	if err != nil {
		return 0, fmt.Errorf("purge dead messages: %w", err)
	}
	defer release()

	var purged int64
	err = q.inWriteTx(ctx, func(tx *sql.Tx) error {
		if err := q.expire(ctx, tx, q.now()); err != nil {
			return err
		}
		purged, err = execCount(ctx, tx, `DELETE FROM dead_messages`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge dead messages: %w", err)
	}
	if purged > 0 {
		q.logger.Info("dead messages purged", "messages", purged)
	}
	return int(purged), nil
}
