package mapping

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const identified = `"mpid": 99, "user_identities": {"customer_id": "u-99"}`

func TestMapOneResultPerEvent(t *testing.T) {
	results := mapBody(t, Config{}, `{`+identified+`, "events": [
		{"event_type": "screen_view", "data": {}},
		{"event_type": "custom_event", "data": {"event_name": "x"}},
		{"event_type": "mystery"},
		null,
		{"event_type": "session_end", "data": {}}
	]}`)
	if len(results) != 5 {
		t.Fatalf("results = %d, want 5", len(results))
	}
	for i, r := range results {
		if r.Index != i {
			t.Errorf("results[%d].Index = %d", i, r.Index)
		}
		if r.Outcome < Forward || r.Outcome > Reject {
			t.Errorf("results[%d].Outcome = %v", i, r.Outcome)
		}
		if r.Outcome != Forward && r.Reason == "" {
			t.Errorf("results[%d] is %s without a reason", i, r.Outcome)
		}
	}
}

func TestMapNilAndEmptyBatches(t *testing.T) {
	m := newMapper(t, Config{})
	if got := m.Map(nil); got != nil {
		t.Errorf("Map(nil) = %v", got)
	}
	for _, body := range []string{`{}`, `{"events": null}`, `{"events": []}`} {
		if got := m.Map(decodeBatch(t, []byte(body))); len(got) != 0 {
			t.Errorf("Map(%s) = %v, want no results", body, got)
		}
	}
}

