package idp

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
)

// Rule: the scope claim is read where the provider puts it and mapped;
// with a map, values it does not name are dropped unless keep_unmapped;
// "admin" is granted only by a map entry; invalid names are dropped.
func TestScopesAreReadAndMapped(t *testing.T) {
	claims := jwt.MapClaims{
		"scope":        "crm:read admin bad\"name",
		"scp":          []any{"a", "b c"},
		"roles":        "reader",
		"realm_access": map[string]any{"roles": []any{"crm-reader", "crm-admin", "offline_access"}},
	}
	for _, tc := range []struct {
		name string
		p    Provider
		want string
	}{
		{"scope, as it is", Provider{}, "crm:read"},
		{"scp array", Provider{ScopeClaim: "scp"}, "a b c"},
		{"roles string", Provider{ScopeClaim: "roles"}, "reader"},
		{"nested roles, mapped", Provider{ScopeClaim: "realm_access.roles", ScopeMap: map[string]auth.Scopes{
			"crm-reader": {"crm:read"}, "crm-admin": {"crm:read", "crm:write", "admin"}}}, "crm:read crm:write admin"},
		{"mapped, unmapped kept", Provider{ScopeClaim: "realm_access.roles", KeepUnmapped: true, ScopeMap: map[string]auth.Scopes{
			"crm-reader": {"crm:read"}}}, "crm:read crm-admin offline_access"},
		{"admin passed through is dropped", Provider{ScopeMap: map[string]auth.Scopes{"x": {"y"}}, KeepUnmapped: true}, "crm:read"},
		{"missing claim", Provider{ScopeClaim: "groups"}, ""},
		{"path through a string", Provider{ScopeClaim: "roles.x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &trusted{p: tc.p}
			if got := tr.scopes(claims).String(); got != tc.want {
				t.Fatalf("scopes = %q, want %q", got, tc.want)
			}
		})
	}
}

// Rule: the trusted-issuers file is decoded strictly, and each mistake
// is reported naming the entry.
func TestParseNamesTheEntryAtFault(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"providers":[{"name":"corp","issuer":"https://a.example.com"}]}`, ""},
		{`{"providers":[{"name":"corp","issuer":"https://a.example.com","scope_claim":"realm_access.roles","scope_map":{"r":"crm:read","w":["crm:read","crm:write"]},"keep_unmapped":true,"audience":"api://x","jwks_uri":"https://a.example.com/keys","allow_typ_jwt":true}]}`, ""},
		{`{"providers":[]}`, "no providers"},
		{`{"provider":[]}`, `unknown field "provider"`},
		{`{"providers":[{"name":"corp","issuer":"https://a.example.com","scopes":"x"}]}`, `providers[0]: json: unknown field "scopes"`},
		{`{"providers":[{"name":"corp","issuer":"https://a.example.com","name":"x"}]}`, `providers[0]: `},
		{`{"providers":[{"name":"corp","issuer":"http://a.example.com"}]}`, `providers[0] "corp": "issuer": "http://a.example.com" must be an https URL`},
		{`{"providers":[{"name":"corp","issuer":"http://127.0.0.1:8000"}]}`, `only to loopback in development mode`},
		{`{"providers":[{"name":"co:rp","issuer":"https://a.example.com"}]}`, `providers[0] "co:rp": "name" must be`},
		{`{"providers":[{"name":"OAuth","issuer":"https://a.example.com"}]}`, `"oauth" is reserved`},
		{`{"providers":[{"name":"McpAuth","issuer":"https://a.example.com"}]}`, `"mcpauth" is reserved`},
		{`{"providers":[{"name":"a","issuer":"https://a.example.com"},{"name":"a","issuer":"https://b.example.com"}]}`, `providers[0] and providers[1] are both named "a"`},
		{`{"providers":[{"name":"a","issuer":"https://a.example.com"},{"name":"b","issuer":"https://a.example.com"}]}`, `both name issuer "https://a.example.com"`},
		{`{"providers":[{"name":"a","issuer":"https://a.example.com","scope_map":{"r":"bad scope\""}}]}`, `"scope_map" "r"`},
		{`{"providers":[{"name":"a","issuer":"https://a.example.com","keep_unmapped":true}]}`, `"keep_unmapped" needs a "scope_map"`},
		{`{"providers":[{"name":"a","issuer":"https://a.example.com","scope_claim":"a..b"}]}`, `"scope_claim"`},
		{`{"providers":[{"name":"a","issuer":"https://a.example.com","jwks_uri":"http://x.example.com"}]}`, `"jwks_uri"`},
	} {
		_, err := Parse([]byte(tc.doc), false)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Parse(%s) = %v, want %q", tc.doc, err, tc.want)
		}
	}
}
