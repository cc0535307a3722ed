package transport_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth/throttle"
)

const testAPIKey = "api-key-for-tests-0123456789abcdefghijklmn"

type apiResp struct {
	Success bool `json:"success"`
	Data    struct {
		AccessToken string   `json:"access_token"`
		TokenType   string   `json:"token_type"`
		ExpiresIn   *int64   `json:"expires_in"`
		Scope       []string `json:"scope"`
		JTI         string   `json:"jti"`
	} `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeAPI(t *testing.T, r *http.Response) apiResp {
	t.Helper()
	b, _ := io.ReadAll(r.Body)
	var out apiResp
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return out
}

func TestTokenAPIMintsThroughTheSamePolicyAndRegistry(t *testing.T) {
	s := startStack(t, stackOpts{apiKey: testAPIKey, allowedClients: []string{"my-app", "mobile", "admin-console"}})
	for _, ep := range []struct{ path, header string }{
		{"/api/v1/mcp/auth/token", "X-API-Key"},
		{"/api/auth/token", "X-Admin-Key"},
	} {
		t.Run(ep.path, func(t *testing.T) {
			before := s.tokenCount(t)
			r := do(t, "POST", s.URL+ep.path, "", `{"client_id":"my-app","scope":["campaigns:read","tools:call"],"expires_in":"90d"}`, map[string]string{ep.header: testAPIKey})
			if r.StatusCode != 200 {
				b, _ := io.ReadAll(r.Body)
				t.Fatalf("status %d: %s", r.StatusCode, b)
			}
			out := decodeAPI(t, r)
			if !out.Success || out.Data.TokenType != "Bearer" || out.Data.ExpiresIn == nil || *out.Data.ExpiresIn != 90*86400 ||
				strings.Join(out.Data.Scope, " ") != "campaigns:read tools:call" {
				t.Fatalf("response = %+v", out)
			}
			claims, err := s.Verifier.Verify(out.Data.AccessToken)
			if err != nil || claims.Subject != "my-app" {
				t.Fatalf("minted token: %v %+v", err, claims)
			}
			if s.tokenCount(t) != before+1 {
				t.Fatal("not recorded in the registry")
			}
			rec, _ := s.Reg.Get(t.Context(), out.Data.JTI)
			if rec.IssuedBy != "api-key" {
				t.Errorf("issued_by = %q", rec.IssuedBy)
			}
		})
	}
	// Defaults: scope and expires_in are optional.
	r := do(t, "POST", s.URL+"/api/v1/mcp/auth/token", "", `{"client_id":"mobile"}`, map[string]string{"X-API-Key": testAPIKey})
	if out := decodeAPI(t, r); r.StatusCode != 200 || *out.Data.ExpiresIn != 30*86400 || len(out.Data.Scope) != 0 {
		t.Fatalf("defaults: %d %+v", r.StatusCode, out)
	}
	// An admin Bearer token works too; a non-admin one gets 403
	// insufficient_scope.
	admin := s.mint(t, "admin-console", time.Hour, "admin")
	if r := do(t, "POST", s.URL+"/api/v1/mcp/auth/token", admin, `{"client_id":"mobile"}`, nil); r.StatusCode != 200 {
		t.Fatalf("admin bearer: %d", r.StatusCode)
	}
	user := s.mint(t, "mobile", time.Hour)
	r = do(t, "POST", s.URL+"/api/v1/mcp/auth/token", user, `{"client_id":"mobile"}`, nil)
	wa := r.Header.Get("WWW-Authenticate")
	if r.StatusCode != 403 || !strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `scope="admin"`) || !strings.Contains(wa, "resource_metadata=") {
		t.Fatalf("non-admin bearer: %d %q", r.StatusCode, wa)
	}
}

func TestTokenAPIRefusalsMintNothing(t *testing.T) {
	s := startStack(t, stackOpts{apiKey: testAPIKey, allowedClients: []string{"my-app"}})
	key := map[string]string{"X-API-Key": testAPIKey}
	cases := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"no credentials", `{"client_id":"my-app"}`, nil, 401, "unauthorized"},
		{"wrong key", `{"client_id":"my-app"}`, map[string]string{"X-API-Key": testAPIKey + "x"}, 401, "invalid_api_key"},
		{"wrong admin key", `{"client_id":"my-app"}`, map[string]string{"X-Admin-Key": "nope"}, 401, "invalid_api_key"},
		{"text/plain body", `{"client_id":"my-app"}`, map[string]string{"X-API-Key": testAPIKey, "Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"form body", `client_id=my-app`, map[string]string{"X-API-Key": testAPIKey, "Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"not JSON", `{"client_id":`, key, 400, "invalid_request"},
		{"missing client_id", `{}`, key, 400, "invalid_request"},
		{"bad client_id", `{"client_id":"a b"}`, key, 400, "invalid_request"},
		{"client not allowed", `{"client_id":"evil"}`, key, 403, "client_not_allowed"},
		{"bad expiry", `{"client_id":"my-app","expires_in":"999999999d"}`, key, 400, "invalid_request"},
		{"beyond max lifetime", `{"client_id":"my-app","expires_in":"400d"}`, key, 400, "invalid_request"},
		{"never not allowed", `{"client_id":"my-app","expires_in":"never"}`, key, 400, "invalid_request"},
		{"unknown field", `{"client_id":"my-app","admin":true}`, key, 400, "invalid_request"},
		{"case-variant duplicate", `{"client_id":"my-app","CLIENT_ID":"evil"}`, key, 400, "invalid_request"},
		{"scope wrong type", `{"client_id":"my-app","scope":5}`, key, 400, "invalid_request"},
		{"oversize body", `{"client_id":"my-app","scope":["` + strings.Repeat("a", 70<<10) + `"]}`, key, 413, "request_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.tokenCount(t)
			r := do(t, "POST", s.URL+"/api/v1/mcp/auth/token", "", c.body, c.hdr)
			out := decodeAPI(t, r)
			if r.StatusCode != c.status || out.Success || out.Error == nil || out.Error.Code != c.code || out.Error.Message == "" {
				t.Fatalf("status %d, body %+v; want %d %s", r.StatusCode, out, c.status, c.code)
			}
			if s.tokenCount(t) != before {
				t.Fatal("a refused request minted a token")
			}
		})
	}
	if r := do(t, "GET", s.URL+"/api/v1/mcp/auth/token", "", "", key); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", r.StatusCode)
	}
}

func TestTokenAPIIsOffWithoutAnAPIKey(t *testing.T) {
	s := startStack(t, stackOpts{})
	admin := s.mint(t, "admin-console", time.Hour, "admin")
	r := do(t, "POST", s.URL+"/api/v1/mcp/auth/token", admin, `{"client_id":"x"}`, map[string]string{"X-API-Key": ""})
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", r.StatusCode)
	}
}

func TestRepeatedWrongKeysAreSlowedDown(t *testing.T) {
	lim := throttle.New(throttle.Config{Burst: 3, Per: time.Hour})
	s := startStack(t, stackOpts{apiKey: testAPIKey, throttle: lim})
	bad := map[string]string{"X-API-Key": "wrong-wrong-wrong-wrong-wrong-wrong"}
	for i := 0; i < 3; i++ {
		if r := do(t, "POST", s.URL+"/api/v1/mcp/auth/token", "", `{"client_id":"a"}`, bad); r.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, r.StatusCode)
		}
	}
	r := do(t, "POST", s.URL+"/api/v1/mcp/auth/token", "", `{"client_id":"a"}`, bad)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: %d Retry-After=%q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// The address is blocked for Bearer attempts too (one budget).
	if r := do(t, "POST", s.URL+"/mcp", "forged.token.here", initBody, nil); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("bearer from a blocked address: %d", r.StatusCode)
	}
}

func TestFailedBearerAuthIsThrottledButDiscoveryIsNot(t *testing.T) {
	lim := throttle.New(throttle.Config{Burst: 3, Per: time.Hour})
	s := startStack(t, stackOpts{throttle: lim})
	good := s.mint(t, "fine", time.Hour)
	// Requests without credentials (how clients discover auth) and
	// successful ones never count.
	for i := 0; i < 10; i++ {
		if r := do(t, "POST", s.URL+"/mcp", "", initBody, nil); r.StatusCode != 401 {
			t.Fatalf("no credentials: %d", r.StatusCode)
		}
		if r := do(t, "POST", s.URL+"/mcp", good, initBody, nil); r.StatusCode != 200 {
			t.Fatalf("valid token: %d", r.StatusCode)
		}
	}
	for i := 0; i < 3; i++ {
		do(t, "POST", s.URL+"/mcp", "bad.token.x", initBody, nil)
	}
	r := do(t, "POST", s.URL+"/mcp", "bad.token.x", initBody, nil)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: %d", r.StatusCode)
	}
}

// Rule: once an address is throttled for failed Bearer tokens, a valid
// token from that address still works (clients behind one NAT share it):
// on /mcp and on the token API with an admin Bearer token. Failures, and
// API-key attempts (right or wrong), from the address still get 429.
func TestValidBearerFromAThrottledAddressIsServed(t *testing.T) {
	lim := throttle.New(throttle.Config{Burst: 3, Per: time.Hour})
	s := startStack(t, stackOpts{apiKey: testAPIKey, throttle: lim})
	user := s.mint(t, "neighbour", time.Hour)
	admin := s.mint(t, "admin-console", time.Hour, "admin")
	for i := 0; i < 4; i++ {
		do(t, "POST", s.URL+"/mcp", "bad.token.x", initBody, nil)
	}
	for _, tc := range []struct {
		name, path, token, body string
		hdr                     map[string]string
		want                    int
	}{
		{"valid token on /mcp", "/mcp", user, initBody, nil, 200},
		{"admin token on the token API", "/api/v1/mcp/auth/token", admin, `{"client_id":"mobile"}`, nil, 200},
		{"forged token on /mcp", "/mcp", "bad.token.x", initBody, nil, http.StatusTooManyRequests},
		{"forged token on the token API", "/api/v1/mcp/auth/token", "bad.token.x", `{"client_id":"mobile"}`, nil, http.StatusTooManyRequests},
		{"right API key (the key throttle is unchanged)", "/api/v1/mcp/auth/token", "", `{"client_id":"mobile"}`, map[string]string{"X-API-Key": testAPIKey}, http.StatusTooManyRequests},
		{"no credentials (discovery)", "/mcp", "", initBody, nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, "POST", s.URL+tc.path, tc.token, tc.body, tc.hdr); r.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.want)
			}
		})
	}
}

// Behind a trusted reverse proxy every request comes from the proxy's
// address: the throttle keys on the client X-Forwarded-For names instead,
// so one client's failures do not lock out the rest. A header from an
// untrusted peer is ignored, so rotating it does not escape the throttle.
func TestThrottleKeysOnTheClientBehindATrustedProxy(t *testing.T) {
	fail := func(t *testing.T, s *stack, xff string) int {
		t.Helper()
		return do(t, "POST", s.URL+"/mcp", "bad.token.x", initBody, map[string]string{"X-Forwarded-For": xff}).StatusCode
	}
	t.Run("trusted proxy", func(t *testing.T) {
		s := startStack(t, stackOpts{throttle: throttle.New(throttle.Config{Burst: 3, Per: time.Hour}), trustedProxies: []string{"127.0.0.1", "::1"}})
		for i := range 3 {
			if code := fail(t, s, "6.6.6.6, 127.0.0.1"); code != 401 {
				t.Fatalf("failure %d: %d", i, code)
			}
		}
		if code := fail(t, s, "6.6.6.6"); code != http.StatusTooManyRequests {
			t.Fatalf("fourth failure of one client: %d, want 429", code)
		}
		// A client the attacker tries to frame by writing its address
		// left of its own is unaffected, as is any other client.
		if code := fail(t, s, "198.51.100.7, 6.6.6.6"); code != http.StatusTooManyRequests {
			t.Fatalf("spoofed left-most entry escaped the throttle: %d", code)
		}
		if code := fail(t, s, "198.51.100.7"); code != 401 {
			t.Fatalf("another client behind the proxy: %d, want 401", code)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		s := startStack(t, stackOpts{throttle: throttle.New(throttle.Config{Burst: 3, Per: time.Hour})})
		for i := range 3 {
			if code := fail(t, s, fmt.Sprintf("198.51.100.%d", i)); code != 401 {
				t.Fatalf("failure %d: %d", i, code)
			}
		}
		if code := fail(t, s, "198.51.100.99"); code != http.StatusTooManyRequests {
			t.Fatalf("rotating X-Forwarded-For escaped the throttle: %d", code)
		}
	})
}

func TestDiscoveryMetadataAndChallenges(t *testing.T) {
	s := startStack(t, stackOpts{})
	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource":     s.URL,
		"/.well-known/oauth-protected-resource/mcp": s.URL + "/mcp",
		"/.well-known/oauth-protected-resource/sse": s.URL + "/sse",
	} {
		r := do(t, "GET", s.URL+path, "", "", nil)
		var doc struct {
			Resource string   `json:"resource"`
			Bearer   []string `json:"bearer_methods_supported"`
			Scopes   []string `json:"scopes_supported"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || json.Unmarshal(b, &doc) != nil || doc.Resource != resource ||
			strings.Join(doc.Bearer, ",") != "header" || !strings.Contains(strings.Join(doc.Scopes, " "), "admin") {
			t.Fatalf("%s: %d %s", path, r.StatusCode, b)
		}
	}
	r := do(t, "POST", s.URL+"/mcp", "", initBody, nil)
	if wa := r.Header.Get("WWW-Authenticate"); !strings.Contains(wa, `resource_metadata="`+s.URL+`/.well-known/oauth-protected-resource"`) {
		t.Fatalf("401 challenge lacks resource_metadata: %q", wa)
	}
	r = do(t, "POST", s.URL+"/mcp", "bad", initBody, nil)
	if wa := r.Header.Get("WWW-Authenticate"); !strings.Contains(wa, "resource_metadata=") || !strings.Contains(wa, `error="invalid_token"`) {
		t.Fatalf("invalid token challenge: %q", wa)
	}
	// The health alias shows the safe auth configuration.
	r = do(t, "GET", s.URL+"/api/v1/mcp/health", "", "", nil)
	b, _ := io.ReadAll(r.Body)
	for _, want := range []string{`"status":"ok"`, `"issuer":"mcpauth-test"`, `"algorithm":"HS256"`, `"default_expiry":"30d"`, `"max_expiry":"365d"`, `"allowed_clients":0`, `"transports":["streamable-http","sse","websocket"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("health lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), testSecret) {
		t.Fatal("health leaks the secret")
	}
}

func TestOriginPolicy(t *testing.T) {
	s := startStack(t, stackOpts{cors: []string{"https://app.example.com"}})
	tok := s.mint(t, "browser-app", time.Hour)
	cases := []struct {
		name, origin string
		want         int
	}{
		{"no Origin (non-browser client)", "", 200},
		{"allowed origin", "https://app.example.com", 200},
		{"the server's own origin", s.URL, 200},
		{"other origin", "https://evil.example", 403},
		{"look-alike origin", "https://app.example.com.evil.com", 403},
		{"null origin", "null", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.origin != "" {
				hdr["Origin"] = c.origin
			}
			r := do(t, "POST", s.URL+"/mcp", tok, initBody, hdr)
			if r.StatusCode != c.want {
				t.Fatalf("status %d, want %d", r.StatusCode, c.want)
			}
			acao := r.Header.Get("Access-Control-Allow-Origin")
			switch {
			case c.want == 200 && c.origin != "" && acao != c.origin:
				t.Errorf("Access-Control-Allow-Origin = %q", acao)
			case c.want == 403 && acao != "":
				t.Errorf("refused origin got Access-Control-Allow-Origin %q", acao)
			}
			if c.origin != "" && !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
				t.Error("Vary: Origin missing")
			}
			if c.want == 200 && c.origin != "" && !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Mcp-Session-Id") {
				t.Error("Mcp-Session-Id not exposed")
			}
		})
	}
	// Preflight: allowed gets 204 with the methods and headers; refused
	// gets no Access-Control-Allow-Origin.
	pre := map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, mcp-session-id"}
	r := do(t, "OPTIONS", s.URL+"/mcp", "", "", pre)
	if r.StatusCode != 204 || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("allowed preflight: %d %v", r.StatusCode, r.Header)
	}
	pre["Origin"] = "https://evil.example"
	r = do(t, "OPTIONS", s.URL+"/mcp", "", "", pre)
	if r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
		t.Fatalf("refused preflight: %d %v", r.StatusCode, r.Header)
	}
}

func TestAllowedClientsOnlyTheirTokensAreAccepted(t *testing.T) {
	s := startStack(t, stackOpts{allowedClients: []string{"cursor"}})
	ok := s.mint(t, "cursor", time.Hour)
	if r := do(t, "POST", s.URL+"/mcp", ok, initBody, nil); r.StatusCode != 200 {
		t.Fatalf("allowed client: %d", r.StatusCode)
	}
	other := signedWithIssuer(t, testSecret, "mcpauth-test", "chatgpt")
	r := do(t, "POST", s.URL+"/mcp", other, initBody, nil)
	if r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "allowed clients") {
		t.Fatalf("client outside the list: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}
