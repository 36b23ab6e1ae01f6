package postgres

import (
	"context"
	"fmt"
	"log/slog"
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

// Stats returns the queue's counters. It deletes nothing, so an operator
// command run with another retention than the server's cannot remove
// messages: those past the retention count as expired here and are deleted
// by the next Receive. Expired counts messages and dead messages removed
// by retention or past it.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	if err := q.checkOpen(); err != nil {
		return queue.Stats{}, err
	}
	const read = `
		WITH cutoff AS (
			SELECT now() - $1 * interval '1 microsecond' AS live,
			       now() - $2 * interval '1 microsecond' AS dead)
		SELECT
			count(*) FILTER (WHERE m.enqueued_at > c.live AND m.visible_at <= now()),
			count(*) FILTER (WHERE m.enqueued_at > c.live AND m.visible_at > now()),
			min(m.enqueued_at) FILTER (WHERE m.enqueued_at > c.live),
			now(),
			(SELECT count(*) FROM layover_dead d WHERE d.enqueued_at > c.dead),
			(SELECT value FROM layover_counters WHERE name = 'expired')
				+ count(*) FILTER (WHERE m.enqueued_at <= c.live)
				+ (SELECT count(*) FROM layover_dead d WHERE d.enqueued_at <= c.dead)
		FROM cutoff c LEFT JOIN layover_messages m ON true
		GROUP BY c.live, c.dead`
	var (
		stats  queue.Stats
		oldest *time.Time
		now    time.Time
	)
	err := q.pool.QueryRow(ctx, read, micros(q.opts.Retention), micros(q.opts.DeadRetention)).Scan(
		&stats.Visible, &stats.InFlight, &oldest, &now, &stats.DeadLettered, &stats.Expired)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats: read counters: %w", err)
	}
	if oldest != nil {
		stats.OldestAge = max(now.Sub(*oldest), 0)
	}
	return stats, nil
}

// settleRetention reconciles the queue's retentions with those recorded in
// layover_counters, a table of named integers, so that no schema change is
// needed (see queue.Options.SettleRetention). With several servers on one
// database, the one that opened last is recorded.
func (q *Queue) settleRetention(ctx context.Context) error {
	recorded := map[string]int64{}
	rows, err := q.pool.Query(ctx, `SELECT name, value FROM layover_counters WHERE name IN ($1, $2)`,
		queue.RecordedRetention, queue.RecordedDeadRetention)
	if err != nil {
		return fmt.Errorf("read recorded retention: %w", err)
	}
	for rows.Next() {
		var name string
		var ms int64
		if err := rows.Scan(&name, &ms); err != nil {
			rows.Close()
			return fmt.Errorf("read recorded retention: %w", err)
		}
		recorded[name] = ms
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read recorded retention: %w", err)
	}

	logger := slog.Default().With("component", "queue", "engine", "postgres")
	record, err := q.opts.SettleRetention(recorded, logger)
	if err != nil || !record {
		return err
	}

	_, err = q.pool.Exec(ctx, `INSERT INTO layover_counters (name, value) VALUES ($1, $2), ($3, $4)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		queue.RecordedRetention, q.opts.Retention.Milliseconds(), queue.RecordedDeadRetention, q.opts.DeadRetention.Milliseconds())
	if err != nil {
		return fmt.Errorf("record retention: %w", err)
	}
	return nil
}
