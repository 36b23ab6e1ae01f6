package mapping

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/mparticle"
)

// allEnabled returns a config with every rule turned on.
func allEnabled(types AttributeTypes) Config {
	cfg := Config{AttributeTypes: types, Events: map[string]Rule{}}
	for _, r := range builtinRules {
		cfg.Events[r.key] = Rule{Enabled: boolPointer(true)}
	}
	return cfg
}

// expected is the outcome, name and id wanted for one event.
type expected struct {
	outcome Outcome
	name    string
	id      string
}

// checkResults compares results with want, event by event.
func checkResults(t *testing.T, results []Result, want []expected) {
	t.Helper()
	if len(results) != len(want) {
		t.Fatalf("results = %d, want %d", len(results), len(want))
	}
	for i, w := range want {
		r := results[i]
		if r.Outcome != w.outcome {
			t.Errorf("event %d (%s): outcome = %s (%s), want %s", i, r.EventType, r.Outcome, r.Reason, w.outcome)
		}
		if r.Event.EventName != w.name {
			t.Errorf("event %d (%s): EventName = %q, want %q", i, r.EventType, r.Event.EventName, w.name)
		}
		if w.id != "" && r.Event.ID != w.id {
			t.Errorf("event %d (%s): ID = %q, want %q", i, r.EventType, r.Event.ID, w.id)
		}
	}
}

func TestFixtureLifecycleMasterSample(t *testing.T) {
	b := readFixture(t, "batch-lifecycle-master-sample.json")
	results := newMapper(t, Config{}).Map(b)
	checkResults(t, results, []expected{
		{Forward, "Session Start", "4e34bef3-d2f9-4f07-8298-4646cce292fa"},
		{Forward, "Application State Transition", "mpe-n1586912177303106600"},
		{Skip, "", ""},
		{Forward, "Session End", "93862b36-adf3-43e6-87d2-2fcbf3f6d903"},
	})
	for i, createdAt := range map[int]int64{0: 1432825980, 1: 1402578873, 3: 1432825994} {
		if results[i].Event.CreatedAt != createdAt {
			t.Errorf("event %d: CreatedAt = %d, want %d", i, results[i].Event.CreatedAt, createdAt)
		}
	}
	for _, i := range []int{0, 1, 3} {
		if results[i].Event.Email != "user@example.com" {
			t.Errorf("event %d: Email = %q", i, results[i].Event.Email)
		}
		if results[i].Event.UserID != "1234" {
			t.Errorf("event %d: UserID = %q", i, results[i].Event.UserID)
		}
	}
	transition := results[1].Event.DataFields
	if transition["transitionType"] != "application_background" {
		t.Errorf("transitionType = %#v", transition["transitionType"])
	}
	if transition["isUpgrade"] != true {
		t.Errorf("isUpgrade = %#v", transition["isUpgrade"])
	}
	end := results[3].Event.DataFields
	if end["sessionDurationMs"] != int64(60000) {
		t.Errorf("sessionDurationMs = %#v", end["sessionDurationMs"])
	}
	if end["key23"] != "value2" {
		t.Errorf("key23 = %#v", end["key23"])
	}
}

func TestFixtureScreenViewEventNameOnly(t *testing.T) {
	results := newMapper(t, Config{}).Map(readFixture(t, "batch-screen-view-event-name-only.json"))
	checkResults(t, results, []expected{{Forward, "Screen View", ""}})
	e := results[0].Event
	if e.DataFields["screenName"] != "Example screen view" {
		t.Errorf("screenName = %#v, want event_name", e.DataFields["screenName"])
	}
	if e.UserID != "019mr8mf4r" {
		t.Errorf("UserID = %q", e.UserID)
	}
	if e.CreatedAt != 1634262037 {
		t.Errorf("CreatedAt = %d, want the batch time", e.CreatedAt)
	}
	if !strings.HasPrefix(e.ID, prefixContentID) {
		t.Errorf("ID = %q, want a content hash because the event has no ids", e.ID)
	}
}

