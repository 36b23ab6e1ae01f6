package mparticle

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/layover-dev/layover/internal/jsonvalid"
)

// maxDecimalExponent bounds the exponent of a decimal such as "1.4e12" that
// ParseInt64 accepts. Any larger exponent cannot fit in an int64 unless the
// digits are all zero, and a bound keeps parsing cheap on hostile input.
const maxDecimalExponent = 40

// Int64 is a signed 64-bit integer from an mParticle payload, such as an id
// or a millisecond timestamp. mParticle sends these as JSON numbers, as
// numeric strings or as null, and ids go beyond 2^53 and can be negative, so
// the text is parsed with strconv and never passes through float64.
type Int64 struct {
	Value int64
	// Valid is false when the field was missing, null, blank, not a number or
	// out of the int64 range.
	Valid bool
}

// ParseInt64 parses a JSON value as an Int64. It accepts a JSON number or a
// string holding one, with surrounding whitespace, and truncates a fraction
// toward zero ("1432825980486.9" gives 1432825980486). Anything else gives an
// invalid Int64, never an error.
func ParseInt64(raw []byte) Int64 {
	if n, ok := parsePlainInt(trimJSONSpace(raw)); ok {
		return Int64{Value: n, Valid: true}
	}
	return parseInt64Text(raw)
}

// parseInt64Text is ParseInt64's general path, for every form it accepts.
func parseInt64Text(raw []byte) Int64 {
	text := strings.TrimSpace(scalarText(raw))
	if text == "" {
		return Int64{}
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return Int64{Value: n, Valid: true}
	}
	if !isJSONNumber(text) {
		return Int64{}
	}
	return parseDecimalInt(text)
}

// parsePlainInt parses an integer of at most 19 digits, with an optional
// minus sign, no leading zero and optional quotes around it, which is how
// ids and timestamps arrive. It reports false for anything else, which
// then takes ParseInt64's general path. The forwarder decodes several such
// numbers per event, and the general path allocated for each.
func parsePlainInt(raw []byte) (int64, bool) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		raw = raw[1 : n-1]
	}
	negative := len(raw) > 0 && raw[0] == '-'
	if negative {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 19 || (raw[0] == '0' && len(raw) > 1) {
		return 0, false
	}
	var u uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0') // 19 digits stay below 2^64
	}
	switch {
	case negative && u <= 1<<63:
		return int64(-u), true // -2^63 wraps to itself, the right value
	case !negative && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// UnmarshalJSON sets n from a JSON number, numeric string or null. It never
// returns an error, so one odd field cannot fail a whole batch.
func (n *Int64) UnmarshalJSON(data []byte) error {
	*n = ParseInt64(data)
	return nil
}

// String returns the decimal text of n, or "" when n is not valid.
func (n Int64) String() string {
	if !n.Valid {
		return ""
	}
	return strconv.FormatInt(n.Value, 10)
}

// parseDecimalInt converts a JSON number with a fraction or an exponent to
// its integer part by moving the decimal point in the digit string, so the
// result is exact.
func parseDecimalInt(text string) Int64 {
	mantissa, exponent := text, 0
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		e, err := strconv.Atoi(text[i+1:])
		if err != nil || e > maxDecimalExponent || e < -maxDecimalExponent {
			return Int64{}
		}
		mantissa, exponent = text[:i], e
	}
	sign := ""
	if strings.HasPrefix(mantissa, "-") {
		sign, mantissa = "-", mantissa[1:]
	}
	whole, fraction, _ := strings.Cut(mantissa, ".")
	digits := whole + fraction
	point := len(whole) + exponent
	switch {
	case point <= 0:
		return Int64{Value: 0, Valid: true}
	case point < len(digits):
		digits = digits[:point]
	default:
		digits += strings.Repeat("0", point-len(digits))
	}
	n, err := strconv.ParseInt(sign+digits, 10, 64)
	if err != nil {
		return Int64{}
	}
	return Int64{Value: n, Valid: true}
}

// ParseNumber returns the text of a JSON number, or of a string holding one
// with surrounding whitespace, as a json.Number. It returns "" for anything
// else. Amounts such as total_amount and price use it, so their exact decimal
// text is kept.
func ParseNumber(raw []byte) json.Number {
	text := strings.TrimSpace(scalarText(raw))
	if !isJSONNumber(text) {
		return ""
	}
	return json.Number(text)
}

// isJSONNumber reports whether text is a number in JSON's grammar, which is
// stricter than strconv's: no leading "+", no hex, no "NaN" or "Inf".
func isJSONNumber(text string) bool {
	if text == "" || (text[0] != '-' && (text[0] < '0' || text[0] > '9')) {
		return false
	}
	return jsonvalid.Valid([]byte(text))
}
