package upstream

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

func TestStdioUpstreamIsNamespacedAndForwarded(t *testing.T) {
	_, c, logs := startGateway(t, Options{}, stdioEntry("go"))
	names := testutil.ToolNames(t, c)
	for _, want := range []string{"go__echo", "go__slow", "go__crash"} {
		if !slices.Contains(names, want) {
			t.Fatalf("tools/list = %v, want %s", names, want)
		}
	}
	res := testutil.CallTool(t, c, "go__echo", map[string]any{"message": "hi"})
	if res.IsError || testutil.Text(res) != "echo: hi" {
		t.Fatalf("go__echo = %+v", res)
	}
	// A tool error stays a tool error.
	if res := testutil.CallTool(t, c, "go__fail", nil); !res.IsError || testutil.Text(res) != "it failed, as asked" {
		t.Fatalf("go__fail = %+v", res)
	}
	// The non-JSON line the child printed first was skipped, and its
	// stderr reached the log tagged with its name.
	waitFor(t, "stderr in the log", func() bool {
		return strings.Contains(logs.String(), "test upstream says hello on stderr") &&
			strings.Contains(logs.String(), "upstream=go")
	})
}

func TestPromptsAndResourcesAreForwarded(t *testing.T) {
	_, c, _ := startGateway(t, Options{}, stdioEntry("go"))
	ctx := context.Background()
	pr := mcp.GetPromptRequest{}
	pr.Params.Name = "go__greet"
	pr.Params.Arguments = map[string]string{"name": "ann"}
	p, err := c.GetPrompt(ctx, pr)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := p.Messages[0].Content.(mcp.TextContent); !ok || tc.Text != "hello ann" {
		t.Fatalf("prompt = %+v", p.Messages)
	}
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "test://hello"
	r, err := c.ReadResource(ctx, rr)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := r.Contents[0].(mcp.TextResourceContents); !ok || tc.Text != "hello resource" {
		t.Fatalf("resource = %+v", r.Contents)
	}
}

func TestEmptyPrefixServesNamesUnchanged(t *testing.T) {
	e := stdioEntry("go")
	none := ""
	e.Prefix = &none
	_, c, _ := startGateway(t, Options{}, e)
	if names := testutil.ToolNames(t, c); !slices.Contains(names, "echo") || slices.Contains(names, "go__echo") {
		t.Fatalf("tools/list = %v, want echo unprefixed", names)
	}
}

func TestCallsToOneChildAreMultiplexed(t *testing.T) {
	// barrier answers only once n calls are in flight together: were
	// calls queued one at a time, none would ever answer.
	g, c, _ := startGateway(t, Options{}, stdioEntry("go"))
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := testutil.CallTool(t, c, "go__barrier", map[string]any{"n": n}); res.IsError || testutil.Text(res) != "released" {
				errs <- testutil.Text(res)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := g.Statuses()[0].Calls; got != n {
		t.Errorf("calls counted = %d, want %d", got, n)
	}
}

func TestProgressReachesTheCallerWithItsOwnToken(t *testing.T) {
	_, c, _ := startGateway(t, Options{}, stdioEntry("go"))
	var mu sync.Mutex
	var got []any
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			got = append(got, n.Params.AdditionalFields["progressToken"])
			mu.Unlock()
		}
	})
	req := mcp.CallToolRequest{}
	req.Params.Name = "go__slow"
	req.Params.Arguments = map[string]any{"ms": 30}
	req.Params.Meta = &mcp.Meta{ProgressToken: "mine-7"}
	if _, err := c.CallTool(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 progress notifications", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	for _, tok := range got {
		if tok != "mine-7" {
			t.Fatalf("progress token %v, want the caller's mine-7", tok)
		}
	}
}

func TestStdioCallerIdentityGoesInMetaNeverTheClaimedOne(t *testing.T) {
	g := New([]Entry{stdioEntry("go")}, Options{Env: []string{"PATH=" + os.Getenv("PATH")}})
	if err := g.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	claims := &auth.Claims{Scope: auth.Scopes{"crm:read"}}
	claims.Issuer, claims.Subject = "mcpauth", "research-bot"
	ctx := auth.WithClaims(context.Background(), claims)
	req := mcp.CallToolRequest{}
	req.Params.Arguments = map[string]any{"message": "x"}
	// The caller tries to claim another identity in _meta.
	req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{CallerMetaKey: map[string]any{"sub": "admin"}}}
	res, err := g.callTool(g.ups[0], "echo")(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("echo: %v %+v", err, res)
	}
	caller := res.StructuredContent.(map[string]any)["caller"].(string)
	if !strings.Contains(caller, "sub:research-bot") || !strings.Contains(caller, "scope:crm:read") || strings.Contains(caller, "admin") {
		t.Fatalf("caller meta = %q", caller)
	}
}

