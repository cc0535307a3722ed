package auth

import (
	"context"
	"log/slog"
)

// Audit events, one per security-relevant action. They are structured
// log records (msg "audit", attribute "event") carrying client ids, jtis,
// remote addresses and reasons, never tokens or secrets.
const (
	EventTokenIssued   = "token.issued"
	EventIssueRefused  = "token.issue_refused"
	EventTokenRevoked  = "token.revoked"
	EventClientRevoked = "client.revoked"
	EventAuthFailed    = "auth.failed"
	// EventForbidden is a valid token refused for lacking a scope (an
	// admin tool called without the admin scope, say).
	EventForbidden = "auth.forbidden"
)

type remoteKey struct{}

// WithRemoteAddr records the caller's network address in ctx for audit
// records made deeper in the stack.
func WithRemoteAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

// RemoteAddrFrom returns the address recorded by WithRemoteAddr, or
// "local" (stdio, CLI) when there is none.
func RemoteAddrFrom(ctx context.Context) string {
	if a, ok := ctx.Value(remoteKey{}).(string); ok && a != "" {
		return a
	}
	return "local"
}

// Audit writes one audit record.
func Audit(ctx context.Context, logger *slog.Logger, event string, attrs ...any) {
	if logger == nil {
		return
	}
	args := append([]any{"event", event, "remote", RemoteAddrFrom(ctx)}, attrs...)
	logger.InfoContext(ctx, "audit", args...)
}
