package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// defaultDataDir is the folder of the embedded queue when LAYOVER_DATA_DIR
// is not set.
const defaultDataDir = "data"

// queueFlags registers the settings that select and tune the queue engine.
func (fs *flagSet) queueFlags() {
	c := fs.cfg
	fs.str(&c.DataDir, "data-dir", "LAYOVER_DATA_DIR", defaultDataDir, "folder of the embedded SQLite queue")
	fs.str(&c.Queue, "queue", "LAYOVER_QUEUE", "",
		"queue engine: empty for the embedded SQLite queue in the data folder, a postgres:// URL, or an SQS queue URL")
	fs.integer(&c.MaxReceiveCount, "max-receive-count", "LAYOVER_MAX_RECEIVE_COUNT", queue.DefaultMaxReceiveCount,
		"receives of a message before it moves to the dead-letter queue")
	fs.duration(&c.Retention, "retention", "LAYOVER_RETENTION", queue.DefaultRetention,
		"how long a message is kept after it was stored")
	fs.duration(&c.DeadRetention, "dead-retention", "LAYOVER_DEAD_RETENTION", queue.DefaultDeadRetention,
		"how long a dead-lettered message is kept after it was stored")
}

// engine is an open queue with the optional parts its engine supports.
type engine struct {
	queue.Queue
	dead    queue.DeadLetters // nil when the engine has none
	rejects queue.Rejections  // nil when the engine has none
	name    string
	// lockForwarder, when set, lets one of several processes sharing the
	// queue run the scheduled forwarder at a time.
	lockForwarder func(ctx context.Context) (unlock func(), ok bool, err error)
}

// openQueue opens the engine that the configuration selects. With create
// false, a missing data folder is an error instead of being created, so an
// operator command never starts an empty queue by mistake.
func openQueue(ctx context.Context, c *config, create bool) (*engine, error) {
	if err := checkQueueSettings(c, create); err != nil {
		return nil, err
	}
	// Only serve creates the queue and records its retentions. The other
	// commands follow them, so that a shorter default in an operator's
	// shell cannot expire batches that serve keeps.
	opts := queue.Options{MaxReceiveCount: c.MaxReceiveCount, Retention: c.Retention, DeadRetention: c.DeadRetention,
		FollowStoredRetention: !create}
	switch {
	case c.Queue == "" || c.Queue == "sqlite":
		return openSQLite(ctx, c.DataDir, opts, create)
	default:
		return openRemote(ctx, c.Queue, opts)
	}
}

// checkQueueSettings validates the queue settings. The retentions matter
// only to serve, which creates the queue, because the other commands
// follow the ones serve recorded.
func checkQueueSettings(c *config, create bool) error {
	if c.MaxReceiveCount < 1 || c.MaxReceiveCount > 1000 {
		return usagef("invalid max receive count %d (LAYOVER_MAX_RECEIVE_COUNT): expected 1 to 1000", c.MaxReceiveCount)
	}
	if create && (c.Retention < time.Minute || c.DeadRetention < c.Retention) {
		return usagef("invalid retention %s / dead retention %s (LAYOVER_RETENTION, LAYOVER_DEAD_RETENTION): "+
			"expected at least 1m, and the dead-letter retention at least as long", c.Retention, c.DeadRetention)
	}
	return nil
}

// isSQSQueue reports whether queue, the LAYOVER_QUEUE setting, selects the
// SQS engine.
func isSQSQueue(queue string) bool {
	return strings.HasPrefix(queue, "https://") || strings.HasPrefix(queue, "http://")
}

func openSQLite(ctx context.Context, dir string, opts queue.Options, create bool) (*engine, error) {
	if dir == "" {
		return nil, usagef("missing data folder: set LAYOVER_DATA_DIR or -data-dir")
	}
	if !create {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("data folder %q does not exist: set LAYOVER_DATA_DIR (or -data-dir) to the folder that layover serve uses", dir)
		}
		// An empty queue in the wrong folder would look like a drained one.
		if _, err := os.Stat(filepath.Join(dir, sqlite.DatabaseFile)); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no Layover queue found in data folder %q (%s is missing): set LAYOVER_DATA_DIR (or -data-dir) to the folder that layover serve uses",
				dir, sqlite.DatabaseFile)
		}
	}
	q, err := sqlite.Open(ctx, dir, opts)
	if errors.Is(err, queue.ErrLocked) {
		return nil, err // names the folder, the process holding it and the fix
	}
	if err != nil && isDamaged(err) {
		return nil, fmt.Errorf("data folder %q: %w: the database is damaged; stop every layover process, "+
			"move the folder aside (keep it for recovery with sqlite3 .recover) and start with an empty data folder", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("data folder %q: %w", dir, err)
	}
	return &engine{Queue: q, dead: q, rejects: q, name: "sqlite"}, nil
}

// isDamaged reports whether err is SQLite's report of a damaged database
// file (SQLITE_CORRUPT or SQLITE_NOTADB), which carry no Go error type.
func isDamaged(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "malformed") || strings.Contains(msg, "file is not a database")
}

// describeQueue names the engine for logs without leaking credentials.
func describeQueue(c *config) string {
	switch {
	case c.Queue == "" || c.Queue == "sqlite":
		return "sqlite:" + c.DataDir
	case strings.Contains(c.Queue, "@"):
		return c.Queue[:strings.Index(c.Queue, "://")+3] + "…" + c.Queue[strings.LastIndex(c.Queue, "@"):]
	}
	return c.Queue
}
