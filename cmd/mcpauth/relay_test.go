package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// The tests here drive the real mcpauth binary, with real MCP servers
// nobody here wrote behind it (@modelcontextprotocol/server-everything
// over stdio and over Streamable HTTP, server-filesystem over stdio),
// from mcp-go's client and from the official TypeScript SDK client.

var tsClientDir, _ = filepath.Abs(filepath.Join("..", "..", "transport", "testdata", "tsclient"))

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// everythingHTTP starts server-everything over Streamable HTTP and
// returns its URL once it answers.
func everythingHTTP(t *testing.T, node, script string) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(node, script, "streamableHttp")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	url := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("server-everything (streamableHttp) exited: %s", out.String())
		default:
		}
		resp, err := http.Get(url) // answered (with an error: no session) once it listens
		if err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything (streamableHttp) did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// relayFixture is mcpauth in front of server-everything ("ev", over stdio
// or Streamable HTTP) and server-filesystem ("fs", over stdio, serving
// dir), with tokens for a caller of each and for one of neither.
type relayFixture struct {
	addr                string
	ev, fs, none, admin string
	dir                 string
	logs                *lockedBuffer
}

const relayPolicy = `"policy": {
	"tools": {"ev__*": ["ev"], "fs__*": ["fs"]},
	"prompts": {"ev__*": ["ev"]},
	"resources": {"demo://*": ["ev"], "file://*": ["fs"]}
}`

func startRelay(t *testing.T, mode string) relayFixture {
	t.Helper()
	node, script := everythingServer(t)
	fsScript := filepath.Join(upstreamsDir, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the filesystem"), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := fmt.Sprintf(`{"command": %q, "args": [%q, "stdio"]}`, node, script)
	if mode == "http" {
		ev = fmt.Sprintf(`{"url": %q}`, everythingHTTP(t, node, script))
	}
	doc := fmt.Sprintf(`{"mcpServers": {"ev": %s, "fs": {"command": %q, "args": [%q, %q]}}, %s}`,
		ev, node, fsScript, dir, relayPolicy)
	file := filepath.Join(t.TempDir(), "upstreams.json")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEnv(t, "MCP_UPSTREAMS="+file)
	f := relayFixture{dir: dir}
	f.ev = issue(t, e, "ev-user", "1d", "--scope", "ev").Token
	f.fs = issue(t, e, "fs-user", "1d", "--scope", "fs").Token
	f.none = issue(t, e, "nobody", "1d", "--scope", "other").Token
	f.admin = issue(t, e, "root", "1d", "--scope", "admin").Token
	f.addr, _, f.logs = startServerLogged(t, e)
	return f
}

// relayClient connects mcp-go's Streamable HTTP client to mcpauth with
// token, listening for notifications outside calls too.
func relayClient(t *testing.T, addr, token string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP("http://"+addr+"/mcp", transportHeaders(token), transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, opts...)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The listening stream lives as long as ctx given to Start: until Close.
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "relay-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	return c
}

// runRelayScript runs transport/testdata/tsclient/relay.mjs with steps and
// returns its results, one per step.
func runRelayScript(t *testing.T, url, mode, token string, steps ...map[string]any) []json.RawMessage {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(tsClientDir, "node_modules", "@modelcontextprotocol", "sdk"))
	}
	if err != nil {
		msg := fmt.Sprintf("TypeScript client unavailable (%v); run: npm ci --prefix transport/testdata/tsclient", err)
		if os.Getenv("MCPAUTH_REQUIRE_NODE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b, _ := json.Marshal(steps)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(tsClientDir, "relay.mjs"), url, mode)
	cmd.Env = append(os.Environ(), "MCP_TOKEN="+token, "STEPS="+string(b))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("TypeScript client: %v: %s", err, stderr.String())
	}
	var out struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("TypeScript client output %q: %v", stdout.String(), err)
	}
	return out.Results
}

