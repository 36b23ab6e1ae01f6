package mparticle

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// decodeTestdata decodes testdata/name and fails the test on an error.
func decodeTestdata(t *testing.T, name string) *Batch {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(body)
	if err != nil {
		t.Fatalf("Decode(%s): %v", name, err)
	}
	return b
}

func TestDecodeRejectsNonObjects(t *testing.T) {
	for _, body := range []string{``, `   `, `null`, `[]`, `[{"events": []}]`, `"batch"`, `42`, `{"events": [`, `{"a": 1} {"b": 2}`, `not json`} {
		b, err := Decode([]byte(body))
		if !errors.Is(err, ErrNotObject) {
			t.Errorf("Decode(%q) error = %v, want ErrNotObject", body, err)
		}
		if b != nil {
			t.Errorf("Decode(%q) batch = %+v, want nil", body, b)
		}
	}
}

func TestDecodeAcceptsEmptyObject(t *testing.T) {
	for _, body := range []string{`{}`, " \n{ } \n", "\xef\xbb\xbf{}"} {
		b, err := Decode([]byte(body))
		if err != nil {
			t.Fatalf("Decode(%q): %v", body, err)
		}
		if len(b.Events) != 0 {
			t.Errorf("Decode(%q) events = %d, want 0", body, len(b.Events))
		}
	}
}

// TestDecodeEventsValueKinds covers each JSON type of the events member.
// Only a missing member, null or an array decode. Any other value fails,
// so that the forwarder does not delete the batch as one without events.
func TestDecodeEventsValueKinds(t *testing.T) {
	screenView := `{"event_type":"screen_view","data":{"screen_name":"Home"}}`
	cases := []struct {
		name       string
		body       string
		wantEvents int
		wantErr    bool
	}{
		{"array", `{"events":[` + screenView + `,` + screenView + `]}`, 2, false},
		{"array with odd elements", `{"events":[1,"a",null,{}]}`, 4, false},
		{"empty array", `{"events":[]}`, 0, false},
		{"null", `{"events":null}`, 0, false},
		{"null with spaces", `{"events" : null }`, 0, false},
		{"missing", `{"mpid":1}`, 0, false},
		{"object", `{"events":` + screenView + `}`, 0, true},
		{"empty object", `{"events":{}}`, 0, true},
		{"string", `{"events":"none"}`, 0, true},
		{"empty string", `{"events":""}`, 0, true},
		{"number", `{"events":3}`, 0, true},
		{"negative number", `{"events":-1.5e3}`, 0, true},
		{"true", `{"events":true}`, 0, true},
		{"false", `{"events":false}`, 0, true},
		{"last duplicate null", `{"events":[` + screenView + `],"events":null}`, 0, false},
		{"last duplicate array", `{"events":{},"events":[` + screenView + `]}`, 1, false},
		{"last duplicate object", `{"events":[` + screenView + `],"events":{}}`, 0, true},
		{"last duplicate string", `{"events":null,"events":"x"}`, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Decode([]byte(c.body))
			if c.wantErr {
				if !errors.Is(err, ErrEventsNotArray) {
					t.Errorf("Decode(%s) error = %v, want ErrEventsNotArray", c.body, err)
				}
				if errors.Is(err, ErrNotObject) {
					t.Errorf("Decode(%s) error = %v wraps ErrNotObject, want it not to for a JSON object", c.body, err)
				}
				if b != nil {
					t.Errorf("Decode(%s) batch = %+v, want nil", c.body, b)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s): %v", c.body, err)
			}
			if len(b.Events) != c.wantEvents {
				t.Errorf("Decode(%s) events = %d, want %d", c.body, len(b.Events), c.wantEvents)
			}
		})
	}
}

func TestDecodeEventsErrorNamesType(t *testing.T) {
	_, err := Decode([]byte(`{"events":{"email":"user@example.com"}}`))
	if err == nil {
		t.Fatal("Decode of an object events member succeeded, want an error")
	}
	if want := "got a JSON object"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if strings.Contains(err.Error(), "user@example.com") {
		t.Errorf("error %q repeats the payload's data", err)
	}
}

func TestBatchUnmarshalJSONEventsNotArray(t *testing.T) {
	var wrapper struct {
		Batch Batch `json:"batch"`
	}
	err := json.Unmarshal([]byte(`{"batch": {"mpid": "12", "events": "none"}}`), &wrapper)
	if !errors.Is(err, ErrEventsNotArray) {
		t.Errorf("json.Unmarshal error = %v, want ErrEventsNotArray", err)
	}
}

