package bearer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/tokentest"
)

// nextSpy is the protected handler: it records whether it ran and the
// identity it saw.
type nextSpy struct {
	called bool
	claims *auth.Claims
	ok     bool
}

func (n *nextSpy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.called = true
	n.claims, n.ok = auth.ClaimsFrom(r.Context())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("protected"))
}

func TestMiddleware(t *testing.T) {
	validTok := tokentest.HS256(t, tokentest.BaseClaims())
	expiredTok := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["exp"] = tokentest.T0.Add(-time.Hour).Unix() }))
	foreignTok := tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.ForeignSecret)
	hugeTok := strings.Repeat("a", auth.MaxTokenLen+1)

	type req struct {
		target  string
		headers []string // Authorization values, one header line each
	}
	tests := []struct {
		name       string
		req        req
		token      string // token material that must never be echoed
		wantStatus int
		wantCode   string   // JSON "error" on 401
		wantDesc   string   // substring of JSON "error_description" on 401
		wwwHas     []string // substrings of WWW-Authenticate
		wwwHasNot  []string
	}{
		{
			name: "no Authorization header answers 401 Authentication required without an error code",
			req:  req{target: "/mcp"}, wantStatus: 401,
			wantCode: "unauthorized", wantDesc: "Authentication required",
			wwwHas: []string{"Bearer", `realm="mcpauth"`, "Authentication required"}, wwwHasNot: []string{`error="`},
		},
		{
			name: "Basic scheme is refused",
			req:  req{target: "/mcp", headers: []string{"Basic dXNlcjpwYXNz"}}, wantStatus: 401,
			wantDesc: "Authentication required", wwwHas: []string{"Bearer"},
		},
		{
			name: "Bearer scheme without a token is refused",
			req:  req{target: "/mcp", headers: []string{"Bearer "}}, wantStatus: 401,
			wantDesc: "Authentication required", wwwHas: []string{"Bearer"},
		},
		{
			name: "token without a scheme is refused", token: validTok,
			req: req{target: "/mcp", headers: []string{validTok}}, wantStatus: 401,
			wantDesc: "Authentication required", wwwHas: []string{"Bearer"},
		},
		{
			name: "lower-case bearer scheme is accepted", token: validTok,
			req: req{target: "/mcp", headers: []string{"bearer " + validTok}}, wantStatus: 200,
		},
		{
			name: "upper-case BEARER scheme is accepted", token: validTok,
			req: req{target: "/mcp", headers: []string{"BEARER " + validTok}}, wantStatus: 200,
		},
		{
			name: "extra spaces around the scheme and token are accepted", token: validTok,
			req: req{target: "/mcp", headers: []string{"  Bearer    " + validTok + "   "}}, wantStatus: 200,
		},
		{
			name: "two Authorization headers are refused even if both are valid", token: validTok,
			req: req{target: "/mcp", headers: []string{"Bearer " + validTok, "Bearer " + validTok}}, wantStatus: 401,
			wantCode: "invalid_token", wantDesc: "Invalid token", wwwHas: []string{`error="invalid_token"`},
		},
		{
			name: "access_token in the query string is refused", token: validTok,
			req: req{target: "/mcp?access_token=" + validTok}, wantStatus: 401,
			wantCode: "invalid_token", wantDesc: "Invalid token", wwwHas: []string{`error="invalid_token"`},
		},
		{
			name: "access_token in the query is refused even with a valid header", token: validTok,
			req: req{target: "/mcp?access_token=x", headers: []string{"Bearer " + validTok}}, wantStatus: 401,
			wantCode: "invalid_token", wantDesc: "Invalid token",
		},
		{
			name: "expired token answers invalid_token with Token has expired", token: expiredTok,
			req: req{target: "/mcp", headers: []string{"Bearer " + expiredTok}}, wantStatus: 401,
			wantCode: "invalid_token", wantDesc: "Token has expired",
			wwwHas: []string{"Bearer", `error="invalid_token"`, "Token has expired"},
		},
		{
			name: "token signed with another secret answers Invalid token", token: foreignTok,
			req: req{target: "/mcp", headers: []string{"Bearer " + foreignTok}}, wantStatus: 401,
			wantCode: "invalid_token", wantDesc: "Invalid token",
			wwwHas: []string{`error="invalid_token"`, "Invalid token"},
		},
		{
			name: "garbage token answers Invalid token", token: "not-a-jwt-at-all",
			req: req{target: "/mcp", headers: []string{"Bearer not-a-jwt-at-all"}}, wantStatus: 401,
			wantCode: "invalid_token", wantDesc: "Invalid token", wwwHas: []string{`error="invalid_token"`},
		},
		{
			name: "token over 8 KiB is refused", token: hugeTok,
			req: req{target: "/mcp", headers: []string{"Bearer " + hugeTok}}, wantStatus: 401,
			wantCode: "invalid_token", wantDesc: "Invalid token",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var failures []error
			next := &nextSpy{}
			h := Middleware(MiddlewareConfig{
				Verifier:  newTestVerifier(t, nil),
				OnFailure: func(_ *http.Request, err error) { failures = append(failures, err) },
			})(next)
			r := httptest.NewRequest(http.MethodPost, tc.req.target, nil)
			for _, v := range tc.req.headers {
				r.Header.Add("Authorization", v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)

			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tc.wantStatus, w.Body)
			}
			for name, vals := range w.Header() {
				for _, v := range vals {
					tokentest.AssertNoLeak(t, "response header "+name, v, tc.token)
				}
			}
			tokentest.AssertNoLeak(t, "response body", w.Body.String(), tc.token)
			for _, err := range failures {
				tokentest.AssertNoLeak(t, "OnFailure error", err.Error(), tc.token)
			}

			if tc.wantStatus == http.StatusOK {
				if !next.called || !next.ok || next.claims.ClientID() != "my-app" || next.claims.ID != tokentest.JTI {
					t.Fatalf("next handler: called=%v ok=%v claims=%+v", next.called, next.ok, next.claims)
				}
				if len(failures) != 0 {
					t.Fatalf("OnFailure called on success: %v", failures)
				}
				return
			}
			if next.called {
				t.Fatalf("next handler ran for a refused request")
			}
			if len(failures) != 1 {
				t.Fatalf("OnFailure called %d times, want 1", len(failures))
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			www := w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(www, "Bearer ") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", www)
			}
			if strings.ContainsAny(www, "\r\n") {
				t.Errorf("WWW-Authenticate contains a line break: %q", www)
			}
			for _, s := range tc.wwwHas {
				if !strings.Contains(www, s) {
					t.Errorf("WWW-Authenticate = %q, want it to contain %q", www, s)
				}
			}
			for _, s := range tc.wwwHasNot {
				if strings.Contains(www, s) {
					t.Errorf("WWW-Authenticate = %q, must not contain %q", www, s)
				}
			}
			var body ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", w.Body, err)
			}
			if tc.wantCode != "" && body.Error != tc.wantCode {
				t.Errorf("body error = %q, want %q", body.Error, tc.wantCode)
			}
			if !strings.Contains(body.Description, tc.wantDesc) {
				t.Errorf("body error_description = %q, want it to contain %q", body.Description, tc.wantDesc)
			}
			if strings.Contains(body.Description, "\n") {
				t.Errorf("error_description has a newline: %q", body.Description)
			}
		})
	}
}

