package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// upstreamsDir holds the real MCP servers (npm, pinned in its lockfile)
// the gateway tests put behind mcpauth.
var upstreamsDir, _ = filepath.Abs(filepath.Join("..", "..", "tools", "upstream", "testdata", "npm"))

// everythingServer returns node and the path of the reference
// server-everything, skipping when they are absent, except where
// MCPAUTH_REQUIRE_NODE is set (the test command sets it).
func everythingServer(t *testing.T) (node, script string) {
	t.Helper()
	script = filepath.Join(upstreamsDir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(script)
	}
	if err != nil {
		msg := fmt.Sprintf("upstream servers unavailable (%v); run: npm ci --prefix tools/upstream/testdata/npm", err)
		if os.Getenv("MCPAUTH_REQUIRE_NODE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, script
}

// recordingUpstream is an mcp-go Streamable HTTP server whose echo tool
// answers with the headers its request carried; every request's headers
// are recorded too.
type recordingUpstream struct {
	mu      sync.Mutex
	headers []http.Header
}

func (r *recordingUpstream) start(t *testing.T) string {
	s := server.NewMCPServer("crm", "1", server.WithToolCapabilities(false))
	for _, name := range []string{"search", "delete_contact"} {
		s.AddTool(mcp.NewTool(name), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(name + " ok"), nil
		})
	}
	h := server.NewStreamableHTTPServer(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

func (r *recordingUpstream) seen() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.headers)
}

const gatewayPolicy = `"policy": {
	"tools": {"everything__*": ["everything:use"], "crm__*": ["crm:read"], "crm__delete_*": ["crm:admin"]},
	"prompts": {"everything__*": ["everything:use"]},
	"resources": {"*": ["everything:use"]}
}`

func writeUpstreams(t *testing.T, path, node, script, crmURL, policy string) {
	t.Helper()
	doc := fmt.Sprintf(`{"mcpServers": {
		"everything": {"command": %q, "args": [%q, "stdio"]},
		"crm": {"url": %q, "headers": {"X-Upstream-Key": "${CRM_KEY}"}}
	}, %s}`, node, script, crmURL, policy)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestGatewayRelaysUpstreamsUnderThePolicy(t *testing.T) {
	node, script := everythingServer(t)
	crm := &recordingUpstream{}
	crmURL := crm.start(t)
	file := filepath.Join(t.TempDir(), "upstreams.json")
	writeUpstreams(t, file, node, script, crmURL, gatewayPolicy)
	e := testEnv(t, "MCP_UPSTREAMS="+file, "CRM_KEY=upstream-secret-1")
	reader := issue(t, e, "reader", "1d", "--scope", "crm:read")
	user := issue(t, e, "user", "1d", "--scope", "everything:use")
	admin := issue(t, e, "root", "1d", "--scope", "admin")
	addr, cmd, logs := startServerLogged(t, e)

	// Each caller's list shows only what the policy lets it use.
	readerTools := testutil.ToolNames(t, mcpClient(t, addr, reader.Token))
	if !slices.Contains(readerTools, "crm__search") || slices.Contains(readerTools, "crm__delete_contact") ||
		slices.Contains(readerTools, "everything__echo") || !slices.Contains(readerTools, "whoami") ||
		slices.Contains(readerTools, "issue_token") {
		t.Fatalf("reader sees %v", readerTools)
	}
	uc := mcpClient(t, addr, user.Token)
	userTools := testutil.ToolNames(t, uc)
	if !slices.Contains(userTools, "everything__echo") || slices.Contains(userTools, "crm__search") {
		t.Fatalf("user sees %v", userTools)
	}
	adminTools := testutil.ToolNames(t, mcpClient(t, addr, admin.Token))
	for _, want := range []string{"crm__search", "crm__delete_contact", "everything__echo", "issue_token"} {
		if !slices.Contains(adminTools, want) {
			t.Fatalf("admin sees %v, want %s", adminTools, want)
		}
	}

	// Calls go through to the real upstreams.
	if res := testutil.CallTool(t, uc, "everything__echo", map[string]any{"message": "through mcpauth"}); res.IsError ||
		!strings.Contains(fmt.Sprint(res.Content), "through mcpauth") {
		t.Fatalf("everything__echo = %+v", res)
	}
	if res := testutil.CallTool(t, mcpClient(t, addr, reader.Token), "crm__search", nil); res.IsError {
		t.Fatalf("crm__search = %+v", res)
	}

	// whoami and decode_token say what a token may call.
	rc := mcpClient(t, addr, reader.Token)
	mayCall := fmt.Sprint(structuredField(t, testutil.CallTool(t, rc, "whoami", nil), "may_call"))
	if !strings.Contains(mayCall, "crm__search") || strings.Contains(mayCall, "crm__delete_contact") || strings.Contains(mayCall, "everything__") {
		t.Fatalf("reader's whoami may_call = %s", mayCall)
	}
	ac := mcpClient(t, addr, admin.Token)
	decoded := fmt.Sprint(structuredField(t, testutil.CallTool(t, ac, "decode_token", map[string]any{"token": user.Token}), "may_call"))
	if !strings.Contains(decoded, "everything__echo") || strings.Contains(decoded, "crm__") {
		t.Fatalf("decode_token of user's token: may_call = %s", decoded)
	}

	// list_upstreams (admin) and /health report each upstream.
	ups := fmt.Sprint(structuredField(t, testutil.CallTool(t, ac, "list_upstreams", nil), "upstreams"))
	for _, want := range []string{"name:crm", "name:everything", "state:up", "transport:stdio", "transport:streamable-http"} {
		if !strings.Contains(ups, want) {
			t.Fatalf("list_upstreams = %s, want %s", ups, want)
		}
	}
	hr, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status    string           `json:"status"`
		Upstreams []map[string]any `json:"upstreams"`
	}
	if err := json.NewDecoder(hr.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if health.Status != "ok" || len(health.Upstreams) != 2 || health.Upstreams[0]["state"] != "up" || health.Upstreams[0]["tools"].(float64) < 1 {
		t.Fatalf("/health = %+v", health)
	}

	// A call without the scope gets the scope challenge.
	resp := postMCP(t, addr, reader.Token, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"everything__echo","arguments":{"message":"x"}}}`)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="everything:use"`) {
		t.Fatalf("reader calling everything__echo: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// The HTTP upstream got its own credential, never a caller's token.
	seen := crm.seen()
	if len(seen) == 0 {
		t.Fatal("the crm upstream saw no request")
	}
	for _, h := range seen {
		if h.Get("X-Upstream-Key") != "upstream-secret-1" {
			t.Fatalf("upstream request without its credential: %v", h)
		}
		for _, v := range h.Values("Authorization") {
			for _, tok := range []string{reader.Token, user.Token, admin.Token} {
				if strings.Contains(v, tok) {
					t.Fatal("a caller's token reached the upstream")
				}
			}
		}
	}
	if strings.Contains(logs.String(), "upstream-secret-1") {
		t.Fatal("the upstream credential was logged")
	}

	// After shutdown no child is left.
	children := childPIDs(cmd.Process.Pid)
	if len(children) == 0 {
		t.Fatal("no stdio upstream child found")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	for _, pid := range children {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("child %d outlived the server", pid)
		}
	}
}

func TestPolicyReloadsOnSIGHUPAndABadReloadKeepsTheOld(t *testing.T) {
	node, script := everythingServer(t)
	crm := &recordingUpstream{}
	crmURL := crm.start(t)
	file := filepath.Join(t.TempDir(), "upstreams.json")
	writeUpstreams(t, file, node, script, crmURL, gatewayPolicy)
	e := testEnv(t, "MCP_UPSTREAMS="+file, "CRM_KEY=k")
	reader := issue(t, e, "reader", "1d", "--scope", "crm:read")
	addr, cmd, logs := startServerLogged(t, e)
	c := mcpClient(t, addr, reader.Token)
	if slices.Contains(testutil.ToolNames(t, c), "everything__echo") {
		t.Fatal("reader sees everything__echo before the reload")
	}

	// Grant crm:read everything's tools, and reload.
	writeUpstreams(t, file, node, script, crmURL, `"policy": {"tools": {"*": ["crm:read"]}}`)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the reloaded policy", func() bool { return slices.Contains(testutil.ToolNames(t, c), "everything__echo") })

	// A policy that does not compile is refused; the last good one stays.
	writeUpstreams(t, file, node, script, crmURL, `"policy": {"tools": {"*": "crm:read"}}`)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the refusal in the log", func() bool { return strings.Contains(logs.String(), "policy reload refused") })
	if !slices.Contains(testutil.ToolNames(t, c), "everything__echo") {
		t.Fatal("a bad reload changed the policy in force")
	}
}

func TestGatewayConfigurationErrorsStopTheStart(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key", `{"mcpServers": {"a": {"command": "x", "cwd": "/"}}}`, `mcpServers "a": json: unknown field "cwd"`},
		{"missing command", `{"mcpServers": {"a": {"command": "/nonexistent/server"}}}`, `upstream "a"`},
		{"unreachable", `{"mcpServers": {"b": {"url": "http://127.0.0.1:1/mcp"}}}`, `upstream "b"`},
		{"bad policy", `{"mcpServers": {}, "policy": {"tools": {"x": "yes"}}}`, `is not a requirement`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strconv.Itoa(len(tc.name))+".json")
			if err := os.WriteFile(file, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := run(t, testEnv(t, "MCP_UPSTREAMS="+file), "", "serve", "--addr", "127.0.0.1:0")
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, stderr, tc.want)
			}
		})
	}
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScopesThePolicyNamesCanBeMintedWhenMCPScopesIsSet(t *testing.T) {
	file := filepath.Join(t.TempDir(), "upstreams.json")
	if err := os.WriteFile(file, []byte(`{"mcpServers": {}, "policy": {"tools": {"crm__*": ["crm:read"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEnv(t, "MCP_UPSTREAMS="+file, "MCP_SCOPES=tools:call")
	if tok := issue(t, e, "reader", "1d", "--scope", "crm:read"); tok.Scopes[0] != "crm:read" {
		t.Fatalf("scopes = %v", tok.Scopes)
	}
	issue(t, e, "caller", "1d", "--scope", "tools:call")
	if _, stderr, code := run(t, e, "", "token", "issue", "x", "1d", "--scope", "crm:write"); code == 0 || !strings.Contains(stderr, "crm:write") {
		t.Fatalf("a scope neither MCP_SCOPES nor the policy names was minted: exit %d, %s", code, stderr)
	}
}

// A client's requests waiting for upstreams are bounded
// (MCP_MAX_INFLIGHT_PER_CLIENT): while one client's long call holds its
// only slot, its next call is refused and counted in /metrics, another
// client's goes through, and the slot is free again once the long call
// ends. The gateway's limits show in /metrics from zero.
func TestGatewayBoundsAClientsRequestsInFlight(t *testing.T) {
	node, script := everythingServer(t)
	crm := &recordingUpstream{}
	file := filepath.Join(t.TempDir(), "upstreams.json")
	writeUpstreams(t, file, node, script, crm.start(t), gatewayPolicy)
	e := testEnv(t, "MCP_UPSTREAMS="+file, "CRM_KEY=k", "MCP_MAX_INFLIGHT_PER_CLIENT=1")
	user := issue(t, e, "user", "1d", "--scope", "everything:use")
	other := issue(t, e, "other", "1d", "--scope", "everything:use")
	admin := issue(t, e, "root", "1d", "--scope", "admin")
	addr := startServer(t, e)
	metric := func(name string) string {
		req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+admin.Token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return ""
	}
	for _, l := range []string{"inflight_per_client", "subscriptions_per_session"} {
		if v := metric(`mcpauth_limit_refusals_total{limit="` + l + `"}`); v != "0" {
			t.Fatalf("refusals by %s before any = %q, want 0", l, v)
		}
	}

	uc := mcpClient(t, addr, user.Token)
	// The long call is known to hold the slot once its first progress
	// notification arrives (a call sent before that could take the slot
	// first and leave the long call refused).
	progressed := make(chan struct{})
	var once sync.Once
	uc.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationProgress) {
			once.Do(func() { close(progressed) })
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	long := make(chan string, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "everything__trigger-long-running-operation"
		req.Params.Arguments = map[string]any{"duration": 60, "steps": 60}
		req.Params.Meta = &mcp.Meta{ProgressToken: "long"}
		res, err := uc.CallTool(ctx, req)
		if err != nil {
			long <- err.Error()
			return
		}
		long <- fmt.Sprintf("%+v", res)
	}()
	echo := func(c *client.Client) *mcp.CallToolResult {
		return testutil.CallTool(t, c, "everything__echo", map[string]any{"message": "hi"})
	}
	select {
	case <-progressed:
	case r := <-long:
		t.Fatalf("the long call ended before its first progress: %s", r)
	case <-time.After(20 * time.Second):
		t.Fatal("no progress from the long call")
	}
	if res := echo(uc); !res.IsError || !strings.Contains(testutil.Text(res), `client "user" already has 1 requests waiting for upstreams, the most allowed at once`) {
		t.Fatalf("user's call during the long one = %+v", res)
	}
	if res := echo(mcpClient(t, addr, other.Token)); res.IsError {
		t.Fatalf("another client's call = %+v", res)
	}
	if v := metric(`mcpauth_limit_refusals_total{limit="inflight_per_client"}`); v == "0" || v == "" {
		t.Fatalf("refusals by inflight_per_client = %q, want them counted", v)
	}
	cancel()
	<-long
	deadline := time.Now().Add(20 * time.Second)
	for res := echo(uc); res.IsError; res = echo(uc) {
		if time.Now().After(deadline) {
			t.Fatalf("the user's slot was not freed after its long call ended: %s", testutil.Text(res))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
