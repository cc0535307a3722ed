package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

// The test binary doubles as a stdio upstream (an mcp-go server) when
// started with upstreamEnv set: TestMain serves instead of testing.
const upstreamEnv = "MCPAUTH_TEST_STDIO_UPSTREAM"

func TestMain(m *testing.M) {
	if os.Getenv(upstreamEnv) != "" {
		serveTestUpstream()
		return
	}
	os.Exit(m.Run())
}

// testUpstream is an mcp-go server with tools that exercise the relay.
func testUpstream() *server.MCPServer {
	// Subscriptions are counted, and reported by the subs tool.
	var subscribes, unsubscribes atomic.Int64
	hooks := &server.Hooks{}
	hooks.AddAfterSubscribe(func(context.Context, any, *mcp.SubscribeRequest, *mcp.EmptyResult) { subscribes.Add(1) })
	hooks.AddAfterUnsubscribe(func(context.Context, any, *mcp.UnsubscribeRequest, *mcp.EmptyResult) { unsubscribes.Add(1) })
	opts := []server.ServerOption{server.WithToolCapabilities(true), server.WithPromptCapabilities(true),
		server.WithResourceCapabilities(true, true), server.WithLogging(), server.WithHooks(hooks)}
	if os.Getenv(noCompletionsEnv) == "" {
		opts = append(opts, server.WithCompletions(),
			server.WithPromptCompletionProvider(echoCompletions{}), server.WithResourceCompletionProvider(echoCompletions{}))
	}
	s := server.NewMCPServer("test-upstream", "1.0.0", opts...)
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			meta := ""
			if req.Params.Meta != nil {
				if c, ok := req.Params.Meta.AdditionalFields[CallerMetaKey]; ok {
					meta = fmt.Sprint(c)
				}
			}
			r := mcp.NewToolResultText("echo: " + req.GetString("message", ""))
			r.StructuredContent = map[string]any{"message": req.GetString("message", ""), "caller": meta,
				"authorization": req.Header.Get("Authorization"), "x-upstream-key": req.Header.Get("X-Upstream-Key")}
			return r, nil
		})
	// barrier answers once n calls are in flight at the same time: it
	// completes only if the gateway multiplexes calls.
	var inFlight atomic.Int64
	var mu sync.Mutex
	release := make(chan struct{})
	s.AddTool(mcp.NewTool("barrier", mcp.WithNumber("n", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n := int64(req.GetFloat("n", 0))
			mu.Lock()
			ch := release
			if inFlight.Add(1) >= n {
				close(release)
				release = make(chan struct{})
				inFlight.Store(0)
			}
			mu.Unlock()
			select {
			case <-ch:
				return mcp.NewToolResultText("released"), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	s.AddTool(mcp.NewTool("slow", mcp.WithNumber("ms", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			steps := 3
			for i := 1; i <= steps; i++ {
				if req.Params.Meta != nil && req.Params.Meta.ProgressToken != nil {
					_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress", map[string]any{
						"progressToken": req.Params.Meta.ProgressToken, "progress": i, "total": steps})
				}
				select {
				case <-time.After(time.Duration(req.GetFloat("ms", 0)) * time.Millisecond / time.Duration(steps)):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return mcp.NewToolResultText("done"), nil
		})
	// log sends a log message at the level asked (mcp-go drops it when
	// below the level the gateway set).
	s.AddTool(mcp.NewTool("log", mcp.WithString("level"), mcp.WithString("message")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			err := server.ServerFromContext(ctx).SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(
				mcp.LoggingLevel(req.GetString("level", "")), "test", req.GetString("message", "")))
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText("logged"), nil
		})
	// block writes "started" to its file, then waits for its context to
	// end and adds " cancelled": the test sees that the cancellation
	// reached this process.
	s.AddTool(mcp.NewTool("block", mcp.WithString("file", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			file := req.GetString("file", "")
			if err := os.WriteFile(file, []byte("started"), 0o600); err != nil {
				return nil, err
			}
			select {
			case <-ctx.Done():
				_ = os.WriteFile(file, []byte("started cancelled"), 0o600)
				return nil, ctx.Err()
			case <-time.After(time.Minute):
				return mcp.NewToolResultText("not cancelled"), nil
			}
		})
	addServerRequestTools(s)
	// schemas has schemas with keywords mcp-go's structs do not keep.
	schemas := mcp.NewToolWithRawSchema("schemas", "rich schemas", json.RawMessage(richInputSchema))
	schemas.RawOutputSchema = json.RawMessage(richOutputSchema)
	s.AddTool(schemas, func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	s.AddTool(mcp.NewTool("subs"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(fmt.Sprintf("subscribe=%d unsubscribe=%d", subscribes.Load(), unsubscribes.Load())), nil
	})
	// touch says the resource changed.
	s.AddTool(mcp.NewTool("touch", mcp.WithString("uri")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		err := server.ServerFromContext(ctx).SendNotificationToClient(ctx, mcp.MethodNotificationResourceUpdated,
			map[string]any{"uri": req.GetString("uri", "")})
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultText("touched"), nil
	})
	s.AddTool(mcp.NewTool("crash"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		os.Exit(3)
		return nil, nil
	})
	s.AddTool(mcp.NewTool("fail"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("it failed, as asked"), nil
	})
	s.AddTool(mcp.NewTool("spawn"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		// A grandchild in the upstream's process group, as npx leaves.
		c := exec.Command("sleep", "600")
		if err := c.Start(); err != nil {
			return nil, err
		}
		return mcp.NewToolResultText(strconv.Itoa(c.Process.Pid)), nil
	})
	s.AddTool(mcp.NewTool("churn", mcp.WithNumber("n", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// n list changes in a burst, ending with a new tool "late".
			for i := range int(req.GetFloat("n", 1)) {
				name := fmt.Sprintf("temp%d", i)
				s.AddTool(mcp.NewTool(name), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return nil, nil })
				s.DeleteTools(name)
			}
			s.AddTool(mcp.NewTool("late"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText("late"), nil
			})
			return mcp.NewToolResultText("churned"), nil
		})
	s.AddPrompt(mcp.NewPrompt("greet", mcp.WithArgument("name")),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult("greeting", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("hello "+req.Params.Arguments["name"])),
			}), nil
		})
	scheme := "test"
	if v := os.Getenv(schemeEnv); v != "" {
		scheme = v
	}
	s.AddResource(mcp.NewResource(scheme+"://hello", "hello", mcp.WithMIMEType("text/plain")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: "hello resource"}}, nil
		})
	s.AddResourceTemplate(mcp.NewResourceTemplate(scheme+"://items/{id}", "item"),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "item"}}, nil
		})
	return s
}

