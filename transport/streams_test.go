package transport_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// openStream sends a GET that opens an event stream and returns a channel
// closed when the server ends it. The request is cancelled at test end.
func openStream(t *testing.T, url, token string, hdr map[string]string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return readToEnd(resp)
}

// readToEnd reads an event stream's body to its end, returning a channel
// closed when the server ends the stream.
func readToEnd(resp *http.Response) <-chan struct{} {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
	return ended
}

// listenBody is a 2026-07-28 subscriptions/listen request: its POST's
// answer is an event stream that stays open until the client leaves.
const listenBody = `{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"l","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`

// openListen sends a 2026-07-28 subscriptions/listen POST and returns a
// channel closed when the server ends its stream (which stays open only
// where the server advertises list changes: gateway mode).
func openListen(t *testing.T, url, token string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(listenBody))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("subscriptions/listen: %d %s", resp.StatusCode, b)
	}
	// The stream is open once it acknowledges the subscription.
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "notifications/subscriptions/acknowledged") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			resp.Body.Close()
			t.Fatalf("subscriptions/listen ended before its acknowledgement: %v: %s", err, got.String())
		}
	}
	return readToEnd(resp)
}

// initSession opens a 2025-11-25 Streamable HTTP session and returns its id.
func initSession(t *testing.T, s *stack, token string) string {
	t.Helper()
	r := do(t, "POST", s.URL+"/mcp", token, initBody, nil)
	sid := r.Header.Get(server.HeaderKeySessionID)
	if r.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q", r.StatusCode, sid)
	}
	return sid
}

const legacyVersion = "2025-11-25"

// streamKinds are every way a client holds an event stream open; open
// returns the stream opened with token (other is another valid token of
// the same subject).
var streamKinds = []struct {
	name string
	open func(t *testing.T, s *stack, token, other string) <-chan struct{}
}{
	{"legacy SSE", func(t *testing.T, s *stack, token, _ string) <-chan struct{} {
		return openStream(t, s.URL+"/sse", token, nil)
	}},
	{"Streamable HTTP GET without a session", func(t *testing.T, s *stack, token, _ string) <-chan struct{} {
		return openStream(t, s.URL+"/mcp", token, map[string]string{"Mcp-Protocol-Version": legacyVersion})
	}},
	{"Streamable HTTP GET in its token's session", func(t *testing.T, s *stack, token, _ string) <-chan struct{} {
		sid := initSession(t, s, token)
		return openStream(t, s.URL+"/mcp", token, map[string]string{"Mcp-Protocol-Version": legacyVersion, server.HeaderKeySessionID: sid})
	}},
	{"Streamable HTTP GET in a session another token opened", func(t *testing.T, s *stack, token, other string) <-chan struct{} {
		sid := initSession(t, s, other)
		return openStream(t, s.URL+"/mcp", token, map[string]string{"Mcp-Protocol-Version": legacyVersion, server.HeaderKeySessionID: sid})
	}},
	{"Streamable HTTP 2026-07-28 subscriptions/listen", func(t *testing.T, s *stack, token, _ string) <-chan struct{} {
		return openListen(t, s.URL+"/mcp", token)
	}},
}

// TestEveryStreamEndsWithinASecondOfRevocation: whatever kind of stream a
// token holds open, revoking that token ends it within a second.
func TestEveryStreamEndsWithinASecondOfRevocation(t *testing.T) {
	s := startStack(t, stackOpts{upstreams: relayedUpstream(t)})
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			tok := s.mint(t, "streamer", time.Hour)
			other := s.mint(t, "streamer", time.Hour)
			ended := k.open(t, s, tok, other)
			if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
				t.Fatal(err)
			}
			revoked := time.Now()
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream of a revoked token stayed open")
			}
			if el := time.Since(revoked); el > time.Second {
				t.Fatalf("stream ended %v after revocation, want within 1s", el)
			}
		})
	}
}

