package transport_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

// oauthClient plays an MCP client that signs in by itself: discovery,
// dynamic registration, PKCE, the consent page, the token endpoint.
type oauthClient struct {
	t        *testing.T
	s        *stack
	id       string
	redirect string
	verifier string
	http     *http.Client
}

func newOAuthClient(t *testing.T, s *stack) *oauthClient {
	t.Helper()
	return newNamedOAuthClient(t, s, "Test Assistant")
}

// newNamedOAuthClient registers a client that calls itself name.
func newNamedOAuthClient(t *testing.T, s *stack, name string) *oauthClient {
	t.Helper()
	c := &oauthClient{t: t, s: s, redirect: "http://127.0.0.1:9/callback",
		http: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	body := `{"client_name":"` + name + `","redirect_uris":["` + c.redirect + `"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`
	resp := c.post("/register", "application/json", body)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("register: %d %s", resp.StatusCode, b)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	c.id = reg.ClientID
	return c
}

func (c *oauthClient) post(path, ctype, body string) *http.Response {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.s.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (c *oauthClient) get(u string) *http.Response {
	c.t.Helper()
	resp, err := c.http.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func pkce() (verifier, challenge string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(h[:])
}

// authorizeURL builds an authorization request; edit can change params.
func (c *oauthClient) authorizeURL(edit func(url.Values)) string {
	v, ch := pkce()
	c.verifier = v
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect},
		"code_challenge": {ch}, "code_challenge_method": {"S256"}, "state": {"xyz-state"},
		"scope": {"tools:call"}, "resource": {c.s.URL + "/mcp"},
	}
	if edit != nil {
		edit(q)
	}
	return c.s.URL + "/authorize?" + q.Encode()
}

var hiddenRe = regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`)

// consent loads the consent page and submits code; it returns the
// redirect (Location) or fails.
func (c *oauthClient) consent(authURL, code, action string) (*http.Response, string) {
	c.t.Helper()
	page := c.get(authURL)
	b, _ := io.ReadAll(page.Body)
	if page.StatusCode != 200 {
		c.t.Fatalf("consent page: %d %s", page.StatusCode, b)
	}
	form := url.Values{"enrollment_code": {code}, "action": {action}}
	for _, m := range hiddenRe.FindAllStringSubmatch(string(b), -1) {
		form.Set(m[1], m[2])
	}
	resp := c.post("/authorize", "application/x-www-form-urlencoded", form.Encode())
	return resp, string(b)
}

func (c *oauthClient) exchange(form url.Values) (int, map[string]any) {
	c.t.Helper()
	resp := c.post("/token", "application/x-www-form-urlencoded", form.Encode())
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func enroll(t *testing.T, s *stack, name string, scopes ...string) string {
	t.Helper()
	admin := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	admin.Subject = "admin-console"
	e, err := s.OAuth.CreateEnrollment(context.Background(), admin, name, scopes, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return e.Code
}

func TestOAuthSignInMintsRecordedRevocableTokens(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})

	// Discovery: the 401 names the resource metadata, which names us.
	r := do(t, "POST", s.URL+"/mcp", "", initBody, nil)
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Fatal("no resource_metadata in the 401")
	}
	var prm struct {
		AS []string `json:"authorization_servers"`
	}
	_ = json.NewDecoder(do(t, "GET", s.URL+"/.well-known/oauth-protected-resource/mcp", "", "", nil).Body).Decode(&prm)
	if len(prm.AS) != 1 || prm.AS[0] != s.URL {
		t.Fatalf("authorization_servers = %v", prm.AS)
	}
	var md map[string]any
	_ = json.NewDecoder(do(t, "GET", s.URL+"/.well-known/oauth-authorization-server", "", "", nil).Body).Decode(&md)
	for k, want := range map[string]any{"issuer": s.URL, "token_endpoint": s.URL + "/token", "registration_endpoint": s.URL + "/register",
		"authorization_response_iss_parameter_supported": true} {
		if md[k] != want {
			t.Errorf("metadata %s = %v, want %v", k, md[k], want)
		}
	}
	if b, _ := json.Marshal(md["code_challenge_methods_supported"]); string(b) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported = %s", b)
	}

	c := newOAuthClient(t, s)
	code := enroll(t, s, "claude-ai", "tools:call")
	resp, page := c.consent(c.authorizeURL(nil), code, "approve")
	for _, want := range []string{"Test Assistant", "call this server", "127.0.0.1:9", "Enrollment code"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if resp.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("consent: %d %s", resp.StatusCode, b)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), c.redirect) || loc.Query().Get("state") != "xyz-state" || loc.Query().Get("iss") != s.URL || loc.Query().Get("code") == "" {
		t.Fatalf("redirect = %s", loc)
	}
	authCode := loc.Query().Get("code")
	before := s.tokenCount(t)
	status, tok := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {authCode}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}, "resource": {s.URL + "/mcp"}})
	if status != 200 || tok["token_type"] != "Bearer" || tok["refresh_token"] == nil {
		t.Fatalf("token: %d %v", status, tok)
	}
	access := tok["access_token"].(string)
	claims, err := s.Verifier.Verify(access)
	if err != nil || claims.Subject != "claude-ai" || claims.Scope.String() != "tools:call" || len(claims.Audience) != 1 || claims.Audience[0] != s.URL+"/mcp" {
		t.Fatalf("access token claims %+v, %v", claims, err)
	}
	if s.tokenCount(t) != before+1 {
		t.Fatal("the access token was not recorded in the registry")
	}
	// The token works for MCP like any other.
	mc, err := connect(t, kinds[0], s.URL, access)
	if err != nil {
		t.Fatal(err)
	}
	var who struct {
		ClientID string `json:"client_id"`
	}
	structured(t, testutil.CallTool(t, mc, "whoami", nil), &who)
	if who.ClientID != "claude-ai" {
		t.Fatalf("whoami = %+v", who)
	}
	// The code is single use, and a replay revokes what it issued.
	if status, out := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {authCode}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}}); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("code reuse: %d %v", status, out)
	}
	if _, err := s.Verifier.Verify(access); err != auth.ErrTokenRevoked {
		t.Fatalf("after code reuse the code's access token: %v, want revoked", err)
	}

	// Refresh rotates; reusing a spent refresh token revokes the family.
	tok, _ = c.signIn("claude-ai")
	rt1 := tok["refresh_token"].(string)
	status, tok2 := c.exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "client_id": {c.id}})
	if status != 200 || tok2["refresh_token"] == rt1 {
		t.Fatalf("refresh: %d %v", status, tok2)
	}
	access2 := tok2["access_token"].(string)
	if _, err := s.Verifier.Verify(access2); err != nil {
		t.Fatal(err)
	}
	if status, out := c.exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "client_id": {c.id}}); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("refresh reuse: %d %v", status, out)
	}
	if _, err := s.Verifier.Verify(access2); err != auth.ErrTokenRevoked {
		t.Fatalf("after refresh-token reuse the family's access token: %v, want revoked", err)
	}
	if status, _ := c.exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok2["refresh_token"].(string)}, "client_id": {c.id}}); status != 400 {
		t.Fatalf("the family's newest refresh token still works: %d", status)
	}

	// RFC 7009 revocation of an access token.
	_, tok3 := func() (int, map[string]any) {
		code := enroll(t, s, "claude-ai", "tools:call")
		resp, _ := c.consent(c.authorizeURL(nil), code, "approve")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {c.id},
			"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
	}()
	access3 := tok3["access_token"].(string)
	if r := c.post("/revoke", "application/x-www-form-urlencoded", url.Values{"token": {access3}}.Encode()); r.StatusCode != 200 {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	if _, err := s.Verifier.Verify(access3); err != auth.ErrTokenRevoked {
		t.Fatalf("revoked access token: %v", err)
	}
}

func TestOAuthRefusalsMintNothing(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	c := newOAuthClient(t, s)
	before := s.tokenCount(t)

	// Authorization requests refused before any consent.
	for name, tc := range map[string]struct {
		edit   func(url.Values)
		status int
		err    string
	}{
		"missing PKCE":        {func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, 302, "invalid_request"},
		"plain PKCE":          {func(q url.Values) { q.Set("code_challenge_method", "plain") }, 302, "invalid_request"},
		"foreign resource":    {func(q url.Values) { q.Set("resource", "https://other.example/mcp") }, 302, "invalid_target"},
		"wrong response type": {func(q url.Values) { q.Set("response_type", "token") }, 302, "unsupported_response_type"},
		"redirect mismatch":   {func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9/callback/evil") }, 400, ""},
		"unknown client":      {func(q url.Values) { q.Set("client_id", "mcp-unknown") }, 400, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := c.get(c.authorizeURL(tc.edit))
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if tc.err != "" {
				loc, _ := url.Parse(r.Header.Get("Location"))
				if loc.Query().Get("error") != tc.err || loc.Query().Get("iss") != s.URL || loc.Query().Get("state") != "xyz-state" {
					t.Fatalf("error redirect = %s", loc)
				}
			}
		})
	}

	// A wrong enrollment code re-renders the page and changes nothing.
	resp, _ := c.consent(c.authorizeURL(nil), "WRONG-CODE1", "approve")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "not valid") {
		t.Fatalf("wrong code: %d", resp.StatusCode)
	}
	// Deny redirects with access_denied.
	resp, _ = c.consent(c.authorizeURL(nil), "", "deny")
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "access_denied" {
		t.Fatalf("deny: %s", resp.Header.Get("Location"))
	}
	// An enrollment code works once.
	code := enroll(t, s, "once", "tools:call")
	resp, _ = c.consent(c.authorizeURL(nil), code, "approve")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	good, _ := url.Parse(resp.Header.Get("Location"))
	goodVerifier := c.verifier
	if resp, _ := c.consent(c.authorizeURL(nil), code, "approve"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second use of an enrollment code: %d", resp.StatusCode)
	}

	// Token endpoint refusals.
	base := url.Values{"grant_type": {"authorization_code"}, "code": {good.Query().Get("code")}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {goodVerifier}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range base {
			q[kk] = vv
		}
		q.Set(k, v)
		return q
	}
	// Each failed exchange consumes the code (single use), so the wrong
	// verifier row goes first and the rest use fresh codes.
	if status, out := c.exchange(with("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-1")); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", status, out)
	}
	if status, _ := c.exchange(base); status != 400 {
		t.Fatal("a code survived a failed exchange")
	}
	if status, out := c.exchange(url.Values{"grant_type": {"password"}}); status != 400 || out["error"] != "unsupported_grant_type" {
		t.Fatalf("password grant: %d %v", status, out)
	}
	// Registration refusals.
	for name, body := range map[string]string{
		"http redirect for a web client": `{"redirect_uris":["http://evil.example/cb"]}`,
		"confidential client":            `{"redirect_uris":["https://ok.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`,
		"no redirect":                    `{"redirect_uris":[]}`,
		"fragment":                       `{"redirect_uris":["https://ok.example/cb#x"]}`,
	} {
		if r := c.post("/register", "application/json", body); r.StatusCode != 400 {
			t.Errorf("register %s: %d", name, r.StatusCode)
		}
	}
	if s.tokenCount(t) != before {
		t.Fatalf("refusals minted %d tokens", s.tokenCount(t)-before)
	}
}

func TestConsentPageIsLockedDown(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	c := newOAuthClient(t, s)
	r := c.get(c.authorizeURL(nil))
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self' http://127.0.0.1:9"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	b, _ := io.ReadAll(r.Body)
	if strings.Contains(string(b), "<script") || strings.Contains(string(b), "http://") && !strings.Contains(string(b), "127.0.0.1:9") {
		t.Error("the consent page loads scripts or external assets")
	}
	// A forged form (no CSRF token) is refused.
	m := hiddenRe.FindAllStringSubmatch(string(b), -1)
	form := url.Values{"enrollment_code": {enroll(t, s, "x", "tools:call")}, "action": {"approve"}}
	for _, mm := range m {
		if mm[1] == "request" {
			form.Set("request", mm[2])
		}
	}
	if r := c.post("/authorize", "application/x-www-form-urlencoded", form.Encode()); r.StatusCode != http.StatusForbidden {
		t.Fatalf("form without CSRF token: %d", r.StatusCode)
	}
}

func TestCreateEnrollmentToolCodeSignsAClientIn(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	admin, err := connect(t, kinds[0], s.URL, s.mint(t, "admin-console", time.Hour, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	res := testutil.CallTool(t, admin, "create_enrollment", map[string]any{"name": "chatgpt", "scopes": []string{"tools:call"}, "expires_in": "10m"})
	var enr struct {
		Code      string `json:"code"`
		ServerURL string `json:"server_url"`
	}
	structured(t, res, &enr)
	if res.IsError || enr.Code == "" || enr.ServerURL != s.URL+"/mcp" {
		t.Fatalf("create_enrollment: %s", testutil.Text(res))
	}
	for name, args := range map[string]map[string]any{
		"bad name":      {"name": "a b"},
		"never":         {"name": "x", "expires_in": "never"},
		"too long":      {"name": "x", "expires_in": "2d"},
		"unknown field": {"name": "x", "admin": true},
	} {
		if r := testutil.CallTool(t, admin, "create_enrollment", args); !r.IsError {
			t.Errorf("%s: accepted", name)
		}
	}
	c := newOAuthClient(t, s)
	resp, _ := c.consent(c.authorizeURL(nil), enr.Code, "approve")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	status, tok := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	claims, err := s.Verifier.Verify(tok["access_token"].(string))
	if err != nil || claims.Subject != "chatgpt" {
		t.Fatalf("claims %+v %v", claims, err)
	}
	// A non-admin does not see the tool.
	user, err := connect(t, kinds[0], s.URL, s.mint(t, "plain", time.Hour, "tools:call"))
	if err != nil {
		t.Fatal(err)
	}
	if names := testutil.ToolNames(t, user); len(names) != 1 {
		t.Fatalf("non-admin tools = %v", names)
	}
}

func TestApprovalFromTheChatContinuesTheWaitingPage(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	admin, err := connect(t, kinds[0], s.URL, s.mint(t, "admin-console", time.Hour, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	c := newOAuthClient(t, s)
	startWaiting := func() (waitURL string) {
		page := c.get(c.authorizeURL(nil))
		b, _ := io.ReadAll(page.Body)
		q := url.Values{}
		for _, m := range hiddenRe.FindAllStringSubmatch(string(b), -1) {
			q.Set(m[1], m[2])
		}
		return s.URL + "/authorize/wait?" + q.Encode()
	}
	waitURL := startWaiting()
	r := c.get(waitURL)
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || r.Header.Get("Refresh") == "" || !strings.Contains(string(body), "Waiting for your admin") {
		t.Fatalf("waiting page: %d %q", r.StatusCode, r.Header.Get("Refresh"))
	}
	var pending struct {
		Pending []struct {
			ID     string   `json:"request_id"`
			Name   string   `json:"client_name"`
			Scopes []string `json:"requested_scopes"`
		} `json:"pending"`
	}
	structured(t, testutil.CallTool(t, admin, "list_pending_authorizations", nil), &pending)
	if len(pending.Pending) != 1 || pending.Pending[0].Name != "Test Assistant" || !strings.Contains(string(body), pending.Pending[0].ID) {
		t.Fatalf("pending = %+v", pending)
	}
	id := pending.Pending[0].ID
	if res := testutil.CallTool(t, admin, "approve_authorization", map[string]any{"request_id": id, "scopes": []string{"admin"}}); !res.IsError {
		t.Fatal("approved a scope the client did not request")
	}
	if res := testutil.CallTool(t, admin, "approve_authorization", map[string]any{"request_id": "ZZZ-ZZZ"}); !res.IsError {
		t.Fatal("approved an unknown request")
	}
	if res := testutil.CallTool(t, admin, "approve_authorization", map[string]any{"request_id": strings.ToLower(id)}); res.IsError {
		t.Fatalf("approve: %s", testutil.Text(res))
	}
	r = c.get(waitURL)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("iss") != s.URL {
		t.Fatalf("after approval: %d %s", r.StatusCode, loc)
	}
	status, tok := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	claims, err := s.Verifier.Verify(tok["access_token"].(string))
	if err != nil || claims.Subject != "test-assistant" || claims.Scope.String() != "tools:call" {
		t.Fatalf("claims %+v %v", claims, err)
	}

	// Denial: the waiting page sends access_denied; a forged wait URL is refused.
	waitURL = startWaiting()
	structured(t, testutil.CallTool(t, admin, "list_pending_authorizations", nil), &pending)
	if res := testutil.CallTool(t, admin, "deny_authorization", map[string]any{"request_id": pending.Pending[0].ID}); res.IsError {
		t.Fatalf("deny: %s", testutil.Text(res))
	}
	if r := c.get(strings.Replace(waitURL, "csrf=", "csrf=x", 1)); r.StatusCode != http.StatusForbidden {
		t.Fatalf("forged wait URL: %d", r.StatusCode)
	}
	r = c.get(waitURL)
	if loc, _ := url.Parse(r.Header.Get("Location")); loc.Query().Get("error") != "access_denied" {
		t.Fatalf("after denial: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestRevokingAnOAuthClientAlsoKillsItsRefreshTokens(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	c := newOAuthClient(t, s)
	signIn := func() map[string]any {
		resp, _ := c.consent(c.authorizeURL(nil), enroll(t, s, "kill-me", "tools:call"), "approve")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		status, tok := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {c.id},
			"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
		if status != 200 {
			t.Fatalf("token: %d %v", status, tok)
		}
		return tok
	}
	admin, err := connect(t, kinds[0], s.URL, s.mint(t, "admin-console", time.Hour, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	// By jti: the family behind that access token dies.
	tok := signIn()
	if res := testutil.CallTool(t, admin, "revoke_token", map[string]any{"token": tok["access_token"]}); res.IsError {
		t.Fatal(testutil.Text(res))
	}
	if status, out := c.exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {c.id}}); status != 400 {
		t.Fatalf("refresh after revoking its access token: %d %v", status, out)
	}
	// By client: every refresh token of the client dies.
	tok1, tok2 := signIn(), signIn()
	if res := testutil.CallTool(t, admin, "revoke_token", map[string]any{"client_id": "kill-me"}); res.IsError {
		t.Fatal(testutil.Text(res))
	}
	for _, tk := range []map[string]any{tok1, tok2} {
		if status, _ := c.exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk["refresh_token"].(string)}, "client_id": {c.id}}); status != 400 {
			t.Fatalf("refresh after revoking the client: %d", status)
		}
	}
}

// signIn runs c's whole sign-in with an enrollment code for name and
// returns the token response; it also returns the authorization code.
func (c *oauthClient) signIn(name string) (tok map[string]any, code string) {
	c.t.Helper()
	resp, _ := c.consent(c.authorizeURL(nil), enroll(c.t, c.s, name, "tools:call"), "approve")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code = loc.Query().Get("code")
	status, tok := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
	if status != 200 {
		c.t.Fatalf("sign-in of %s: %d %v", name, status, tok)
	}
	return tok, code
}

func (c *oauthClient) refresh(rt, clientID string) (int, map[string]any) {
	c.t.Helper()
	return c.exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
}

// Rule: a refresh request with a valid refresh token but another client's
// client_id is refused before the token is consumed, and changes nothing:
// the real client's next refresh works, and reuse detection still fires
// on a true replay afterwards.
func TestRefreshWithAnotherClientsIDChangesNothing(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	real, other := newOAuthClient(t, s), newOAuthClient(t, s)
	tok, _ := real.signIn("real-app")
	rt1 := tok["refresh_token"].(string)
	if status, out := other.refresh(rt1, other.id); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("refresh with another client's id: %d %v", status, out)
	}
	if _, err := s.Verifier.Verify(tok["access_token"].(string)); err != nil {
		t.Fatalf("the refused refresh touched the access token: %v", err)
	}
	status, tok2 := real.refresh(rt1, real.id)
	if status != 200 {
		t.Fatalf("the real client's refresh after the refused one: %d %v", status, tok2)
	}
	if status, _ := real.refresh(rt1, real.id); status != 400 {
		t.Fatalf("replay of a spent refresh token: %d", status)
	}
	if _, err := s.Verifier.Verify(tok2["access_token"].(string)); err != auth.ErrTokenRevoked {
		t.Fatalf("reuse detection did not fire on the true replay: %v", err)
	}
}

// Rule (OAuth 2.1 4.1.3, RFC 9700 4.14.2): reusing an authorization code
// revokes the tokens already issued from it, access and refresh alike,
// including those refreshed since; detected refresh-token reuse revokes
// every live access token of the family, the one minted with the code
// and the current one.
func TestReuseRevokesTheTokensIssuedFromACodeOrAFamily(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	c := newOAuthClient(t, s)
	revoked := func(t *testing.T, what string, tok map[string]any) {
		t.Helper()
		if _, err := s.Verifier.Verify(tok["access_token"].(string)); err != auth.ErrTokenRevoked {
			t.Errorf("%s access token: %v, want revoked", what, err)
		}
		if status, _ := c.refresh(tok["refresh_token"].(string), c.id); status != 400 {
			t.Errorf("%s refresh token still works: %d", what, status)
		}
	}
	t.Run("code reuse right after the exchange", func(t *testing.T) {
		tok, code := c.signIn("code-reuse-1")
		status, out := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.id},
			"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
		if status != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("code reuse: %d %v", status, out)
		}
		revoked(t, "the code's", tok)
	})
	t.Run("code reuse after a refresh", func(t *testing.T) {
		tok1, code := c.signIn("code-reuse-2")
		status, tok2 := c.refresh(tok1["refresh_token"].(string), c.id)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, tok2)
		}
		if status, _ := c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.id},
			"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}}); status != 400 {
			t.Fatalf("code reuse: %d", status)
		}
		if _, err := s.Verifier.Verify(tok1["access_token"].(string)); err != auth.ErrTokenRevoked {
			t.Errorf("the code's first access token: %v, want revoked", err)
		}
		revoked(t, "the refreshed", tok2)
	})
	t.Run("refresh-token reuse", func(t *testing.T) {
		tok1, _ := c.signIn("refresh-reuse")
		status, tok2 := c.refresh(tok1["refresh_token"].(string), c.id)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, tok2)
		}
		if status, _ := c.refresh(tok1["refresh_token"].(string), c.id); status != 400 {
			t.Fatalf("replay: %d", status)
		}
		if _, err := s.Verifier.Verify(tok1["access_token"].(string)); err != auth.ErrTokenRevoked {
			t.Errorf("the family's first access token: %v, want revoked", err)
		}
		revoked(t, "the family's current", tok2)
	})
	t.Run("another sign-in of the same client is untouched", func(t *testing.T) {
		keep, _ := c.signIn("bystander")
		tok, code := c.signIn("code-reuse-3")
		_, _ = c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.id},
			"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
		revoked(t, "the reused code's", tok)
		if _, err := s.Verifier.Verify(keep["access_token"].(string)); err != nil {
			t.Errorf("another family's access token: %v", err)
		}
		if status, _ := c.refresh(keep["refresh_token"].(string), c.id); status != 200 {
			t.Errorf("another family's refresh token: %d", status)
		}
	})
}

