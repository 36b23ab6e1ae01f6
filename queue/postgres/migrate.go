package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Advisory lock classes, the first key of PostgreSQL's two-key advisory
// locks. The second key is a hash of the schema the queue lives in, so that
// queues in different schemas of one database do not block each other.
const (
	lockClassMigrate   int32 = 0x4c590001
	lockClassForwarder int32 = 0x4c590002
)

// schemaKeySQL computes the second advisory lock key. current_schema() is
// NULL when no schema of the search_path exists, and the lock functions
// take no lock on a NULL key, so the empty string replaces it.
const schemaKeySQL = `hashtext(coalesce(current_schema(), ''))`

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change, numbered by the prefix of its file name.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	paths, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var out []migration
	for _, path := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(path, "migrations/"), ".sql")
		prefix, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: file name must start with a positive number", path)
		}
		body, err := migrationFiles.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", path, err)
		}
		out = append(out, migration{version: version, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d",
				out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// migrate brings the schema up to the newest embedded migration. It runs in
// one transaction under an advisory lock, so processes that start at the
// same time apply each migration once, and a failed migration leaves the
// schema as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		lock := `SELECT pg_advisory_xact_lock($1, ` + schemaKeySQL + `)`
		if _, err := tx.Exec(ctx, lock, lockClassMigrate); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		latest := migrations[len(migrations)-1].version
		if current > latest {
			return fmt.Errorf("schema version %d is newer than this build of Layover "+
				"supports (%d); run a newer Layover", current, latest)
		}
		for _, m := range migrations {
			if m.version <= current {
				continue
			}
			if err := apply(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// schemaVersion creates the version table when it is missing and returns
// the highest version applied, 0 for a new schema. It checks for the table
// first because PostgreSQL 15 checks the CREATE privilege on the schema
// before CREATE TABLE IF NOT EXISTS looks for the table, and a role without
// that privilege must still be able to open an up-to-date schema.
func schemaVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var exists bool
	err := tx.QueryRow(ctx,
		`SELECT to_regclass('layover_schema_version') IS NOT NULL`).Scan(&exists)
	if err != nil {
		return 0, fmt.Errorf("find schema version table: %w", err)
	}
	if !exists {
		if err := createVersionTable(ctx, tx); err != nil {
			return 0, err
		}
	}
	var version int
	err = tx.QueryRow(ctx,
		`SELECT coalesce(max(version), 0) FROM layover_schema_version`).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return version, nil
}

func createVersionTable(ctx context.Context, tx pgx.Tx) error {
	const create = `
		CREATE TABLE layover_schema_version (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`
	if _, err := tx.Exec(ctx, create); err != nil {
		return fmt.Errorf("create schema version table: %w", err)
	}
	return nil
}

func apply(ctx context.Context, tx pgx.Tx, m migration) error {
	// Exec without arguments uses the simple query protocol, which accepts
	// several statements in one string.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("apply migration %s: %w", m.name, err)
	}
	const record = `INSERT INTO layover_schema_version (version, name) VALUES ($1, $2)`
	if _, err := tx.Exec(ctx, record, m.version, m.name); err != nil {
		return fmt.Errorf("record migration %s: %w", m.name, err)
	}
	return nil
}
