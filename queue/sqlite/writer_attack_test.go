package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// These tests attack the group commit of runWriter and runSyncer: the
// token in syncerIdle, the open transaction that keeps the write
// connection, and the outcome that each send receives.

// holdSyncer takes runSyncer's idle token, so that the writer finds the
// syncer busy, as during a slow sync. It returns the function that gives
// the token back, and the test's cleanup gives it back too.
func holdSyncer(t *testing.T, q *Queue) (release func()) {
	t.Helper()
	select {
	case <-q.syncerIdle:
	case <-time.After(5 * time.Second):
		t.Fatal("runSyncer did not become idle within 5s")
	}
	var once sync.Once
	release = func() { once.Do(func() { q.syncerIdle <- struct{}{} }) }
	t.Cleanup(release)
	return release
}

// submit hands one request per body to the writer, as Send does, and
// returns once the writer has placed every one of them. The barrier is an
// abandoned request behind them: the writer takes it from the channel only
// after it has placed the requests in front of it.
func submit(t *testing.T, q *Queue, bodies ...[]byte) []*sendRequest {
	t.Helper()
	var requests []*sendRequest
	for _, body := range bodies {
		r := &sendRequest{
			id:         queue.NewMessageID(),
			body:       body,
			enqueuedAt: q.now().UnixMilli(),
			done:       make(chan error, 1),
		}
		q.sends <- r
		requests = append(requests, r)
	}
	barrier := &sendRequest{}
	barrier.state.Store(requestAbandoned)
	q.sends <- barrier
	deadline := time.Now().Add(5 * time.Second)
	for len(q.sends) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not take the submitted sends within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	return requests
}

// outcome returns the error sent to r, or fails the test when r receives
// no outcome within wait.
func outcome(t *testing.T, r *sendRequest, wait time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(wait):
		t.Fatalf("send %s got no outcome within %v", r.id, wait)
		return nil
	}
}

// checkNoOutcome fails the test when r receives an outcome within wait.
func checkNoOutcome(t *testing.T, r *sendRequest, wait time.Duration) {
	t.Helper()
	select {
	case err := <-r.done:
		t.Fatalf("send %s got outcome %v while runSyncer was busy", r.id, err)
	case <-time.After(wait):
	}
}

