package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// unlockTimeout bounds closing the lock's connection.
const unlockTimeout = 5 * time.Second

// TryLockForwarder takes the forwarder lock of this queue without waiting,
// so that the scheduled forward runs of several processes do not overlap.
// ok is false when another session holds it. The lock is a session-level
// advisory lock on a connection of its own, outside the pool. unlock closes
// that connection, and PostgreSQL also releases the lock when the process
// dies.
//
// NOTE: PostgreSQL also releases the lock when that connection drops during
// a run. The holder does not notice, so another process can start a run
// before this one ends.
func (q *Queue) TryLockForwarder(ctx context.Context) (unlock func(), ok bool, err error) {
	if err := q.checkOpen(); err != nil {
		return nil, false, err
	}
	conn, err := pgx.ConnectConfig(ctx, q.pool.Config().ConnConfig)
	if err != nil {
		return nil, false, fmt.Errorf("lock forwarder: connect: %w", err)
	}
	lock := `SELECT pg_try_advisory_lock($1, ` + schemaKeySQL + `)`
	if err := conn.QueryRow(ctx, lock, lockClassForwarder).Scan(&ok); err != nil {
		closeConn(conn)
		return nil, false, fmt.Errorf("lock forwarder: %w", err)
	}
	if !ok {
		closeConn(conn)
		return nil, false, nil
	}
	var once sync.Once
	return func() { once.Do(func() { closeConn(conn) }) }, true, nil
}

// closeConn ends the session, which releases every advisory lock it holds.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}
