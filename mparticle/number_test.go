package mparticle

import (
	"encoding/json"
	"testing"
)

func TestParseInt64(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Int64
	}{
		{"json number", `1712000000123`, Int64{1712000000123, true}},
		{"negative number", `-6518616552181726857`, Int64{-6518616552181726857, true}},
		{"above 2^53", `9007199254740993`, Int64{9007199254740993, true}},
		{"int64 max", `9223372036854775807`, Int64{9223372036854775807, true}},
		{"int64 min string", `"-9223372036854775808"`, Int64{-9223372036854775808, true}},
		{"numeric string", `"1234"`, Int64{1234, true}},
		{"string with spaces", `"  65000 "`, Int64{65000, true}},
		{"space around number", " 17 \n", Int64{17, true}},
		{"plus sign in string", `"+8"`, Int64{8, true}},
		{"fraction truncated", `1432825980486.9`, Int64{1432825980486, true}},
		{"negative fraction truncated", `"-2.7"`, Int64{-2, true}},
		{"exponent", `1.7120002001e12`, Int64{1712000200100, true}},
		{"exponent in string", `"1.5E3"`, Int64{1500, true}},
		{"negative exponent", `5e-3`, Int64{0, true}},
		{"trailing zero fraction", `"1712000200000.0"`, Int64{1712000200000, true}},
		{"null", `null`, Int64{}},
		{"missing", ``, Int64{}},
		{"empty string", `""`, Int64{}},
		{"blank string", `"   "`, Int64{}},
		{"word", `"soon"`, Int64{}},
		{"boolean", `true`, Int64{}},
		{"object", `{"n": 1}`, Int64{}},
		{"array", `[1]`, Int64{}},
		{"above int64", `9223372036854775808`, Int64{}},
		{"huge exponent", `1e400`, Int64{}},
		{"hex string", `"0x10"`, Int64{}},
		{"NaN string", `"NaN"`, Int64{}},
		{"invalid json number", `01`, Int64{}},
		{"int64 min", `-9223372036854775808`, Int64{-9223372036854775808, true}},
		{"below int64", `"-9223372036854775809"`, Int64{}},
		{"19 nines", `9999999999999999999`, Int64{}},
		{"20 digits", `12345678901234567890`, Int64{}},
		{"leading zeros in string", `"007"`, Int64{7, true}},
		{"negative zero", `-0`, Int64{0, true}},
		{"minus only", `"-"`, Int64{}},
		{"one quote", `"12`, Int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseInt64([]byte(tt.raw))
			if got != tt.want {
				t.Errorf("ParseInt64(%s) = %+v, want %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestInt64UnmarshalNeverFails(t *testing.T) {
	var v struct {
		A Int64 `json:"a"`
		B Int64 `json:"b"`
		C Int64 `json:"c"`
	}
	body := `{"a": "-42", "b": {"x": 1}, "c": 18014398509481985}`
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if v.A != (Int64{-42, true}) {
		t.Errorf("a = %+v, want -42", v.A)
	}
	if v.B.Valid {
		t.Errorf("b = %+v, want invalid", v.B)
	}
	if v.C != (Int64{18014398509481985, true}) {
		t.Errorf("c = %+v, want 18014398509481985", v.C)
	}
}

func TestInt64String(t *testing.T) {
	if got := (Int64{Value: -7636538281262557000, Valid: true}).String(); got != "-7636538281262557000" {
		t.Errorf("String() = %q", got)
	}
	if got := (Int64{Value: 5}).String(); got != "" {
		t.Errorf("String() of invalid = %q, want empty", got)
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		raw  string
		want json.Number
	}{
		{`14.99`, "14.99"},
		{`"19.90"`, "19.90"},
		{`" 3 "`, "3"},
		{`123`, "123"},
		{`1e3`, "1e3"},
		{`"free"`, ""},
		{`"+5"`, ""},
		{`null`, ""},
		{`true`, ""},
		{`{}`, ""},
	}
	for _, tt := range tests {
		if got := ParseNumber([]byte(tt.raw)); got != tt.want {
			t.Errorf("ParseNumber(%s) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