// storedIDs returns the ids of the messages in q, read through the read
// pool, which reads committed transactions only.
func storedIDs(t *testing.T, q *Queue) map[string]bool {
	t.Helper()
	rows, err := q.readDB.Query(`SELECT id FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// writerGoroutines counts the goroutines that run runWriter or runSyncer
// of any Queue in this process.
func writerGoroutines() int {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return strings.Count(stacks, "(*Queue).runWriter(") + strings.Count(stacks, "(*Queue).runSyncer(")
}

// checkWriterEnded fails the test when runWriter or runSyncer still runs
// shortly after Close returned.
func checkWriterEnded(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for writerGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d writer goroutines still run after Close", writerGoroutines())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// execOnWriteConn runs statements on the single write connection, where
// TEMP tables and triggers stay until the connection closes.
func execOnWriteConn(t *testing.T, q *Queue, statements ...string) {
	t.Helper()
	for _, s := range statements {
		if _, err := q.writeDB.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestWriterAckWaitsForSyncer(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	release := holdSyncer(t, q)
	requests := submit(t, q, []byte("a"), []byte("b"), []byte("c"))

	checkNoOutcome(t, requests[0], 100*time.Millisecond)
	if n := len(storedIDs(t, q)); n != 0 {
		t.Errorf("%d messages committed while runSyncer was busy, want 0", n)
	}
	release()
	for _, r := range requests {
		if err := outcome(t, r, 5*time.Second); err != nil {
			t.Errorf("send %s: %v", r.id, err)
		}
	}
	if n := len(storedIDs(t, q)); n != 3 {
		t.Errorf("%d messages stored after the sync, want 3", n)
	}
	if n := q.sendCommits.Load(); n != 1 {
		t.Errorf("3 sends placed while runSyncer was busy took %d commits, want 1", n)
	}
}

func TestWriterCloseCommitsOpenGroup(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(context.Background(), dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := holdSyncer(t, q)
	requests := submit(t, q, []byte("1"), []byte("2"), []byte("3"), []byte("4"))

	closed := make(chan error, 1)
	go func() { closed <- q.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v before runSyncer synced the open group", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s after runSyncer became idle")
	}
	for _, r := range requests {
		if err := outcome(t, r, time.Second); err != nil {
			t.Errorf("send %s: %v", r.id, err)
		}
	}
	checkWriterEnded(t)

	q = openTestQueue(t, dir, queue.Options{})
	stored := storedIDs(t, q)
	for _, r := range requests {
		if !stored[r.id] {
			t.Errorf("send %s, acknowledged at Close, is missing after reopen", r.id)
		}
	}
}

// A body insert that fails after its message row was inserted must fail
// every send of the open group and leave neither rows nor bodies behind.
func TestWriterInsertFailureFailsGroup(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	poison := []byte("poisoned body")
	execOnWriteConn(t, q, fmt.Sprintf(`
CREATE TEMP TRIGGER poison_body BEFORE INSERT ON main.message_bodies
WHEN NEW.body = X'%x'
BEGIN SELECT RAISE(ABORT, 'poisoned body rejected'); END`, poison))

	release := holdSyncer(t, q)
	requests := submit(t, q, []byte("good 1"), []byte("good 2"), []byte("good 3"), poison)
	for _, r := range requests {
		if err := outcome(t, r, 5*time.Second); err == nil {
			t.Errorf("send %s (%q) succeeded in a group whose insert failed", r.id, r.body)
		}
	}
	release()

	id, err := q.Send(context.Background(), []byte("after the failure"))
	if err != nil {
		t.Fatalf("Send after a failed insert: %v", err)
	}
	stored := storedIDs(t, q)
	if len(stored) != 1 || !stored[id] {
		t.Errorf("stored %d messages after the failed group and one Send, want only %s", len(stored), id)
	}
	checkBalance(t, q.readDB, "a failed insert")
	var bodies int
	if err := q.readDB.QueryRow(`SELECT count(*) FROM message_bodies`).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	if bodies != 1 {
		t.Errorf("%d bodies stored, want 1", bodies)
	}
}

// A commit that fails, here on a deferred foreign key that a trigger
// breaks, must fail its group, give runSyncer's token back and leave the
// write connection usable.
func TestWriterCommitFailureKeepsToken(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	poison := []byte("breaks a deferred foreign key")
	execOnWriteConn(t, q,
		`PRAGMA foreign_keys = ON`,
		`CREATE TEMP TABLE fk_parent (id INTEGER PRIMARY KEY)`,
		`CREATE TEMP TABLE fk_child (parent INTEGER REFERENCES fk_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		fmt.Sprintf(`
CREATE TEMP TRIGGER poison_commit AFTER INSERT ON main.message_bodies
WHEN NEW.body = X'%x'
BEGIN INSERT INTO fk_child (parent) VALUES (1); END`, poison))

	release := holdSyncer(t, q)
	requests := submit(t, q, []byte("good 1"), poison, []byte("good 2"))
	release()
	for _, r := range requests {
		err := outcome(t, r, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("send %s (%q): error = %v, want the failed commit", r.id, r.body, err)
		}
	}

	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := q.Send(ctx, fmt.Appendf(nil, "after the failed commit %d", i))
		cancel()
		if err != nil {
			t.Fatalf("Send %d after a failed commit: %v", i+1, err)
		}
	}
	if n := len(storedIDs(t, q)); n != 3 {
		t.Errorf("%d messages stored, want the 3 sent after the failed commit", n)
	}
	checkBalance(t, q.readDB, "a failed commit")
}

