package auth

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// Audit events, one per security-relevant action. They are structured
// log records (msg "audit", attribute "event") carrying client ids, jtis,
// remote addresses and reasons, never tokens or secrets.
const (
	EventTokenIssued  = "token.issued"
	EventIssueRefused = "token.issue_refused"
	EventTokenRevoked = "token.revoked"
	// EventTokenImported records a token minted before mcpauth (token
	// import).
	EventTokenImported = "token.imported"
	// EventTokenDelegated records a token minted for an upstream server
	// in a caller's name (the gateway's callerToken).
	EventTokenDelegated = "token.delegated"
	EventClientRevoked  = "client.revoked"
	EventAuthFailed     = "auth.failed"
	// EventForbidden is a valid token refused for lacking a scope (an
	// admin tool called without the admin scope, say).
	EventForbidden = "auth.forbidden"
	// EventRevocationSyncLost and EventRevocationSyncRestored mark this
	// replica losing and regaining the registry that feeds its
	// revocation set.
	EventRevocationSyncLost     = "revocation.sync_lost"
	EventRevocationSyncRestored = "revocation.sync_restored"
	// EventRevocationListenLost and EventRevocationListenRestored mark
	// PostgreSQL's notification connection (LISTEN) dropping and coming
	// back; a resync follows every return.
	EventRevocationListenLost     = "revocation.listen_lost"
	EventRevocationListenRestored = "revocation.listen_restored"
	// EventKeyRotated records a new signing key made active (key rotate,
	// rotate_signing_key); EventKeyRetired a key whose grace ended, whose
	// tokens are refused from then on.
	EventKeyRotated = "key.rotated"
	EventKeyRetired = "key.retired"
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
	if a, ok := RecordedAddr(ctx); ok {
		return a
	}
	return "local"
}

// RecordedAddr returns the address recorded by WithRemoteAddr, if any.
func RecordedAddr(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(remoteKey{}).(string)
	return a, ok && a != ""
}

// Audit writes one audit record. String values (plain, slog.Attr or
// error) pass through RedactTokens, so a client-supplied client id, tool
// name or claimed sub that is really a token never reaches the log.
func Audit(ctx context.Context, logger *slog.Logger, event string, attrs ...any) {
	if logger == nil {
		return
	}
	args := make([]any, 0, len(attrs)+4)
	args = append(args, "event", event, "remote", RedactTokens(RemoteAddrFrom(ctx)))
	for i := 0; i < len(attrs); i++ {
		switch a := attrs[i].(type) {
		case slog.Attr:
			if a.Value.Kind() == slog.KindString {
				a.Value = slog.StringValue(RedactTokens(a.Value.String()))
			}
			args = append(args, a)
		case string: // a key; its value follows
			args = append(args, a)
			if i+1 < len(attrs) {
				i++
				args = append(args, redactValue(attrs[i]))
			}
		default:
			args = append(args, a)
		}
	}
	logger.InfoContext(ctx, "audit", args...)
}

func redactValue(v any) any {
	switch v := v.(type) {
	case string:
		return RedactTokens(v)
	case error:
		if msg := v.Error(); RedactTokens(msg) != msg {
			return RedactTokens(msg)
		}
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = RedactTokens(s)
		}
		return out
	}
	return v
}

// RedactedJWT replaces token-shaped text in audit records.
const RedactedJWT = "[redacted-jwt]"

// dottedRun is a run of base64url segments joined by dots.
var dottedRun = regexp.MustCompile(`[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)+`)

// RedactTokens replaces every token-shaped part of s with RedactedJWT: a
// run of dot-separated base64url segments that either starts with a JOSE
// header ("eyJ", at least 10 characters) and has a second segment, which
// also catches a token clipped to its first two parts, or has at least
// three segments of 8 or more characters and 64 characters in all (a
// token whose header does not begin with eyJ).
func RedactTokens(s string) string {
	// A token-shaped run has a dot and either starts with "eyJ" or is 64
	// characters long: text with neither (addresses, client ids, scopes,
	// jtis: every field of a mint's record) cannot hold one and skips the
	// regexp.
	if !strings.Contains(s, ".") || (len(s) < 64 && !strings.Contains(s, "eyJ")) {
		return s
	}
	return dottedRun.ReplaceAllStringFunc(s, func(run string) string {
		if looksLikeToken(run) {
			return RedactedJWT
		}
		return run
	})
}

func looksLikeToken(run string) bool {
	segs := strings.Split(run, ".")
	if strings.HasPrefix(segs[0], "eyJ") && len(segs[0]) >= 10 && len(segs[1]) > 0 {
		return true
	}
	if len(segs) < 3 || len(run) < 64 {
		return false
	}
	long := 0
	for _, seg := range segs {
		if len(seg) >= 8 {
			long++
		}
	}
	return long >= 3
}
