package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/layover-dev/layover/queue"
)

// RecordRejected stores rejections in one transaction, synced to disk before
// it returns. A zero At is set to now. Rejections are kept for the
// dead-letter retention (Options.DeadRetention), counted from At.
func (q *Queue) RecordRejected(ctx context.Context, rejections []queue.Rejection) error {
	release, err := q.acquire()
	if err != nil {
		return fmt.Errorf("record rejections: %w", err)
	}
	defer release()
	if len(rejections) == 0 {
		return nil
	}

	now := q.now()
	err = q.inWriteTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO rejections (message_id, event_id, event_name, reason, event, at)
VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rejections {
			at := r.At
			if at.IsZero() {
				at = now
			}
			event := r.Event
			if event == nil {
				event = []byte{} // nil would bind as NULL
			}
			_, err := stmt.ExecContext(ctx, r.MessageID, r.EventID, r.EventName, r.Reason, event, at.UnixMilli())
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record rejections: %w", err)
	}
	return nil
}

// ListRejected returns up to limit rejections, newest first.
func (q *Queue) ListRejected(ctx context.Context, limit int) ([]queue.Rejection, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list rejections: limit is %d, want at least 1", limit)
	}
	release, err := q.acquire()
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	defer release()

	cutoff := q.now().Add(-q.opts.DeadRetention).UnixMilli()
	rows, err := q.readDB.QueryContext(ctx, `
SELECT message_id, event_id, event_name, reason, event, at
FROM rejections
WHERE at > ?
ORDER BY at DESC, seq DESC
LIMIT ?`, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	defer rows.Close()

	var list []queue.Rejection
	for rows.Next() {
		var (
			r  queue.Rejection
			at int64
		)
		if err := rows.Scan(&r.MessageID, &r.EventID, &r.EventName, &r.Reason, &r.Event, &at); err != nil {
			return nil, fmt.Errorf("list rejections: %w", err)
		}
		r.At = time.UnixMilli(at)
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	return list, nil
}