func TestWriterSyncFailureFailsLaterSends(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(context.Background(), dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := holdSyncer(t, q)
	// A log path under a regular file fails to stat with ENOTDIR, as a
	// failing disk fails the sync. The token that the test holds orders
	// this write before runSyncer's next read.
	q.log.walPath = filepath.Join(dir, LockFile, "wal")
	requests := submit(t, q, []byte("1"), []byte("2"), []byte("3"))
	release()
	for _, r := range requests {
		if err := outcome(t, r, 5*time.Second); !errors.Is(err, errLogSync) {
			t.Errorf("send %s in the group whose sync failed: error = %v, want errLogSync", r.id, err)
		}
	}

	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := q.Send(ctx, []byte("after the failed sync"))
		cancel()
		if !errors.Is(err, errLogSync) {
			t.Fatalf("Send %d after the failed sync: error = %v, want errLogSync", i+1, err)
		}
	}
	if _, err := q.Receive(context.Background(), 10, time.Minute); err != nil {
		t.Errorf("Receive after the failed sync: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("Close after the failed sync: %v", err)
	}
	checkWriterEnded(t)
}

// A group that is still open when a sync fails is rolled back: its
// senders receive the failure, so it must not reach the queue either.
func TestWriterRollsBackGroupAfterFailedSync(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	release := holdSyncer(t, q)
	requests := submit(t, q, []byte("1"), []byte("2"))
	failed := fmt.Errorf("%w: failed in a test", errLogSync)
	q.syncErr.Store(&failed)
	release()

	for _, r := range requests {
		if err := outcome(t, r, 5*time.Second); !errors.Is(err, errLogSync) {
			t.Errorf("send %s of the open group: error = %v, want errLogSync", r.id, err)
		}
	}
	if stored := storedIDs(t, q); len(stored) != 0 {
		t.Errorf("%d messages of the failed group are stored, want 0", len(stored))
	}
	checkBalance(t, q.readDB, "rolled back group")
}

// doneCountingContext counts the calls of Done, so that a test can wait
// until Send has put its request in the channel. Send calls Done once in
// enqueue and once more while it waits for the outcome.
type doneCountingContext struct {
	context.Context
	calls atomic.Int32
}

func (c *doneCountingContext) Done() <-chan struct{} {
	c.calls.Add(1)
	return c.Context.Done()
}

// startSend runs Send with a context that the test cancels, and returns
// once the request is in the channel.
func startSend(t *testing.T, q *Queue, body []byte) (cancel func(), result chan error) {
	t.Helper()
	parent, cancel := context.WithCancel(context.Background())
	ctx := &doneCountingContext{Context: parent}
	result = make(chan error, 1)
	go func() {
		_, err := q.Send(ctx, body)
		result <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for ctx.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Send did not queue its request within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	return cancel, result
}

// With a full group and runSyncer busy, the writer holds one more send that
// it took, and the next one waits in the channel. A cancelled context must
// abandon only the one in the channel.
func TestWriterCancelWhileGroupFull(t *testing.T) {
	q, err := open(context.Background(), t.TempDir(), queue.Options{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	release := holdSyncer(t, q)
	first := submit(t, q, []byte("first"), []byte("second"))

	cancelTaken, takenResult := startSend(t, q, []byte("taken"))
	for len(q.sends) > 0 {
		time.Sleep(time.Millisecond)
	}
	// The writer marks it taken, then waits for runSyncer. Marking takes
	// microseconds on an idle machine, and 200 ms leaves room for a busy one.
	time.Sleep(200 * time.Millisecond)
	cancelQueued, queuedResult := startSend(t, q, []byte("queued"))

	cancelQueued()
	if err := <-queuedResult; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Send still in the channel: error = %v, want context.Canceled", err)
	}
	cancelTaken()
	select {
	case err := <-takenResult:
		t.Fatalf("cancelled Send that the writer took returned %v before its group was synced", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-takenResult; err != nil {
		t.Errorf("cancelled Send that the writer took: %v, want the commit's outcome", err)
	}
	for _, r := range first {
		if err := outcome(t, r, 5*time.Second); err != nil {
			t.Errorf("send %s: %v", r.id, err)
		}
	}
	if n := len(storedIDs(t, q)); n != 3 {
		t.Errorf("%d messages stored, want 3 without the abandoned one", n)
	}
	if n := q.sendCommits.Load(); n != 2 {
		t.Errorf("3 sends with a limit of 2 per group took %d commits, want 2", n)
	}
}

// Every write call must get the write connection while the writer holds
// it for an open group, at the latest when runSyncer becomes idle.
func TestWriterWriteCallsWaitForSyncer(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{MaxReceiveCount: 1})
	ctx := context.Background()
	sendBodies(t, q, 3)
	msgs := receiveAll(t, q, time.Minute)
	if len(msgs) != 3 {
		t.Fatalf("Receive returned %d messages, want 3", len(msgs))
	}
	calls := map[string]func() error{
		"Receive": func() error { _, err := q.Receive(ctx, 10, time.Minute); return err },
		"Delete":  func() error { return q.Delete(ctx, []string{msgs[0].Receipt}) },
		"Release": func() error { return q.Release(ctx, []string{msgs[1].Receipt}) },
		"ChangeVisibility": func() error {
			return q.ChangeVisibility(ctx, msgs[2].Receipt, time.Hour)
		},
		"Redrive":   func() error { _, err := q.Redrive(ctx, 10); return err },
		"PurgeDead": func() error { _, err := q.PurgeDead(ctx); return err },
	}
	for name, call := range calls {
		release := holdSyncer(t, q)
		requests := submit(t, q, []byte("holds the write connection"))
		result := make(chan error, 1)
		start := time.Now()
		go func() { result <- call() }()
		select {
		case err := <-result:
			t.Logf("%s ran while the writer held an open group: %v", name, err)
		case <-time.After(50 * time.Millisecond):
			release()
			select {
			case err := <-result:
				if err != nil {
					t.Errorf("%s after runSyncer became idle: %v", name, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s still waits 5s after runSyncer became idle", name)
			}
		}
		release()
		if err := outcome(t, requests[0], 5*time.Second); err != nil {
			t.Errorf("send during %s: %v", name, err)
		}
		t.Logf("%s waited %v for the write connection", name, time.Since(start).Round(time.Millisecond))
	}
}

// consumeWhileSending runs the calls of a forwarder against q until stop
// closes: it receives, deletes some messages, releases or hides others,
// and redrives. It returns the ids it deleted.
func consumeWhileSending(t *testing.T, q *Queue, stop <-chan struct{}) map[string]bool {
	ctx := context.Background()
	deleted := map[string]bool{}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return deleted
		default:
		}
		msgs, err := q.Receive(ctx, 10, time.Minute)
		if err != nil {
			t.Errorf("Receive: %v", err)
			return deleted
		}
		var toDelete, toRelease []string
		for j, m := range msgs {
			switch j % 3 {
			case 0:
				toDelete = append(toDelete, m.Receipt)
				deleted[m.ID] = true
			case 1:
				toRelease = append(toRelease, m.Receipt)
			default:
				err = q.ChangeVisibility(ctx, m.Receipt, 0)
				if err != nil {
					t.Errorf("ChangeVisibility: %v", err)
				}
			}
		}
		if err := q.Delete(ctx, toDelete); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if err := q.Release(ctx, toRelease); err != nil {
			t.Errorf("Release: %v", err)
		}
		if i%10 == 0 {
			if _, err := q.Redrive(ctx, 5); err != nil {
				t.Errorf("Redrive: %v", err)
			}
		}
	}
}

// Senders and a consumer share the write connection. Nothing may hang,
// and every acknowledged send that the consumer did not delete must be
// stored after Close and reopen.
func TestWriterMixedLoadKeepsAcked(t *testing.T) {
	dir := t.TempDir()
	// ChangeVisibility keeps a receive counted, so a message that the
	// consumer keeps making visible reaches the dead-letter queue after
	// MaxReceiveCount receives, and Redrive then stores it under a new
	// id. A limit that no message reaches keeps every id in place.
	q, err := Open(context.Background(), dir, queue.Options{MaxReceiveCount: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	const senders, perSender = 6, 300
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		sent  sync.WaitGroup
	)
	for s := range senders {
		sent.Go(func() {
			for i := range perSender {
				id, err := q.Send(context.Background(), attackBody(s*perSender+i))
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
	stop := make(chan struct{})
	consumed := make(chan map[string]bool, 1)
	go func() { consumed <- consumeWhileSending(t, q, stop) }()

	finished := make(chan struct{})
	go func() { sent.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		t.Fatal("sends did not finish within 60s")
	}
	close(stop)
	deleted := <-consumed
	commits := q.sendCommits.Load()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	checkWriterEnded(t)

	q = openTestQueue(t, dir, queue.Options{})
	stored := storedIDs(t, q)
	missing := 0
	for id := range acked {
		if !deleted[id] && !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged sends that no one deleted are missing", missing)
	}
	t.Logf("%d sends acknowledged, %d deleted, %d stored, %d commits",
		len(acked), len(deleted), len(stored), commits)
	checkIntegrity(t, q.readDB)
	checkBalance(t, q.readDB, "mixed load")
}

// writerAttackEnv names the data folder of the child process that
// TestWriterAttackChild runs. In a normal test run it is unset.
const writerAttackEnv = "LAYOVER_WRITER_ATTACK_DIR"

// TestWriterAttackChild is the body of the child process that
// TestWriterKilledKeepsAcked starts and kills. It sends from 8 goroutines
// and writes "acked ID" for each acknowledged send.
func TestWriterAttackChild(t *testing.T) {
	dir := os.Getenv(writerAttackEnv)
	if dir == "" {
		return
	}
	q, err := Open(context.Background(), dir, queue.Options{})
	if err != nil {
		fmt.Printf("failed: %v\n", err)
		os.Exit(1)
	}
	var (
		mu   sync.Mutex
		sent sync.WaitGroup
	)
	for g := range 8 {
		sent.Go(func() {
			for i := range 1500 {
				id, err := q.Send(context.Background(), attackBody(g*1500+i))
				mu.Lock()
				if err != nil {
					fmt.Printf("failed: %v\n", err)
				} else {
					os.Stdout.WriteString("acked " + id + "\n")
				}
				mu.Unlock()
			}
		})
	}
	sent.Wait()
	os.Exit(0)
}

// runKilledSender starts the child on dir, kills it with SIGKILL once it
// has reported `after` acknowledged sends, and returns every id that it
// reported, including those written between the signal and its death.
func runKilledSender(t *testing.T, dir string, after int) []string {
	t.Helper()
	cmd, lines := startChild(t, "TestWriterAttackChild", writerAttackEnv+"="+dir)
	var acked []string
	killed := false
	for lines.Scan() {
		line := lines.Text()
		if id, ok := strings.CutPrefix(line, "acked "); ok {
			acked = append(acked, id)
		} else {
			t.Errorf("child process: %s", line)
		}
		if len(acked) == after && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()

	if !killed {
		t.Fatalf("child process ended after %d acknowledged sends, before the kill", len(acked))
	}
	return acked
}

func TestWriterKilledKeepsAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	var acked []string
	for round := range 3 {
		acked = append(acked, runKilledSender(t, dir, 500+700*round)...)
	}
	q := openTestQueue(t, dir, queue.Options{})
	stored := storedIDs(t, q)
	missing := 0
	for _, id := range acked {
		if !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged sends are missing after SIGKILL and reopen", missing, len(acked))
	}
	t.Logf("%d sends acknowledged before the kills, %d messages stored", len(acked), len(stored))
	checkIntegrity(t, q.readDB)
	checkBalance(t, q.readDB, "killed sends")
}

// A group takes bodies up to maxBatchBytes in total, and the send that
// would pass the limit starts the next group.
func TestWriterGroupByteLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 80 MiB")
	}
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	body := make([]byte, MaxBodySize) // shared by every request, to save memory
	perGroup := maxBatchBytes / MaxBodySize

	release := holdSyncer(t, q)
	bodies := make([][]byte, perGroup)
	for i := range bodies {
		bodies[i] = body
	}
	requests := submit(t, q, bodies...)
	over := &sendRequest{id: queue.NewMessageID(), body: body, done: make(chan error, 1)}
	q.sends <- over
	release()

	for _, r := range append(requests, over) {
		if err := outcome(t, r, time.Minute); err != nil {
			t.Errorf("send %s: %v", r.id, err)
		}
	}
	if n := q.sendCommits.Load(); n != 2 {
		t.Errorf("%d sends of %d bytes took %d commits, want 2 for a limit of %d bytes",
			perGroup+1, MaxBodySize, n, maxBatchBytes)
	}
}

// Close while runSyncer is busy and Sends wait for room in a full
// channel: every Send ends with an id or queue.ErrClosed, and every id is
// stored after reopen.
func TestWriterCloseWithFullChannel(t *testing.T) {
	dir := t.TempDir()
	q, err := open(context.Background(), dir, queue.Options{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	release := holdSyncer(t, q)
	var (
		mu    sync.Mutex
		acked []string
		sends sync.WaitGroup
	)
	for i := range 30 {
		sends.Go(func() {
			id, err := q.Send(context.Background(), fmt.Appendf(nil, "send %d", i))
			if errors.Is(err, queue.ErrClosed) {
				return
			}
			if err != nil {
				t.Errorf("Send %d: %v", i, err)
				return
			}
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		})
	}
	time.Sleep(50 * time.Millisecond) // the channel of 8 fills up
	closed := make(chan error, 1)
	go func() { closed <- q.Close() }()
	time.Sleep(50 * time.Millisecond)
	release()

	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s after runSyncer became idle")
	}
	sends.Wait()
	checkWriterEnded(t)

	q = openTestQueue(t, dir, queue.Options{})
	stored := storedIDs(t, q)
	for _, id := range acked {
		if !stored[id] {
			t.Errorf("send %s, acknowledged at Close, is missing after reopen", id)
		}
	}
	t.Logf("%d of 30 sends acknowledged, %d stored", len(acked), len(stored))
}

// Write calls whose contexts end while they wait for the write connection
// or run on it may interrupt their own statements, but never a send of
// the writer's group.
func TestWriterSendsSurviveCancelledCalls(t *testing.T) {
	// A cancelled Release leaves its receive counted, so at the default
	// limit of 5 some sends moved to the dead-letter queue. No message
	// reaches this limit, so the messages table keeps every send.
	q := openTestQueue(t, t.TempDir(), queue.Options{MaxReceiveCount: 1_000_000})
	const senders, perSender = 4, 200
	var sent sync.WaitGroup
	var failed atomic.Int64
	for s := range senders {
		sent.Go(func() {
			for i := range perSender {
				if _, err := q.Send(context.Background(), attackBody(s*perSender+i)); err != nil {
					failed.Add(1)
					t.Errorf("Send: %v", err)
				}
			}
		})
	}
	finished := make(chan struct{})
	go func() { sent.Wait(); close(finished) }()

	cancelled := 0
	deadline := time.After(60 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-finished:
			t.Logf("%d write calls ended by their context during %d sends", cancelled, senders*perSender)
			if n := len(storedIDs(t, q)); n != senders*perSender-int(failed.Load()) {
				t.Errorf("%d messages stored, want %d", n, senders*perSender-int(failed.Load()))
			}
			return
		case <-deadline:
			t.Fatal("sends did not finish within 60s")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%20)*100*time.Microsecond)
		msgs, err := q.Receive(ctx, 10, 0) // visibility 0 keeps the messages visible
		if err != nil {
			cancelled++
		} else if err := q.Release(ctx, receiptsOf(msgs)); err != nil {
			cancelled++
		}
		cancel()
	}
}
