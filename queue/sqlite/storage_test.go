package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/layover-dev/layover/queue"
)

func TestReopenKeepsMessages(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q, err := Open(ctx, dir, queue.Options{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	q.now = clock.now
	if _, err := q.Send(ctx, []byte("expires before the reopen")); err != nil {
		t.Fatal(err)
	}
	clock.jump(2 * time.Hour)
	bodies := map[string]string{}
	for _, b := range []string{"kept 1", "kept 2", "in flight"} {
		id, err := q.Send(ctx, []byte(b))
		if err != nil {
			t.Fatal(err)
		}
		bodies[id] = b
	}
	// This receive removes the expired message and counts it.
	msgs, err := q.Receive(ctx, 1, time.Hour)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %d messages, %v; want 1, nil", len(msgs), err)
	}
	inFlight := msgs[0]
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openTestQueue(t, dir, queue.Options{})
	q.now = clock.now
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Visible != 2 || st.InFlight != 1 || st.Expired != 1 {
		t.Errorf("Stats after reopen = %+v, want 2 visible, 1 in flight, 1 expired", st)
	}
	msgs, err = q.Receive(ctx, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("Receive after reopen returned %d messages, want 2", len(msgs))
	}
	for _, m := range msgs {
		if string(m.Body) != bodies[m.ID] || m.ID == inFlight.ID {
			t.Errorf("message %s after reopen has body %q, want %q", m.ID, m.Body, bodies[m.ID])
		}
	}
	if err := q.Delete(ctx, []string{inFlight.Receipt}); err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Stats(ctx); st.InFlight != 2 {
		t.Errorf("after deleting with a receipt from before the reopen, %d in flight, want 2", st.InFlight)
	}
}

func TestGroupCommitSharesTransactions(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	const senders = 64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			<-start
			if _, err := q.Send(context.Background(), fmt.Appendf(nil, "message %d", i)); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()

	commits := q.sendCommits.Load()
	t.Logf("%d concurrent sends took %d commits", senders, commits)
	if commits >= senders {
		t.Errorf("%d concurrent sends took %d commits, want fewer", senders, commits)
	}
	if st, _ := q.Stats(context.Background()); st.Visible != senders {
		t.Errorf("Stats.Visible = %d, want %d", st.Visible, senders)
	}
}

func TestPlaceSkipsAbandonedSend(t *testing.T) {
	q := &Queue{maxBatchMessages: 10}
	abandoned := &sendRequest{id: "abandoned"}
	abandoned.state.Store(requestAbandoned)
	g := &group{}

	q.place(g, abandoned)
	if len(g.sends) != 0 || g.tx != nil {
		t.Errorf("place stored an abandoned send: group has %d sends", len(g.sends))
	}
	if got := abandoned.state.Load(); got != requestAbandoned {
		t.Errorf("abandoned send state = %d, want requestAbandoned", got)
	}
}

// TestReceiveWhileSendsFlow checks that Receive and Delete get the write
// connection while sends keep the writer's transaction open between
// syncs, as a forwarder inside serve does under webhook load.
func TestReceiveWhileSendsFlow(t *testing.T) {
	ctx := context.Background()
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	body := bytes.Repeat([]byte("x"), 7000)

	stop := make(chan struct{})
	var sent sync.WaitGroup
	var sendErrs, sends atomic.Int64
	for range 8 {
		sent.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := q.Send(ctx, body); err != nil {
					sendErrs.Add(1)
				}
				sends.Add(1)
			}
		})
	}

	received := 0
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		msgs, err := q.Receive(ctx, 10, time.Minute)
		if err != nil {
			t.Fatalf("Receive during sends: %v", err)
		}
		var receipts []string
		for _, m := range msgs {
			receipts = append(receipts, m.Receipt)
		}
		if err := q.Delete(ctx, receipts); err != nil {
			t.Fatalf("Delete during sends: %v", err)
		}
		received += len(msgs)
	}
	close(stop)
	sent.Wait()

	t.Logf("%d sends and %d receives in one second", sends.Load(), received)
	if n := sendErrs.Load(); n > 0 {
		t.Errorf("%d sends failed", n)
	}
	if received == 0 {
		t.Error("no message received while sends flowed")
	}
}

