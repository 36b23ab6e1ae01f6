package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// These tests attack schema version 2, which keeps the message bodies in
// message_bodies and deletes a body with its message by trigger.

// attackRoleEnv selects the role of a test binary that a test in this file
// starts as a child process.
const attackRoleEnv = "LAYOVER_SCHEMA_ATTACK_ROLE"

// TestSchemaAttackHelper is the body of the child processes that the tests
// below start. In a normal test run it returns at once.
func TestSchemaAttackHelper(t *testing.T) {
	role := os.Getenv(attackRoleEnv)
	if role == "" {
		return
	}
	dir := os.Getenv("LAYOVER_SQLITE_TEST_DIR")
	var err error
	switch role {
	case "migrate-and-wait":
		err = migrateAndWait(dir)
	case "open":
		os.Stdout.WriteString("start\n")
		var q *Queue
		if q, err = Open(context.Background(), dir, queue.Options{}); err == nil {
			os.Stdout.WriteString("opened\n")
			err = q.Close()
		}
	case "send":
		err = sendUntilKilled(dir)
	}
	if err != nil {
		os.Stdout.WriteString("failed: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// migrateAndWait runs the version 2 migration on the database in dir
// without committing it, writes "ready" and waits to be killed. Its page
// cache is small, so the migration spills pages to the log before the
// commit.
func migrateAndWait(dir string) error {
	ctx := context.Background()
	db, err := openPool(ctx, filepath.Join(dir, DatabaseFile), roleWrite, 1)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "PRAGMA cache_size = 8"); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, migrations[2]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = 2"); err != nil {
		return err
	}
	os.Stdout.WriteString("ready\n")
	_, _ = io.ReadAll(os.Stdin)
	return nil
}

// sendUntilKilled sends at most 20,000 bodies from 8 goroutines and
// writes "ready" after the first 100.
func sendUntilKilled(dir string) error {
	ctx := context.Background()
	q, err := Open(ctx, dir, queue.Options{})
	if err != nil {
		return err
	}
	var (
		wg    sync.WaitGroup
		sent  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for g := range 8 {
		wg.Go(func() {
			for i := range 2500 {
				if _, err := q.Send(ctx, attackBody(g*2500+i)); err != nil {
					errMu.Lock()
					first = err
					errMu.Unlock()
					return
				}
				if sent.Add(1) == 100 {
					os.Stdout.WriteString("ready\n")
				}
			}
		})
	}
	wg.Wait()
	return first
}

// startAttackChild runs this test binary in role on dir and returns it
// with its output lines.
func startAttackChild(t *testing.T, role, dir string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	return startChild(t, "TestSchemaAttackHelper", attackRoleEnv+"="+role, "LAYOVER_SQLITE_TEST_DIR="+dir)
}

// waitLine reads output lines of a child until want. It fails the test
// when the child reports a failure or ends first.
func waitLine(t *testing.T, lines *bufio.Scanner, want string) {
	t.Helper()
	for lines.Scan() {
		if lines.Text() == want {
			return
		}
		if strings.HasPrefix(lines.Text(), "failed: ") {
			t.Fatalf("child process %s", lines.Text())
		}
	}
	t.Fatalf("child process ended before it said %q: %v", want, lines.Err())
}

// killChild ends a child with SIGKILL and waits for it.
func killChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// attackBody returns body number n: JSON of 400 to 2,400 bytes that names n.
func attackBody(n int) []byte {
	pad := bytes.Repeat([]byte{'a' + byte(n%26)}, 400+(n*37)%2000)
	return fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, n, pad)
}

// v1Content is what a version 1 database written by createLoadedVersion1
// holds: the body of each id, and the ids of each kind of message.
type v1Content struct {
	bodies   map[string][]byte
	visible  []string
	inFlight []string // with receipt "r-" + id
	atMax    []string // visible, at the maximum receive count
	dead     []string
}

// createLoadedVersion1 writes a version 1 database in dir, with the
// settings of the first release, that holds visible messages, in-flight
// messages with receipts, messages that the next receive moves to the
// dead-letter queue, and dead messages.
func createLoadedVersion1(t *testing.T, dir string, visible, inFlight, atMax, dead int) v1Content {
	t.Helper()
	ctx := context.Background()
	db, err := openPool(ctx, filepath.Join(dir, DatabaseFile), roleWrite, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	setup := migrations[1] + fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = 1", applicationID)
	if _, err := db.ExecContext(ctx, setup); err != nil {
		t.Fatalf("create version 1 database: %v", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	c := v1Content{bodies: map[string][]byte{}}
	now := time.Now().UnixMilli()
	add := func(list *[]string, query string, args ...any) {
		n := len(c.bodies)
		id, body := fmt.Sprintf("m%05d", n), attackBody(n)
		c.bodies[id] = body
		*list = append(*list, id)
		if _, err := tx.ExecContext(ctx, query, append([]any{id, body}, args...)...); err != nil {
			t.Fatalf("fill version 1 database: %v", err)
		}
	}
	const insert = `INSERT INTO messages (id, body, enqueued_at, visible_at, receive_count, receipt)
VALUES (?, ?, ?, ?, ?, ?)`
	for i := range visible {
		add(&c.visible, insert, now-int64(i), now-int64(i), 0, nil)
	}
	for range inFlight {
		add(&c.inFlight, insert, now, now+time.Hour.Milliseconds(), 1, fmt.Sprintf("r-m%05d", len(c.bodies)))
	}
	for range atMax {
		add(&c.atMax, insert, now, now-1000, queue.DefaultMaxReceiveCount, fmt.Sprintf("old-m%05d", len(c.bodies)))
	}
	for range dead {
		add(&c.dead, `INSERT INTO dead_messages (id, body, receive_count, enqueued_at, dead_at, reason)
VALUES (?, ?, 5, ?, ?, 'test')`, now, now)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return c
}

// bodyBalance returns how many bodies have no message and how many
// messages have no body.
func bodyBalance(t *testing.T, db *sql.DB) (orphans, bodiless int) {
	t.Helper()
	err := db.QueryRow(`
SELECT
	(SELECT count(*) FROM message_bodies AS b WHERE NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.seq = b.seq)),
	(SELECT count(*) FROM messages AS m WHERE NOT EXISTS (SELECT 1 FROM message_bodies AS b WHERE b.seq = m.seq))`,
	).Scan(&orphans, &bodiless)
	if err != nil {
		t.Fatal(err)
	}
	return orphans, bodiless
}

// checkBalance fails the test when a body has no message or a message has
// no body.
func checkBalance(t *testing.T, db *sql.DB, after string) {
	t.Helper()
	if orphans, bodiless := bodyBalance(t, db); orphans != 0 || bodiless != 0 {
		t.Errorf("after %s: %d bodies without a message, %d messages without a body; want 0 and 0",
			after, orphans, bodiless)
	}
}

// checkIntegrity runs SQLite's integrity check on db.
func checkIntegrity(t *testing.T, db *sql.DB) {
	t.Helper()
	var result string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil {
		t.Fatal(err)
	}
	if result != "ok" {
		t.Errorf("integrity_check: %s", result)
	}
}

// TestRedriveEmptyBody redrives a dead message whose body is empty. Send
// stores an empty body as a zero-length blob, but the driver reads it back
// as a nil slice, which binds as NULL.
func TestRedriveEmptyBody(t *testing.T) {
	ctx := context.Background()
	q := openTestQueue(t, t.TempDir(), queue.Options{MaxReceiveCount: 1})
	if _, err := q.Send(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(ctx, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := q.Receive(ctx, 10, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.Redrive(ctx, 10); err != nil || n != 2 {
		t.Fatalf("Redrive = %d, %v; want both dead messages moved", n, err)
	}
	msgs, err := q.Receive(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("received %d redriven messages, want 2", len(msgs))
	}
	checkBalance(t, q.readDB, "redriving an empty body")
}

// TestBodiesFollowMessages runs every path that deletes or moves a message
// and checks after each that bodies and messages still pair up.
func TestBodiesFollowMessages(t *testing.T) {
	ctx := context.Background()
	q, clock := openClockQueue(t, queue.Options{MaxReceiveCount: 2})
	sendBodies(t, q, 60)
	checkBalance(t, q.readDB, "Send")

	if err := q.Delete(ctx, receiptsOf(receiveAll(t, q, time.Minute))); err != nil {
		t.Fatal(err)
	}
	checkBalance(t, q.readDB, "Delete")
	if err := q.Release(ctx, receiptsOf(receiveAll(t, q, time.Minute))); err != nil {
		t.Fatal(err)
	}
	checkBalance(t, q.readDB, "Release")

	// Every message left is received twice, then moved to the dead-letter
	// queue on the third receive.
	for range 20 {
		receiveAll(t, q, 0)
	}
	checkBalance(t, q.readDB, "dead-lettering")
	if n, err := q.Redrive(ctx, 20); err != nil || n != 20 {
		t.Fatalf("Redrive = %d, %v; want 20", n, err)
	}
	checkBalance(t, q.readDB, "Redrive")
	if _, err := q.PurgeDead(ctx); err != nil {
		t.Fatal(err)
	}
	checkBalance(t, q.readDB, "PurgeDead")

	before, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.jump(q.opts.Retention + time.Minute)
	receiveAll(t, q, time.Minute)
	checkBalance(t, q.readDB, "expiry")
	after, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The trigger's deletes must not count as expired messages.
	if want := before.Expired + before.Visible + before.InFlight; after.Expired != want {
		t.Errorf("Stats.Expired = %d after expiry, want %d", after.Expired, want)
	}
	var bodies int
	if err := q.readDB.QueryRow(`SELECT count(*) FROM message_bodies`).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	if bodies != 0 {
		t.Errorf("%d bodies left after every message expired", bodies)
	}
}

// seqOf returns the seq of the message id.
func seqOf(t *testing.T, q *Queue, id string) int64 {
	t.Helper()
	var seq int64
	if err := q.readDB.QueryRow(`SELECT seq FROM messages WHERE id = ?`, id).Scan(&seq); err != nil {
		t.Fatalf("seq of %s: %v", id, err)
	}
	return seq
}

// TestReusedSeqGetsItsOwnBody deletes the message with the highest seq,
// so that SQLite gives its seq to the next message. The new message must
// come back with its own body, also after the seq passed through the
// dead-letter queue and back.
func TestReusedSeqGetsItsOwnBody(t *testing.T) {
	ctx := context.Background()
	q := openTestQueue(t, t.TempDir(), queue.Options{MaxReceiveCount: 1})
	first, err := q.Send(ctx, []byte(`"first"`))
	if err != nil {
		t.Fatal(err)
	}
	last, err := q.Send(ctx, []byte(`"last"`))
	if err != nil {
		t.Fatal(err)
	}
	freed := seqOf(t, q, last)
	msgs := receiveAll(t, q, time.Minute)
	for _, m := range msgs {
		if m.ID == last {
			if err := q.Delete(ctx, []string{m.Receipt}); err != nil {
				t.Fatal(err)
			}
		}
	}
	next, err := q.Send(ctx, []byte(`"next"`))
	if err != nil {
		t.Fatal(err)
	}
	if seq := seqOf(t, q, next); seq != freed {
		t.Logf("SQLite did not reuse seq %d (gave %d); the test checks the bodies anyway", freed, seq)
	}
	msgs = receiveAll(t, q, 0)
	if len(msgs) != 1 || msgs[0].ID != next || string(msgs[0].Body) != `"next"` {
		t.Fatalf("received %+v; want only %s with body \"next\"", msgs, next)
	}

	// The next receive moves "next", the highest seq, to the dead-letter
	// queue, and the redriven copy takes the same seq again.
	if msgs := receiveAll(t, q, 0); len(msgs) != 0 {
		t.Fatalf("received %d messages, want none: the only visible one is over the limit", len(msgs))
	}
	if n, err := q.Redrive(ctx, 10); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want 1", n, err)
	}
	msgs = receiveAll(t, q, 0)
	if len(msgs) != 1 || string(msgs[0].Body) != `"next"` || msgs[0].ID == first {
		t.Fatalf("after redrive received %+v; want the redriven \"next\"", msgs)
	}
	checkBalance(t, q.readDB, "seq reuse")
}

// receiveEverything receives and deletes every visible message and
// returns their bodies by id.
func receiveEverything(t *testing.T, q *Queue) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	got := map[string][]byte{}
	for {
		msgs := receiveAll(t, q, time.Hour)
		if len(msgs) == 0 {
			return got
		}
		for _, m := range msgs {
			got[m.ID] = m.Body
		}
		if err := q.Delete(ctx, receiptsOf(msgs)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkReceived compares the messages that a queue returned, by id, with
// the bodies of ids.
func checkReceived(t *testing.T, got map[string][]byte, c v1Content, ids ...[]string) {
	t.Helper()
	want := 0
	for _, list := range ids {
		for _, id := range list {
			want++
			if !bytes.Equal(got[id], c.bodies[id]) {
				t.Errorf("message %s: got a body of %d bytes, want %d bytes", id, len(got[id]), len(c.bodies[id]))
			}
		}
	}
	if len(got) != want {
		t.Errorf("received %d messages, want %d", len(got), want)
	}
}

// checkRedriven compares the bodies of redriven messages, which have new
// ids, with the bodies of ids.
func checkRedriven(t *testing.T, got map[string][]byte, c v1Content, ids ...[]string) {
	t.Helper()
	count := map[string]int{}
	for _, body := range got {
		count[string(body)]++
	}
	for _, list := range ids {
		for _, id := range list {
			if count[string(c.bodies[id])] == 0 {
				t.Errorf("dead message %s was not redriven with its body", id)
			}
			count[string(c.bodies[id])]--
		}
	}
	for body, n := range count {
		if n > 0 {
			t.Errorf("redrive returned %d bodies of %d bytes that no dead message held", n, len(body))
		}
	}
}

// schemaOf returns the schema objects of db, one line each.
func schemaOf(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, text string
		if err := rows.Scan(&typ, &name, &text); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s: %s\n", typ, name, text)
	}
	return b.String()
}

// TestMigrateLoadedVersion1 migrates a version 1 database with thousands
// of messages, in-flight messages with receipts and dead messages, and
// checks that each keeps its body and state.
func TestMigrateLoadedVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := createLoadedVersion1(t, dir, 2000, 200, 20, 100)

	q := openTestQueue(t, dir, queue.Options{})
	checkIntegrity(t, q.readDB)
	checkBalance(t, q.readDB, "the migration")
	fresh := openTestQueue(t, t.TempDir(), queue.Options{})
	if got, want := schemaOf(t, q.readDB), schemaOf(t, fresh.readDB); got != want {
		t.Errorf("migrated schema differs from a new database's\nmigrated:\n%s\nnew:\n%s", got, want)
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Visible != int64(len(c.visible)+len(c.atMax)) || st.InFlight != int64(len(c.inFlight)) ||
		st.DeadLettered != int64(len(c.dead)) {
		t.Errorf("Stats after the migration = %+v; want %d visible, %d in flight, %d dead",
			st, len(c.visible)+len(c.atMax), len(c.inFlight), len(c.dead))
	}

	// The receipts of the first release stay valid.
	receipts := make([]string, len(c.inFlight))
	for i, id := range c.inFlight {
		receipts[i] = "r-" + id
	}
	if err := q.ChangeVisibility(ctx, receipts[0], time.Hour); err != nil {
		t.Errorf("ChangeVisibility with a receipt from before the migration: %v", err)
	}
	half := len(receipts) / 2
	if err := q.Delete(ctx, receipts[:half]); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(ctx, receipts[half:]); err != nil {
		t.Fatal(err)
	}
	checkBalance(t, q.readDB, "Delete and Release with old receipts")

	// The messages at the limit go to the dead-letter queue instead.
	checkReceived(t, receiveEverything(t, q), c, c.visible, c.inFlight[half:])
	want := len(c.dead) + len(c.atMax)
	if n, err := q.Redrive(ctx, want); err != nil || n != want {
		t.Fatalf("Redrive = %d, %v; want %d", n, err, want)
	}
	checkRedriven(t, receiveEverything(t, q), c, c.dead, c.atMax)

	var bodies int
	if err := q.readDB.QueryRow(`SELECT count(*) FROM message_bodies`).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	if bodies != 0 {
		t.Errorf("%d bodies left after every message was deleted", bodies)
	}
}

// rawVersion opens the database in dir without the queue and returns its
// user_version and whether messages still has its body column.
func rawVersion(t *testing.T, dir string) (version int, bodyColumn bool) {
	t.Helper()
	db, err := openPool(context.Background(), filepath.Join(dir, DatabaseFile), roleWrite, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkIntegrity(t, db)
	err = db.QueryRow(`
SELECT
	(SELECT user_version FROM pragma_user_version()),
	(SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'body')`).Scan(&version, &bodyColumn)
	if err != nil {
		t.Fatal(err)
	}
	var bodyTable int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'message_bodies'`).Scan(&bodyTable); err != nil {
		t.Fatal(err)
	}
	if (version == 1) != bodyColumn || (version == 2) != (bodyTable == 1) {
		t.Errorf("half-migrated database: user_version %d, body column %v, message_bodies tables %d",
			version, bodyColumn, bodyTable)
	}
	return version, bodyColumn
}

// checkAllThere opens the queue in dir and checks that it returns every
// visible message of c with its body and holds every in-flight and dead one.
func checkAllThere(t *testing.T, dir string, c v1Content) {
	t.Helper()
	q := openTestQueue(t, dir, queue.Options{})
	checkBalance(t, q.readDB, "the migration")
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.InFlight != int64(len(c.inFlight)) || st.DeadLettered != int64(len(c.dead)) {
		t.Errorf("Stats = %+v; want %d in flight and %d dead", st, len(c.inFlight), len(c.dead))
	}
	checkReceived(t, receiveEverything(t, q), c, c.visible)
}

// TestMigrationKilledBeforeCommit kills a process that has run the
// version 2 migration, with pages spilled to the log, but not committed it.
// The database must still be version 1 with every body, and the next Open
// must migrate it.
func TestMigrationKilledBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	c := createLoadedVersion1(t, dir, 1500, 100, 0, 50)
	cmd, lines := startAttackChild(t, "migrate-and-wait", dir)
	waitLine(t, lines, "ready")
	if info, err := os.Stat(filepath.Join(dir, DatabaseFile+"-wal")); err == nil {
		t.Logf("log holds %d bytes of the unfinished migration", info.Size())
	}
	killChild(t, cmd)

	if version, _ := rawVersion(t, dir); version != 1 {
		t.Fatalf("user_version = %d after the killed migration, want 1", version)
	}
	checkAllThere(t, dir, c)
}

// TestMigrationKilledDuringOpen kills Open at delays spread over the time
// a migration takes. Each time the database must be fully version 1 or
// fully version 2, and the last Open must find every message.
func TestMigrationKilledDuringOpen(t *testing.T) {
	template := t.TempDir()
	c := createLoadedVersion1(t, template, 3000, 100, 0, 50)
	data, err := os.ReadFile(filepath.Join(template, DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	timed := t.TempDir()
	if err := os.WriteFile(filepath.Join(timed, DatabaseFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	q, err := Open(context.Background(), timed, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(started)
	_ = q.Close()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DatabaseFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	const trials = 6
	outcomes := map[int]int{}
	for i := range trials {
		cmd, lines := startAttackChild(t, "open", dir)
		waitLine(t, lines, "start")
		time.Sleep(took * time.Duration(i) / (trials - 2))
		killChild(t, cmd)
		version, _ := rawVersion(t, dir)
		outcomes[version]++
		if version == 2 {
			break
		}
	}
	t.Logf("Open takes %v in process; killed children left version 1 %d times, version 2 %d times",
		took.Round(time.Millisecond), outcomes[1], outcomes[2])
	checkAllThere(t, dir, c)
}

// TestSendKilledLeavesPairs kills a process that sends from several
// goroutines and checks that every stored message has its body and every
// body its message.
func TestSendKilledLeavesPairs(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		cmd, lines := startAttackChild(t, "send", dir)
		waitLine(t, lines, "ready")
		time.Sleep(time.Duration(20+40*i) * time.Millisecond)
		killChild(t, cmd)
	}
	q := openTestQueue(t, dir, queue.Options{})
	checkIntegrity(t, q.readDB)
	checkBalance(t, q.readDB, "killed sends")
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages stored before the kills", st.Visible)
	for _, m := range receiveAll(t, q, time.Minute) {
		if !bytes.HasPrefix(m.Body, []byte(`{"n":`)) {
			t.Errorf("message %s has a body of %d bytes that no child sent", m.ID, len(m.Body))
		}
	}
}
