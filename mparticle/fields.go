package mparticle

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// object is a JSON object split into its members. Its getters read one
// member each and return the zero value for a missing member, a null or a
// value of the wrong JSON type, so a field that breaks the documented format
// never fails the rest of the batch.
type object map[string]json.RawMessage

// parseObject returns the members of raw, or nil when raw is not a JSON
// object. The members are sub-slices of raw.
//
// raw must be valid JSON. Decode and DecodeEvent validate the whole body
// once, and every value that the decoder splits further is part of it, so
// the split takes one pass and does not validate each nesting level again.
func parseObject(raw []byte) object {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	o, ok := splitObject(raw)
	if !ok {
		// Not reached for valid JSON; json.Unmarshal decides as before.
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil
		}
	}
	return o
}

// text returns a member as a string. Numbers keep their JSON text and
// booleans become "true" or "false". Objects, arrays and null give "".
func (o object) text(key string) string {
	return scalarText(o[key])
}

func (o object) int64(key string) Int64 {
	return ParseInt64(o[key])
}

func (o object) number(key string) json.Number {
	return ParseNumber(o[key])
}

// boolean returns a member that is a JSON boolean, a string "true" or
// "false" in any case, or the number 0 or 1. It returns nil for anything
// else, so callers can tell a missing flag from false.
func (o object) boolean(key string) *bool {
	var value bool
	switch strings.ToLower(strings.TrimSpace(o.text(key))) {
	case "true", "1":
		value = true
	case "false", "0":
		value = false
	default:
		return nil
	}
	return &value
}

func (o object) object(key string) object {
	return parseObject(o[key])
}

// array returns the elements of a member that is a JSON array, or nil.
func (o object) array(key string) []json.RawMessage {
	raw := trimJSONSpace(o[key])
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	elements, ok := splitArray(raw)
	if !ok {
		// Not reached for valid JSON; json.Unmarshal decides as before.
		if err := json.Unmarshal(raw, &elements); err != nil {
			return nil
		}
	}
	return elements
}

// attributes returns a member that is a JSON object as a map that keeps each
// value's JSON type: string, json.Number, bool, nil, []any or map[string]any.
// It returns nil when the member is not an object.
func (o object) attributes(key string) map[string]any {
	raw := trimJSONSpace(o[key])
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var attributes map[string]any
	if err := decoder.Decode(&attributes); err != nil {
		return nil
	}
	return attributes
}

// sortedKeys returns the member names of o in byte order, for a
// deterministic walk over an object map.
func (o object) sortedKeys() []string {
	keys := make([]string, 0, len(o))
	for key := range o {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

// scalarText returns a JSON string's value, a number's or boolean's JSON
// text, or "" for null, objects, arrays and invalid input.
func scalarText(raw []byte) string {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		if s, ok := plainString(raw); ok {
			return s
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ""
		}
		return s
	case c == '-' || (c >= '0' && c <= '9'):
		if !json.Valid(raw) {
			return ""
		}
		return string(raw)
	case bytes.Equal(raw, []byte("true")), bytes.Equal(raw, []byte("false")):
		return string(raw)
	}
	return ""
}

// trimJSONSpace removes the whitespace that JSON allows around a value.
func trimJSONSpace(raw []byte) []byte {
	return bytes.Trim(raw, " \t\r\n")
}
