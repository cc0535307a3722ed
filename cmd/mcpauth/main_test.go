package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

const testSecret = "cmd-test-secret-0123456789abcdef0123456789"

// binary is the mcpauth binary built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcpauth-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mcpauth")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("build mcpauth: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a clean environment for one test: its own registry file, the
// test secret, no .env file.
func testEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"MCP_DATABASE_URL=" + filepath.Join(t.TempDir(), "reg.db"),
		"MCP_JWT_SECRET=" + testSecret,
	}
	return mergeEnv(base, extra)
}

// mergeEnv returns base with extra's keys replaced or added; an entry
// "KEY=" with nothing after it removes the key.
func mergeEnv(base, extra []string) []string {
	out := slices.Clone(base)
	for _, e := range extra {
		k, v, _ := strings.Cut(e, "=")
		out = slices.DeleteFunc(out, func(x string) bool { return strings.HasPrefix(x, k+"=") })
		if v != "" {
			out = append(out, e)
		}
	}
	return out
}

// run runs the binary to completion with a deadline.
func run(t *testing.T, environ []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--env-file="}, args...)...)
	cmd.Env = environ
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

type issuedJSON struct {
	Token     string   `json:"token"`
	JTI       string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	IssuedAt  string   `json:"issued_at"`
	ExpiresAt *string  `json:"expires_at"`
}

func issue(t *testing.T, environ []string, args ...string) issuedJSON {
	t.Helper()
	out, errOut, code := run(t, environ, "", append([]string{"token", "issue", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("token issue %v: exit %d: %s", args, code, errOut)
	}
	var r issuedJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("token issue output %q: %v", out, err)
	}
	return r
}

func listCount(t *testing.T, environ []string) int {
	t.Helper()
	out, errOut, code := run(t, environ, "", "token", "list", "--all", "--json")
	if code != 0 {
		t.Fatalf("token list: %s", errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("token list output %q: %v", out, err)
	}
	return len(rows)
}

func TestTokenIssuePrintsTheTokenGuideReportAndRecordsTheToken(t *testing.T) {
	e := testEnv(t)
	out, errOut, code := run(t, e, "", "token", "issue", "my-app", "90d")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"JWT token generated", "Client ID:  my-app", "Expires in: 90d", "Token:", `"mcpServers"`, "Authorization", "Copy the configuration above", "Token details:", "iss:   mcpauth"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if listCount(t, e) != 1 {
		t.Error("token not recorded")
	}
	if strings.Contains(errOut, "eyJ") {
		t.Error("a token reached the log on stderr")
	}

	j := issue(t, e, "research-bot", "30d", "--scope", "tools:call")
	if j.ClientID != "research-bot" || !slices.Equal(j.Scopes, []string{"tools:call"}) || j.ExpiresAt == nil || j.JTI == "" {
		t.Fatalf("json = %+v", j)
	}
	dec, _, code := run(t, e, j.Token+"\n", "token", "decode", "--json")
	if code != 0 || !strings.Contains(dec, `"valid": true`) {
		t.Fatalf("decode of a fresh token: exit %d\n%s", code, dec)
	}
	// Another server's secret: decode reports it and exits 2 (the token's
	// kid names a key this server does not have).
	other := mergeEnv(e, []string{"MCP_JWT_SECRET=another-secret-another-secret-0123456789"})
	dec, errOut, code2 := run(t, other, "", "token", "decode", j.Token)
	if code2 != 2 || !strings.Contains(dec, "unknown signing key") {
		t.Fatalf("decode with another secret: exit %d\n%s", code2, dec)
	}
	// The reason, not "exit status 2", is what a person reads on stderr.
	if !strings.Contains(errOut, "Invalid token") || strings.Contains(errOut, "exit status") {
		t.Fatalf("decode with another secret: stderr %q", errOut)
	}
	if _, errOut, code := run(t, e, "", "token", "decode", "not-a-jwt"); code != 2 || !strings.Contains(errOut, "three dot-separated parts") {
		t.Fatalf("decode of a non-JWT: exit %d, stderr %q", code, errOut)
	}
}

func TestTokenIssueRefusalsRecordNothing(t *testing.T) {
	e := testEnv(t)
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad client id", []string{"bad id!"}, "invalid client_id"},
		{"overflowing expiry", []string{"ok", "999999999d"}, "too long"},
		{"zero expiry", []string{"ok", "0d"}, "zero"},
		{"negative expiry", []string{"ok", "--", "-5d"}, "invalid expiry"},
		{"beyond the maximum lifetime", []string{"ok", "400d"}, "exceeds the configured maximum"},
		{"never when not allowed", []string{"ok", "never"}, "never expire are not allowed"},
		{"bad scope", []string{"ok", "--scope", "a b"}, "invalid scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := run(t, e, "", append([]string{"token", "issue"}, c.args...)...)
			if code == 0 || !strings.Contains(errOut, c.wantErr) {
				t.Fatalf("exit %d, stderr %q, want failure mentioning %q", code, errOut, c.wantErr)
			}
		})
	}
	if n := listCount(t, e); n != 0 {
		t.Fatalf("%d tokens recorded by refused mints", n)
	}
}

func TestStartupRefusesUnsafeConfiguration(t *testing.T) {
	cases := []struct {
		name    string
		extra   []string
		args    []string
		wantErr string
	}{
		{"no secret", []string{"MCP_JWT_SECRET="}, []string{"serve"}, "JWT_SECRET not found"},
		{"short secret", []string{"MCP_JWT_SECRET=tooshort"}, []string{"serve"}, "at least 32 bytes"},
		{"placeholder secret", []string{"MCP_JWT_SECRET=your-256-bit-secret-your-256-bit-secret"}, []string{"serve"}, "placeholder"},
		{"auth disabled outside dev mode", []string{"MCP_AUTH_ENABLED=false"}, []string{"serve"}, "only in dev mode"},
		{"auth disabled on a public address", []string{"MCP_AUTH_ENABLED=false", "MCP_ENV=development"}, []string{"serve", "--addr", "0.0.0.0:0"}, "loopback"},
		{"bad default expiry", []string{"MCP_TOKEN_EXPIRY=forever"}, []string{"serve"}, "MCP_TOKEN_EXPIRY"},
		{"default beyond max", []string{"MCP_TOKEN_EXPIRY=400d"}, []string{"serve"}, "longer than MCP_MAX_TOKEN_LIFETIME"},
		{"stdio with a bad token", []string{"MCP_TOKEN=abc"}, []string{"serve", "--stdio"}, "Invalid token"},
		{"short API key", []string{"API_KEY=short-key"}, []string{"serve"}, "API_KEY is refused: it must be at least 32 bytes"},
		{"API key equal to the secret", []string{"API_KEY=" + testSecret}, []string{"serve"}, "API_KEY is refused: it must differ"},
		{"wildcard CORS origin", []string{"MCP_CORS_ORIGIN=*"}, []string{"serve"}, "MCP_CORS_ORIGIN"},
		{"null CORS origin", []string{"MCP_CORS_ORIGIN=https://ok.example,null"}, []string{"serve"}, "wildcards and null"},
		{"CORS origin with a path", []string{"MCP_CORS_ORIGIN=https://ok.example/app"}, []string{"serve"}, "no path"},
		{"loopback metadata outside dev mode", []string{"MCP_OAUTH_DEV_LOOPBACK_METADATA=true"}, []string{"serve"}, "only in dev mode"},
		{"trusted proxy that is a host name", []string{"MCP_TRUSTED_PROXIES=10.0.0.0/8,proxy.internal"}, []string{"serve"}, `MCP_TRUSTED_PROXIES: "proxy.internal" is not an IP address`},
		{"trusted proxy with a bad prefix", []string{"MCP_TRUSTED_PROXIES=10.0.0.0/33"}, []string{"serve"}, "MCP_TRUSTED_PROXIES"},
		{"out-of-range max lifetime", []string{"MCP_MAX_TOKEN_LIFETIME=999999999d"}, []string{"serve"}, "MCP_MAX_TOKEN_LIFETIME"},
		{"no session cap", []string{"MCP_MAX_SESSIONS_PER_CLIENT=0"}, []string{"serve"}, "MCP_MAX_SESSIONS_PER_CLIENT must be between 1 and 100000"},
		{"no in-flight cap", []string{"MCP_MAX_INFLIGHT_PER_CLIENT=0"}, []string{"serve"}, "MCP_MAX_INFLIGHT_PER_CLIENT must be between 1 and 100000"},
		{"subscription cap too high", []string{"MCP_MAX_SUBSCRIPTIONS_PER_SESSION=100001"}, []string{"serve"}, "MCP_MAX_SUBSCRIPTIONS_PER_SESSION must be between 1 and 100000"},
		{"no pending sign-in cap", []string{"MCP_OAUTH_PENDING_PER_ADDRESS=0"}, []string{"serve"}, "MCP_OAUTH_PENDING_PER_ADDRESS must be between 1 and 100000"},
		{"OAuth prune interval too short", []string{"MCP_OAUTH_PRUNE_INTERVAL=1ms"}, []string{"serve"}, "MCP_OAUTH_PRUNE_INTERVAL must be between 1s and 24h"},
		{"SSE write timeout too short", []string{"MCP_SSE_WRITE_TIMEOUT=10ms"}, []string{"serve"}, "MCP_SSE_WRITE_TIMEOUT must be between 1s and 10m"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := testEnv(t, c.extra...)
			_, errOut, code := run(t, e, "", c.args...)
			if code == 0 || !strings.Contains(errOut, c.wantErr) {
				t.Fatalf("exit %d, stderr %q, want refusal mentioning %q", code, errOut, c.wantErr)
			}
			for _, kv := range c.extra {
				if _, v, _ := strings.Cut(kv, "="); len(v) > 8 && strings.Contains(errOut, v) && strings.Contains(kv, "SECRET") {
					t.Errorf("error message reveals the secret value")
				}
			}
		})
	}
}