func TestChildKilledMidCallGivesAClearErrorAndComesBack(t *testing.T) {
	g, c, _ := startGateway(t, Options{BackoffMin: 10 * time.Millisecond}, stdioEntry("go"))
	res := testutil.CallTool(t, c, "go__crash", nil)
	if !res.IsError || !strings.Contains(testutil.Text(res), `upstream "go"`) {
		t.Fatalf("crash = %+v, want a tool error naming the upstream", res)
	}
	waitFor(t, "the upstream to restart", func() bool {
		s := g.Statuses()[0]
		return s.State == Up && s.Restarts == 1
	})
	if res := testutil.CallTool(t, c, "go__echo", map[string]any{"message": "back"}); res.IsError || testutil.Text(res) != "echo: back" {
		t.Fatalf("echo after restart = %+v", res)
	}
}

func TestSlowUpstreamHitsTheCallTimeout(t *testing.T) {
	e := stdioEntry("go")
	e.Timeout = Duration(100 * time.Millisecond)
	_, c, _ := startGateway(t, Options{}, e)
	res := testutil.CallTool(t, c, "go__slow", map[string]any{"ms": 10000})
	if !res.IsError || !strings.Contains(testutil.Text(res), `upstream "go" did not answer within 100ms`) {
		t.Fatalf("slow = %+v", res)
	}
	// The connection is still good.
	if res := testutil.CallTool(t, c, "go__echo", map[string]any{"message": "ok"}); res.IsError {
		t.Fatalf("echo after timeout = %+v", res)
	}
}

