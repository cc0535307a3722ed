package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/testutil"
)

// refusals records what Options.Refused is told.
type refusals struct {
	mu sync.Mutex
	by map[string]int
}

func (r *refusals) count(limit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[string]int{}
	}
	r.by[limit]++
}

func (r *refusals) of(limit string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.by[limit]
}

func TestAClientsRequestsInFlightAreBounded(t *testing.T) {
	var refused refusals
	g, _, _ := startGateway(t, Options{MaxInFlightPerClient: 2, Refused: refused.count}, stdioEntry("go"))
	url := serveCallers(t, gatewayServer(g))
	// Two clients (serveCallers names a caller by its scopes).
	ann := caller(t, url, "go")
	bob := caller(t, url, "go other")

	endFirst := blockingCall(t, ann, "ann's first")
	endSecond := blockingCall(t, ann, "ann's second")
	defer endSecond()
	calls := g.Upstreams()[0].Status().Calls

	// A third request of ann's, of any kind, is refused at once and
	// never reaches the upstream.
	res := testutil.CallTool(t, ann, "go__echo", map[string]any{"message": "third"})
	if !res.IsError || !strings.Contains(testutil.Text(res), `client "caller go" already has 2 requests waiting for upstreams, the most allowed at once`) {
		t.Fatalf("ann's third call = %+v, want the in-flight limit's tool error", res)
	}
	req := mcp.GetPromptRequest{}
	req.Params.Name = "go__greet"
	if _, err := ann.GetPrompt(context.Background(), req); err == nil || !strings.Contains(err.Error(), "already has 2 requests waiting") {
		t.Fatalf("ann's prompts/get = %v, want the in-flight limit's error", err)
	}
	if got := g.Upstreams()[0].Status().Calls; got != calls {
		t.Fatalf("the upstream got %d more requests, want none", got-calls)
	}
	if n := refused.of(LimitInFlightPerClient); n != 2 {
		t.Fatalf("refusals counted: %d, want 2", n)
	}

	// Another client is not affected.
	if res := testutil.CallTool(t, bob, "go__echo", map[string]any{"message": "bob"}); res.IsError {
		t.Fatalf("bob's call = %+v", res)
	}
	// Once one of ann's calls is answered, ann may call again.
	endFirst()
	waitFor(t, "ann's slot to be free", func() bool {
		res := testutil.CallTool(t, ann, "go__echo", map[string]any{"message": "again"})
		return !res.IsError
	})
}

func TestASessionsResourceSubscriptionsAreBounded(t *testing.T) {
	var refused refusals
	g, _, _ := startGateway(t, Options{Access: prefixAccess{}, MaxSubscriptionsPerSession: 2, Refused: refused.count}, stdioEntry("go"))
	url := serveCallers(t, gatewayServer(g))
	a := caller(t, url, "go resources")
	subs := func() string { return testutil.Text(testutil.CallTool(t, a, "go__subs", nil)) }

	for _, uri := range []string{"test://hello", "test://items/1"} {
		if err := subscribe(a, uri); err != nil {
			t.Fatal(err)
		}
	}
	err := subscribe(a, "test://items/2")
	if err == nil || !strings.Contains(err.Error(), "this session already has 2 resource subscriptions, the most allowed: unsubscribe from one first") {
		t.Fatalf("third subscription = %v, want the limit's error", err)
	}
	if n := refused.of(LimitSubscriptionsPerSession); n != 1 {
		t.Fatalf("refusals counted: %d, want 1", n)
	}
	// Subscribing again to a URI the session has is not a new one.
	if err := subscribe(a, "test://hello"); err != nil {
		t.Fatalf("repeated subscription: %v", err)
	}
	if got := subs(); got != "subscribe=2 unsubscribe=0" {
		t.Fatalf("upstream saw %s: the refused subscription went upstream", got)
	}
	// The limit is the session's: another session subscribes, and a
	// freed slot can be used again.
	if err := subscribe(caller(t, url, "go resources"), "test://items/3"); err != nil {
		t.Fatalf("another session: %v", err)
	}
	unsubscribe(t, a, "test://hello")
	if err := subscribe(a, "test://items/2"); err != nil {
		t.Fatalf("after an unsubscribe: %v", err)
	}
}

// Without a session (a stateless server) there is nothing to deliver
// resource updates or log messages to, and no session end would free what
// a subscription or a log level left behind: neither is kept, nor
// subscribed upstream.
func TestSessionlessCallersLeaveNoSubscriptionOrLogLevelBehind(t *testing.T) {
	g, _, _ := startGateway(t, Options{Access: prefixAccess{}}, stdioEntry("go"))
	h := server.NewStreamableHTTPServer(gatewayServer(g), server.WithStateLess(true),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			return auth.WithClaims(ctx, &auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "stateless"},
				Scope: auth.ParseScopes(r.Header.Get(callerHeader))})
		}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := caller(t, srv.URL+"/mcp", "go resources")
	for i := range 3 {
		_ = subscribe(c, fmt.Sprintf("test://items/%d", i))
	}
	if err := c.SetLevel(context.Background(), mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelDebug}}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.Text(testutil.CallTool(t, c, "go__subs", nil)); got != "subscribe=0 unsubscribe=0" {
		t.Fatalf("upstream saw %s, want no subscription", got)
	}
	g.subs.mu.Lock()
	subs := len(g.subs.sessions)
	g.subs.mu.Unlock()
	g.logs.mu.Lock()
	levels := len(g.logs.sessions)
	g.logs.mu.Unlock()
	if subs != 0 || levels != 0 {
		t.Fatalf("kept %d subscription sessions and %d log levels for sessionless callers, want none", subs, levels)
	}
}