func TestMiddlewareNoHeaderDescriptionIsExact(t *testing.T) {
	h := Middleware(MiddlewareConfig{Verifier: newTestVerifier(t, nil)})(&nextSpy{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	var body ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body != (ErrorBody{Error: "unauthorized", Description: "Authentication required"}) {
		t.Fatalf("body = %+v", body)
	}
	if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="mcpauth", error_description="Authentication required"`; got != want {
		t.Fatalf("WWW-Authenticate = %q, want %q", got, want)
	}
}

func TestMiddlewareDisabled(t *testing.T) {
	dev := &auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "dev"}, Scope: auth.Scopes{auth.ScopeAdmin}}
	tests := []struct {
		name   string
		header string
		dev    *auth.Claims
		wantOK bool
	}{
		{"disabled mode passes DevIdentity without a header", "", dev, true},
		{"disabled mode ignores a garbage header and passes DevIdentity", "Bearer garbage", dev, true},
		{"disabled mode without DevIdentity passes no identity", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := &nextSpy{}
			// No Verifier: disabled mode must not need one.
			h := Middleware(MiddlewareConfig{Disabled: true, DevIdentity: tc.dev})(next)
			r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK || !next.called {
				t.Fatalf("status = %d, next called = %v", w.Code, next.called)
			}
			if next.ok != tc.wantOK || (tc.wantOK && next.claims != tc.dev) {
				t.Fatalf("ClaimsFrom = %+v, %v; want %+v, %v", next.claims, next.ok, tc.dev, tc.wantOK)
			}
		})
	}
}

func TestWriteUnauthorizedKeepsHeaderSafe(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"quotes and backslashes in a reason cannot break the header", auth.Refuse(auth.ErrTokenInvalid, "bad \"x\" \\ y")},
		{"newlines in a reason cannot inject headers", auth.Refuse(auth.ErrTokenInvalid, "a\r\nSet-Cookie: x=1")},
		{"non-ASCII in a reason is replaced", auth.Refuse(auth.ErrTokenInvalid, "café")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteUnauthorized(w, tc.err, "")
			www := w.Header().Get("WWW-Authenticate")
			const prefix = `Bearer error="invalid_token", error_description="`
			if !strings.HasPrefix(www, prefix) || !strings.HasSuffix(www, `"`) {
				t.Fatalf("WWW-Authenticate = %q", www)
			}
			inner := strings.TrimSuffix(strings.TrimPrefix(www, prefix), `"`)
			for _, r := range inner {
				if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
					t.Fatalf("unsafe character %q in quoted description %q", r, inner)
				}
			}
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d", w.Code)
			}
			var body ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "invalid_token" {
				t.Fatalf("body = %q (%v)", w.Body, err)
			}
		})
	}
}

