// Native Go fuzz test for the strict tool-argument decoder.
//
// The seeds (f.Add below and testdata/fuzz/FuzzDecode/) run as ordinary
// tests with `go test ./internal/args`. To fuzz for longer, run
//
//	go test ./internal/args -run '^$' -fuzz '^FuzzDecode$' -fuzztime 10m
//
// The generated corpus is kept in $GOCACHE/fuzz, outside the repository. A
// failing input is written to testdata/fuzz/FuzzDecode/; commit it only
// together with the fix.

package args

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// fuzzKnown are the argument names FuzzDecode decodes against (those of
// the token-issuing tools).
var fuzzKnown = []string{"client_id", "expires_in", "scopes"}

// topLevelKeys walks a JSON object's top-level keys with a json.Decoder,
// independently of Decode. ok is false when data is not exactly one
// valid JSON object.
func topLevelKeys(data []byte) (keys []string, ok bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, isStr := tok.(string)
		if !isStr {
			return nil, false
		}
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	return keys, true
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"my-app","expires_in":"30d","scopes":["read","write"]}`,
		`{"client_id":"my-app","scopes":"read write"}`,
		`{}`, `null`, ``, "  \n\t", `[]`, `"client_id"`, `42`,
		`{"client_id":"ok","client_id":"evil"}`,
		`{"client_id":"ok","CLIENT_ID":"evil"}`,
		`{"Client_Id":"x"}`,
		`{"client\u005fid":"escaped"}`,
		`{"ſcopes":"long s folds to s"}`,
		`{"unknown":1}`,
		`{"client_id":null,"scopes":null,"expires_in":null}`,
		`{"scopes":[1,2]}`,
		`{"client_id":{"nested":{"client_id":"x"}}}`,
		`{"client_id":"a"} {"scopes":"b"}`,
		`{"client_id":"a",}`,
		`{"client_id":"a"`,
		"{\"client_id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		args, err := Decode(data, fuzzKnown...)
		keys, isObject := topLevelKeys(data)

		if err != nil {
			if args != nil {
				t.Fatalf("Decode(%q) returned %v together with error %v", data, args, err)
			}
			// A valid object of distinct known keys must be accepted.
			if isObject && len(data) <= MaxBytes {
				allKnown := true
				for i, k := range keys {
					if !slices.Contains(fuzzKnown, k) || slices.Contains(keys[:i], k) {
						allKnown = false
					}
				}
				if allKnown {
					t.Fatalf("Decode(%q) refused an object of distinct known keys: %v", data, err)
				}
			}
			return
		}

		if args == nil {
			t.Fatalf("Decode(%q) returned nil Args without error", data)
		}
		for k := range args {
			if !slices.Contains(fuzzKnown, k) {
				t.Fatalf("Decode(%q) returned unknown key %q", data, k)
			}
		}
		if isObject {
			for i, k := range keys {
				if !slices.Contains(fuzzKnown, k) {
					t.Fatalf("Decode(%q) accepted an object with unknown key %q", data, k)
				}
				for _, prev := range keys[:i] {
					if strings.EqualFold(prev, k) || strings.ToLower(prev) == strings.ToLower(k) {
						t.Fatalf("Decode(%q) accepted keys %q and %q, which differ only in case", data, prev, k)
					}
				}
				if _, has := args[k]; !has {
					t.Fatalf("Decode(%q) dropped key %q", data, k)
				}
			}
			if len(args) != len(keys) {
				t.Fatalf("Decode(%q) returned %d keys for an object of %d", data, len(args), len(keys))
			}
		} else {
			// Only empty input and null are accepted without being an object.
			if trimmed := bytes.TrimSpace(data); len(trimmed) != 0 && !bytes.Equal(trimmed, []byte("null")) {
				t.Fatalf("Decode(%q) accepted input that is not an object", data)
			}
			if len(args) != 0 {
				t.Fatalf("Decode(%q) = %v for input that is not an object", data, args)
			}
		}

		for _, name := range append(slices.Clone(fuzzKnown), "missing", "") {
			s, ok, serr := args.Str(name)
			if serr != nil && (ok || s != "") {
				t.Fatalf("Str(%q) = %q, %v with error %v", name, s, ok, serr)
			}
			if _, has := args[name]; !has && (ok || serr != nil) {
				t.Fatalf("Str(%q) on an absent key = %v, %v", name, ok, serr)
			}
			strs, serr := args.Strs(name)
			if serr != nil && strs != nil {
				t.Fatalf("Strs(%q) = %q with error %v", name, strs, serr)
			}
		}
	})
}
