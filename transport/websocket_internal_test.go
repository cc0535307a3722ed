package transport

import (
	"strings"
	"testing"
)

// params.auth is taken out of the message mcp-go sees; everything else
// stays.
func TestTakeAuthRemovesParamsAuth(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{"a":"<b>"},"auth":{"token":"secret.jwt.value"}}}`
	tok, found, out, err := takeAuth([]byte(in))
	if err != nil || !found || tok != "secret.jwt.value" {
		t.Fatalf("takeAuth = %q %v %v", tok, found, err)
	}
	if strings.Contains(string(out), "auth") || strings.Contains(string(out), "secret") {
		t.Fatalf("params.auth reached the message: %s", out)
	}
	if _, err := checkJSONRPC(out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name":"whoami"`, `"id":1`, `"method":"tools/call"`, `"arguments":{"a":"\u003cb\u003e"}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
	// Without params.auth the message is unchanged.
	plain := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	if _, found, out, err := takeAuth([]byte(plain)); err != nil || found || string(out) != plain {
		t.Fatalf("plain: %v %s %v", found, out, err)
	}
	for _, bad := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"x","params":{"auth":"tok"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":{"auth":{"token":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":{"auth":{"token":""}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":{"AUTH":{"token":"t"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":{"auth":{"TOKEN":"t"}}}`,
	} {
		if _, _, _, err := takeAuth([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
