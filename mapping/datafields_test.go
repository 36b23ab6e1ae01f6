package mapping

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestStringAttributes(t *testing.T) {
	r := mapOne(t, Config{Events: map[string]Rule{"screen_view": {IncludeContext: boolPointer(false)}}},
		`{"user_identities": {"customer_id": "c"}, "events": [{"event_type": "screen_view", "data": {"custom_attributes": {
			"text": "hello",
			"int": 42,
			"big": 123456789012345678901234567890,
			"decimal": 1.50,
			"exp": 2e3,
			"yes": true,
			"no": false,
			"null": null,
			"list": ["a", 1, true],
			"object": {"b": 2, "a": "<x&y>"},
			"": "blank key",
			"eventType": "reserved",
			"eventUpdatedAt": 1,
			"itblInternal": {}
		}}}]}`)
	want := map[string]any{
		"text":    "hello",
		"int":     "42",
		"big":     "123456789012345678901234567890",
		"decimal": "1.50",
		"exp":     "2e3",
		"yes":     "true",
		"no":      "false",
		"list":    `["a",1,true]`,
		"object":  `{"a":"<x&y>","b":2}`,
	}
	if !reflect.DeepEqual(r.Event.DataFields, want) {
		t.Errorf("DataFields =\n%#v\nwant\n%#v", r.Event.DataFields, want)
	}
}

func TestScalarAttributes(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`"true"`, true},
		{`"FALSE"`, false},
		{`true`, true},
		{`"42"`, int64(42)},
		{`42`, int64(42)},
		{`"-7"`, int64(-7)},
		{`"2147483648"`, "2147483648"},
		{`"1.5"`, json.Number("1.5")},
		{`1.25`, json.Number("1.25")},
		{`"5.0"`, "5.0"},
		{`"1e3"`, "1e3"},
		{`"NaN"`, "NaN"},
		{`"abc"`, "abc"},
		{`""`, ""},
		{`["x"]`, `["x"]`},
	}
	for _, tt := range tests {
		r := mapOne(t, Config{AttributeTypes: ScalarAttributes}, `{"user_identities": {"customer_id": "c"}, "events": [
			{"event_type": "screen_view", "data": {"custom_attributes": {"v": `+tt.in+`}}}]}`)
		if got := r.Event.DataFields["v"]; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("scalars %s = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestScalarAttributesDropNull(t *testing.T) {
	r := mapOne(t, Config{AttributeTypes: ScalarAttributes}, `{"user_identities": {"customer_id": "c"}, "events": [
		{"event_type": "screen_view", "data": {"custom_attributes": {"v": null}}}]}`)
	if _, ok := r.Event.DataFields["v"]; ok {
		t.Errorf("null attribute sent as %#v", r.Event.DataFields["v"])
	}
}

func TestAttributeLists(t *testing.T) {
	const body = `{"user_identities": {"customer_id": "c"}, "events": [{"event_type": "screen_view",
		"data": {"custom_attributes": {"a": "1", "b": "2", "c": "3"}}}]}`
	tests := []struct {
		name string
		rule Rule
		want []string
	}{
		{"all by default", Rule{}, []string{"a", "b", "c"}},
		{"include", Rule{IncludeAttributes: []string{"a", "c", "z"}}, []string{"a", "c"}},
		{"exclude", Rule{ExcludeAttributes: []string{"b"}}, []string{"a", "c"}},
		{"both lists", Rule{IncludeAttributes: []string{"a", "b"}, ExcludeAttributes: []string{"c"}}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.IncludeContext = boolPointer(false)
			r := mapOne(t, Config{Events: map[string]Rule{"screen_view": tt.rule}}, body)
			var got []string
			for _, name := range []string{"a", "b", "c"} {
				if _, ok := r.Event.DataFields[name]; ok {
					got = append(got, name)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("attributes sent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestContextFields(t *testing.T) {
	const body = `{"mpid": -1, "environment": "production", "user_identities": {"customer_id": "c"},
		"device_info": {"platform": "Android"}, "application_info": {"application_version": "2.0", "application_build_number": 200},
		"events": [{"event_type": "session_start", "data": {"session_id": 9223372036854775807}}]}`
	r := mapOne(t, Config{}, body)
	want := map[string]any{
		"platform":    "Android",
		"appVersion":  "2.0",
		"appBuild":    "200",
		"environment": "production",
		"sessionId":   "9223372036854775807",
		"mpid":        "-1",
	}
	if !reflect.DeepEqual(r.Event.DataFields, want) {
		t.Errorf("DataFields = %#v, want %#v", r.Event.DataFields, want)
	}
	off := mapOne(t, Config{Events: map[string]Rule{"session_start": {IncludeContext: boolPointer(false)}}}, body)
	if off.Event.DataFields != nil {
		t.Errorf("DataFields without context = %#v, want nil", off.Event.DataFields)
	}
}

func TestFixedFieldsWinOverAttributes(t *testing.T) {
	r := mapOne(t, Config{}, `{"user_identities": {"customer_id": "c"}, "device_info": {"platform": "iOS"}, "events": [
		{"event_type": "session_end", "data": {"session_duration_ms": 10, "custom_attributes": {"platform": "spoof", "sessionDurationMs": "long"}}}]}`)
	if r.Event.DataFields["platform"] != "iOS" {
		t.Errorf("platform = %#v, want the context value", r.Event.DataFields["platform"])
	}
	if r.Event.DataFields["sessionDurationMs"] != int64(10) {
		t.Errorf("sessionDurationMs = %#v, want the int64 type field", r.Event.DataFields["sessionDurationMs"])
	}
}

func TestDoubleValue(t *testing.T) {
	tests := map[json.Number]json.Number{"123": "123.0", "-4": "-4.0", "14.99": "14.99", "1e3": "1e3", "2.5E-1": "2.5E-1"}
	for in, want := range tests {
		got, ok := doubleValue(in)
		if !ok {
			t.Errorf("doubleValue(%q) not ok", in)
		}
		if got != want {
			t.Errorf("doubleValue(%q) = %q, want %q", in, got, want)
		}
	}
	if _, ok := doubleValue(""); ok {
		t.Errorf("doubleValue(\"\") ok, want false")
	}
}
