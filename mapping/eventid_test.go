package mapping

import (
	"regexp"
	"strings"
	"testing"

	"github.com/layover-dev/layover/mparticle"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,512}$`)

// idOf maps a one-event batch and returns the event's id.
func idOf(t *testing.T, batchFields, data string) string {
	t.Helper()
	body := `{"user_identities": {"customer_id": "c"}` + batchFields + `, "events": [{"event_type": "screen_view", "data": ` + data + `}]}`
	r := mapOne(t, Config{}, body)
	if !idPattern.MatchString(r.Event.ID) {
		t.Errorf("ID %q is not 1 to 512 letters, digits and hyphens", r.Event.ID)
	}
	return r.Event.ID
}

func TestEventIDSources(t *testing.T) {
	long := strings.Repeat("a", 513)
	tests := []struct {
		name, data, want string
	}{
		{"uuid lower case", `{"source_message_id": "4e34bef3-d2f9-4f07-8298-4646cce292fa", "event_id": 1}`, "4e34bef3-d2f9-4f07-8298-4646cce292fa"},
		{"uuid upper case kept", `{"source_message_id": "84E1B361-A282-4ADF-8A6D-1D31E6DD5A9E"}`, "84E1B361-A282-4ADF-8A6D-1D31E6DD5A9E"},
		{"uuid trimmed", `{"source_message_id": "  84E1B361-A282-4ADF-8A6D-1D31E6DD5A9E\n"}`, "84E1B361-A282-4ADF-8A6D-1D31E6DD5A9E"},
		{"safe text kept", `{"source_message_id": "msg-0042"}`, "msg-0042"},
		{"number source id", `{"source_message_id": 12345}`, "12345"},
		{"blank source id", `{"source_message_id": "  ", "event_id": 77}`, "mpe-77"},
		{"event id", `{"event_id": 6558165446704400378}`, "mpe-6558165446704400378"},
		{"negative event id", `{"event_id": "-6518616552181726857"}`, "mpe-n6518616552181726857"},
		{"min int64", `{"event_id": -9223372036854775808}`, "mpe-n9223372036854775808"},
		{"512 bytes kept", `{"source_message_id": "` + long[:512] + `"}`, long[:512]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := idOf(t, "", tt.data); got != tt.want {
				t.Errorf("ID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEventIDHashesUnsafeText(t *testing.T) {
	for _, source := range []string{"aute nisi", "521e0ae1-164d-  4495-8e41-95be88fa7e42", "a_b", "ünï", strings.Repeat("b", 513)} {
		got := idOf(t, "", `{"source_message_id": "`+source+`"}`)
		if !strings.HasPrefix(got, prefixHashedID) || len(got) != len(prefixHashedID)+64 {
			t.Errorf("source %q: ID = %q, want %s and a SHA-256", source, got, prefixHashedID)
		}
		if again := idOf(t, "", `{"source_message_id": "`+source+`"}`); again != got {
			t.Errorf("source %q: ID %q then %q, want the same", source, got, again)
		}
	}
	if idOf(t, "", `{"source_message_id": "a b"}`) == idOf(t, "", `{"source_message_id": "a c"}`) {
		t.Errorf("different source ids hashed to one id")
	}
}

func TestEventIDContentHash(t *testing.T) {
	base := idOf(t, `, "mpid": 1`, `{"screen_name": "Home", "timestamp_unixtime_ms": 1000}`)
	if !strings.HasPrefix(base, prefixContentID) {
		t.Fatalf("ID = %q, want a content hash", base)
	}
	same := idOf(t, `, "mpid": 1`, `{ "screen_name":"Home",  "timestamp_unixtime_ms":1000 }`)
	if same != base {
		t.Errorf("whitespace changed the content hash: %q vs %q", same, base)
	}
	for name, variant := range map[string][2]string{
		"mpid":      {`, "mpid": 2`, `{"screen_name": "Home", "timestamp_unixtime_ms": 1000}`},
		"name":      {`, "mpid": 1`, `{"screen_name": "Away", "timestamp_unixtime_ms": 1000}`},
		"timestamp": {`, "mpid": 1`, `{"screen_name": "Home", "timestamp_unixtime_ms": 2000}`},
		"data":      {`, "mpid": 1`, `{"screen_name": "Home", "timestamp_unixtime_ms": 1000, "x": 1}`},
	} {
		if got := idOf(t, variant[0], variant[1]); got == base {
			t.Errorf("changing %s kept the id %q", name, got)
		}
	}
}

func TestContentHashSeparatesParts(t *testing.T) {
	b := &mparticle.Batch{}
	first := &mparticle.Event{Type: "ab", EventName: "c"}
	second := &mparticle.Event{Type: "a", EventName: "bc"}
	if contentHash(b, first) == contentHash(b, second) {
		t.Errorf("parts ab|c and a|bc hash the same")
	}
}

func TestCreatedAt(t *testing.T) {
	tests := []struct {
		name       string
		batch, evt string
		want       int64
	}{
		{"event time", `1712000000000`, `1712000001999`, 1712000001},
		{"string event time", `null`, `"1712000002500"`, 1712000002},
		{"batch fallback", `1712000003000`, `null`, 1712000003},
		{"negative event time falls back", `1712000004000`, `-27715666`, 1712000004},
		{"tiny time falls back", `1712000005000`, `999`, 1712000005},
		{"neither", `null`, `"soon"`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"user_identities": {"customer_id": "c"}, "timestamp_unixtime_ms": ` + tt.batch +
				`, "events": [{"event_type": "session_start", "data": {"timestamp_unixtime_ms": ` + tt.evt + `}}]}`
			r := mapOne(t, Config{}, body)
			if r.Event.CreatedAt != tt.want {
				t.Errorf("CreatedAt = %d, want %d", r.Event.CreatedAt, tt.want)
			}
		})
	}
}
