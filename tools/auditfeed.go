package tools

import (
	"context"
	"log/slog"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/auth"
)

// AuditFeedLogger names the audit records sent as MCP log messages.
const AuditFeedLogger = "mcpauth.audit"

// AuditFeed is a slog.Handler that passes every record on to the handler
// it wraps and also sends audit records (msg "audit") as MCP log messages
// (notifications/message, logger "mcpauth.audit", level info, the
// record's attributes as data) to the sessions of admins that asked for
// log messages with logging/setLevel at info or below: an admin can follow
// who is issued, refused and revoked from the chat. Audit records never
// carry tokens or secrets, so neither do the messages. Sessions of the
// stateless 2026-07-28 protocol cannot set a level and get none.
type AuditFeed struct {
	state *feedState
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs, sent with each record
}

type feedState struct {
	mu       sync.Mutex
	srv      *server.MCPServer
	sessions map[string]mcp.LoggingLevel // admin sessions by id
}

// NewAuditFeed wraps next.
func NewAuditFeed(next slog.Handler) *AuditFeed {
	return &AuditFeed{state: &feedState{sessions: map[string]mcp.LoggingLevel{}}, next: next}
}

// Enabled implements slog.Handler.
func (f *AuditFeed) Enabled(ctx context.Context, l slog.Level) bool { return f.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (f *AuditFeed) WithAttrs(as []slog.Attr) slog.Handler {
	return &AuditFeed{state: f.state, next: f.next.WithAttrs(as), attrs: append(append([]slog.Attr{}, f.attrs...), as...)}
}

// WithGroup implements slog.Handler; grouped records are passed on only.
func (f *AuditFeed) WithGroup(name string) slog.Handler { return f.next.WithGroup(name) }

// Handle implements slog.Handler.
func (f *AuditFeed) Handle(ctx context.Context, r slog.Record) error {
	err := f.next.Handle(ctx, r)
	if r.Message == "audit" {
		f.send(r)
	}
	return err
}

func (f *AuditFeed) send(r slog.Record) {
	st := f.state
	st.mu.Lock()
	srv := st.srv
	var to []string
	for id, level := range st.sessions {
		if levelRank(level) <= levelRank(mcp.LoggingLevelInfo) {
			to = append(to, id)
		}
	}
	st.mu.Unlock()
	if srv == nil || len(to) == 0 {
		return
	}
	data := map[string]any{}
	for _, a := range f.attrs {
		data[a.Key] = a.Value.Resolve().Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		data[a.Key] = a.Value.Resolve().Any()
		return true
	})
	n := mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, AuditFeedLogger, data)
	for _, id := range to {
		_ = srv.SendLogMessageToSpecificClient(id, n) // a session that went away misses it
	}
}

// attach starts feeding s's sessions: admins' setLevel adds their session,
// anyone else's removes it, and a session that ends is forgotten.
func (f *AuditFeed) attach(s *server.MCPServer) {
	st := f.state
	st.mu.Lock()
	st.srv = s
	st.mu.Unlock()
	h := s.GetHooks()
	h.AddAfterSetLevel(func(ctx context.Context, _ any, req *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		sess := server.ClientSessionFromContext(ctx)
		if sess == nil {
			return
		}
		c, ok := auth.ClaimsFrom(ctx)
		st.mu.Lock()
		defer st.mu.Unlock()
		if ok && c.Scope.IsAdmin() {
			st.sessions[sess.SessionID()] = req.Params.Level
		} else {
			delete(st.sessions, sess.SessionID())
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) {
		st.mu.Lock()
		delete(st.sessions, sess.SessionID())
		st.mu.Unlock()
	})
}

// levelRank orders the log levels from the most verbose.
func levelRank(l mcp.LoggingLevel) int {
	for i, v := range []mcp.LoggingLevel{mcp.LoggingLevelDebug, mcp.LoggingLevelInfo, mcp.LoggingLevelNotice,
		mcp.LoggingLevelWarning, mcp.LoggingLevelError, mcp.LoggingLevelCritical, mcp.LoggingLevelAlert, mcp.LoggingLevelEmergency} {
		if v == l {
			return i
		}
	}
	return 0
}