func TestDevModeGeneratesAPrivateSecretAndServesHTTP(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dev.db")
	e := testEnv(t, "MCP_JWT_SECRET=", "MCP_DATABASE_URL="+db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--env-file=", "serve", "--dev", "--addr", "127.0.0.1:0")
	cmd.Env = e
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(stderr)
	addrRe := regexp.MustCompile(`"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)
	var addr, log string
	for sc.Scan() {
		log += sc.Text() + "\n"
		if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if addr == "" {
		t.Fatalf("server did not report its address:\n%s", log)
	}
	if !strings.Contains(log, "DEV MODE") {
		t.Errorf("no loud dev-mode warning:\n%s", log)
	}
	fi, err := os.Stat(filepath.Join(dir, "dev.dev-secret"))
	if err != nil {
		t.Fatalf("dev secret not kept beside the database: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev secret mode %v, want 0600", fi.Mode().Perm())
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"auth_enabled":true`) {
		t.Fatalf("health: %d %s", resp.StatusCode, body)
	}
	if out, errOut, code := run(t, e, "", "health", "--url", "http://"+addr+"/health"); code != 0 || !strings.Contains(out, `"status":"ok"`) {
		t.Fatalf("mcpauth health: exit %d %s %s", code, out, errOut)
	}
	// A token minted by the CLI in dev mode (same kept secret) is accepted.
	tok := issue(t, mergeEnv(e, []string{"MCP_ENV=development"}), "dev-client", "1h").Token
	req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("initialize with a dev token: %d", resp.StatusCode)
	}
}

