package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/layover-dev/layover/internal/testenv"
)

// mparticleBodies returns the documented mParticle payloads from the shared
// fixtures, one per JSON file and one per line of each NDJSON file, keyed by
// a name for subtests. It skips the test when the fixtures are absent.
func mparticleBodies(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join(testenv.SharedDir(t), "fixtures", "mparticle")
	bodies := map[string][]byte{}

	jsonFiles, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatalf("list fixtures: %v", err)
	}
	for _, path := range jsonFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		bodies[filepath.Base(path)] = data
	}

	ndjsonFiles, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		t.Fatalf("list fixtures: %v", err)
	}
	for _, path := range ndjsonFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			bodies[fmt.Sprintf("%s/line%d", filepath.Base(path), i+1)] = line
		}
	}
	if len(bodies) == 0 {
		t.Skipf("no mParticle fixtures in %s", dir)
	}
	return bodies
}

func TestEventBatchStoresFixturesUnchanged(t *testing.T) {
	for name, body := range mparticleBodies(t) {
		for _, gzipped := range []bool{false, true} {
			label := name
			if gzipped {
				label += "/gzip"
			}
			t.Run(label, func(t *testing.T) {
				q := &fakeQueue{}
				h := newTestHandler(t, q, testOptions(nil))
				header := []string{"Authorization", basicAuth("mparticle", testKey),
					"Content-Type", "application/json"}
				sentBody := body
				if gzipped {
					sentBody = gzipBytes(t, body)
					header = append(header, "Content-Encoding", "gzip")
				}

				rec := serve(h, newBatchRequest(sentBody, header...))

				if rec.Code != http.StatusOK {
					t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
				}
				sent := q.sent()
				if len(sent) != 1 {
					t.Fatalf("queue got %d Send calls, want 1", len(sent))
				}
				if !bytes.Equal(sent[0], body) {
					t.Errorf("stored body differs from the fixture (%d bytes stored, %d sent)",
						len(sent[0]), len(body))
				}
			})
		}
	}
}