func TestFixtureMixedIOSDefaults(t *testing.T) {
	b := readFixture(t, "batch-mixed-all-types-ios.json")
	results := newMapper(t, Config{}).Map(b)
	checkResults(t, results, []expected{
		{Skip, "", ""},
		{Forward, "Session Start", "84E1B361-A282-4ADF-8A6D-1D31E6DD5A9E"},
		{Skip, "", ""},
		{Forward, "Application State Transition", "2F18F89B-DA03-430F-893C-10D8CCD8081F"},
		{Forward, "Session End", "F22488C9-9025-4BF1-B371-5CD61877D4BF"},
		{Forward, "Session Start", "8B8DFAA2-17C7-43E8-88EE-5F2DCF016D56"},
		{Forward, "Application State Transition", "b1b0e561-f07a-4b15-9b27-13abbe5bace3"},
		{Skip, "", ""},
		{Skip, "", ""},
		{Skip, "", ""},
		{Forward, "Screen View", "95efd10d-ea9d-4eb9-b2e8-6c4170c9c7f4"},
		{Skip, "", ""},
		{Skip, "", ""},
		{Skip, "", ""},
	})
	skippedTypes := []string{"user_attribute_change", "user_identity_change", "crash_report", "breadcrumb",
		"custom_event", "push_registration", "network_performance", "commerce_event"}
	for _, r := range results {
		if r.Outcome == Skip && !slices.Contains(skippedTypes, r.EventType) {
			t.Errorf("event %d: %s skipped unexpectedly", r.Index, r.EventType)
		}
		if r.Outcome != Forward {
			continue
		}
		if r.Event.UserID != "123456" {
			t.Errorf("event %d: UserID = %q", r.Index, r.Event.UserID)
		}
		if r.Event.DataFields["mpid"] != "-7636538281262557000" {
			t.Errorf("event %d: mpid = %#v", r.Index, r.Event.DataFields["mpid"])
		}
	}
	if results[10].Event.DataFields["screenName"] != "Example screen event" {
		t.Errorf("screenName = %#v", results[10].Event.DataFields["screenName"])
	}
	if results[6].Event.DataFields["isFirstRun"] != true {
		t.Errorf("isFirstRun = %#v", results[6].Event.DataFields["isFirstRun"])
	}
}

func TestFixtureMixedIOSAllEnabled(t *testing.T) {
	results := newMapper(t, allEnabled(StringAttributes)).Map(readFixture(t, "batch-mixed-all-types-ios.json"))
	for _, r := range results {
		wantOutcome(t, r, Forward)
	}
	if results[8].Event.ID != "mpe-6053573571759017784" {
		t.Errorf("breadcrumb ID = %q, want event_id because source_message_id is null", results[8].Event.ID)
	}
	if results[9].Event.EventName != "Example custom event" {
		t.Errorf("custom EventName = %q", results[9].Event.EventName)
	}
	purchase := results[13].Event
	if purchase.EventName != "Purchase" {
		t.Errorf("purchase EventName = %q", purchase.EventName)
	}
	if purchase.DataFields["totalAmount"] != json.Number("123.0") {
		t.Errorf("totalAmount = %#v", purchase.DataFields["totalAmount"])
	}
	if purchase.DataFields["Total Amount"] != "123" {
		t.Errorf("Total Amount attribute = %#v", purchase.DataFields["Total Amount"])
	}
}

func TestFixtureCustomAndCommerce(t *testing.T) {
	b := readFixture(t, "batch-custom-and-commerce-event.json")
	checkResults(t, newMapper(t, Config{}).Map(b), []expected{{Skip, "", ""}, {Skip, "", ""}})

	results := newMapper(t, enable("custom_event", "commerce_event.purchase")).Map(b)
	checkResults(t, results, []expected{{Forward, "clicked button", ""}, {Forward, "Purchase", ""}})
	if results[0].Event.DataFields["button_name"] != "home" {
		t.Errorf("button_name = %#v", results[0].Event.DataFields["button_name"])
	}
	purchase := results[1].Event.DataFields
	if purchase["totalAmount"] != json.Number("14.99") {
		t.Errorf("totalAmount = %#v", purchase["totalAmount"])
	}
	if !reflect.DeepEqual(purchase["productNames"], []string{"Leap to Conclusions Mat"}) {
		t.Errorf("productNames = %#v", purchase["productNames"])
	}
}

func TestFixtureOutboundS3Lines(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(fixtureDir(t), "batches-outbound-s3.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, id, user string
		createdAt      int64
	}{
		{"MyTestEvent", "mpe-1234", "TestCustomerId1", 1595542763},
		{"MyOtherTestEvent", "mpe-2345", "TestCustomerId2", 1595543017},
	}
	m := newMapper(t, enable("custom_event"))
	scanner := bufio.NewScanner(bytes.NewReader(body))
	for i := 0; scanner.Scan(); i++ {
		if i >= len(want) {
			t.Fatalf("more than %d lines", len(want))
		}
		results := m.Map(decodeBatch(t, scanner.Bytes()))
		checkResults(t, results, []expected{{Forward, want[i].name, want[i].id}})
		if results[0].Event.UserID != want[i].user {
			t.Errorf("line %d: UserID = %q", i, results[0].Event.UserID)
		}
		if results[0].Event.CreatedAt != want[i].createdAt {
			t.Errorf("line %d: CreatedAt = %d", i, results[0].Event.CreatedAt)
		}
	}
}

func TestFixtureKinesisWithoutIdentity(t *testing.T) {
	b := readFixture(t, "batch-outbound-kinesis-data.json")
	checkResults(t, newMapper(t, Config{}).Map(b), []expected{{Skip, "", ""}})
	results := newMapper(t, enable("custom_event")).Map(b)
	checkResults(t, results, []expected{{Reject, "Level_Achieved", ""}})
	if !strings.Contains(results[0].Reason, "neither an email") {
		t.Errorf("Reason = %q", results[0].Reason)
	}
}