func TestSecretGenerateEnvPrintsAFreshProductionBlock(t *testing.T) {
	a, _, code := run(t, testEnv(t), "", "secret", "generate", "--env")
	b, _, _ := run(t, testEnv(t), "", "secret", "generate", "--env")
	if code != 0 || a == b {
		t.Fatalf("exit %d, identical blocks: %v", code, a == b)
	}
	vals := map[string]string{}
	for _, line := range strings.Split(a, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vals[k] = v
		}
	}
	for _, k := range []string{"MCP_JWT_SECRET", "API_KEY", "MCP_AUTH_ENABLED", "MCP_TOKEN_EXPIRY", "MCP_ALLOWED_CLIENTS", "MCP_ENV"} {
		if vals[k] == "" {
			t.Errorf("env block lacks %s:\n%s", k, a)
		}
	}
	if vals["MCP_AUTH_ENABLED"] != "true" || vals["MCP_JWT_SECRET"] == vals["API_KEY"] || len(vals["API_KEY"]) != 64 {
		t.Errorf("env block values wrong:\n%s", a)
	}
	// The block is accepted as it is by the server's configuration.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prod.env"), []byte(a), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEnv(t, "MCP_JWT_SECRET=")
	if out, errOut, code := run(t, e, "", "--env-file", filepath.Join(dir, "prod.env"), "token", "issue", "cursor", "1h", "--json"); code != 0 || !strings.Contains(out, `"token"`) {
		t.Fatalf("token issue with the generated block: exit %d %s", code, errOut)
	}
}

func TestSecretGenerate(t *testing.T) {
	a, _, code := run(t, testEnv(t), "", "secret", "generate")
	b, _, _ := run(t, testEnv(t), "", "secret", "generate")
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(a) || a == b {
		t.Fatalf("secret generate: %q %q", a, b)
	}
}

// stdioClient starts "mcpauth serve --stdio" and initializes an mcp-go
// client over its stdin/stdout.
func stdioClient(t *testing.T, environ []string) (*client.Client, error) {
	t.Helper()
	c, err := client.NewStdioMCPClient(binary, environ, "--env-file=", "serve", "--stdio")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "stdio-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		return nil, err
	}
	return c, nil
}

