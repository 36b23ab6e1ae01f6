package sqs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/layover-dev/layover/queue"
)

func TestValidBody(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"ascii json", `{"events":[]}`, true},
		{"tab, line feed, carriage return", "a\tb\nc\r", true},
		{"umlaut and check mark", "Köln ✓", true},
		{"emoji above U+FFFF", "\U0001F680", true},
		{"replacement character", "\uFFFD", true},
		{"last private use before U+FFFE", "\uFFFD\uE000", true},
		{"NUL", "a\x00b", false},
		{"control character", "a\x1fb", false},
		{"U+FFFE", "\uFFFE", false},
		{"U+FFFF", "\uFFFF", false},
		{"invalid UTF-8 byte", "a\xffb", false},
		{"UTF-8 encoded surrogate", "\xed\xa0\x80", false},
		{"truncated sequence", "\xe2\x9c", false},
	}
	for _, tc := range tests {
		if got := validBody([]byte(tc.body)); got != tc.want {
			t.Errorf("validBody(%s %q) = %v, want %v", tc.name, tc.body, got, tc.want)
		}
	}
}

func TestEncodeBodyRoundTrip(t *testing.T) {
	for _, raw := range [][]byte{[]byte("plain"), []byte("nul \x00 and \xff")} {
		out := encodeBody(raw, false)
		if out.encoded == validBody(raw) {
			t.Errorf("encodeBody(%q).encoded = %v, want %v", raw, out.encoded, !validBody(raw))
		}
		m := types.Message{Body: aws.String(out.body), MessageAttributes: out.attributes(origin{}, 1<<20)}
		got, err := decodeBody(m)
		if err != nil {
			t.Fatalf("decodeBody(%q): %v", raw, err)
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("round trip of %q returned %q", raw, got)
		}
	}
}

func TestAttributesOmitOriginWhenFull(t *testing.T) {
	body := encodeBody(bytes.Repeat([]byte("a"), 100), false)
	o := origin{id: queue.NewMessageID()}
	if attrs := body.attributes(o, 1000); attrs[idAttribute].StringValue == nil {
		t.Error("id attribute missing although the message has room for it")
	}
	if attrs := body.attributes(o, 110); attrs != nil {
		t.Errorf("attributes = %v for a message with no room, want none", attrs)
	}
}

func TestPlanPartsKeepsSmallBody(t *testing.T) {
	body := []byte(`{"events":[{"a":1}]}`)
	parts, err := planParts(body, 1024, false)
	if err != nil {
		t.Fatalf("planParts: %v", err)
	}
	if len(parts) != 1 || parts[0].body != string(body) || parts[0].encoded {
		t.Errorf("planParts = %+v, want the body unchanged as one part", parts)
	}
}

