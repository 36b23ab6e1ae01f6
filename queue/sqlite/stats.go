package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/layover-dev/layover/queue"
)

// expire deletes the messages and dead messages past their retention and
// adds them to the expired counter. It also deletes rejections older than
// the dead-letter retention. Receive, Redrive and PurgeDead call it, so
// nothing expired is ever returned, moved or counted as dead.
func (q *Queue) expire(ctx context.Context, tx *sql.Tx, now time.Time) error {
	messageCutoff := now.Add(-q.opts.Retention).UnixMilli()
	deadCutoff := now.Add(-q.opts.DeadRetention).UnixMilli()

	expiredMessages, err := stmtCount(ctx, q.stmt(ctx, tx, queryExpireMessages), messageCutoff)
	if err != nil {
		return fmt.Errorf("expire messages: %w", err)
	}
	expiredDead, err := stmtCount(ctx, q.stmt(ctx, tx, queryExpireDead), deadCutoff)
	if err != nil {
		return fmt.Errorf("expire dead messages: %w", err)
	}
	if _, err := q.stmt(ctx, tx, queryExpireRejections).ExecContext(ctx, deadCutoff); err != nil {
		return fmt.Errorf("expire rejections: %w", err)
	}
	if expiredMessages+expiredDead == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + ? WHERE name = 'expired'`,
		expiredMessages+expiredDead); err != nil {
		return fmt.Errorf("count expired messages: %w", err)
	}
	q.logger.Warn("messages expired", "messages", expiredMessages, "dead_messages", expiredDead,
		"retention", q.opts.Retention, "dead_retention", q.opts.DeadRetention)
	return nil
}

// stmtCount runs a prepared statement and returns how many rows it changed.
func stmtCount(ctx context.Context, stmt *sql.Stmt, args ...any) (int64, error) {
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execCount runs a statement and returns how many rows it changed.
func execCount(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Stats returns the queue's counters. Messages past their retention that
// no Receive has removed yet already count as expired.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	release, err := q.acquire()
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer release()

	now := q.now()
	nowMillis := now.UnixMilli()
	messageCutoff := now.Add(-q.opts.Retention).UnixMilli()
	deadCutoff := now.Add(-q.opts.DeadRetention).UnixMilli()

	var (
		st     queue.Stats
		oldest sql.NullInt64
	)
	// One statement reads one snapshot, so the counts agree with each other.
	err = q.readDB.QueryRowContext(ctx, `
SELECT
	(SELECT count(*) FROM messages WHERE enqueued_at > ?1 AND visible_at <= ?2),
	(SELECT count(*) FROM messages WHERE enqueued_at > ?1 AND visible_at > ?2),
	(SELECT min(enqueued_at) FROM messages WHERE enqueued_at > ?1),
	(SELECT count(*) FROM dead_messages WHERE enqueued_at > ?3),
	(SELECT value FROM counters WHERE name = 'expired')
		+ (SELECT count(*) FROM messages WHERE enqueued_at <= ?1)
		+ (SELECT count(*) FROM dead_messages WHERE enqueued_at <= ?3)`,
		messageCutoff, nowMillis, deadCutoff,
	).Scan(&st.Visible, &st.InFlight, &oldest, &st.DeadLettered, &st.Expired)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats: %w", err)
	}
	if oldest.Valid {
		st.OldestAge = max(now.Sub(time.UnixMilli(oldest.Int64)), 0)
	}
	return st, nil
}

// settleRetention reconciles the queue's retentions with those recorded in
// counters, a table of named integers, so that no schema change is needed
// (see queue.Options.SettleRetention).
func (q *Queue) settleRetention(ctx context.Context) error {
	recorded := map[string]int64{}
	rows, err := q.writeDB.QueryContext(ctx, `SELECT name, value FROM counters WHERE name IN (?, ?)`,
		queue.RecordedRetention, queue.RecordedDeadRetention)
	if err != nil {
		return fmt.Errorf("read recorded retention: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var ms int64
		if err := rows.Scan(&name, &ms); err != nil {
			return fmt.Errorf("read recorded retention: %w", err)
		}
		recorded[name] = ms
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read recorded retention: %w", err)
	}

	record, err := q.opts.SettleRetention(recorded, q.logger)
	if err != nil || !record {
		return err
	}

	_, err = q.writeDB.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?), (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		queue.RecordedRetention, q.opts.Retention.Milliseconds(), queue.RecordedDeadRetention, q.opts.DeadRetention.Milliseconds())
	if err != nil {
		return fmt.Errorf("record retention: %w", err)
	}
	return nil
}
