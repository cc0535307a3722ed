package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// The two source documents (../shared/seeds/) walked recipe by recipe, in
// the order each gives them, against the real binary: every step either
// works or gets the error the document's troubleshooting names
// ("JWT_SECRET not found", "Token has expired", "Invalid token",
// "Authentication required").

// docReply is one HTTP exchange: status, WWW-Authenticate and body.
type docReply struct {
	status int
	auth   string
	body   string
}

// docPost POSTs body to url as the documents' curl commands do, with the
// extra headers given as name, value pairs.
func docPost(t *testing.T, url, body string, headers ...string) docReply {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return docReply{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)}
}

// rpcResult is the JSON-RPC result of a reply sent as JSON or as one SSE
// event.
func rpcResult(t *testing.T, body string) map[string]any {
	t.Helper()
	raw := body
	if strings.HasPrefix(strings.TrimSpace(body), "event:") || strings.Contains(body, "\ndata: ") {
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				raw = d
			}
		}
	}
	var m struct {
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil || m.Result == nil {
		t.Fatalf("not a JSON-RPC result: %v\n%s", err, body)
	}
	return m.Result
}

// lifetime is exp-iat of a token issue --json answer.
func lifetime(t *testing.T, j issuedJSON) time.Duration {
	t.Helper()
	if j.ExpiresAt == nil {
		t.Fatalf("%s has no expiry", j.ClientID)
	}
	iat, err1 := time.Parse(time.RFC3339, j.IssuedAt)
	exp, err2 := time.Parse(time.RFC3339, *j.ExpiresAt)
	if err1 != nil || err2 != nil {
		t.Fatalf("times %q %q", j.IssuedAt, *j.ExpiresAt)
	}
	return exp.Sub(iat)
}

