package iterable

import (
	"encoding/json"
	"slices"
	"strconv"
)

// AppendEvent appends the JSON encoding of ev to dst. The bytes equal what
// json.Marshal produces for ev. Strings of plain ASCII, integers and
// booleans are written directly, and every other value goes through
// json.Marshal. The forwarder encodes every event it sends, and json.Marshal
// spent most of that time sorting and reflecting over DataFields.
func AppendEvent(dst []byte, ev *Event) ([]byte, error) {
	dst = append(dst, '{')
	if ev.Email != "" {
		dst = append(dst, `"email":`...)
		dst = appendString(dst, ev.Email)
		dst = append(dst, ',')
	}
	if ev.UserID != "" {
		dst = append(dst, `"userId":`...)
		dst = appendString(dst, ev.UserID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"eventName":`...)
	dst = appendString(dst, ev.EventName)
	if ev.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, ev.ID)
	}
	if ev.CreatedAt != 0 {
		dst = append(dst, `,"createdAt":`...)
		dst = strconv.AppendInt(dst, ev.CreatedAt, 10)
	}
	if len(ev.DataFields) > 0 {
		dst = append(dst, `,"dataFields":`...)
		var err error
		if dst, err = appendFields(dst, ev.DataFields); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendFields appends a JSON object with the keys in sorted order, as
// json.Marshal writes a map.
func appendFields(dst []byte, fields map[string]any) ([]byte, error) {
	var stack [32]string
	keys := stack[:0]
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, fields[k]); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendValue appends one field value.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendString(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case nil:
		return append(dst, "null"...), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// appendString appends s as a JSON string. A string that json.Marshal would
// escape, because it contains a quote, a backslash, a control character,
// one of <, > and & or any byte past ASCII, goes through json.Marshal.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
