package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// syncMode is the PRAGMA synchronous setting of one write transaction.
//
// Every transaction whose commit a caller relies on (rejections,
// dead-letter operations, Release, ChangeVisibility) runs with FULL, which
// syncs the write-ahead log before the commit returns. Send commits with
// NORMAL and is acknowledged only after runSyncer has synced the log (see
// walsync.go). Receive and Delete run with NORMAL, which leaves the sync to
// a later sync or to the next checkpoint. That is safe for them:
//
//   - In WAL mode, NORMAL never corrupts the database. A crash can only roll
//     back the last NORMAL commits, and SQLite's WAL recovery stops at the
//     first frame whose checksum fails (see SQLite's documentation of PRAGMA
//     synchronous and of the WAL file format).
//   - A sync of the log file, by a FULL commit or by runSyncer, makes
//     durable every NORMAL commit written before it. An acknowledged Send
//     can therefore never be lost behind a NORMAL commit.
//   - A lost Delete makes its message visible again after the visibility
//     timeout, and the forwarder delivers it again under the same Iterable
//     event ids, which update the events instead of duplicating them. A lost
//     Receive makes the message visible again and takes back its receive
//     count, as if the receive had not happened.
//
// Measured with the forwarder benchmark, the two syncs per ten messages
// were most of the forwarder's wall time.
type syncMode int

const (
	syncFull syncMode = iota
	syncNormal
)

// pragma returns the statement that selects the mode.
func (m syncMode) pragma() string {
	if m == syncNormal {
		return "PRAGMA synchronous = NORMAL"
	}
	return "PRAGMA synchronous = FULL"
}

// writeTx runs fn in a transaction on the write connection and commits it
// with the given sync mode. Each transaction sets its mode first, on the
// same connection, so that a relaxed mode can never carry over to a
// transaction that must be durable.
func (q *Queue) writeTx(ctx context.Context, mode syncMode, fn func(tx *sql.Tx) error) error {
	conn, tx, err := q.beginWrite(ctx, mode)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// beginWrite takes the write connection, selects mode on it and begins a
// transaction. The caller ends the transaction and then closes the
// connection, which returns it to the pool.
func (q *Queue) beginWrite(ctx context.Context, mode syncMode) (*sql.Conn, *sql.Tx, error) {
	conn, err := q.writeDB.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.ExecContext(ctx, mode.pragma()); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("set synchronous mode: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, tx, nil
}
