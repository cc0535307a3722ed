package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth/throttle"
	"github.com/mcpauth/mcpauth/internal/testutil"
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

// Rule: POST /introspect (RFC 7662) tells another service, authenticated
// by the API key or an admin token, whether a token is active; revoked,
// expired, foreign and malformed tokens are {"active": false}; the AS
// metadata names the endpoint.
func TestIntrospectionHonoursRevocationWithoutTheSecret(t *testing.T) {
	now := time.Now()
	apiKey := strings.Repeat("k", 40)
	s := startStack(t, stackOpts{apiKey: apiKey, oauth: true, now: func() time.Time { return now }})
	active := s.mint(t, "svc-client", time.Hour, "tools:call")
	revoked := s.mint(t, "gone-client", time.Hour)
	expiring := s.mint(t, "old-client", time.Second)
	admin := s.mint(t, "ops", time.Hour, "admin")
	user := s.mint(t, "user", time.Hour)
	if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, revoked), "test", "introspection test"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	introspect := func(hdr map[string]string, body string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", s.URL+"/introspect", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	key := map[string]string{"X-API-Key": apiKey}
	for _, tc := range []struct {
		name   string
		token  string
		active bool
	}{
		{"active token", active, true},
		{"revoked token", revoked, false},
		{"expired token", expiring, false},
		{"foreign token", forgeWith(t, "another-secret-another-secret-0123456789"), false},
		{"not a token", "garbage", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := introspect(key, "token="+url.QueryEscape(tc.token))
			if resp.StatusCode != http.StatusOK || m["active"] != tc.active {
				t.Fatalf("%d %v, want active=%v", resp.StatusCode, m, tc.active)
			}
			if !tc.active && len(m) != 1 {
				t.Fatalf("an inactive answer says more than active=false: %v", m)
			}
			if tc.active && (m["client_id"] != "svc-client" || m["scope"] != "tools:call" || m["token_type"] != "Bearer" || m["exp"] == nil) {
				t.Fatalf("active answer = %v", m)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   string
		status int
	}{
		{"an admin token may ask", map[string]string{"Authorization": "Bearer " + admin}, "token=" + active, 200},
		{"a non-admin token may not", map[string]string{"Authorization": "Bearer " + user}, "token=" + active, 403},
		{"nobody may not", nil, "token=" + active, 401},
		{"a wrong key may not", map[string]string{"X-API-Key": strings.Repeat("x", 40)}, "token=" + active, 401},
		{"no token field", key, "nothing=1", 400},
		{"two token fields", key, "token=a&token=b", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, m := introspect(tc.hdr, tc.body); resp.StatusCode != tc.status {
				t.Fatalf("%d %v, want %d", resp.StatusCode, m, tc.status)
			}
		})
	}
	r := do(t, "GET", s.URL+"/.well-known/oauth-authorization-server", "", "", nil)
	var md map[string]any
	_ = json.NewDecoder(r.Body).Decode(&md)
	if md["introspection_endpoint"] != s.URL+"/introspect" {
		t.Fatalf("AS metadata introspection_endpoint = %v", md["introspection_endpoint"])
	}
}

// forgeWith signs a well-formed token with another secret.
func forgeWith(t *testing.T, secret string) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": "mcpauth-test", "sub": "x", "jti": "f", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Rule: on shutdown a call in flight finishes (it is drained, not cut),
// and a request arriving meanwhile gets a clean 503 with Retry-After and
// Connection: close instead of a dropped connection.
func TestShutdownDrainsCallsAndAnswersNewRequests503(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	slow := mcpauth.Tool{
		Tool: mcp.NewTool("slow_op"),
		Handler: func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			close(started)
			select {
			case <-release:
				return mcp.NewToolResultText("finished"), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
	s := startStack(t, stackOpts{tools: []mcpauth.Tool{slow}})
	tok := s.mint(t, "caller", time.Hour)
	result := make(chan string, 1)
	go func() {
		r := do(t, "POST", s.URL+"/sse", tok, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow_op","arguments":{}}}`, nil)
		b, _ := io.ReadAll(r.Body)
		result <- fmt.Sprintf("%d %s", r.StatusCode, b)
	}()
	<-started
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()

	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", s.URL+"/health", nil)
		req.Close = true // a fresh connection each time
		r, err := http.DefaultClient.Do(req)
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusServiceUnavailable {
				resp = r
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no request was answered 503 while the call drained")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("503 during the drain: Retry-After %q, Connection close %v", resp.Header.Get("Retry-After"), resp.Close)
	}
	close(release)
	if got := <-result; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, "finished") {
		t.Fatalf("the call in flight was cut: %s", got)
	}
	<-stopped
}

// Rule: an admin session that sets a log level (logging/setLevel) follows
// the audit events as MCP log messages (logger mcpauth.audit); a
// non-admin session that does the same gets none, and no message carries
// a token.
func TestAdminsFollowAuditEventsAsLogMessages(t *testing.T) {
	s := startStack(t, stackOpts{})
	admin := s.mint(t, "ops", time.Hour, "admin")
	user := s.mint(t, "user", time.Hour)
	follow := func(tok string) (*client.Client, *[]mcp.JSONRPCNotification, *sync.Mutex) {
		// 2025-11-25, with a session and its GET stream open, which
		// carries messages sent between requests.
		c, err := connect(t, kind{connect: func(t *testing.T, base, token string) (*client.Client, error) {
			tr, err := mcptransport.NewStreamableHTTP(base+"/mcp", mcptransport.WithHTTPHeaders(bearerHeader(token)), mcptransport.WithContinuousListening())
			if err != nil {
				return nil, err
			}
			return client.NewClient(tr, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)), nil
		}}, s.URL, tok)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []mcp.JSONRPCNotification
		c.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method == "notifications/message" {
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			}
		})
		if err := c.SetLevel(context.Background(), mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelInfo}}); err != nil {
			t.Fatalf("logging/setLevel: %v", err)
		}
		return c, &got, &mu
	}
	_, adminGot, amu := follow(admin)
	_, userGot, umu := follow(user)
	// Another admin session acts; the followers are idle, so what they
	// get arrives on their listening streams. (mcp-go drops a message
	// that reaches a session's own POST after it can no longer stream.)
	other, err := connect(t, kinds[1], s.URL, admin)
	if err != nil {
		t.Fatal(err)
	}
	res := testutil.CallTool(t, other, "issue_token", map[string]any{"client_id": "followed-bot", "expires_in": "1d"})
	if res.IsError {
		t.Fatalf("issue_token: %+v", res)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		amu.Lock()
		b, _ := json.Marshal(*adminGot)
		amu.Unlock()
		if strings.Contains(string(b), `"token.issued"`) && strings.Contains(string(b), `"followed-bot"`) {
			if strings.Contains(string(b), "eyJ") {
				t.Fatalf("a log message carries a token: %s", b)
			}
			if !strings.Contains(string(b), `"logger":"mcpauth.audit"`) {
				t.Fatalf("log message without the audit logger: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin session got no token.issued message: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	umu.Lock()
	defer umu.Unlock()
	if len(*userGot) != 0 {
		t.Fatalf("a non-admin session got audit messages: %v", *userGot)
	}
}

// Rule: with OAuth sign-in switched off, a spec client that answers a 401
// by trying to sign in (mcp-remote) shows the real reason: registration
// says there is no sign-in and why the token it sent was refused.
func TestWithSignInOffClientsShowWhyTheirTokenWasRefused(t *testing.T) {
	now := time.Now()
	s := startStack(t, stackOpts{now: func() time.Time { return now }})
	expired := s.mint(t, "old-laptop", time.Second)
	now = now.Add(2 * time.Minute)
	r := do(t, "POST", s.URL+"/register", expired, `{"redirect_uris":["http://localhost:1/cb"]}`, nil)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "does not offer OAuth sign-in") || !strings.Contains(string(b), "Token has expired") {
		t.Fatalf("POST /register with sign-in off: %d %s", r.StatusCode, b)
	}

	// And mcp-remote, the Claude Desktop bridge, prints it.
	node, dir := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "node_modules", "mcp-remote", "dist", "proxy.js"),
		s.URL+"/mcp", "--header", "Authorization: Bearer "+expired)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(25 * time.Second)
	for !strings.Contains(out.String(), "Token has expired") {
		if time.Now().After(deadline) {
			t.Fatalf("mcp-remote never said why:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Rule: with sign-in off, POST /register's account of a refused token is
// no unthrottled oracle: failed tokens count against the address there
// as everywhere, and an address over its budget gets 429.
func TestSignInOffRegistrationCountsFailedTokens(t *testing.T) {
	s := startStack(t, stackOpts{throttle: throttle.New(throttle.Config{Burst: 2, Per: time.Hour})})
	for i, want := range []int{http.StatusBadRequest, http.StatusBadRequest, http.StatusTooManyRequests} {
		r := do(t, "POST", s.URL+"/register", "not.a.token", `{}`, nil)
		if r.StatusCode != want {
			t.Fatalf("attempt %d: %d, want %d", i+1, r.StatusCode, want)
		}
	}
}
