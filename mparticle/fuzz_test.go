package mparticle

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode checks the tolerance promised by Decode on any input: it never
// panics, it fails only when the body is not one JSON object, and every
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
		if err != nil {
			if isObject {
				t.Fatalf("Decode failed on a JSON object: %v", err)
			}
			return
		}
		if !isObject {
			t.Fatalf("Decode accepted a body that is not a JSON object")
		}
		if want, ok := eventsLength(t, trimmed); ok && len(b.Events) != want {
			t.Errorf("Decode returned %d events, the events array has %d", len(b.Events), want)
		}
	})
}

// eventsLength returns the number of elements of the top-level "events"
// member when it is an array. For a repeated member, the last one counts,
// as in encoding/json.
func eventsLength(t *testing.T, body []byte) (int, bool) {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		t.Fatalf("unmarshal members of a valid object: %v", err)
	}
	raw := trimJSONSpace(members["events"])
	if len(raw) == 0 || raw[0] != '[' {
		return 0, false
	}
	var elements []json.RawMessage
	if err := json.Unmarshal(raw, &elements); err != nil {
		t.Fatalf("unmarshal a valid events array: %v", err)
	}
	return len(elements), true
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
