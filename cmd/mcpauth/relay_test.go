package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

	"github.com/mcpauth/mcpauth/internal/testutil"
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
	logs                *testutil.Buffer
	// sentToEv returns everything mcpauth has sent server-everything so
	// far (its stdin, or its HTTP request bodies).
	sentToEv func() string
	// upstreams is the upstreams file.
	upstreams string
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
	f := relayFixture{dir: dir}
	// What mcpauth sends server-everything is recorded on the way: its
	// stdin through tee, or its HTTP requests through a proxy.
	record := filepath.Join(t.TempDir(), "sent-to-ev")
	ev := fmt.Sprintf(`{"command": "sh", "args": ["-c", %q]}`,
		fmt.Sprintf("tee -a '%s' | exec '%s' '%s' stdio", record, node, script))
	f.sentToEv = func() string { b, _ := os.ReadFile(record); return string(b) }
	if mode == "http" {
		target, _ := url.Parse(everythingHTTP(t, node, script))
		target.Path = "" // the proxy appends the request's /mcp
		var mu sync.Mutex
		var sent bytes.Buffer
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.FlushInterval = -1
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			sent.Write(append(b, '\n'))
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		ev = fmt.Sprintf(`{"url": %q}`, srv.URL+"/mcp")
		f.sentToEv = func() string { mu.Lock(); defer mu.Unlock(); return sent.String() }
	}
	doc := fmt.Sprintf(`{"mcpServers": {"ev": %s, "fs": {"command": %q, "args": [%q, %q]}}, %s}`,
		ev, node, fsScript, dir, relayPolicy)
	file := filepath.Join(t.TempDir(), "upstreams.json")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	e := testEnv(t, "MCP_UPSTREAMS="+file)
	f.upstreams = file
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
	args := []string{filepath.Join(tsClientDir, "relay.mjs"), url, mode}
	// Node 20 has the WHATWG WebSocket only behind a flag (22+: always).
	if v, err := exec.Command(node, "-p", "typeof WebSocket").Output(); mode == "ws" && err == nil && strings.TrimSpace(string(v)) != "function" {
		args = append([]string{"--experimental-websocket"}, args...)
	}
	cmd := exec.CommandContext(ctx, node, args...)
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
			got := testutil.CallTool(t, fc, "fs__read_text_file", map[string]any{"path": filepath.Join(f.dir, "hello.txt")})
			if got.IsError || !strings.Contains(fmt.Sprint(got.Content), "hello from the filesystem") {
				t.Fatalf("fs__read_text_file = %+v", got)
			}
			if tools := testutil.ToolNames(t, fc); slices.Contains(tools, "ev__echo") || !slices.Contains(tools, "fs__list_directory") {
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
				// Off again, so the child has no timer left when it stops.
				map[string]any{"op": "call", "name": "ev__toggle-simulated-logging"},
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

func TestRelayedProgressAndCancellationReachTheUpstream(t *testing.T) {
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			f := startRelay(t, mode)
			// A long-running tool reports progress to the TypeScript
			// client with its own token; a second call is aborted after
			// its first progress notification.
			res := runRelayScript(t, "http://"+f.addr+"/mcp", "streamable", f.ev,
				map[string]any{"op": "call", "name": "ev__trigger-long-running-operation", "progress": true,
					"arguments": map[string]any{"duration": 0.6, "steps": 3}},
				map[string]any{"op": "cancelAfterProgress", "name": "ev__trigger-long-running-operation",
					"arguments": map[string]any{"duration": 3, "steps": 3}},
			)
			var call struct {
				Result struct {
					Content []struct{ Text string }
				}
				Progress []struct{ Progress, Total float64 }
			}
			if err := json.Unmarshal(res[0], &call); err != nil {
				t.Fatal(err)
			}
			// The last progress notification may lose the race with the
			// result (mcp-go's server can put a notification on the
			// session's GET stream rather than the call's), so the first
			// ones are what is certain.
			if len(call.Progress) < 2 || call.Progress[0].Progress != 1 || call.Progress[1].Progress != 2 ||
				call.Progress[0].Total != 3 || len(call.Result.Content) == 0 ||
				!strings.Contains(call.Result.Content[0].Text, "Long running operation completed") {
				t.Fatalf("long-running call = %s", res[0])
			}
			var aborted struct{ Error *string }
			if err := json.Unmarshal(res[1], &aborted); err != nil || aborted.Error == nil {
				t.Fatalf("aborted call = %s", res[1])
			}
			// server-everything was told: a notifications/cancelled naming
			// the forwarded call's request id.
			waitUntil(t, "notifications/cancelled at server-everything", func() bool {
				return cancelledCallAt(f.sentToEv(), "trigger-long-running-operation", 3)
			})
		})
	}
}

