package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/layover-dev/layover/ingest"
	"github.com/layover-dev/layover/queue"
)

// runReferenceServer serves one of the two reference servers that Layover
// is compared with, until SIGTERM or SIGINT:
//
//   - noop reads each body and responds 200: the ceiling of the HTTP stack
//     and the load generator on this machine.
//   - baseline stores each body the straightforward durable way: one SQLite
//     transaction, committed and synced, per request.
//
// Both use ingest.NewServer, so they have Layover's server timeouts.
func runReferenceServer(args []string) error {
	fs := flag.NewFlagSet("serve-reference", flag.ContinueOnError)
	kind := fs.String("kind", "noop", "noop or baseline")
	listen := fs.String("listen", "127.0.0.1:0", "host:port to listen on")
	dataDir := fs.String("data-dir", "", "folder of the baseline's database")
	if err := fs.Parse(args); err != nil {
		return err
	}

	var handler http.Handler
	switch *kind {
	case "noop":
		handler = noopHandler()
	case "baseline":
		db, err := openBaselineDB(*dataDir)
		if err != nil {
			return err
		}
		defer db.Close()
		handler = baselineHandler(db)
	default:
		return fmt.Errorf("invalid -kind %q: expected noop or baseline", *kind)
	}
	return serveUntilSignal(*listen, handler)
}

// serveUntilSignal serves handler on addr until SIGTERM or SIGINT.
func serveUntilSignal(addr string, handler http.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := ingest.NewServer(addr, handler)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// withHealth adds GET /healthz, which the driver polls until the server is up.
func withHealth(h http.HandlerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/event-batch", h)
	return mux
}

func noopHandler() http.Handler {
	return withHealth(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeStored(w, "noop")
	})
}

func writeStored(w http.ResponseWriter, id string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
}

// openBaselineDB opens the baseline's database: WAL, synchronous=FULL, one
// connection, so that every request waits for its own commit and sync.
func openBaselineDB(dir string) (*sql.DB, error) {
	if dir == "" {
		return nil, fmt.Errorf("missing -data-dir for the baseline server")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create baseline data folder: %w", err)
	}
	query := url.Values{}
	query.Set("_journal_mode", "WAL")
	query.Set("_synchronous", "FULL")
	query.Set("_busy_timeout", "10000")
	dsn := (&url.URL{Scheme: "file", Path: filepath.Join(dir, "baseline.db"), RawQuery: query.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open baseline database: %w", err)
	}
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS messages (
	seq         INTEGER PRIMARY KEY,
	id          TEXT NOT NULL,
	body        BLOB NOT NULL,
	enqueued_at INTEGER NOT NULL
)`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create baseline table: %w", err)
	}
	return db, nil
}

// baselineHandler checks that the body is JSON, as Layover does, then
// stores it in a transaction of its own and responds once it is synced.
func baselineHandler(db *sql.DB) http.Handler {
	return withHealth(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, ingest.DefaultMaxBodyBytes))
		if err != nil || !json.Valid(body) {
			http.Error(w, "invalid body", http.StatusBadRequest)
			return
		}
		id := queue.NewMessageID()
		if err := insertOne(r.Context(), db, id, body); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeStored(w, id)
	})
}

func insertOne(ctx context.Context, db *sql.DB, id string, body []byte) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, `INSERT INTO messages (id, body, enqueued_at) VALUES (?, ?, ?)`,
		id, body, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
