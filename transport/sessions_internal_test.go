package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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