// cancelledCallAt reports whether the JSON-RPC messages in sent (one per
// line) hold a tools/call of tool with that duration and a later
// notifications/cancelled for its id.
func cancelledCallAt(sent, tool string, duration float64) bool {
	var id string
	for _, line := range strings.Split(sent, "\n") {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name      string          `json:"name"`
				Arguments map[string]any  `json:"arguments"`
				RequestID json.RawMessage `json:"requestId"`
			} `json:"params"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m.Method == "tools/call" && m.Params.Name == tool && m.Params.Arguments["duration"] == duration:
			id = string(m.ID)
		case m.Method == "notifications/cancelled" && id != "" && string(m.Params.RequestID) == id:
			return true
		}
	}
	return false
}

func TestUpstreamRequestsAreRelayedToTheCallingClient(t *testing.T) {
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			f := startRelay(t, mode)
			// mcpauth declares sampling, elicitation and roots upstream, so
			// server-everything adds the tools that need them (and says
			// its list changed).
			plain := relayClient(t, f.addr, f.ev)
			waitUntil(t, "server-everything's sampling and elicitation tools", func() bool {
				tools := testutil.ToolNames(t, plain)
				return slices.Contains(tools, "ev__trigger-sampling-request") &&
					slices.Contains(tools, "ev__trigger-elicitation-request") && slices.Contains(tools, "ev__get-roots-list")
			})
			// The TypeScript client answers them, on every transport
			// mcpauth serves it.
			for _, tr := range []struct{ url, mode string }{
				{"http://" + f.addr + "/mcp", "streamable"},
				{"http://" + f.addr + "/sse", "sse"},
				{"ws://" + f.addr + "/ws", "ws"},
			} {
				res := runRelayScript(t, tr.url, tr.mode, f.ev,
					map[string]any{"op": "call", "name": "ev__trigger-sampling-request", "arguments": map[string]any{"prompt": "hi", "maxTokens": 10}},
					map[string]any{"op": "call", "name": "ev__trigger-elicitation-request"},
					map[string]any{"op": "call", "name": "ev__get-roots-list"},
				)
				for i, want := range []string{"sampled by the TypeScript client", "Ada Lovelace", "file:///ts-client-root"} {
					var r struct {
						Result struct {
							IsError bool
							Content []struct{ Text string }
						}
					}
					if err := json.Unmarshal(res[i], &r); err != nil || r.Result.IsError || !strings.Contains(fmt.Sprint(r.Result.Content), want) {
						t.Errorf("%s step %d = %s, want %q", tr.mode, i, res[i], want)
					}
				}
			}
			// mcp-go's client here declared none of them: refused cleanly.
			got := testutil.CallTool(t, plain, "ev__trigger-sampling-request", map[string]any{"prompt": "hi", "maxTokens": 10})
			if !got.IsError || !strings.Contains(fmt.Sprint(got.Content), "the calling client does not support sampling") {
				t.Fatalf("sampling for a client without it = %+v", got)
			}
		})
	}
}

func TestRelayedResourceSubscriptionsGetUpdates(t *testing.T) {
	const doc = "demo://resource/static/document/architecture.md"
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			f := startRelay(t, mode)
			c := relayClient(t, f.addr, f.ev)
			if caps := c.GetServerCapabilities(); caps.Resources == nil || !caps.Resources.Subscribe {
				t.Fatalf("mcpauth does not advertise subscriptions though server-everything offers them: %+v", caps.Resources)
			}
			var mu sync.Mutex
			var got []string
			c.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == mcp.MethodNotificationResourceUpdated {
					mu.Lock()
					got = append(got, fmt.Sprint(n.Params.AdditionalFields["uri"]))
					mu.Unlock()
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			req := mcp.SubscribeRequest{}
			req.Params.URI = doc
			if err := c.Subscribe(ctx, req); err != nil {
				t.Fatal(err)
			}
			// A caller the policy does not let read it cannot subscribe.
			if err := relayClient(t, f.addr, f.fs).Subscribe(ctx, req); err == nil {
				t.Fatal("the fs caller subscribed to an ev resource")
			}
			// The TypeScript client subscribes too (one subscription
			// upstream) and starts server-everything's simulated updates,
			// which it sends at once for every subscribed URI.
			res := runRelayScript(t, "http://"+f.addr+"/mcp", "streamable", f.ev,
				map[string]any{"op": "subscribe", "uri": doc},
				map[string]any{"op": "call", "name": "ev__toggle-subscriber-updates"},
				map[string]any{"op": "waitUpdated", "uri": doc},
				// Off again, so the child has no timer left when it stops.
				map[string]any{"op": "call", "name": "ev__toggle-subscriber-updates"},
			)
			if !strings.Contains(string(res[2]), doc) {
				t.Fatalf("TypeScript client's update = %s", res[2])
			}
			waitUntil(t, "the update at the mcp-go client", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return slices.Contains(got, doc)
			})
			if n := strings.Count(f.sentToEv(), `"resources/subscribe"`); n != 1 {
				t.Fatalf("server-everything got %d resources/subscribe, want 1 for two sessions", n)
			}
		})
	}
}

// The same relays reach a legacy SSE client and a stdio client of mcpauth.
func TestRelayReachesLegacySSEAndStdioCallers(t *testing.T) {
	const doc = "demo://resource/static/document/architecture.md"
	f := startRelay(t, "stdio")
	res := runRelayScript(t, "http://"+f.addr+"/sse", "sse", f.ev,
		map[string]any{"op": "complete", "ref": map[string]string{"type": "ref/prompt", "name": "ev__completable-prompt"},
			"argument": map[string]string{"name": "department", "value": "Ma"}},
		map[string]any{"op": "setLevel", "level": "debug"},
		map[string]any{"op": "subscribe", "uri": doc},
		map[string]any{"op": "call", "name": "ev__toggle-subscriber-updates"},
		map[string]any{"op": "waitUpdated", "uri": doc},
		map[string]any{"op": "call", "name": "ev__toggle-subscriber-updates"},
		// server-everything logs each subscribe request at info.
		map[string]any{"op": "waitLog", "contains": "Received Subscribe Resource request for URI: " + doc},
		map[string]any{"op": "call", "name": "ev__trigger-sampling-request", "arguments": map[string]any{"prompt": "hi", "maxTokens": 10}},
	)
	for i, want := range map[int]string{0: `"values":["Marketing"]`, 4: doc, 6: `"logger":"ev"`} {
		if !strings.Contains(string(res[i]), want) {
			t.Errorf("legacy SSE step %d = %s, want %s", i, res[i], want)
		}
	}
	// The upstream's sampling request reaches the legacy SSE client on its
	// stream; its answer, POSTed back, reaches the upstream.
	if !strings.Contains(string(res[7]), "sampled by the TypeScript client") || strings.Contains(string(res[7]), `"isError":true`) {
		t.Errorf("sampling over legacy SSE = %s", res[7])
	}

	// mcpauth over stdio, with the same upstreams: sampling reaches the
	// stdio client.
	e := testEnv(t, "MCP_UPSTREAMS="+f.upstreams)
	tr := transport.NewStdio(binary, e, "--env-file=", "serve", "--stdio")
	c := client.NewClient(tr, client.WithSamplingHandler(samplingAnswer("from the stdio client")))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "stdio-relay-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "server-everything's sampling tool over stdio", func() bool {
		return slices.Contains(testutil.ToolNames(t, c), "ev__trigger-sampling-request")
	})
	got := testutil.CallTool(t, c, "ev__trigger-sampling-request", map[string]any{"prompt": "hi", "maxTokens": 10})
	if got.IsError || !strings.Contains(fmt.Sprint(got.Content), "from the stdio client") {
		t.Fatalf("sampling through mcpauth over stdio = %+v", got)
	}
}

type samplingAnswer string

func (a samplingAnswer) CreateMessage(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{Model: "m", SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
		Content: mcp.NewTextContent(string(a))}}, nil
}

// Rule: progress an upstream sends right before its answer reaches a
// Streamable HTTP caller. mcp-go v1.2.1's HTTP server drops a
// notification its forwarder has taken off the session's queue when the
// answer is written first (mark3labs/mcp-go#969); the gateway answers a
// call that relayed progress only once that progress has been written.
// server-everything's long-running tool sends its last progress and
// answers at once.
//
// The calls are 10 ms apart. mcp-go v1.2.1 has a second race, between
// calls of one session: the forwarder of a POST that has just been
// answered still selects between the session's queue and its own done
// channel, may take the next call's first notification, and then drops
// it (select picks at random). That is not what this test is about and
// mcpauth cannot reach into it (noted on issue 11); the pause lets that
// forwarder exit before the next call starts.
func TestProgressRightBeforeTheAnswerReachesTheCaller(t *testing.T) {
	f := startRelay(t, "stdio")
	c := relayClient(t, f.addr, f.ev)
	var mu sync.Mutex
	got := map[string]int{}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			got[fmt.Sprint(n.Params.AdditionalFields["progressToken"])]++
			mu.Unlock()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const calls, steps = 100, 2
	for i := range calls {
		req := mcp.CallToolRequest{}
		req.Params.Name = "ev__trigger-long-running-operation"
		req.Params.Arguments = map[string]any{"duration": 0, "steps": steps}
		req.Params.Meta = &mcp.Meta{ProgressToken: fmt.Sprintf("call-%d", i)}
		if res, err := c.CallTool(ctx, req); err != nil || res.IsError {
			t.Fatalf("call %d: %v %+v", i, err, res)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for i := range calls {
		lost += steps - got[fmt.Sprintf("call-%d", i)]
	}
	if lost > 0 {
		t.Fatalf("%d of %d progress notifications were lost", lost, steps*calls)
	}
}
