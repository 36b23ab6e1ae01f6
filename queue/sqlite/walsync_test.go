package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/layover-dev/layover/queue"
)

func TestLogSyncerReopensReplacedLog(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, DatabaseFile)
	s := newLogSyncer(dbPath)
	defer s.close()

	if err := os.WriteFile(dbPath, []byte("database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.sync(); err != nil {
		t.Fatalf("sync without a log: %v", err)
	}
	if s.file != nil {
		t.Error("sync without a log opened a file")
	}

	if err := os.WriteFile(s.walPath, []byte("first log"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.sync(); err != nil {
		t.Fatalf("sync of the first log: %v", err)
	}
	first := s.file

	if err := os.Remove(s.walPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.walPath, []byte("second log"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.sync(); err != nil {
		t.Fatalf("sync of the second log: %v", err)
	}
	open, err := s.file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.Stat(s.walPath)
	if err != nil {
		t.Fatal(err)
	}
	if s.file == first || !os.SameFile(open, onDisk) {
		t.Error("sync kept the replaced log open instead of the file at the path")
	}
}

func TestSendFailsAfterFailedSync(t *testing.T) {
	ctx := context.Background()
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	if _, err := q.Send(ctx, []byte("before")); err != nil {
		t.Fatalf("Send before the failure: %v", err)
	}

	failed := errors.Join(errLogSync, errors.New("input/output error"))
	q.syncErr.Store(&failed)
	for i := range 3 {
		if _, err := q.Send(ctx, []byte("after")); !errors.Is(err, errLogSync) {
			t.Errorf("Send %d after a failed sync: error = %v, want one wrapping errLogSync", i+1, err)
		}
	}
}

func TestSyncerSyncsSQLiteLog(t *testing.T) {
	dir := t.TempDir()
	q := openTestQueue(t, dir, queue.Options{})
	if _, err := q.Send(context.Background(), []byte("synced")); err != nil {
		t.Fatal(err)
	}
	// SQLite names its log after the database. A different name would
	// leave every send unsynced.
	if q.log.file == nil {
		t.Fatalf("no log file open after a Send; expected %s", q.log.walPath)
	}
	if q.log.file.Name() != filepath.Join(dir, DatabaseFile+"-wal") {
		t.Errorf("synced %s, want %s", q.log.file.Name(), filepath.Join(dir, DatabaseFile+"-wal"))
	}
}