// Rule (RFC 8252 7.3): a native client's loopback redirect URI matches
// with any port (the app listens where it can); scheme, host, path and
// query must match exactly, and web clients keep the exact match.
func TestLoopbackRedirectsOfNativeClientsMatchAnyPort(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	web := newOAuthClient(t, s)
	native := &oauthClient{t: t, s: s, http: web.http}
	resp := native.post("/register", "application/json", `{"client_name":"Native App","application_type":"native",`+
		`"redirect_uris":["http://127.0.0.1/callback","http://[::1]:8080/cb","http://localhost:3334/oauth/callback"]}`)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reg); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %v", resp.StatusCode, err)
	}
	native.id = reg.ClientID
	for _, tc := range []struct {
		name     string
		c        *oauthClient
		redirect string
		want     int
	}{
		{"127.0.0.1 with a port, registered without", native, "http://127.0.0.1:53127/callback", 200},
		{"127.0.0.1 as registered", native, "http://127.0.0.1/callback", 200},
		{"[::1] with another port", native, "http://[::1]:9999/cb", 200},
		{"[::1] without a port", native, "http://[::1]/cb", 200},
		{"localhost with another port", native, "http://localhost:4444/oauth/callback", 200},
		{"another path", native, "http://127.0.0.1:53127/callback/evil", 400},
		{"another loopback host", native, "http://localhost:53127/callback", 400},
		{"https instead of http", native, "https://127.0.0.1:53127/callback", 400},
		{"an added query", native, "http://127.0.0.1:53127/callback?x=1", 400},
		{"user info", native, "http://evil@127.0.0.1:53127/callback", 400},
		{"a web client's loopback redirect keeps its port", web, "http://127.0.0.1:10/callback", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.redirect = tc.redirect
			if r := tc.c.get(tc.c.authorizeURL(nil)); r.StatusCode != tc.want {
				t.Fatalf("authorize: %d, want %d", r.StatusCode, tc.want)
			}
		})
	}
	// The whole flow on a port of the app's choosing: the code goes back
	// to that port and is bound to that exact URI.
	native.redirect = "http://127.0.0.1:53127/callback"
	r, _ := native.consent(native.authorizeURL(nil), enroll(t, s, "native-app", "tools:call"), "approve")
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound || loc.Host != "127.0.0.1:53127" || loc.Query().Get("code") == "" {
		t.Fatalf("consent: %d %s", r.StatusCode, loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {native.id},
		"redirect_uri": {"http://127.0.0.1/callback"}, "code_verifier": {native.verifier}}
	if status, _ := native.exchange(form); status != 400 {
		t.Fatalf("exchange with the registered (portless) URI instead of the one used: %d", status)
	}
	r, _ = native.consent(native.authorizeURL(nil), enroll(t, s, "native-app", "tools:call"), "approve")
	loc, _ = url.Parse(r.Header.Get("Location"))
	form.Set("code", loc.Query().Get("code"))
	form.Set("code_verifier", native.verifier)
	form.Set("redirect_uri", native.redirect)
	if status, out := native.exchange(form); status != 200 {
		t.Fatalf("exchange: %d %v", status, out)
	}
}

