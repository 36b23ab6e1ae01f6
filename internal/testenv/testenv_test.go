package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPostgresURLFromEnv(t *testing.T) {
	t.Setenv(PostgresURLEnv, "postgres://u@127.0.0.1:1/db")
	if got := PostgresURL(t); got != "postgres://u@127.0.0.1:1/db" {
		t.Errorf("PostgresURL = %q, want the variable's value", got)
	}
}

func TestSQSEndpointFromEnv(t *testing.T) {
	t.Setenv(SQSEndpointEnv, "http://127.0.0.1:2")
	if got := SQSEndpoint(t); got != "http://127.0.0.1:2" {
		t.Errorf("SQSEndpoint = %q, want the variable's value", got)
	}
}

func TestLookupSkipsWhenUnset(t *testing.T) {
	t.Setenv(PostgresURLEnv, "")
	skipped := true
	t.Run("inner", func(t *testing.T) {
		PostgresURL(t)
		skipped = false
	})
	if !skipped {
		t.Error("PostgresURL did not skip with the variable unset")
	}
}

func TestModuleRootFindsGoMod(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	got, ok := moduleRoot(deep)
	if !ok {
		t.Fatalf("moduleRoot(%s) found no go.mod", deep)
	}
	if got != root {
		t.Errorf("moduleRoot = %s, want %s", got, root)
	}
}

func TestSharedDirIsBesideRepo(t *testing.T) {
	dir := SharedDir(t)
	if !filepath.IsAbs(dir) {
		t.Errorf("SharedDir = %s, want an absolute path", dir)
	}
	if filepath.Base(dir) != "shared" {
		t.Errorf("SharedDir = %s, want a folder named shared", dir)
	}
}
