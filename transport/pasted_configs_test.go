package transport_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

// issuedConfigs mints a token for clientID through issue_token (as an
// admin would, from an MCP client) and returns the ready configs it hands
// out, keyed by client kind.
func issuedConfigs(t *testing.T, s *stack, clientID string, scopes ...string) map[string]json.RawMessage {
	t.Helper()
	admin := s.mint(t, "onboarding-admin", time.Hour, "admin")
	c, err := connect(t, kinds[0], s.URL, admin)
	if err != nil {
		t.Fatal(err)
	}
	res := testutil.CallTool(t, c, "issue_token", map[string]any{"client_id": clientID, "expires_in": "1h", "scopes": scopes})
	if res.IsError {
		t.Fatalf("issue_token: %s", testutil.Text(res))
	}
	var out struct {
		Configs map[string]json.RawMessage `json:"configs"`
	}
	structured(t, res, &out)
	return out.Configs
}

// TestClaudeDesktopConfigWorksWhenPasted runs exactly the command of the
// Claude Desktop config handed out for a fresh token (npx mcp-remote from
// the pinned lockfile) as a stdio child, and lists and calls tools
// through it.
func TestClaudeDesktopConfigWorksWhenPasted(t *testing.T) {
	_, dir := requireNode(t)
	s := startStack(t, stackOpts{})
	var desktop struct {
		MCPServers map[string]struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(issuedConfigs(t, s, "claude-desktop-user", "admin")["claude-desktop"], &desktop); err != nil {
		t.Fatal(err)
	}
	entry, ok := desktop.MCPServers["mcpauth"]
	if !ok || entry.Command != "npx" {
		t.Fatalf("config = %+v", desktop)
	}
	env := os.Environ()
	env = append(env, "HOME="+t.TempDir(), "npm_config_update_notifier=false")
	for k, v := range entry.Env {
		env = append(env, k+"="+v)
	}
	// Claude Desktop runs the command with the config's env; npx resolves
	// mcp-remote from the lockfile-pinned install in dir.
	tr := mcptransport.NewStdioWithOptions(entry.Command, env, entry.Args,
		mcptransport.WithCommandFunc(func(ctx context.Context, command string, env []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			cmd.Dir = dir
			return cmd, nil
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	defer c.Close()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatalf("initialize through mcp-remote: %v", err)
	}
	lt, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("list tools through mcp-remote: %v", err)
	}
	var names []string
	for _, tl := range lt.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Contains(names, "issue_token") || !slices.Contains(names, "whoami") {
		t.Fatalf("tools through mcp-remote = %v", names)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "whoami"
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("whoami through mcp-remote: %v %+v", err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if !strings.Contains(string(b), `"client_id":"claude-desktop-user"`) {
		t.Fatalf("whoami = %s", b)
	}
}

// TestURLConfigsWorkWhenPastedIntoTheTypeScriptClient takes the url and
// headers of the handed-out configs (Cursor's for Streamable HTTP, the
// generic one for SSE) and connects the official TypeScript SDK client.
func TestURLConfigsWorkWhenPastedIntoTheTypeScriptClient(t *testing.T) {
	node, dir := requireNode(t)
	s := startStack(t, stackOpts{})
	configs := issuedConfigs(t, s, "pasted-client")
	for _, tc := range []struct{ kind, mode string }{{"cursor", "streamable"}, {"generic", "sse"}, {"vscode", "streamable"}} {
		t.Run(tc.kind, func(t *testing.T) {
			var cfg map[string]map[string]struct {
				URL       string            `json:"url"`
				ServerURL string            `json:"serverUrl"`
				Headers   map[string]string `json:"headers"`
			}
			if err := json.Unmarshal(configs[tc.kind], &cfg); err != nil {
				t.Fatal(err)
			}
			var entry struct {
				URL       string            `json:"url"`
				ServerURL string            `json:"serverUrl"`
				Headers   map[string]string `json:"headers"`
			}
			for _, servers := range cfg { // "mcpServers" or "servers"
				entry = servers["mcpauth"]
			}
			if entry.URL == "" {
				t.Fatalf("%s config has no url: %s", tc.kind, configs[tc.kind])
			}
			headers, _ := json.Marshal(entry.Headers)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"), entry.URL, tc.mode)
			cmd.Env = append(os.Environ(), "MCP_HEADERS="+string(headers), "MCP_TOKEN=")
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("TypeScript client with the pasted %s config: %v %s", tc.kind, err, stderr)
			}
			var r tsResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			if r.Whoami.StructuredContent.ClientID != "pasted-client" || !slices.Equal(r.Tools, []string{"whoami"}) {
				t.Fatalf("result = %+v", r)
			}
		})
	}
}
