package iterabletest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestSuccessResponseHasEveryList(t *testing.T) {
	_, url := startTest(t, Options{})
	status, body := postEvents(t, url, DefaultAPIKey, event("eventName", "open", "userId", "u1"))
	if status != http.StatusOK {
		t.Fatalf("status %d, body %v", status, body)
	}
	if s, f := counts(t, body); s != "1" || f != "0" {
		t.Errorf("successCount %s failCount %s, want 1 and 0", s, f)
	}
	for _, path := range []string{
		"createdFields", "filteredOutFields", "disallowedEventNames", "invalidEmails", "invalidUserIds",
		"failedUpdates.invalidEmails", "failedUpdates.invalidUserIds",
		"failedUpdates.notFoundEmails", "failedUpdates.notFoundUserIds",
		"failedUpdates.forgottenEmails", "failedUpdates.forgottenUserIds",
	} {
		if got := listOf(t, body, path); len(got) != 0 {
			t.Errorf("%s = %v, want []", path, got)
		}
	}
}

func TestBadJSONBodyRejectsWholeRequest(t *testing.T) {
	sim, url := startTest(t, Options{})
	status, body := postEvents(t, url, DefaultAPIKey,
		event("eventName", "ok", "userId", "u1", "createdAt", 1700000000),
		event("eventName", "bad", "userId", "u2", "createdAt", "1700000000"),
	)
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	if body["code"] != "BadJsonBody" {
		t.Errorf("code = %v, want BadJsonBody", body["code"])
	}
	if body["msg"] != "[/api/events/trackBulk] Invalid JSON body" {
		t.Errorf("msg = %v", body["msg"])
	}
	params, _ := body["params"].(map[string]any)
	if params["obj.events[1].createdAt"] != "Number value expected" {
		t.Errorf("params = %v, want obj.events[1].createdAt: Number value expected", params)
	}
	if len(params) != 1 {
		t.Errorf("params has %d entries, want 1: %v", len(params), params)
	}
	if got := sim.EventCount(DefaultAPIKey); got != 0 {
		t.Errorf("EventCount = %d, want 0 because the request was rejected", got)
	}
}

func TestBadJSONBodyCases(t *testing.T) {
	_, url := startTest(t, Options{RateLimit: -1})
	longID := strings.Repeat("a", 513)
	cases := []struct {
		name  string
		body  string
		param string
	}{
		{"not JSON", `{"events":[`, "obj"},
		{"trailing data", `{"events":[]} {}`, "obj"},
		{"root not object", `[]`, "obj"},
		{"events missing", `{}`, "obj.events"},
		{"events null", `{"events":null}`, "obj.events"},
		{"events not array", `{"events":{}}`, "obj.events"},
		{"event not object", `{"events":[1]}`, "obj.events[0]"},
		{"eventName missing", `{"events":[{"userId":"u"}]}`, "obj.events[0].eventName"},
		{"eventName empty", `{"events":[{"eventName":"","userId":"u"}]}`, "obj.events[0].eventName"},
		{"eventName number", `{"events":[{"eventName":5,"userId":"u"}]}`, "obj.events[0].eventName"},
		{"email number", `{"events":[{"eventName":"a","email":5}]}`, "obj.events[0].email"},
		{"userId number", `{"events":[{"eventName":"a","userId":5}]}`, "obj.events[0].userId"},
		{"no identifier", `{"events":[{"eventName":"a"}]}`, "obj.events[0]"},
		{"createdAt fraction", `{"events":[{"eventName":"a","userId":"u","createdAt":1.5}]}`,
			"obj.events[0].createdAt"},
		{"createdAt exponent", `{"events":[{"eventName":"a","userId":"u","createdAt":1e9}]}`,
			"obj.events[0].createdAt"},
		{"createdAt overflow", `{"events":[{"eventName":"a","userId":"u","createdAt":9223372036854775808}]}`,
			"obj.events[0].createdAt"},
		{"id with underscore", `{"events":[{"eventName":"a","userId":"u","id":"a_b"}]}`, "obj.events[0].id"},
		{"id empty", `{"events":[{"eventName":"a","userId":"u","id":""}]}`, "obj.events[0].id"},
		{"id too long", `{"events":[{"eventName":"a","userId":"u","id":"` + longID + `"}]}`, "obj.events[0].id"},
		{"id number", `{"events":[{"eventName":"a","userId":"u","id":7}]}`, "obj.events[0].id"},
		{"dataFields string", `{"events":[{"eventName":"a","userId":"u","dataFields":"x"}]}`,
			"obj.events[0].dataFields"},
		{"campaignId string", `{"events":[{"eventName":"a","userId":"u","campaignId":"1"}]}`,
			"obj.events[0].campaignId"},
		{"createNewFields string", `{"events":[{"eventName":"a","userId":"u","createNewFields":"yes"}]}`,
			"obj.events[0].createNewFields"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, data, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, tc.body)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", status, data)
			}
			body := decodeObject(t, data)
			if body["code"] != "BadJsonBody" {
				t.Errorf("code = %v, want BadJsonBody", body["code"])
			}
			params, _ := body["params"].(map[string]any)
			if _, ok := params[tc.param]; !ok {
				t.Errorf("params %v lack %q", params, tc.param)
			}
		})
	}
}

