package mparticle

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureDir returns the folder of real mParticle payloads. They have no
// open licence, so they live outside the repository in shared/fixtures
// beside it, and the test is skipped when that folder is absent.
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		candidate := filepath.Join(dir, "shared", "fixtures", "mparticle")
		if info, err := os.Stat(candidate); err == nil && info.IsDir() {
			return candidate
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no shared/fixtures/mparticle folder above the package: the mParticle sample payloads are not in this checkout")
		}
		dir = parent
	}
}

func TestFixturesDecode(t *testing.T) {
	dir := fixtureDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no .json fixtures in %s", dir)
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(name, "event-") {
				e, err := DecodeEvent(body)
				if err != nil {
					t.Fatalf("DecodeEvent: %v", err)
				}
				if e.Type == "" {
					t.Errorf("event_type is empty")
				}
				return
			}
			b, err := Decode(body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(b.Events) == 0 {
				t.Errorf("no events decoded")
			}
		})
	}
}

func TestFixtureNDJSONLinesDecode(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(fixtureDir(t), "batches-outbound-s3.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	scanner := bufio.NewScanner(bytes.NewReader(body))
	lines := 0
	for scanner.Scan() {
		line := bytes.TrimSpace(scanner.Bytes())
		if len(line) == 0 {
			continue
		}
		lines++
		b, err := Decode(line)
		if err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
		if len(b.Events) != 1 {
			t.Errorf("line %d: events = %d, want 1", lines, len(b.Events))
		}
		if b.Identity("customer_id") == "" {
			t.Errorf("line %d: no customer_id from the identity array", lines)
		}
		if !b.Events[0].TimestampMs.Valid {
			t.Errorf("line %d: string timestamp_unixtime_ms not parsed", lines)
		}
		if !b.Events[0].EventID.Valid {
			t.Errorf("line %d: string event_id not parsed", lines)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != 2 {
		t.Errorf("lines = %d, want 2", lines)
	}
}

func TestFixtureMixedBatchNegativeIDs(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(fixtureDir(t), "batch-mixed-all-types-ios.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if b.MPID != (Int64{-7636538281262557000, true}) {
		t.Errorf("MPID = %+v", b.MPID)
	}
	if len(b.Events) != 14 {
		t.Errorf("events = %d, want 14", len(b.Events))
	}
	if b.Events[8].Type != TypeBreadcrumb {
		t.Errorf("event 8 Type = %q, want breadcrumb", b.Events[8].Type)
	}
	if b.Events[8].SourceMessageID != "" {
		t.Errorf("breadcrumb SourceMessageID = %q, want empty for null", b.Events[8].SourceMessageID)
	}
}

func TestFixtureMediaStringNumbers(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(fixtureDir(t), "event-media-custom-event-string-numbers.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := DecodeEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	if e.EventID != (Int64{-109840007014118971, true}) {
		t.Errorf("EventID = %+v", e.EventID)
	}
	if e.SessionID != (Int64{-8572887793551346848, true}) {
		t.Errorf("SessionID = %+v", e.SessionID)
	}
	if e.CustomEventType != "media" {
		t.Errorf("CustomEventType = %q", e.CustomEventType)
	}
}