func TestCloseLeavesNoProcessBehind(t *testing.T) {
	g, c, _ := startGateway(t, Options{StopTimeout: time.Second}, stdioEntry("go"))
	grandchild, err := strconv.Atoi(testutil.Text(testutil.CallTool(t, c, "go__spawn", nil)))
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	waitFor(t, "the grandchild to be gone", func() bool { return !alive(grandchild) })
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// headerRecorder records every request's headers.
type headerRecorder struct {
	mu      sync.Mutex
	h       []http.Header
	methods []string
}

func (r *headerRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.h = append(r.h, req.Header.Clone())
		r.methods = append(r.methods, req.Method)
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

func TestHTTPUpstreamGetsItsStaticCredential(t *testing.T) {
	rec := &headerRecorder{}
	up := httptest.NewServer(rec.wrap(server.NewStreamableHTTPServer(testUpstream())))
	t.Cleanup(up.Close) // after the gateway's own cleanup closes its connection
	e := Entry{Name: "web", URL: up.URL + "/mcp", Headers: map[string]string{"X-Upstream-Key": "k-123"}}
	g, c, _ := startGateway(t, Options{}, e)
	res := testutil.CallTool(t, c, "web__echo", map[string]any{"message": "over http"})
	if res.IsError || testutil.Text(res) != "echo: over http" {
		t.Fatalf("web__echo = %+v", res)
	}
	if st := g.Statuses()[0]; st.Transport != "streamable-http" || st.State != Up {
		t.Fatalf("status = %+v", st)
	}
	// Closing ends the upstream session with a DELETE, which carries the
	// credential too (mcp-go's own DELETE has no configured headers).
	g.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Contains(rec.methods, http.MethodDelete) {
		t.Fatalf("no DELETE ended the session: %v", rec.methods)
	}
	for i, h := range rec.h {
		if h.Get("X-Upstream-Key") != "k-123" {
			t.Fatalf("a %s came without the static credential: %v", rec.methods[i], h)
		}
	}
}

func TestSSEOnlyUpstreamIsReachedByFallingBack(t *testing.T) {
	up := httptest.NewServer(server.NewSSEServer(testUpstream()))
	t.Cleanup(up.Close) // after the gateway's own cleanup closes its connection
	g, c, _ := startGateway(t, Options{}, Entry{Name: "old", URL: up.URL + "/sse"})
	if res := testutil.CallTool(t, c, "old__echo", map[string]any{"message": "sse"}); res.IsError || testutil.Text(res) != "echo: sse" {
		t.Fatalf("old__echo = %+v", res)
	}
	if st := g.Statuses()[0]; st.Transport != "sse" {
		t.Fatalf("transport = %q, want sse", st.Transport)
	}
}

func TestStartRefusesWhatItCannotServe(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	none := ""
	bare := stdioEntry("bare")
	bare.Prefix = &none
	bare2 := stdioEntry("bare2")
	bare2.Prefix = &none
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"unreachable", []Entry{{Name: "gone", URL: deadURL + "/mcp"}}, `upstream "gone"`},
		{"no such command", []Entry{{Name: "nocmd", Command: "/nonexistent/mcp-server"}}, `upstream "nocmd"`},
		{"collides with mcpauth", []Entry{bare}, `tool "slow" is served by both mcpauth itself and upstream "bare"`},
		{"two unprefixed", []Entry{bare, bare2}, `tool "echo" is served by both upstream "bare" and upstream "bare2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(tc.entries, Options{StartTimeout: 5 * time.Second, Env: []string{"PATH=" + os.Getenv("PATH")}})
			err := g.Start(context.Background(), []string{"slow"})
			if err == nil {
				g.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestListChangesReachTheGatewayCoalesced(t *testing.T) {
	g, c, _ := startGateway(t, Options{}, stdioEntry("go"))
	var mu sync.Mutex
	changed := 0
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationToolsListChanged) {
			mu.Lock()
			changed++
			mu.Unlock()
		}
	})
	if res := testutil.CallTool(t, c, "go__churn", map[string]any{"n": 100}); res.IsError {
		t.Fatalf("churn = %+v", res)
	}
	waitFor(t, "go__late in the gateway's list", func() bool { return slices.Contains(testutil.ToolNames(t, c), "go__late") })
	if res := testutil.CallTool(t, c, "go__late", nil); res.IsError || testutil.Text(res) != "late" {
		t.Fatalf("go__late = %+v", res)
	}
	// 201 upstream notifications were coalesced into far fewer re-reads.
	if n := g.ups[0].refreshes.Load(); n < 1 || n > 50 {
		t.Fatalf("%d list re-reads for 201 notifications", n)
	}
	waitFor(t, "the gateway's clients to be told the list changed", func() bool { mu.Lock(); defer mu.Unlock(); return changed > 0 })
}

// Relayed calls to an HTTP upstream reuse connections: concurrent callers
// do not cost a TCP connection per call.
func TestHTTPUpstreamCallsReuseConnections(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(server.NewStreamableHTTPServer(testUpstream()))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	_, c, _ := startGateway(t, Options{}, Entry{Name: "web", URL: up.URL + "/mcp"})
	const callers, calls = 8, 100
	before := conns.Load()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				if res := testutil.CallTool(t, c, "web__echo", map[string]any{"message": "again"}); res.IsError {
					t.Errorf("web__echo = %+v", res)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := conns.Load() - before; n > 2*callers { // a dial may race a connection coming free
		t.Fatalf("%d relayed calls from %d callers opened %d connections to the upstream, want at most %d", callers*calls, callers, n, 2*callers)
	}
}

// Rule: _meta members describing the caller's own connection (the
// protocol's io.modelcontextprotocol/ keys, e.g. a 2026-07-28 caller's
// protocol version) are not forwarded: the upstream connection has its
// own, and an HTTP upstream refuses a request whose _meta contradicts it.
func TestCallersConnectionMetaStaysOnItsHop(t *testing.T) {
	up := httptest.NewServer(server.NewStreamableHTTPServer(testUpstream()))
	t.Cleanup(up.Close)
	g, _, _ := startGateway(t, Options{}, Entry{Name: "web", URL: up.URL + "/mcp"})
	req := mcp.CallToolRequest{}
	req.Params.Arguments = map[string]any{"message": "hop"}
	req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{
		"io.modelcontextprotocol/protocolVersion": "2026-07-28",
		"io.modelcontextprotocol/clientInfo":      map[string]any{"name": "caller", "version": "1"},
	}}
	res, err := g.callTool(g.ups[0], "echo")(context.Background(), req)
	if err != nil || res.IsError || testutil.Text(res) != "echo: hop" {
		t.Fatalf("echo with the caller's connection meta: %v %+v", err, res)
	}
}