// blockedNotifier counts the notifications it is asked to send and holds
// each until release is closed.
type blockedNotifier struct {
	sent    atomic.Int64
	release chan struct{}
}

func (b *blockedNotifier) SendNotification(ctx context.Context, _ mcp.JSONRPCNotification) error {
	b.sent.Add(1)
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

// notifications/cancelled are sent after their request ended, so the
// in-flight limit does not cover them: at most maxCancelNotices are on
// their way to one upstream connection at once, and the rest are dropped.
func TestCancelNoticesOnTheirWayAreBounded(t *testing.T) {
	n := &blockedNotifier{release: make(chan struct{})}
	slots := newCancelNotices()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := transport.JSONRPCRequest{Method: string(mcp.MethodToolsCall), ID: mcp.NewRequestId(int64(1))}
	for range maxCancelNotices + 10 {
		sendCancelled(ctx, n, slots, req, context.Canceled)
	}
	waitFor(t, "the notices to be sent", func() bool { return n.sent.Load() == maxCancelNotices })
	if got := len(slots); got != maxCancelNotices {
		t.Fatalf("%d notices on their way, want %d", got, maxCancelNotices)
	}
	// Once they are sent, the slots are free again.
	close(n.release)
	waitFor(t, "the slots to be freed", func() bool { return len(slots) == 0 })
	sendCancelled(ctx, n, slots, req, context.Canceled)
	waitFor(t, "a later notice to be sent", func() bool { return n.sent.Load() == maxCancelNotices+1 })
}

// An upstream slow to answer resources/subscribe holds up only the
// subscriptions of its own URIs: one lock for every subscription change
// let it stall every other session's subscriptions and session ends.
func TestASlowUpstreamSubscribeHoldsUpOnlyItsOwnURIs(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	var waiting, unsubscribed atomic.Int64
	hooks := &server.Hooks{}
	hooks.AddAfterUnsubscribe(func(context.Context, any, *mcp.UnsubscribeRequest, *mcp.EmptyResult) { unsubscribed.Add(1) })
	hooks.AddOnRequestInitialization(func(ctx context.Context, _ any, msg any) error {
		if raw, ok := msg.(json.RawMessage); ok && strings.Contains(string(raw), `"resources/subscribe"`) {
			waiting.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	})
	slow := server.NewMCPServer("slow", "1", server.WithResourceCapabilities(true, false), server.WithHooks(hooks))
	slow.AddResource(mcp.NewResource("slow://thing", "thing"), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "thing"}}, nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(slow))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // runs first: lets the slow subscribe end
	g, _, _ := startGateway(t, Options{Access: prefixAccess{}, CallTimeout: 30 * time.Second}, stdioEntry("go"), Entry{Name: "s", URL: srv.URL + "/mcp"})
	ms := gatewayServer(g)
	url := serveCallers(t, ms)
	a := caller(t, url, "go resources")
	go func() { _ = subscribe(a, "slow://thing") }()
	waitFor(t, "the slow upstream to be asked", func() bool { return waiting.Load() == 1 })

	b := caller(t, url, "go resources")
	done := make(chan error, 1)
	go func() { done <- subscribe(b, "test://hello") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a subscription on another upstream waited for the slow one")
	}

	// The session whose subscription is still being made ends (as the
	// transport's reaper ends a revoked token's session): when the
	// upstream answers at last, the subscription is undone, not kept for
	// a session that is gone.
	ended := func() bool {
		g.subs.mu.Lock()
		defer g.subs.mu.Unlock()
		for _, ss := range g.subs.sessions {
			if ss.ended {
				return true
			}
		}
		return false
	}
	ms.UnregisterSession(context.Background(), a.GetSessionId())
	waitFor(t, "the gateway to see the session end", ended)
	releaseOnce.Do(func() { close(release) })
	waitFor(t, "the late subscription to be undone upstream", func() bool { return unsubscribed.Load() == 1 })
	g.subs.mu.Lock()
	defer g.subs.mu.Unlock()
	if _, ok := g.subs.count[subKey{g.Upstreams()[1], "slow://thing"}]; ok || len(g.subs.sessions) != 1 {
		t.Fatalf("after the late answer: count %v, %d sessions, want only the other session's", g.subs.count, len(g.subs.sessions))
	}
}
