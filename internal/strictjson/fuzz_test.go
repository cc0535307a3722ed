// The one fuzz target for the strict-JSON walk, held against
// encoding/json. The seeds run with every `go test`; to fuzz longer:
//
//	go test ./internal/strictjson -run '^$' -fuzz '^FuzzWalk$' -fuzztime 10m
//
// A failing input is written to testdata/fuzz/FuzzWalk/; commit it only
// together with the fix.

package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// reference walks a valid JSON document with json.Decoder's tokens: its
// top-level member names and raw values when it is an object, refusing a
// name repeated exactly or ignoring case (the one encoding/json would let
// win when decoding into a struct).
func reference(data []byte) (keys []string, values []json.RawMessage, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, ErrNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k := tok.(string)
		for _, seen := range keys {
			if strings.EqualFold(seen, k) {
				return nil, nil, &DuplicateError{Name: k}
			}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys, values = append(keys, k), append(values, v)
	}
	return keys, values, nil
}

// FuzzWalk: for every input json.Valid accepts, Walk and Keys see exactly
// the members (names, values, refusals) encoding/json does; on any other
// input they stay in bounds, and Walk's end is never past the input.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":1,"b":[1,{"c":"}"}],"d":{"e":"\"{"}}`,
		`{"a" : true , "b" : null }`, `{"a":"x","A":"y"}`, `{"a\u0062":1,"ab":2}`,
		"{\"\xff\":1}", "{\"\xff\":1,\"\xfe\":2}", `{"ſ":1,"s":2}`, `{"K":1,"k":2}`,
		`{"a":-1.5e3,"b":"\\"}`, `[]`, `"a"`, `null`, `{"a":1} {"b":2}`,
		`{"a":1,}`, `{"a"}`, `{"a":[}`, `{"a":tru}`, "{\"a\":1}\n", `{"k":[[[[]]]],"l":{}}`,
		// A token's header and claims, and the spellings a forger would try.
		`{"alg":"HS256","typ":"JWT"}`,
		`{"iss":"mcpauth","sub":"my-app","iat":1767322245,"exp":1767325845,"jti":"j1","scope":"read write"}`,
		`{"iss":"mcpauth","sub":"attacker","sub":"admin","jti":"x"}`,
		`{"iss":"mcpauth","sub":"a","EXP":1,"exp":2}`,
		`{"s\u0075b":"x","sub":"y"}`,
		// A JSON-RPC message and its tool arguments.
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"ok","CLIENT_ID":"evil"}}}`,
		`{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var names []string
		var values [][]byte
		end, werr := Walk(data, func(name, value []byte) error {
			names, values = append(names, string(name)), append(values, value)
			return nil
		})
		if end < 0 || end > len(data) {
			t.Fatalf("Walk(%q) ended at %d of %d", data, end, len(data))
		}
		keys, err := Keys(data)
		if !json.Valid(data) {
			return // Walk and Keys do not judge the values' grammar
		}
		rkeys, rvalues, rerr := reference(data)
		var dup, rdup *DuplicateError
		switch {
		case rerr == nil:
			if err != nil || !slices.Equal(keys, rkeys) {
				t.Fatalf("Keys(%q) = %q, %v; encoding/json sees %q", data, keys, err, rkeys)
			}
			if werr != nil || len(values) != len(rvalues) {
				t.Fatalf("Walk(%q) = %q, %v; encoding/json sees %q", data, values, werr, rvalues)
			}
			for i := range values {
				if !bytes.Equal(values[i], rvalues[i]) {
					t.Fatalf("Walk(%q): value of %q is %q, encoding/json reads %q", data, names[i], values[i], rvalues[i])
				}
			}
		case errors.As(rerr, &rdup):
			if !errors.As(err, &dup) || dup.Name != rdup.Name || !errors.As(werr, &dup) {
				t.Fatalf("Keys(%q) = %q, %v, Walk %v; want the duplicate %q refused", data, keys, err, werr, rdup.Name)
			}
		case rerr == ErrNotObject:
			if err != ErrNotObject || werr != ErrNotObject {
				t.Fatalf("Keys(%q) = %q, %v, Walk %v; want ErrNotObject", data, keys, err, werr)
			}
		default:
			t.Fatalf("reference refused valid JSON %q: %v", data, rerr)
		}
	})
}
