package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

// signedWith makes an otherwise well-formed token signed with secret.
func signedWith(t *testing.T, secret, sub string) string {
	t.Helper()
	return signedWithIssuer(t, secret, "mcpauth-test", sub)
}

// signedWithIssuer makes a token for sub signed with secret, outside the
// registry.
func signedWithIssuer(t *testing.T, secret, iss, sub string) string {
	t.Helper()
	c := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: iss, Subject: sub, ID: "foreign",
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(t *testing.T, method, url, token, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func TestEveryMCPEndpointRefusesBadTokensWith401(t *testing.T) {
	now := time.Now()
	s := startStack(t, stackOpts{})
	// A stack whose clock is two hours behind mints a token that is
	// expired for the real server (1h lifetime, beyond the 30s leeway).
	past := startStack(t, stackOpts{now: func() time.Time { return now.Add(-2 * time.Hour) }})
	expired := past.mint(t, "late", time.Hour)
	// The past stack has the same secret and issuer, so the token differs
	// only in time.
	endpoints := []struct{ method, path, body string }{
		{"POST", "/mcp", initBody},
		{"GET", "/mcp", ""},
		{"GET", "/sse", ""},
		{"POST", "/message?sessionId=abc", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
	}
	cases := []struct {
		name, token, wantDesc string
		wantErrorCode         bool
	}{
		{"missing token", "", "Authentication required", false},
		{"expired token", expired, "Token has expired", true},
		{"wrong secret", signedWith(t, "another-secret-another-secret-0123456789", "x"), "Invalid token", true},
		{"not a jwt", "abc", "Invalid token", true},
	}
	for _, e := range endpoints {
		for _, c := range cases {
			t.Run(e.method+" "+e.path+"/"+c.name, func(t *testing.T) {
				resp := do(t, e.method, s.URL+e.path, c.token, e.body, nil)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401", resp.StatusCode)
				}
				wa := resp.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, c.wantDesc) {
					t.Errorf("WWW-Authenticate = %q, want Bearer with %q", wa, c.wantDesc)
				}
				if c.wantErrorCode && !strings.Contains(wa, `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q lacks error=\"invalid_token\"", wa)
				}
				b, _ := io.ReadAll(resp.Body)
				var body bearer.ErrorBody
				if err := json.Unmarshal(b, &body); err != nil || !strings.Contains(body.Description, c.wantDesc) {
					t.Errorf("body = %s", b)
				}
				if c.token != "" && (strings.Contains(string(b), c.token) || strings.Contains(wa, c.token)) {
					t.Error("response echoes the token")
				}
			})
		}
	}
}

func TestHealthIsPublicAndLeaksNothing(t *testing.T) {
	s := startStack(t, stackOpts{})
	resp := do(t, "GET", s.URL+"/health", "", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	var h struct {
		Status      string `json:"status"`
		Version     string `json:"version"`
		AuthEnabled bool   `json:"auth_enabled"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Status != "ok" || h.Version != "test" || !h.AuthEnabled {
		t.Fatalf("health = %s", b)
	}
	if strings.Contains(string(b), testSecret) {
		t.Fatal("health leaks the secret")
	}
}

// openSSE opens a raw SSE stream and returns the message endpoint path it
// announces. The stream stays open until the test ends.
func openSSE(t *testing.T, base, token string) string {
	t.Helper()
	ep, _ := rawSSE(t, base, token)
	return ep
}

func TestSSEMessagesAreBoundToTheSubjectThatOpenedTheStream(t *testing.T) {
	s := startStack(t, stackOpts{})
	alice := s.mint(t, "alice", time.Hour)
	alice2 := s.mint(t, "alice", time.Hour) // another token, same subject
	mallory := s.mint(t, "mallory", time.Hour, "admin")
	ep := openSSE(t, s.URL, alice)
	msg := `{"jsonrpc":"2.0","id":1,"method":"ping"}`

	cases := []struct {
		name, token, path string
		want              int
	}{
		{"another subject, even an admin, is forbidden", mallory, ep, http.StatusForbidden},
		{"no token is unauthorized", "", ep, http.StatusUnauthorized},
		{"unknown session is not found", alice, "/message?sessionId=00000000000000000000000000000000", http.StatusNotFound},
		{"missing sessionId is a bad request", alice, "/message", http.StatusBadRequest},
		{"the opener is accepted", alice, ep, http.StatusAccepted},
		{"the opener with another token of the same subject is accepted", alice2, ep, http.StatusAccepted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := do(t, "POST", s.URL+c.path, c.token, msg, nil)
			if resp.StatusCode != c.want {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, c.want, b)
			}
		})
	}
}

func TestStreamableSessionsAreBoundToTheSubjectThatOpenedThem(t *testing.T) {
	s := startStack(t, stackOpts{})
	alice := s.mint(t, "alice", time.Hour)
	mallory := s.mint(t, "mallory", time.Hour, "admin")
	resp := do(t, "POST", s.URL+"/mcp", alice, initBody, nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: status %d, session %q", resp.StatusCode, sid)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}

	if r := do(t, "POST", s.URL+"/mcp", mallory, list, hdr); r.StatusCode != http.StatusForbidden {
		t.Errorf("another subject: status %d, want 403", r.StatusCode)
	}
	if r := do(t, "POST", s.URL+"/mcp", "", list, hdr); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", r.StatusCode)
	}
	bogus := map[string]string{"Mcp-Session-Id": "ffffffffffffffffffffffffffffffff", "Mcp-Protocol-Version": "2025-11-25"}
	if r := do(t, "POST", s.URL+"/mcp", alice, list, bogus); r.StatusCode != http.StatusNotFound {
		t.Errorf("never-issued session: status %d, want 404", r.StatusCode)
	}
	// The owner's session survives the attempts.
	r := do(t, "POST", s.URL+"/mcp", alice, list, hdr)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !strings.Contains(string(b), "whoami") {
		t.Fatalf("owner: status %d body %s", r.StatusCode, b)
	}
	// After DELETE the session is gone for everyone.
	if r := do(t, "DELETE", s.URL+"/mcp", alice, "", hdr); r.StatusCode != 200 {
		t.Errorf("DELETE: status %d", r.StatusCode)
	}
	if r := do(t, "POST", s.URL+"/mcp", alice, list, hdr); r.StatusCode != http.StatusNotFound {
		t.Errorf("after DELETE: status %d, want 404", r.StatusCode)
	}
}

func TestSSEStreamClosesWhenItsTokenExpires(t *testing.T) {
	s := startStack(t, stackOpts{})
	short := s.mint(t, "brief", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+short)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	_, _ = io.Copy(io.Discard, resp.Body) // returns when the server ends the stream
	if ctx.Err() != nil {
		t.Fatal("stream outlived its token")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stream closed after %v, want about 2s", el)
	}
	if n := s.HTTP.OpenSessions(); n != 0 {
		t.Errorf("%d sessions still bound after the stream ended", n)
	}
}

func TestStatelessModeServesLegacyClientsWithoutSessions(t *testing.T) {
	s := startStack(t, stackOpts{stateless: true})
	tok := s.mint(t, "anywhere", time.Hour)
	resp := do(t, "POST", s.URL+"/mcp", tok, initBody, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("initialize: status %d, session %q; want 200 and no session", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
	}
	// A follow-up request without any session (as if it reached another
	// replica) is served.
	r := do(t, "POST", s.URL+"/mcp", tok, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Protocol-Version": "2025-11-25"})
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !strings.Contains(string(b), "whoami") {
		t.Fatalf("tools/list without session: %d %s", r.StatusCode, b)
	}
	// Every client kind still works end to end.
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			c, err := connect(t, k, s.URL, tok)
			if err != nil {
				t.Fatal(err)
			}
			testutil.CallTool(t, c, "whoami", nil)
		})
	}
	// Auth still applies to every request.
	if r := do(t, "POST", s.URL+"/mcp", "", initBody, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.StatusCode)
	}
}
