package sqlite

import (
	"net/url"
	"strconv"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

const driverName = "sqlite"

// dataSourceName returns the DSN of a pool. The driver runs the pragmas on
// every new connection, so a connection that database/sql replaces gets the
// same settings.
func dataSourceName(path string, role connRole) string {
	query := url.Values{}
	query.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	switch role {
	case roleWrite:
		// 16 KiB pages hold a typical 5 to 10 KB webhook body in its table
		// page instead of a chain of 4 KiB overflow pages, so a commit
		// writes a quarter as many WAL frames, each with its own write
		// call. SQLite applies it only to a database it creates; an
		// existing one keeps its page size.
		query.Add("_pragma", "page_size(16384)")
		query.Set("_journal_mode", "WAL")
		query.Set("_synchronous", "FULL")
		query.Set("_txlock", "immediate")
		query.Add("_pragma", "journal_size_limit(67108864)")
		// SQLite checkpoints inside the commit that crosses this many
		// log pages, and the writer waits while the checkpoint copies
		// and syncs them. Those pauses set the ingest p99 at half the
		// maximum rate, and they grow with the database. With about
		// 1.4 GB stored, four benchmark runs at 256 pages (4 MiB) gave
		// 11.4 to 16.0 ms. Four runs at 64 pages (1 MiB) gave 5.7 to
		// 7.7 ms at the same throughput. The default of 1000 pages gave
		// 13 to 24 ms even on a small database.
		query.Add("_pragma", "wal_autocheckpoint(64)")
	case roleRead:
		query.Set("_synchronous", "FULL")
		query.Set("_query_only", "1")
	}
	return fileURI(path, query)
}