// addServerRequestTools adds tools that ask the client for sampling,
// elicitation and roots, and answer with what it said (or the error).
func addServerRequestTools(s *server.MCPServer) {
	s.AddTool(mcp.NewTool("sample", mcp.WithString("prompt")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r := mcp.CreateMessageRequest{}
		r.Messages = []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent(req.GetString("prompt", ""))}}
		r.MaxTokens = 10
		res, err := server.ServerFromContext(ctx).RequestSampling(ctx, r)
		if err != nil {
			return mcp.NewToolResultError("sampling failed: " + err.Error()), nil
		}
		return mcp.NewToolResultText(fmt.Sprintf("sampled: %v", res.Content)), nil
	})
	s.AddTool(mcp.NewTool("elicit"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r := mcp.ElicitationRequest{}
		r.Params.Message = "name?"
		r.Params.RequestedSchema = map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}
		res, err := server.ServerFromContext(ctx).RequestElicitation(ctx, r)
		if err != nil {
			return mcp.NewToolResultError("elicitation failed: " + err.Error()), nil
		}
		return mcp.NewToolResultText(fmt.Sprintf("elicited: %s %v", res.Action, res.Content)), nil
	})
	s.AddTool(mcp.NewTool("roots"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := server.ServerFromContext(ctx).RequestRoots(ctx, mcp.ListRootsRequest{})
		if err != nil {
			return mcp.NewToolResultError("roots failed: " + err.Error()), nil
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return mcp.NewToolResultText(fmt.Sprintf("roots: %v", uris)), nil
	})
}

// answers is a caller's client side: it answers sampling, elicitation
// and roots with its own name.
type answers struct{ name string }

