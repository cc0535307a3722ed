package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/internal/testutil"
)

func complete(ctx context.Context, c *client.Client, ref any, arg string, value string, cctx map[string]string) (*mcp.CompleteResult, error) {
	req := mcp.CompleteRequest{}
	req.Params.Ref = ref
	req.Params.Argument = mcp.CompleteArgument{Name: arg, Value: value}
	req.Params.Context = mcp.CompleteContext{Arguments: cctx}
	return c.Complete(ctx, req)
}

func TestCompletionsGoToTheOwningUpstreamUnprefixed(t *testing.T) {
	other := stdioEntry("other")
	other.Env[schemeEnv] = "other"
	_, c, _ := startGateway(t, Options{}, stdioEntry("go"), other)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if caps := initialize(t, c); caps.Completions == nil {
		t.Fatal("completions not advertised though the upstreams offer them")
	}
	res, err := complete(ctx, c, mcp.PromptReference{Type: "ref/prompt", Name: "other__greet"}, "name", "an", map[string]string{"x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "prompt greet name=an map[x:y]"; len(res.Completion.Values) != 1 || res.Completion.Values[0] != want {
		t.Fatalf("prompt completion = %v, want [%s]", res.Completion.Values, want)
	}
	// A resource template keeps its URI, which names its owner.
	res, err = complete(ctx, c, mcp.ResourceReference{Type: "ref/resource", URI: "other://items/{id}"}, "id", "4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "resource other://items/{id} id=4"; len(res.Completion.Values) != 1 || res.Completion.Values[0] != want {
		t.Fatalf("resource completion = %v, want [%s]", res.Completion.Values, want)
	}
	// A name no upstream serves is an error, not an empty answer.
	if _, err := complete(ctx, c, mcp.PromptReference{Type: "ref/prompt", Name: "greet"}, "name", "", nil); err == nil {
		t.Fatal("completing an unprefixed name went through")
	}
}

func TestCompletionsAreAdvertisedOnlyWhenAnUpstreamOffersThem(t *testing.T) {
	e := stdioEntry("plain")
	e.Env[noCompletionsEnv] = "1"
	_, c, _ := startGateway(t, Options{}, e)
	if caps := initialize(t, c); caps.Completions != nil {
		t.Fatal("completions advertised though no upstream offers them")
	}
	// An HTTP upstream declares them the same way.
	up := server.NewMCPServer("http-up", "1", server.WithCompletions(), server.WithPromptCapabilities(false))
	srv := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(srv.Close)
	_, c2, _ := startGateway(t, Options{}, Entry{Name: "h", URL: srv.URL + "/mcp"})
	if caps := initialize(t, c2); caps.Completions == nil {
		t.Fatal("completions not advertised for an HTTP upstream that offers them")
	}
}

// initialize returns the capabilities the gateway's server declares.
func initialize(t *testing.T, c *client.Client) mcp.ServerCapabilities {
	t.Helper()
	return c.GetServerCapabilities()
}

func TestCompletionsFollowThePolicy(t *testing.T) {
	g, _, _ := startGateway(t, Options{Access: prefixAccess{}}, stdioEntry("go"))
	url := serveCallers(t, gatewayServer(g))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ref := mcp.PromptReference{Type: "ref/prompt", Name: "go__greet"}
	if _, err := complete(ctx, caller(t, url, "go"), ref, "name", "a", nil); err != nil {
		t.Fatalf("a caller who may use go__greet: %v", err)
	}
	if _, err := complete(ctx, caller(t, url, "other"), ref, "name", "a", nil); err == nil {
		t.Fatal("a caller who may not use go__greet got its completions")
	}
	tmpl := mcp.ResourceReference{Type: "ref/resource", URI: "test://items/{id}"}
	if _, err := complete(ctx, caller(t, url, "go"), tmpl, "id", "1", nil); err == nil {
		t.Fatal("a caller who may not use the template got its completions")
	}
}

// logSink records the log messages a caller receives.
type logSink struct {
	mu   sync.Mutex
	msgs []string // "<logger> <level> <data>"
}

func (l *logSink) handler(n mcp.JSONRPCNotification) {
	if n.Method != string(mcp.MethodNotificationMessage) {
		return
	}
	p := n.Params.AdditionalFields
	l.mu.Lock()
	l.msgs = append(l.msgs, fmt.Sprintf("%v %v %v", p["logger"], p["level"], p["data"]))
	l.mu.Unlock()
}

func (l *logSink) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.msgs, msg)
}

func (l *logSink) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

