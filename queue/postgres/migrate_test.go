package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/layover-dev/layover/queue"
)

func schemaVersions(t *testing.T, url string) []int {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version FROM layover_schema_version ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema versions: %v", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema versions: %v", err)
	}
	return versions
}

func TestLoadMigrationsOrdered(t *testing.T) {
	migrations, err := loadMigrations()
	if err != nil {
		t.Fatalf("loadMigrations: %v", err)
	}
	if len(migrations) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i, m := range migrations {
		if m.version != i+1 {
			t.Errorf("migration %d (%s) has version %d, want %d", i, m.name, m.version, i+1)
		}
	}
}

func TestOpenTwiceKeepsSchemaAndData(t *testing.T) {
	ctx := testContext(t)
	url := newSchemaURL(t)
	first := openAt(t, url, queue.Options{})
	id, err := first.Send(ctx, []byte("kept"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second := openAt(t, url, queue.Options{})
	migrations, _ := loadMigrations()
	if got := schemaVersions(t, url); len(got) != len(migrations) {
		t.Errorf("schema versions after two Opens = %v, want one row per migration (%d)",
			got, len(migrations))
	}
	msgs, err := second.Receive(ctx, 1, 0)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 1 || msgs[0].ID != id || string(msgs[0].Body) != "kept" {
		t.Errorf("Receive after reopen = %+v, want message %s with body kept", msgs, id)
	}
}

func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	url := newSchemaURL(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	queues := make([]*Queue, n)
	for i := range n {
		wg.Go(func() {
			queues[i], errs[i] = Open(context.Background(), url, queue.Options{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		_ = queues[i].Close()
	}
	migrations, _ := loadMigrations()
	if got := schemaVersions(t, url); len(got) != len(migrations) {
		t.Errorf("schema versions = %v, want one row per migration (%d)", got, len(migrations))
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	ctx := testContext(t)
	url := newSchemaURL(t)
	q := openAt(t, url, queue.Options{})
	_ = q.Close()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO layover_schema_version (version, name) VALUES (9999, 'future')`)
	if err != nil {
		t.Fatalf("insert future version: %v", err)
	}

	q, err = Open(ctx, url, queue.Options{})
	if err == nil {
		_ = q.Close()
		t.Fatal("Open succeeded on a schema newer than the build")
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Errorf("Open error = %q, want it to name version 9999", err)
	}
}

func TestOpenInvalidURLHidesPassword(t *testing.T) {
	_, err := Open(context.Background(), "postgres://user:secret@host:notaport/db", queue.Options{})
	if err == nil {
		t.Fatal("Open succeeded with an invalid URL")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("Open error = %q, want no password in it", err)
	}
}

func TestOpenWithoutCreatePrivilege(t *testing.T) {
	ctx := testContext(t)
	url := newSchemaURL(t)
	owner := openAt(t, url, queue.Options{})
	_ = owner.Close()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatalf("read schema: %v", err)
	}
	role := schema + "_app"
	grants := []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA " + schema + " TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + schema + " TO " + role,
	}
	for _, sql := range grants {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() { dropRole(t, url, role) })

	config, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	roleURL := strings.Replace(url, "://"+config.User+"@", "://"+role+"@", 1)
	q := openAt(t, roleURL, queue.Options{})
	if _, err := q.Send(ctx, []byte("x")); err != nil {
		t.Errorf("Send as a role without CREATE: %v", err)
	}
}

func dropRole(t *testing.T, url, role string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("drop role %s: connect: %v", role, err)
		return
	}
	defer conn.Close(ctx)
	for _, sql := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
	}
}
