// Package mparticle decodes the event batches that mParticle's Webhook
// output POSTs, in both the outbound form and the inbound (raw feed) form.
//
// Decoding is tolerant: numbers may arrive as strings, 64-bit ids go beyond
// 2^53 and can be negative, user_identities is an array or an object map,
// and any field may be null or missing. Decode fails only when the body is
// not a JSON object or its events member is neither an array nor null.
// Every element of events becomes an Event, including unknown event types,
// and each Event keeps its raw data for later use.
package mparticle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/layover-dev/layover/internal/jsonvalid"
)

// ErrNotObject is returned by Decode when the body is not a JSON object.
// No retry can fix such a body.
var ErrNotObject = errors.New("mparticle: body is not a JSON object")

// ErrEventsNotArray is returned by Decode when the body has an events
// member that is neither an array nor null. Reading such a batch as one
// without events would lose whatever the member contains, and no retry
// can fix the body.
var ErrEventsNotArray = errors.New("mparticle: events is neither an array nor null")

// utf8BOM is the byte order mark some HTTP clients put before a JSON body.
var utf8BOM = []byte("\xef\xbb\xbf")

// Batch is one mParticle event batch: the events of one user and device,
// with the user's identities and the device and app context. Fields that
// the payload leaves out or sends as null keep their zero value.
type Batch struct {
	MPID        Int64
	BatchID     Int64
	Environment string // "production" or "development" as sent, or ""
	// TimestampMs is the batch time in Unix milliseconds. SDKs set it from
	// the device clock when they build the batch.
	TimestampMs     Int64
	Identities      []Identity
	UserAttributes  map[string]any
	DeviceInfo      DeviceInfo
	ApplicationInfo ApplicationInfo
	SourceInfo      SourceInfo
	Events          []Event
}

// Identity is one user identity, such as {"email", "user@example.com"}.
type Identity struct {
	Type  string // identity_type, such as "email" or "customer_id"
	Value string
}

// DeviceInfo is the part of device_info that Layover uses.
type DeviceInfo struct {
	Platform string // such as "iOS", "Android" or "web"
}

// ApplicationInfo is the part of application_info that Layover uses.
type ApplicationInfo struct {
	ApplicationVersion     string
	ApplicationBuildNumber string
}

// SourceInfo is the origin of the batch as mParticle records it. Channel is
// one of native, javascript, pixel, partner, server_to_server or unknown,
// and Partner names the partner feed when Channel is partner.
type SourceInfo struct {
	Channel string
	Partner string
}

// Decode parses one webhook body. It returns an error wrapping ErrNotObject
// when the body is not a single JSON object, and one wrapping
// ErrEventsNotArray when the last events member is present and neither an
// array nor null. It tolerates everything else.
func Decode(body []byte) (*Batch, error) {
	var b Batch
	if err := b.UnmarshalJSON(body); err != nil {
		return nil, err
	}
	return &b, nil
}

// DecodeEvent parses a single {event_type, data} envelope, the shape of one
// element of a batch's events array. It returns an error wrapping
// ErrNotObject when body is not a JSON object.
func DecodeEvent(body []byte) (Event, error) {
	body = trimJSONSpace(bytes.TrimPrefix(trimJSONSpace(body), utf8BOM))
	if len(body) == 0 || body[0] != '{' || !jsonvalid.Valid(body) {
		return Event{}, fmt.Errorf("%w: invalid event envelope", ErrNotObject)
	}
	return parseEvent(parseObject(body, indexBrackets(body))), nil
}

// UnmarshalJSON decodes a batch as Decode does.
func (b *Batch) UnmarshalJSON(data []byte) error {
	data = trimJSONSpace(bytes.TrimPrefix(trimJSONSpace(data), utf8BOM))
	if len(data) == 0 {
		return fmt.Errorf("%w: the body is empty", ErrNotObject)
	}
	if data[0] != '{' {
		return fmt.Errorf("%w: the body starts with %q", ErrNotObject, data[0])
	}
	// One validation of the whole body lets parseObject split every nested
	// value without checking it again.
	if !jsonvalid.Valid(data) {
		var o map[string]json.RawMessage
		err := json.Unmarshal(data, &o) // for the error that names the offset
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return fmt.Errorf("%w: %w", ErrNotObject, err)
	}
	o := parseObject(data, indexBrackets(data))
	if err := checkEvents(o.get("events")); err != nil {
		return err
	}
	appInfo := o.object("application_info")
	source := o.object("source_info")
	events := o.objects("events")
	*b = Batch{
		MPID:           o.int64("mpid"),
		BatchID:        o.int64("batch_id"),
		Environment:    o.text("environment"),
		TimestampMs:    o.int64("timestamp_unixtime_ms"),
		Identities:     parseIdentities(o),
		UserAttributes: o.attributes("user_attributes"),
		DeviceInfo:     DeviceInfo{Platform: o.object("device_info").text("platform")},
		ApplicationInfo: ApplicationInfo{
			ApplicationVersion:     appInfo.text("application_version"),
			ApplicationBuildNumber: appInfo.text("application_build_number"),
		},
		SourceInfo: SourceInfo{
			Channel: source.text("channel"),
			Partner: source.text("partner"),
		},
	}
	if len(events) > 0 {
		b.Events = make([]Event, len(events))
		for i, envelope := range events {
			b.Events[i] = parseEvent(envelope)
		}
	}
	return nil
}

// checkEvents returns an error wrapping ErrEventsNotArray when raw, the
// value of the events member, is present and neither an array nor null.
// raw is nil when the member is missing, and otherwise valid JSON.
func checkEvents(raw []byte) error {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 || raw[0] == '[' || string(raw) == "null" {
		return nil
	}
	return fmt.Errorf("%w: got a JSON %s", ErrEventsNotArray, jsonType(raw))
}

// jsonType names the JSON type of a valid value by its first byte. It
// names only the type, so that an error never repeats a payload's data.
func jsonType(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '[':
		return "array"
	}
	return "number"
}

// Identity returns the first non-blank identity of the given type, such as
// "email" or "customer_id", compared without regard to case. It returns ""
// when the batch has none.
func (b *Batch) Identity(kind string) string {
	for _, id := range b.Identities {
		if strings.EqualFold(id.Type, kind) && strings.TrimSpace(id.Value) != "" {
			return id.Value
		}
	}
	return ""
}

// parseIdentities reads user_identities in either shape: the outbound array
// of {identity_type, identity} objects, or the inbound object map from type
// to value. Map entries come out sorted by type, so the result is
// deterministic.
func parseIdentities(o object) []Identity {
	var ids []Identity
	if elements := o.objects("user_identities"); elements != nil {
		for _, element := range elements {
			if !element.ok() {
				continue
			}
			ids = append(ids, Identity{
				Type:  element.text("identity_type"),
				Value: element.text("identity"),
			})
		}
		return ids
	}
	byType := o.object("user_identities")
	for _, kind := range byType.sortedKeys() {
		ids = append(ids, Identity{Type: kind, Value: byType.text(kind)})
	}
	return ids
}
