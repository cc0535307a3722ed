package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/internal/testutil"
	"github.com/mcpauth/mcpauth/transport"
)

func TestVersionCommand(t *testing.T) {
	out, _, code := run(t, testEnv(t), "", "version")
	if code != 0 || out != "mcpauth dev ("+runtime.Version()+")\n" {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

// Rule: NODE_ENV (the production setup document's switch) is read as
// MCP_ENV when that is not set; MCP_ENV wins when both are.
func TestNodeEnvIsReadAsMCPEnvUnlessMCPEnvIsSet(t *testing.T) {
	noSecret := testEnv(t, "MCP_JWT_SECRET=")
	// Development: no secret needed (a dev secret is generated).
	if _, errOut, code := run(t, mergeEnv(noSecret, []string{"NODE_ENV=development"}), "", "token", "issue", "dev-app", "1d", "--json"); code != 0 {
		t.Fatalf("NODE_ENV=development: exit %d, %s", code, errOut)
	}
	for _, env := range [][]string{
		{"NODE_ENV=production"},
		{"NODE_ENV=development", "MCP_ENV=production"},
	} {
		_, errOut, code := run(t, mergeEnv(noSecret, env), "", "token", "issue", "prod-app", "1d", "--json")
		if code == 0 || !strings.Contains(errOut, "MCP_JWT_SECRET") {
			t.Fatalf("%v without a secret: exit %d, %s", env, code, errOut)
		}
	}
}

// Rule: serve on an empty registry says how to mint the first token.
func TestFirstStartSaysHowToGetTheFirstToken(t *testing.T) {
	_, _, logs := startServerLogged(t, testEnv(t))
	waitUntil(t, "the first-token hint", func() bool {
		return strings.Contains(logs.String(), "no tokens yet") && strings.Contains(logs.String(), "mcpauth token issue <your-name> 30d --scope admin")
	})
}

// Rule: every environment variable the server reads (a tag of Config) is
// listed in serve --help and in the README, so the lists cannot drift
// from what the code reads.
func TestEveryEnvironmentVariableIsDocumented(t *testing.T) {
	help, _, code := run(t, testEnv(t), "", "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		name := typ.Field(i).Tag.Get("env")
		if name == "" {
			continue
		}
		// serve --help renders each setting from its help tag (envHelp):
		// a setting without one would be listed with no explanation.
		if h := typ.Field(i).Tag.Get("help"); strings.TrimSpace(h) == "" {
			t.Errorf("%s has no help tag", name)
		}
		if !strings.Contains(help, name) {
			t.Errorf("%s is read but not listed in serve --help", name)
		}
		if !strings.Contains(string(readme), "`"+name+"`") && !strings.Contains(string(readme), "`"+name+"` ") {
			t.Errorf("%s is read but not in README", name)
		}
	}
}

// Rule: every tool of mcpauth's own is named in the command's --help, in
// the MCP instructions and in the README.
func TestEveryToolIsNamedInHelpInstructionsAndDocs(t *testing.T) {
	help, _, _ := run(t, testEnv(t), "", "--help")
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lc, _, err := testEnvConfig(t).library(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lc.OAuth.Serve, lc.PublicURL = true, "http://127.0.0.1:1"
	lc.Upstreams = nil
	srv, err := mcpauth.New(context.Background(), lc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	names := append(srv.Toolset.Names(), "list_upstreams") // exists in gateway mode
	for _, name := range names {
		for where, text := range map[string]string{"--help": help, "the MCP instructions": transport.Instructions, "README": string(readme)} {
			if !strings.Contains(text, name) {
				t.Errorf("%s is not named in %s", name, where)
			}
		}
	}
}

// testEnvConfig is the configuration testEnv describes, with every
// default as the binary reads it.
func testEnvConfig(t *testing.T) Config {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range testEnv(t) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: vars})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Env = "production"
	return cfg
}

// Rule: the HTTP token API (and issue_token) default to MCP_TOKEN_EXPIRY,
// 24h as the production setup document says; token issue keeps the token
// guide's 30d.
func TestDefaultLifetimesFollowEachDocument(t *testing.T) {
	apiKey := strings.Repeat("a", 20) + strings.Repeat("b", 20)
	e := testEnv(t, "API_KEY="+apiKey)
	cli := issue(t, e, "from-cli")
	iat, _ := time.Parse(time.RFC3339, cli.IssuedAt)
	exp, _ := time.Parse(time.RFC3339, *cli.ExpiresAt)
	if exp.Sub(iat) != 30*24*time.Hour {
		t.Fatalf("token issue default lifetime = %v, want 30d", exp.Sub(iat))
	}
	addr := startServer(t, e)
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/mcp/auth/token", strings.NewReader(`{"client_id":"from-api"}`))
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ExpiresIn int64 `json:"expires_in"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.Data.ExpiresIn != 86400 {
		t.Fatalf("token API default: %d, expires_in %d, %v", resp.StatusCode, body.Data.ExpiresIn, err)
	}
}

// Rule: SIGTERM logs that the server is stopping, with the sessions it
// closes and the requests it drains, and that it stopped.
func TestSIGTERMLogsTheDrain(t *testing.T) {
	e := testEnv(t)
	tok := issue(t, e, "streamer", "1h").Token
	addr, cmd, logs := startServerLogged(t, e)
	if r := postMCP(t, addr, tok, initJSON); r.StatusCode != http.StatusOK {
		t.Fatalf("initialize: %d", r.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mcpauth stopping", `"open_sessions":1`, "mcpauth stopped", `"all_finished":true`} {
		waitUntil(t, want+" in the log", func() bool { return strings.Contains(logs.String(), want) })
	}
}

// Rule: MCP_BASE_PATH serves every endpoint under a prefix, so the
// documents' URLs (…/v1/sse) work as written: the token guide's check,
// Streamable HTTP, legacy SSE (its endpoint event names the prefixed
// message URL), the metadata at both the prefixed and the RFC 9728 root
// form, and the configs token issue prints. /health stays at the root.
func TestBasePathServesTheDocumentsURLs(t *testing.T) {
	e := testEnv(t, "MCP_BASE_PATH=/v1")
	tok := issue(t, e, "my-app", "1d").Token
	addr := startServer(t, e)
	base := "http://" + addr
	get := func(path string) (int, string) {
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	post := func(path, token, body string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, string(b)
	}
	if r, body := post("/v1/sse", tok, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); r.StatusCode != 200 || !strings.Contains(body, `"whoami"`) {
		t.Fatalf("the token guide's check at /v1/sse: %d %s", r.StatusCode, body)
	}
	if r, _ := post("/mcp", tok, initJSON); r.StatusCode != http.StatusNotFound {
		t.Fatalf("/mcp outside the base path: %d", r.StatusCode)
	}
	for _, p := range []string{"/health", "/v1/health"} {
		if code, _ := get(p); code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
	for _, p := range []string{"/.well-known/oauth-protected-resource/v1/mcp", "/v1/.well-known/oauth-protected-resource/mcp"} {
		if code, body := get(p); code != 200 || !strings.Contains(body, `"resource": "`+base+`/v1/mcp"`) {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
	}
	if code, body := get("/.well-known/oauth-authorization-server/v1"); code != 200 || !strings.Contains(body, `"issuer":"`+base+`/v1"`) {
		t.Fatalf("AS metadata: %d %s", code, body)
	}
	if r, _ := post("/v1/mcp", "bad.to.ken", initJSON); !strings.Contains(r.Header.Get("WWW-Authenticate"), base+"/v1/.well-known/oauth-protected-resource") {
		t.Fatalf("challenge: %q", r.Header.Get("WWW-Authenticate"))
	}
	// Both MCP transports through the prefix, with real clients.
	if who := structuredField(t, testutil.CallTool(t, mcpClient(t, addr+"/v1", tok), "whoami", nil), "client_id"); who != "my-app" {
		t.Fatalf("whoami over /v1/mcp = %v", who)
	}
	sse := sseClient(t, base+"/v1/sse", tok, "t")
	if who := structuredField(t, testutil.CallTool(t, sse, "whoami", nil), "client_id"); who != "my-app" {
		t.Fatalf("whoami over /v1/sse = %v", who)
	}
	// The config token issue prints names the prefixed URL.
	out, _, _ := run(t, e, "", "token", "issue", "cfg-app", "1d")
	if !strings.Contains(out, "/v1/sse") {
		t.Fatalf("token issue config lacks /v1/sse:\n%s", out)
	}
}

// Rule: tokens minted by the operators' earlier scripts (same secret,
// their own iss, no jti) are refused naming the expected issuer, unless
// that iss is in MCP_LEGACY_ISSUERS; then they work, and token import
// records them under a stable id so they are listed, decoded and
// revoked like any other.
func TestTokensOfTheOldScriptsCanBeTrustedImportedAndRevoked(t *testing.T) {
	now := time.Now()
	old, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "legacy-app", "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(), "iss": "old-mcp-server",
	}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	plain := testEnv(t)
	addr := startServer(t, plain)
	r := postMCP(t, addr, old, initJSON)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `wrong issuer`) ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), `mcpauth`) {
		t.Fatalf("an untrusted issuer: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}

	e := testEnv(t, "MCP_LEGACY_ISSUERS=old-mcp-server,another-old-one")
	addr = startServer(t, e)
	if who := structuredField(t, testutil.CallTool(t, mcpClient(t, addr, old), "whoami", nil), "client_id"); who != "legacy-app" {
		t.Fatalf("whoami with an old script's token = %v", who)
	}
	out, errOut, code := run(t, e, "", "token", "import", old)
	if code != 0 || !strings.Contains(out, "Imported legacy-") {
		t.Fatalf("token import: exit %d, %s %s", code, out, errOut)
	}
	jti := strings.Fields(strings.TrimPrefix(out, "Imported "))[0]
	if again, _, _ := run(t, e, old+"\n", "token", "import"); !strings.Contains(again, "Already recorded: "+jti) {
		t.Fatalf("a second import: %s", again)
	}
	if !recordedJTIs(t, e, "legacy-app")[jti] {
		t.Fatal("the imported token is not listed")
	}
	if dec, _, _ := run(t, e, "", "token", "decode", "--json", old); !strings.Contains(dec, `"jti": "`+jti+`"`) {
		t.Fatalf("decode: %s", dec)
	}
	if _, errOut, code := run(t, e, "", "token", "revoke", old, "--reason", "migrated"); code != 0 {
		t.Fatalf("token revoke: %s", errOut)
	}
	waitUntil(t, "the revoked old token to be refused", func() bool {
		return postMCP(t, addr, old, initJSON).StatusCode == http.StatusUnauthorized
	})
	// A token of an issuer still untrusted stays refused.
	other, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "x", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "iss": "someone-else",
	}).SignedString([]byte(testSecret))
	if _, errOut, code := run(t, e, "", "token", "import", other); code == 0 || !strings.Contains(errOut, "wrong issuer") {
		t.Fatalf("importing an untrusted issuer's token: exit %d, %s", code, errOut)
	}
}
