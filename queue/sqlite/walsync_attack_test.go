package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// posixLocksOn counts the POSIX record locks that this process holds on
// path, as /proc/locks lists them. Reading /proc/locks opens no descriptor
// on path, because opening and closing one would itself drop the locks.
func posixLocksOn(t *testing.T, path string) int {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	inode := info.Sys().(*syscall.Stat_t).Ino
	f, err := os.Open("/proc/locks")
	if err != nil {
		t.Skipf("no /proc/locks to inspect locks: %v", err)
	}
	defer f.Close()
	pid := strconv.Itoa(os.Getpid())
	count := 0
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		// 1: POSIX  ADVISORY  READ 4242 08:01:131090 1073741826 1073742335
		fields := strings.Fields(scanner.Text())
		if len(fields) < 6 || fields[1] != "POSIX" || fields[4] != pid {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if dev[len(dev)-1] == strconv.FormatUint(inode, 10) {
			count++
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return count
}

// SQLite's unix VFS guards the database with POSIX record locks, which the
// kernel drops for the whole process when any descriptor of the file
// closes. The syncer must therefore never open and close layover.db, not
// even when it finds no log to sync.
func TestSendWithoutLogKeepsDatabaseLocks(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openTestQueue(t, dir, queue.Options{})
	if _, err := q.Send(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, DatabaseFile)
	before := posixLocksOn(t, dbPath)
	if before == 0 {
		t.Fatal("SQLite holds no POSIX lock on the open database; the probe is broken")
	}

	// Something outside Layover removes the log, and SQLite goes on writing
	// to the removed file.
	if err := os.Remove(dbPath + "-wal"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if after := posixLocksOn(t, dbPath); after != before {
		t.Errorf("POSIX locks on %s: %d before the sync without a log, %d after", DatabaseFile, before, after)
	}
}

// discardConns closes every connection of db through database/sql, as it
// does with a connection that the driver reports as bad.
func discardConns(t *testing.T, db *sql.DB) {
	t.Helper()
	for db.Stats().OpenConnections > 0 {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		err = conn.Raw(func(any) error { return driver.ErrBadConn })
		if !errors.Is(err, driver.ErrBadConn) {
			t.Fatalf("Raw = %v, want driver.ErrBadConn", err)
		}
		_ = conn.Close()
	}
}

// When database/sql drops every connection, for example after interrupted
// statements, SQLite checkpoints and deletes the log, and the next
// connection creates a new one. Sends after that must sync the new file.
func TestSendSyncsRecreatedLog(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q, err := Open(ctx, dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Send(ctx, []byte("in the first log")); err != nil {
		t.Fatal(err)
	}
	walPath := filepath.Join(dir, DatabaseFile+"-wal")
	first, err := os.Stat(walPath)
	if err != nil {
		t.Fatal(err)
	}

	discardConns(t, q.readDB)
	discardConns(t, q.writeDB)
	if _, err := os.Stat(walPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log after the last connection closed: %v, want it deleted", err)
	}

	if _, err := q.Send(ctx, []byte("in the second log")); err != nil {
		t.Fatal(err)
	}
	second, err := os.Stat(walPath)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(first, second) {
		t.Fatal("SQLite reused the deleted log; the test shows nothing")
	}
	synced, err := q.log.file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(synced, second) {
		t.Error("the syncer synced another file than the log SQLite writes to")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openTestQueue(t, dir, queue.Options{})
	if st, err := q.Stats(ctx); err != nil || st.Visible != 2 {
		t.Errorf("after reopening: Stats = %+v, %v; want 2 visible", st, err)
	}
}

// Close lets every send that got into the queue finish. Each Send returns
// either an id, whose message is stored, or an error, and none hangs.
func TestCloseWaitsForEverySend(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q, err := Open(ctx, dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const senders = 32
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range senders {
		wg.Go(func() {
			<-start
			for j := 0; ; j++ {
				id, err := q.Send(ctx, fmt.Appendf(nil, "sender %d message %d", i, j))
				if errors.Is(err, queue.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Send: %v", err)
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		})
	}
	close(start)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 2*senders {
			break
		}
		runtime.Gosched()
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	q = openTestQueue(t, dir, queue.Options{})
	stored := map[string]bool{}
	for {
		msgs, err := q.Receive(ctx, queue.MaxReceiveBatch, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			stored[m.ID] = true
		}
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged send %s is missing after Close and reopen", id)
		}
	}
	t.Logf("%d sends acknowledged before Close, %d messages stored", len(acked), len(stored))
}