func TestDecodeOutboundArrayIdentities(t *testing.T) {
	b := decodeTestdata(t, "outbound-array-identities.json")
	want := []Identity{
		{"customer_id", "cust-7781"},
		{"email", "   "},
		{"email", "rowan@example.org"},
		{"other_id_3", "4411"},
	}
	if !reflect.DeepEqual(b.Identities, want) {
		t.Errorf("Identities = %+v, want %+v", b.Identities, want)
	}
	if got := b.Identity("email"); got != "rowan@example.org" {
		t.Errorf("Identity(email) = %q, want the first non-blank email", got)
	}
	if got := b.Identity("customer_id"); got != "cust-7781" {
		t.Errorf("Identity(customer_id) = %q", got)
	}
	if got := b.Identity("Other_ID_3"); got != "4411" {
		t.Errorf("Identity(Other_ID_3) = %q, want case-insensitive match", got)
	}
	if got := b.Identity("facebook"); got != "" {
		t.Errorf("Identity(facebook) = %q, want empty", got)
	}
}

func TestDecodeBatchFields(t *testing.T) {
	b := decodeTestdata(t, "outbound-array-identities.json")
	if b.MPID != (Int64{9123456789012345678, true}) {
		t.Errorf("MPID = %+v", b.MPID)
	}
	if b.BatchID != (Int64{-4611686018427387905, true}) {
		t.Errorf("BatchID = %+v", b.BatchID)
	}
	if b.Environment != "production" {
		t.Errorf("Environment = %q", b.Environment)
	}
	if b.TimestampMs != (Int64{1712000000500, true}) {
		t.Errorf("TimestampMs = %+v", b.TimestampMs)
	}
	if b.DeviceInfo.Platform != "Android" {
		t.Errorf("Platform = %q", b.DeviceInfo.Platform)
	}
	if b.ApplicationInfo != (ApplicationInfo{"5.2.0", "520"}) {
		t.Errorf("ApplicationInfo = %+v", b.ApplicationInfo)
	}
	if b.SourceInfo != (SourceInfo{Channel: "native"}) {
		t.Errorf("SourceInfo = %+v", b.SourceInfo)
	}
}

func TestDecodeInboundMapIdentities(t *testing.T) {
	b := decodeTestdata(t, "inbound-map-identities.json")
	want := []Identity{{"customer_id", "K-100"}, {"email", "kit@example.net"}, {"other", ""}}
	if !reflect.DeepEqual(b.Identities, want) {
		t.Errorf("Identities = %+v, want %+v sorted by type", b.Identities, want)
	}
	if got := b.Identity("email"); got != "kit@example.net" {
		t.Errorf("Identity(email) = %q", got)
	}
	if got := b.Identity("other"); got != "" {
		t.Errorf("Identity(other) = %q, want blank to count as missing", got)
	}
	if b.MPID != (Int64{-8000000000000000011, true}) {
		t.Errorf("MPID = %+v, want the padded string parsed", b.MPID)
	}
}

func TestDecodeUserAttributes(t *testing.T) {
	b := decodeTestdata(t, "inbound-map-identities.json")
	want := map[string]any{"$city": "Lisbon", "tags": []any{"a", "b"}, "$zip": nil}
	if !reflect.DeepEqual(b.UserAttributes, want) {
		t.Errorf("UserAttributes = %#v, want %#v", b.UserAttributes, want)
	}
}

func TestDecodeEventCommonFields(t *testing.T) {
	b := decodeTestdata(t, "outbound-array-identities.json")
	if len(b.Events) != 1 {
		t.Fatalf("events = %d, want 1", len(b.Events))
	}
	e := b.Events[0]
	if e.Type != TypeScreenView {
		t.Errorf("Type = %q", e.Type)
	}
	if e.EventID != (Int64{7290000000000000123, true}) {
		t.Errorf("EventID = %+v", e.EventID)
	}
	if e.SourceMessageID != "5f0c7a7e-3b1d-4c59-9d7e-1a2b3c4d5e6f" {
		t.Errorf("SourceMessageID = %q", e.SourceMessageID)
	}
	if e.SessionID != (Int64{-3000000000000000001, true}) {
		t.Errorf("SessionID = %+v", e.SessionID)
	}
	if e.SessionUUID != "0E4C3A92-55B1-4F4B-8C0D-6A7B8C9D0E1F" {
		t.Errorf("SessionUUID = %q", e.SessionUUID)
	}
	if e.TimestampMs != (Int64{1712000000123, true}) {
		t.Errorf("TimestampMs = %+v", e.TimestampMs)
	}
	if e.ScreenName != "Checkout" {
		t.Errorf("ScreenName = %q", e.ScreenName)
	}
	if !json.Valid(e.Data) || e.Data[0] != '{' {
		t.Errorf("Data = %s, want the raw data object", e.Data)
	}
}

