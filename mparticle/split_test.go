package mparticle

import (
	"bytes"
	"encoding/json"
	"testing"
)

// splitCases are JSON values whose split must match json.Unmarshal's.
var splitCases = []string{
	`{}`,
	`{ }`,
	`[]`,
	`[ ]`,
	`{"a":1,"b":"x","c":null,"d":true,"e":false}`,
	` { "a" : [ 1 , { "b" : "}" } ] , "c" : "\"]" } `,
	`{"a":1,"a":2}`,
	`{"\u0065vent_type":"screen_view","k\"ey":"v"}`,
	`{"caf\u00e9":"x","café":"y"}`,
	"{\"bad\xffutf8\":1}",
	`{"n":-1.5e+10,"m":0,"s":"a\\b\n"}`,
	`[1,"two",{"three":3},[4],null,true]`,
	`{"nested":{"deep":{"deeper":[[[]]]}}}`,
}

func TestSplitMatchesUnmarshal(t *testing.T) {
	for _, c := range splitCases {
		checkSplit(t, []byte(c))
	}
}

// FuzzSplit checks that the one-pass split of any valid JSON object or
// array gives the members that json.Unmarshal gives.
func FuzzSplit(f *testing.F) {
	for _, c := range splitCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		checkSplit(t, raw)
	})
}

// checkSplit checks the split of raw without and with a bracket index of
// raw, so that lookups at an offset past leading whitespace are covered.
func checkSplit(t *testing.T, raw []byte) {
	t.Helper()
	idx := indexBrackets(raw)
	if idx == nil {
		t.Fatalf("indexBrackets(%q) = nil for valid JSON", raw)
	}
	checkSplitWith(t, raw, nil)
	checkSplitWith(t, raw, idx)
}

func checkSplitWith(t *testing.T, raw []byte, idx *brackets) {
	t.Helper()
	trimmed := trimJSONSpace(raw)
	if len(trimmed) == 0 {
		return
	}
	switch trimmed[0] {
	case '{':
		var want map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &want); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", raw, err)
		}
		members, ok := splitObject(trimmed, idx)
		got := object{members: members}
		if !ok {
			t.Fatalf("splitObject(%q) failed", raw)
		}
		if names := got.sortedKeys(); len(names) != len(want) {
			t.Fatalf("splitObject(%q) = %d distinct names, want %d", raw, len(names), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got.get(k), v) {
				t.Errorf("splitObject(%q).get(%q) = %q, want %q", raw, k, got.get(k), v)
			}
		}
	case '[':
		var want []json.RawMessage
		if err := json.Unmarshal(trimmed, &want); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", raw, err)
		}
		got, ok := splitArray(trimmed, idx)
		if !ok {
			t.Fatalf("splitArray(%q) failed", raw)
		}
		if len(got) != len(want) {
			t.Fatalf("splitArray(%q) = %d elements, want %d", raw, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("splitArray(%q)[%d] = %q, want %q", raw, i, got[i], want[i])
			}
		}
	}
}

func TestScalarTextPlainAndEscaped(t *testing.T) {
	for raw, want := range map[string]string{
		`"plain"`:       "plain",
		`"a\"b"`:        `a"b`,
		`"caf\u00e9"`:   "café",
		`"café"`:        "café",
		`""`:            "",
		`"unfinished`:   "",
		"\"tab\there\"": "",
	} {
		if got := scalarText([]byte(raw)); got != want {
			t.Errorf("scalarText(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestSkipStringBackslashRuns(t *testing.T) {
	cases := []struct {
		raw  string
		want int // index just past the string; 0 when unterminated
	}{
		{`"plain" rest`, 7},
		{`"a\"b" rest`, 6},
		{`"a\\" rest`, 5},
		{`"a\\\"" rest`, 7},
		{`"\\\\" rest`, 6},
		{`"" rest`, 2},
		{`"a\"`, 0},
		{`"unterminated`, 0},
	}
	for _, c := range cases {
		end, ok := skipString([]byte(c.raw), 0)
		if c.want == 0 {
			if ok {
				t.Errorf("skipString(%s) = %d, want no end", c.raw, end)
			}
			continue
		}
		if !ok || end != c.want {
			t.Errorf("skipString(%s) = %d, %v; want %d", c.raw, end, ok, c.want)
		}
	}
}

func TestBracketsEnd(t *testing.T) {
	body := []byte(` {"a":[1,{"b":"}]"}],"c":{}} `)
	idx := indexBrackets(body)
	if idx == nil {
		t.Fatal("indexBrackets returned nil for valid JSON")
	}
	value := body[6:20] // [1,{"b":"}]"}]
	if end, ok := idx.end(value, 0); !ok || end != len(value) {
		t.Errorf("end of the array = %d, %v; want %d, true", end, ok, len(value))
	}
	if end, ok := idx.end(value, 3); !ok || end != 13 {
		t.Errorf("end of the inner object = %d, %v; want 13, true", end, ok)
	}
	copied := append([]byte(nil), value...)
	if _, ok := idx.end(copied, 0); ok {
		t.Error("end found a copy of the body in the index")
	}
	if _, ok := idx.end(value, 1); ok {
		t.Error("end found a bracket where the body has a digit")
	}
	if indexBrackets([]byte(`{"a":[}`)) != nil {
		t.Error("indexBrackets accepted unmatched brackets")
	}
}