// signHS256 signs claims with secret, as jwt.io or jsonwebtoken would.
func signHS256(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const toolsListJSON = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

const day = 24 * time.Hour

func TestTokenGuideDocumentRecipesInOrder(t *testing.T) {
	apiKey := strings.Repeat("0123456789abcdef", 4)
	// The guide's URLs are …/v1/sse; its old scripts signed with iss
	// "secondlayer-mcp"; the 1s leeway lets a short token expire quickly.
	e := testEnv(t, "MCP_BASE_PATH=/v1", "API_KEY="+apiKey, "MCP_LEGACY_ISSUERS=secondlayer-mcp", "MCP_LEEWAY=1s")
	addr := startServer(t, e)
	base := "http://" + addr
	sse := base + "/v1/sse"
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	// Method 1, "Syntax: generate-jwt-token.ts [client-id] [expires-in]",
	// Example 1 "Token for 90 days" and "Script output": banner, Client ID,
	// Expires In, the token, an mcpServers config with the …/v1/sse URL and
	// the Authorization header, "Copy the configuration above", and the
	// token details (sub, iat, exp, iss).
	out, errOut, code := run(t, e, "", "token", "issue", "my-app", "90d")
	if code != 0 {
		t.Fatalf("generate my-app 90d: exit %d %s", code, errOut)
	}
	for _, want := range []string{"JWT token generated", "Client ID:  my-app", "Expires in: 90d", "Token:", `"mcpServers"`,
		"/v1/sse", "Authorization", "Bearer eyJ", "Copy the configuration above", "Token details:", "sub:   my-app", "iss:   mcpauth"} {
		if !strings.Contains(out, want) {
			t.Errorf("script output lacks %q:\n%s", want, out)
		}
	}
	tokRe := regexp.MustCompile(`(?m)^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$`)
	m := tokRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no token line in the output:\n%s", out)
	}
	myApp := m[1]
	iat := regexp.MustCompile(`iat:\s+(\S+)`).FindStringSubmatch(out)
	exp := regexp.MustCompile(`exp:\s+(\S+)`).FindStringSubmatch(out)
	if iat == nil || exp == nil {
		t.Fatalf("no iat/exp in the token details:\n%s", out)
	}
	ti, _ := time.Parse(time.RFC3339, iat[1])
	te, _ := time.Parse(time.RFC3339, exp[1])
	if te.Sub(ti) != 90*day {
		t.Fatalf("Example 1: exp-iat = %v, want 90d", te.Sub(ti))
	}
	// The output's config in the guide's own shape ({"url": …/v1/sse,
	// "headers": {"Authorization": "Bearer …"}}) is the generic client's;
	// the default (Claude Desktop) goes through mcp-remote.
	generic, _, _ := run(t, e, "", "token", "issue", "my-app", "90d", "--client", "generic")
	if !regexp.MustCompile(`"url": "[^"]*/v1/sse"`).MatchString(generic) || !strings.Contains(generic, `"Authorization": "Bearer eyJ`) {
		t.Fatalf("the guide's config shape:\n%s", generic)
	}

	// Example 2, "Token for 1 year": production-client 365d.
	if d := lifetime(t, issue(t, e, "production-client", "365d")); d != 365*day {
		t.Fatalf("Example 2: lifetime %v", d)
	}
	// Example 3, "Token for 30 days (the default)": dev-client 30d, and
	// the same without an expiry.
	if d := lifetime(t, issue(t, e, "dev-client", "30d")); d != 30*day {
		t.Fatalf("Example 3: lifetime %v", d)
	}
	if d := lifetime(t, issue(t, e, "dev-client")); d != 30*day {
		t.Fatalf("Example 3 default: lifetime %v", d)
	}
	// Example 4, "Token without expiry (not recommended)": refused unless
	// the operator opts in, then a token with no exp.
	if _, errOut, code := run(t, e, "", "token", "issue", "eternal-client", "never"); code == 0 || !strings.Contains(errOut, "never expire are not allowed") {
		t.Fatalf("Example 4 without opting in: exit %d %s", code, errOut)
	}
	if j := issue(t, mergeEnv(e, []string{"MCP_ALLOW_NEVER_EXPIRING=true"}), "eternal-client", "never"); j.ExpiresAt != nil || j.Token == "" {
		t.Fatalf("Example 4 opted in: %+v", j)
	}

	// Method 2, step 1 "Get JWT_SECRET: grep JWT_SECRET .env.production":
	// a .env.production holding JWT_SECRET= is read as the secret.
	dir := t.TempDir()
	envProd := filepath.Join(dir, ".env.production")
	if err := os.WriteFile(envProd, []byte("JWT_SECRET="+testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noSecret := mergeEnv(e, []string{"MCP_JWT_SECRET="})
	if _, errOut, code := run(t, noSecret, "", "--env-file", envProd, "token", "issue", "from-env-file", "7d", "--json"); code != 0 {
		t.Fatalf("Method 2 step 1, JWT_SECRET from .env.production: exit %d %s", code, errOut)
	}
	// Method 2, step 2 "jwt.io, HS256, PAYLOAD {sub, iat, exp, iss:
	// secondlayer-mcp}, VERIFY SIGNATURE with your JWT_SECRET": such a
	// token works once its issuer is trusted (MCP_LEGACY_ISSUERS)...
	now := time.Now()
	jwtio := signHS256(t, testSecret, jwt.MapClaims{"sub": "my-app", "iat": now.Unix(), "exp": now.Add(90 * day).Unix(), "iss": "secondlayer-mcp"})
	if r := docPost(t, sse, toolsListJSON, bearer(jwtio)...); r.status != 200 || !strings.Contains(r.body, `"whoami"`) {
		t.Fatalf("Method 2 jwt.io token: %d %s", r.status, r.body)
	}
	// ...and the guide's payload verbatim (exp 1744384800, in the past) is
	// "Token has expired".
	verbatim := signHS256(t, testSecret, jwt.MapClaims{"sub": "my-app", "iat": 1736608800, "exp": 1744384800, "iss": "secondlayer-mcp"})
	if r := docPost(t, sse, toolsListJSON, bearer(verbatim)...); r.status != 401 || !strings.Contains(r.auth, "Token has expired") {
		t.Fatalf("Method 2 verbatim payload: %d %q", r.status, r.auth)
	}

	// Method 3, "Node.js script": jwt.sign({sub, iat}, secret, {expiresIn:
	// '90d', issuer: 'secondlayer-mcp'}), then "Decode to check ... Expires
	// at": token decode shows it valid with its expiry.
	node := signHS256(t, testSecret, jwt.MapClaims{"sub": "my-app", "iat": now.Unix(), "exp": now.Add(90 * day).Unix(), "iss": "secondlayer-mcp"})
	dec, errOut, code := run(t, e, "", "token", "decode", "--json", node)
	if code != 0 || !strings.Contains(dec, `"valid": true`) || !strings.Contains(dec, now.Add(90*day).UTC().Format("2006-01-02")) {
		t.Fatalf("Method 3 decode: exit %d %s %s", code, dec, errOut)
	}

	// Method 4, "curl + API": POST …/api/auth/token with X-Admin-Key and
	// {"client_id":"my-app","expires_in":"90d"}. The token API answers at
	// the root path the guide names, beside /v1/sse (and under /v1 too).
	if r := docPost(t, base+"/v1/api/auth/token", `{"client_id":"my-app","expires_in":"90d"}`, "X-Admin-Key", apiKey); r.status != http.StatusOK {
		t.Fatalf("Method 4 under the base path: %d %s", r.status, r.body)
	}
	r := docPost(t, base+"/api/auth/token", `{"client_id":"my-app","expires_in":"90d"}`, "X-Admin-Key", apiKey)
	var api struct {
		Success bool `json:"success"`
		Data    struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int64  `json:"expires_in"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.body), &api); err != nil || r.status != 200 || !api.Success ||
		api.Data.TokenType != "Bearer" || api.Data.ExpiresIn != int64(90*day/time.Second) {
		t.Fatalf("Method 4: %d %s", r.status, r.body)
	}
	if r := docPost(t, sse, toolsListJSON, bearer(api.Data.AccessToken)...); r.status != 200 {
		t.Fatalf("Method 4 token: %d %s", r.status, r.body)
	}

	// "Token parameters", client_id: the guide's example names; expires_in
	// "<number><unit>" with d, h, m, s.
	for _, id := range []string{"production-web-app", "dev-mobile-app", "john-doe-laptop", "research-bot"} {
		if j := issue(t, e, id, "7d"); j.ClientID != id {
			t.Fatalf("client_id %s: %+v", id, j)
		}
	}
	for _, u := range []struct {
		spec string
		want time.Duration
	}{{"7d", 7 * day}, {"12h", 12 * time.Hour}, {"30m", 30 * time.Minute}, {"45s", 45 * time.Second}} {
		if d := lifetime(t, issue(t, e, "units", u.spec)); d != u.want {
			t.Fatalf("expires_in %s: lifetime %v", u.spec, d)
		}
	}

	// Security, "Generating a new JWT_SECRET" (randomBytes(32) as hex) and
	// "Change JWT_SECRET to revoke all tokens": a server on the new secret
	// refuses the old tokens as "Invalid token".
	secret, _, code := run(t, e, "", "secret", "generate")
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(secret) {
		t.Fatalf("secret generate: %q", secret)
	}
	rotated := startServer(t, testEnv(t, "MCP_BASE_PATH=/v1", "MCP_JWT_SECRET="+strings.TrimSpace(secret)))
	if r := docPost(t, "http://"+rotated+"/v1/sse", toolsListJSON, bearer(myApp)...); r.status != 401 || !strings.Contains(r.auth, "Invalid token") {
		t.Fatalf("an old token after the secret changed: %d %q", r.status, r.auth)
	}

	// "Testing the token": curl -X POST …/v1/sse with the Bearer header and
	// {"jsonrpc":"2.0","id":1,"method":"tools/list"}.
	if r := docPost(t, sse, toolsListJSON, bearer(myApp)...); r.status != 200 || !strings.Contains(r.body, `"whoami"`) {
		t.Fatalf("Testing the token: %d %s", r.status, r.body)
	}
	// "Checking token details" (sub, iat, exp, iss) without pasting it on
	// a public site: token decode.
	dec, _, _ = run(t, e, "", "token", "decode", "--json", myApp)
	for _, want := range []string{`"sub": "my-app"`, `"iat"`, `"exp"`, `"iss": "mcpauth"`} {
		if !strings.Contains(dec, want) {
			t.Fatalf("token details lack %s:\n%s", want, dec)
		}
	}

	// Usage example 1, "Development": dev-laptop 30d in
	// claude_desktop_config.json as {"url": …/v1/sse, "headers":
	// {"Authorization": "Bearer …"}}: an SSE client with exactly that.
	devLaptop := issue(t, e, "dev-laptop", "30d").Token
	c := sseClient(t, sse, devLaptop, "claude-desktop")
	if who := structuredField(t, testutil.CallTool(t, c, "whoami", nil), "client_id"); who != "dev-laptop" {
		t.Fatalf("Example 1 (development) whoami = %v", who)
	}
	// Usage example 2, "Production": production-web 180d kept as
	// MCP_JWT_TOKEN and sent as the Authorization header.
	prodWeb := issue(t, e, "production-web", "180d")
	if lifetime(t, prodWeb) != 180*day {
		t.Fatalf("Example 2 (production): %+v", prodWeb)
	}
	whoami := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	if r := docPost(t, sse, whoami, bearer(prodWeb.Token)...); r.status != 200 {
		t.Fatalf("Example 2 (production) whoami: %d %s", r.status, r.body)
	} else if sc, _ := rpcResult(t, r.body)["structuredContent"].(map[string]any); sc["client_id"] != "production-web" {
		t.Fatalf("Example 2 (production) whoami: %s", r.body)
	}
	// Usage example 3, "Multiple clients": one token per client, each
	// acting as itself.
	for _, c := range [][2]string{{"web-app", "90d"}, {"mobile-app", "90d"}, {"research-bot", "30d"}, {"john-laptop", "60d"}} {
		id, tok := c[0], issue(t, e, c[0], c[1]).Token
		r := docPost(t, sse, whoami, bearer(tok)...)
		if sc, _ := rpcResult(t, r.body)["structuredContent"].(map[string]any); r.status != 200 || sc["client_id"] != id {
			t.Fatalf("Example 3 (%s): %d %s", id, r.status, r.body)
		}
	}

	// Troubleshooting "JWT_SECRET not found": no secret anywhere...
	if _, errOut, code := run(t, noSecret, "", "token", "issue", "my-app", "90d"); code == 0 || !strings.Contains(errOut, "JWT_SECRET not found") {
		t.Fatalf("JWT_SECRET not found: exit %d %s", code, errOut)
	}
	// ...and its fix, "echo JWT_SECRET=$(…randomBytes(32)…) >> .env.production".
	fixed := filepath.Join(dir, "fixed.env.production")
	if err := os.WriteFile(fixed, []byte("JWT_SECRET="+secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, noSecret, "", "--env-file", fixed, "token", "issue", "my-app", "90d"); code != 0 {
		t.Fatalf("after the JWT_SECRET fix: exit %d %s", code, errOut)
	}
	// Troubleshooting "Token has expired": a token past its lifetime.
	short := issue(t, e, "short-lived", "1s").Token
	waitUntil(t, "the 1s token to be refused as expired", func() bool {
		r := docPost(t, sse, toolsListJSON, bearer(short)...)
		return r.status == 401 && strings.Contains(r.auth, "Token has expired")
	})
	// Troubleshooting "Invalid token": 1. another JWT_SECRET; 2. not three
	// dot-separated parts; 3. a newly generated token works.
	otherSecret := signHS256(t, "another-secret-another-secret-0123456789", jwt.MapClaims{"sub": "my-app", "iat": now.Unix(), "exp": now.Add(day).Unix(), "iss": "mcpauth"})
	for name, tok := range map[string]string{"another secret": otherSecret, "two parts": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"} {
		if r := docPost(t, sse, toolsListJSON, bearer(tok)...); r.status != 401 || !strings.Contains(r.auth, "Invalid token") {
			t.Fatalf("Invalid token (%s): %d %q", name, r.status, r.auth)
		}
	}
	if r := docPost(t, sse, toolsListJSON, bearer(issue(t, e, "my-app", "90d").Token)...); r.status != 200 {
		t.Fatalf("a newly generated token: %d %s", r.status, r.body)
	}
}

// wsCall sends one JSON-RPC message over c and returns the answer with
// the same id (or the error that ended the connection).
func wsCall(t *testing.T, c *websocket.Conn, msg string) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal([]byte(msg), &req)
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return nil, err
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("frame %q: %v", b, err)
		}
		if id, _ := json.Marshal(m["id"]); string(id) == string(req.ID) {
			return m, nil
		}
	}
}

func TestProductionSetupDocumentRecipesInOrder(t *testing.T) {
	// Step 1, "Generate Secure Secrets": the env block (NODE_ENV, API_KEY,
	// MCP_JWT_SECRET, MCP_AUTH_ENABLED, MCP_TOKEN_EXPIRY,
	// MCP_ALLOWED_CLIENTS, MCP_CORS_ORIGIN).
	block, _, code := run(t, testEnv(t), "", "secret", "generate", "--env")
	if code != 0 {
		t.Fatalf("secret generate --env: exit %d", code)
	}
	vals := map[string]string{}
	for _, line := range strings.Split(block, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vals[k] = v
		}
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	if vals["MCP_ENV"] != "production" || !hex64.MatchString(vals["MCP_JWT_SECRET"]) || !hex64.MatchString(vals["API_KEY"]) ||
		vals["MCP_AUTH_ENABLED"] != "true" || vals["MCP_TOKEN_EXPIRY"] != "24h" ||
		vals["MCP_ALLOWED_CLIENTS"] != "claude,chatgpt,cursor,vscode,continue" || !strings.Contains(block, "MCP_CORS_ORIGIN=") {
		t.Fatalf("the env block:\n%s", block)
	}

	// Step 2, "Configure environment variables": the required NODE_ENV=
	// production, API_KEY, MCP_JWT_SECRET and the recommended optional ones
	// with the document's values.
	apiKey := vals["API_KEY"]
	e := testEnv(t, "MCP_JWT_SECRET="+vals["MCP_JWT_SECRET"], "API_KEY="+apiKey, "NODE_ENV=production",
		"MCP_AUTH_ENABLED=true", "MCP_TOKEN_EXPIRY=24h", "MCP_ALLOWED_CLIENTS=claude,chatgpt,cursor,vscode,continue",
		"MCP_CORS_ORIGIN=https://claude.ai,https://chat.openai.com,https://cursor.sh", "MCP_LEEWAY=1s")

	// Step 3, "Deploy": the server starts with auth on and says where the
	// WebSocket endpoint is.
	addr, _, logs := startServerLogged(t, e)
	base := "http://" + addr
	waitUntil(t, "the listening line naming /ws", func() bool { return strings.Contains(logs.String(), "/ws") })

	// Step 4, "Other MCP clients", 1. "Get a JWT token": POST
	// /api/v1/mcp/auth/token with X-API-Key and {"client_id":
	// "your-client-name","scope":["campaigns:read","campaigns:export",
	// "tools:call"]}. A client not in MCP_ALLOWED_CLIENTS is refused ("Only
	// allowed clients can connect"); an allowed one gets its token.
	scopes := `["campaigns:read","campaigns:export","tools:call"]`
	tokenURL := base + "/api/v1/mcp/auth/token"
	if r := docPost(t, tokenURL, `{"client_id":"your-client-name","scope":`+scopes+`}`, "X-API-Key", apiKey); r.status != 403 || !strings.Contains(r.body, "client_not_allowed") {
		t.Fatalf("a client outside MCP_ALLOWED_CLIENTS: %d %s", r.status, r.body)
	}
	type tokenReply struct {
		Success bool `json:"success"`
		Data    struct {
			AccessToken string   `json:"access_token"`
			TokenType   string   `json:"token_type"`
			ExpiresIn   int64    `json:"expires_in"`
			Scope       []string `json:"scope"`
		} `json:"data"`
	}
	getToken := func(clientID, scope string) tokenReply {
		t.Helper()
		r := docPost(t, tokenURL, `{"client_id":"`+clientID+`","scope":`+scope+`}`, "X-API-Key", apiKey)
		var tr tokenReply
		if err := json.Unmarshal([]byte(r.body), &tr); err != nil || r.status != 200 || !tr.Success {
			t.Fatalf("token for %s: %d %s", clientID, r.status, r.body)
		}
		return tr
	}
	claude := getToken("claude", scopes)
	// Step 4, "Claude Desktop client": authenticate with the API key,
	// receive a JWT, include it in all MCP requests (Bearer).
	if who := structuredField(t, testutil.CallTool(t, mcpClient(t, addr, claude.Data.AccessToken), "whoami", nil), "client_id"); who != "claude" {
		t.Fatalf("whoami with the API's token = %v", who)
	}
	// Step 4, 2. "Include the token in your MCP WebSocket requests":
	// params.auth.token in each JSON-RPC request, no header on the upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dialWS := func() *websocket.Conn {
		t.Helper()
		hdr := http.Header{"Origin": {"https://claude.ai"}}
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{"mcp"}})
		if err != nil {
			t.Fatalf("dial /ws: %v", err)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		return c
	}
	withAuth := func(id int, method, token string) string {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": map[string]any{"auth": map[string]any{"token": token}}})
		return string(b)
	}
	ws := dialWS()
	ans, err := wsCall(t, ws, withAuth(1, "tools/list", claude.Data.AccessToken))
	if err != nil {
		t.Fatalf("tools/list over /ws: %v", err)
	}
	if b, _ := json.Marshal(ans["result"]); !strings.Contains(string(b), `"whoami"`) {
		t.Fatalf("tools/list over /ws: %v", ans)
	}

	// Step 5, "Test Authentication Endpoint": {"client_id":"test-client",
	// "scope":["campaigns:read"]}. test-client is not in the document's
	// own MCP_ALLOWED_CLIENTS, so it is refused (see the report); with an
	// allowed client the answer has the expected shape: success, Bearer,
	// expires_in 86400 (MCP_TOKEN_EXPIRY=24h), scope as asked.
	if r := docPost(t, tokenURL, `{"client_id":"test-client","scope":["campaigns:read"]}`, "X-API-Key", apiKey); r.status != 403 || !strings.Contains(r.body, "client_not_allowed") {
		t.Fatalf("Step 5 as written: %d %s", r.status, r.body)
	}
	cursor := getToken("cursor", `["campaigns:read"]`)
	if cursor.Data.TokenType != "Bearer" || cursor.Data.ExpiresIn != 86400 || len(cursor.Data.Scope) != 1 || cursor.Data.Scope[0] != "campaigns:read" ||
		!strings.HasPrefix(cursor.Data.AccessToken, "eyJhbGciOiJIUzI1NiIsImtpZCI6Imhz") { // {"alg":"HS256","kid":"hs…: HS256, naming the secret's key
		t.Fatalf("Step 5 with an allowed client: %+v", cursor)
	}
	// Step 5, "Test MCP Health Check": GET /api/v1/mcp/health returns the
	// server status and the authentication configuration.
	resp, err := http.Get(base + "/api/v1/mcp/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status string `json:"status"`
		Auth   struct {
			Enabled        bool   `json:"enabled"`
			DefaultExpiry  string `json:"default_expiry"`
			AllowedClients int    `json:"allowed_clients"`
			TokenAPI       bool   `json:"token_api"`
		} `json:"auth"`
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || health.Status != "ok" || !health.Auth.Enabled || health.Auth.DefaultExpiry != "1d" ||
		health.Auth.AllowedClients != 5 || !health.Auth.TokenAPI {
		t.Fatalf("health: %d %+v %v", resp.StatusCode, health, err)
	}

	// Security features, "CORS protection: restricted origins": an origin
	// outside MCP_CORS_ORIGIN is refused, a listed one is answered.
	for origin, want := range map[string]int{"https://evil.example": http.StatusForbidden, "https://chat.openai.com": http.StatusOK} {
		if r := docPost(t, base+"/mcp", initJSON, "Authorization", "Bearer "+claude.Data.AccessToken, "Origin", origin); r.status != want {
			t.Fatalf("Origin %s: %d, want %d: %s", origin, r.status, want, r.body)
		}
	}

	// Troubleshooting, "Authentication required" errors: a request without
	// a token gets exactly that, over HTTP and on the token endpoint...
	if r := docPost(t, base+"/mcp", toolsListJSON); r.status != 401 || !strings.Contains(r.auth, "Authentication required") {
		t.Fatalf("no token: %d %q", r.status, r.auth)
	}
	if r := docPost(t, tokenURL, `{"client_id":"claude"}`); r.status != 401 || !strings.Contains(r.body, "Authentication required") {
		t.Fatalf("token endpoint without X-API-Key: %d %s", r.status, r.body)
	}
	// ...and "Check NODE_ENV=production is set; ensure MCP_JWT_SECRET is
	// configured": production without a secret does not start.
	if _, errOut, code := run(t, mergeEnv(e, []string{"MCP_JWT_SECRET="}), "", "serve", "--addr", "127.0.0.1:0"); code == 0 || !strings.Contains(errOut, "JWT_SECRET not found") {
		t.Fatalf("NODE_ENV=production without MCP_JWT_SECRET: exit %d %s", code, errOut)
	}
	// Troubleshooting, "Invalid token" errors: "hasn't expired" (named
	// "Token has expired"), "sent in the correct format" (a malformed
	// params.auth.token is "Invalid token"; a header without "Bearer " is
	// no token at all, "Authentication required"), "the JWT secret
	// matches" ("Invalid token").
	shortTok := issue(t, e, "continue", "1s").Token
	waitUntil(t, "the 1s token to be refused as expired", func() bool {
		r := docPost(t, base+"/mcp", toolsListJSON, "Authorization", "Bearer "+shortTok)
		return r.status == 401 && strings.Contains(r.auth, "Token has expired")
	})
	ans, err = wsCall(t, ws, withAuth(2, "tools/list", "not-a-token"))
	if err != nil {
		t.Fatalf("a malformed params.auth.token: %v", err)
	}
	if b, _ := json.Marshal(ans["error"]); !strings.Contains(string(b), "Invalid token") {
		t.Fatalf("a malformed params.auth.token: %v", ans)
	}
	if r := docPost(t, base+"/mcp", toolsListJSON, "Authorization", claude.Data.AccessToken); r.status != 401 || !strings.Contains(r.auth, "Authentication required") {
		t.Fatalf("a token without Bearer: %d %q", r.status, r.auth)
	}
	otherSecret := signHS256(t, "another-secret-another-secret-0123456789", jwt.MapClaims{"sub": "claude", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "iss": "mcpauth"})
	if r := docPost(t, base+"/mcp", toolsListJSON, "Authorization", "Bearer "+otherSecret); r.status != 401 || !strings.Contains(r.auth, "Invalid token") {
		t.Fatalf("another secret: %d %q", r.status, r.auth)
	}
	// Troubleshooting, "Connection refused": the health URL answers and
	// WebSocket connections are allowed (an upgrade from an allowed origin).
	if r, err := http.Get(base + "/api/v1/mcp/health"); err != nil || r.StatusCode != 200 {
		t.Fatalf("health: %v", err)
	} else {
		r.Body.Close()
	}
	if ans, err := wsCall(t, dialWS(), withAuth(3, "tools/list", claude.Data.AccessToken)); err != nil || ans["result"] == nil {
		t.Fatalf("a second WebSocket connection: %v %v", ans, err)
	}
}
