package mapping

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/layover-dev/layover/mparticle"
)

// reservedFields are dataFields names that Iterable stores on every event
// record itself. A custom attribute with one of these names is left out.
var reservedFields = map[string]bool{
	"eventType":      true,
	"eventUpdatedAt": true,
	"itblInternal":   true,
}

// dataFields builds an event's dataFields from its custom attributes, the
// context fields and the type's own fields, later sources replacing earlier
// ones on a name clash. The context and type fields have fixed types, so
// they win over a custom attribute of the same name. It returns nil when no
// field is left.
func (m *Mapper) dataFields(b *mparticle.Batch, e *mparticle.Event, r rule, typed map[string]any) map[string]any {
	fields := make(map[string]any, len(e.CustomAttributes)+len(typed)+6)
	for name, value := range e.CustomAttributes {
		if !r.sendsAttribute(name) {
			continue
		}
		if converted, ok := m.attributeValue(value); ok {
			fields[name] = converted
		}
	}
	if r.context {
		addContext(fields, b, e)
	}
	for name, value := range typed {
		fields[name] = value
	}
	if len(fields) == 0 {
		return nil
	}
	return fields
}

// sendsAttribute reports whether the rule's attribute lists let a custom
// attribute through. Blank and reserved names never pass.
func (r rule) sendsAttribute(name string) bool {
	if strings.TrimSpace(name) == "" || reservedFields[name] {
		return false
	}
	if r.include != nil && !r.include[name] {
		return false
	}
	return !r.exclude[name]
}

// addContext adds the batch and session context, all as strings. mpid and
// sessionId are int64 values beyond 2^53, which a JSON number would not
// keep exactly in many readers.
func addContext(fields map[string]any, b *mparticle.Batch, e *mparticle.Event) {
	setText(fields, "platform", b.DeviceInfo.Platform)
	setText(fields, "appVersion", b.ApplicationInfo.ApplicationVersion)
	setText(fields, "appBuild", b.ApplicationInfo.ApplicationBuildNumber)
	setText(fields, "environment", b.Environment)
	setText(fields, "sessionId", e.SessionID.String())
	setText(fields, "mpid", b.MPID.String())
}

// setText sets a string field unless value is blank, so a missing value
// leaves the field out instead of sending "".
func setText(fields map[string]any, name, value string) {
	if strings.TrimSpace(value) != "" {
		fields[name] = value
	}
}

// attributeValue converts one custom attribute value by the mapper's type
// policy. It returns false for a null, which is left out.
func (m *Mapper) attributeValue(value any) (any, bool) {
	if m.attributeTypes == ScalarAttributes {
		return scalarValue(value)
	}
	return stringValue(value)
}

// stringValue converts a value to its string form: a number's exact JSON
// text, "true" or "false", or JSON text for a list or object.
func stringValue(value any) (any, bool) {
	switch v := value.(type) {
	case nil:
		return nil, false
	case string:
		return v, true
	case json.Number:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return jsonText(value)
}

// scalarValue converts a value the way the native connection's "Coerce
// Strings to Scalars" setting does, as IterableExtension.attemptTypeConversion
// in Iterable/firehose-iterable implements it. "true" and "false" in any case
// become booleans, whole numbers that fit in 32 bits become integers, and
// numbers with a fraction become doubles. Other text stays a string, and so
// do whole numbers outside 32 bits and texts such as "5.0", as there.
func scalarValue(value any) (any, bool) {
	switch v := value.(type) {
	case nil:
		return nil, false
	case bool:
		return v, true
	case string:
		return coerceText(v), true
	case json.Number:
		return coerceText(string(v)), true
	}
	return jsonText(value)
}

func coerceText(text string) any {
	if strings.EqualFold(text, "true") || strings.EqualFold(text, "false") {
		return strings.EqualFold(text, "true")
	}
	if n, err := strconv.ParseInt(text, 10, 32); err == nil {
		return n
	}
	if isJSONNumber(text) {
		f, err := strconv.ParseFloat(text, 64)
		if err == nil && f != math.Trunc(f) {
			return json.Number(text)
		}
	}
	return text
}

// jsonText returns a list or object as compact JSON text, keeping the exact
// digits of its numbers and leaving <, > and & unescaped.
func jsonText(value any) (any, bool) {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		return nil, false
	}
	return strings.TrimSuffix(buf.String(), "\n"), true
}

// isJSONNumber reports whether text is a number in JSON's grammar, so it can
// be sent as a json.Number as it is.
func isJSONNumber(text string) bool {
	if text == "" || (text[0] != '-' && (text[0] < '0' || text[0] > '9')) {
		return false
	}
	return json.Valid([]byte(text))
}

// doubleValue returns an amount as a JSON number that always reads as a
// double, by adding ".0" to whole numbers. Without it, Iterable would type a
// field as long from a first value of 123 and then reject 14.99.
func doubleValue(amount json.Number) (json.Number, bool) {
	text := string(amount)
	if text == "" {
		return "", false
	}
	if !strings.ContainsAny(text, ".eE") {
		text += ".0"
	}
	return json.Number(text), true
}
