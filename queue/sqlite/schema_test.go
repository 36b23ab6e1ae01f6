package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// createVersion1 writes a database of schema version 1, as the first
// release created it, with two messages and one dead message.
func createVersion1(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open(driverName, filepath.Join(dir, DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UnixMilli()
	stmts := []string{
		migrations[1],
		fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = 1", applicationID),
		fmt.Sprintf(`INSERT INTO messages (id, body, enqueued_at, visible_at)
VALUES ('m1', '{"n":1}', %d, %d), ('m2', '{"n":2}', %d, %d)`, now, now, now, now),
		fmt.Sprintf(`INSERT INTO dead_messages (id, body, receive_count, enqueued_at, dead_at, reason)
VALUES ('d1', '{"n":3}', 5, %d, %d, 'test')`, now, now),
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("create version 1 database: %v", err)
		}
	}
}

func TestOpenMigratesVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	createVersion1(t, dir)

	q := openTestQueue(t, dir, queue.Options{})
	if n, err := q.Redrive(ctx, 10); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want the 1 dead message", n, err)
	}
	msgs, err := q.Receive(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var receipts []string
	for _, m := range msgs {
		got[string(m.Body)] = true
		receipts = append(receipts, m.Receipt)
	}
	for _, want := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		if !got[want] {
			t.Errorf("body %s missing after the migration; received %d messages", want, len(msgs))
		}
	}
	if err := q.Delete(ctx, receipts); err != nil {
		t.Fatal(err)
	}

	var bodies int
	if err := q.readDB.QueryRowContext(ctx, `SELECT count(*) FROM message_bodies`).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	if bodies != 0 {
		t.Errorf("%d bodies left after every message was deleted; want 0", bodies)
	}
}
