package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/tools"
	"github.com/mcpauth/mcpauth/transport"
)

// These tests drive the real toolset through the real mcp-go server with
// HandleMessage: no network, a SQLite registry in a temp dir, and a fixed
// clock. The legacy (pre-2026) protocol path needs neither an initialize
// handshake nor a session in the context.

const (
	testIssuer   = "test"
	defaultLife  = 30 * 24 * time.Hour
	maxLife      = 365 * 24 * time.Hour
	adminSubject = "admin-x"
)

var (
	testSecret    = []byte("k3v9Qw7TzP1xR4mN8bY2cL6hJ0fD5sGa-tools")
	foreignSecret = []byte("Zx8Wq2Lr5Tn9Pk3Mv7Bc1Hd6Fg4Js0Ya-other")
	t0            = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
)

func fixed(tm time.Time) func() time.Time { return func() time.Time { return tm } }

type env struct {
	srv      *server.MCPServer
	reg      *registry.SQLite
	verifier *auth.Verifier
	ids      atomic.Int64
}

type envOpts struct {
	allowNever bool
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.OpenSQLite(ctx, filepath.Join(t.TempDir(), "reg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	issuer, err := auth.NewIssuer(auth.IssuerConfig{
		Secret: testSecret, Issuer: testIssuer, MaxLifetime: maxLife, AllowNever: o.allowNever, Now: fixed(t0),
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Secret: testSecret, Issuer: testIssuer, AllowNever: o.allowNever, Now: fixed(t0)})
	if err != nil {
		t.Fatal(err)
	}
	ts := tools.New(tools.Deps{
		Minter: issuer, Inspector: verifier, Clients: reg, Tokens: reg,
		DefaultExpiry: auth.Expiry{Duration: defaultLife},
		PublicURL:     "https://mcp.example.test/",
		ServerName:    "mcpauth-test",
		Issuer:        testIssuer,
		Now:           fixed(t0),
	})
	return &env{srv: transport.NewMCPServer(ts, "test"), reg: reg, verifier: verifier}
}

func adminCtx() context.Context {
	return auth.WithClaims(context.Background(), &auth.Claims{Scope: auth.Scopes{"admin"}, RegisteredClaims: regClaims(adminSubject)})
}

func userCtx() context.Context {
	return auth.WithClaims(context.Background(), &auth.Claims{Scope: auth.Scopes{"tools:call"}, RegisteredClaims: regClaims("user-y")})
}

func regClaims(sub string) (c jwt.RegisteredClaims) {
	c.Subject = sub
	c.ID = "jti-of-" + sub
	c.Issuer = testIssuer
	return c
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type callResult struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
}

func (r callResult) text() string {
	var b strings.Builder
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

// structuredAs decodes a result's structured content as T and returns it
// with the result's text.
func structuredAs[T any](t *testing.T, r *callResult) (T, string) {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.StructuredContent, &v); err != nil {
		t.Fatal(err)
	}
	return v, r.text()
}

