// Package jsonvalid reports whether a byte slice is valid JSON. It returns
// the same result as encoding/json.Valid (a fuzz test compares the two) in
// about a quarter of the time on a 7 KB batch (BenchmarkValid).
//
// Layover validates every webhook body when it arrives and again when the
// forwarder decodes it. encoding/json.Valid runs its scanner's state machine
// through a function call per byte, and it was the largest CPU cost of the
// ingest handler in the benchmarks of cmd/layover-bench.
package jsonvalid

// maxDepth is the deepest nesting of objects and arrays that
// encoding/json accepts (its scanner's maxNestingDepth).
const maxDepth = 10000

// Valid reports whether data is one JSON value with optional whitespace
// around it. Like encoding/json.Valid, it does not check that strings are
// valid UTF-8.
func Valid(data []byte) bool {
	i, ok := value(data, skipSpace(data, 0), 0)
	return ok && skipSpace(data, i) == len(data)
}

// plain marks the bytes that may appear in a string without an escape and
// do not end it.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value checks the value that starts at i, nested depth levels deep, and
// returns the index just past it.
func value(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '{':
		return object(data, i+1, depth+1)
	case c == '[':
		return array(data, i+1, depth+1)
	case c == '"':
		return str(data, i+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return number(data, i)
	case c == 't':
		return literal(data, i, "true")
	case c == 'f':
		return literal(data, i, "false")
	case c == 'n':
		return literal(data, i, "null")
	}
	return i, false
}

// object checks the members of an object whose '{' is just before i.
func object(data []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipSpace(data, i)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, false
		}
		var ok bool
		if i, ok = str(data, i+1); !ok {
			return i, false
		}
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return i, false
		}
		if i, ok = value(data, skipSpace(data, i+1), depth); !ok {
			return i, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// array checks the elements of an array whose '[' is just before i.
func array(data []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipSpace(data, i)
	if i < len(data) && data[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = value(data, i, depth); !ok {
			return i, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// str checks a string whose opening quote is just before i.
func str(data []byte, i int) (int, bool) {
	for i < len(data) {
		c := data[i]
		if plain[c] {
			i++
			continue
		}
		switch c {
		case '"':
			return i + 1, true
		case '\\':
			n, ok := escape(data, i+1)
			if !ok {
				return i, false
			}
			i = n
		default: // a control character
			return i, false
		}
	}
	return i, false
}

// escape checks the escape sequence after a backslash at i-1.
func escape(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch data[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1, true
	case 'u':
		if i+5 > len(data) {
			return i, false
		}
		for _, h := range data[i+1 : i+5] {
			if !isHex(h) {
				return i, false
			}
		}
		return i + 5, true
	}
	return i, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func number(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		start := i + 1
		if i = digits(data, start); i == start {
			return i, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		start := i
		if i = digits(data, start); i == start {
			return i, false
		}
	}
	return i, true
}

func digits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

func literal(data []byte, i int, word string) (int, bool) {
	end := i + len(word)
	if end > len(data) || string(data[i:end]) != word {
		return i, false
	}
	return end, true
}
