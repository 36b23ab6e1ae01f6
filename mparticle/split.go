package mparticle

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"unicode/utf8"
)

// splitObject splits a JSON object into its members in order, in one pass
// and without copying: each member value is a sub-slice of raw. It reports
// false when raw is not a well-formed object, which valid JSON never is, so
// that the caller can fall back to json.Unmarshal.
func splitObject(raw []byte, idx *brackets) ([]member, bool) {
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return []member{}, true
	}
	// The members are collected on the stack and copied into a slice of
	// the exact size. Growing a slice from a capacity of 8 allocated 2.5
	// times as many bytes in BenchmarkDecodeGenerated.
	var buf [32]member
	members := buf[:0]
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
		end, ok := skipValue(raw, start, idx)
		if !ok {
			return nil, false
		}
		members = append(members, member{name: name, value: json.RawMessage(raw[start:end])})
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case '}':
			return append([]member(nil), members...), true
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
func splitArray(raw []byte, idx *brackets) ([]json.RawMessage, bool) {
	i := skipSpace(raw, 1)
	elements := []json.RawMessage{}
	if i < len(raw) && raw[i] == ']' {
		return elements, true
	}
	for i < len(raw) {
		end, ok := skipValue(raw, i, idx)
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

// skipValue returns the index just past the value that starts at i. It
// looks the end of an object or array up in idx when raw is part of the
// indexed body, and scans for it otherwise.
func skipValue(raw []byte, i int, idx *brackets) (int, bool) {
	if i >= len(raw) {
		return 0, false
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		if end, ok := idx.end(raw, i); ok {
			return end, true
		}
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

// brackets records where each object and array of a valid JSON body ends,
// found in one pass. Without it, each nesting level that the decoder
// splits scans the levels below it again, and skipping nested values took
// 14 % of the forwarder's CPU.
type brackets struct {
	body  []byte
	opens []int32 // offsets of '{' and '[' in body, ascending
	ends  []int32 // ends[k] is the offset just past the match of opens[k]
}

// indexBrackets returns the brackets of body, which must be valid JSON. It
// returns nil when the brackets do not match.
func indexBrackets(body []byte) *brackets {
	if len(body) > math.MaxInt32 {
		return nil
	}
	b := &brackets{body: body}
	var open []int // positions in b.opens of the brackets not yet closed
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			end, ok := skipString(body, i)
			if !ok {
				return nil
			}
			i = end - 1
		case '{', '[':
			open = append(open, len(b.opens))
			b.opens = append(b.opens, int32(i))
			b.ends = append(b.ends, 0)
		case '}', ']':
			if len(open) == 0 {
				return nil
			}
			b.ends[open[len(open)-1]] = int32(i + 1)
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		return nil
	}
	return b
}

// end returns the index in raw just past the object or array that starts
// at raw[i]. It reports false when b is nil or raw is not a slice of b's
// body. Every value that the decoder splits is such a slice, so its
// offset in the body is the difference of the capacities.
func (b *brackets) end(raw []byte, i int) (int, bool) {
	if b == nil {
		return 0, false
	}
	offset := cap(b.body) - cap(raw)
	if offset < 0 || offset+i >= len(b.body) || &b.body[offset+i] != &raw[i] {
		return 0, false
	}
	k, found := slices.BinarySearch(b.opens, int32(offset+i))
	if !found {
		return 0, false
	}
	end := int(b.ends[k]) - offset
	if end > len(raw) {
		return 0, false
	}
	return end, true
}
