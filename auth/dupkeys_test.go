package auth

import "testing"

func TestDuplicateKeys(t *testing.T) {
	cases := map[string]bool{
		`{}`:      false,
		`{"a":1}`: false,
		`{"a":1,"b":"x,}","c":[1,{"a":2}],"d":{"a":1}}`: false,
		` { "a" : "q\"uote" , "b" : null } `:            false,
		`{"a":1,"a":2}`:                                 true,
		`{"sub":"x","scope":"a","sub":"admin"}`:         true,
		`{"s\u0075b":"x"}`:                              true, // escaped names are refused
		`[1,2]`:                                         true,
		`{"a":1`:                                        true,
		`{"a" 1}`:                                       true,
		`{"a":"unterminated}`:                           true,
		``:                                              true,
		`{"a":1,}`:                                      true,
		`{"a":{"b":1,"b":2}}`:                           false, // only top-level members matter
	}
	for in, want := range cases {
		if got := duplicateKeys([]byte(in)); got != want {
			t.Errorf("duplicateKeys(%s) = %v, want %v", in, got, want)
		}
	}
}

// duplicateKeys reports whether a JSON object repeats a top-level member
// name (or is not a well-formed object).
func duplicateKeys(obj []byte) bool { return scanObject(obj, noTypeCheck) != nil }