func setLevel(t *testing.T, c *client.Client, level mcp.LoggingLevel) {
	t.Helper()
	req := mcp.SetLevelRequest{}
	req.Params.Level = level
	if err := c.SetLevel(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func TestUpstreamLogsGoOnlyToSessionsThatMayUseItAtTheirLevel(t *testing.T) {
	other := stdioEntry("other")
	other.Env[schemeEnv] = "other"
	g, _, _ := startGateway(t, Options{Access: prefixAccess{}}, stdioEntry("go"), other)
	url := serveCallers(t, gatewayServer(g))
	sinks := map[string]*logSink{}
	clients := map[string]*client.Client{}
	for _, who := range []struct{ name, scopes string }{
		{"a", "go"}, {"b", "other"}, {"c", "go"}, {"d", "go"},
	} {
		c := caller(t, url, who.scopes)
		sinks[who.name] = &logSink{}
		c.OnNotification(sinks[who.name].handler)
		clients[who.name] = c
	}
	if caps := clients["a"].GetServerCapabilities(); caps.Logging == nil {
		t.Fatal("logging not advertised though the upstreams log")
	}
	setLevel(t, clients["a"], mcp.LoggingLevelInfo)
	setLevel(t, clients["b"], mcp.LoggingLevelDebug)
	setLevel(t, clients["c"], mcp.LoggingLevelError)
	// d never sets a level: it asked for no log messages.

	// Each step waits for a message to arrive where it must before the
	// next: the gateway relays an upstream's messages in order, and each
	// session's stream keeps that order, so what a session got before a
	// later message is all it will ever get of the earlier ones.
	testutil.CallTool(t, clients["a"], "go__log", map[string]any{"level": "warning", "message": "m1"})
	waitFor(t, "a gets m1", func() bool { return sinks["a"].has("go/test warning m1") })
	testutil.CallTool(t, clients["a"], "go__log", map[string]any{"level": "error", "message": "m2"})
	waitFor(t, "a and c get m2", func() bool {
		return sinks["a"].has("go/test error m2") && sinks["c"].has("go/test error m2")
	})
	if got := sinks["c"].all(); len(got) != 1 {
		t.Fatalf("c (level error) got %v, want only m2", got)
	}
	testutil.CallTool(t, clients["b"], "other__log", map[string]any{"level": "debug", "message": "m3"})
	waitFor(t, "b gets m3", func() bool { return sinks["b"].has("other/test debug m3") })
	if got := sinks["b"].all(); len(got) != 1 {
		t.Fatalf("b (no tool of go) got %v, want only m3", got)
	}
	if got := sinks["a"].all(); slices.Contains(got, "other/test debug m3") {
		t.Fatalf("a (no tool of other) got %v", got)
	}
	setLevel(t, clients["d"], mcp.LoggingLevelDebug)
	// The gateway asks the upstream for the most verbose level wanted;
	// wait until debug passes, then d sees only what came after.
	waitFor(t, "d gets a debug message", func() bool {
		testutil.CallTool(t, clients["a"], "go__log", map[string]any{"level": "debug", "message": "m4"})
		return sinks["d"].has("go/test debug m4")
	})
	for _, m := range sinks["d"].all() {
		if m != "go/test debug m4" {
			t.Fatalf("d got %q from before it set a level", m)
		}
	}
}

func fileSays(path, want string) func() bool {
	return func() bool {
		b, _ := os.ReadFile(path)
		return string(b) == want
	}
}

func TestCancelledCallIsCancelledInTheStdioUpstream(t *testing.T) {
	_, c, _ := startGateway(t, Options{}, stdioEntry("go"))
	file := filepath.Join(t.TempDir(), "block")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "go__block"
		req.Params.Arguments = map[string]any{"file": file}
		_, err := c.CallTool(ctx, req)
		errc <- err
	}()
	waitFor(t, "the upstream to start the call", fileSays(file, "started"))
	cancel()
	// The in-process caller may get the gateway's tool error or its own
	// context's error first; what matters is what the upstream saw.
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call returned %v", err)
	}
	// The child process saw its request cancelled: mcp-go's client sent
	// notifications/cancelled when the forwarded call's context ended.
	waitFor(t, "the upstream to see the cancellation", fileSays(file, "started cancelled"))
}