func (a answers) CreateMessage(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{Model: "m", SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
		Content: mcp.NewTextContent("from " + a.name)}}, nil
}

func (a answers) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"name": a.name}}}, nil
}

func (a answers) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///" + a.name, Name: a.name}}}, nil
}

func (a answers) options() []client.ClientOption {
	return []client.ClientOption{client.WithSamplingHandler(a), client.WithElicitationHandler(a), client.WithRootsHandler(a)}
}

// schemeEnv sets the URI scheme of the test upstream's resources, so
// that two of them can run side by side.
const schemeEnv = "MCPAUTH_TEST_SCHEME"

// noCompletionsEnv makes the test upstream offer no completions.
const noCompletionsEnv = "MCPAUTH_TEST_NO_COMPLETIONS"

// echoCompletions completes with what it was asked, so a test can see
// which name, URI, argument and context reached the upstream.
type echoCompletions struct{}

func (echoCompletions) CompletePromptArgument(_ context.Context, name string, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{fmt.Sprintf("prompt %s %s=%s %v", name, arg.Name, arg.Value, cctx.Arguments)}}, nil
}

func (echoCompletions) CompleteResourceArgument(_ context.Context, uri string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{fmt.Sprintf("resource %s %s=%s", uri, arg.Name, arg.Value)}}, nil
}

func serveTestUpstream() {
	// A line that is not JSON, as careless servers print: the gateway
	// must skip it, not fail.
	fmt.Println("starting up (this line is not JSON-RPC)")
	fmt.Fprintln(os.Stderr, "test upstream says hello on stderr")
	s := server.NewStdioServer(testUpstream())
	server.WithWorkerPoolSize(64)(s)
	_ = s.Listen(context.Background(), os.Stdin, os.Stdout)
}

// stdioEntry names the test binary as a stdio upstream.
func stdioEntry(name string) Entry {
	return Entry{Name: name, Command: os.Args[0], Env: map[string]string{upstreamEnv: "1"}}
}

// startGateway starts a gateway for entries, attaches it to a fresh
// mcp-go server and returns a connected in-process client of that server.
func startGateway(t *testing.T, opts Options, entries ...Entry) (*Gateway, *client.Client, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts.Env = append(opts.Env, "PATH="+os.Getenv("PATH"))
	g := New(entries, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Start(ctx, []string{"whoami"}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(g.Close)
	s := gatewayServer(g)
	c, err := client.NewInProcessClient(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_LEGACY_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "test"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return g, c, logs
}

// gatewayServer builds an mcp-go server the way mcpauth does, with g
// attached.
func gatewayServer(g *Gateway) *server.MCPServer {
	opts := append([]server.ServerOption{server.WithToolCapabilities(true), server.WithPromptCapabilities(true),
		server.WithResourceCapabilities(false, true)}, g.ServerOptions()...)
	s := server.NewMCPServer("gateway", "test", opts...)
	g.Attach(s)
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// prefixAccess is a policy for tests: a tool or prompt named "<up>__…"
// needs the scope "<up>", a resource the scope "resources".
type prefixAccess struct{}

func (prefixAccess) MayUse(c *auth.Claims, kind policy.Kind, name string) bool {
	if c == nil {
		return false
	}
	if kind == policy.Resource {
		return c.Scope.Has("resources")
	}
	up, _, ok := strings.Cut(name, "__")
	return ok && c.Scope.Has(up)
}

// callerHeader carries the scopes a test caller has (space-separated).
const callerHeader = "X-Test-Scope"

// serveCallers serves s over Streamable HTTP, every request acting as a
// caller with the scopes in its callerHeader; it returns the URL.
func serveCallers(t *testing.T, s *server.MCPServer) string {
	t.Helper()
	h := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		return auth.WithClaims(ctx, &auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "caller " + r.Header.Get(callerHeader)},
			Scope: auth.ParseScopes(r.Header.Get(callerHeader))})
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// caller connects to url as a caller with scopes.
func caller(t *testing.T, url, scopes string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{callerHeader: scopes}),
		transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The listening stream lives as long as ctx given to Start: until Close.
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_LEGACY_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "caller"}}}); err != nil {
		t.Fatal(err)
	}
	return c
}