// waitForApproval opens c's consent page and returns the waiting page's
// URL and the request's short id, as an admin sees it.
func (c *oauthClient) waitForApproval() (waitURL, shortID string) {
	c.t.Helper()
	page := c.get(c.authorizeURL(nil))
	b, _ := io.ReadAll(page.Body)
	q := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(string(b), -1) {
		q.Set(m[1], m[2])
	}
	return c.s.URL + "/authorize/wait?" + q.Encode(), oauth.ShortID(q.Get("request"))
}

// redeem follows an approved waiting page to the code and exchanges it.
func (c *oauthClient) redeem(waitURL string) (int, map[string]any) {
	c.t.Helper()
	loc, _ := url.Parse(c.get(waitURL).Header.Get("Location"))
	return c.exchange(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {c.id},
		"redirect_uri": {c.redirect}, "code_verifier": {c.verifier}})
}

func oauthAdminClaims() *auth.Claims {
	admin := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	admin.Subject = "admin-console"
	return admin
}

// Rule: a client id derived from a dynamically registered client's chosen
// name (approval by request id without a client_id) never equals an
// existing subject: a client id with tokens (compared ignoring case), a
// built-in identity, an enrollment code's name, or one granted to another
// sign-in not yet redeemed. Such an approval is refused, changes nothing,
// and the admin can approve with an explicit client_id instead.
func TestDerivedClientIDsNeverEqualAnExistingSubject(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true})
	ctx := context.Background()
	s.mint(t, "admin-x", time.Hour, "admin")
	s.mint(t, "Shouty-Name", time.Hour)
	enroll(t, s, "claude-ai", "tools:call")
	// A sign-in approved but not yet redeemed, and one whose code is out
	// but not yet exchanged.
	granted := newNamedOAuthClient(t, s, "Twin")
	_, id := granted.waitForApproval()
	if _, err := s.OAuth.Approve(ctx, oauthAdminClaims(), id, "", nil); err != nil {
		t.Fatal(err)
	}
	coded := newNamedOAuthClient(t, s, "Coded")
	waitURL, id := coded.waitForApproval()
	if _, err := s.OAuth.Approve(ctx, oauthAdminClaims(), id, "", nil); err != nil {
		t.Fatal(err)
	}
	if r := coded.get(waitURL); r.StatusCode != http.StatusFound {
		t.Fatalf("waiting page after approval: %d", r.StatusCode)
	}
	for _, tc := range []struct{ name, clientName string }{
		{"a real client's id", "Admin X"},
		{"a real client's id in another case", "shouty name"},
		{"a built-in identity", "Local Admin"},
		{"an enrollment code's name", "Claude AI"},
		{"an id granted to a sign-in not yet redeemed", "Twin"},
		{"an id whose code is not yet exchanged", "Coded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newNamedOAuthClient(t, s, tc.clientName)
			waitURL, id := c.waitForApproval()
			_, err := s.OAuth.Approve(ctx, oauthAdminClaims(), id, "", nil)
			if err == nil || !strings.Contains(err.Error(), "already") || !strings.Contains(err.Error(), "client_id") {
				t.Fatalf("approval by request id: %v, want a refusal naming the clash and client_id", err)
			}
			// Nothing changed: still pending, and an explicit id works.
			if r := c.get(waitURL); r.StatusCode != 200 {
				t.Fatalf("the waiting page after the refusal: %d", r.StatusCode)
			}
			name := "dyn-" + strings.ReplaceAll(strings.ToLower(tc.clientName), " ", "-")
			if _, err := s.OAuth.Approve(ctx, oauthAdminClaims(), id, name, nil); err != nil {
				t.Fatalf("approval with an explicit client_id: %v", err)
			}
			status, tok := c.redeem(waitURL)
			if status != 200 {
				t.Fatalf("token: %d %v", status, tok)
			}
			if claims, err := s.Verifier.Verify(tok["access_token"].(string)); err != nil || claims.Subject != name {
				t.Fatalf("claims %+v %v, want sub %s", claims, err, name)
			}
		})
	}
	// A name nobody has is used as it is.
	c := newNamedOAuthClient(t, s, "Brand New")
	waitURL, id = c.waitForApproval()
	if p, err := s.OAuth.Approve(ctx, oauthAdminClaims(), id, "", nil); err != nil {
		t.Fatalf("approval of a fresh name: %v %+v", err, p)
	}
	if status, tok := c.redeem(waitURL); status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	} else if claims, err := s.Verifier.Verify(tok["access_token"].(string)); err != nil || claims.Subject != "brand-new" {
		t.Fatalf("claims %+v %v", claims, err)
	}
}

