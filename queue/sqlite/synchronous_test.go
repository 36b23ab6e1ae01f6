package sqlite

import (
	"context"
	"database/sql"
	"testing"

	"github.com/layover-dev/layover/queue"
)

// synchronousIn returns PRAGMA synchronous as a transaction of the given
// mode reads it: 1 is NORMAL, 2 is FULL.
func synchronousIn(t *testing.T, q *Queue, mode syncMode) int {
	t.Helper()
	var value int
	err := q.writeTx(context.Background(), mode, func(tx *sql.Tx) error {
		return tx.QueryRow("PRAGMA synchronous").Scan(&value)
	})
	if err != nil {
		t.Fatalf("writeTx: %v", err)
	}
	return value
}

func TestWriteTxSetsSyncMode(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	if got := synchronousIn(t, q, syncFull); got != 2 {
		t.Errorf("synchronous in a FULL transaction = %d, want 2", got)
	}
	if got := synchronousIn(t, q, syncNormal); got != 1 {
		t.Errorf("synchronous in a NORMAL transaction = %d, want 1", got)
	}
	// A durable transaction after a relaxed one must not inherit its mode.
	if got := synchronousIn(t, q, syncFull); got != 2 {
		t.Errorf("synchronous in a FULL transaction after a NORMAL one = %d, want 2", got)
	}
}