func TestDecodeAttributesKeepJSONTypes(t *testing.T) {
	b := decodeTestdata(t, "outbound-array-identities.json")
	got := b.Events[0].CustomAttributes
	want := map[string]any{
		"step":    "2",
		"express": true,
		"items":   json.Number("3"),
		"ratio":   json.Number("0.25"),
		"note":    nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CustomAttributes = %#v, want %#v", got, want)
	}
}

func TestDecodeStringNumbers(t *testing.T) {
	b := decodeTestdata(t, "string-numbers.json")
	if b.MPID != (Int64{9007199254740993, true}) {
		t.Errorf("MPID = %+v, want 2^53+1 exactly", b.MPID)
	}
	if b.BatchID != (Int64{18014398509481985, true}) {
		t.Errorf("BatchID = %+v", b.BatchID)
	}
	if b.TimestampMs != (Int64{1712000200000, true}) {
		t.Errorf("TimestampMs = %+v", b.TimestampMs)
	}
	e := b.Events[0]
	if e.EventID != (Int64{-9223372036854775808, true}) {
		t.Errorf("EventID = %+v", e.EventID)
	}
	if e.SessionID != (Int64{9223372036854775807, true}) {
		t.Errorf("SessionID = %+v", e.SessionID)
	}
	if e.TimestampMs != (Int64{1712000200100, true}) {
		t.Errorf("TimestampMs = %+v", e.TimestampMs)
	}
	if got := e.CustomAttributes["score"]; got != json.Number("98765432109876543210") {
		t.Errorf("score = %#v, want the exact digits", got)
	}
}

func TestDecodeSessionFields(t *testing.T) {
	b := decodeTestdata(t, "inbound-map-identities.json")
	start, end := b.Events[0], b.Events[1]
	if start.CustomAttributes != nil {
		t.Errorf("session_start CustomAttributes = %#v, want nil for null", start.CustomAttributes)
	}
	if start.TimestampMs != (Int64{1712000100000, true}) {
		t.Errorf("session_start TimestampMs = %+v", start.TimestampMs)
	}
	if end.SessionDurationMs != (Int64{65000, true}) {
		t.Errorf("SessionDurationMs = %+v", end.SessionDurationMs)
	}
}

func TestDecodeNullsEverywhere(t *testing.T) {
	b := decodeTestdata(t, "nulls.json")
	if b.MPID.Valid {
		t.Errorf("MPID = %+v, want invalid", b.MPID)
	}
	if b.TimestampMs.Valid {
		t.Errorf("TimestampMs = %+v, want invalid", b.TimestampMs)
	}
	if b.Identities != nil {
		t.Errorf("Identities = %v, want nil", b.Identities)
	}
	if b.UserAttributes != nil {
		t.Errorf("UserAttributes = %v, want nil", b.UserAttributes)
	}
	if len(b.Events) != 5 {
		t.Fatalf("events = %d, want 5: null elements must not be dropped", len(b.Events))
	}
	if b.Events[1].ProductAction != nil {
		t.Errorf("ProductAction = %+v, want nil", b.Events[1].ProductAction)
	}
	if b.Events[1].PromotionAction != nil {
		t.Errorf("PromotionAction = %+v, want nil", b.Events[1].PromotionAction)
	}
	if b.Events[2].Data != nil {
		t.Errorf("Data of null data = %s, want nil", b.Events[2].Data)
	}
	for _, i := range []int{3, 4} {
		if b.Events[i].Type != "" {
			t.Errorf("event %d Type = %q, want empty", i, b.Events[i].Type)
		}
	}
}

func TestDecodeKeepsUnknownTypes(t *testing.T) {
	b := decodeTestdata(t, "unknown-types.json")
	if len(b.Events) != 3 {
		t.Fatalf("events = %d, want 3", len(b.Events))
	}
	if b.Events[0].Type != "alias_request" {
		t.Errorf("Type = %q", b.Events[0].Type)
	}
	if string(b.Events[0].Data) != `{"source_mpid": 41, "destination_mpid": 42}` {
		t.Errorf("Data = %s, want the raw bytes", b.Events[0].Data)
	}
	if b.Events[1].TimestampMs.Value != 1712000300000 {
		t.Errorf("TimestampMs = %+v", b.Events[1].TimestampMs)
	}
	if string(b.Events[2].Data) != `"not an object"` {
		t.Errorf("Data = %s, want the raw string", b.Events[2].Data)
	}
}

