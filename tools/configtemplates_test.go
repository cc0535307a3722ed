package tools

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// Rule: issue_token's answer from the pre-rendered templates is byte for
// byte the one built from the maps, for every client kind; a token that
// would need escaping takes the slow path.
func TestConfigTemplatesRenderWhatTheMapsDo(t *testing.T) {
	for _, base := range []string{"https://mcp.example.test/", "http://127.0.0.1:8080/v1", "https://a.example/x?y=<&>"} {
		for _, server := range []string{"mcpauth", "my \"odd\" <server>"} {
			ct := newConfigTemplates(server, Endpoints{Base: trimSlash(base)})
			for _, kind := range ClientKinds {
				i := Issued{
					Token:  auth.IssuedToken{Token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl-_", JTI: "j", ClientID: "c", IssuedAt: time.Unix(1e9, 0), Scopes: auth.Scopes{"a"}},
					Expiry: auth.Expiry{Duration: time.Hour}, PublicURL: base, ServerName: server, Issuer: "mcpauth", Client: kind,
				}
				if !ct.serves(i) {
					t.Fatalf("%s %q: the templates do not serve a JWT", base, server)
				}
				slow, _ := json.Marshal(i.Result())
				fast, _ := json.Marshal(ct.wire(i))
				if !bytes.Equal(slow, fast) {
					t.Errorf("%s %q %s: structured content differs:\n slow %s\n fast %s", base, server, kind, slow, fast)
				}
				if i.Text() != i.text(ct) {
					t.Errorf("%s %q %s: text differs:\n%s\n---\n%s", base, server, kind, i.Text(), i.text(ct))
				}
				odd := i
				odd.Token.Token = `a"b\c`
				if ct.serves(odd) {
					t.Errorf("a token needing escapes was served by the templates")
				}
			}
			other := Issued{Token: auth.IssuedToken{Token: "a.b.c"}, PublicURL: "https://elsewhere.test", ServerName: server}
			if ct.serves(other) {
				t.Errorf("templates for %s served %s", base, other.PublicURL)
			}
		}
	}
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
