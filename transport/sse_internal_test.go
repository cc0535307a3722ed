package transport

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// A message whose answer cannot be queued because its stream has ended
// gets 404, not a 202 that promises an answer; a notification, which has
// no answer, is still accepted.
func TestSSEMessageForAnEndedStream(t *testing.T) {
	s := newSSEServer(server.NewMCPServer("t", "1"), 0, nil, slog.New(slog.DiscardHandler))
	sess := &sseSession{id: "s1", out: make(chan []byte), notes: make(chan mcp.JSONRPCNotification), done: make(chan struct{})}
	sess.end()
	s.sessions[sess.id] = sess
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, http.StatusNotFound},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, http.StatusAccepted},
	} {
		w := httptest.NewRecorder()
		s.handleMessage(w, httptest.NewRequest("POST", "/message?sessionId=s1", strings.NewReader(tc.body)))
		if w.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.body, w.Code, w.Body, tc.want)
		}
	}
}

// A message whose answer finds no room in its stream's queue for the
// whole write timeout (the client stopped reading) gets 503 and the stream
// is dropped, rather than the POST waiting for as long as the client
// keeps its socket open.
func TestSSEMessageToAStalledStreamGets503AndDropsIt(t *testing.T) {
	s := newSSEServer(server.NewMCPServer("t", "1"), 0, nil, slog.New(slog.DiscardHandler))
	s.writeTimeout = 50 * time.Millisecond
	stopped := make(chan struct{})
	sess := &sseSession{id: "s1", out: make(chan []byte), notes: make(chan mcp.JSONRPCNotification), done: make(chan struct{}),
		stop: func() { close(stopped) }}
	s.sessions[sess.id] = sess
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.handleMessage(w, httptest.NewRequest("POST", "/message?sessionId=s1", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the POST still waits for a stream nobody reads")
	}
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "stream_stalled") {
		t.Fatalf("%d %s, want 503 stream_stalled", w.Code, w.Body)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the stalled stream was not ended")
	}
	if !sess.stalled.Load() {
		t.Fatal("the session is not marked stalled")
	}
}

// handleMessage takes a body strictJSONRPC checked as it is; a body that
// reached it any other way is still checked to be JSON.
func TestSSEMessageChecksABodyNotCheckedBefore(t *testing.T) {
	s := newSSEServer(server.NewMCPServer("t", "1"), 0, nil, slog.New(slog.DiscardHandler))
	sess := &sseSession{id: "s1", out: make(chan []byte, 1), notes: make(chan mcp.JSONRPCNotification), done: make(chan struct{})}
	s.sessions[sess.id] = sess
	w := httptest.NewRecorder()
	s.handleMessage(w, httptest.NewRequest("POST", "/message?sessionId=s1", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"`)))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("unchecked invalid body: %d %s, want 400", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	var reached bool
	strictJSONRPC(nil, "", slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, reached = checkedBytes(r)
		s.handleMessage(w, r)
	})).ServeHTTP(w, httptest.NewRequest("POST", "/message?sessionId=s1", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)))
	if !reached || w.Code != http.StatusAccepted {
		t.Fatalf("checked body: %v %d %s, want 202", reached, w.Code, w.Body)
	}
	if ev := <-sess.out; !strings.Contains(string(ev), `"result":{}`) {
		t.Fatalf("answer %q", ev)
	}
}

// A stream opened after closeAll (a request that got past the drain
// check just before shutdown) is refused, not left running: its
// connection may be one the http.Server no longer tracks.
func TestSSEStreamOpenedAfterCloseAllIsRefused(t *testing.T) {
	newID := func(context.Context, *http.Request) (string, error) { return "s1", nil }
	s := newSSEServer(server.NewMCPServer("t", "1"), time.Second, newID, slog.New(slog.DiscardHandler))
	s.closeAll()
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serveStream(w, httptest.NewRequest("GET", "/sse", nil))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a stream opened after closeAll is still open")
	}
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "shutting_down") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %v %s, want 503 shutting_down with Retry-After", w.Code, w.Header(), w.Body)
	}
	if len(s.sessions) != 0 {
		t.Fatalf("sessions %v", s.sessions)
	}
}
