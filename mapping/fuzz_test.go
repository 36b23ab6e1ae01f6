package mapping

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/layover-dev/layover/mparticle"
)

// FuzzDecodeMap checks that decoding and mapping any body never panics and
// keeps the Result contract. There is one Result per event and a reason for
// every Skip and Reject. Forwarded events meet Iterable's id and name rules
// and encode with json.Marshal. The seeds are the testdata of this package
// and of mparticle.
func FuzzDecodeMap(f *testing.F) {
	var paths []string
	for _, pattern := range []string{"testdata/*.json", "../mparticle/testdata/*.json"} {
		matches, err := filepath.Glob(filepath.FromSlash(pattern))
		if err != nil {
			f.Fatal(err)
		}
		paths = append(paths, matches...)
	}
	for _, path := range paths {
		body, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, seed := range []string{
		`{}`, `[]`, `null`, `{"events": [null, 1, "x", {}]}`,
		`{"user_identities": "x", "events": [{"event_type": "commerce_event", "data": {"product_action": []}}]}`,
		`{"mpid": "1e40", "events": [{"event_type": "session_end", "data": {"session_duration_ms": "-9e18"}}]}`,
	} {
		f.Add([]byte(seed))
	}

	mappers := make([]*Mapper, 0, 3)
	for _, cfg := range []Config{
		{},
		allEnabled(ScalarAttributes),
		{ProjectType: ProjectUserID, UserIDSource: "mpid", Events: allEnabled(StringAttributes).Events},
	} {
		m, err := New(cfg)
		if err != nil {
			f.Fatal(err)
		}
		mappers = append(mappers, m)
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := mparticle.Decode(body)
		if err != nil {
			return
		}
		for _, m := range mappers {
			checkContract(t, b, m.Map(b))
		}
	})
}

func checkContract(t *testing.T, b *mparticle.Batch, results []Result) {
	if len(results) != len(b.Events) {
		t.Fatalf("results = %d, events = %d", len(results), len(b.Events))
	}
	for i, r := range results {
		if r.Index != i {
			t.Errorf("results[%d].Index = %d", i, r.Index)
		}
		switch r.Outcome {
		case Forward:
			if !idPattern.MatchString(r.Event.ID) {
				t.Errorf("results[%d]: ID %q breaks Iterable's id rules", i, r.Event.ID)
			}
			if r.Event.EventName == "" {
				t.Errorf("results[%d]: forwarded without an event name", i)
			}
			if r.Event.Email == "" && r.Event.UserID == "" {
				t.Errorf("results[%d]: forwarded without an identity", i)
			}
			if _, err := json.Marshal(r.Event); err != nil {
				t.Errorf("results[%d]: json.Marshal: %v", i, err)
			}
		case Skip, Reject:
			if r.Reason == "" {
				t.Errorf("results[%d]: %s without a reason", i, r.Outcome)
			}
		default:
			t.Errorf("results[%d]: outcome %v", i, r.Outcome)
		}
	}
}