// TestEveryStreamEndsWithinASecondOfExpiry: whatever kind of stream a
// token holds open, it ends within a second of the token's expiry.
func TestEveryStreamEndsWithinASecondOfExpiry(t *testing.T) {
	s := startStack(t, stackOpts{upstreams: relayedUpstream(t)})
	for _, k := range streamKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			tok := s.mint(t, "brief", 2*time.Second)
			other := s.mint(t, "brief", time.Hour)
			exp := time.Unix(int64(s.Verifier.Inspect(tok).Claims["exp"].(float64)), 0)
			ended := k.open(t, s, tok, other)
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream outlived its token")
			}
			if late := time.Since(exp); late > time.Second {
				t.Fatalf("stream ended %v after its token expired, want within 1s", late)
			} else if late < -100*time.Millisecond {
				t.Fatalf("stream ended %v before its token expired", -late)
			}
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric returns the value of one sample of /metrics ("" when absent),
// read with an admin token.
func (s *stack) metric(t *testing.T, sample string) string {
	t.Helper()
	r := do(t, "GET", s.URL+"/metrics", s.mint(t, "metrics-reader", time.Hour, "admin"), "", nil)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", r.StatusCode, b)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

func TestSessionlessStreamableGETEndsItsSessionWithIt(t *testing.T) {
	s := startStack(t, stackOpts{})
	tok := s.mint(t, "listener", time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", legacyVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /mcp: %d", resp.StatusCode)
	}
	if n := s.HTTP.OpenSessions(); n != 1 {
		t.Fatalf("%d sessions while the GET is open, want 1", n)
	}
	cancel() // the client goes away
	waitFor(t, 5*time.Second, "the session of a session-less GET outlived it", func() bool { return s.HTTP.OpenSessions() == 0 })
}

func TestStreamableSessionsPerClientAreBounded(t *testing.T) {
	s := startStack(t, stackOpts{maxSessions: 2})
	greedy := s.mint(t, "greedy", time.Hour)
	first := initSession(t, s, greedy)
	initSession(t, s, greedy)

	r := do(t, "POST", s.URL+"/mcp", greedy, initBody, nil)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "too_many_sessions") || r.Header.Get(server.HeaderKeySessionID) != "" {
		t.Fatalf("third initialize: %d %q session %q; want 429 too_many_sessions and no session", r.StatusCode, b, r.Header.Get(server.HeaderKeySessionID))
	}
	if n := s.HTTP.OpenSessions(); n != 2 {
		t.Fatalf("a refused initialize changed the sessions: %d open, want 2", n)
	}
	if v := s.metric(t, `mcpauth_limit_refusals_total{limit="sessions_per_client"}`); v != "1" {
		t.Fatalf("refusals counted: %q, want 1", v)
	}
	// The open sessions still work.
	hdr := map[string]string{server.HeaderKeySessionID: first, "Mcp-Protocol-Version": legacyVersion}
	if r := do(t, "POST", s.URL+"/mcp", greedy, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, hdr); r.StatusCode != http.StatusOK {
		t.Fatalf("tools/list in an open session at the cap: %d", r.StatusCode)
	}
	// Another client is unaffected.
	initSession(t, s, s.mint(t, "modest", time.Hour))
	// Ending a session makes room.
	if r := do(t, "DELETE", s.URL+"/mcp", greedy, "", hdr); r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", r.StatusCode)
	}
	initSession(t, s, greedy)
	// 2026-07-28 requests need no session and are never refused by the cap.
	modern := `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"m","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	if r := do(t, "POST", s.URL+"/mcp", greedy, modern, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}); r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("modern request at the cap: %d %s", r.StatusCode, b)
	}
}

// A 2026-07-28 subscriptions/listen sent over legacy SSE holds its POST
// until the session's stream ends, taking one of the client's stream
// slots meanwhile; revoking the token ends the stream and the POST.
func TestListenOverLegacySSEEndsWithItsStream(t *testing.T) {
	s := startStack(t, stackOpts{maxStreams: 2, upstreams: relayedUpstream(t)})
	tok := s.mint(t, "sse-listener", time.Hour)
	ep, events := rawSSE(t, s.URL, tok)
	// A client that gives up: without the fix the POSTs never end.
	hc := &http.Client{Timeout: 8 * time.Second}
	post := func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", s.URL+ep, strings.NewReader(listenBody))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		return hc.Do(req)
	}
	answered := make(chan int, 1)
	go func() {
		r, err := post()
		if err != nil {
			answered <- -1
			return
		}
		r.Body.Close()
		answered <- r.StatusCode
	}()
	deadline := time.After(10 * time.Second)
	for acked := false; !acked; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the stream ended before the listen was acknowledged")
			}
			acked = strings.Contains(ev.data, "notifications/subscriptions/acknowledged")
		case code := <-answered:
			t.Fatalf("the listen POST was answered (%d) before its acknowledgement", code)
		case <-deadline:
			t.Fatal("no acknowledgement of the listen on the stream")
		}
	}
	// The stream and the listen hold both of the client's slots.
	if r, err := post(); err != nil || r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second listen: %v %v, want 429", r, err)
	}
	if _, _, err := s.Revoker.RevokeJTI(context.Background(), jtiOf(t, s, tok), "test", "leaked"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the listen POST of a revoked token stayed open")
	}
}
