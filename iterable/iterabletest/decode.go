package iterabletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// maxEventIDBytes is Iterable's limit on a custom event id.
const maxEventIDBytes = 512

// Messages of a BadJsonBody response, keyed in params by the JSON path of
// the offending value, such as "obj.events[1].createdAt".
const (
	msgNumber   = "Number value expected"
	msgString   = "String value expected"
	msgBoolean  = "Boolean value expected"
	msgObject   = "Object value expected"
	msgArray    = "Array value expected"
	msgMissing  = "Missing required field"
	msgEmpty    = "Non-empty string expected"
	msgEventID  = "Event id of 1 to 512 bytes of letters, digits and hyphens expected"
	msgIdentity = "email or userId expected"
)

// trackEvent is one event of a trackBulk request that passed type checks.
// The Has fields tell an absent identifier from an empty one.
type trackEvent struct {
	EventName  string
	Email      string
	HasEmail   bool
	UserID     string
	HasUserID  bool
	ID         string
	CreatedAt  int64
	HasCreated bool
	DataFields map[string]any
	CampaignID int64
	TemplateID int64
}

// decodeTrackBulk parses a trackBulk body with Iterable's strict types. A
// nil event list with params means the whole request is invalid, and
// params maps each offending JSON path to what was expected there.
func decodeTrackBulk(body []byte) ([]trackEvent, map[string]any) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, map[string]any{"obj": "Invalid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, map[string]any{"obj": "Invalid JSON: unexpected data after the top-level value"}
	}

	object, ok := root.(map[string]any)
	if !ok {
		return nil, map[string]any{"obj": msgObject}
	}
	rawEvents, present := object["events"]
	if !present || rawEvents == nil {
		return nil, map[string]any{"obj.events": msgMissing}
	}
	list, ok := rawEvents.([]any)
	if !ok {
		return nil, map[string]any{"obj.events": msgArray}
	}

	problems := make(map[string]any)
	events := make([]trackEvent, len(list))
	for i, raw := range list {
		path := fmt.Sprintf("obj.events[%d]", i)
		fields, ok := raw.(map[string]any)
		if !ok {
			problems[path] = msgObject
			continue
		}
		events[i] = decodeEvent(path, fields, problems)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return events, nil
}

// eventDecoder is one event object being decoded, with the problems of the
// whole request keyed by JSON path.
type eventDecoder struct {
	path     string
	fields   map[string]any
	problems map[string]any
}

// report records msg for field unless msg is empty.
func (d eventDecoder) report(field, msg string) {
	if msg != "" {
		d.problems[d.path+"."+field] = msg
	}
}

// decodeEvent reads one event object, adding a message to problems for
// each field of the wrong type or format.
func decodeEvent(path string, fields map[string]any, problems map[string]any) trackEvent {
	d := eventDecoder{path: path, fields: fields, problems: problems}
	var e trackEvent
	d.decodeIdentity(&e)
	d.decodeOptional(&e)
	return e
}

// decodeIdentity reads eventName, email and userId.
func (d eventDecoder) decodeIdentity(e *trackEvent) {
	name, present, msg := stringField(d.fields, "eventName")
	switch {
	case !present:
		msg = msgMissing
	case msg == "" && name == "":
		msg = msgEmpty
	}
	d.report("eventName", msg)
	e.EventName = name

	e.Email, e.HasEmail, msg = stringField(d.fields, "email")
	d.report("email", msg)
	e.UserID, e.HasUserID, msg = stringField(d.fields, "userId")
	d.report("userId", msg)
	if !e.HasEmail && !e.HasUserID {
		// NOTE: Iterable's response to an event without email and userId is
		// not documented. Rejecting the request makes the fault visible.
		d.problems[d.path] = msgIdentity
	}
}

// decodeOptional reads id, createdAt, campaignId, templateId,
// createNewFields and dataFields.
func (d eventDecoder) decodeOptional(e *trackEvent) {
	id, present, msg := stringField(d.fields, "id")
	if msg == "" && present && !validEventID(id) {
		msg = msgEventID
	}
	d.report("id", msg)
	e.ID = id

	e.CreatedAt, e.HasCreated, msg = int64Field(d.fields, "createdAt")
	d.report("createdAt", msg)
	e.CampaignID, _, msg = int64Field(d.fields, "campaignId")
	d.report("campaignId", msg)
	e.TemplateID, _, msg = int64Field(d.fields, "templateId")
	d.report("templateId", msg)

	if v, ok := d.fields["createNewFields"]; ok && v != nil {
		if _, isBool := v.(bool); !isBool {
			d.report("createNewFields", msgBoolean)
		}
	}
	if v, ok := d.fields["dataFields"]; ok && v != nil {
		data, isObject := v.(map[string]any)
		if !isObject {
			d.report("dataFields", msgObject)
		}
		e.DataFields = data
	}
}

// stringField reads an optional string. A JSON null counts as absent. msg
// is non-empty when the value has another type.
func stringField(fields map[string]any, name string) (value string, present bool, msg string) {
	v, ok := fields[name]
	if !ok || v == nil {
		return "", false, ""
	}
	s, ok := v.(string)
	if !ok {
		return "", true, msgString
	}
	return s, true, ""
}

// int64Field reads an optional integer that fits in int64. A JSON null
// counts as absent. Fractions, exponents and strings are rejected.
func int64Field(fields map[string]any, name string) (value int64, present bool, msg string) {
	v, ok := fields[name]
	if !ok || v == nil {
		return 0, false, ""
	}
	number, ok := v.(json.Number)
	if !ok {
		return 0, true, msgNumber
	}
	n, err := strconv.ParseInt(number.String(), 10, 64)
	if err != nil {
		return 0, true, msgNumber
	}
	return n, true, ""
}

// validEventID reports whether id follows Iterable's rule for custom event
// ids: 1 to 512 bytes of ASCII letters, digits and hyphens.
func validEventID(id string) bool {
	if id == "" || len(id) > maxEventIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		isAlnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !isAlnum && c != '-' {
			return false
		}
	}
	return true
}