func TestValidOptionalFieldsAccepted(t *testing.T) {
	sim, url := startTest(t, Options{})
	id512 := strings.Repeat("A-9", 170) + "ab"
	status, data, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, `{"events":[{"eventName":"a","userId":"u",`+
		`"id":"`+id512+`","createdAt":1700000000,"campaignId":12,"templateId":34,`+
		`"createNewFields":true,"dataFields":{"x":1},"email":null,"unknownField":1}]}`)
	if status != http.StatusOK {
		t.Fatalf("status %d, body %s", status, data)
	}
	events := sim.Events(DefaultAPIKey)
	if len(events) != 1 {
		t.Fatalf("stored %d events, want 1", len(events))
	}
	e := events[0]
	if e.ID != id512 || e.CreatedAt != 1700000000 || e.CampaignID != 12 || e.TemplateID != 34 {
		t.Errorf("stored %+v", e)
	}
}

func TestEmptyEventListSucceeds(t *testing.T) {
	_, url := startTest(t, Options{})
	status, body := postEvents(t, url, DefaultAPIKey)
	if status != http.StatusOK {
		t.Fatalf("status %d, body %v", status, body)
	}
	if s, f := counts(t, body); s != "0" || f != "0" {
		t.Errorf("successCount %s failCount %s, want 0 and 0", s, f)
	}
}

func TestBodyLimitAnswers413(t *testing.T) {
	_, url := startTest(t, Options{MaxBodyBytes: 1024})
	big := `{"events":[{"eventName":"a","userId":"u","dataFields":{"x":"` + strings.Repeat("y", 2000) + `"}}]}`
	status, data, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, big)
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", status)
	}
	if body := decodeObject(t, data); body["code"] != "BatchTooLarge" {
		t.Errorf("code = %v, want BatchTooLarge", body["code"])
	}

	// Without Content-Length the limit applies while reading.
	req, _ := http.NewRequest(http.MethodPost, url+"/api/events/trackBulk",
		struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Api-Key", DefaultAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body: status %d, want 413", resp.StatusCode)
	}
}

func TestDefaultBodyLimitIsFourMB(t *testing.T) {
	_, url := startTest(t, Options{RateLimit: -1})
	prefix := `{"events":[{"eventName":"a","userId":"u","dataFields":{"x":"`
	suffix := `"}}]}`
	fill := DefaultMaxBodyBytes - len(prefix) - len(suffix)
	exact := prefix + strings.Repeat("y", fill) + suffix
	if status, data, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, exact); status != http.StatusOK {
		t.Errorf("4 MB body: status %d, body %.200s", status, data)
	}
	over := prefix + strings.Repeat("y", fill+1) + suffix
	if status, _, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, over); status != http.StatusRequestEntityTooLarge {
		t.Errorf("4 MB + 1 byte body: status %d, want 413", status)
	}
}