// Rule: the Bearer throttle never locks out the innocent. The token is
// verified first; only a failure meets the throttle (429 when the
// address is blocked, else 401 and one failure counted). A valid token
// from a throttled address (a shared NAT) still works, and a request
// without credentials (discovery) is answered 401 and never counted.
func TestThrottledAddressStillAcceptsValidTokens(t *testing.T) {
	validTok := tokentest.HS256(t, tokentest.BaseClaims())
	forgedTok := tokentest.Sign(t, jwt.SigningMethodHS256, tokentest.BaseClaims(), tokentest.ForeignSecret)
	tests := []struct {
		name       string
		auth       string
		blocked    bool
		wantStatus int
		wantFails  int
	}{
		{"valid token from a throttled address is served", "Bearer " + validTok, true, 200, 0},
		{"valid token from an unthrottled address is served", "Bearer " + validTok, false, 200, 0},
		{"forged token from a throttled address gets 429", "Bearer " + forgedTok, true, 429, 0},
		{"forged token from an unthrottled address gets 401 and counts", "Bearer " + forgedTok, false, 401, 1},
		{"no credentials from a throttled address get 401 and do not count", "", true, 401, 0},
		{"no credentials from an unthrottled address get 401 and do not count", "", false, 401, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			thr := &fakeThrottle{blocked: tc.blocked}
			next := &nextSpy{}
			h := Middleware(MiddlewareConfig{Verifier: newTestVerifier(t, nil), Throttle: thr})(next)
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantStatus || next.called != (tc.wantStatus == 200) {
				t.Fatalf("status %d (next called %v), want %d", w.Code, next.called, tc.wantStatus)
			}
			if tc.wantStatus == 429 && w.Header().Get("Retry-After") != "3" {
				t.Errorf("Retry-After = %q, want 3", w.Header().Get("Retry-After"))
			}
			if thr.fails != tc.wantFails {
				t.Errorf("failures counted = %d, want %d", thr.fails, tc.wantFails)
			}
		})
	}
}

// fakeThrottle blocks (or not) every source and counts failures.
type fakeThrottle struct {
	blocked bool
	fails   int
}

func (f *fakeThrottle) Blocked(string) (time.Duration, bool) { return 3 * time.Second, f.blocked }
func (f *fakeThrottle) Fail(string)                          { f.fails++ }

// Rule: a provider out of reach is the server's state: 503, not 401.
func TestAnUnreachableProviderAnswers503(t *testing.T) {
	x := &fakeExternal{err: auth.ErrIssuerUnavailable}
	h := Middleware(MiddlewareConfig{Verifier: newTestVerifier(t, func(c *auth.VerifierConfig) { c.External = x })})(&nextSpy{})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tokentest.ExternalToken(t, nil))
	h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// The throttle steps every credential check shares: a Guard without a
// Throttle is inert; Blocked sets Retry-After (rounded up seconds) and
// counts nothing; Failed counts only when not blocked.
func TestGuard(t *testing.T) {
	var none Guard
	if _, blocked := none.Failed(httptest.NewRecorder(), "192.0.2.1"); blocked {
		t.Fatal("a Guard without a Throttle blocked")
	}
	none.Fail("192.0.2.1") // no panic

	thr := &fakeThrottle{}
	g := Guard{Throttle: thr}
	rec := httptest.NewRecorder()
	if _, blocked := g.Blocked(rec, "192.0.2.1"); blocked || thr.fails != 0 || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("unblocked Blocked: blocked=%v fails=%d Retry-After=%q", blocked, thr.fails, rec.Header().Get("Retry-After"))
	}
	if _, blocked := g.Failed(rec, "192.0.2.1"); blocked || thr.fails != 1 {
		t.Fatalf("unblocked Failed: blocked=%v fails=%d", blocked, thr.fails)
	}

	thr.blocked = true
	secs, blocked := g.Failed(rec, "192.0.2.1")
	if !blocked || secs != "3" || rec.Header().Get("Retry-After") != "3" || thr.fails != 1 {
		t.Fatalf("blocked Failed: blocked=%v secs=%q Retry-After=%q fails=%d", blocked, secs, rec.Header().Get("Retry-After"), thr.fails)
	}
	if secs, blocked := g.Blocked(nil, "192.0.2.1"); !blocked || secs != "3" {
		t.Fatalf("Blocked without a writer: %q %v", secs, blocked)
	}
	if got := RetryAfter(1500 * time.Millisecond); got != "2" {
		t.Fatalf("RetryAfter(1.5s) = %q, want 2", got)
	}
}
