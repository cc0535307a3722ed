package policy

import (
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/auth"
)

func mustParse(t *testing.T, s string) Config {
	t.Helper()
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return c
}

func TestMostSpecificRuleDecides(t *testing.T) {
	cfg := mustParse(t, `{
		"default": "deny",
		"tools": {
			"crm__*": ["crm:read"],
			"crm__delete_*": ["crm:admin"],
			"crm__delete_all": "deny",
			"*__delete_*": ["danger"],
			"wiki__search": "allow",
			"*": ["tools:call"]
		},
		"resources": {"file:///pub/*": []}
	}`)
	p, err := New(cfg, Need{Deny: true},
		Builtin{Tool, "issue_token", Need{Scopes: []string{"admin"}}},
		Builtin{Tool, "whoami", Need{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind Kind
		name string
		want string
	}{
		{Tool, "crm__list", "crm:read"},
		{Tool, "crm__delete_one", "crm:admin"}, // 11 literal chars beat 9 and 4
		{Tool, "crm__delete_all", "deny"},      // exact beats every glob
		{Tool, "wiki__search", "any caller"},
		{Tool, "wiki__delete_page", "danger"},
		{Tool, "other", "tools:call"},
		{Tool, "issue_token", "admin"}, // a glob never overrides a built-in
		{Tool, "whoami", "any caller"},
		{Prompt, "crm__list", "deny"}, // kinds do not share rules
		{Resource, "file:///pub/a/b.txt", "any caller"},
		{Resource, "file:///etc/passwd", "deny"},
	} {
		if got := p.Need(tc.kind, tc.name).String(); got != tc.want {
			t.Errorf("Need(%s, %q) = %q, want %q", tc.kind, tc.name, got, tc.want)
		}
	}
}

func TestEquallySpecificRulesCombineWhateverTheirOrder(t *testing.T) {
	// "a*c" and "ab*" both have 2 literal characters and both match "abc".
	for _, doc := range []string{
		`{"tools": {"a*c": ["x"], "ab*": ["y"]}}`,
		`{"tools": {"ab*": ["y"], "a*c": ["x"]}}`,
	} {
		p, err := New(mustParse(t, doc), Need{})
		if err != nil {
			t.Fatal(err)
		}
		n := p.Need(Tool, "abc")
		if n.Allows(auth.Scopes{"x"}) || n.Allows(auth.Scopes{"y"}) || !n.Allows(auth.Scopes{"x", "y"}) {
			t.Errorf("%s: equally specific rules must all hold, got %v", doc, n)
		}
	}
}

func TestOperatorExactRuleReplacesBuiltin(t *testing.T) {
	p, err := New(mustParse(t, `{"tools": {"issue_token": ["minter"]}}`), Need{Deny: true},
		Builtin{Tool, "issue_token", Need{Scopes: []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Need(Tool, "issue_token").String(); got != "minter" {
		t.Fatalf("Need(issue_token) = %q, want the operator's minter", got)
	}
}

func TestDefaultComesFromConfigOrCaller(t *testing.T) {
	p, _ := New(Config{}, Need{Deny: true})
	if !p.Need(Tool, "x").Deny {
		t.Error("caller's default deny not applied")
	}
	p, _ = New(mustParse(t, `{"default": ["tools:call"]}`), Need{Deny: true})
	if got := p.Need(Tool, "x").String(); got != "tools:call" {
		t.Errorf("config default = %q, want tools:call", got)
	}
}

func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		need    Need
		granted auth.Scopes
		want    bool
	}{
		{Need{}, nil, true},
		{Need{Deny: true}, auth.Scopes{"admin"}, false},
		{Need{Scopes: []string{"a", "b"}}, auth.Scopes{"a"}, false},
		{Need{Scopes: []string{"a", "b"}}, auth.Scopes{"b", "a"}, true},
		{Need{Scopes: []string{"a"}}, auth.Scopes{"admin"}, true}, // admin holds every scope
	} {
		if got := tc.need.Allows(tc.granted); got != tc.want {
			t.Errorf("%v.Allows(%v) = %v, want %v", tc.need, tc.granted, got, tc.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"a*", "a", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abcbc", true},
		{"a*c", "abcb", false},
		{"*b*", "abc", true},
		{"*b*", "ac", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, // prefix and suffix may not overlap
		{"*", "", true},
		{"x", "x", true},
		{"x", "xx", false},
	} {
		r := rule{pattern: tc.pattern, parts: strings.Split(tc.pattern, "*")}
		if got := r.match(tc.name); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestParseRefusesWhatItCannotRead(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"tool": {"a": []}}`, `unknown field "tool"`},
		{`{"tools": {"a": "crm:read"}}`, `is not a requirement`},
		{`{"tools": {"a": 3}}`, `a requirement is a list of scopes`},
		{`{"tools": {"a": ["bad scope"]}}`, `invalid scope`},
		{`{"default": "maybe"}`, `is not a requirement`},
		{`{} {}`, `unexpected data`},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tc.doc, err, tc.want)
		}
	}
	if _, err := New(mustParse(t, `{"tools": {"a**": []}}`), Need{}); err == nil {
		t.Error(`New accepted "a**"`)
	}
	if _, err := New(mustParse(t, `{"prompts": {"": []}}`), Need{}); err == nil {
		t.Error(`New accepted an empty name`)
	}
}

func TestScopesListsEveryNamedScope(t *testing.T) {
	p, _ := New(mustParse(t, `{"default": ["d"], "tools": {"a": ["x", "y"]}, "resources": {"r*": ["z", "x"]}}`), Need{})
	if got := strings.Join(p.Scopes(), " "); got != "d x y z" {
		t.Fatalf("Scopes() = %q", got)
	}
}

// Need runs three times per tools/call: finding the deciding rule does not
// allocate.
func TestNeedDoesNotAllocate(t *testing.T) {
	p, err := New(mustParse(t, `{"tools": {"crm__*": ["crm:read"], "*": ["tools:call"]}}`), Need{Deny: true},
		Builtin{Tool, "whoami", Need{}}, Builtin{Tool, "issue_token", Need{Scopes: []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"whoami", "issue_token", "crm__list", "other"} {
		if n := testing.AllocsPerRun(100, func() { p.Need(Tool, name) }); n != 0 {
			t.Errorf("Need(Tool, %q) allocates %v times", name, n)
		}
	}
}
