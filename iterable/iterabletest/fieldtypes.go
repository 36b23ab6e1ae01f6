package iterabletest

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// fieldType is the type Iterable fixes for an event field on first use.
type fieldType string

const (
	typeString  fieldType = "string"
	typeLong    fieldType = "long"
	typeDouble  fieldType = "double"
	typeBoolean fieldType = "boolean"
	typeObject  fieldType = "object"
	typeArray   fieldType = "array"
	typeDate    fieldType = "date"
)

// Date formats that Iterable types as date, as block/iterable-go lists them
// in types/data_types.go from Iterable's Field Data Types page. Only the T
// form takes fractional seconds, and its layout accepts both a literal Z
// and a ±hh:mm offset.
var (
	dateLayouts = []string{
		"2006-01-02",
		"2006-01-02 15:04:05",
		"2006-01-02 15:04:05 -07:00",
	}
	fractionalDateLayout = "2006-01-02T15:04:05.000Z07:00"
)

// typeRegistry is a request's view of a project's field types: the types
// already stored plus those that earlier events of the request would set.
type typeRegistry struct {
	stored      map[string]fieldType
	staged      map[string]fieldType
	created     []string
	mismatches  map[string]any
	detectDates bool
}

// newTypeRegistry starts a request's view over the project's stored types.
func newTypeRegistry(stored map[string]fieldType, detectDates bool) *typeRegistry {
	return &typeRegistry{
		stored:      stored,
		staged:      make(map[string]fieldType),
		mismatches:  make(map[string]any),
		detectDates: detectDates,
	}
}

// check registers the types of an event's dataFields, recording a mismatch
// for each value whose type differs from the field's type. Nested objects
// type each inner field under its dotted path, as Iterable does.
func (r *typeRegistry) check(eventName, prefix string, fields map[string]any) {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		value := fields[name]
		incoming, ok := r.typeOf(value)
		if !ok {
			continue // null sets no type
		}
		path := prefix + name
		key := eventName + ":::" + path
		expected, known := r.stored[key]
		if !known {
			expected, known = r.staged[key]
		}
		switch {
		case !known:
			r.staged[key] = incoming
			r.created = append(r.created, path)
		case !compatible(expected, incoming):
			if _, seen := r.mismatches[key]; !seen {
				r.mismatches[key] = mismatch(expected, incoming, value)
			}
			continue
		}
		if nested, isObject := value.(map[string]any); isObject {
			r.check(eventName, path+".", nested)
		}
	}
}

// commit stores the staged types in the project's registry.
func (r *typeRegistry) commit() {
	maps.Copy(r.stored, r.staged)
}

// createdFields returns the new field paths, each once, sorted.
func (r *typeRegistry) createdFields() []string {
	fields := append([]string{}, r.created...)
	slices.Sort(fields)
	return slices.Compact(fields)
}

// typeOf returns the field type of a JSON value decoded with UseNumber,
// and false for null.
func (r *typeRegistry) typeOf(value any) (fieldType, bool) {
	switch v := value.(type) {
	case nil:
		return "", false
	case bool:
		return typeBoolean, true
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return typeLong, true
		}
		return typeDouble, true
	case string:
		if r.detectDates && isDate(v) {
			return typeDate, true
		}
		return typeString, true
	case map[string]any:
		return typeObject, true
	default:
		// NOTE: Iterable allows arrays of any type and may type an array
		// field by its elements. The simulator gives every array one type.
		return typeArray, true
	}
}

// compatible reports whether a value of type incoming may be stored in a
// field of type expected. A long fits a double field, and a date string
// fits a string field.
func compatible(expected, incoming fieldType) bool {
	switch {
	case expected == incoming:
		return true
	case expected == typeDouble && incoming == typeLong:
		return true
	case expected == typeString && incoming == typeDate:
		return true
	}
	return false
}

// mismatch builds one entry of params.validationErrors.
func mismatch(expected, incoming fieldType, value any) map[string]any {
	incomingTypes := []string{string(incoming)}
	if incoming == typeString {
		// Iterable lists "keyword" beside "string" for a string value, as
		// in the responses that block/iterable-go's parser tests decode.
		incomingTypes = append(incomingTypes, "keyword")
	}
	return map[string]any{
		"incomingTypes":  incomingTypes,
		"expectedType":   string(expected),
		"category":       "event",
		"offendingValue": value,
		"_type":          "UnexpectedType",
	}
}

// isDate reports whether s has one of Iterable's date formats.
func isDate(s string) bool {
	if len(s) < len("2006-01-02") || !strings.ContainsRune(s, '-') {
		return false
	}
	if strings.ContainsRune(s, '.') {
		// time.Parse accepts fractional seconds after any seconds field,
		// but Iterable does so only in the T form.
		_, err := time.Parse(fractionalDateLayout, s)
		return err == nil
	}
	for _, layout := range dateLayouts {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}
