package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

// applicationID marks a SQLite database as a Layover queue, in the header
// field that SQLite reserves for this (PRAGMA application_id). It is the
// ASCII text "LYVR".
const applicationID = 0x4c595652

// migrations[v] turns a schema of version v-1 into version v. The version is
// kept in PRAGMA user_version, which SQLite changes in the same transaction.
// Times are Unix milliseconds.
var migrations = []string{
	1: `
CREATE TABLE messages (
	seq           INTEGER PRIMARY KEY,
	id            TEXT NOT NULL,
	body          BLOB NOT NULL,
	enqueued_at   INTEGER NOT NULL,
	visible_at    INTEGER NOT NULL,
	receive_count INTEGER NOT NULL DEFAULT 0,
	receipt       TEXT
);
CREATE INDEX messages_visible_at ON messages (visible_at);
CREATE INDEX messages_enqueued_at ON messages (enqueued_at);
CREATE INDEX messages_receipt ON messages (receipt) WHERE receipt IS NOT NULL;

CREATE TABLE dead_messages (
	id            TEXT PRIMARY KEY,
	body          BLOB NOT NULL,
	receive_count INTEGER NOT NULL,
	enqueued_at   INTEGER NOT NULL,
	dead_at       INTEGER NOT NULL,
	reason        TEXT NOT NULL
);
CREATE INDEX dead_messages_enqueued_at ON dead_messages (enqueued_at);

CREATE TABLE rejections (
	seq        INTEGER PRIMARY KEY,
	message_id TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	event_name TEXT NOT NULL,
	reason     TEXT NOT NULL,
	event      BLOB NOT NULL,
	at         INTEGER NOT NULL
);
CREATE INDEX rejections_at ON rejections (at);

CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('expired', 0);
`,
	// Version 2 keeps the bodies in a table of their own. Receive updates
	// the receive count, receipt and deadline of every message it returns,
	// and SQLite rewrites a whole row on update, so with the body in the
	// row each receive wrote the body's page to the log again.
	2: `
CREATE TABLE message_bodies (
	seq  INTEGER PRIMARY KEY,
	body BLOB NOT NULL
);
INSERT INTO message_bodies (seq, body) SELECT seq, body FROM messages;
ALTER TABLE messages DROP COLUMN body;
CREATE TRIGGER messages_delete_body AFTER DELETE ON messages
BEGIN
	DELETE FROM message_bodies WHERE seq = old.seq;
END;
`,
}

// schemaVersion is the version that this build creates and understands.
var schemaVersion = len(migrations) - 1

// sqliteHeader starts every SQLite 3 database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// checkDatabaseFile rejects a file at path that is not a SQLite database,
// before SQLite opens it. A missing or empty file is a new database.
func checkDatabaseFile(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check database file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (mode %s); move it away or choose another data folder: %w",
			path, info.Mode().Type(), ErrForeignDatabase)
	}
	if info.Size() == 0 {
		return nil
	}

	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check database file: %w", err)
	}
	defer f.Close()
	header := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, header); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("check database file: %w", err)
	}
	if !bytes.Equal(header, sqliteHeader) {
		return fmt.Errorf("%s is not a SQLite database; move it away or choose another data folder: %w",
			path, ErrForeignDatabase)
	}
	return nil
}

// inspectDatabase rejects a SQLite database that belongs to another
// application or to a newer Layover. It opens the file without the pragmas
// of the pools, because journal_mode=WAL would change a foreign database.
func inspectDatabase(ctx context.Context, path string) error {
	db, err := openPool(ctx, path, roleInspect, 1)
	if err != nil {
		return err
	}
	defer db.Close()

	var appID, version, objects int64
	row := db.QueryRowContext(ctx, `
SELECT
	(SELECT application_id FROM pragma_application_id()),
	(SELECT user_version FROM pragma_user_version()),
	(SELECT count(*) FROM sqlite_schema)`)
	if err := row.Scan(&appID, &version, &objects); err != nil {
		return fmt.Errorf("read database header of %s: %w", path, err)
	}

	switch {
	case appID == applicationID && version > int64(schemaVersion):
		return fmt.Errorf("%s has schema version %d, but this build of Layover knows versions up to %d; "+
			"run a newer Layover", path, version, schemaVersion)
	case appID == applicationID:
		return nil
	case appID == 0 && version == 0 && objects == 0:
		return nil // a new, empty database
	default:
		return fmt.Errorf("%s is a SQLite database of another application (application_id %#x, "+
			"%d schema objects); move it away or choose another data folder: %w",
			path, appID, objects, ErrForeignDatabase)
	}
}

// migrate brings the schema up to schemaVersion in one transaction.
func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if version == schemaVersion {
		return nil
	}
	if version > 0 {
		// Version 2 copies every stored body, which takes time and disk
		// space in proportion to the backlog.
		logger.Info("migrating the queue database", "from_version", version, "to_version", schemaVersion)
	}
	for v := version + 1; v <= schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v, err)
		}
	}
	// PRAGMA takes no bound parameters; both values are constants of this package.
	setVersion := fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, schemaVersion)
	if _, err := tx.ExecContext(ctx, setVersion); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}
