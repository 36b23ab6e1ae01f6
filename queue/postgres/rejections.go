package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/layover-dev/layover/queue"
)

// RecordRejected stores the rejections in one transaction. A zero At is
// recorded as the current database time.
func (q *Queue) RecordRejected(ctx context.Context, rejections []queue.Rejection) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if len(rejections) == 0 {
		return nil
	}

	n := len(rejections)
	messageIDs := make([]string, n)
	eventIDs := make([]string, n)
	names := make([]string, n)
	reasons := make([]string, n)
	events := make([][]byte, n)
	times := make([]*time.Time, n)
	for i, r := range rejections {
		messageIDs[i] = r.MessageID
		eventIDs[i] = r.EventID
		names[i] = r.EventName
		reasons[i] = r.Reason
		events[i] = r.Event
		if !r.At.IsZero() {
			at := r.At
			times[i] = &at
		}
	}

	const insert = `
		INSERT INTO layover_rejections
			(message_id, event_id, event_name, reason, event, recorded_at)
		SELECT message_id, event_id, event_name, reason, event, coalesce(at, now())
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[],
			$6::timestamptz[]) WITH ORDINALITY
			AS t(message_id, event_id, event_name, reason, event, at, n)
		ORDER BY n`
	_, err := q.pool.Exec(ctx, insert, messageIDs, eventIDs, names, reasons, events, times)
	if err != nil {
		return fmt.Errorf("record rejected: %w", err)
	}
	return nil
}

// ListRejected returns up to limit rejections, newest first.
func (q *Queue) ListRejected(ctx context.Context, limit int) ([]queue.Rejection, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	const list = `
		SELECT message_id, event_id, event_name, reason, event, recorded_at
		FROM layover_rejections
		ORDER BY recorded_at DESC, id DESC
		LIMIT $1`
	rows, err := q.pool.Query(ctx, list, limit)
	if err != nil {
		return nil, fmt.Errorf("list rejected: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.Rejection, error) {
		var r queue.Rejection
		err := row.Scan(&r.MessageID, &r.EventID, &r.EventName, &r.Reason, &r.Event, &r.At)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list rejected: %w", err)
	}
	return out, nil
}