func TestDecodeProductAction(t *testing.T) {
	b := decodeTestdata(t, "commerce.json")
	e := b.Events[0]
	if e.CurrencyCode != "EUR" {
		t.Errorf("CurrencyCode = %q", e.CurrencyCode)
	}
	want := &ProductAction{
		Action:        "add_to_cart",
		TransactionID: "T-9",
		TotalAmount:   "19.90",
		Products: []Product{
			{ID: "sku-1", Name: "Trail Socks", Price: "9.95", Quantity: "2"},
			{ID: "1002"},
		},
	}
	if !reflect.DeepEqual(e.ProductAction, want) {
		t.Errorf("ProductAction = %+v, want %+v", e.ProductAction, want)
	}
}

func TestDecodePromotionsAndImpressions(t *testing.T) {
	b := decodeTestdata(t, "commerce.json")
	wantPromotion := &PromotionAction{
		Action:     "click",
		Promotions: []Promotion{{ID: "promo-5", Name: "Spring Sale", Creative: "banner-a", Position: "1"}},
	}
	if !reflect.DeepEqual(b.Events[1].PromotionAction, wantPromotion) {
		t.Errorf("PromotionAction = %+v, want %+v", b.Events[1].PromotionAction, wantPromotion)
	}
	wantImpressions := []ProductImpression{{
		List:     "Search Results",
		Products: []Product{{ID: "sku-1"}, {ID: "sku-2", Name: "Rain Hat"}},
	}}
	if !reflect.DeepEqual(b.Events[2].ProductImpressions, wantImpressions) {
		t.Errorf("ProductImpressions = %+v, want %+v", b.Events[2].ProductImpressions, wantImpressions)
	}
}

func TestDecodeTransitionFlags(t *testing.T) {
	b := decodeTestdata(t, "app-transition.json")
	first, second := b.Events[0], b.Events[1]
	if first.ApplicationTransitionType != "application_initialized" {
		t.Errorf("ApplicationTransitionType = %q", first.ApplicationTransitionType)
	}
	if first.IsFirstRun == nil || !*first.IsFirstRun {
		t.Errorf("IsFirstRun = %v, want true", first.IsFirstRun)
	}
	if first.IsUpgrade == nil || *first.IsUpgrade {
		t.Errorf("IsUpgrade = %v, want false from the string", first.IsUpgrade)
	}
	if second.IsFirstRun != nil {
		t.Errorf("IsFirstRun = %v, want nil when absent", *second.IsFirstRun)
	}
	if second.IsUpgrade != nil {
		t.Errorf("IsUpgrade = %v, want nil when absent", *second.IsUpgrade)
	}
}

func TestDecodeEventEnvelope(t *testing.T) {
	e, err := DecodeEvent([]byte(`{"event_type": "custom_event", "data": {"event_name": "Tap", "event_id": "-12"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != TypeCustomEvent {
		t.Errorf("Type = %q", e.Type)
	}
	if e.EventName != "Tap" {
		t.Errorf("EventName = %q", e.EventName)
	}
	if e.EventID != (Int64{-12, true}) {
		t.Errorf("EventID = %+v", e.EventID)
	}
	if _, err := DecodeEvent([]byte(`[1]`)); !errors.Is(err, ErrNotObject) {
		t.Errorf("DecodeEvent([1]) error = %v, want ErrNotObject", err)
	}
}

func TestBatchUnmarshalJSON(t *testing.T) {
	var wrapper struct {
		Batch Batch `json:"batch"`
	}
	body := `{"batch": {"mpid": "12", "user_identities": [{"identity_type": "email", "identity": "a@example.com"}]}}`
	if err := json.Unmarshal([]byte(body), &wrapper); err != nil {
		t.Fatal(err)
	}
	if wrapper.Batch.MPID != (Int64{12, true}) {
		t.Errorf("MPID = %+v", wrapper.Batch.MPID)
	}
	if got := wrapper.Batch.Identity("email"); got != "a@example.com" {
		t.Errorf("Identity(email) = %q", got)
	}
}
