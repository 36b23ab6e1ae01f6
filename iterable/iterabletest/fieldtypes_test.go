package iterabletest

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// validationErrors returns params.validationErrors of a 400 body.
func validationErrors(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	if body["code"] != "RequestFieldsTypesMismatched" {
		t.Fatalf("code = %v, want RequestFieldsTypesMismatched; body %v", body["code"], body)
	}
	params, _ := body["params"].(map[string]any)
	errs, ok := params["validationErrors"].(map[string]any)
	if !ok {
		t.Fatalf("params.validationErrors missing: %v", params)
	}
	return errs
}

func TestFieldTypeMismatchRejectsRequest(t *testing.T) {
	sim, url := startTest(t, Options{})
	postEvents(t, url, DefaultAPIKey, event("eventName", "purchase", "userId", "u",
		"dataFields", map[string]any{"amount": 5}))

	status, body := postEvents(t, url, DefaultAPIKey,
		event("eventName", "purchase", "userId", "u", "dataFields", map[string]any{"color": "red"}),
		event("eventName", "purchase", "userId", "u", "dataFields", map[string]any{"amount": "five"}),
	)
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	errs := validationErrors(t, body)
	entry, ok := errs["purchase:::amount"].(map[string]any)
	if !ok {
		t.Fatalf("validationErrors lack purchase:::amount: %v", errs)
	}
	checks := map[string]any{
		"expectedType": "long", "category": "event", "offendingValue": "five", "_type": "UnexpectedType",
	}
	for key, want := range checks {
		if entry[key] != want {
			t.Errorf("%s = %v, want %v", key, entry[key], want)
		}
	}
	incoming, _ := entry["incomingTypes"].([]any)
	if len(incoming) == 0 || incoming[0] != "string" {
		t.Errorf("incomingTypes = %v, want string first", incoming)
	}
	if got := sim.EventCount(DefaultAPIKey); got != 1 {
		t.Errorf("EventCount = %d, want 1 because the rejected request stores nothing", got)
	}

	// The rejected request must not have fixed the type of "color".
	status, body = postEvents(t, url, DefaultAPIKey, event("eventName", "purchase", "userId", "u",
		"dataFields", map[string]any{"color": 7}))
	if status != http.StatusOK {
		t.Errorf("color as number after rejected request: status %d, body %v", status, body)
	}
}

func TestFieldTypeMismatchWithinOneRequest(t *testing.T) {
	_, url := startTest(t, Options{})
	status, body := postEvents(t, url, DefaultAPIKey,
		event("eventName", "e", "userId", "u", "dataFields", map[string]any{"flag": true}),
		event("eventName", "e", "userId", "u", "dataFields", map[string]any{"flag": "yes"}),
	)
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	if _, ok := validationErrors(t, body)["e:::flag"]; !ok {
		t.Errorf("validationErrors lack e:::flag")
	}
}

func TestRejectedRequestCreatesNoUsers(t *testing.T) {
	_, url := startTest(t, Options{Projects: []Project{{APIKey: "k", Type: UserIDBased}}})
	postEvents(t, url, "k", event("eventName", "e", "userId", "old", "dataFields", map[string]any{"n": 1}))
	status, _ := postEvents(t, url, "k",
		event("eventName", "e", "userId", "fresh", "email", "fresh@example.com"),
		event("eventName", "e", "userId", "old", "dataFields", map[string]any{"n": "x"}),
	)
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	_, body := postEvents(t, url, "k", event("eventName", "e", "email", "fresh@example.com"))
	if got := listOf(t, body, "failedUpdates.notFoundEmails"); !slices.Equal(got, []string{"fresh@example.com"}) {
		t.Errorf("notFoundEmails = %v, want the user of the rejected request to be unknown", got)
	}
}

