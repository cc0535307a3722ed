package strictjson

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type T struct {
		A int `json:"a"`
	}
	for _, tc := range []struct{ in, err string }{
		{`{"a": 1}`, ""},
		{` {"a": 1} `, ""},
		{`{"b": 1}`, `unknown field "b"`},
		{`{"a": 1} {}`, "unexpected data"},
		{`{"a": 1} x`, "unexpected data"},
		{`{"a": "x"}`, "cannot unmarshal"},
		{``, "EOF"},
	} {
		var v T
		err := Decode([]byte(tc.in), &v)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Decode(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
}
