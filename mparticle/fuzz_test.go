package mparticle

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode checks the tolerance promised by Decode on any input: it never
// panics, and it fails only when the body is not one JSON object or its
// last "events" member is present and neither an array nor null. Every
// element of a top-level "events" array becomes one Event. The seeds are
// this package's testdata and the committed corpus in testdata/fuzz.
func FuzzDecode(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range paths {
		body, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Decode(body)
		trimmed := trimJSONSpace(bytes.TrimPrefix(trimJSONSpace(body), utf8BOM))
		isObject := len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
		if !isObject {
			if !errors.Is(err, ErrNotObject) {
				t.Fatalf("Decode of a body that is not a JSON object: error = %v, want ErrNotObject", err)
			}
			return
		}
		events, present := eventsMember(t, trimmed)
		if present && events != nil && !isArray(events) {
			if !errors.Is(err, ErrEventsNotArray) {
				t.Fatalf("Decode with events of type %T: error = %v, want ErrEventsNotArray", events, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode failed on a JSON object with valid events: %v", err)
		}
		if elements, ok := events.([]any); ok && len(b.Events) != len(elements) {
			t.Errorf("Decode returned %d events, the events array has %d", len(b.Events), len(elements))
		}
	})
}

// eventsMember decodes the top-level "events" member of a valid JSON object
// with encoding/json, and reports whether the member is present. For a
// repeated member, the last one counts, as in encoding/json.
func eventsMember(t *testing.T, body []byte) (any, bool) {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		t.Fatalf("unmarshal members of a valid object: %v", err)
	}
	raw, ok := members["events"]
	if !ok {
		return nil, false
	}
	// UseNumber keeps a number beyond float64's range from failing the decode.
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var events any
	if err := decoder.Decode(&events); err != nil {
		t.Fatalf("unmarshal a valid events member: %v", err)
	}
	return events, true
}

func isArray(v any) bool {
	_, ok := v.([]any)
	return ok
}

// FuzzAttributes checks that the fast attribute decoder returns what
// encoding/json returns for every valid object.
func FuzzAttributes(f *testing.F) {
	f.Add([]byte(`{"plan":"pro","step":3,"ok":true,"none":null,"n":-1.5e3,"list":[1,"a"],"o":{"k":2}}`))
	f.Add([]byte(`{"dup":1,"dup":"last","esc\u00e9":"caf\u00e9 \"q\"","bad":"\xff"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = trimJSONSpace(raw)
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			return
		}
		o := object{members: []member{{name: []byte("attrs"), value: raw}}}
		got := o.attributes("attrs")
		want := decodeAttributes(raw)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("attributes(%s)\n got %#v\nwant %#v", raw, got, want)
		}
	})
}

// FuzzParseInt64 checks that ParseInt64's fast path for plain integers
// returns what the general path returns.
func FuzzParseInt64(f *testing.F) {
	for _, seed := range []string{`0`, `-0`, `"17"`, `01`, `"007"`, `9223372036854775807`,
		`-9223372036854775808`, `9223372036854775808`, `"-"`, ` 12 `, `1e3`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, ok := parsePlainInt(trimJSONSpace(raw))
		if !ok {
			return
		}
		if want := parseInt64Text(raw); want != (Int64{Value: n, Valid: true}) {
			t.Errorf("fast path of ParseInt64(%q) = %d, general path = %+v", raw, n, want)
		}
	})
}