func structuredField(t *testing.T, res *mcp.CallToolResult, field string) any {
	t.Helper()
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
	return m[field]
}

func TestStdioServesEveryToolAsLocalAdmin(t *testing.T) {
	e := testEnv(t)
	c, err := stdioClient(t, e)
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToolNames(t, c); !slices.Equal(got, []string{"approve_authorization", "create_enrollment", "decode_token", "deny_authorization", "issue_token", "list_clients", "list_keys", "list_pending_authorizations", "list_tokens", "revoke_token", "whoami"}) {
		t.Fatalf("tools = %v", got)
	}
	if who := structuredField(t, testutil.CallTool(t, c, "whoami", nil), "client_id"); who != "local-admin" {
		t.Fatalf("whoami = %v", who)
	}
	res := testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": "stdio-made", "expires_in": "7d"})
	if res.IsError {
		t.Fatalf("issue_token: %+v", res.Content)
	}
	tok, _ := structuredField(t, res, "token").(string)
	if v := structuredField(t, testutil.CallTool(t, c, "decode_token", map[string]any{"token": tok}), "valid"); v != true {
		t.Fatalf("decode_token valid = %v", v)
	}
	list := testutil.CallTool(t, c, "list_clients", nil)
	b, _ := json.Marshal(list.StructuredContent)
	if !strings.Contains(string(b), `"client_id":"stdio-made"`) {
		t.Fatalf("list_clients = %s", b)
	}
	// The same registry is visible to the CLI.
	if n := listCount(t, e); n != 1 {
		t.Fatalf("CLI sees %d tokens, want 1", n)
	}
}

func TestStdioActsAsTheGivenTokensIdentity(t *testing.T) {
	e := testEnv(t)
	user := issue(t, e, "plain-user", "1h", "--scope", "tools:call").Token
	c, err := stdioClient(t, mergeEnv(e, []string{"MCP_TOKEN=" + user}))
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToolNames(t, c); !slices.Equal(got, []string{"whoami"}) {
		t.Fatalf("tools for a non-admin = %v", got)
	}
	if who := structuredField(t, testutil.CallTool(t, c, "whoami", nil), "client_id"); who != "plain-user" {
		t.Fatalf("whoami = %v", who)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "issue_token"
	req.Params.Arguments = map[string]any{"client_id": "escalate"}
	if res, err := c.CallTool(ctx, req); err == nil && !res.IsError {
		t.Fatal("a non-admin minted a token over stdio")
	}
	if n := listCount(t, e); n != 1 {
		t.Fatalf("registry has %d tokens, want 1", n)
	}
}

func TestSecretIsReadFromJWTSecretAndFromADotEnvFile(t *testing.T) {
	// JWT_SECRET is the token guide's name for the variable.
	e := testEnv(t, "MCP_JWT_SECRET=", "JWT_SECRET="+testSecret)
	if j := issue(t, e, "legacy-name", "1h"); j.Token == "" {
		t.Fatal("no token with JWT_SECRET")
	}

	// A .env file in the working directory is read; set variables win.
	dir := t.TempDir()
	envFile := "MCP_JWT_SECRET=" + testSecret + "\nMCP_ISSUER=from-dotenv\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(envFile), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "token", "issue", "dotenv-client", "1h", "--json")
	cmd.Env = testEnv(t, "MCP_JWT_SECRET=")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("token issue with .env: %v", err)
	}
	var j issuedJSON
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatal(err)
	}
	dec, _, code := run(t, testEnv(t, "MCP_ISSUER=from-dotenv"), "", "token", "decode", j.Token)
	if code != 0 || !strings.Contains(dec, `"iss": "from-dotenv"`) {
		t.Fatalf("token from .env config: exit %d\n%s", code, dec)
	}

	// An explicitly named env file must exist.
	if _, errOut, code := run(t, testEnv(t), "", "--env-file", filepath.Join(dir, "missing.env"), "token", "list"); code == 0 || !strings.Contains(errOut, "missing.env") {
		t.Fatalf("missing --env-file: exit %d %q", code, errOut)
	}
}

// startServer runs "mcpauth serve" on a free loopback port until the test
// ends and returns its address.
func startServer(t *testing.T, environ []string, extraArgs ...string) string {
	t.Helper()
	addr, _ := startServerProc(t, environ, extraArgs...)
	return addr
}