// rpc sends one JSON-RPC request and decodes the response.
func (e *env) rpc(t *testing.T, ctx context.Context, method string, params string) rpcResponse {
	t.Helper()
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q`, e.ids.Add(1), method)
	if params != "" {
		msg += `,"params":` + params
	}
	msg += "}"
	out := e.srv.HandleMessage(ctx, json.RawMessage(msg))
	if out == nil {
		t.Fatalf("%s: no response", method)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("%s: marshal response: %v", method, err)
	}
	var resp rpcResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("%s: decode response %s: %v", method, b, err)
	}
	return resp
}

// call invokes a tool with raw JSON arguments ("" omits them). It returns
// the tool result, or nil and the JSON-RPC error.
func (e *env) call(t *testing.T, ctx context.Context, name, rawArgs string) (*callResult, *rpcError) {
	t.Helper()
	nb, _ := json.Marshal(name)
	params := `{"name":` + string(nb)
	if rawArgs != "" {
		params += `,"arguments":` + rawArgs
	}
	params += "}"
	resp := e.rpc(t, ctx, "tools/call", params)
	if resp.Error != nil {
		return nil, resp.Error
	}
	var r callResult
	if err := json.Unmarshal(resp.Result, &r); err != nil {
		t.Fatalf("decode tool result %s: %v", resp.Result, err)
	}
	return &r, nil
}

// mustCall requires a non-error tool result.
func (e *env) mustCall(t *testing.T, ctx context.Context, name, rawArgs string) *callResult {
	t.Helper()
	r, rerr := e.call(t, ctx, name, rawArgs)
	if rerr != nil {
		t.Fatalf("%s(%s): JSON-RPC error %d %s", name, rawArgs, rerr.Code, rerr.Message)
	}
	if r.IsError {
		t.Fatalf("%s(%s): tool error: %s", name, rawArgs, r.text())
	}
	return r
}

func (e *env) listTools(t *testing.T, ctx context.Context) []string {
	t.Helper()
	resp := e.rpc(t, ctx, "tools/list", `{}`)
	if resp.Error != nil {
		t.Fatalf("tools/list: %d %s", resp.Error.Code, resp.Error.Message)
	}
	var res struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

func (e *env) count(t *testing.T) int {
	t.Helper()
	all, err := e.reg.ListTokens(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestIssueTokenRefusesInvalidArgumentsAndMintsNothing(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := adminCtx()
	long129 := strings.Repeat("a", 129)
	huge := strings.Repeat("x", 10<<10)
	tests := []struct {
		name    string
		args    string // raw JSON; "" omits arguments
		wantMsg string
	}{
		// client_id presence and type
		{"arguments omitted", "", `"client_id" is required`},
		{"arguments null", `null`, `"client_id" is required`},
		{"client_id missing", `{}`, `"client_id" is required`},
		{"client_id null", `{"client_id":null}`, `"client_id" is required`},
		{"client_id number", `{"client_id":42}`, `"client_id" must be a string`},
		{"client_id array", `{"client_id":["ok"]}`, `"client_id" must be a string`},
		{"client_id object", `{"client_id":{"id":"ok"}}`, `"client_id" must be a string`},
		{"client_id bool", `{"client_id":true}`, `"client_id" must be a string`},
		// client_id content
		{"client_id empty", `{"client_id":""}`, "invalid client_id: it is required"},
		{"client_id 129 chars", `{"client_id":"` + long129 + `"}`, "at most 128 characters"},
		{"client_id 10 KB", `{"client_id":"` + huge + `"}`, "at most 128 characters"},
		{"client_id unicode", `{"client_id":"clïent"}`, "only ASCII letters"},
		{"client_id NUL", `{"client_id":"a\u0000b"}`, "only ASCII letters"},
		{"client_id newline", `{"client_id":"a\nb"}`, "only ASCII letters"},
		{"client_id space", `{"client_id":"a b"}`, "only ASCII letters"},
		{"client_id path", `{"client_id":"../etc"}`, "only ASCII letters"},
		// expires_in
		{"expires_in 0d", `{"client_id":"ok","expires_in":"0d"}`, "is zero"},
		{"expires_in -1d", `{"client_id":"ok","expires_in":"-1d"}`, "not a positive whole number"},
		{"expires_in 1.5d", `{"client_id":"ok","expires_in":"1.5d"}`, "not a positive whole number"},
		{"expires_in leading space", `{"client_id":"ok","expires_in":" 30d"}`, "not a positive whole number"},
		{"expires_in trailing space", `{"client_id":"ok","expires_in":"30d "}`, "no valid unit"},
		{"expires_in abc", `{"client_id":"ok","expires_in":"abc"}`, "no valid unit"},
		{"expires_in empty", `{"client_id":"ok","expires_in":""}`, "empty value"},
		{"expires_in overflowing", `{"client_id":"ok","expires_in":"999999999d"}`, "too long"},
		{"expires_in beyond max 365d", `{"client_id":"ok","expires_in":"366d"}`, "lifetime exceeds the configured maximum"},
		{"expires_in 8761h beyond max", `{"client_id":"ok","expires_in":"8761h"}`, "lifetime exceeds the configured maximum"},
		{"expires_in never not allowed", `{"client_id":"ok","expires_in":"never"}`, "never expire are not allowed"},
		{"expires_in NEVER is not never", `{"client_id":"ok","expires_in":"NEVER"}`, "no valid unit"},
		{"expires_in number", `{"client_id":"ok","expires_in":30}`, `"expires_in" must be a string`},
		{"expires_in array", `{"client_id":"ok","expires_in":["30d"]}`, `"expires_in" must be a string`},
		// scopes
		{"scopes number", `{"client_id":"ok","scopes":7}`, `"scopes" must be an array of strings`},
		{"scopes array with number", `{"client_id":"ok","scopes":["read",1]}`, `"scopes" must be an array of strings`},
		{"scopes object", `{"client_id":"ok","scopes":{"read":true}}`, `"scopes" must be an array of strings`},
		{"scope with quote", `{"client_id":"ok","scopes":["a\"b"]}`, "invalid scope"},
		{"scope with space inside array item", `{"client_id":"ok","scopes":["a b"]}`, "invalid scope"},
		{"scope non-ASCII", `{"client_id":"ok","scopes":["lecture-é"]}`, "invalid scope"},
		{"scope too long", `{"client_id":"ok","scopes":["` + strings.Repeat("s", 129) + `"]}`, "invalid scope"},
		// argument object shape
		{"unknown extra argument", `{"client_id":"ok","role":"admin"}`, `unknown argument "role"`},
		{"case-variant duplicate key", `{"client_id":"ok","CLIENT_ID":"evil"}`, `argument "CLIENT_ID" is given more than once`},
		{"exact duplicate key, last would win", `{"client_id":"ok","client_id":"evil"}`, `argument "client_id" is given more than once`},
		{"case-variant key alone", `{"Client_Id":"evil"}`, `names are case-sensitive`},
		{"case-variant expires_in", `{"client_id":"ok","Expires_In":"never"}`, `did you mean "expires_in"`},
		{"arguments JSON array", `["client_id","ok"]`, "arguments must be a JSON object"},
		{"arguments JSON string", `"ok"`, "arguments must be a JSON object"},
		{"arguments number", `42`, "arguments must be a JSON object"},
		{"arguments over 64 KB", `{"client_id":"ok","expires_in":` + jsonString(strings.Repeat("1", 70<<10)) + `}`, "larger than 65536 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t)
			r, rerr := e.call(t, ctx, "issue_token", tc.args)
			if rerr != nil {
				t.Fatalf("JSON-RPC error %d %q, want a tool error result", rerr.Code, rerr.Message)
			}
			if !r.IsError {
				t.Fatalf("isError = false, want true; text: %.200s", r.text())
			}
			if msg := r.text(); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %.300q does not contain %q", msg, tc.wantMsg)
			}
			if len(r.StructuredContent) > 0 && string(r.StructuredContent) != "null" {
				t.Errorf("refusal carries structured content: %.200s", r.StructuredContent)
			}
			if after := e.count(t); after != before {
				t.Errorf("registry grew from %d to %d on a refused call", before, after)
			}
		})
	}
	evil, err := e.reg.ListTokens(context.Background(), "evil")
	if err != nil {
		t.Fatal(err)
	}
	if len(evil) != 0 {
		t.Errorf("%d tokens were minted for client %q", len(evil), "evil")
	}
	if n := e.count(t); n != 0 {
		t.Errorf("registry holds %d tokens after only refused calls", n)
	}
}

func TestIssueTokenMintsRecordsAndDescribesToken(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := adminCtx()
	id128 := strings.Repeat("A", 127) + "9"
	tests := []struct {
		name       string
		args       string
		wantClient string
		wantScopes []string
		wantLife   time.Duration
	}{
		{"default expiry when expires_in omitted", `{"client_id":"bot-1"}`, "bot-1", []string{}, defaultLife},
		{"default expiry when expires_in null", `{"client_id":"bot-2","expires_in":null}`, "bot-2", []string{}, defaultLife},
		{"explicit hours", `{"client_id":"bot-3","expires_in":"24h"}`, "bot-3", []string{}, 24 * time.Hour},
		{"explicit minutes", `{"client_id":"bot-4","expires_in":"15m"}`, "bot-4", []string{}, 15 * time.Minute},
		{"exactly the maximum", `{"client_id":"bot-5","expires_in":"365d"}`, "bot-5", []string{}, maxLife},
		{"scopes granted from array", `{"client_id":"research-bot","scopes":["tools:call","read"]}`, "research-bot", []string{"tools:call", "read"}, defaultLife},
		{"scopes granted from space-separated string", `{"client_id":"r2","scopes":"tools:call read"}`, "r2", []string{"tools:call", "read"}, defaultLife},
		{"scopes trimmed and de-duplicated", `{"client_id":"r3","scopes":["a"," a ","b",""]}`, "r3", []string{"a", "b"}, defaultLife},
		{"admin scope can be granted by admin", `{"client_id":"root-2","scopes":["admin"]}`, "root-2", []string{"admin"}, defaultLife},
		{"scopes null", `{"client_id":"r4","scopes":null}`, "r4", []string{}, defaultLife},
		{"allowed punctuation in client_id", `{"client_id":"a.b_c-D9"}`, "a.b_c-D9", []string{}, defaultLife},
		{"128-char client_id", `{"client_id":"` + id128 + `"}`, id128, []string{}, defaultLife},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t)
			r := e.mustCall(t, ctx, "issue_token", tc.args)

			var keys map[string]json.RawMessage
			if err := json.Unmarshal(r.StructuredContent, &keys); err != nil {
				t.Fatalf("structured content %s: %v", r.StructuredContent, err)
			}
			for _, k := range []string{"token", "jti", "client_id", "scopes", "issued_at", "expires_at", "config"} {
				if _, ok := keys[k]; !ok {
					t.Errorf("structured content lacks %q", k)
				}
			}
			var res tools.IssueResult
			if err := json.Unmarshal(r.StructuredContent, &res); err != nil {
				t.Fatal(err)
			}
			if res.ClientID != tc.wantClient {
				t.Errorf("client_id = %q, want %q", res.ClientID, tc.wantClient)
			}
			if !slices.Equal(res.Scopes, tc.wantScopes) {
				t.Errorf("scopes = %q, want %q", res.Scopes, tc.wantScopes)
			}
			if res.TokenType != "Bearer" {
				t.Errorf("token_type = %q", res.TokenType)
			}
			if res.IssuedAt != t0.Format(time.RFC3339) {
				t.Errorf("issued_at = %q, want %q", res.IssuedAt, t0.Format(time.RFC3339))
			}
			if res.ExpiresAt == nil || *res.ExpiresAt != t0.Add(tc.wantLife).Format(time.RFC3339) {
				t.Errorf("expires_at = %v, want %s", res.ExpiresAt, t0.Add(tc.wantLife).Format(time.RFC3339))
			}
			// The featured config is Claude Desktop's: mcp-remote with the
			// header passed through an env var.
			if res.Client != "claude-desktop" {
				t.Errorf("client = %q, want claude-desktop by default", res.Client)
			}
			servers, _ := res.Config["mcpServers"].(map[string]any)
			entry, _ := servers["mcpauth-test"].(map[string]any)
			if entry == nil {
				t.Fatalf("config.mcpServers lacks the server entry: %v", res.Config)
			}
			args, _ := entry["args"].([]any)
			if entry["command"] != "npx" || len(args) != 4 || args[0] != "mcp-remote" || args[1] != "https://mcp.example.test/sse" || args[3] != "Authorization:${AUTH_HEADER}" {
				t.Errorf("claude desktop config = %v", entry)
			}
			env, _ := entry["env"].(map[string]any)
			if env["AUTH_HEADER"] != "Bearer "+res.Token {
				t.Errorf("config AUTH_HEADER does not carry the token")
			}
			// The generic one is the token guide's url + headers block.
			generic, _ := res.Configs["generic"].(map[string]any)
			gs, _ := generic["mcpServers"].(map[string]any)
			ge, _ := gs["mcpauth-test"].(map[string]any)
			headers, _ := ge["headers"].(map[string]any)
			if ge["url"] != "https://mcp.example.test/sse" || headers["Authorization"] != "Bearer "+res.Token {
				t.Errorf("generic config = %v", generic)
			}
			text := r.text()
			if !strings.Contains(text, res.Token) || !strings.Contains(text, "mcpServers") {
				t.Errorf("text lacks the token or mcpServers:\n%s", text)
			}

			// The token itself verifies and says the same.
			claims, err := e.verifier.Verify(res.Token)
			if err != nil {
				t.Fatalf("minted token does not verify: %v", err)
			}
			if claims.Subject != tc.wantClient || claims.ID != res.JTI || claims.Issuer != testIssuer {
				t.Errorf("claims sub=%q jti=%q iss=%q", claims.Subject, claims.ID, claims.Issuer)
			}
			if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life != tc.wantLife {
				t.Errorf("exp - iat = %v, want %v", life, tc.wantLife)
			}
			if !slices.Equal([]string(claims.Scope), tc.wantScopes) {
				t.Errorf("scope claim = %q, want %q", claims.Scope, tc.wantScopes)
			}

			// And it was recorded before being returned.
			if after := e.count(t); after != before+1 {
				t.Errorf("registry count %d -> %d, want +1", before, after)
			}
			rec, err := e.reg.Get(context.Background(), res.JTI)
			if err != nil {
				t.Fatalf("registry.Get(%s): %v", res.JTI, err)
			}
			if rec.ClientID != tc.wantClient || rec.IssuedBy != adminSubject || !rec.IssuedAt.Equal(t0) || !rec.ExpiresAt.Equal(t0.Add(tc.wantLife)) {
				t.Errorf("registry record = %+v", rec)
			}
		})
	}
}

func TestIssueTokenNeverWhenAllowedHasNoExpiry(t *testing.T) {
	e := newEnv(t, envOpts{allowNever: true})
	r := e.mustCall(t, adminCtx(), "issue_token", `{"client_id":"forever","expires_in":"never"}`)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.StructuredContent, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["expires_at"]) != "null" {
		t.Errorf("expires_at = %s, want null", raw["expires_at"])
	}
	var res tools.IssueResult
	if err := json.Unmarshal(r.StructuredContent, &res); err != nil {
		t.Fatal(err)
	}
	claims, err := e.verifier.Verify(res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if claims.ExpiresAt != nil {
		t.Errorf("never token has exp %v", claims.ExpiresAt)
	}
	rec, err := e.reg.Get(context.Background(), res.JTI)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.ExpiresAt.IsZero() {
		t.Errorf("registry ExpiresAt = %v, want zero", rec.ExpiresAt)
	}
}

func TestToolsListShowsAdminToolsOnlyToAdmins(t *testing.T) {
	e := newEnv(t, envOpts{})
	tests := []struct {
		name string
		ctx  context.Context
		want []string
	}{
		{"admin sees every tool", adminCtx(), []string{"decode_token", "issue_token", "list_clients", "list_tokens", "revoke_token", "whoami"}},
		{"non-admin sees only whoami", userCtx(), []string{"whoami"}},
		{"caller with no scopes sees only whoami", auth.WithClaims(context.Background(), &auth.Claims{RegisteredClaims: regClaims("bare")}), []string{"whoami"}},
		{"no claims in context sees nothing", context.Background(), []string{}},
		{"nil claims in context sees nothing", auth.WithClaims(context.Background(), nil), []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.listTools(t, tc.ctx); !slices.Equal(got, tc.want) {
				t.Errorf("tools/list = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCallsWithoutRequiredScopeAreRefusedAndMintNothing(t *testing.T) {
	e := newEnv(t, envOpts{})
	// A valid token to try to decode.
	minted := e.mustCall(t, adminCtx(), "issue_token", `{"client_id":"seed"}`)
	var seed tools.IssueResult
	if err := json.Unmarshal(minted.StructuredContent, &seed); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		ctx  context.Context
		tool string
		args string
	}{
		{"non-admin issue_token", userCtx(), "issue_token", `{"client_id":"sneaky"}`},
		{"non-admin issue_token admin scope", userCtx(), "issue_token", `{"client_id":"sneaky","scopes":["admin"]}`},
		{"non-admin decode_token", userCtx(), "decode_token", `{"token":` + jsonString(seed.Token) + `}`},
		{"non-admin list_clients", userCtx(), "list_clients", `{}`},
		{"anonymous whoami", context.Background(), "whoami", `{}`},
		{"anonymous issue_token", context.Background(), "issue_token", `{"client_id":"sneaky"}`},
		{"anonymous list_clients", context.Background(), "list_clients", ""},
		{"nil claims issue_token", auth.WithClaims(context.Background(), nil), "issue_token", `{"client_id":"sneaky"}`},
		{"unknown tool as admin", adminCtx(), "delete_everything", `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t)
			r, rerr := e.call(t, tc.ctx, tc.tool, tc.args)
			switch {
			case rerr != nil:
				// Refused at the protocol level (tool filtered out).
				if !strings.Contains(rerr.Message, "not found") {
					t.Errorf("JSON-RPC error %q, want a not-found refusal", rerr.Message)
				}
			case r.IsError:
				// Refused by the guard.
			default:
				t.Fatalf("call succeeded: %.300s", r.text())
			}
			if r != nil && strings.Contains(r.text(), "eyJ") {
				t.Errorf("refusal contains token material: %.200s", r.text())
			}
			if after := e.count(t); after != before {
				t.Errorf("registry count %d -> %d on a refused call", before, after)
			}
		})
	}
	if toks, _ := e.reg.ListTokens(context.Background(), "sneaky"); len(toks) != 0 {
		t.Errorf("%d tokens minted for %q", len(toks), "sneaky")
	}
}

