package jsonvalid

import (
	"encoding/json"
	"strings"
	"testing"
)

var cases = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `.5`, `+1`,
	`true`, `false`, `null`, `tru`, `nul`, `True`, `truex`,
	`{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`,
	`"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\/"`, `"a` + "\t" + `b"`, "\"caf\xc3\xa9\"", "\"\xff\"",
	` {"a" : [ 1 , { "b" : null } ] } `, `{} {}`, `[]]`, `{"a":{"b":{"c":[]}}}`,
	"\ufeff{}", `"unterminated`, `[1, 2`, `{"a":`, `-01`, `1.0e+`, `0x10`,
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, want %v as encoding/json", c, got, want)
		}
	}
}

func TestValidMaxDepth(t *testing.T) {
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closer := "]"
			if open != "[" {
				closer = "}"
			}
			doc := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closer, depth))
			if got, want := Valid(doc), json.Valid(doc); got != want {
				t.Errorf("Valid of %d levels of %s = %v, want %v as encoding/json", depth, open, got, want)
			}
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := Valid(data), json.Valid(data); got != want {
			t.Errorf("Valid(%q) = %v, want %v as encoding/json", data, got, want)
		}
	})
}

// benchmarkBody is a 7 KB object shaped like an mParticle batch.
func benchmarkBody() []byte {
	var b strings.Builder
	b.WriteString(`{"mpid":-4521783302183924001,"environment":"production","events":[`)
	for i := range 12 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"event_type":"screen_view","data":{"screen_name":"Product Detail",` +
			`"timestamp_unixtime_ms":1764835203000,"location":{"latitude":51.5072,"longitude":-0.1276},` +
			`"custom_attributes":{"referrer":"push","items_shown":"12","title":"caf\u00e9 \"menu\""},` +
			`"device_current_state":{"battery_level":0.87,"gps_state":true,"data_connection_type":"wifi"},` +
			`"source_message_id":"3f9c2a10-5b7e-4c1d-9a8f-0d1e2f3a4b03","session_id":8825516342909913002}}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkValid(b *testing.B) {
	body := benchmarkBody()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !Valid(body) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkEncodingJSONValid(b *testing.B) {
	body := benchmarkBody()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !json.Valid(body) {
			b.Fatal("invalid")
		}
	}
}