func completeArg(t *testing.T, c *client.Client, ref any, arg, value string, cctx map[string]string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := mcp.CompleteRequest{}
	req.Params.Ref = ref
	req.Params.Argument = mcp.CompleteArgument{Name: arg, Value: value}
	req.Params.Context = mcp.CompleteContext{Arguments: cctx}
	res, err := c.Complete(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Completion.Values, nil
}

func TestRelayedPromptsResourcesAndCompletions(t *testing.T) {
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			f := startRelay(t, mode)
			c := relayClient(t, f.addr, f.ev)
			if caps := c.GetServerCapabilities(); caps.Completions == nil {
				t.Fatalf("mcpauth does not advertise completions though server-everything offers them: %+v", caps)
			}
			prompt := mcp.PromptReference{Type: "ref/prompt", Name: "ev__completable-prompt"}
			if got, err := completeArg(t, c, prompt, "department", "E", nil); err != nil || !slices.Equal(got, []string{"Engineering"}) {
				t.Fatalf("department completion = %v, %v", got, err)
			}
			if got, err := completeArg(t, c, prompt, "name", "", map[string]string{"department": "Sales"}); err != nil ||
				!slices.Equal(got, []string{"David", "Eve", "Frank"}) {
				t.Fatalf("name completion in context = %v, %v", got, err)
			}
			tmpl := mcp.ResourceReference{Type: "ref/resource", URI: "demo://resource/dynamic/text/{resourceId}"}
			if got, err := completeArg(t, c, tmpl, "resourceId", "3", nil); err != nil || !slices.Equal(got, []string{"3"}) {
				t.Fatalf("template completion = %v, %v", got, err)
			}
			// A caller the policy does not let use the prompt gets no
			// completions for it.
			if got, err := completeArg(t, relayClient(t, f.addr, f.fs), prompt, "department", "E", nil); err == nil {
				t.Fatalf("a caller without the ev scope completed %v", got)
			}

			// The TypeScript client: templates, a templated read, a prompt
			// and its completions.
			res := runRelayScript(t, "http://"+f.addr+"/mcp", "streamable", f.ev,
				map[string]any{"op": "templates"},
				map[string]any{"op": "read", "uri": "demo://resource/dynamic/text/7"},
				map[string]any{"op": "getPrompt", "name": "ev__completable-prompt", "arguments": map[string]string{"department": "Sales", "name": "Eve"}},
				map[string]any{"op": "complete", "ref": prompt, "argument": map[string]string{"name": "department", "value": "Su"}},
			)
			for i, want := range []string{`demo://resource/dynamic/text/{resourceId}`, `Resource 7: This is a plaintext resource`,
				`Please promote Eve to the head of the Sales team.`, `"values":["Support"]`} {
				if !strings.Contains(string(res[i]), want) {
					t.Errorf("step %d = %s, want it to contain %s", i, res[i], want)
				}
			}

			// server-filesystem over stdio: a tool reads the file for the
			// caller allowed to, and its prompts/resources lists are its own.
			fc := relayClient(t, f.addr, f.fs)
			got := callTool(t, fc, "fs__read_text_file", map[string]any{"path": filepath.Join(f.dir, "hello.txt")})
			if got.IsError || !strings.Contains(fmt.Sprint(got.Content), "hello from the filesystem") {
				t.Fatalf("fs__read_text_file = %+v", got)
			}
			if tools := listToolNames(t, fc); slices.Contains(tools, "ev__echo") || !slices.Contains(tools, "fs__list_directory") {
				t.Fatalf("fs caller sees %v", tools)
			}
		})
	}
}

// logCollector records the notifications/message a client receives.
type logCollector struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (l *logCollector) handle(n mcp.JSONRPCNotification) {
	if n.Method == string(mcp.MethodNotificationMessage) {
		l.mu.Lock()
		l.msgs = append(l.msgs, n.Params.AdditionalFields)
		l.mu.Unlock()
	}
}

func (l *logCollector) snapshot() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

func TestRelayedLogMessagesReachCallersOfTheUpstream(t *testing.T) {
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			f := startRelay(t, mode)
			c := relayClient(t, f.addr, f.ev)
			if caps := c.GetServerCapabilities(); caps.Logging == nil {
				t.Fatalf("mcpauth does not advertise logging though server-everything logs: %+v", caps)
			}
			logs := &logCollector{}
			c.OnNotification(logs.handle)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			req := mcp.SetLevelRequest{}
			req.Params.Level = mcp.LoggingLevelDebug
			if err := c.SetLevel(ctx, req); err != nil {
				t.Fatal(err)
			}
			// The TypeScript client asks for every level and starts
			// server-everything's simulated logging, which logs once at
			// once (at a random level) and then every 5 seconds.
			res := runRelayScript(t, "http://"+f.addr+"/mcp", "streamable", f.ev,
				map[string]any{"op": "setLevel", "level": "debug"},
				map[string]any{"op": "call", "name": "ev__toggle-simulated-logging"},
				map[string]any{"op": "waitLog", "contains": "message"},
			)
			var got struct{ Logger, Level string }
			if err := json.Unmarshal(res[2], &got); err != nil || got.Logger != "ev" || got.Level == "" {
				t.Fatalf("TypeScript client's log message = %s (%v), want logger ev", res[2], err)
			}
			// mcp-go's client, another caller of ev at level debug, gets
			// it too, tagged with the upstream's name.
			waitUntil(t, "the log message at the mcp-go client", func() bool {
				for _, m := range logs.snapshot() {
					if m["logger"] == "ev" && strings.Contains(fmt.Sprint(m["data"]), "message") {
						return true
					}
				}
				return false
			})
		})
	}
}