func TestWhoamiReturnsCallerIdentity(t *testing.T) {
	e := newEnv(t, envOpts{})
	exp := t0.Add(2 * time.Hour)
	withExp := &auth.Claims{Scope: auth.Scopes{"tools:call", "read"}, RegisteredClaims: regClaims("reader")}
	withExp.ExpiresAt = jwt.NewNumericDate(exp)
	tests := []struct {
		name      string
		ctx       context.Context
		wantID    string
		wantScope []string
		wantAdmin bool
		wantExp   *string
	}{
		{"admin", adminCtx(), adminSubject, []string{"admin"}, true, nil},
		{"non-admin", userCtx(), "user-y", []string{"tools:call"}, false, nil},
		{"expiring token shows expiry", auth.WithClaims(context.Background(), withExp), "reader", []string{"tools:call", "read"}, false, ptr(exp.Format(time.RFC3339))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.mustCall(t, tc.ctx, "whoami", "")
			var res tools.WhoamiResult
			if err := json.Unmarshal(r.StructuredContent, &res); err != nil {
				t.Fatal(err)
			}
			if res.ClientID != tc.wantID || !slices.Equal(res.Scopes, tc.wantScope) || res.Admin != tc.wantAdmin {
				t.Errorf("whoami = %+v, want id %q scopes %q admin %v", res, tc.wantID, tc.wantScope, tc.wantAdmin)
			}
			if (res.ExpiresAt == nil) != (tc.wantExp == nil) || (res.ExpiresAt != nil && *res.ExpiresAt != *tc.wantExp) {
				t.Errorf("expires_at = %v, want %v", deref(res.ExpiresAt), deref(tc.wantExp))
			}
			if !strings.Contains(r.text(), fmt.Sprintf("%q", tc.wantID)) {
				t.Errorf("text %q lacks the client id", r.text())
			}
		})
	}

	t.Run("extra argument refused", func(t *testing.T) {
		r, rerr := e.call(t, userCtx(), "whoami", `{"as":"admin-x"}`)
		if rerr != nil || !r.IsError || !strings.Contains(r.text(), `unknown argument "as"`) {
			t.Errorf("whoami with extra argument: rpc=%v result=%+v", rerr, r)
		}
	})
}

