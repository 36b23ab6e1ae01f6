package mparticle

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// splitObject splits a JSON object into its members in order, in one pass
// and without copying: each member value is a sub-slice of raw. It reports
// false when raw is not a well-formed object, which valid JSON never is, so
// that the caller can fall back to json.Unmarshal.
func splitObject(raw []byte) (object, bool) {
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return object{}, true
	}
	// The members are collected on the stack and copied into a slice of
	// the exact size. Growing a slice from a capacity of 8 allocated 2.5
	// times as many bytes in BenchmarkDecodeGenerated.
	var buf [32]member
	o := buf[:0]
	for i < len(raw) {
		keyEnd, ok := skipString(raw, i)
		if !ok {
			return nil, false
		}
		name, ok := memberName(raw[i:keyEnd])
		if !ok {
			return nil, false
		}
		i = skipSpace(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		start := skipSpace(raw, i+1)
		end, ok := skipValue(raw, start)
		if !ok {
			return nil, false
		}
		o = append(o, member{name: name, value: json.RawMessage(raw[start:end])})
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case '}':
			return append(object(nil), o...), true
		case ',':
			i = skipSpace(raw, i+1)
		default:
			return nil, false
		}
	}
	return nil, false
}

// splitArray splits a JSON array into its elements in one pass, as
// splitObject does for an object.
func splitArray(raw []byte) ([]json.RawMessage, bool) {
	i := skipSpace(raw, 1)
	elements := []json.RawMessage{}
	if i < len(raw) && raw[i] == ']' {
		return elements, true
	}
	for i < len(raw) {
		end, ok := skipValue(raw, i)
		if !ok {
			return nil, false
		}
		elements = append(elements, json.RawMessage(raw[i:end]))
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ']':
			return elements, true
		case ',':
			i = skipSpace(raw, i+1)
		default:
			return nil, false
		}
	}
	return nil, false
}

// memberName returns the name that a quoted JSON string denotes. A name
// without escapes and non-ASCII bytes is a sub-slice of quoted. Other names
// go through json.Unmarshal, so that they decode exactly as before.
func memberName(quoted []byte) ([]byte, bool) {
	if isPlainString(quoted) {
		return quoted[1 : len(quoted)-1], true
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// plainString returns the value of a quoted JSON string that contains only
// printable ASCII without escapes, the common case, and reports false for
// any other input.
func plainString(quoted []byte) (string, bool) {
	if !isPlainString(quoted) {
		return "", false
	}
	return string(quoted[1 : len(quoted)-1]), true
}

// isPlainString reports whether quoted is a JSON string of printable ASCII
// without escapes, whose value is the bytes between the quotes.
func isPlainString(quoted []byte) bool {
	n := len(quoted)
	if n < 2 || quoted[0] != '"' || quoted[n-1] != '"' {
		return false
	}
	for _, c := range quoted[1 : n-1] {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(raw []byte, i int) int {
	for i < len(raw) {
		switch raw[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts at i. It
// jumps from quote to quote with bytes.IndexByte instead of looking at
// every byte, and a quote ends the string when an even number of
// backslashes precedes it.
func skipString(raw []byte, i int) (int, bool) {
	if i >= len(raw) || raw[i] != '"' {
		return 0, false
	}
	for from := i + 1; ; {
		k := bytes.IndexByte(raw[from:], '"')
		if k < 0 {
			return 0, false
		}
		quote := from + k
		backslashes := 0
		for p := quote - 1; p > i && raw[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return quote + 1, true
		}
		from = quote + 1
	}
}

// skipValue returns the index just past the value that starts at i.
func skipValue(raw []byte, i int) (int, bool) {
	if i >= len(raw) {
		return 0, false
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		return skipNested(raw, i)
	}
	// A number, true, false or null runs until a delimiter.
	start := i
	for i < len(raw) {
		switch raw[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i, i > start
		}
		i++
	}
	return i, i > start
}

// skipNested returns the index just past the object or array at i,
// counting brackets outside strings.
func skipNested(raw []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			end, ok := skipString(raw, i)
			if !ok {
				return 0, false
			}
			i = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}