func TestSendAfterDatabaseFailure(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), queue.Options{})
	// Closing the pool under the queue makes every statement fail, as an
	// I/O error would.
	if err := q.writeDB.Close(); err != nil {
		t.Fatal(err)
	}
	if id, err := q.Send(context.Background(), []byte("lost")); err == nil {
		t.Fatalf("Send succeeded with id %s after the database failed", id)
	}
	if _, err := q.Receive(context.Background(), 1, time.Minute); err == nil {
		t.Error("Receive succeeded after the database failed")
	}
}

func TestSendReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions; TestSendFileSizeLimit covers write failures")
	}
	dir := t.TempDir()
	q, err := Open(context.Background(), dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The lock file stays writable, so that the database is what fails.
	for _, e := range entries {
		if e.Name() == LockFile {
			continue
		}
		if err := os.Chmod(filepath.Join(dir, e.Name()), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

	// SQLite opens a read-only file read-only, and may fail at once because
	// it cannot create the write-ahead log. Either way no Send may succeed.
	q, err = Open(context.Background(), dir, queue.Options{})
	if err != nil {
		t.Logf("Open of a read-only data folder failed: %v", err)
		return
	}
	defer q.Close()
	if id, err := q.Send(context.Background(), []byte("lost")); err == nil {
		t.Fatalf("Send to a read-only folder succeeded with id %s", id)
	}
}

// fillLimitedDisk is the helper process of TestSendFileSizeLimit. It opens
// the queue in dir, limits the size of the files it may write to 2 MiB, and
// sends 64 KiB bodies until Send fails. It prints "stored ID" for each
// success and "failed ERROR" for the failure.
func fillLimitedDisk(dir string) {
	q, err := Open(context.Background(), dir, queue.Options{})
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(1)
	}
	// Writing past the limit raises SIGXFSZ. With the signal ignored, the
	// write fails with EFBIG instead, as it fails with ENOSPC on a full disk.
	signal.Ignore(syscall.SIGXFSZ)
	limit := &unix.Rlimit{Cur: 2 << 20, Max: 2 << 20}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, limit); err != nil {
		fmt.Printf("setrlimit failed: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("ready")

	body := bytes.Repeat([]byte("x"), 64<<10)
	for range 200 {
		id, err := q.Send(context.Background(), body)
		if err != nil {
			fmt.Printf("failed %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return
		}
		fmt.Printf("stored %s\n", id)
	}
}

func TestSendFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	cmd, lines := startHelper(t, "fill-limited", dir)
	stored := map[string]bool{}
	var failure string
	for lines.Scan() {
		line := lines.Text()
		if id, ok := strings.CutPrefix(line, "stored "); ok {
			stored[id] = true
		} else if msg, ok := strings.CutPrefix(line, "failed "); ok {
			failure = msg
		}
	}
	if failure == "" {
		t.Fatalf("200 sends of 64 KiB under a 2 MiB file size limit all succeeded")
	}
	t.Logf("Send failed after %d stored messages: %s", len(stored), failure)
	if len(stored) == 0 {
		t.Fatal("no Send succeeded before the limit")
	}

	// The helper's lock on the folder goes with the process, so wait for
	// it to exit before opening the folder here.
	_ = cmd.Wait()

	// Every message that Send reported as stored is in the database.
	q := openTestQueue(t, dir, queue.Options{})
	found := 0
	for {
		msgs, err := q.Receive(context.Background(), queue.MaxReceiveBatch, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if stored[m.ID] {
				found++
			}
		}
	}
	if found != len(stored) {
		t.Errorf("found %d of the %d messages that Send reported as stored", found, len(stored))
	}
}

func TestOperatorFollowsRecordedRetention(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q := openTestQueue(t, dir, queue.Options{Retention: 2 * time.Hour})
	if _, err := q.Send(ctx, []byte("kept for two hours")); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openTestQueue(t, dir, queue.Options{Retention: time.Minute, FollowStoredRetention: true})
	if q.opts.Retention != 2*time.Hour {
		t.Errorf("following queue uses retention %s, want the recorded 2h0m0s", q.opts.Retention)
	}
	clock := &testClock{}
	q.now = clock.now
	clock.jump(10 * time.Minute)
	msgs, err := q.Receive(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Errorf("Receive after 10 minutes returned %d messages, want the one kept for two hours", len(msgs))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openTestQueue(t, dir, queue.Options{Retention: time.Minute})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openTestQueue(t, dir, queue.Options{Retention: time.Hour, FollowStoredRetention: true})
	if q.opts.Retention != time.Minute {
		t.Errorf("after a server opened with 1m, the following queue uses %s, want 1m0s", q.opts.Retention)
	}
}