type inspection struct {
	Decodable      bool   `json:"decodable"`
	SignatureValid bool   `json:"signature_valid"`
	Valid          bool   `json:"valid"`
	Reason         string `json:"reason"`
	Expired        bool   `json:"expired"`
	Claims         map[string]any
	SignedBy       *struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	} `json:"signed_by"`
}

// foreignMint mints a token with its own secret, clock and recorder.
func foreignMint(t *testing.T, secret []byte, now time.Time, life time.Duration) string {
	t.Helper()
	iss, err := auth.NewIssuer(auth.IssuerConfig{Secret: secret, Issuer: testIssuer, MaxLifetime: maxLife, Now: fixed(now)}, discard{})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := iss.Issue(context.Background(), auth.IssueRequest{
		ClientID: "outsider", Expiry: auth.Expiry{Duration: life},
		Caller: &auth.Claims{Scope: auth.Scopes{"admin"}, RegisteredClaims: regClaims("other-admin")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk.Token
}

type discard struct{}

func (discard) Record(context.Context, auth.IssuedToken) error { return nil }

func TestDecodeTokenReportsOnAnyInput(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := adminCtx()
	r := e.mustCall(t, ctx, "issue_token", `{"client_id":"decode-me","scopes":["read"]}`)
	var issued tools.IssueResult
	if err := json.Unmarshal(r.StructuredContent, &issued); err != nil {
		t.Fatal(err)
	}
	good := issued.Token
	foreign := foreignMint(t, foreignSecret, t0, time.Hour)
	expired := foreignMint(t, testSecret, t0.Add(-48*time.Hour), 24*time.Hour)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	tests := []struct {
		name          string
		token         string
		wantValid     bool
		wantDecodable bool
		wantSig       bool
		wantExpired   bool
		wantReason    string
	}{
		{"valid token", good, true, true, true, false, ""},
		{"Bearer prefix accepted", "Bearer " + good, true, true, true, false, ""},
		{"lower-case bearer prefix and padding", "  bearer   " + good + "\n", true, true, true, false, ""},
		{"garbage", "not-a-token", false, false, false, false, "three dot-separated parts"},
		{"three garbage parts", "a.b.c", false, false, false, false, "not base64url"},
		{"only the word Bearer", "Bearer", false, false, false, false, "three dot-separated parts"},
		{"10 KB string", strings.Repeat("x", 10<<10), false, false, false, false, "larger than 8 KiB"},
		{"10 KB of dots", strings.Repeat(".", 10<<10), false, false, false, false, "larger than 8 KiB"},
		{"signed with another secret", foreign, false, true, false, false, "unknown signing key"},
		{"tampered signature", tampered, false, true, false, false, "signature"},
		{"expired token with our secret", expired, false, true, true, true, "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t)
			r := e.mustCall(t, ctx, "decode_token", `{"token":`+jsonString(tc.token)+`}`)
			var in inspection
			if err := json.Unmarshal(r.StructuredContent, &in); err != nil {
				t.Fatalf("structured content %.300s: %v", r.StructuredContent, err)
			}
			if in.Valid != tc.wantValid || in.Decodable != tc.wantDecodable || in.SignatureValid != tc.wantSig || in.Expired != tc.wantExpired {
				t.Errorf("valid=%v decodable=%v signature_valid=%v expired=%v (reason %q), want %v %v %v %v",
					in.Valid, in.Decodable, in.SignatureValid, in.Expired, in.Reason, tc.wantValid, tc.wantDecodable, tc.wantSig, tc.wantExpired)
			}
			if (in.SignedBy != nil) != tc.wantSig || (in.SignedBy != nil && (in.SignedBy.Alg != "HS256" || !strings.HasPrefix(in.SignedBy.Kid, "hs-"))) {
				t.Errorf("signed_by = %+v, want the secret's key when the signature is valid", in.SignedBy)
			}
			if !strings.Contains(strings.ToLower(in.Reason), strings.ToLower(tc.wantReason)) {
				t.Errorf("reason %q does not contain %q", in.Reason, tc.wantReason)
			}
			if tc.wantValid {
				if in.Claims["sub"] != "decode-me" || in.Claims["jti"] != issued.JTI {
					t.Errorf("decoded claims = %v", in.Claims)
				}
				if !strings.HasPrefix(r.text(), "Valid token") || !strings.Contains(r.text(), "Signed by: key hs-") {
					t.Errorf("text = %.100q", r.text())
				}
			} else if !strings.HasPrefix(r.text(), "Not accepted by this server") {
				t.Errorf("text = %.100q", r.text())
			}
			if after := e.count(t); after != before {
				t.Errorf("decode_token changed the registry: %d -> %d", before, after)
			}
		})
	}

	refusals := []struct {
		name, args, wantMsg string
	}{
		{"empty token", `{"token":""}`, `"token" is required`},
		{"blank token", `{"token":"   "}`, `"token" is required`},
		{"missing token", `{}`, `"token" is required`},
		{"token number", `{"token":1}`, `"token" must be a string`},
		{"case-variant key", `{"TOKEN":"x"}`, `did you mean "token"`},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r, rerr := e.call(t, ctx, "decode_token", tc.args)
			if rerr != nil {
				t.Fatalf("JSON-RPC error %v", rerr)
			}
			if !r.IsError || !strings.Contains(r.text(), tc.wantMsg) {
				t.Errorf("isError=%v text=%q, want error containing %q", r.IsError, r.text(), tc.wantMsg)
			}
		})
	}
}

