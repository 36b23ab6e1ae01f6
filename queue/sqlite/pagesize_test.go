package sqlite

import (
	"testing"

	"github.com/layover-dev/layover/queue"
)

func TestNewDatabasePageSize(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	var size int
	if err := q.writeDB.QueryRow("PRAGMA page_size").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != 16384 {
		t.Errorf("page size of a new queue database = %d, want 16384", size)
	}
}