func TestCancelledCallIsCancelledInTheHTTPUpstream(t *testing.T) {
	started, stopped := make(chan struct{}), make(chan struct{})
	up := server.NewMCPServer("http-up", "1", server.WithToolCapabilities(false))
	up.AddTool(mcp.NewTool("block"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		close(started)
		<-ctx.Done()
		close(stopped)
		return nil, ctx.Err()
	})
	var mu sync.Mutex
	var bodies []string
	h := server.NewStreamableHTTPServer(up)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	_, c, _ := startGateway(t, Options{}, Entry{Name: "h", URL: srv.URL + "/mcp"})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "h__block"
		_, err := c.CallTool(ctx, req)
		errc <- err
	}()
	<-started
	cancel()
	<-errc
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream's tool was not cancelled")
	}
	// Not only did the POST go away: the upstream was told, as the spec
	// asks (a server must not take a dropped stream as a cancellation).
	waitFor(t, "notifications/cancelled at the upstream", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var callID string
		for _, b := range bodies {
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
				Params struct {
					RequestID json.RawMessage `json:"requestId"`
				} `json:"params"`
			}
			if json.Unmarshal([]byte(b), &m) != nil {
				continue
			}
			switch m.Method {
			case "tools/call":
				callID = string(m.ID)
			case "notifications/cancelled":
				if callID != "" && string(m.Params.RequestID) == callID {
					return true
				}
			}
		}
		return false
	})
}

// mcp-go's HTTP server sends elicitation/create on the stream of the POST
// that caused it, so the gateway knows whose call it is even with many in
// flight.
func TestServerRequestsOverHTTPGoToTheCallerWhoseCallCausedThem(t *testing.T) {
	up := server.NewMCPServer("http-up", "1", server.WithToolCapabilities(false))
	addServerRequestTools(up)
	srv := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(srv.Close)
	g, _, _ := startGateway(t, Options{}, Entry{Name: "h", URL: srv.URL + "/mcp"})
	url := serveCallers(t, gatewayServer(g))
	ann := caller(t, url, "h", answers{"ann"}.options()...)
	bob := caller(t, url, "h", answers{"bob"}.options()...)
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, who := ann, "ann"
			if i%2 == 1 {
				c, who = bob, "bob"
			}
			got[i] = who + " " + testutil.Text(testutil.CallTool(t, c, "h__elicit", nil))
		}()
	}
	wg.Wait()
	for _, g := range got {
		who, answer, _ := strings.Cut(g, " ")
		if answer != "elicited: accept map[name:"+who+"]" {
			t.Errorf("%s got %q", who, answer)
		}
	}
	// mcp-go's HTTP server sends sampling and roots requests on the
	// standalone stream, unrelated to any call: they are relayed while
	// exactly one call is in flight.
	for tool, want := range map[string]string{"h__sample": "from ann", "h__roots": "roots: [file:///ann]"} {
		if res := testutil.CallTool(t, ann, tool, nil); res.IsError || !strings.Contains(testutil.Text(res), want) {
			t.Fatalf("%s = %q, want %q", tool, testutil.Text(res), want)
		}
	}
	// A caller whose client does not support sampling is refused cleanly.
	plain := caller(t, url, "h")
	if res := testutil.CallTool(t, plain, "h__sample", nil); !res.IsError || !strings.Contains(testutil.Text(res), "the calling client does not support sampling") {
		t.Fatalf("sampling for a client without it = %+v", res)
	}
}

func TestServerRequestsOverStdioNeedTheCallsInFlightToShareASession(t *testing.T) {
	g, _, _ := startGateway(t, Options{}, stdioEntry("go"))
	url := serveCallers(t, gatewayServer(g))
	ann := caller(t, url, "go", answers{"ann"}.options()...)
	for tool, want := range map[string]string{"go__sample": "from ann", "go__elicit": "elicited: accept map[name:ann]", "go__roots": "roots: [file:///ann]"} {
		if res := testutil.CallTool(t, ann, tool, nil); res.IsError || !strings.Contains(testutil.Text(res), want) {
			t.Fatalf("%s = %q, want %q", tool, testutil.Text(res), want)
		}
	}
	if res := testutil.CallTool(t, caller(t, url, "go"), "go__elicit", nil); !res.IsError ||
		!strings.Contains(testutil.Text(res), "the calling client does not support elicitation") {
		t.Fatalf("elicitation for a client without it = %+v", res)
	}
	// With another call to the child in flight, nobody can tell whose
	// call asked: refused, not guessed.
	end := blockingCall(t, caller(t, url, "go"), "another caller's")
	if res := testutil.CallTool(t, ann, "go__sample", nil); !res.IsError || !strings.Contains(testutil.Text(res), "2 calls to it are in flight") {
		t.Fatalf("sampling with two calls in flight = %+v", res)
	}
	end()

	// Several calls in flight from one client session: whichever of them
	// asked, that session's client is the one to answer, so it is asked.
	end = blockingCall(t, ann, "ann's")
	defer end()
	for tool, want := range map[string]string{"go__sample": "from ann", "go__roots": "roots: [file:///ann]"} {
		if res := testutil.CallTool(t, ann, tool, nil); res.IsError || !strings.Contains(testutil.Text(res), want) {
			t.Fatalf("%s with two of ann's calls in flight = %q, want %q", tool, testutil.Text(res), want)
		}
	}
}

