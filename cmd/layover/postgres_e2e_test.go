package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/layover-dev/layover/internal/testenv"
)

// postgresSchemaURL creates an empty schema in the test database, drops it
// when the test ends, and returns a URL whose search_path selects it, so
// that the queue's tables and its forwarder lock belong to this test only.
func postgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := testenv.PostgresURL(t)
	schema := "layover_e2e_" + strings.ToLower(rand.Text()[:12])
	execSQL(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { execSQL(t, base, "DROP SCHEMA "+schema+" CASCADE") })

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", testenv.PostgresURLEnv, err)
	}
	query := u.Query()
	query.Set("search_path", schema)
	u.RawQuery = query.Encode()
	return u.String()
}

// execSQL runs one statement on its own connection.
func execSQL(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", testenv.PostgresURLEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestPostgresTwoServesShareQueue runs two layover serve processes on one
// PostgreSQL queue, each with a forward run every second, while 8 clients
// POST to both. Every event must arrive, and the forwarder lock must keep
// the runs of the two processes apart.
func TestPostgresTwoServesShareQueue(t *testing.T) {
	queueURL := postgresSchemaURL(t)
	// The delay makes each trackBulk request last long enough that two
	// overlapping runs would be seen overlapping.
	sim, rec, simURL := startRecordedSimulator(t, 50*time.Millisecond)
	env := testEnv(t.TempDir(), simURL,
		"LAYOVER_QUEUE="+queueURL,
		"LAYOVER_SCHEDULE=@every 1s",
		"LAYOVER_BATCH_EVENTS=50")
	serves := []*serveProcess{startServe(t, env), startServe(t, env)}

	const clients, batchesPerClient, eventsPerBatch = 8, 50, 3
	var want []string
	var wg sync.WaitGroup
	errs := make(chan error, clients*batchesPerClient)
	for c := range clients {
		bodies := make([][]byte, batchesPerClient)
		for n := range bodies {
			ids := eventIDs(fmt.Sprintf("pg-c%d-b%d", c, n), eventsPerBatch)
			want = append(want, ids...)
			bodies[n] = screenViewBatch(fmt.Sprintf("pg-user-%d", c), ids, 0)
		}
		wg.Go(func() {
			for n, body := range bodies {
				// Alternate the two servers, as a load balancer would.
				if err := postBatch(serves[(c+n)%2].base, body); err != nil {
					errs <- fmt.Errorf("client %d batch %d: %w", c, n, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	logs := func() string { return serves[0].log.String() + "\n---\n" + serves[1].log.String() }
	waitDelivered(t, sim, want, 90*time.Second, logs)
	for _, s := range serves {
		s.stop(t)
	}

	deliveries, overlaps, maxActive := rec.snapshot()
	if len(overlaps) > 0 {
		t.Errorf("%d event ids were in two trackBulk requests at the same time, first %v",
			len(overlaps), overlaps[:min(5, len(overlaps))])
	}
	if maxActive > 1 {
		t.Errorf("%d trackBulk requests were in flight at once, want 1: two forward runs overlapped", maxActive)
	}
	for _, id := range want {
		if n := deliveries[id]; n != 1 {
			t.Errorf("event %s was sent in %d trackBulk requests, want 1", id, n)
		}
	}
	var runs, skips [2]int
	for i, s := range serves {
		runs[i] = strings.Count(s.log.String(), "forward run starting")
		skips[i] = strings.Count(s.log.String(), "another layover process is forwarding")
	}
	// Forwarding takes seconds (24 requests of 50 events, each held 50 ms,
	// at most 10 per second), so the other process's schedule fires during
	// a run and must find the lock taken.
	if skips[0]+skips[1] == 0 {
		t.Errorf("no scheduled run was skipped for the forwarder lock (runs per process %v), "+
			"so the test did not exercise two processes competing", runs)
	}
	t.Logf("%d events in %d batches delivered; forward runs per process %v, runs skipped for the lock %v",
		len(want), clients*batchesPerClient, runs, skips)
}