func TestFieldTypeCompatibility(t *testing.T) {
	cases := []struct {
		name         string
		first, later any
		ok           bool
	}{
		{"long into double", 1.5, 2, true},
		{"double into long", 2, 1.5, false},
		{"string into string", "a", "b", true},
		{"boolean into string", "a", false, false},
		{"object into array", []any{1}, map[string]any{"k": 1}, false},
		{"array into array", []any{1}, []any{"x"}, true},
		{"null leaves type", 1, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startTest(t, Options{})
			postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
				"dataFields", map[string]any{"f": tc.first}))
			status, body := postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
				"dataFields", map[string]any{"f": tc.later}))
			if got := status == http.StatusOK; got != tc.ok {
				t.Errorf("status %d, body %v, want ok=%v", status, body, tc.ok)
			}
		})
	}
}

func TestFieldTypesArePerEventName(t *testing.T) {
	_, url := startTest(t, Options{})
	status, body := postEvents(t, url, DefaultAPIKey,
		event("eventName", "a", "userId", "u", "dataFields", map[string]any{"f": 1}),
		event("eventName", "b", "userId", "u", "dataFields", map[string]any{"f": "text"}),
	)
	if status != http.StatusOK {
		t.Errorf("status %d, body %v", status, body)
	}
}

func TestNestedFieldTypes(t *testing.T) {
	_, url := startTest(t, Options{})
	_, body := postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
		"dataFields", map[string]any{"address": map[string]any{"zip": 12345}, "tags": []any{"a"}}))
	want := []string{"address", "address.zip", "tags"}
	if got := listOf(t, body, "createdFields"); !slices.Equal(got, want) {
		t.Errorf("createdFields = %v, want %v", got, want)
	}
	status, body := postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
		"dataFields", map[string]any{"address": map[string]any{"zip": "12345-678"}}))
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	if _, ok := validationErrors(t, body)["e:::address.zip"]; !ok {
		t.Errorf("validationErrors lack e:::address.zip: %v", body)
	}
	_, body = postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
		"dataFields", map[string]any{"address": map[string]any{"zip": 1}}))
	if got := listOf(t, body, "createdFields"); len(got) != 0 {
		t.Errorf("createdFields for known fields = %v, want []", got)
	}
}

func TestDetectDatesSetsDateType(t *testing.T) {
	_, url := startTest(t, Options{DetectDates: true})
	postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
		"dataFields", map[string]any{"when": "2024-03-01 10:00:00 +00:00", "label": "x"}))
	status, body := postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
		"dataFields", map[string]any{"when": "soon", "label": "2024-03-01"}))
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	errs := validationErrors(t, body)
	entry, _ := errs["e:::when"].(map[string]any)
	if entry["expectedType"] != "date" {
		t.Errorf("e:::when = %v, want expectedType date", entry)
	}
	if _, ok := errs["e:::label"]; ok {
		t.Errorf("a date string into a string field should be accepted: %v", errs)
	}
}

func TestIsDateFormats(t *testing.T) {
	dates := map[string]bool{
		"2024-03-01":                    true,
		"2024-03-01 10:00:00":           true,
		"2024-03-01 10:00:00 +02:00":    true,
		"2024-03-01T10:00:00.123+02:00": true,
		"2024-03-01T10:00:00.123Z":      true,
		"2024-03-01T10:00:00Z":          false,
		"2024-03-01 10:00:00.123":       false,
		"1234":                          false,
		"2024-13-01":                    false,
		"hello":                         false,
	}
	for s, want := range dates {
		if got := isDate(s); got != want {
			t.Errorf("isDate(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestOffendingValueKeepsNumber(t *testing.T) {
	_, url := startTest(t, Options{})
	postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u", "dataFields", map[string]any{"s": "x"}))
	_, body := postEvents(t, url, DefaultAPIKey, event("eventName", "e", "userId", "u",
		"dataFields", map[string]any{"s": 42}))
	entry, _ := validationErrors(t, body)["e:::s"].(map[string]any)
	if entry["offendingValue"] != json.Number("42") {
		t.Errorf("offendingValue = %#v, want the number 42", entry["offendingValue"])
	}
}
