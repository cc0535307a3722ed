package strictjson

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		keys []string
		err  string
	}{
		{`{}`, nil, ""},
		{` { } `, nil, ""},
		{`{"a":1,"b":"x,}","c":[1,{"a":2}],"d":{"a":1}}`, []string{"a", "b", "c", "d"}, ""},
		{` { "a" : "q\"uote" , "b" : null } `, []string{"a", "b"}, ""},
		{`{"a":{"b":1,"b":2}}`, []string{"a"}, ""}, // only top-level members matter
		{`{"a\u0062":1}`, []string{"ab"}, ""},
		{`{"a":1,"a":2}`, nil, `member "a" is given more than once`},
		{`{"sub":"x","scope":"a","SUB":"admin"}`, nil, `member "SUB" is given more than once`},
		{`{"ab":1,"a\u0062":2}`, nil, `member "ab" is given more than once`},
		{`{"ſ":1,"s":2}`, nil, "given more than once"},           // long s folds to s, as encoding/json matches it
		{"{\"\xff\":1,\"\xfe\":2}", nil, "given more than once"}, // both decode to U+FFFD
		{`[1,2]`, nil, "not a JSON object"},
		{`"a"`, nil, "not a JSON object"},
		{``, nil, "not a JSON object"},
		{`{"a":1`, nil, "malformed"},
		{`{"a" 1}`, nil, "malformed"},
		{`{"a":"unterminated}`, nil, "malformed"},
		{`{"a":1,}`, nil, "malformed"},
		{`{"a":}`, nil, "malformed"},
		{`{"a":1} {}`, nil, "malformed"},
	} {
		keys, err := Keys([]byte(tc.in))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Keys(%s) error = %v, want %q", tc.in, err, tc.err)
		}
		if !slices.Equal(keys, tc.keys) {
			t.Errorf("Keys(%s) = %q, want %q", tc.in, keys, tc.keys)
		}
	}
}

func TestWalkStopsAtTheObjectAndPassesFnErrors(t *testing.T) {
	in := []byte(` {"a":[1,"]"],"b":-2.5e3} trailing`)
	var got []string
	end, err := Walk(in, func(name, value []byte) error {
		got = append(got, string(name)+"="+string(value))
		return nil
	})
	if err != nil || end != len(` {"a":[1,"]"],"b":-2.5e3}`) || !slices.Equal(got, []string{`a=[1,"]"]`, `b=-2.5e3`}) {
		t.Fatalf("Walk = %d, %v, %q", end, err, got)
	}
	stop := errors.New("stop")
	if _, err := Walk([]byte(`{"a":1}`), func(_, _ []byte) error { return stop }); err != stop {
		t.Fatalf("Walk returned %v, want fn's error", err)
	}
	var dup *DuplicateError
	if _, err := Walk([]byte(`{"a":1,"A":2}`), func(_, _ []byte) error { return nil }); !errors.As(err, &dup) || dup.Name != "A" {
		t.Fatalf("Walk returned %v, want a *DuplicateError for A", err)
	}
}

func TestWalkDoesNotAllocate(t *testing.T) {
	in := []byte(`{"iss":"mcpauth","sub":"a","aud":"x","exp":1,"nbf":2,"iat":3,"jti":"j","scope":"a b"}`)
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = Walk(in, func(_, _ []byte) error { n++; return nil })
	})
	if allocs != 0 {
		t.Fatalf("Walk allocates %v times per object", allocs)
	}
}
