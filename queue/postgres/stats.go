package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/layover-dev/layover/queue"
)

// expire deletes the messages older than the retention and the dead
// messages older than the dead retention, both counted from the first
// enqueue, and adds them to the expired counter. Rows that another
// transaction has locked are left for a later call.
func (q *Queue) expire(ctx context.Context, tx pgx.Tx) error {
	const del = `
		WITH live AS (
			DELETE FROM layover_messages WHERE id IN (
				SELECT id FROM layover_messages
				WHERE enqueued_at <= now() - $1 * interval '1 microsecond'
				FOR UPDATE SKIP LOCKED)
			RETURNING 1
		), dead AS (
			DELETE FROM layover_dead WHERE id IN (
				SELECT id FROM layover_dead
				WHERE enqueued_at <= now() - $2 * interval '1 microsecond'
				FOR UPDATE SKIP LOCKED)
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM live) + (SELECT count(*) FROM dead)`
	var n int64
	err := tx.QueryRow(ctx, del, micros(q.opts.Retention), micros(q.opts.DeadRetention)).Scan(&n)
	if err != nil {
		return fmt.Errorf("expire messages: %w", err)
	}
	if n == 0 {
		return nil
	}
	const count = `UPDATE layover_counters SET value = value + $1 WHERE name = 'expired'`
	if _, err := tx.Exec(ctx, count, n); err != nil {
		return fmt.Errorf("count expired messages: %w", err)
	}
	return nil
}

// Stats expires old messages, then returns the queue's counters. Expired
// counts messages and dead messages removed by retention.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	if err := q.checkOpen(); err != nil {
		return queue.Stats{}, err
	}
	var stats queue.Stats
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		if err := q.expire(ctx, tx); err != nil {
			return err
		}
		const read = `
			SELECT
				count(*) FILTER (WHERE visible_at <= now()),
				count(*) FILTER (WHERE visible_at > now()),
				min(enqueued_at),
				now(),
				(SELECT count(*) FROM layover_dead),
				(SELECT value FROM layover_counters WHERE name = 'expired')
			FROM layover_messages`
		var oldest *time.Time
		var now time.Time
		err := tx.QueryRow(ctx, read).Scan(&stats.Visible, &stats.InFlight, &oldest, &now,
			&stats.DeadLettered, &stats.Expired)
		if err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
		if oldest != nil {
			stats.OldestAge = max(now.Sub(*oldest), 0)
		}
		return nil
	})
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats: %w", err)
	}
	return stats, nil
}
