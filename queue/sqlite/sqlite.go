// Package sqlite is the embedded queue engine: one SQLite database in a data
// folder, written by one process at a time.
//
// Send and every other write that a caller relies on is synced to disk
// before the call returns. Concurrent Send calls share one transaction and
// one sync (group commit), and the sync of one group overlaps the commit of
// the next, so durability costs little throughput. Receive and Delete
// commit without a sync: a crash can undo them, which only makes a message
// visible again, and the next sync of a Send covers them too.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/layover-dev/layover/queue"
)

// Files in the data folder.
const (
	// DatabaseFile is the SQLite database. SQLite keeps its write-ahead log
	// and shared-memory index beside it, in layover.db-wal and layover.db-shm.
	DatabaseFile = "layover.db"
	// LockFile is locked with flock(2) by the process that has the folder
	// open, and contains that process's id.
	LockFile = "layover.lock"
)

// MaxBodySize is the largest body Send accepts: 16 MiB. mParticle publishes
// no limit for webhook bodies and drops a batch that gets a 413, so the limit
// sits well above any body that the ingest handler lets through.
const MaxBodySize = 16 << 20

// ErrForeignDatabase is returned by Open when the database file exists but is
// not a Layover queue. Open never changes or removes such a file.
var ErrForeignDatabase = errors.New("sqlite: file is not a Layover queue database")

// Queue is a queue.Queue stored in one SQLite database.
type Queue struct {
	opts    queue.Options
	dir     string
	lock    *dirLock
	writeDB *sql.DB // one connection: every write, in turn
	readDB  *sql.DB // read-only connections for Stats and listings
	// writeStmts are the hot statements, prepared once on writeDB.
	writeStmts map[string]*sql.Stmt
	logger     *slog.Logger
	// now returns the wall-clock time that visibility deadlines, enqueue
	// times and retention are computed from. It is time.Now except in tests
	// that simulate clock jumps.
	now func() time.Time

	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool

	sends            chan *sendRequest
	committed        chan []*sendRequest // from runWriter to runSyncer
	syncerIdle       chan struct{}       // a token from runSyncer when it waits for a group
	writerDone       chan struct{}       // closed when runSyncer ends
	log              *logSyncer
	syncErr          atomic.Pointer[error] // the first failed sync
	maxBatchMessages int
	sendCommits      atomic.Int64 // transactions that stored sends
}

var (
	_ queue.Queue       = (*Queue)(nil)
	_ queue.DeadLetters = (*Queue)(nil)
	_ queue.Rejections  = (*Queue)(nil)
)

// Open opens the queue in dir, creating the folder and the database when
// they are missing. It returns an error wrapping queue.ErrLocked when another
// process has the folder open, and one wrapping ErrForeignDatabase when
// layover.db is not a Layover queue.
func Open(ctx context.Context, dir string, opts queue.Options) (*Queue, error) {
	return open(ctx, dir, opts, defaultMaxBatchMessages)
}

// open is Open with a limit on how many sends share one transaction;
// benchmarks pass 1 to measure one transaction per send.
func open(ctx context.Context, dir string, opts queue.Options, maxBatchMessages int) (*Queue, error) {
	if dir == "" {
		return nil, errors.New("open queue: no data folder given")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open queue: create data folder: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}

	q := &Queue{
		opts:             opts.WithDefaults(),
		dir:              dir,
		lock:             lock,
		logger:           slog.Default().With("component", "queue", "engine", "sqlite", "dir", dir),
		now:              time.Now,
		sends:            make(chan *sendRequest, 4*maxBatchMessages),
		committed:        make(chan []*sendRequest),
		syncerIdle:       make(chan struct{}, 1),
		log:              newLogSyncer(filepath.Join(dir, DatabaseFile)),
		writerDone:       make(chan struct{}),
		maxBatchMessages: maxBatchMessages,
	}
	if err := q.openDatabase(ctx); err != nil {
		q.closeDatabases()
		_ = lock.release()
		return nil, fmt.Errorf("open queue: %w", err)
	}
	// Opening the log now, rather than at the first Send, lets the first
	// sync report a write error that happens from here on.
	if err := q.log.reopenIfReplaced(); err != nil {
		q.closeDatabases()
		_ = lock.release()
		return nil, fmt.Errorf("open queue: %w", err)
	}
	go q.runWriter()
	go q.runSyncer()
	q.logger.Info("queue opened", "max_receive_count", q.opts.MaxReceiveCount,
		"retention", q.opts.Retention.String(), "dead_retention", q.opts.DeadRetention.String())
	return q, nil
}

// openDatabase checks the database file, creates or migrates its schema and
// opens the connection pools.
func (q *Queue) openDatabase(ctx context.Context) error {
	path := filepath.Join(q.dir, DatabaseFile)
	if err := checkDatabaseFile(path); err != nil {
		return err
	}
	if err := inspectDatabase(ctx, path); err != nil {
		return err
	}

	var err error
	if q.writeDB, err = openPool(ctx, path, roleWrite, 1); err != nil {
		return err
	}
	if err := migrate(ctx, q.writeDB, q.logger); err != nil {
		return err
	}
	if err := q.settleRetention(ctx); err != nil {
		return err
	}
	if q.writeStmts, err = prepareWriteStmts(ctx, q.writeDB); err != nil {
		return err
	}
	if q.readDB, err = openPool(ctx, path, roleRead, 4); err != nil {
		return err
	}
	// The database file may be new: sync its folder entry too.
	return syncDir(q.dir)
}

// MaxBodySize returns the largest body Send accepts, MaxBodySize bytes.
func (q *Queue) MaxBodySize() int {
	return MaxBodySize
}

// Close waits for pending sends to commit, closes the database and releases
// the data folder. Calls after the first return nil.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.sends)
	q.mu.Unlock()

	<-q.writerDone
	q.log.close()
	err := errors.Join(q.closeDatabases(), q.lock.release())
	if err != nil {
		return fmt.Errorf("close queue: %w", err)
	}
	q.logger.Info("queue closed")
	return nil
}

// closeDatabases closes the pools that are open.
func (q *Queue) closeDatabases() error {
	var errs []error
	if q.readDB != nil {
		errs = append(errs, q.readDB.Close())
	}
	for _, stmt := range q.writeStmts {
		errs = append(errs, stmt.Close())
	}
	if q.writeDB != nil {
		errs = append(errs, q.writeDB.Close())
	}
	return errors.Join(errs...)
}

// acquire returns queue.ErrClosed after Close, and otherwise holds off
// Close until the returned release runs.
func (q *Queue) acquire() (release func(), err error) {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return nil, queue.ErrClosed
	}
	return q.mu.RUnlock, nil
}

// syncDir syncs a folder, so that files created in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync data folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync data folder: %w", err)
	}
	return nil
}