func TestFixtureMediaEvent(t *testing.T) {
	envelope, err := os.ReadFile(filepath.Join(fixtureDir(t), "event-media-custom-event-string-numbers.json"))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"user_identities": {"customer_id": "viewer-1"}, "events": [` + string(envelope) + `]}`
	results := newMapper(t, enable("custom_event")).Map(decodeBatch(t, []byte(body)))
	checkResults(t, results, []expected{{Forward, "Play", "mpe-n109840007014118971"}})
	e := results[0].Event
	if e.CreatedAt != 1573828863 {
		t.Errorf("CreatedAt = %d", e.CreatedAt)
	}
	if e.DataFields["sessionId"] != "-8572887793551346848" {
		t.Errorf("sessionId = %#v", e.DataFields["sessionId"])
	}
	if e.DataFields["content_duration"] != "120000" {
		t.Errorf("content_duration = %#v", e.DataFields["content_duration"])
	}
}

func TestFixtureFuzzedSchema(t *testing.T) {
	results := newMapper(t, Config{}).Map(readFixture(t, "batch-fuzzed-schema-edge-cases.json"))
	checkResults(t, results, []expected{{Skip, "", ""}, {Reject, "Screen View", ""}})
	if !strings.Contains(results[1].Reason, "email identity is invalid") {
		t.Errorf("Reason = %q", results[1].Reason)
	}
	if !strings.HasPrefix(results[1].Event.ID, prefixHashedID) {
		t.Errorf("ID = %q, want the hash of the source_message_id with a space", results[1].Event.ID)
	}
}

// allBatches returns every batch of testdata and, when present, of the
// real fixtures, keyed by file name and line number.
func allBatches(t *testing.T) map[string]*mparticle.Batch {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if dir := findFixtureDir(); dir != "" {
		real, err := filepath.Glob(filepath.Join(dir, "batch*"))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, real...)
	}
	batches := map[string]*mparticle.Batch{}
	for _, path := range paths {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(path, ".ndjson") {
			batches[filepath.Base(path)] = decodeBatch(t, body)
			continue
		}
		scanner := bufio.NewScanner(bytes.NewReader(body))
		for line := 1; scanner.Scan(); line++ {
			batches[fmt.Sprintf("%s:%d", filepath.Base(path), line)] = decodeBatch(t, scanner.Bytes())
		}
	}
	return batches
}

// fieldTypes records the JSON type of every dataFields path per event name
// and returns the conflicts found.
func fieldTypes(t *testing.T, events []iterable.Event) []string {
	t.Helper()
	body, err := json.Marshal(iterable.BulkTrackRequest{Events: events})
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.UseNumber()
	var request struct {
		Events []struct {
			EventName  string         `json:"eventName"`
			DataFields map[string]any `json:"dataFields"`
		} `json:"events"`
	}
	if err := decoder.Decode(&request); err != nil {
		t.Fatalf("decode marshalled request: %v", err)
	}
	seen := map[string]string{}
	var conflicts []string
	for _, e := range request.Events {
		for name, value := range e.DataFields {
			walkTypes(e.EventName+"/"+name, value, func(path, kind string) {
				if previous, ok := seen[path]; ok && previous != kind {
					conflicts = append(conflicts, path+": "+previous+" then "+kind)
				}
				seen[path] = kind
			})
		}
	}
	return conflicts
}

// walkTypes calls visit with the Iterable type of value and of each element
// or member inside it.
func walkTypes(path string, value any, visit func(path, kind string)) {
	switch v := value.(type) {
	case string:
		visit(path, "string")
	case bool:
		visit(path, "boolean")
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			visit(path, "double")
		} else {
			visit(path, "long")
		}
	case []any:
		visit(path, "array")
		for _, element := range v {
			walkTypes(path+"[]", element, visit)
		}
	case map[string]any:
		visit(path, "object")
		for name, member := range v {
			walkTypes(path+"."+name, member, visit)
		}
	default:
		visit(path, "null")
	}
}

func TestFieldTypesStableAcrossEvents(t *testing.T) {
	m := newMapper(t, allEnabled(StringAttributes))
	var events []iterable.Event
	for _, b := range allBatches(t) {
		for _, r := range m.Map(b) {
			if r.Outcome == Forward {
				events = append(events, r.Event)
			}
		}
	}
	if len(events) < 10 {
		t.Fatalf("only %d events forwarded, too few to compare types", len(events))
	}
	for _, conflict := range fieldTypes(t, events) {
		t.Errorf("type conflict: %s", conflict)
	}
}

func TestScalarsModeCanConflict(t *testing.T) {
	m := newMapper(t, Config{AttributeTypes: ScalarAttributes})
	var events []iterable.Event
	for _, r := range m.Map(decodeBatch(t, readTestdata(t, "type-drift.json"))) {
		events = append(events, r.Event)
	}
	if len(fieldTypes(t, events)) == 0 {
		t.Errorf("scalars mode gave no type conflict on type-drift.json, so the documented risk is not shown")
	}
}