// Rule: MCP_ALLOWED_CLIENTS is enforced when an enrollment code is
// created and when a sign-in is approved, not only at /token after the
// user has spent the code; a refused approval changes nothing.
func TestAllowedClientsAreCheckedAtEnrollmentAndApproval(t *testing.T) {
	s := startStack(t, stackOpts{oauth: true, allowedClients: []string{"claude-ai", "admin-console"}})
	ctx := context.Background()
	t.Run("enrollment", func(t *testing.T) {
		if _, err := s.OAuth.CreateEnrollment(ctx, oauthAdminClaims(), "not-listed", []string{"tools:call"}, time.Minute); !errors.Is(err, auth.ErrClientNotAllowed) {
			t.Fatalf("enrollment for a client outside the list: %v", err)
		}
		if _, err := s.OAuth.CreateEnrollment(ctx, oauthAdminClaims(), "claude-ai", []string{"tools:call"}, time.Minute); err != nil {
			t.Fatalf("enrollment for a listed client: %v", err)
		}
	})
	for _, tc := range []struct{ name, clientID, want string }{
		{"approval with an id outside the list", "not-listed", "allowed"},
		{"approval with the id derived from the client's name", "", "client_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOAuthClient(t, s)
			waitURL, id := c.waitForApproval()
			if _, err := s.OAuth.Approve(ctx, oauthAdminClaims(), id, tc.clientID, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("approval: %v, want a refusal mentioning %q", err, tc.want)
			}
			if r := c.get(waitURL); r.StatusCode != 200 {
				t.Fatalf("the waiting page after the refusal: %d", r.StatusCode)
			}
			if _, err := s.OAuth.Approve(ctx, oauthAdminClaims(), id, "claude-ai", nil); err != nil {
				t.Fatalf("approval with a listed id: %v", err)
			}
			if status, tok := c.redeem(waitURL); status != 200 {
				t.Fatalf("token: %d %v", status, tok)
			}
		})
	}
}
