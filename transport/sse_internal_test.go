package transport

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
