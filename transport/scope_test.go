package transport_test

import (
	"io"
	"strings"
	"testing"
	"time"
)

// A tools/call for an admin tool with a token that lacks the admin scope is
// answered with the MCP scope challenge (403, insufficient_scope, the scope
// to ask for, and where the resource metadata is) on both HTTP transports;
// nothing runs. Non-admin tools, unknown tools and admin callers are not
// challenged.
func TestToolCallScopeChallenge(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	user := s.mint(t, "plain-user", time.Hour, "tools:call")
	admin := s.mint(t, "root", time.Hour, "admin")
	call := func(tool, args string) string {
		return `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
	}
	session := func(tok string) map[string]string {
		init := do(t, "POST", s.URL+"/mcp", tok, initBody, nil)
		if init.StatusCode != 200 {
			t.Fatalf("initialize: %d", init.StatusCode)
		}
		return map[string]string{"Mcp-Session-Id": init.Header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-11-25"}
	}
	userHdr, adminHdr := session(user), session(admin)
	sseEP := openSSE(t, s.URL, user)

	cases := []struct {
		name      string
		url       string
		tok       string
		hdr       map[string]string
		body      string
		status    int
		challenge bool
		contains  string
	}{
		{"streamable: user calls issue_token", s.URL + "/mcp", user, userHdr, call("issue_token", `{"client_id":"escalated"}`), 403, true, "admin"},
		{"streamable: user calls revoke_token", s.URL + "/mcp", user, userHdr, call("revoke_token", `{"client_id":"root"}`), 403, true, "admin"},
		{"streamable: user calls approve_authorization", s.URL + "/mcp", user, userHdr, call("approve_authorization", `{"request_id":"ABC-123"}`), 403, true, "admin"},
		{"sse: user calls issue_token", s.URL + sseEP, user, nil, call("issue_token", `{"client_id":"escalated"}`), 403, true, "admin"},
		{"streamable: user calls whoami", s.URL + "/mcp", user, userHdr, call("whoami", `{}`), 200, false, "plain-user"},
		{"streamable: user calls an unknown tool", s.URL + "/mcp", user, userHdr, call("no_such_tool", `{}`), 200, false, "not found"},
		{"streamable: admin calls decode_token", s.URL + "/mcp", admin, adminHdr, call("decode_token", `{"token":"x"}`), 200, false, "result"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.tokenCount(t)
			r := do(t, "POST", tc.url, tc.tok, tc.body, tc.hdr)
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			if r.StatusCode != tc.status && !(tc.status == 200 && r.StatusCode == 202) {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.status, body)
			}
			wa := r.Header.Get("WWW-Authenticate")
			if tc.challenge {
				for _, want := range []string{`error="insufficient_scope"`, `scope="admin"`, `resource_metadata="` + s.URL + `/.well-known/oauth-protected-resource"`} {
					if !strings.Contains(wa, want) {
						t.Errorf("WWW-Authenticate %q lacks %s", wa, want)
					}
				}
				if !strings.Contains(body, "insufficient_scope") || !strings.Contains(body, tc.contains) {
					t.Errorf("body %q", body)
				}
			} else {
				if wa != "" {
					t.Errorf("unexpected challenge %q", wa)
				}
				if r.StatusCode == 200 && !strings.Contains(body, tc.contains) {
					t.Errorf("body %q lacks %q", body, tc.contains)
				}
			}
			if after := s.tokenCount(t); after != before {
				t.Fatalf("registry went from %d to %d tokens", before, after)
			}
		})
	}
}