// startServerProc is startServer that also returns the process.
func startServerProc(t *testing.T, environ []string, extraArgs ...string) (string, *exec.Cmd) {
	t.Helper()
	addr, cmd, _ := startServerLogged(t, environ, extraArgs...)
	return addr, cmd
}

// startServerLogged is startServerProc that also collects everything the
// server writes to stderr (its log).
func startServerLogged(t *testing.T, environ []string, extraArgs ...string) (string, *exec.Cmd, *testutil.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, append([]string{"--env-file=", "serve", "--addr", "127.0.0.1:0"}, extraArgs...)...)
	cmd.Env = environ
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // not already waited for (e.g. killed)
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("server did not stop on SIGINT")
			}
		}
		cancel()
	})
	sc := bufio.NewScanner(stderr)
	addrRe := regexp.MustCompile(`"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)
	logs := &testutil.Buffer{}
	found := make(chan string, 1)
	go func() {
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // a line too long to scan must not block the server
	}()
	select {
	case addr := <-found:
		return addr, cmd, logs
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not report its address:\n%s", logs.String())
		return "", nil, nil
	}
}

// sseClient connects mcp-go's legacy SSE client to url with token as a
// Bearer header and initializes it as client name; it closes at test end.
func sseClient(t *testing.T, url, token, name string) *client.Client {
	t.Helper()
	c, err := client.NewSSEMCPClient(url, client.WithHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ProtocolVersion: mcp.LATEST_LEGACY_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: name}}}); err != nil {
		t.Fatalf("initialize over %s: %v", url, err)
	}
	return c
}

func postMCP(t *testing.T, addr, token, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const initJSON = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func TestCLIRevocationReachesARunningServerAndLastSeenIsTracked(t *testing.T) {
	e := testEnv(t, "MCP_REVOCATION_RESYNC=200ms", "MCP_LAST_SEEN_FLUSH=200ms")
	addr := startServer(t, e)
	user := issue(t, e, "phone", "1h")
	if r := postMCP(t, addr, user.Token, initJSON); r.StatusCode != 200 {
		t.Fatalf("before revocation: %d", r.StatusCode)
	}

	// Revoking from the CLI (another process) takes effect on the server
	// within the resync interval.
	out, errOut, code := run(t, e, "", "token", "revoke", user.JTI, "--reason", "lost phone", "--json")
	if code != 0 || !strings.Contains(out, `"revoke_reason": "lost phone"`) {
		t.Fatalf("token revoke: exit %d\n%s%s", code, out, errOut)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := postMCP(t, addr, user.Token, initJSON)
		if r.StatusCode == http.StatusUnauthorized && strings.Contains(r.Header.Get("WWW-Authenticate"), "revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still accepts a token revoked from the CLI (status %d)", r.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Idempotent, and listed as revoked.
	if _, errOut, code := run(t, e, "", "token", "revoke", user.JTI); code != 0 || !strings.Contains(errOut, "already revoked") {
		t.Fatalf("second revoke: exit %d %q", code, errOut)
	}
	if _, errOut, code := run(t, e, "", "token", "revoke", "ffffffffffffffffffffffffffffffff"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("unknown jti: exit %d %q", code, errOut)
	}
	lst, _, _ := run(t, e, "", "token", "list")
	if strings.Contains(lst, user.JTI) {
		t.Error("token list shows a revoked token without --all")
	}
	lst, _, _ = run(t, e, "", "token", "list", "--all")
	if !strings.Contains(lst, user.JTI) || !strings.Contains(lst, "REVOKED") {
		t.Errorf("token list --all:\n%s", lst)
	}

	// Last seen is recorded (batched) for the client that authenticated.
	admin := issue(t, e, "watcher", "1h", "--scope", "admin")
	c, err := client.NewStreamableHttpClient("http://"+addr+"/mcp", transportHeaders(admin.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		res := testutil.CallTool(t, c, "list_clients", nil)
		b, _ := json.Marshal(res.StructuredContent)
		var l struct {
			Clients []struct {
				ClientID string  `json:"client_id"`
				LastSeen *string `json:"last_seen"`
				Revoked  int     `json:"revoked_tokens"`
			} `json:"clients"`
		}
		_ = json.Unmarshal(b, &l)
		seen := map[string]bool{}
		for _, cl := range l.Clients {
			seen[cl.ClientID] = cl.LastSeen != nil
			if cl.ClientID == "phone" && cl.Revoked != 1 {
				t.Fatalf("phone revoked_tokens = %d", cl.Revoked)
			}
		}
		if seen["phone"] && seen["watcher"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last_seen never recorded: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func transportHeaders(token string) transport.StreamableHTTPCOption {
	return transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token})
}
