package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/layover-dev/layover/queue"
)

const deadColumns = `id, body, receive_count, enqueued_at, dead_at, reason`

func scanDead(row pgx.CollectableRow) (queue.DeadMessage, error) {
	var m queue.DeadMessage
	err := row.Scan(&m.ID, &m.Body, &m.ReceiveCount, &m.EnqueuedAt, &m.DeadAt, &m.Reason)
	return m, err
}

// ListDead returns up to limit dead messages with ids after the given id,
// oldest first ("" starts at the beginning), leaving out those past the dead
// retention. It returns an error when after is not a UUID.
func (q *Queue) ListDead(ctx context.Context, after string, limit int) ([]queue.DeadMessage, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if after != "" && !validID(after) {
		return nil, fmt.Errorf("list dead: invalid message id %q, want a UUID", after)
	}
	if limit <= 0 {
		return nil, nil
	}
	// Dead messages past the dead retention are left out, not deleted, so
	// that listing with a shorter retention than the server's removes
	// nothing. The nil UUID sorts before every id, so "" starts at the
	// beginning.
	rows, err := q.pool.Query(ctx, `SELECT `+deadColumns+` FROM layover_dead
		WHERE id > coalesce(nullif($1, ''), '00000000-0000-0000-0000-000000000000')::uuid
		  AND enqueued_at > now() - $3 * interval '1 microsecond'
		ORDER BY id LIMIT $2`, after, limit, micros(q.opts.DeadRetention))
	if err != nil {
		return nil, fmt.Errorf("list dead: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDead)
	if err != nil {
		return nil, fmt.Errorf("list dead: %w", err)
	}
	return out, nil
}

// GetDead returns the dead message with the given id, or queue.ErrNotFound.
func (q *Queue) GetDead(ctx context.Context, id string) (queue.DeadMessage, error) {
	if err := q.checkOpen(); err != nil {
		return queue.DeadMessage{}, err
	}
	if !validID(id) {
		return queue.DeadMessage{}, fmt.Errorf("get dead %q: %w", id, queue.ErrNotFound)
	}
	const get = `SELECT ` + deadColumns + ` FROM layover_dead
		WHERE id = $1::uuid AND enqueued_at > now() - $2 * interval '1 microsecond'`
	rows, err := q.pool.Query(ctx, get, id, micros(q.opts.DeadRetention))
	if err != nil {
		return queue.DeadMessage{}, fmt.Errorf("get dead %q: %w", id, err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanDead)
	if errors.Is(err, pgx.ErrNoRows) {
		return queue.DeadMessage{}, fmt.Errorf("get dead %q: %w", id, queue.ErrNotFound)
	}
	if err != nil {
		return queue.DeadMessage{}, fmt.Errorf("get dead %q: %w", id, err)
	}
	return m, nil
}

// Redrive moves up to limit dead messages, oldest first, back to the
// queue. Each keeps its id and starts again with no receives and a new
// enqueue time, so retention starts over as in Amazon SQS. It returns how
// many it moved.
func (q *Queue) Redrive(ctx context.Context, limit int) (int, error) {
	if err := q.checkOpen(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, nil
	}
	const redrive = `
		WITH moved AS (
			DELETE FROM layover_dead WHERE id IN (
				SELECT id FROM layover_dead ORDER BY id LIMIT $1
				FOR UPDATE SKIP LOCKED)
			RETURNING id, body
		)
		INSERT INTO layover_messages (id, body) SELECT id, body FROM moved`
	var moved int
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		// Expire first, so that no message past its dead retention returns.
		if err := q.expire(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, redrive, limit)
		moved = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("redrive: %w", err)
	}
	return moved, nil
}

// PurgeDead deletes every dead message and returns how many it deleted.
func (q *Queue) PurgeDead(ctx context.Context) (int, error) {
	if err := q.checkOpen(); err != nil {
		return 0, err
	}
	tag, err := q.pool.Exec(ctx, `DELETE FROM layover_dead`)
	if err != nil {
		return 0, fmt.Errorf("purge dead: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
