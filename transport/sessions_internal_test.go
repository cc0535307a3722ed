package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
)

// In stateless mode initialize opens no session, so the session cap must
// not refuse concurrent initialize requests of one client.
func TestStatelessInitializeIsNotCountedAgainstTheSessionCap(t *testing.T) {
	h := NewHTTP(HTTPConfig{MCP: server.NewMCPServer("t", "1"), Auth: func(next http.Handler) http.Handler { return next },
		Stateless: true, MaxSessionsPerClient: 1})
	entered, release := make(chan struct{}, 2), make(chan struct{})
	handler := h.bindStreamable(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	c := &auth.Claims{}
	c.Subject, c.ID = "busy", "j1"
	send := func() *httptest.ResponseRecorder {
		ctx := context.WithValue(auth.WithClaims(context.Background(), c), initializeKey{}, true)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("POST", "/mcp", strings.NewReader(`{}`)).WithContext(ctx))
		return w
	}
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- send() }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first initialize did not reach the server")
	}
	second := make(chan *httptest.ResponseRecorder, 1)
	go func() { second <- send() }()
	select {
	case <-entered:
	case w := <-second:
		t.Fatalf("a concurrent stateless initialize was refused: %d %s", w.Code, w.Body)
	case <-time.After(10 * time.Second):
		t.Fatal("the second initialize neither reached the server nor was refused")
	}
	close(release)
	<-first
	<-second
}

// A Streamable HTTP session the reaper ends because its token was revoked
// is ended in mcp-go too (unregistered, its per-session state dropped), as
// a DELETE would; it used to stay there until mcp-go's 30-minute idle
// sweep (found by the soak: go run ./bench -soak).
func TestRevokedSessionIsEndedInMCPGoToo(t *testing.T) {
	var unregistered atomic.Int32
	hooks := &server.Hooks{}
	hooks.AddOnUnregisterSession(func(context.Context, server.ClientSession) { unregistered.Add(1) })
	c := &auth.Claims{}
	c.Subject, c.ID = "laptop", "j1"
	revoked := auth.NewRevocationSet()
	h := NewHTTP(HTTPConfig{MCP: server.NewMCPServer("t", "1", server.WithHooks(hooks)), Revoked: revoked,
		Auth: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(auth.WithClaims(r.Context(), c)))
			})
		}})
	req := httptest.NewRequest("POST", "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	id := w.Header().Get(server.HeaderKeySessionID)
	if w.Code != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d %s (session %q)", w.Code, w.Body, id)
	}
	revoked.Add(map[string]time.Time{c.ID: time.Now().Add(time.Hour)})
	h.reap()
	if n := h.OpenSessions(); n != 0 {
		t.Fatalf("%d sessions open after the reaper ran", n)
	}
	if n := unregistered.Load(); n != 1 {
		t.Fatalf("mcp-go unregistered %d sessions after the reaper ended the revoked one, want 1", n)
	}
}