// blockingCall has c call the stdio child's go__block, which stays in
// flight until cancelled, and returns once the child has started it. The
// returned end cancels the call and waits for the child to write its last
// word, so the temporary directory is not written to while it is
// removed; calling end again does nothing.
func blockingCall(t *testing.T, c *client.Client, whose string) (end func()) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "block")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "go__block"
		req.Params.Arguments = map[string]any{"file": file}
		_, _ = c.CallTool(ctx, req)
	}()
	waitFor(t, whose+" blocking call to start", fileSays(file, "started"))
	return sync.OnceFunc(func() {
		cancel()
		waitFor(t, whose+" blocking call to end", fileSays(file, "started cancelled"))
	})
}

// updates records the notifications/resources/updated a caller receives.
type updates struct {
	mu   sync.Mutex
	uris []string
}

func (u *updates) handler(n mcp.JSONRPCNotification) {
	if n.Method == mcp.MethodNotificationResourceUpdated {
		u.mu.Lock()
		u.uris = append(u.uris, fmt.Sprint(n.Params.AdditionalFields["uri"]))
		u.mu.Unlock()
	}
}

func (u *updates) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.uris)
}

func subscribe(c *client.Client, uri string) error {
	req := mcp.SubscribeRequest{}
	req.Params.URI = uri
	return c.Subscribe(context.Background(), req)
}

func unsubscribe(t *testing.T, c *client.Client, uri string) {
	t.Helper()
	req := mcp.UnsubscribeRequest{}
	req.Params.URI = uri
	if err := c.Unsubscribe(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func TestResourceSubscriptionsAreSharedUpstreamAndUpdatesGoToSubscribers(t *testing.T) {
	g, _, _ := startGateway(t, Options{Access: prefixAccess{}}, stdioEntry("go"))
	url := serveCallers(t, gatewayServer(g))
	cs := map[string]*client.Client{}
	ups := map[string]*updates{}
	for _, who := range []string{"a", "b", "c"} {
		cs[who] = caller(t, url, "go resources")
		ups[who] = &updates{}
		cs[who].OnNotification(ups[who].handler)
	}
	if caps := cs["a"].GetServerCapabilities(); caps.Resources == nil || !caps.Resources.Subscribe {
		t.Fatalf("subscriptions not advertised: %+v", caps.Resources)
	}
	subs := func() string { return testutil.Text(testutil.CallTool(t, cs["a"], "go__subs", nil)) }

	// A caller who may not read the resource cannot subscribe to it.
	if err := subscribe(caller(t, url, "go"), "test://hello"); err == nil {
		t.Fatal("a caller without the resources scope subscribed")
	}
	if err := subscribe(cs["a"], "test://nowhere"); err == nil {
		t.Fatal("subscribing to a resource nobody serves went through")
	}
	// Two sessions, one upstream subscription; a templated URI too.
	for _, who := range []string{"a", "b"} {
		if err := subscribe(cs[who], "test://hello"); err != nil {
			t.Fatal(err)
		}
	}
	if err := subscribe(cs["a"], "test://items/7"); err != nil {
		t.Fatal(err)
	}
	if got := subs(); got != "subscribe=2 unsubscribe=0" {
		t.Fatalf("upstream saw %s, want one subscription per URI", got)
	}

	testutil.CallTool(t, cs["a"], "go__touch", map[string]any{"uri": "test://hello"})
	waitFor(t, "a and b to get the update", func() bool {
		return slices.Contains(ups["a"].all(), "test://hello") && slices.Contains(ups["b"].all(), "test://hello")
	})
	// c subscribes only now, to another URI: the first update it gets is
	// that one (what was relayed before would have come first).
	if err := subscribe(cs["c"], "test://items/9"); err != nil {
		t.Fatal(err)
	}
	testutil.CallTool(t, cs["a"], "go__touch", map[string]any{"uri": "test://items/9"})
	waitFor(t, "c to get its update", func() bool { return len(ups["c"].all()) > 0 })
	if got := ups["c"].all(); !slices.Equal(got, []string{"test://items/9"}) {
		t.Fatalf("c got %v", got)
	}

	// The last session to leave a URI unsubscribes upstream.
	unsubscribe(t, cs["a"], "test://hello")
	if got := subs(); got != "subscribe=3 unsubscribe=0" {
		t.Fatalf("after one of two unsubscribed, upstream saw %s", got)
	}
	unsubscribe(t, cs["b"], "test://hello")
	if got := subs(); got != "subscribe=3 unsubscribe=1" {
		t.Fatalf("after both unsubscribed, upstream saw %s", got)
	}
	// A session that ends drops its subscriptions.
	_ = cs["c"].Close()
	waitFor(t, "c's subscription to end upstream", func() bool { return subs() == "subscribe=3 unsubscribe=2" })
}
