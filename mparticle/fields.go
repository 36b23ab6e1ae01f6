package mparticle

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/layover-dev/layover/internal/jsonvalid"
)

// object is a JSON object split into its members, in the order they
// appear. Its getters read one member each and return the zero value for a
// missing member, a null or a value of the wrong JSON type, so a field that
// breaks the documented format never fails the rest of the batch.
//
// A slice is cheaper than a map here: the objects of a batch have a few
// dozen members at most, and most of them are never read. idx is the
// bracket index of the body that the object is part of, or nil.
type object struct {
	members []member
	idx     *brackets
}

// member is one name and value of a JSON object. The name is unescaped.
type member struct {
	name  []byte
	value json.RawMessage
}

// get returns the value of the member called key, or nil. A repeated name
// gives its last value, as json.Unmarshal does.
func (o object) get(key string) json.RawMessage {
	for i := len(o.members) - 1; i >= 0; i-- {
		if string(o.members[i].name) == key {
			return o.members[i].value
		}
	}
	return nil
}

// ok reports whether o was a JSON object.
func (o object) ok() bool {
	return o.members != nil
}

// parseObject returns the members of raw, with no members when raw is not
// a JSON object. The members are sub-slices of raw.
//
// raw must be valid JSON. Decode and DecodeEvent validate the whole body
// once and index its brackets in idx, and every value that the decoder
// splits further is part of it, so the split does not validate or scan
// each nesting level again.
func parseObject(raw []byte, idx *brackets) object {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return object{}
	}
	members, ok := splitObject(raw, idx)
	if !ok {
		// Not reached for valid JSON; json.Unmarshal decides as before.
		var byName map[string]json.RawMessage
		if err := json.Unmarshal(raw, &byName); err != nil {
			return object{}
		}
		members = []member{}
		for name, value := range byName {
			members = append(members, member{name: []byte(name), value: value})
		}
	}
	return object{members: members, idx: idx}
}

// text returns a member as a string. Numbers keep their JSON text and
// booleans become "true" or "false". Objects, arrays and null give "".
func (o object) text(key string) string {
	return scalarText(o.get(key))
}

func (o object) int64(key string) Int64 {
	return ParseInt64(o.get(key))
}

func (o object) number(key string) json.Number {
	return ParseNumber(o.get(key))
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
	return parseObject(o.get(key), o.idx)
}

// array returns the elements of a member that is a JSON array, or nil.
func (o object) array(key string) []json.RawMessage {
	raw := trimJSONSpace(o.get(key))
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	elements, ok := splitArray(raw, o.idx)
	if !ok {
		// Not reached for valid JSON; json.Unmarshal decides as before.
		if err := json.Unmarshal(raw, &elements); err != nil {
			return nil
		}
	}
	return elements
}

// objects returns the elements of a member that is a JSON array, each
// parsed as an object, or nil when the member is not an array. An element
// that is not an object gives an object without members.
func (o object) objects(key string) []object {
	elements := o.array(key)
	if elements == nil {
		return nil
	}
	objects := make([]object, len(elements))
	for i, raw := range elements {
		objects[i] = parseObject(raw, o.idx)
	}
	return objects
}

// attributes returns a member that is a JSON object as a map that keeps each
// value's JSON type: string, json.Number, bool, nil, []any or map[string]any.
// It returns nil when the member is not an object.
func (o object) attributes(key string) map[string]any {
	raw := trimJSONSpace(o.get(key))
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	members, ok := splitObject(raw, o.idx)
	if !ok {
		return decodeAttributes(raw)
	}
	attributes := make(map[string]any, len(members))
	for _, m := range members {
		v, ok := attributeValue(m.value)
		if !ok {
			return decodeAttributes(raw)
		}
		attributes[string(m.name)] = v // a repeated name keeps its last value
	}
	return attributes
}

// attributeValue decodes one attribute value as decodeAttributes would:
// strings, json.Number, booleans and nil directly, nested objects and
// arrays through encoding/json.
func attributeValue(raw []byte) (any, bool) {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 {
		return nil, false
	}
	switch c := raw[0]; {
	case c == '"':
		if s, ok := plainString(raw); ok {
			return s, true
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err == nil
	case c == 't':
		return true, true
	case c == 'f':
		return false, true
	case c == 'n':
		return nil, true
	case c == '-' || (c >= '0' && c <= '9'):
		return json.Number(raw), true
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var v any
	err := decoder.Decode(&v)
	return v, err == nil
}

// decodeAttributes decodes a JSON object with encoding/json, numbers as
// json.Number. attributes gives the same result faster for valid input.
func decodeAttributes(raw []byte) map[string]any {
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var attributes map[string]any
	if err := decoder.Decode(&attributes); err != nil {
		return nil
	}
	return attributes
}

// sortedKeys returns the distinct member names of o in byte order, for a
// deterministic walk over an object map.
func (o object) sortedKeys() []string {
	keys := make([]string, 0, len(o.members))
	seen := make(map[string]bool, len(o.members))
	for _, m := range o.members {
		if name := string(m.name); !seen[name] {
			seen[name] = true
			keys = append(keys, name)
		}
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
		if !jsonvalid.Valid(raw) {
			return ""
		}
		return string(raw)
	case bytes.Equal(raw, []byte("true")), bytes.Equal(raw, []byte("false")):
		return string(raw)
	}
	return ""
}

// trimJSONSpace removes the whitespace that JSON allows around a value.
// It loops over the bytes because bytes.Trim builds its set of cut bytes
// on every call, 2 % of the forwarder's CPU.
func trimJSONSpace(raw []byte) []byte {
	start, end := 0, len(raw)
	for start < end && isJSONSpace(raw[start]) {
		start++
	}
	for end > start && isJSONSpace(raw[end-1]) {
		end--
	}
	return raw[start:end]
}

// isJSONSpace reports whether c is whitespace in JSON's grammar.
func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}
