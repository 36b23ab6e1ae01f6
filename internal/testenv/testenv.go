// Package testenv gives tests the servers and files that the test script
// (bash scripts/test.sh) provides, and skips a test when one is missing.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Environment variables that scripts/test.sh exports.
const (
	// PostgresURLEnv contains the URL of the throwaway PostgreSQL database.
	PostgresURLEnv = "LAYOVER_TEST_POSTGRES_URL"
	// SQSEndpointEnv contains the base URL of the SQS emulator.
	SQSEndpointEnv = "LAYOVER_TEST_SQS_ENDPOINT"
)

// PostgresURL returns the PostgreSQL URL from LAYOVER_TEST_POSTGRES_URL, or
// skips the test when the variable is not set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return lookup(t, PostgresURLEnv, "PostgreSQL")
}

// SQSEndpoint returns the SQS emulator URL from LAYOVER_TEST_SQS_ENDPOINT, or
// skips the test when the variable is not set.
func SQSEndpoint(t testing.TB) string {
	t.Helper()
	return lookup(t, SQSEndpointEnv, "the SQS emulator")
}

func lookup(t testing.TB, name, server string) string {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		t.Skipf("%s is not set; run bash scripts/test.sh to start %s and run this test",
			name, server)
	}
	return value
}

// SharedDir returns the absolute path of the shared folder that sits beside
// the repository root, which is the nearest folder at or above the working
// directory that contains go.mod. It skips the test when shared is absent.
func SharedDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Skipf("shared folder not found: get working directory: %v", err)
	}
	root, ok := moduleRoot(wd)
	if !ok {
		t.Skipf("shared folder not found: no go.mod in %s or its parents", wd)
	}
	dir := filepath.Join(filepath.Dir(root), "shared")
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		t.Skipf("shared folder %s is absent; tests that read its fixtures need it beside the repository", dir)
	}
	return dir
}

// moduleRoot walks up from dir to the first folder that contains go.mod.
func moduleRoot(dir string) (string, bool) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