func TestListClientsSummarizesMintedTokens(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := adminCtx()

	empty := e.mustCall(t, ctx, "list_clients", "")
	var none tools.ClientList
	if err := json.Unmarshal(empty.StructuredContent, &none); err != nil {
		t.Fatal(err)
	}
	if none.Clients == nil || len(none.Clients) != 0 {
		t.Errorf("empty registry: clients = %#v, want []", none.Clients)
	}
	if !strings.Contains(empty.text(), "No clients") {
		t.Errorf("empty text = %q", empty.text())
	}

	e.mustCall(t, ctx, "issue_token", `{"client_id":"client-b","scopes":["read"],"expires_in":"1h"}`)
	e.mustCall(t, ctx, "issue_token", `{"client_id":"client-a","scopes":["tools:call"]}`)
	e.mustCall(t, ctx, "issue_token", `{"client_id":"client-a","scopes":["read"],"expires_in":"90d"}`)

	r := e.mustCall(t, ctx, "list_clients", `{}`)
	var list tools.ClientList
	if err := json.Unmarshal(r.StructuredContent, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Clients) != 2 {
		t.Fatalf("clients = %+v, want 2", list.Clients)
	}
	a, b := list.Clients[0], list.Clients[1]
	if a.ClientID != "client-a" || b.ClientID != "client-b" {
		t.Fatalf("order = %q, %q; want client-a, client-b", a.ClientID, b.ClientID)
	}
	if a.ActiveTokens != 2 || a.TotalTokens != 2 || b.ActiveTokens != 1 || b.TotalTokens != 1 {
		t.Errorf("counts: a %d/%d, b %d/%d; want 2/2, 1/1", a.ActiveTokens, a.TotalTokens, b.ActiveTokens, b.TotalTokens)
	}
	if a.LatestExpiry == nil || *a.LatestExpiry != t0.Add(90*24*time.Hour).Format(time.RFC3339) {
		t.Errorf("client-a latest_expiry = %v", deref(a.LatestExpiry))
	}
	if got := slices.Sorted(slices.Values(a.Scopes)); !slices.Equal(got, []string{"read", "tools:call"}) {
		t.Errorf("client-a scopes = %q", a.Scopes)
	}
	if a.LastIssued != t0.Format(time.RFC3339) {
		t.Errorf("client-a last_issued = %q", a.LastIssued)
	}
	text := r.text()
	for _, want := range []string{"2 client(s)", "client-a: 2 active, 0 revoked, 2 total", "client-b: 1 active, 0 revoked, 1 total"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}

	t.Run("extra argument refused", func(t *testing.T) {
		r, rerr := e.call(t, ctx, "list_clients", `{"client":"client-a"}`)
		if rerr != nil || !r.IsError || !strings.Contains(r.text(), `unknown argument "client"`) {
			t.Errorf("list_clients with extra argument: rpc=%v result=%+v", rerr, r)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestListClientsFiltersAndPages(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := adminCtx()
	for _, id := range []string{"alpha-bot", "beta-bot", "gamma", "delta-bot", "revoked-bot"} {
		e.mustCall(t, ctx, "issue_token", `{"client_id":"`+id+`","expires_in":"1h"}`)
	}
	if _, err := e.reg.RevokeClient(context.Background(), "revoked-bot", adminSubject, "test", t0); err != nil {
		t.Fatal(err)
	}
	list := func(t *testing.T, args string) (tools.ClientList, string) {
		t.Helper()
		return structuredAs[tools.ClientList](t, e.mustCall(t, ctx, "list_clients", args))
	}
	ids := func(l tools.ClientList) []string {
		var out []string
		for _, c := range l.Clients {
			out = append(out, c.ClientID)
		}
		return out
	}
	cases := []struct {
		name     string
		args     string
		want     []string
		total    int
		next     *int
		wantText string
	}{
		{"everything", `{}`, []string{"alpha-bot", "beta-bot", "delta-bot", "gamma", "revoked-bot"}, 5, nil, "5 client(s):"},
		{"query is a case-insensitive substring", `{"query":"BOT"}`, []string{"alpha-bot", "beta-bot", "delta-bot", "revoked-bot"}, 4, nil, "4 client(s):"},
		{"active only drops the revoked client", `{"query":"bot","active_only":true}`, []string{"alpha-bot", "beta-bot", "delta-bot"}, 3, nil, "3 client(s):"},
		{"first page", `{"limit":2}`, []string{"alpha-bot", "beta-bot"}, 5, ptr(2), "Clients 1-2 of 5"},
		{"second page", `{"limit":2,"offset":2}`, []string{"delta-bot", "gamma"}, 5, ptr(4), "offset 4"},
		{"last page", `{"limit":2,"offset":4}`, []string{"revoked-bot"}, 5, nil, "Clients 5-5 of 5"},
		{"offset past the end", `{"offset":9}`, nil, 5, nil, "5 client(s) match, none at offset 9"},
		{"limit given as 2.0", `{"limit":2.0}`, []string{"alpha-bot", "beta-bot"}, 5, ptr(2), "Clients 1-2 of 5"},
		{"nothing matches", `{"query":"zeta"}`, nil, 0, nil, "No clients match."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, text := list(t, tc.args)
			if !slices.Equal(ids(l), tc.want) || l.Total != tc.total || (l.NextOffset == nil) != (tc.next == nil) || (tc.next != nil && *l.NextOffset != *tc.next) {
				t.Fatalf("got %v total %d next %v; want %v total %d next %v", ids(l), l.Total, l.NextOffset, tc.want, tc.total, tc.next)
			}
			if l.Clients == nil {
				t.Error("clients is null, want []")
			}
			if !strings.Contains(text, tc.wantText) {
				t.Errorf("text %q lacks %q", text, tc.wantText)
			}
		})
	}
	for _, bad := range []struct{ args, msg string }{
		{`{"limit":0}`, `"limit" must be a whole number from 1 to 1000`},
		{`{"limit":1001}`, `"limit" must be a whole number from 1 to 1000`},
		{`{"limit":2.5}`, `"limit" must be a whole number`},
		{`{"limit":"10"}`, `"limit" must be a whole number`},
		{`{"offset":-1}`, `"offset" must be a whole number`},
		{`{"active_only":"yes"}`, `"active_only" must be true or false`},
		{`{"query":7}`, `"query" must be a string`},
		{`{"query":"` + strings.Repeat("x", 129) + `"}`, `at most 128 characters`},
		{`{"Query":"bot"}`, `did you mean "query"`},
	} {
		t.Run("refused "+bad.args[:min(len(bad.args), 30)], func(t *testing.T) {
			r, rerr := e.call(t, ctx, "list_clients", bad.args)
			if rerr != nil || !r.IsError || !strings.Contains(r.text(), bad.msg) {
				t.Fatalf("rpc=%v isError=%v text=%q, want error containing %q", rerr, r != nil && r.IsError, r.text(), bad.msg)
			}
		})
	}
}

func TestListTokensShowsRecordsNewestFirst(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := adminCtx()
	var jtis []string
	for i, c := range []string{"bot-a", "bot-b", "bot-a", "bot-a"} {
		life := "1h"
		if i == 1 {
			life = "90d"
		}
		r := e.mustCall(t, ctx, "issue_token", `{"client_id":"`+c+`","expires_in":"`+life+`","scopes":["read"]}`)
		var res tools.IssueResult
		if err := json.Unmarshal(r.StructuredContent, &res); err != nil {
			t.Fatal(err)
		}
		jtis = append(jtis, res.JTI)
	}
	if _, _, err := e.reg.Revoke(context.Background(), jtis[0], adminSubject, "lost laptop", t0); err != nil {
		t.Fatal(err)
	}
	list := func(t *testing.T, args string) (tools.TokenList, string) {
		t.Helper()
		return structuredAs[tools.TokenList](t, e.mustCall(t, ctx, "list_tokens", args))
	}
	ids := func(l tools.TokenList) []string {
		var out []string
		for _, tk := range l.Tokens {
			out = append(out, tk.JTI)
		}
		return out
	}
	// Same issue time: the registry orders by issued_at, then jti.
	active, _ := list(t, `{}`)
	if active.Total != 3 || slices.Contains(ids(active), jtis[0]) {
		t.Fatalf("active tokens %v (total %d) should be the three unrevoked ones", ids(active), active.Total)
	}
	l, text := list(t, `{"client_id":"bot-a","include_inactive":true}`)
	if l.Total != 3 || !slices.Contains(ids(l), jtis[0]) || slices.Contains(ids(l), jtis[1]) {
		t.Fatalf("bot-a with inactive: %v", ids(l))
	}
	for _, tk := range l.Tokens {
		if tk.JTI != jtis[0] {
			continue
		}
		if tk.Status != "revoked" || tk.RevokedAt == nil || tk.RevokedBy != adminSubject || tk.RevokeReason != "lost laptop" {
			t.Errorf("revoked row %+v", tk)
		}
	}
	if !strings.Contains(text, "lost laptop") || !strings.Contains(text, jtis[0]) || strings.Contains(text, "eyJ") {
		t.Errorf("text %q: want the revocation and jti, never a token", text)
	}
	page, text := list(t, `{"include_inactive":true,"limit":2}`)
	if len(page.Tokens) != 2 || page.Total != 4 || page.NextOffset == nil || *page.NextOffset != 2 || !strings.Contains(text, "offset 2") {
		t.Fatalf("first page %+v", page)
	}
	rest, _ := list(t, `{"include_inactive":true,"limit":2,"offset":2}`)
	if len(rest.Tokens) != 2 || rest.NextOffset != nil || slices.ContainsFunc(ids(rest), func(j string) bool { return slices.Contains(ids(page), j) }) {
		t.Fatalf("second page %v overlaps or is short (first %v)", ids(rest), ids(page))
	}
	if none, text := list(t, `{"client_id":"nobody"}`); none.Total != 0 || none.Tokens == nil || text != "No active tokens of nobody." {
		t.Fatalf("unknown client: %+v %q", none, text)
	}
	// Two hours later the 1h tokens have expired; the 90-day one has not.
	later := &env{reg: e.reg, srv: transport.NewMCPServer(tools.New(tools.Deps{
		Minter: nil, Clients: e.reg, Tokens: e.reg, Now: fixed(t0.Add(2 * time.Hour)),
	}), "test")}
	r := later.mustCall(t, ctx, "list_tokens", `{"include_inactive":true}`)
	var l2 tools.TokenList
	if err := json.Unmarshal(r.StructuredContent, &l2); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, tk := range l2.Tokens {
		status[tk.JTI] = tk.Status
	}
	if status[jtis[0]] != "revoked" || status[jtis[1]] != "active" || status[jtis[2]] != "expired" || status[jtis[3]] != "expired" {
		t.Fatalf("statuses two hours later: %v (jtis %v)", status, jtis)
	}
	if r := later.mustCall(t, ctx, "list_tokens", `{}`); !strings.Contains(r.text(), "1 active token(s), newest first") {
		t.Errorf("active list two hours later: %q", r.text())
	}
	for _, bad := range []struct{ args, msg string }{
		{`{"client_id":"a b"}`, "client"},
		{`{"limit":501}`, `"limit" must be a whole number from 1 to 500`},
		{`{"include_inactive":1}`, `"include_inactive" must be true or false`},
		{`{"token":"x"}`, `unknown argument "token"`},
	} {
		r, rerr := e.call(t, ctx, "list_tokens", bad.args)
		if rerr != nil || !r.IsError || !strings.Contains(r.text(), bad.msg) {
			t.Errorf("%s: rpc=%v text=%q, want error containing %q", bad.args, rerr, r.text(), bad.msg)
		}
	}
}
