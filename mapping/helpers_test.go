package mapping

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/layover-dev/layover/mparticle"
)

// decodeBatch decodes a batch body and fails the test on an error.
func decodeBatch(t testing.TB, body []byte) *mparticle.Batch {
	t.Helper()
	b, err := mparticle.Decode(body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return b
}

// readTestdata returns the bytes of testdata/name.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// newMapper returns a Mapper for cfg and fails the test when cfg is invalid.
func newMapper(t testing.TB, cfg Config) *Mapper {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// mapBody decodes body and maps it with cfg.
func mapBody(t testing.TB, cfg Config, body string) []Result {
	t.Helper()
	return newMapper(t, cfg).Map(decodeBatch(t, []byte(body)))
}

// mapOne maps a body that holds one event and returns its Result.
func mapOne(t testing.TB, cfg Config, body string) Result {
	t.Helper()
	results := mapBody(t, cfg, body)
	if len(results) != 1 {
		t.Fatalf("results = %d, want 1", len(results))
	}
	return results[0]
}

// enable returns a config with the given rule keys turned on.
func enable(keys ...string) Config {
	cfg := Config{Events: map[string]Rule{}}
	for _, key := range keys {
		cfg.Events[key] = Rule{Enabled: boolPointer(true)}
	}
	return cfg
}

// wantOutcome fails the test unless r has the outcome want.
func wantOutcome(t testing.TB, r Result, want Outcome) {
	t.Helper()
	if r.Outcome != want {
		t.Fatalf("event %d (%s): outcome = %s (%s), want %s", r.Index, r.EventType, r.Outcome, r.Reason, want)
	}
}

// fixtureDir returns the folder of real mParticle payloads. They have no
// open licence, so they stay outside the repository, and the test is
// skipped when no parent folder has shared/fixtures/mparticle.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir := findFixtureDir()
	if dir == "" {
		t.Skip("no shared/fixtures/mparticle folder above the package: the mParticle sample payloads are not in this checkout")
	}
	return dir
}

// findFixtureDir walks up from the package folder to the first folder that
// has shared/fixtures/mparticle, and returns "" when there is none.
func findFixtureDir() string {
	dir, err := filepath.Abs(".")
	if err != nil {
		return ""
	}
	for {
		candidate := filepath.Join(dir, "shared", "fixtures", "mparticle")
		if info, err := os.Stat(candidate); err == nil && info.IsDir() {
			return candidate
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// readFixture decodes one real mParticle payload.
func readFixture(t testing.TB, name string) *mparticle.Batch {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return decodeBatch(t, body)
}
