package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// logSyncer syncs SQLite's write-ahead log from outside SQLite, so that the
// writer can commit the next group of sends while the disk syncs the last.
//
// Why this is safe: sends commit with synchronous=NORMAL, which writes the
// WAL frames with write(2) and returns without a sync. Once those writes
// have returned, an fdatasync of the same file, through any descriptor,
// makes them durable, and SQLite's recovery replays every committed frame
// that is on disk. SQLite itself syncs the log before each checkpoint and
// the database file after it, and syncs the log header when it starts
// reusing the file, so nothing that was durable becomes undone.
//
// SQLite removes the log when its last connection closes, after a
// checkpoint that syncs the log and the database file. That can happen
// while the Queue is open: database/sql discards a connection that the
// driver reports as bad, for example after an interrupted statement, and
// both pools may run empty. The next connection creates a new log, so each
// sync checks that the open file is the one at the path and reopens it
// otherwise.
//
// The syncer never opens the database file. SQLite guards it with POSIX
// record locks, and closing any descriptor of a file drops all of the
// process's locks on that file, including the ones SQLite holds.
type logSyncer struct {
	walPath string // layover.db-wal
	file    *os.File
}

func newLogSyncer(dbPath string) *logSyncer {
	return &logSyncer{walPath: dbPath + "-wal"}
}

// sync makes every write to the log that returned before the call durable.
func (s *logSyncer) sync() error {
	if err := s.reopenIfReplaced(); err != nil {
		return err
	}
	if s.file == nil {
		// No log file: SQLite deleted it after a checkpoint that synced
		// every commit into the database file.
		return nil
	}
	if err := datasync(s.file); err != nil {
		return fmt.Errorf("sync %s: %w", s.walPath, err)
	}
	return nil
}

// reopenIfReplaced opens the log file when none is open or when the path
// names another file than the open one.
func (s *logSyncer) reopenIfReplaced() error {
	info, err := os.Stat(s.walPath)
	if errors.Is(err, fs.ErrNotExist) {
		s.close()
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync write-ahead log: %w", err)
	}
	if s.file != nil {
		open, err := s.file.Stat()
		if err == nil && os.SameFile(open, info) {
			return nil
		}
		s.close()
	}
	f, err := os.Open(s.walPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync write-ahead log: %w", err)
	}
	s.file = f
	return nil
}

func (s *logSyncer) close() {
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
}
