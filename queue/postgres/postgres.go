// Package postgres is the PostgreSQL engine of the queue. Several Layover
// processes can share one queue: receivers claim messages with
// FOR UPDATE SKIP LOCKED, and an advisory lock keeps scheduled forward runs
// from overlapping.
//
// The engine keeps its tables in the first schema of the connection's
// search_path, so one database can hold several queues (set search_path in
// the URL, for example ?search_path=layover_eu). Open creates and migrates
// the tables.
package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/layover-dev/layover/queue"
)

// MaxBodyBytes is the largest message body Send accepts: 16 MiB, the same
// as the SQLite engine, so that a body within LAYOVER_MAX_BODY_BYTES is never
// turned away with a 413, which mParticle would not retry.
const MaxBodyBytes = 16 << 20

var (
	_ queue.Queue       = (*Queue)(nil)
	_ queue.DeadLetters = (*Queue)(nil)
	_ queue.Rejections  = (*Queue)(nil)
)

// Queue is a queue stored in PostgreSQL. It is safe for concurrent use, also
// by several processes that open the same database and schema.
type Queue struct {
	pool *pgxpool.Pool
	opts queue.Options

	sends      chan sendRequest // to the writer goroutine, unbuffered
	quit       chan struct{}    // closed by Close
	writerDone chan struct{}    // closed when the writer goroutine returns
	closed     atomic.Bool
	closeOnce  sync.Once
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), creates or migrates the queue's tables, and returns
// the queue. Zero fields of opts take their defaults.
func Open(ctx context.Context, url string, opts queue.Options) (*Queue, error) {
	config, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can contain the password, so it is not wrapped.
		return nil, fmt.Errorf("open postgres queue: invalid connection URL, " +
			"expected postgres://user:password@host:port/database")
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("open postgres queue: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres queue: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres queue: migrate: %w", err)
	}
	q := &Queue{
		pool:       pool,
		opts:       opts.WithDefaults(),
		sends:      make(chan sendRequest),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if err := q.settleRetention(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres queue: %w", err)
	}
	go q.writeLoop()
	return q, nil
}

// Close waits for the Sends already handed to the writer, then closes the
// connection pool. Every method returns queue.ErrClosed afterwards. Close
// does not release a forwarder lock, which belongs to its unlock function.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.closed.Store(true)
		close(q.quit)
		<-q.writerDone
		q.pool.Close()
	})
	return nil
}

func (q *Queue) checkOpen() error {
	if q.closed.Load() {
		return queue.ErrClosed
	}
	return nil
}

// micros converts d to whole microseconds, the resolution of timestamptz.
// SQL multiplies it by interval '1 microsecond'.
func micros(d time.Duration) int64 {
	return d.Microseconds()
}

// MaxBodySize returns MaxBodyBytes, the largest body Send accepts.
func (q *Queue) MaxBodySize() int {
	return MaxBodyBytes
}

// validID reports whether s has the form of a UUID, the form of the message
// ids this engine issues. PostgreSQL rejects other strings cast to uuid.
func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}
