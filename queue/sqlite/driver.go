package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"
)

// connRole selects the settings of a connection pool.
type connRole int

const (
	// roleInspect reads the header of a database that may belong to another
	// application, so it sets nothing that changes the file.
	roleInspect connRole = iota
	// roleWrite is the single connection that every write goes through.
	roleWrite
	// roleRead is a pool of connections that can only read.
	roleRead
)

// busyTimeout is how long a connection waits for a lock held by another
// connection. Writes never wait for each other, because they share one
// connection, and in WAL mode readers seldom wait.
const busyTimeout = 10 * time.Second

// fileURI returns the SQLite URI of path, escaping characters such as '?'
// and '#' that would otherwise end the file name.
func fileURI(path string, query url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: query.Encode()}
	return u.String()
}

// openPool opens a connection pool of at most conns connections and checks
// that the first one works.
func openPool(ctx context.Context, path string, role connRole, conns int) (*sql.DB, error) {
	db, err := sql.Open(driverName, dataSourceName(path, role))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}
