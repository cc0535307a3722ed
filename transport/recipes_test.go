package transport_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Rule: the token guide checks a token by POSTing a JSON-RPC tools/list
// to the SSE URL with a Bearer header. POST /sse answers it as one
// stateless request (the answer is the body), and refuses bad tokens with
// the errors the guide's troubleshooting names.
func TestPostingToTheSSEURLChecksATokenAsTheTokenGuideDoes(t *testing.T) {
	now := time.Now()
	s := startStack(t, stackOpts{now: func() time.Time { return now }})
	valid := s.mint(t, "my-app", time.Hour)
	expiring := s.mint(t, "old-app", time.Second)
	now = now.Add(2 * time.Minute) // past expiry and the leeway
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	for _, tc := range []struct {
		name, token, body string
		status            int
		want              string
	}{
		{"valid token lists tools", valid, list, http.StatusOK, `"name":"whoami"`},
		{"valid token calls whoami", valid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`, http.StatusOK, `my-app`},
		{"a notification is accepted", valid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, http.StatusAccepted, ``},
		{"expired token", expiring, list, http.StatusUnauthorized, `Token has expired`},
		{"not a JWT", "not-a-token", list, http.StatusUnauthorized, `Invalid token`},
		{"no token", "", list, http.StatusUnauthorized, `Authentication required`},
		{"an ambiguous body is refused", valid, `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"x"}`, http.StatusBadRequest, `given more than once`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", s.URL+"/sse", tc.token, tc.body, nil)
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("POST /sse: %d %s, want %d with %q", r.StatusCode, b, tc.status, tc.want)
			}
		})
	}
	// An admin tool is still refused to a non-admin (scope challenge).
	r := do(t, "POST", s.URL+"/sse", valid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"issue_token","arguments":{"client_id":"x"}}}`, nil)
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("issue_token by a non-admin over POST /sse: %d", r.StatusCode)
	}
}
