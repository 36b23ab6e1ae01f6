package iterable

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

func TestAppendEventMatchesMarshal(t *testing.T) {
	events := []Event{
		{EventName: "Screen View"},
		{Email: "a@example.com", UserID: "u-1", EventName: "Session Start", ID: "id-1", CreatedAt: 1764800000,
			DataFields: map[string]any{"platform": "iOS", "sessionDurationMs": int64(10), "isFirstRun": true}},
		{UserID: "ü-2", EventName: "名前 <b>&\"quoted\"\\", DataFields: map[string]any{
			"z": nil, "a": json.Number("123.0"), "n": 1.5, "i": 7, "nested": map[string]any{"k": []any{"x", 2.0}},
			"ctl": "tab\there", "sep": "line\u2028break", "bad": "\xff\xfe", "": "empty key", "<key>": "v",
		}},
		{EventName: "neg", CreatedAt: -5, DataFields: map[string]any{"big": int64(math.MaxInt64), "f": false}},
		{EventName: "empty fields", DataFields: map[string]any{}},
	}
	for _, ev := range events {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendEvent(nil, &ev)
		if err != nil {
			t.Fatalf("AppendEvent(%q): %v", ev.EventName, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("AppendEvent(%q)\n got %s\nwant %s", ev.EventName, got, want)
		}
	}
}

func TestAppendEventKeepsPrefix(t *testing.T) {
	got, err := AppendEvent([]byte("prefix,"), &Event{EventName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `prefix,{"eventName":"x"}` {
		t.Errorf("AppendEvent = %s", got)
	}
}

func TestAppendEventRejectsNaN(t *testing.T) {
	_, err := AppendEvent(nil, &Event{EventName: "x", DataFields: map[string]any{"v": math.NaN()}})
	if err == nil {
		t.Error("AppendEvent encoded NaN, want the error json.Marshal returns")
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("a@example.com", "u", "Screen View", "k", "v", int64(1764800000))
	f.Add("", "", "<&>", "\x00", "\xff", int64(-1))
	f.Fuzz(func(t *testing.T, email, userID, name, key, value string, createdAt int64) {
		ev := Event{Email: email, UserID: userID, EventName: name, CreatedAt: createdAt,
			DataFields: map[string]any{key: value, key + "2": createdAt}}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := Event{Email: "a@example.com", UserID: "u-1", EventName: "Screen View", ID: "0190a0b0-0000-7000-8000-000000000000",
		CreatedAt: 1764800000, DataFields: map[string]any{
			"screenName": "Checkout", "platform": "iOS", "appVersion": "4.2.0", "mpid": "-7636538281262557000",
			"sessionId": "1234567890", "deviceModel": "iPhone15,2", "osVersion": "17.1", "isFirstRun": false,
		}}
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendEvent", func(b *testing.B) {
		for b.Loop() {
			if _, err := AppendEvent(nil, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
