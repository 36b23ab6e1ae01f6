package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/layover-dev/layover/queue"
)

// Receive claims up to max visible messages, oldest id first, and hides
// them for visibility (queue.DefaultVisibilityTimeout when zero or less).
// Receivers in other processes skip the rows it has locked. A message that
// has already had MaxReceiveCount receives moves to the dead-letter queue
// instead, and Receive claims others in its place.
func (q *Queue) Receive(ctx context.Context, max int, visibility time.Duration) ([]queue.Message, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, fmt.Errorf("receive: invalid max %d, want 1 to %d", max, queue.MaxReceiveBatch)
	}
	max = min(max, queue.MaxReceiveBatch)
	if visibility <= 0 {
		visibility = queue.DefaultVisibilityTimeout
	}
	var out []queue.Message
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		out = nil
		if err := q.expire(ctx, tx); err != nil {
			return err
		}
		// Each round either claims messages or moves at least one to the
		// dead-letter queue, so the loop ends.
		for len(out) < max {
			got, more, err := q.receiveRound(ctx, tx, max-len(out), visibility)
			if err != nil {
				return err
			}
			out = append(out, got...)
			if !more {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	return out, nil
}

type candidate struct {
	id           string
	receiveCount int
}

// receiveRound locks up to n visible messages, dead-letters those out of
// receives and claims the rest. more is false when no visible message was
// left to lock.
func (q *Queue) receiveRound(ctx context.Context, tx pgx.Tx, n int, visibility time.Duration) (
	claimed []queue.Message, more bool, err error,
) {
	const pick = `
		SELECT id, receive_count FROM layover_messages
		WHERE visible_at <= now()
		ORDER BY id
		LIMIT $1
		FOR UPDATE SKIP LOCKED`
	rows, err := tx.Query(ctx, pick, n)
	if err != nil {
		return nil, false, fmt.Errorf("select visible messages: %w", err)
	}
	candidates, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (candidate, error) {
		var c candidate
		err := row.Scan(&c.id, &c.receiveCount)
		return c, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("select visible messages: %w", err)
	}
	if len(candidates) == 0 {
		return nil, false, nil
	}
	var dead, live []string
	for _, c := range candidates {
		if c.receiveCount >= q.opts.MaxReceiveCount {
			dead = append(dead, c.id)
		} else {
			live = append(live, c.id)
		}
	}
	if err := q.moveToDead(ctx, tx, dead); err != nil {
		return nil, false, err
	}
	claimed, err = claim(ctx, tx, live, visibility)
	return claimed, len(candidates) == n, err
}

// moveToDead moves the locked messages with the given ids to the dead-letter
// queue, keeping their id, body, receive count and enqueue time.
func (q *Queue) moveToDead(ctx context.Context, tx pgx.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	reason := fmt.Sprintf("received %d times, the maximum receive count", q.opts.MaxReceiveCount)
	const move = `
		WITH moved AS (
			DELETE FROM layover_messages WHERE id = ANY($1::uuid[])
			RETURNING id, body, receive_count, enqueued_at
		)
		INSERT INTO layover_dead (id, body, receive_count, enqueued_at, reason)
		SELECT id, body, receive_count, enqueued_at, $2 FROM moved`
	if _, err := tx.Exec(ctx, move, ids, reason); err != nil {
		return fmt.Errorf("move to dead-letter queue: %w", err)
	}
	return nil
}

// claim counts a receive of each locked message with the given ids, gives it
// a fresh receipt and hides it for visibility.
func claim(ctx context.Context, tx pgx.Tx, ids []string, visibility time.Duration) ([]queue.Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	receipts := make([]string, len(ids))
	for i, id := range ids {
		receipts[i] = newReceipt(id)
	}
	const update = `
		UPDATE layover_messages AS m
		SET receive_count = m.receive_count + 1,
			visible_at = now() + $3 * interval '1 microsecond',
			receipt = r.receipt
		FROM unnest($1::uuid[], $2::text[]) AS r(id, receipt)
		WHERE m.id = r.id
		RETURNING m.id, m.body, m.receive_count, m.enqueued_at, m.receipt`
	rows, err := tx.Query(ctx, update, ids, receipts, micros(visibility))
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.Message, error) {
		var m queue.Message
		err := row.Scan(&m.ID, &m.Body, &m.ReceiveCount, &m.EnqueuedAt, &m.Receipt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	// UUIDv7 ids sort by enqueue time as strings, so this is oldest first.
	slices.SortFunc(claimed, func(a, b queue.Message) int { return strings.Compare(a.ID, b.ID) })
	return claimed, nil
}

// newReceipt returns "<message id>.<random text>". The id lets Delete and
// ChangeVisibility find the row by primary key, and the random part makes
// every receive's receipt different.
func newReceipt(id string) string {
	return id + "." + queue.NewReceipt()
}

// parseReceipts returns the message ids and receipts of the well-formed
// receipts. Malformed receipts cannot match a message, so they are dropped.
func parseReceipts(receipts []string) (ids, valid []string) {
	for _, r := range receipts {
		id, _, ok := strings.Cut(r, ".")
		if !ok || !validID(id) {
			continue
		}
		ids = append(ids, id)
		valid = append(valid, r)
	}
	return ids, valid
}

// Delete removes the messages whose receipts are the latest ones, whether
// or not their visibility timeout has passed. Stale and malformed receipts
// delete nothing.
func (q *Queue) Delete(ctx context.Context, receipts []string) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	ids, valid := parseReceipts(receipts)
	if len(ids) == 0 {
		return nil
	}
	const del = `
		DELETE FROM layover_messages AS m
		USING unnest($1::uuid[], $2::text[]) AS r(id, receipt)
		WHERE m.id = r.id AND m.receipt = r.receipt`
	if _, err := q.pool.Exec(ctx, del, ids, valid); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// ChangeVisibility hides an in-flight message for timeout from now, and a
// timeout of zero makes it visible at once. It returns queue.ErrStaleReceipt
// when the receipt is not the latest one or the message is visible again.
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if timeout < 0 {
		return fmt.Errorf("change visibility: invalid timeout %s, want zero or more", timeout)
	}
	ids, valid := parseReceipts([]string{receipt})
	if len(ids) == 0 {
		return fmt.Errorf("change visibility: %w", queue.ErrStaleReceipt)
	}
	const update = `
		UPDATE layover_messages
		SET visible_at = now() + $3 * interval '1 microsecond'
		WHERE id = $1::uuid AND receipt = $2 AND visible_at > now()`
	tag, err := q.pool.Exec(ctx, update, ids[0], valid[0], micros(timeout))
	if err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("change visibility: %w", queue.ErrStaleReceipt)
	}
	return nil
}

// Release makes the messages visible at once and takes back the receive
// that returned them. It also clears their receipts, so releasing the same
// receipt twice takes back only one receive. Stale receipts are ignored.
func (q *Queue) Release(ctx context.Context, receipts []string) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	ids, valid := parseReceipts(receipts)
	if len(ids) == 0 {
		return nil
	}
	const release = `
		UPDATE layover_messages AS m
		SET visible_at = now(),
			receive_count = greatest(m.receive_count - 1, 0),
			receipt = NULL
		FROM unnest($1::uuid[], $2::text[]) AS r(id, receipt)
		WHERE m.id = r.id AND m.receipt = r.receipt`
	if _, err := q.pool.Exec(ctx, release, ids, valid); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}