// testBatch returns a batch with fields around the events array and n events
// of about size bytes each, some of them with characters SQS rejects.
func testBatch(n, size int) ([]byte, []json.RawMessage) {
	events := make([]json.RawMessage, n)
	for i := range events {
		text := strings.Repeat("x", size)
		if i%3 == 1 {
			text = "invalid UTF-8 \xff, U+FFFE \uFFFE " + text // SQS rejects both
		}
		events[i] = fmt.Appendf(nil, `{ "event_type": "custom_event", "n": %d, "text": "%s" }`, i, text)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"mpid": "-8421651487215645474", "events": [`)
	for i, e := range events {
		if i > 0 {
			buf.WriteString(",\n  ")
		}
		buf.Write(e)
	}
	buf.WriteString(`], "environment":"production", "<&>": null}`)
	return buf.Bytes(), events
}

func TestPlanPartsSplitsByEvents(t *testing.T) {
	body, events := testBatch(40, 300)
	const limit = 2000
	for _, force := range []bool{false, true} {
		parts, err := planParts(body, limit, force)
		if err != nil {
			t.Fatalf("planParts(force=%v): %v", force, err)
		}
		if len(parts) < 2 {
			t.Fatalf("planParts(force=%v) returned %d part, want several", force, len(parts))
		}
		var got []json.RawMessage
		for i, p := range parts {
			if p.size() > limit {
				t.Errorf("part %d is %d bytes as SQS counts them, over the limit of %d", i, p.size(), limit)
			}
			if force && !p.encoded {
				t.Errorf("part %d is not encoded although force is set", i)
			}
			got = append(got, checkPart(t, i, p.raw)...)
		}
		if len(got) != len(events) {
			t.Fatalf("parts contain %d events, want %d", len(got), len(events))
		}
		for i := range events {
			if !bytes.Equal(got[i], events[i]) {
				t.Errorf("event %d = %s, want %s", i, got[i], events[i])
			}
		}
	}
}

// checkPart checks that a part is a JSON object with the other fields of
// testBatch, and returns its events.
func checkPart(t *testing.T, i int, raw []byte) []json.RawMessage {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("part %d is not a JSON object: %v", i, err)
	}
	want := map[string]string{"mpid": `"-8421651487215645474"`, "environment": `"production"`, "<&>": "null"}
	for key, value := range want {
		if string(fields[key]) != value {
			t.Errorf("part %d: field %q = %s, want %s", i, key, fields[key], value)
		}
	}
	var events []json.RawMessage
	if err := json.Unmarshal(fields["events"], &events); err != nil {
		t.Fatalf("part %d: events is not an array: %v", i, err)
	}
	return events
}

func TestPlanPartsTooLarge(t *testing.T) {
	big, _ := testBatch(1, 3000)
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", strings.Repeat("a", 3000)},
		{"JSON array", "[" + strings.Repeat(`"a",`, 1000) + `"a"]`},
		{"no events field", `{"data":"` + strings.Repeat("a", 3000) + `"}`},
		{"events not an array", `{"events":"` + strings.Repeat("a", 3000) + `"}`},
		{"empty events", `{"events":[],"data":"` + strings.Repeat("a", 3000) + `"}`},
		{"two events fields", `{"events":[1],"events":[2],"data":"` + strings.Repeat("a", 3000) + `"}`},
		{"one event over the limit", string(big)},
	}
	for _, tc := range tests {
		_, err := planParts([]byte(tc.body), 2000, false)
		if !errors.Is(err, queue.ErrTooLarge) {
			t.Errorf("planParts(%s) error = %v, want queue.ErrTooLarge", tc.name, err)
		}
	}
}

func TestFailedEntriesIgnoresStaleReceipts(t *testing.T) {
	entries := []types.BatchResultErrorEntry{
		{Id: aws.String("0"), Code: aws.String("ReceiptHandleIsInvalid")},
		{Id: aws.String("1"), Code: aws.String("AWS.SimpleQueueService.MessageNotInflight")},
		{Id: aws.String("2"), Code: aws.String("InternalError"), Message: aws.String("try again")},
	}
	errs := failedEntries("delete message batch", entries)
	if len(errs) != 1 {
		t.Fatalf("failedEntries returned %d errors, want 1: %v", len(errs), errs)
	}
	if msg := errs[0].Error(); !strings.Contains(msg, "entry 2") || !strings.Contains(msg, "InternalError") {
		t.Errorf("error = %q, want it to name entry 2 and its code", msg)
	}
}

func TestRegionFromURL(t *testing.T) {
	tests := map[string]string{
		"https://sqs.eu-west-1.amazonaws.com/123456789012/layover":        "eu-west-1",
		"https://us-east-2.queue.amazonaws.com/123456789012/layover":      "us-east-2",
		"http://sqs.us-east-1.localhost:4566/000000000000/layover":        "us-east-1",
		"http://127.0.0.1:4566/000000000000/layover":                      "",
		"https://vpce-1a2b.sqs.eu-central-1.vpce.amazonaws.com/1/layover": "",
	}
	for url, want := range tests {
		if got := regionFromURL(url); got != want {
			t.Errorf("regionFromURL(%s) = %q, want %q", url, got, want)
		}
	}
}
