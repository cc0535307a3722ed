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

// Rule: with MCP_CORS_ORIGIN unset, a page served from the server's own
// loopback address may call it (its Origin names the loopback Host the
// request went to); a foreign origin, another local port, or a rebinding
// page (loopback Host, foreign Origin) stays refused. With
// MCP_CORS_ORIGIN set, only the listed origins (and the public URL's) pass.
func TestLoopbackPagesOfTheServerItselfMayCallItWithoutCORSSettings(t *testing.T) {
	open := startStack(t, stackOpts{})
	listed := startStack(t, stackOpts{cors: []string{"https://app.example.com"}})
	port := func(s *stack) string { return s.URL[strings.LastIndex(s.URL, ":")+1:] }
	for _, tc := range []struct {
		name         string
		s            *stack
		host, origin string
		want         int
	}{
		{"localhost page, localhost Host", open, "localhost:" + port(open), "http://localhost:" + port(open), 200},
		{"127.0.0.1 page, 127.0.0.1 Host", open, "127.0.0.1:" + port(open), "http://127.0.0.1:" + port(open), 200},
		{"[::1] page, [::1] Host", open, "[::1]:" + port(open), "http://[::1]:" + port(open), 200},
		{"another local port", open, "localhost:" + port(open), "http://localhost:3000", 403},
		{"Origin and Host differ", open, "127.0.0.1:" + port(open), "http://localhost:" + port(open), 403},
		{"DNS rebinding page", open, "127.0.0.1:" + port(open), "http://evil.example:" + port(open), 403},
		{"foreign origin", open, "127.0.0.1:" + port(open), "https://evil.example", 403},
		{"loopback page when origins are listed", listed, "localhost:" + port(listed), "http://localhost:" + port(listed), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.s.mint(t, "page", time.Hour)
			req, _ := http.NewRequest("POST", tc.s.URL+"/mcp", strings.NewReader(initBody))
			req.Host = tc.host
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if acao := resp.Header.Get("Access-Control-Allow-Origin"); (tc.want == 200) != (acao == tc.origin) {
				t.Fatalf("Access-Control-Allow-Origin = %q", acao)
			}
		})
	}
}