func TestScreenViewName(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"screen_name", `{"screen_name": "Cart", "event_name": "ignored"}`, "Cart"},
		{"event_name only", `{"event_name": "Settings"}`, "Settings"},
		{"blank screen_name", `{"screen_name": " ", "event_name": "Settings"}`, "Settings"},
		{"neither", `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mapOne(t, Config{}, `{`+identified+`, "events": [{"event_type": "screen_view", "data": `+tt.data+`}]}`)
			wantOutcome(t, r, Forward)
			if r.Event.EventName != "Screen View" {
				t.Errorf("EventName = %q", r.Event.EventName)
			}
			got, _ := r.Event.DataFields["screenName"].(string)
			if got != tt.want {
				t.Errorf("screenName = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSessionEvents(t *testing.T) {
	results := mapBody(t, Config{}, `{`+identified+`, "events": [
		{"event_type": "session_start", "data": {"session_id": 5}},
		{"event_type": "session_end", "data": {"session_duration_ms": "1500"}},
		{"event_type": "session_end", "data": {"session_duration_ms": null}}
	]}`)
	for _, r := range results {
		wantOutcome(t, r, Forward)
	}
	if results[0].Event.EventName != "Session Start" {
		t.Errorf("EventName = %q", results[0].Event.EventName)
	}
	if results[1].Event.EventName != "Session End" {
		t.Errorf("EventName = %q", results[1].Event.EventName)
	}
	if got := results[1].Event.DataFields["sessionDurationMs"]; got != int64(1500) {
		t.Errorf("sessionDurationMs = %#v, want int64 1500", got)
	}
	if _, ok := results[2].Event.DataFields["sessionDurationMs"]; ok {
		t.Errorf("sessionDurationMs set from null")
	}
}

func TestApplicationStateTransition(t *testing.T) {
	results := mapBody(t, Config{}, `{`+identified+`, "events": [
		{"event_type": "application_state_transition", "data": {"application_transition_type": "application_initialized", "is_first_run": true, "is_upgrade": false}},
		{"event_type": "application_state_transition", "data": {"application_transition_type": "application_foreground"}}
	]}`)
	first, second := results[0], results[1]
	wantOutcome(t, first, Forward)
	if first.Event.EventName != "Application State Transition" {
		t.Errorf("EventName = %q", first.Event.EventName)
	}
	want := map[string]any{"transitionType": "application_initialized", "isFirstRun": true, "isUpgrade": false, "mpid": "99"}
	if !reflect.DeepEqual(first.Event.DataFields, want) {
		t.Errorf("DataFields = %#v, want %#v", first.Event.DataFields, want)
	}
	if _, ok := second.Event.DataFields["isFirstRun"]; ok {
		t.Errorf("isFirstRun set although absent")
	}
}

func TestCustomEventOffByDefault(t *testing.T) {
	r := mapOne(t, Config{}, `{`+identified+`, "events": [{"event_type": "custom_event", "data": {"event_name": "Tap"}}]}`)
	wantOutcome(t, r, Skip)
	if !strings.Contains(r.Reason, "native") {
		t.Errorf("Reason = %q, want the native connection named", r.Reason)
	}
}

func TestCustomEventWhenEnabled(t *testing.T) {
	r := mapOne(t, enable("custom_event"), `{`+identified+`, "events": [{"event_type": "custom_event",
		"data": {"event_name": "  Played Level ", "source_message_id": "7A7B7C7D-0000-4000-8000-0000000000FF", "event_id": 5,
		"custom_attributes": {"level": 4}}}]}`)
	wantOutcome(t, r, Forward)
	if r.Event.EventName != "  Played Level " {
		t.Errorf("EventName = %q, want the event_name as is", r.Event.EventName)
	}
	if r.Event.ID != "7A7B7C7D-0000-4000-8000-0000000000FF" {
		t.Errorf("ID = %q, want the source_message_id the native connection sends", r.Event.ID)
	}
	if r.Event.DataFields["level"] != "4" {
		t.Errorf("level = %#v", r.Event.DataFields["level"])
	}
}

func TestCustomEventWithoutNameRejected(t *testing.T) {
	r := mapOne(t, enable("custom_event"), `{`+identified+`, "events": [{"event_type": "custom_event", "data": {"event_name": " "}}]}`)
	wantOutcome(t, r, Reject)
	if !strings.Contains(r.Reason, "event_name") {
		t.Errorf("Reason = %q", r.Reason)
	}
}

func TestCommerceDefaults(t *testing.T) {
	results := newMapper(t, Config{}).Map(decodeBatch(t, readTestdata(t, "commerce.json")))
	tests := []struct {
		outcome Outcome
		name    string
	}{
		{Skip, ""},
		{Forward, "Add To Cart"},
		{Forward, "Add To Cart"},
		{Forward, "Product Action"},
		{Skip, ""},
		{Forward, "Promotion Click"},
		{Skip, ""},
		{Skip, ""},
	}
	if len(results) != len(tests) {
		t.Fatalf("results = %d, want %d", len(results), len(tests))
	}
	for i, tt := range tests {
		wantOutcome(t, results[i], tt.outcome)
		if results[i].Event.EventName != tt.name {
			t.Errorf("event %d: EventName = %q, want %q", i, results[i].Event.EventName, tt.name)
		}
	}
	if !strings.Contains(results[0].Reason, "trackPurchase") {
		t.Errorf("purchase Reason = %q", results[0].Reason)
	}
	if !strings.Contains(results[7].Reason, "no product action") {
		t.Errorf("empty commerce Reason = %q", results[7].Reason)
	}
}

func TestProductActionFields(t *testing.T) {
	results := newMapper(t, Config{}).Map(decodeBatch(t, readTestdata(t, "commerce.json")))
	got := results[1].Event.DataFields
	want := map[string]any{
		"action":       "add_to_cart",
		"totalAmount":  json.Number("12.5"),
		"currencyCode": "USD",
		"productIds":   []string{"p2"},
		"productNames": []string{"Mug"},
		"products": []map[string]any{
			{"id": "p2", "name": "Mug", "price": json.Number("6.25"), "quantity": json.Number("2.0")},
		},
		"mpid": "31",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DataFields =\n%#v\nwant\n%#v", got, want)
	}
	third := results[2].Event.DataFields
	if third["totalAmount"] != json.Number("30.0") {
		t.Errorf("whole totalAmount = %#v, want 30.0 so the field stays a double", third["totalAmount"])
	}
	if third["currencyCode"] != "EUR" {
		t.Errorf("currencyCode = %#v, want the product action's", third["currencyCode"])
	}
}

func TestPromotionAndImpressionFields(t *testing.T) {
	cfg := enable("commerce_event.impression", "commerce_event.promotion_view")
	results := newMapper(t, cfg).Map(decodeBatch(t, readTestdata(t, "commerce.json")))
	view, impression := results[4], results[6]
	wantOutcome(t, view, Forward)
	wantOutcome(t, impression, Forward)
	if view.Event.EventName != "Promotion View" {
		t.Errorf("EventName = %q", view.Event.EventName)
	}
	if got := view.Event.DataFields["promotionIds"]; !reflect.DeepEqual(got, []string{"spring"}) {
		t.Errorf("promotionIds = %#v", got)
	}
	if impression.Event.EventName != "Product Impression" {
		t.Errorf("EventName = %q", impression.Event.EventName)
	}
	if got := impression.Event.DataFields["impressionLists"]; !reflect.DeepEqual(got, []string{"Related"}) {
		t.Errorf("impressionLists = %#v", got)
	}
	if got := impression.Event.DataFields["productIds"]; !reflect.DeepEqual(got, []string{"p4"}) {
		t.Errorf("productIds = %#v", got)
	}
}

func TestUnknownPromotionActionSkipped(t *testing.T) {
	r := mapOne(t, Config{}, `{`+identified+`, "events": [{"event_type": "commerce_event", "data": {"promotion_action": {"action": "hover"}}}]}`)
	wantOutcome(t, r, Skip)
	if !strings.Contains(r.Reason, `"hover"`) {
		t.Errorf("Reason = %q", r.Reason)
	}
}

func TestProductActionNamedLikeOtherKind(t *testing.T) {
	r := mapOne(t, Config{}, `{`+identified+`, "events": [{"event_type": "commerce_event", "data": {"product_action": {"action": "impression"}}}]}`)
	wantOutcome(t, r, Forward)
	if r.Event.EventName != "Product Action" {
		t.Errorf("EventName = %q, want the fallback for unknown actions", r.Event.EventName)
	}
}

func TestOtherTypesSkippedWithReason(t *testing.T) {
	for _, kind := range []string{
		"user_attribute_change", "user_identity_change", "crash_report", "breadcrumb",
		"network_performance", "push_registration", "push_message", "push_reaction", "opt_out",
		"uninstall", "first_run", "pre_attribution", "profile", "validation_result",
	} {
		r := mapOne(t, Config{}, `{`+identified+`, "events": [{"event_type": "`+kind+`", "data": {}}]}`)
		wantOutcome(t, r, Skip)
		if !strings.Contains(r.Reason, "off by default because") {
			t.Errorf("%s: Reason = %q", kind, r.Reason)
		}
	}
}

func TestUnknownTypesSkipped(t *testing.T) {
	for _, kind := range []string{"alias_request", "unknown", "commerce_event.add_to_cart", "", "SCREEN_VIEW"} {
		r := mapOne(t, Config{}, `{`+identified+`, "events": [{"event_type": "`+kind+`", "data": {}}]}`)
		wantOutcome(t, r, Skip)
		if r.EventType != kind {
			t.Errorf("EventType = %q, want %q", r.EventType, kind)
		}
	}
}

func TestEnabledOtherTypeSendsAttributes(t *testing.T) {
	r := mapOne(t, enable("crash_report"), `{`+identified+`, "events": [{"event_type": "crash_report", "data": {"custom_attributes": {"build": "beta"}}}]}`)
	wantOutcome(t, r, Forward)
	if r.Event.EventName != "Crash Report" {
		t.Errorf("EventName = %q", r.Event.EventName)
	}
	if r.Event.DataFields["build"] != "beta" {
		t.Errorf("build = %#v", r.Event.DataFields["build"])
	}
}

func TestDisabledByConfigReason(t *testing.T) {
	cfg := Config{Events: map[string]Rule{"screen_view": {Enabled: boolPointer(false)}}}
	r := mapOne(t, cfg, `{`+identified+`, "events": [{"event_type": "screen_view", "data": {}}]}`)
	wantOutcome(t, r, Skip)
	if !strings.Contains(r.Reason, "events.screen_view.enabled") {
		t.Errorf("Reason = %q, want the config field named", r.Reason)
	}
}

func TestRenamedEvent(t *testing.T) {
	cfg := Config{Events: map[string]Rule{"session_start": {Name: "App Opened"}}}
	r := mapOne(t, cfg, `{`+identified+`, "events": [{"event_type": "session_start", "data": {}}]}`)
	if r.Event.EventName != "App Opened" {
		t.Errorf("EventName = %q", r.Event.EventName)
	}
}

func TestFeedLoopGuard(t *testing.T) {
	for _, source := range []string{
		`{"channel": "partner", "partner": "Iterable Feed"}`,
		`{"channel": "partner", "partner": "iterable"}`,
		`{"channel": "server_to_server", "partner": "ITERABLE"}`,
	} {
		results := mapBody(t, enable("custom_event"), `{`+identified+`, "source_info": `+source+`, "events": [
			{"event_type": "custom_event", "data": {"event_name": "emailOpen"}},
			{"event_type": "screen_view", "data": {}}
		]}`)
		for _, r := range results {
			wantOutcome(t, r, Skip)
			if !strings.Contains(r.Reason, "Iterable's feed") {
				t.Errorf("Reason = %q", r.Reason)
			}
		}
	}
	r := mapOne(t, Config{}, `{`+identified+`, "source_info": {"channel": "partner", "partner": "Braze"}, "events": [{"event_type": "screen_view", "data": {}}]}`)
	wantOutcome(t, r, Forward)
}

func TestFeedLoopFile(t *testing.T) {
	results := newMapper(t, enable("custom_event")).Map(decodeBatch(t, readTestdata(t, "feed-loop.json")))
	for _, r := range results {
		wantOutcome(t, r, Skip)
	}
}

func TestLifecycleTestdata(t *testing.T) {
	results := newMapper(t, Config{}).Map(decodeBatch(t, readTestdata(t, "lifecycle.json")))
	want := []struct {
		name, id  string
		createdAt int64
	}{
		{"Session Start", "9D4C1B2A-7E6F-4A5B-8C9D-0E1F2A3B4C5D", 1712100000},
		{"Screen View", "1f2e3d4c-5b6a-4789-8abc-def012345678", 1712100005},
		{"Application State Transition", "mpe-n42", 1712100009},
		{"Session End", "mpe-8800000000000000001", 1712100009},
	}
	for i, w := range want {
		r := results[i]
		wantOutcome(t, r, Forward)
		if r.Event.EventName != w.name {
			t.Errorf("event %d: EventName = %q, want %q", i, r.Event.EventName, w.name)
		}
		if r.Event.ID != w.id {
			t.Errorf("event %d: ID = %q, want %q", i, r.Event.ID, w.id)
		}
		if r.Event.CreatedAt != w.createdAt {
			t.Errorf("event %d: CreatedAt = %d, want %d", i, r.Event.CreatedAt, w.createdAt)
		}
		if r.Event.Email != "juno@example.com" {
			t.Errorf("event %d: Email = %q", i, r.Event.Email)
		}
		if r.Event.UserID != "J-77" {
			t.Errorf("event %d: UserID = %q", i, r.Event.UserID)
		}
		if r.Event.DataFields["sessionId"] != "9007199254740993" {
			t.Errorf("event %d: sessionId = %#v, want the exact int64 as a string", i, r.Event.DataFields["sessionId"])
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for outcome, want := range map[Outcome]string{Forward: "forward", Skip: "skip", Reject: "reject", 0: "Outcome(0)"} {
		if got := outcome.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(outcome), got, want)
		}
	}
}

func TestMapperConcurrentUse(t *testing.T) {
	m := newMapper(t, Config{})
	b := decodeBatch(t, readTestdata(t, "lifecycle.json"))
	done := make(chan []Result, 4)
	for range 4 {
		go func() { done <- m.Map(b) }()
	}
	first := <-done
	for range 3 {
		if got := <-done; !reflect.DeepEqual(got, first) {
			t.Errorf("concurrent Map results differ")
		}
	}
}
