package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/layover-dev/layover/queue"
)

// candidate is a visible message that Receive may return.
type candidate struct {
	seq          int64
	id           string
	body         []byte
	enqueuedAt   int64
	receiveCount int
}

// Receive returns up to max messages (at most queue.MaxReceiveBatch) and
// hides them for visibility. It first removes messages past their retention,
// and moves a message whose receive count would exceed MaxReceiveCount to the
// dead-letter queue instead of returning it.
func (q *Queue) Receive(ctx context.Context, max int, visibility time.Duration) ([]queue.Message, error) {
	if max < 1 {
		return nil, fmt.Errorf("receive: max is %d, want 1 to %d", max, queue.MaxReceiveBatch)
	}
	if visibility < 0 {
		return nil, fmt.Errorf("receive: visibility timeout %v is negative", visibility)
	}
	max = min(max, queue.MaxReceiveBatch)
	release, err := q.acquire()
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	defer release()

	var msgs []queue.Message
	err = q.writeTx(ctx, syncNormal, func(tx *sql.Tx) error {
		now := q.now()
		if err := q.expire(ctx, tx, now); err != nil {
			return err
		}
		msgs, err = q.receiveTx(ctx, tx, now, max, visibility)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	return msgs, nil
}

// receiveTx picks the messages for Receive. Each pass selects the messages
// that became visible first. When a pass moves messages to the dead-letter
// queue, the next pass fills their places.
func (q *Queue) receiveTx(ctx context.Context, tx *sql.Tx, now time.Time, max int,
	visibility time.Duration) ([]queue.Message, error) {
	nowMillis := now.UnixMilli()
	visibleAt := deadlineMillis(now, visibility)
	picked := map[int64]bool{} // with visibility 0, picked messages stay visible
	mark := q.stmt(ctx, tx, queryMarkReceived)
	var msgs []queue.Message
	for len(msgs) < max {
		candidates, err := q.selectVisible(ctx, tx, nowMillis, max)
		if err != nil {
			return nil, err
		}
		moved := 0
		for _, c := range candidates {
			if picked[c.seq] || len(msgs) == max {
				continue
			}
			if c.receiveCount >= q.opts.MaxReceiveCount {
				if err := q.moveToDead(ctx, tx, c, nowMillis); err != nil {
					return nil, err
				}
				moved++
				continue
			}
			m, err := markReceived(ctx, mark, c, visibleAt)
			if err != nil {
				return nil, err
			}
			picked[c.seq] = true
			msgs = append(msgs, m)
		}
		if moved == 0 {
			break
		}
	}
	return msgs, nil
}

// selectVisible returns up to limit visible messages, those that became
// visible first before the others.
func (q *Queue) selectVisible(ctx context.Context, tx *sql.Tx, nowMillis int64, limit int) ([]candidate, error) {
	rows, err := q.stmt(ctx, tx, querySelectVisible).QueryContext(ctx, nowMillis, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var candidates []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.seq, &c.id, &c.body, &c.enqueuedAt, &c.receiveCount); err != nil {
			return nil, err
		}
		candidates = append(candidates, c)
	}
	return candidates, rows.Err()
}

// markReceived gives c a fresh receipt, counts the receive and hides c
// until visibleAt.
func markReceived(ctx context.Context, mark *sql.Stmt, c candidate, visibleAt int64) (queue.Message, error) {
	receipt := queue.NewReceipt()
	_, err := mark.ExecContext(ctx, receipt, visibleAt, c.seq)
	if err != nil {
		return queue.Message{}, err
	}
	return queue.Message{
		ID:           c.id,
		Body:         c.body,
		Receipt:      receipt,
		ReceiveCount: c.receiveCount + 1,
		EnqueuedAt:   time.UnixMilli(c.enqueuedAt),
	}, nil
}

// moveToDead moves c to the dead-letter queue, keeping its enqueue time.
func (q *Queue) moveToDead(ctx context.Context, tx *sql.Tx, c candidate, nowMillis int64) error {
	// The same words as the PostgreSQL engine's reason.
	reason := fmt.Sprintf("received %d times, the maximum receive count", q.opts.MaxReceiveCount)
	_, err := tx.ExecContext(ctx, `
INSERT INTO dead_messages (id, body, receive_count, enqueued_at, dead_at, reason)
SELECT m.id, b.body, m.receive_count, m.enqueued_at, ?, ?
FROM messages AS m JOIN message_bodies AS b ON b.seq = m.seq
WHERE m.seq = ?`,
		nowMillis, reason, c.seq)
	if err != nil {
		return fmt.Errorf("move message %s to dead-letter queue: %w", c.id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE seq = ?`, c.seq); err != nil {
		return fmt.Errorf("move message %s to dead-letter queue: %w", c.id, err)
	}
	q.logger.Warn("message moved to dead-letter queue", "message_id", c.id,
		"receive_count", c.receiveCount, "reason", reason)
	return nil
}

// Delete removes the messages whose receipts are current. A stale or unknown
// receipt deletes nothing and is not an error.
func (q *Queue) Delete(ctx context.Context, receipts []string) error {
	release, err := q.acquire()
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	defer release()
	if len(receipts) == 0 {
		return nil
	}
	err = q.writeTx(ctx, syncNormal, func(tx *sql.Tx) error {
		return execEach(ctx, q.stmt(ctx, tx, queryDeleteReceipt), receipts)
	})
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// ChangeVisibility hides an in-flight message for timeout from now; zero
// makes it visible at once. It returns queue.ErrStaleReceipt when receipt is
// not the latest one of a message that is still in flight.
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("change visibility: timeout %v is negative", timeout)
	}
	release, err := q.acquire()
	if err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	defer release()

	now := q.now()
	var changed int64
	err = q.inWriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE messages SET visible_at = ?
WHERE receipt = ? AND visible_at > ? AND enqueued_at > ?`,
			deadlineMillis(now, timeout), receipt, now.UnixMilli(), now.Add(-q.opts.Retention).UnixMilli())
		if err != nil {
			return err
		}
		changed, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	if changed == 0 {
		return fmt.Errorf("change visibility: %w", queue.ErrStaleReceipt)
	}
	return nil
}

// Release makes messages visible at once and takes back the receive that
// returned them. Their receipts become stale, so a second Release with the
// same receipt changes nothing. Stale receipts are ignored.
func (q *Queue) Release(ctx context.Context, receipts []string) error {
	release, err := q.acquire()
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	defer release()
	if len(receipts) == 0 {
		return nil
	}
	nowMillis := q.now().UnixMilli()
	err = q.inWriteTx(ctx, func(tx *sql.Tx) error {
		return execEach(ctx, q.stmt(ctx, tx, queryReleaseReceipt), receipts, nowMillis)
	})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// execEach runs stmt once per receipt, with args before the receipt.
func execEach(ctx context.Context, stmt *sql.Stmt, receipts []string, args ...any) error {
	for _, r := range receipts {
		if _, err := stmt.ExecContext(ctx, append(args, r)...); err != nil {
			return err
		}
	}
	return nil
}

// inWriteTx runs fn in a write transaction and commits it, synced to disk.
func (q *Queue) inWriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return q.writeTx(ctx, syncFull, fn)
}

// deadlineMillis returns now+d in Unix milliseconds. A positive d rounds
// up while the current time rounds down, so a message never becomes visible
// before its timeout has passed in full. A zero d is now itself, rounded
// down, so the message is visible at once.
func deadlineMillis(now time.Time, d time.Duration) int64 {
	if d <= 0 {
		return now.UnixMilli()
	}
	t := now.Add(d)
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}