func TestEmailProjectNeedsKnownUsers(t *testing.T) {
	sim, url := startTest(t, Options{Projects: []Project{{
		APIKey: "k", Type: EmailBased, Users: []User{{Email: "known@example.com", UserID: "known-id"}},
	}}})
	status, body := postEvents(t, url, "k",
		event("eventName", "a", "email", "known@example.com"),
		event("eventName", "a", "email", "new@example.com"),
		event("eventName", "a", "userId", "known-id"),
		event("eventName", "a", "userId", "other-id"),
		event("eventName", "a", "email", "not-an-email"),
		event("eventName", "a", "email", "known@example.com", "userId", "other-id"),
	)
	if status != http.StatusOK {
		t.Fatalf("status %d, body %v", status, body)
	}
	if s, f := counts(t, body); s != "3" || f != "3" {
		t.Errorf("successCount %s failCount %s, want 3 and 3", s, f)
	}
	wantLists := map[string][]string{
		"failedUpdates.notFoundEmails":  {"new@example.com"},
		"failedUpdates.notFoundUserIds": {"other-id"},
		"failedUpdates.invalidEmails":   {"not-an-email"},
		"invalidEmails":                 {"not-an-email"},
	}
	for path, want := range wantLists {
		if got := listOf(t, body, path); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}

	if err := sim.AddUser("k", User{Email: "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, body = postEvents(t, url, "k", event("eventName", "a", "email", "new@example.com"))
	if s, _ := counts(t, body); s != "1" {
		t.Errorf("after AddUser: successCount %s, want 1", s)
	}
}

func TestUserIDProjectCreatesUsers(t *testing.T) {
	sim, url := startTest(t, Options{Projects: []Project{{APIKey: "k", Type: UserIDBased}}})
	_, body := postEvents(t, url, "k",
		event("eventName", "a", "userId", "new-user", "email", "new@example.com"),
		event("eventName", "a", "email", "new@example.com"),
		event("eventName", "a", "email", "stranger@example.com"),
	)
	if s, f := counts(t, body); s != "2" || f != "1" {
		t.Errorf("successCount %s failCount %s, want 2 and 1", s, f)
	}
	if got := listOf(t, body, "failedUpdates.notFoundEmails"); !slices.Equal(got, []string{"stranger@example.com"}) {
		t.Errorf("notFoundEmails = %v", got)
	}
	events := sim.Events("k")
	if len(events) != 2 || events[1].UserID != "new-user" {
		t.Errorf("second event should belong to new-user: %+v", events)
	}
}

func TestHybridProjectCreatesUsersByEitherID(t *testing.T) {
	sim, url := startTest(t, Options{Projects: []Project{{APIKey: "k", Type: Hybrid}}})
	_, body := postEvents(t, url, "k",
		event("eventName", "a", "email", "only@example.com"),
		event("eventName", "a", "userId", "only-id"),
	)
	if s, f := counts(t, body); s != "2" || f != "0" {
		t.Errorf("successCount %s failCount %s, want 2 and 0", s, f)
	}
	if got := sim.EventCount("k"); got != 2 {
		t.Errorf("EventCount = %d, want 2", got)
	}
}

func TestMalformedUserIDs(t *testing.T) {
	_, url := startTest(t, Options{})
	bad := []string{"", strings.Repeat("x", 53), "caf\u00e9", "tab\there", "trailing "}
	var events []map[string]any
	for _, id := range bad {
		events = append(events, event("eventName", "a", "userId", id))
	}
	events = append(events, event("eventName", "a", "userId", strings.Repeat("x", 52)))
	_, body := postEvents(t, url, DefaultAPIKey, events...)
	if s, f := counts(t, body); s != "1" || f != "5" {
		t.Errorf("successCount %s failCount %s, want 1 and 5", s, f)
	}
	if got := listOf(t, body, "failedUpdates.invalidUserIds"); !slices.Equal(got, bad) {
		t.Errorf("invalidUserIds = %q, want %q", got, bad)
	}
}

func TestForgottenUsersFail(t *testing.T) {
	sim, url := startTest(t, Options{Projects: []Project{{
		APIKey: "k", Forgotten: []User{{Email: "gone@example.com"}},
	}}})
	postEvents(t, url, "k", event("eventName", "a", "userId", "leaver", "email", "leaver@example.com"))
	if err := sim.ForgetUser("k", User{UserID: "leaver"}); err != nil {
		t.Fatal(err)
	}
	if got := sim.EventCount("k"); got != 0 {
		t.Errorf("EventCount after ForgetUser = %d, want 0", got)
	}
	_, body := postEvents(t, url, "k",
		event("eventName", "a", "email", "gone@example.com"),
		event("eventName", "a", "userId", "leaver"),
		event("eventName", "a", "email", "leaver@example.com"),
	)
	if s, f := counts(t, body); s != "0" || f != "3" {
		t.Errorf("successCount %s failCount %s, want 0 and 3", s, f)
	}
	want := []string{"gone@example.com", "leaver@example.com"}
	if got := listOf(t, body, "failedUpdates.forgottenEmails"); !slices.Equal(got, want) {
		t.Errorf("forgottenEmails = %v, want %v", got, want)
	}
	if got := listOf(t, body, "failedUpdates.forgottenUserIds"); !slices.Equal(got, []string{"leaver"}) {
		t.Errorf("forgottenUserIds = %v, want [leaver]", got)
	}
}

func TestDisallowedEventNamesFail(t *testing.T) {
	sim, url := startTest(t, Options{Projects: []Project{{APIKey: "k", DisallowedEventNames: []string{"spam"}}}})
	if err := sim.DisallowEventName("k", "noise"); err != nil {
		t.Fatal(err)
	}
	_, body := postEvents(t, url, "k",
		event("eventName", "spam", "userId", "u"),
		event("eventName", "spam", "userId", "u"),
		event("eventName", "noise", "userId", "u"),
		event("eventName", "Spam", "userId", "u"),
	)
	if s, f := counts(t, body); s != "1" || f != "3" {
		t.Errorf("successCount %s failCount %s, want 1 and 3", s, f)
	}
	if got := listOf(t, body, "disallowedEventNames"); !slices.Equal(got, []string{"spam", "noise"}) {
		t.Errorf("disallowedEventNames = %v, want [spam noise]", got)
	}
}

func TestUpsertByID(t *testing.T) {
	sim, url := startTest(t, Options{})
	postEvents(t, url, DefaultAPIKey, event("eventName", "a", "userId", "u", "id", "evt-1",
		"dataFields", map[string]any{"n": 1}))
	postEvents(t, url, DefaultAPIKey,
		event("eventName", "a", "userId", "u", "id", "evt-1", "dataFields", map[string]any{"n": 2}),
		event("eventName", "b", "userId", "u"),
		event("eventName", "b", "userId", "u"),
	)
	events := sim.Events(DefaultAPIKey)
	if len(events) != 3 {
		t.Fatalf("stored %d events, want 3: %+v", len(events), events)
	}
	if n := events[0].DataFields["n"]; n != json.Number("2") {
		t.Errorf("evt-1 n = %v, want 2 from the second send", n)
	}
	if events[1].ID == "" || events[1].ID == events[2].ID || !validEventID(events[1].ID) {
		t.Errorf("generated ids %q and %q should be distinct valid ids", events[1].ID, events[2].ID)
	}
}

func TestCreatedAtDefaultsToReceiveTime(t *testing.T) {
	sim, url := startTest(t, Options{})
	postEvents(t, url, DefaultAPIKey, event("eventName", "a", "userId", "u"))
	e := sim.Events(DefaultAPIKey)[0]
	if e.UpdatedAt.Unix()-e.CreatedAt > 1 {
		t.Errorf("CreatedAt %d, want the receive time %d", e.CreatedAt, e.UpdatedAt.Unix())
	}
}

func TestIdentifierRules(t *testing.T) {
	emails := map[string]bool{
		"a@example.com": true, "first.last+tag@sub.example.co": true,
		"": false, "no-at": false, "@example.com": false, "a@b": false, "a@@b.com": false,
		"a b@example.com": false, "a@example..com": false, "a@-example.com": false, "é@example.com": false,
	}
	for email, want := range emails {
		if got := validEmail(email); got != want {
			t.Errorf("validEmail(%q) = %v, want %v", email, got, want)
		}
	}
	ids := map[string]bool{"abc-123": true, "ABC": true, "a_b": false, "a b": false, "": false}
	for id, want := range ids {
		if got := validEventID(id); got != want {
			t.Errorf("validEventID(%q) = %v, want %v", id, got, want)
		}
	}
}
